/**
 * The host-sdk adapter against the fake host SDK, both directions, as one set of scenarios run for each
 * way the library is loaded: koffi in the test's process, the sdk bridge natively, the x64 bridge under
 * Wine. `setup` makes the manifest's options for one way; the register is played through the fake SDK's
 * state files (sdk-build.ts), so what is asserted is what the SDK was called with and answered.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SystemClock } from '../../../src/protocol/clock';
import { ManifestError, WriteBackError } from '../../../src/protocol/errors';
import type { AdapterEnv } from '../../../src/adapters/adapter-env';
import { CapturedOrder, OrderResult, RejectedInput } from '../../../src/adapters/host-adapter';
import {
  HostSdkAdapter,
  HostSdkManifest,
  createHostSdkAdapter,
} from '../../../src/adapters/host-sdk/host-sdk.adapter';
import type { BridgeLauncher } from '../../../src/adapters/host-sdk/sdk-bridge';
import { parseManifest } from '../../../src/adapters/manifest';
import { FakeRegister, SDK_STATUS, until } from './sdk-build';

export interface SdkWay {
  /** The options section (YAML flow mapping) for a library path. */
  options(library: string, extra?: string): string;
  /** The library to load, and the one that does not exist. */
  library: string;
  launcher?: (register: FakeRegister) => BridgeLauncher;
  /** Points the fake SDK at the register's folder, when it is loaded in this process (FakeSdk_SetDir). */
  useRegister?: (register: FakeRegister) => void;
}

export const GET = 'int GetCurrentOrder(char orderNo[64], int orderNoLen, int64_t *amountFen)';
export const SET = 'int SetPayResult(const char *orderNo, int status, const char *paymentId)';

export function hostSdkManifest(options: string, parse?: string, writeBack?: string): HostSdkManifest {
  return parseManifest(
    `id: sdk-test
name: fake host SDK
adapter: host-sdk
register: R1
options: ${options}
parse: ${parse ?? `{ function: "${GET}", args: { orderNoLen: 64 }, ready: 0, orderId: orderNo, amount: amountFen, currency: CNY }`}
writeBack: ${writeBack ?? `{ function: "${SET}", args: { orderNo: $orderId, status: $status, paymentId: $paymentId }, status: { paid: 1, failed: 2, canceled: 3 }, ok: 0 }`}
dispatch: { mode: broadcast }
`,
    'sdk-test.yaml',
  ) as unknown as HostSdkManifest;
}

export function paid(
  orderId: string,
  status: OrderResult['status'] = 'paid',
  paymentId = 'pay_1',
): OrderResult {
  return {
    orderId,
    registerId: 'R1',
    status,
    amount: { value: 1250, currency: 'CNY' },
    payment: status === 'paid' ? ({ id: paymentId } as OrderResult['payment']) : undefined,
    decidedAt: '2026-01-01T00:00:00.000Z',
  };
}

