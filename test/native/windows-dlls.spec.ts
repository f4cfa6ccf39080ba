/**
 * The Windows builds of the hook library: payconnect-x64.dll and payconnect-x86.dll cross-built with
 * Debian's MinGW-w64 compilers, and their export tables checked with objdump (native/scripts/
 * check-exports.sh): every function of payconnect.h under its plain name, the right PE machine for the
 * name, and no MinGW runtime DLL needed beside them. The checker itself is shown to fail on a 32-bit DLL
 * whose names came out __stdcall-decorated, the mistake it exists to catch. Also the C unit test of the
 * library's JSON scanner (native/test/json_test.c).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { requireSystem, systemPrerequisites } from '../support/prerequisites';
import { buildNative, LINUX_BUILD, makeNative, NATIVE_DIR, nativeGate } from './support/native-build';

jest.setTimeout(120_000);

const run = (command: string, args: string[], cwd = NATIVE_DIR) =>
  spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 110_000 });

function present(command: string): true | string {
  const r = spawnSync(command, ['--version'], { encoding: 'utf8' });
  return r.error ? `${command}: not found` : true;
}

const crossGate = systemPrerequisites([
  requireSystem(
    'the MinGW-w64 cross compilers',
    () => {
      const a = present('x86_64-w64-mingw32-gcc');
      const b = present('i686-w64-mingw32-gcc');
      return a === true ? b : a;
    },
    '`apt-get install -y gcc-mingw-w64-x86-64 gcc-mingw-w64-i686`',
  ),
  requireSystem('`objdump` (binutils)', () => present('objdump'), '`apt-get install -y binutils`'),
  requireSystem('`make`', () => present('make'), '`apt-get install -y make`'),
]);

crossGate.describe('the Windows DLLs of the hook library', () => {
  it('build for x64 and x86 with every export undecorated, needing only what Windows has', () => {
    const r = makeNative('windows');
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toMatch(
      /payconnect-x64\.dll \(pei-x86-64\): 8 exports, undecorated; imports KERNEL32\.dll WS2_32\.dll msvcrt\.dll/,
    );
    expect(r.stdout).toMatch(
      /payconnect-x86\.dll \(pei-i386\): 8 exports, undecorated; imports KERNEL32\.dll WS2_32\.dll msvcrt\.dll/,
    );
  });

  it('the export check fails on a 32-bit DLL with __stdcall-decorated names, and on a DLL of the wrong width', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-exports-'));
    try {
      const src = path.join(tmp, 'bad.c');
      writeFileSync(
        src,
        '__declspec(dllexport) int __stdcall pc_open(void *a, void *b) { (void)a; (void)b; return 0; }\n',
      );
      const dll = path.join(tmp, 'payconnect-x86.dll');
      expect(run('i686-w64-mingw32-gcc', ['-shared', '-o', dll, src]).status).toBe(0);
      const r = run('sh', ['scripts/check-exports.sh', dll]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('missing (or decorated): pc_open\n');
      expect(r.stderr).toContain('not in payconnect.h: pc_open@8\n');

      const wide = path.join(tmp, 'wide', 'payconnect-x86.dll');
      mkdirSync(path.dirname(wide));
      copyFileSync(path.join(NATIVE_DIR, 'build', 'windows', 'payconnect-x64.dll'), wide);
      const w = run('sh', ['scripts/check-exports.sh', wide]);
      expect(w.status).toBe(1);
      expect(w.stderr).toContain('is pei-x86-64; a DLL named payconnect-x86.dll must be pei-i386');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

nativeGate.describe('the hook library on Linux', () => {
  it('builds with -Wall -Wextra -Werror and exports only the functions of payconnect.h', () => {
    buildNative();
    const nm = spawnSync('nm', ['-D', '--defined-only', path.join(LINUX_BUILD, 'libpayconnect.so')], {
      encoding: 'utf8',
    });
    const exported = nm.stdout
      .split('\n')
      .filter((l) => / T /.test(l))
      .map((l) => l.split(' ').pop())
      .sort();
    expect(exported).toEqual([
      'pc_cancel',
      'pc_close',
      'pc_last_error',
      'pc_open',
      'pc_open_error',
      'pc_submit_order',
      'pc_version',
      'pc_wait_result',
    ]);
  });

  it("the library's JSON scanner passes its C tests", () => {
    buildNative();
    const r = run(path.join(LINUX_BUILD, 'json_test'), []);
    expect(r.stdout).toMatch(/^19 passed, 0 failed$/m);
    expect(r.status).toBe(0);
  });
});
