/**
 * The x64 sdk bridge and the fake host SDK's x64 DLL, both built with MinGW-w64, under Debian's wine64
 * (a throwaway prefix), driven by the host-sdk adapter on Linux over loopback (Wine's sockets are the
 * host's): the same scenarios as with koffi and the native bridge, with the DLL's __stdcall functions and
 * Windows paths (Z:). The 32-bit builds cannot run here (this Wine runs 64-bit programs only); they are
 * built and checked in host-sdk-windows-builds.spec.ts. Skipped without wine64 or MinGW-w64 on a developer's
 * machine, a failure under CI=true.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BridgeLauncher } from '../../src/adapters/host-sdk/sdk-bridge';
import { systemPrerequisites, WINE64 } from '../support/prerequisites';
import { WinePrefix, winPath } from '../windows/wine';
import { SystemClock } from '../../src/protocol/clock';
import { ManifestError } from '../../src/protocol/errors';
import { createHostSdkAdapter } from '../../src/adapters/host-sdk/host-sdk.adapter';
import { describeHostSdkScenarios, hostSdkManifest } from './support/host-sdk-scenarios';
import { FakeRegister, makeSdk, WIN_BUILD } from './support/sdk-build';

jest.setTimeout(180_000);

const gate = systemPrerequisites([
  'wine64',
  {
    what: 'the Windows builds of the fake host SDK and the sdk bridge (make -C native sdk-windows: MinGW-w64)',
    check: () => {
      const r = makeSdk('sdk-windows');
      return r.status === 0 || `make -C native sdk-windows failed: ${r.out.trim().split('\n').pop()}`;
    },
    install: '`apt-get install -y gcc-mingw-w64-x86-64 gcc-mingw-w64-i686`',
  },
]);

gate.describe('host-sdk through sdk-bridge-x64.exe under Wine', () => {
  let tmp: string;
  let prefix: WinePrefix;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'pc-sdk-wine-'));
    prefix = await WinePrefix.create(path.join(tmp, 'wineprefix'), {});
  });
  afterAll(async () => {
    await prefix?.remove();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  /** The bridge as a Windows program: its environment carries the prefix, paths are Z: paths. */
  const launcher = (register: FakeRegister): BridgeLauncher => ({
    spawn: (program, env) =>
      spawn(WINE64, [winPath(program)], {
        env: { ...env, ...prefix.env, FAKESDK_DIR: winPath(register.dir) },
        stdio: 'ignore',
      }),
    libraryPath: (p) => winPath(p),
  });

  describeHostSdkScenarios('sdk-bridge-x64.exe, fakesdk-x64.dll (stdcall)', () => ({
    library: path.join(WIN_BUILD, 'fakesdk-x64.dll'),
    options: (library, extra) =>
      `{ library: "${library}", convention: stdcall, bridge: x64, bridgeProgram: "${path.join(WIN_BUILD, 'sdk-bridge-x64.exe')}"${extra ? `, ${extra}` : ''} }`,
    launcher,
  }));

  it('the x64 bridge given the 32-bit DLL says ERROR_BAD_EXE_FORMAT and which bridge to use', async () => {
    const register = await FakeRegister.create(tmp);
    const adapter = createHostSdkAdapter(
      hostSdkManifest(
        `{ library: "${path.join(WIN_BUILD, 'fakesdk-x86.dll')}", convention: stdcall, bridge: x64, bridgeProgram: "${path.join(WIN_BUILD, 'sdk-bridge-x64.exe')}" }`,
      ),
      { baseDir: tmp, stateDir: path.join(tmp, 'state'), clock: new SystemClock() },
    );
    (adapter as unknown as { deps: { launcher?: BridgeLauncher } }).deps.launcher = launcher(register);
    const e = await adapter.probe().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ManifestError);
    expect(e).toMatchObject({ subject: 'options.library', code: 'host_sdk.no_library' });
    expect((e as Error).message).toContain('fakesdk-x86.dll cannot be loaded by the');
    expect((e as Error).message).toContain('Windows error 193 (ERROR_BAD_EXE_FORMAT');
    expect((e as Error).message).toContain('bridge: x86 or x64');
  });
});