export function describeHostSdkScenarios(name: string, way: () => SdkWay): void {
  describe(`host-sdk adapter on the fake host SDK: ${name}`, () => {
    let tmp: string;
    let register: FakeRegister;
    let orders: CapturedOrder[];
    let rejects: RejectedInput[];
    let errors: Error[];
    const adapters: HostSdkAdapter[] = [];
    const ctx = () => ({
      onOrder: async (o: CapturedOrder) => void orders.push(o),
      onReject: (r: RejectedInput) => void rejects.push(r),
    });
    const make = (manifest: HostSdkManifest, clock = new SystemClock()) => {
      const w = way();
      const env: AdapterEnv = {
        baseDir: tmp,
        stateDir: path.join(tmp, 'state'),
        clock,
        onError: (e) => errors.push(e),
      };
      const a = createHostSdkAdapter(manifest, env);
      if (w.launcher)
        (a as unknown as { deps: { launcher?: BridgeLauncher } }).deps.launcher = w.launcher(register);
      adapters.push(a);
      return a;
    };
    const adapter = (extra?: string) => make(hostSdkManifest(way().options(way().library, extra)));

    beforeEach(async () => {
      tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'pc-host-sdk-'));
      register = await FakeRegister.create(tmp);
      way().useRegister?.(register);
      orders = [];
      rejects = [];
      errors = [];
    });
    afterEach(async () => {
      for (const a of adapters.splice(0)) await a.stop();
      await fs.rm(tmp, { recursive: true, force: true });
    });

    it("hands the register's current order over once, in exact minor units (64-bit), however often it is polled", async () => {
      const a = adapter('pollMs: 50');
      await a.start(ctx());
      await register.ring('P-1', 1234567890123n);
      await until('the order', () => orders.length > 0, 20_000);
      const before = (await register.calls()).get;
      await until('three more polls', async () => (await register.calls()).get >= before + 3, 20_000);
      expect(orders).toEqual([
        {
          orderId: 'P-1',
          registerId: 'R1',
          amount: { value: 1234567890123, currency: 'CNY' },
          source: 'host-sdk',
        },
      ]);
      expect(a.stats()).toMatchObject({ orders: 1, rejected: 0 });
      await register.ring('P-2', 1250);
      await until('the next order', () => orders.length > 1, 20_000);
      expect(orders.map((o) => [o.orderId, o.amount.value])).toEqual([
        ['P-1', 1234567890123],
        ['P-2', 1250],
      ]);
    });

    it('tells the register each result once: the SDK records it once, a repeat does not call it again', async () => {
      const a = adapter();
      await a.writeBack(paid('P-3', 'paid', 'pay_42'));
      await a.writeBack(paid('P-3', 'paid', 'pay_42'));
      await a.writeBack(paid('P-4', 'failed'));
      expect(await register.results()).toEqual([
        ['P-3', SDK_STATUS.paid, 'pay_42'],
        ['P-4', SDK_STATUS.failed, ''],
      ]);
      expect((await register.calls()).set).toBe(2);
      // After a restart of the plugin (a new adapter on the same data folder): still not told again.
      await a.stop();
      await adapter().writeBack(paid('P-3', 'paid', 'pay_42'));
      expect((await register.calls()).set).toBe(2);
      expect(a.stats()).toMatchObject({ writeBacks: 2 });
    });

    it('after a restart, does not hand over again the order the register still shows', async () => {
      const first = adapter('pollMs: 50');
      await first.start(ctx());
      await register.ring('P-5', 500);
      await until('the order', () => orders.length === 1, 20_000);
      await first.stop();
      const second = adapter('pollMs: 50');
      await second.start(ctx());
      await until('polls of the new adapter', () => second.stats().polls >= 3, 20_000);
      expect(orders.map((o) => o.orderId)).toEqual(['P-5']);
    });

    it('rejects bad SDK answers, each counted once while the register keeps showing it, and goes on', async () => {
      const a = adapter('pollMs: 50');
      await a.start(ctx());
      await register.ring('', 100);
      await until('a reject', () => rejects.length === 1, 20_000);
      await register.ring('N-1', -500);
      await until('a second reject', () => rejects.length === 2, 20_000);
      await register.ring('Z-1', 0);
      await until('a third reject', () => rejects.length === 3, 20_000);
      const polls = a.stats().polls;
      await until('more polls', () => a.stats().polls >= polls + 3, 20_000);
      expect(rejects.map((r) => r.code)).toEqual([
        'host_sdk.empty_order_id',
        'host_sdk.amount_not_positive',
        'host_sdk.amount_not_positive',
      ]);
      expect(rejects[1].message).toContain('amountFen = -500 for order N-1');
      expect(a.stats()).toMatchObject({ rejected: 3, orders: 0 });
      await register.ring('OK-1', 100);
      await until('the good order', () => orders.length === 1, 20_000);
      expect(orders[0]).toMatchObject({ orderId: 'OK-1', amount: { value: 100, currency: 'CNY' } });
    });

    it('a register refusing the result is a WriteBackError with its code; the retry gets through once', async () => {
      const a = adapter();
      await register.refuseWith(-7);
      const e = await a.writeBack(paid('P-6')).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(WriteBackError);
      expect((e as Error).message).toContain(
        'SetPayResult answered -7 (not writeBack.ok 0) for order P-6 (paid)',
      );
      expect(await register.results()).toEqual([]);
      await register.refuseWith(0);
      await a.writeBack(paid('P-6'));
      await a.writeBack(paid('P-6'));
      expect(await register.results()).toEqual([['P-6', SDK_STATUS.paid, 'pay_1']]);
      expect(a.stats()).toMatchObject({ writeBacks: 1, writeBackRefused: 1 });
    });

    it('probe: a missing library names options.library and the path', async () => {
      const missing = path.join(tmp, 'no-such-sdk.dll');
      const e = await make(hostSdkManifest(way().options(missing)))
        .probe()
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ManifestError);
      expect(e).toMatchObject({ subject: 'options.library' });
      expect((e as Error).message).toContain(`options.library: ${missing}`);
    });

    it('probe: a missing symbol names the field, the library and the symbol', async () => {
      const m = hostSdkManifest(
        way().options(way().library),
        `{ function: "int GetCurrentOrderEx(char orderNo[64], int orderNoLen, int64_t *amountFen)", args: { orderNoLen: 64 }, ready: 0, orderId: orderNo, amount: amountFen, currency: CNY }`,
      );
      const e = await make(m)
        .probe()
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ManifestError);
      expect(e).toMatchObject({ subject: 'parse.function' });
      expect((e as Error).message).toMatch(/^parse\.function: .*fakesdk.*GetCurrentOrderEx/);
    });

    it('probe: a working setup loads and lets go without calling the SDK', async () => {
      await adapter().probe();
      expect(await register.calls()).toEqual({ get: 0, set: 0 });
      expect(orders).toEqual([]);
    });

    it('a slow SDK call does not block the event loop; one past callTimeoutMs fails the write-back', async () => {
      const a = adapter('callTimeoutMs: 300');
      await a.writeBack(paid('P-0')); // the library is loaded (a bridge started) before the SDK turns slow
      await register.slow(1000);
      const started = Date.now();
      let ticks = 0;
      const t = setInterval(() => ticks++, 20);
      const e = await a.writeBack(paid('P-7')).catch((x: unknown) => x);
      clearInterval(t);
      expect(e).toBeInstanceOf(WriteBackError);
      expect((e as Error).message).toContain('did not return within 300 ms');
      expect(Date.now() - started).toBeLessThan(900);
      expect(ticks).toBeGreaterThanOrEqual(5);
      expect(a.stats()).toMatchObject({ callErrors: 1 });
    });
  });
}
