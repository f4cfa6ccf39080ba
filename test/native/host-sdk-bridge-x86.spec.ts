/**
 * The bridge's 32-bit calling path run for real: the bridge and the fake host SDK built for 32-bit x86
 * with Debian's i686 cross compiler and run on Linux with that C library's loader, both conventions
 * (__cdecl, and __stdcall as 32-bit Windows SDKs use, where the called function pops its arguments). The
 * same scenarios as with koffi: a 64-bit amount crosses as two stack slots, results out once. This Wine
 * runs 64-bit programs only, so this is where the x86 call code (the same source as sdk-bridge-x86.exe)
 * runs. Skipped without the i686 cross compiler on a developer's machine, a failure under CI=true.
 *
 * Some kernels run no 32-bit x86 programs at all (built without IA32 emulation: exec fails with ENOEXEC,
 * as on the firecracker VMs seen here on 2026-11-29). There the same binaries run under qemu-i386 (Debian's
 * qemu-user), which executes the i686 instructions itself: the calling conventions are still real.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import type { BridgeLauncher } from '../../src/adapters/host-sdk/sdk-bridge';
import { requireSystem, systemPrerequisites } from '../support/prerequisites';
import { describeHostSdkScenarios } from './support/host-sdk-scenarios';
import { NATIVE_DIR } from './support/native-build';
import { FakeRegister, makeSdk } from './support/sdk-build';

jest.setTimeout(60_000);

const LOADER = '/usr/i686-linux-gnu/lib/ld-linux.so.2';
const BUILD = path.join(NATIVE_DIR, 'build', 'linux-x86');
/** Whether this kernel runs 32-bit x86 programs itself (else qemu-i386 runs them). Where it does not, exec
 * fails with ENOEXEC and libuv hands the file to /bin/sh, which fails: only a real run prints the version. */
const KERNEL_RUNS_I386 = /ld\.so|version/i.test(String(spawnSync(LOADER, ['--version']).stdout ?? ''));

const gate = systemPrerequisites([
  requireSystem(
    'the i686 cross compiler and its C library (32-bit x86 programs on Linux)',
    () => {
      if (spawnSync('i686-linux-gnu-gcc', ['--version']).status !== 0) return 'i686-linux-gnu-gcc not found';
      const r = makeSdk('sdk-x86-linux');
      return r.status === 0 || `make -C native sdk-x86-linux failed: ${r.out.trim().split('\n').pop()}`;
    },
    '`apt-get install -y --no-install-recommends gcc-i686-linux-gnu libc6-dev-i386-cross libc6-i386-cross`',
  ),
  requireSystem(
    'a way to run 32-bit x86 programs (the kernel, or qemu-i386 where the kernel has no IA32 emulation)',
    () =>
      KERNEL_RUNS_I386 ||
      spawnSync('qemu-i386', ['-version']).status === 0 ||
      'this kernel runs no 32-bit programs and qemu-i386 is not installed',
    '`apt-get install -y --no-install-recommends qemu-user`',
  ),
]);

/** The 32-bit bridge through the i686 loader, with the register's folder in its environment. */
function launcher(register: FakeRegister): BridgeLauncher {
  return {
    spawn: (program, env) =>
      KERNEL_RUNS_I386
        ? spawn(LOADER, ['--library-path', path.dirname(LOADER), program], {
            env: { ...env, FAKESDK_DIR: register.dir },
            stdio: 'ignore',
          })
        : spawn('qemu-i386', ['-L', path.dirname(path.dirname(LOADER)), program], {
            env: { ...env, FAKESDK_DIR: register.dir },
            stdio: 'ignore',
          }),
    libraryPath: (p) => p,
  };
}

gate.describe('host-sdk through the 32-bit sdk bridge (i686, on Linux)', () => {
  for (const [convention, library] of [
    ['cdecl', 'libfakesdk.so'],
    ['stdcall', 'libfakesdk-stdcall.so'],
  ] as const) {
    describeHostSdkScenarios(`32-bit bridge, ${convention}`, () => ({
      library: path.join(BUILD, library),
      options: (lib, extra) =>
        `{ library: "${lib}", convention: ${convention}, bridge: x86, bridgeProgram: "${path.join(BUILD, 'sdk-bridge')}"${extra ? `, ${extra}` : ''} }`,
      launcher,
    }));
  }
});
