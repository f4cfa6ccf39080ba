/**
 * Ctrl+Break (SIGBREAK in Node on Windows) stops `payconnect plugin` through its close(), as Ctrl+C does:
 * under wine64, the zip's node.exe runs the plugin on a console, started by a small MinGW program
 * (test/windows/native/ctrl_break.c) that sends the console CTRL_BREAK_EVENT with GenerateConsoleCtrlEvent
 * once the plugin answers on its status port. Handled, the plugin closes and exits 0;
 * unhandled, Windows ends node.exe with STATUS_CONTROL_C_EXIT (3221225786) and no close().
 *
 * SIGBREAK cannot be sent to a Node process on Linux, so this is the only test of it. `payconnect server`
 * and `payconnect terminal` share the same stopSignal() (src/cli/lan-options.ts); only the plugin is run here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeNativeHookManifest } from '../native/support/shop';
import { LanPorts, PluginApi } from '../plugin/support/plugin-harness';
import { REPO_ROOT } from '../support/child-process';
import { systemPrerequisites, WINE64 } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import { freeTcpPort, killAllChildren, pickLanPorts, TestServer } from '../terminal/support/harness';
import { unpackWinZip, WINE_KEEPALIVE_SHIM, WinePrefix, winPath } from './wine';

jest.setTimeout(420_000);

const MINGW = 'x86_64-w64-mingw32-gcc';
const gate = systemPrerequisites([
  'wine64',
  'nodeWin',
  'zip',
  'unzip',
  {
    what: 'MinGW-w64 (x86_64) for the Ctrl+Break test program',
    check: () => spawnSync(MINGW, ['--version']).status === 0 || `no ${MINGW}`,
    install: '`apt-get install -y gcc-mingw-w64-x86-64`',
  },
]);

gate.describe('Ctrl+Break under Wine', () => {
  let tmp: string;
  let server: TestServer | undefined;
  let prefix: WinePrefix | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-signals-wine-'));
    prefix = await WinePrefix.create(path.join(tmp, 'wineprefix'), {});
    server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
  });

  afterAll(async () => {
    await prefix?.remove();
    await server?.proc.stop();
    await killAllChildren();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('stops payconnect plugin through its close(): exit code 0, not STATUS_CONTROL_C_EXIT', async () => {
    const exe = path.join(tmp, 'ctrl-break.exe');
    const cc = spawnSync(
      MINGW,
      [
        '-municode',
        '-std=c99',
        '-O2',
        '-Wall',
        '-Werror',
        '-o',
        exe,
        path.join(REPO_ROOT, 'test/windows/native/ctrl_break.c'),
      ],
      { encoding: 'utf8' },
    );
    expect(cc.stderr).toBe('');
    const root = unpackWinZip(tmp);
    const storeId = await server!.createStore('Noodle bar');
    const lan: LanPorts = await pickLanPorts();
    const port = await freeTcpPort();
    const shim = path.join(tmp, 'wine-keepalive-shim.js');
    writeFileSync(shim, WINE_KEEPALIVE_SHIM);
    const output = path.join(tmp, 'plugin.out');
    const go = path.join(tmp, 'go');
    // Through `script`, on a terminal: Wine gives a program started from a terminal a console (headless),
    // which GenerateConsoleCtrlEvent needs; from a pipe or file it has none (error 6, invalid handle), and
    // without a display Wine cannot open a console window for AllocConsole either.
    const breakerArgs = [
      exe,
      winPath(output),
      winPath(go),
      winPath(path.join(root, 'node.exe')),
      '--require',
      winPath(shim),
      winPath(path.join(root, 'app', 'bin', 'payconnect.js')),
      'plugin',
      '--manifest',
      winPath(writeNativeHookManifest(tmp, await freeTcpPort())),
      '--server',
      server!.url,
      '--registration-code',
      await server!.registrationCode(storeId, 'plugin'),
      '--port',
      String(port),
      '--data',
      winPath(path.join(tmp, 'plugin-data')),
      '--lan-port',
      String(lan.unitPort),
      '--plugin-port',
      String(lan.pluginPort),
    ];
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const breakerOut = path.join(tmp, 'ctrl-break.out');
    const fd = openSync(breakerOut, 'w');
    const child = spawn('script', ['-qfec', [WINE64, ...breakerArgs].map(quote).join(' '), '/dev/null'], {
      cwd: tmp,
      env: { ...prefix!.env, PAYCONNECT_SQLITE: 'node' },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const breaker = {
      exited: new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))),
      get stdout() {
        return readFileSync(breakerOut, 'utf8');
      },
    };
    const api = new PluginApi(`http://127.0.0.1:${port}`);
    await waitFor('the plugin to answer', () => api.status().catch(() => undefined), 180_000, 500).catch(
      (e: Error) => {
        throw new Error(`${e.message}\n${readFileSync(output, 'utf8')}\n${breaker.stdout}`);
      },
    );
    writeFileSync(go, '');
    const code = await breaker.exited;
    expect(breaker.stdout.trim().split(/\r?\n/).pop()).toBe('exit 0');
    expect(code).toBe(0);
    expect(await api.status().catch(() => 'no answer')).toBe('no answer');
  });
});
