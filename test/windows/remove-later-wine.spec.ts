/**
 * The uninstall's last step under Wine (src/cli/remove-later.ts): node.exe, running from the program folder
 * it uninstalls, leaves a cmd.exe behind that removes the folder after node.exe has exited. Checked as a
 * support engineer would after an uninstall: the folder, with node.exe and payconnect.cmd, is gone some
 * seconds after node.exe ended, the folder beside it is untouched, and a file that appeared in the folder
 * meanwhile (an install run again) is never deleted.
 *
 * The program folder is a copy of Node for Windows, in folders named as on a Chinese register PC (a space,
 * parentheses, Chinese), and the code is src/cli/remove-later.ts compiled as it ships. The cmd.exe line
 * before the fix (Node's quoting, `\"…\"`) removed nothing here; the slow uninstall flow of
 * service-install-wine.spec.ts waited ten minutes on it.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../support/child-process';
import { NODE_WIN_EXE, systemPrerequisites } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import { windowsProgram, WinePrefix } from './wine';

jest.setTimeout(180_000);

const sys = systemPrerequisites(['wine64', 'nodeWin']);

/** remove-later.ts as CommonJS, the way the build emits it. */
function compiled(): string {
  const source = readFileSync(path.join(REPO_ROOT, 'src', 'cli', 'remove-later.ts'), 'utf8');
  return ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
    },
  }).outputText;
}

sys.describe('an uninstall run from the installed node.exe removes its folder after it exits (Wine)', () => {
  let tmp: string;
  let prefix: WinePrefix | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-remove-later-'));
    prefix = await WinePrefix.create(path.join(tmp, 'wine'), {});
  }, 120_000);

  afterAll(async () => {
    await prefix?.remove();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /**
   * A program folder as the uninstall leaves it for the cmd.exe: node.exe (running) and payconnect.cmd.
   * node.exe runs app\\bin\\uninstall.js, which removes app\\ (as uninstallService removes all else) and
   * starts the removal, as the real uninstall does. `extra`: a file that appears in the folder meanwhile.
   */
  async function uninstallFrom(parent: string, name: string, extra?: string) {
    const parentDir = path.join(prefix!.dir, 'drive_c', parent);
    const installDir = path.join(parentDir, name);
    const neighbour = path.join(parentDir, `${name}-data`);
    mkdirSync(path.join(installDir, 'app', 'bin'), { recursive: true });
    mkdirSync(neighbour, { recursive: true });
    copyFileSync(NODE_WIN_EXE, path.join(installDir, 'node.exe'));
    writeFileSync(path.join(installDir, 'payconnect.cmd'), '@echo off\r\n');
    writeFileSync(path.join(installDir, 'app', 'remove-later.js'), compiled());
    writeFileSync(path.join(neighbour, 'journal.db'), 'kept');
    const windowsDir = `C:\\${parent}\\${name}`;
    writeFileSync(
      path.join(installDir, 'app', 'bin', 'uninstall.js'),
      [
        `const { removeFolderAfterExit } = require('../remove-later.js');`,
        `require('node:fs').rmSync(${JSON.stringify(`${windowsDir}\\app`)}, { recursive: true });`,
        ...(extra
          ? [`require('node:fs').writeFileSync(${JSON.stringify(`${windowsDir}\\${extra}`)}, 'new');`]
          : []),
        `removeFolderAfterExit(${JSON.stringify(windowsDir)});`,
        `console.log('scheduled');`,
      ].join('\n'),
    );
    const p = windowsProgram(
      prefix!,
      `uninstall-${name}`,
      path.join(installDir, 'node.exe'),
      [`${windowsDir}\\app\\bin\\uninstall.js`],
      { cwd: tmp, logDir: path.join(tmp, 'out') },
    );
    const { code } = await p.exited;
    expect({ code, stdout: p.stdout.trim(), stderr: p.stderr }).toEqual({
      code: 0,
      stdout: 'scheduled',
      stderr: '',
    });
    return { installDir, neighbour, windowsDir };
  }

  it.each([
    ['Program Files (x86)', 'payconnect'],
    ['收银 程序', '支付连接'],
  ])('C:\\%s\\%s goes, node.exe with it; the folder beside it stays', async (parent, name) => {
    const { installDir, neighbour, windowsDir } = await uninstallFrom(parent, name);
    // node.exe has exited: everything goes within the cmd.exe's tries (one a second).
    await waitFor(`${windowsDir} to be removed`, () => !existsSync(installDir), 60_000, 250);
    expect(readFileSync(path.join(neighbour, 'journal.db'), 'utf8')).toBe('kept');
  });

  it('removes only node.exe and payconnect.cmd: a file that appeared meanwhile stays, and so does its folder', async () => {
    const { installDir, windowsDir } = await uninstallFrom(
      'Program Files',
      'payconnect',
      'installed-again.txt',
    );
    await waitFor(
      `node.exe to be removed from ${windowsDir}`,
      () => !existsSync(path.join(installDir, 'node.exe')),
      60_000,
      250,
    );
    await sleep(2500); // two more tries' time: nothing else may go
    expect(readdirSync(installDir)).toEqual(['installed-again.txt']);
  });
});
