/**
 * The host-sdk adapter through the sdk bridge (native/bridge/sdk_bridge.c) built natively with gcc: the
 * same scenarios as with koffi (the fake host SDK .so, both directions, probe errors), plus what only a
 * bridge has: one that dies is started again at the next call and counted, one stuck in a hung SDK call
 * is killed and replaced, and another local program connecting first is not taken for the bridge.
 * Skipped without gcc/make on a developer's machine, a failure under CI=true.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SystemClock } from '../../src/protocol/clock';
import { CapturedOrder } from '../../src/adapters/host-adapter';
import { createHostSdkAdapter, HostSdkAdapter } from '../../src/adapters/host-sdk/host-sdk.adapter';
import type { BridgeLauncher } from '../../src/adapters/host-sdk/sdk-bridge';
import { requireSystem, systemPrerequisites } from '../support/prerequisites';
import { nativeGate } from './support/native-build';
import { describeHostSdkScenarios, hostSdkManifest, paid } from './support/host-sdk-scenarios';
import { BRIDGE_LINUX, FAKE_SDK_SO, FakeRegister, makeSdk, until } from './support/sdk-build';

jest.setTimeout(60_000);

const built = systemPrerequisites([
  requireSystem(
    'the fake host SDK and sdk bridge (make -C native sdk)',
    () => {
      if (!nativeGate.ok) return nativeGate.missing.join('; ');
      const r = makeSdk('sdk');
      return r.status === 0 || `make -C native sdk failed: ${r.out.trim().split('\n').pop()}`;
    },
    '`apt-get install -y gcc make util-linux`',
  ),
]);

/** Starts the bridge as the adapter does, with the register's folder in its environment. */
function launcher(register: FakeRegister): BridgeLauncher {
  return {
    spawn: (program, env) =>
      spawn(program, [], { env: { ...env, FAKESDK_DIR: register.dir }, stdio: 'ignore' }),
    libraryPath: (p) => p,
  };
}

const options = (library: string, extra?: string) =>
  `{ library: "${library}", convention: cdecl, bridge: x64, bridgeProgram: "${BRIDGE_LINUX}"${extra ? `, ${extra}` : ''} }`;

built.describe('host-sdk through the sdk bridge (Linux build)', () => {
  describeHostSdkScenarios('sdk-bridge, libfakesdk.so', () => ({ library: FAKE_SDK_SO, options, launcher }));

  describe('the bridge process', () => {
    let tmp: string;
    let register: FakeRegister;
    let adapter: HostSdkAdapter;
    let orders: CapturedOrder[];
    const make = (extra?: string) => {
      const a = createHostSdkAdapter(hostSdkManifest(options(FAKE_SDK_SO, extra)), {
        baseDir: tmp,
        stateDir: path.join(tmp, 'state'),
        clock: new SystemClock(),
      });
      (a as unknown as { deps: { launcher?: BridgeLauncher } }).deps.launcher = launcher(register);
      return a;
    };

    beforeEach(async () => {
      tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'pc-sdk-bridge-'));
      register = await FakeRegister.create(tmp);
      orders = [];
    });
    afterEach(async () => {
      await adapter?.stop();
      await fs.rm(tmp, { recursive: true, force: true });
    });

    it('a bridge that dies is started again at the next call, counted, and orders keep coming', async () => {
      adapter = make('pollMs: 50');
      await adapter.start({ onOrder: async (o) => void orders.push(o), onReject: () => undefined });
      await register.ring('B-1', 100);
      await until('the first order', () => orders.length === 1, 20_000);
      const pid = adapter.stats().bridgePid as number;
      expect(pid).toEqual(expect.any(Number));
      process.kill(pid, 'SIGKILL');
      await register.ring('B-2', 200);
      await until('the order after the restart', () => orders.length === 2, 20_000);
      expect(adapter.stats()).toMatchObject({ bridgeRestarts: 1, bridgeDeaths: 1 });
      expect(adapter.stats().bridgePid).not.toBe(pid);
      expect(orders.map((o) => [o.orderId, o.amount.value])).toEqual([
        ['B-1', 100],
        ['B-2', 200],
      ]);
    });

    it('a call stuck in the SDK fails at callTimeoutMs, the bridge is killed, and the retry works', async () => {
      adapter = make('callTimeoutMs: 300');
      await register.slow(5000);
      await expect(adapter.writeBack(paid('B-3'))).rejects.toThrow('did not return within 300 ms');
      await register.slow(0);
      await adapter.writeBack(paid('B-3'));
      expect(await register.results()).toEqual([['B-3', 1, 'pay_1']]);
      expect(adapter.stats()).toMatchObject({ bridgeRestarts: 1, writeBacks: 1 });
    });

    it('stop() ends the bridge process', async () => {
      adapter = make();
      await adapter.start({ onOrder: async () => undefined, onReject: () => undefined });
      await until('a bridge', () => typeof adapter.stats().bridgePid === 'number', 20_000);
      const pid = adapter.stats().bridgePid as number;
      await adapter.stop();
      await until('the bridge to exit', () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      });
    });
  });
});
