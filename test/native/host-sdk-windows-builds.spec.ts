/**
 * The Windows builds of the host-sdk parts, 64- and 32-bit: `make -C native sdk-windows` builds the fake
 * host SDK DLLs and the sdk bridges with MinGW-w64 and checks them (scripts/check-sdk-exports.sh: width,
 * plain export names, nothing to ship beside them). The 32-bit ones cannot run on this machine's Wine, so
 * this is what proves them; the check itself is shown to refuse a 32-bit __stdcall DLL built without
 * --kill-at (decorated names, GetCurrentOrder@12) and a DLL of the wrong width under an x86 name.
 * Skipped without MinGW-w64 on a developer's machine, a failure under CI=true.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireSystem, systemPrerequisites } from '../support/prerequisites';
import { NATIVE_DIR } from './support/native-build';
import { makeSdk, WIN_BUILD } from './support/sdk-build';

jest.setTimeout(120_000);

const mingw = systemPrerequisites([
  requireSystem(
    'MinGW-w64 cross compilers (x86_64 and i686)',
    () =>
      ['x86_64-w64-mingw32-gcc', 'i686-w64-mingw32-gcc'].every(
        (cc) => spawnSync(cc, ['--version']).status === 0,
      ) || 'x86_64-w64-mingw32-gcc / i686-w64-mingw32-gcc not found',
    '`apt-get install -y gcc-mingw-w64-x86-64 gcc-mingw-w64-i686`',
  ),
]);

const check = (dir: string) =>
  spawnSync('sh', [path.join(NATIVE_DIR, 'scripts', 'check-sdk-exports.sh'), dir], { encoding: 'utf8' });

mingw.describe('host-sdk Windows builds', () => {
  it('builds the fake SDK DLLs and the bridges for x64 and x86, each of its width, names plain', () => {
    const r = makeSdk('sdk-windows');
    expect(r.out).toContain('fakesdk-x86.dll (pei-i386): imports KERNEL32.dll msvcrt.dll');
    expect(r.out).toContain('fakesdk-x64.dll (pei-x86-64): imports KERNEL32.dll msvcrt.dll');
    expect(r.out).toContain('sdk-bridge-x86.exe (pei-i386): imports KERNEL32.dll WS2_32.dll msvcrt.dll');
    expect(r.out).toContain('sdk-bridge-x64.exe (pei-x86-64): imports KERNEL32.dll WS2_32.dll msvcrt.dll');
    expect(r.status).toBe(0);
  });

  it('the check refuses decorated __stdcall names and a DLL of the wrong width', () => {
    expect(makeSdk('sdk-windows').status).toBe(0);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pc-sdk-exports-'));
    try {
      for (const f of ['fakesdk-x64.dll', 'sdk-bridge-x64.exe', 'sdk-bridge-x86.exe'])
        copyFileSync(path.join(WIN_BUILD, f), path.join(dir, f));
      const cc = spawnSync(
        'i686-w64-mingw32-gcc',
        [
          '-std=c99',
          '-shared',
          '-static-libgcc',
          '-o',
          path.join(dir, 'fakesdk-x86.dll'),
          'fakesdk/fake_host_sdk.c',
        ],
        { cwd: NATIVE_DIR, encoding: 'utf8' },
      );
      expect(cc.stderr).toBe('');
      const decorated = check(dir);
      expect(decorated.status).toBe(1);
      expect(decorated.stderr).toContain('fakesdk-x86.dll is wrong:');
      expect(decorated.stderr).toContain('GetCurrentOrder@12');

      copyFileSync(path.join(WIN_BUILD, 'fakesdk-x64.dll'), path.join(dir, 'fakesdk-x86.dll'));
      const wide = check(dir);
      expect(wide.status).toBe(1);
      expect(wide.stderr).toContain('is pei-x86-64; fakesdk-x86.dll must be pei-i386');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
