/**
 * The wallet query/cancel schedule (DESIGN.md "Payment results", "Test payment codes"), driven on a
 * FakeClock: the services are built directly on a temporary SQLite file, the clock is advanced in small
 * steps and the sweeper ticked after each, and every provider call is recorded with the fake time it
 * happened at.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../protocol/clock';
import { Payment } from '../protocol/states';
import { EventsService } from './events.service';
import { PaymentSweeper } from './payment-sweeper';
import { PaymentsService, PaymentTiming, WALLET_TIMING } from './payments.service';
import { RefundsService } from './refunds.service';
import {
  CancelResult,
  ChargeRequest,
  ChargeResult,
  PaymentProvider,
  ProviderUnknownError,
  ProviderRejectedError,
  QueryResult,
  RefundQueryResult,
  RefundResult,
} from './providers/provider';
import { SimulatorProvider } from './providers/simulator.provider';
import { loadServerKeys } from './server-crypto';
import { openServerDb, ServerDb } from './storage/open';
import { Device, StoresService } from './stores.service';

/** Fake milliseconds the clock moves between two sweeper ticks. */
const STEP = 10;
const LEASE_MS = 30_000;

/** An 18-digit Alipay-like test code with the given ending. */
const code = (ending: string) => `2812345678901234${ending}`;

type Op = 'charge' | 'query' | 'cancel' | 'refund' | 'queryRefund';
interface Call {
  op: Op;
  id: string;
  at: number;
  result?: string;
}

/**
 * Wraps a provider, recording every call (with the fake time it started) and letting a test change
 * what a query does (fail, take time) without touching the simulator.
 */
class RecordingProvider implements PaymentProvider {
  readonly name = 'recording';
  readonly calls: Call[] = [];

  constructor(
    private readonly inner: PaymentProvider,
    private readonly clock: FakeClock,
    private readonly hooks: {
      /** Replaces the query; `inner` is the real one. */
      query?: (id: string, inner: () => Promise<QueryResult>) => Promise<QueryResult>;
      /** Replaces the cancel; `inner` is the real one. */
      cancel?: (id: string, inner: () => Promise<CancelResult>) => Promise<CancelResult>;
      /** Replaces the refund; `inner` is the real one. */
      refund?: (id: string, inner: () => Promise<RefundResult>) => Promise<RefundResult>;
    } = {},
  ) {}

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    const call: Call = { op: 'charge', id: req.outTradeNo, at: this.clock.now() };
    this.calls.push(call);
    try {
      const r = await this.inner.charge(req);
      call.result = r.outcome;
      return r;
    } catch (e) {
      call.result = `throws ${(e as Error).name}`;
      throw e;
    }
  }

  async query(id: string): Promise<QueryResult> {
    const call: Call = { op: 'query', id, at: this.clock.now() };
    this.calls.push(call);
    try {
      const inner = () => this.inner.query(id);
      const r = await (this.hooks.query ? this.hooks.query(id, inner) : inner());
      call.result = r.state;
      return r;
    } catch (e) {
      call.result = `throws ${(e as Error).name}`;
      throw e;
    }
  }

  async cancel(id: string): Promise<CancelResult> {
    const call: Call = { op: 'cancel', id, at: this.clock.now() };
    this.calls.push(call);
    try {
      const inner = () => this.inner.cancel(id);
      const r = await (this.hooks.cancel ? this.hooks.cancel(id, inner) : inner());
      call.result = r.reversed ? 'reversed' : 'closed';
      return r;
    } catch (e) {
      call.result = `throws ${(e as Error).name}`;
      throw e;
    }
  }

  async refund(
    id: string,
    refundNo: string,
    amount: { value: number; currency: string },
  ): Promise<RefundResult> {
    const call: Call = { op: 'refund', id, at: this.clock.now() };
    this.calls.push(call);
    try {
      const inner = () => this.inner.refund(id, refundNo, amount);
      const r = await (this.hooks.refund ? this.hooks.refund(id, inner) : inner());
      call.result = 'refunded';
      return r;
    } catch (e) {
      call.result = `throws ${(e as Error).name}`;
      throw e;
    }
  }

  async queryRefund(id: string, refundNo: string): Promise<RefundQueryResult> {
    const call: Call = { op: 'queryRefund', id, at: this.clock.now() };
    this.calls.push(call);
    const r = await this.inner.queryRefund(id, refundNo);
    call.result = r.state;
    return r;
  }

  of(id: string, op?: Op): Call[] {
    return this.calls.filter((c) => c.id === id && (op === undefined || c.op === op));
  }
}

/** A provider that keeps the customer confirming, then reports at the cancel that they had paid. */
class PaidAtCancelProvider implements PaymentProvider {
  readonly name = 'paid-at-cancel';
  async charge(req: ChargeRequest): Promise<ChargeResult> {
    return { outcome: 'user_paying', tradeNo: `T${req.outTradeNo}`, brand: 'alipay' };
  }
  async query(): Promise<QueryResult> {
    return { state: 'user_paying' };
  }
  async cancel(): Promise<CancelResult> {
    return { reversed: true };
  }
  async refund(_id: string, refundNo: string): Promise<RefundResult> {
    return { refundNo };
  }
  async queryRefund(): Promise<RefundQueryResult> {
    return { state: 'succeeded' };
  }
}

interface Env {
  db: ServerDb;
  path: string;
  clock: FakeClock;
  sim: SimulatorProvider;
  provider: RecordingProvider;
  events: EventsService;
  payments: PaymentsService;
  refunds: RefundsService;
  sweeper: PaymentSweeper;
  device: Device;
  timing: PaymentTiming;
}

let dir: string;
let fileNo = 0;
const opened: ServerDb[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-sweeper-'));
});

afterAll(async () => {
  for (const db of opened) await db.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

async function openDb(path: string): Promise<ServerDb> {
  const db = await openServerDb({ kind: 'sqlite', path });
  opened.push(db);
  return db;
}

/** The services of one server process, on `db` (a fresh database unless given). */
async function services(
  opts: {
    db?: ServerDb;
    path?: string;
    clock?: FakeClock;
    timing?: PaymentTiming;
    device?: Device;
    hooks?: ConstructorParameters<typeof RecordingProvider>[2];
    provider?: (sim: SimulatorProvider, clock: FakeClock) => PaymentProvider;
  } = {},
): Promise<Env> {
  const path = opts.path ?? join(dir, `s${++fileNo}.db`);
  const db = opts.db ?? (await openDb(path));
  const clock = opts.clock ?? new FakeClock();
  const timing = opts.timing ?? WALLET_TIMING;
  const sim = new SimulatorProvider({ db, clock, speed: 1, sleep: async () => undefined });
  const recording = new RecordingProvider(sim, clock, opts.hooks);
  const provider = opts.provider ? opts.provider(sim, clock) : recording;
  const keys = await loadServerKeys(db);
  const events = new EventsService(db, db, keys.privateKey, db.kind);
  const payments = new PaymentsService(db, clock, provider, events, timing);
  const refunds = new RefundsService(db, clock, provider, events, timing);
  const sweeper = new PaymentSweeper(
    db,
    clock,
    provider,
    payments,
    timing,
    { tickMs: 250, leaseMs: LEASE_MS, batch: 50 },
    refunds,
  );
  let device = opts.device;
  if (!device) {
    const stores = new StoresService(db, clock, keys.publicKey);
    const store = await stores.createStore('Sweeper test shop');
    const { code: regCode } = await stores.createRegistrationCode(store.id, 'terminal');
    const reg = await stores.register({ code: regCode, deviceId: 'T1', role: 'terminal', name: 'Till 1' });
    device = (await stores.authenticate(reg.token))!;
  }
  return { db, path, clock, sim, provider: recording, events, payments, refunds, sweeper, device, timing };
}

let orderNo = 0;
async function pay(env: Env, ending: string): Promise<{ payment: Payment; createdAt: number }> {
  const createdAt = env.clock.now();
  const n = ++orderNo;
  const r = await env.payments.create(env.device, `key-${n}`, {
    orderId: `order-${n}`,
    registerId: 'R1',
    amount: { value: 1250, currency: 'CNY' },
    method: { type: 'wallet_code', code: code(ending) },
  });
  return { payment: r.body, createdAt };
}

/** Advances the clock STEP at a time for `ms`, ticking every sweeper (at once) after each step. */
async function run(env: Env, ms: number, sweepers: PaymentSweeper[] = [env.sweeper]): Promise<void> {
  for (let t = 0; t < ms; t += STEP) {
    env.clock.advance(STEP);
    await Promise.all(sweepers.map((s) => s.tick()));
  }
}

/** Runs until the payment is no longer pending (or `maxMs` passes); returns it. */
async function runUntilFinal(env: Env, id: string, maxMs = 60_000): Promise<Payment> {
  for (let t = 0; t < maxMs; t += STEP) {
    env.clock.advance(STEP);
    await env.sweeper.tick();
    const p = await env.payments.load(id);
    if (p.status !== 'pending') return p;
  }
  return env.payments.load(id);
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]);
}

async function statusEvents(env: Env, id: string): Promise<string[]> {
  return (await env.events.since(env.device.storeId, 0))
    .filter((e) => e.payment.id === id)
    .map((e) => e.payment.status);
}

describe('PaymentSweeper: the wallet query/cancel schedule (FakeClock, SQLite)', () => {
  afterEach(() => jest.restoreAllMocks());

  it('…10: pending after create; first query within 5 s; then every 3-5 s; succeeded once the customer confirms at 8 s', async () => {
    const env = await services();
    const { payment, createdAt } = await pay(env, '10');
    expect(payment.status).toBe('pending');
    expect(env.provider.of(payment.id, 'charge')).toHaveLength(1);
    expect(env.provider.of(payment.id, 'query')).toHaveLength(0);

    const done = await runUntilFinal(env, payment.id);
    expect(done).toMatchObject({ status: 'succeeded', method: { brand: 'alipay' } });
    expect(done.failure).toBeUndefined();

    const queries = env.provider.of(payment.id, 'query');
    const times = queries.map((q) => q.at - createdAt);
    expect(times[0]).toBeGreaterThan(0);
    expect(times[0]).toBeLessThanOrEqual(5000);
    for (const g of gaps(times)) {
      expect(g).toBeGreaterThanOrEqual(3000);
      expect(g).toBeLessThanOrEqual(5000 + STEP);
    }
    // user_paying until the customer confirms at 8 s; the first query after that records the success.
    expect(queries.slice(0, -1).every((q) => q.result === 'user_paying' && q.at - createdAt < 8000)).toBe(
      true,
    );
    expect(queries[queries.length - 1]).toMatchObject({ result: 'succeeded' });
    expect(times[times.length - 1]).toBeGreaterThanOrEqual(8000);
    expect(new Date(done.updatedAt).getTime() - createdAt).toBe(times[times.length - 1]);

    expect(env.provider.of(payment.id, 'cancel')).toHaveLength(0);
    expect((await env.sim.trade(payment.id))?.charge_calls).toBe(1);
    expect(await statusEvents(env, payment.id)).toEqual(['pending', 'succeeded']);

    // Nothing more happens to a decided payment.
    const before = env.provider.calls.length;
    await run(env, 40_000);
    expect(env.provider.calls.length).toBe(before);
  });

  it.each([
    ['random', undefined],
    ['shortest gaps', 0],
    ['longest gaps', 0.9999],
  ])(
    '…11 (%s): queries every 3-5 s, at the 30 s deadline a cancel, canceled customer_timeout, no query after',
    async (_label, random) => {
      if (random !== undefined) jest.spyOn(Math, 'random').mockReturnValue(random);
      const env = await services();
      const { payment, createdAt } = await pay(env, '11');
      expect(payment.status).toBe('pending');

      await run(env, 29_000);
      expect((await env.payments.load(payment.id)).status).toBe('pending');
      const done = await runUntilFinal(env, payment.id);
      expect(done).toMatchObject({ status: 'canceled', failure: { code: 'customer_timeout' } });
      expect(done.reversed).toBeUndefined();

      const calls = env.provider.of(payment.id).filter((c) => c.op !== 'charge');
      const cancels = calls.filter((c) => c.op === 'cancel');
      expect(cancels).toHaveLength(1);
      expect(cancels[0].result).toBe('closed');
      const cancelAt = cancels[0].at - createdAt;
      expect(cancelAt).toBeGreaterThanOrEqual(30_000);
      expect(cancelAt).toBeLessThanOrEqual(30_000 + STEP);
      // The cancel is the last call.
      expect(calls[calls.length - 1]).toBe(cancels[0]);

      const times = calls.filter((c) => c.op === 'query').map((c) => c.at - createdAt);
      expect(times[0]).toBeLessThanOrEqual(5000);
      const g = gaps(times);
      for (const gap of g) expect(gap).toBeLessThanOrEqual(5000 + STEP);
      // Every gap is at least 3 s, except the last one, which the deadline may cut short.
      for (const gap of g.slice(0, -1)) expect(gap).toBeGreaterThanOrEqual(3000);
      expect(times.filter((t) => t < 30_000).length).toBeGreaterThanOrEqual(5);

      const trade = await env.sim.trade(payment.id);
      expect(trade).toMatchObject({ state: 'closed', charge_calls: 1, cancel_calls: 1 });

      const before = env.provider.calls.length;
      await run(env, 20_000);
      expect(env.provider.calls.length).toBe(before);
      expect(await statusEvents(env, payment.id)).toEqual(['pending', 'canceled']);
    },
  );

  it.each([
    // The provider's own auto-close came first (WeChat Pay revokes at 45 s, we cancel at 40 s; a sweep late
    // under load finds the trade closed): the customer's time was up, the same reason as our cancel gives.
    // Closed after the last query before the deadline, so the check that finds it is the one at the
    // deadline (a query the jitter puts between the close and the deadline would rightly say `closed`).
    ['just before the deadline', 'customer_timeout', 29_000],
    // Closed elsewhere (the merchant's console) while the customer could still confirm.
    ['well before the deadline', 'closed', 5_000],
  ] as const)(
    'the provider closes an unconfirmed trade on its own %s: canceled %s, nothing charged',
    async (_label, code, at) => {
      const env = await services();
      const { payment } = await pay(env, '11');
      await run(env, at);
      if (code === 'customer_timeout') {
        const checks = async () =>
          (
            await env.db.query<{ next_check_at: number; deadline_at: number }>(
              'SELECT next_check_at, deadline_at FROM payments WHERE id = $1',
              [payment.id],
            )
          )[0];
        while ((await checks()).next_check_at < (await checks()).deadline_at) await run(env, STEP);
        expect(env.clock.now()).toBeLessThan(Number((await checks()).deadline_at));
      }
      expect((await env.payments.load(payment.id)).status).toBe('pending');
      await env.db.run(`UPDATE sim_trades SET state = 'closed' WHERE out_trade_no = $1`, [payment.id]);
      const done = await runUntilFinal(env, payment.id);
      expect(done).toMatchObject({ status: 'canceled', failure: { code } });
      expect(env.provider.of(payment.id, 'cancel')).toHaveLength(0);
    },
  );

  it('the customer pays just as the deadline cancel goes out (simulator, slow provider): canceled, reversed', async () => {
    // Deadline at 7 s; the …10 customer confirms at 8 s; every query takes 1.5 s to answer. The query at the
    // 7 s deadline still sees user_paying; by the time the cancel reaches the provider (8.5 s) the
    // customer has paid, so the cancel reverses.
    const env = await services({
      timing: { ...WALLET_TIMING, deadlineMs: 7000 },
      hooks: {
        query: async (_id, inner) => {
          const r = await inner();
          (env.clock as FakeClock).advance(1500);
          return r;
        },
      },
    });
    const { payment, createdAt } = await pay(env, '10');
    const done = await runUntilFinal(env, payment.id);
    expect(done).toMatchObject({ status: 'canceled', reversed: true, failure: { code: 'reversed' } });

    const calls = env.provider.of(payment.id).filter((c) => c.op !== 'charge');
    expect(calls.map((c) => [c.op, c.result])).toEqual([
      ['query', 'user_paying'],
      ['query', 'user_paying'],
      ['cancel', 'reversed'],
    ]);
    expect(calls[1].at - createdAt).toBeGreaterThanOrEqual(7000);
    expect(calls[1].at - createdAt).toBeLessThan(8000);
    expect(calls[2].at - createdAt).toBeGreaterThanOrEqual(8000);
    expect(await env.sim.trade(payment.id)).toMatchObject({ state: 'reversed', charge_calls: 1 });
    expect(await statusEvents(env, payment.id)).toEqual(['pending', 'canceled']);
  });

  it('a provider whose cancel at the deadline reverses a payment: canceled, reversed', async () => {
    const env = await services({ provider: () => new PaidAtCancelProvider() });
    const { payment, createdAt } = await pay(env, '10');
    expect(payment.status).toBe('pending');
    await run(env, 29_000);
    expect((await env.payments.load(payment.id)).status).toBe('pending');
    const done = await runUntilFinal(env, payment.id);
    expect(done).toMatchObject({ status: 'canceled', reversed: true, failure: { code: 'reversed' } });
    expect(new Date(done.updatedAt).getTime() - createdAt).toBeGreaterThanOrEqual(30_000);
    expect(new Date(done.updatedAt).getTime() - createdAt).toBeLessThanOrEqual(30_000 + STEP);
  });

  it('…20 (the charge times out, outcome unknown): stays pending, never charged again, resolved by query', async () => {
    const env = await services();
    const { payment, createdAt } = await pay(env, '20');
    expect(payment.status).toBe('pending');
    expect(env.provider.of(payment.id, 'charge')).toEqual([
      expect.objectContaining({ result: 'throws ProviderUnknownError' }),
    ]);

    const done = await runUntilFinal(env, payment.id);
    expect(done.status).toBe('succeeded');
    const queries = env.provider.of(payment.id, 'query');
    expect(queries).toHaveLength(1);
    expect(queries[0].at - createdAt).toBeLessThanOrEqual(5000);
    expect(queries[0].result).toBe('succeeded');

    await run(env, 40_000);
    expect(env.provider.of(payment.id, 'charge')).toHaveLength(1);
    expect(env.provider.of(payment.id, 'cancel')).toHaveLength(0);
    expect((await env.sim.trade(payment.id))?.charge_calls).toBe(1);
  });

  it('…21 (the charge fails with a 5xx, no trade): query not_found, cancel, failed provider_error', async () => {
    const env = await services();
    const { payment, createdAt } = await pay(env, '21');
    expect(payment.status).toBe('pending');

    const done = await runUntilFinal(env, payment.id);
    expect(done).toMatchObject({ status: 'failed', failure: { code: 'provider_error' } });
    const calls = env.provider.of(payment.id);
    expect(calls.map((c) => [c.op, c.result])).toEqual([
      ['charge', 'throws ProviderUnknownError'],
      ['query', 'not_found'],
      ['cancel', 'closed'],
    ]);
    expect(calls[1].at - createdAt).toBeLessThanOrEqual(5000);
    // The cancel left a closed trade, so a late charge for this payment cannot go through.
    expect(await env.sim.trade(payment.id)).toMatchObject({ state: 'closed', charge_calls: 0 });
    const late = await env.sim.charge({
      outTradeNo: payment.id,
      amount: { value: 1250, currency: 'CNY' },
      code: code('00'),
      storeId: env.device.storeId,
    });
    expect(late).toMatchObject({ outcome: 'declined', code: 'trade_closed' });
    await run(env, 40_000);
    expect(env.provider.of(payment.id)).toHaveLength(3);
  });

  it('a query that throws ProviderUnknownError keeps the payment pending and is retried in 3-5 s', async () => {
    let failures = 2;
    const env = await services({
      hooks: {
        query: async (_id, inner) => {
          if (failures > 0) {
            failures--;
            throw new ProviderUnknownError('timeout: no answer to the query');
          }
          return inner();
        },
      },
    });
    const { payment, createdAt } = await pay(env, '10');
    await run(env, 5000);
    expect(env.provider.of(payment.id, 'query')).toHaveLength(1);
    expect((await env.payments.load(payment.id)).status).toBe('pending');
    expect(env.sweeper.stats.errors).toBe(1);

    const done = await runUntilFinal(env, payment.id);
    expect(done.status).toBe('succeeded');
    const queries = env.provider.of(payment.id, 'query');
    expect(queries.map((q) => q.result)).toEqual([
      'throws ProviderUnknownError',
      'throws ProviderUnknownError',
      'succeeded',
    ]);
    for (const g of gaps(queries.map((q) => q.at - createdAt))) {
      expect(g).toBeGreaterThanOrEqual(3000);
      expect(g).toBeLessThanOrEqual(5000 + STEP);
    }
    expect(env.provider.of(payment.id, 'charge')).toHaveLength(1);
    expect((await env.sim.trade(payment.id))?.charge_calls).toBe(1);
  });

  it.each([
    ['random', undefined],
    ['longest gaps', 0.9999],
  ])(
    'queries that keep failing (%s) still end in the cancel at the deadline, not later',
    async (_label, random) => {
      if (random !== undefined) jest.spyOn(Math, 'random').mockReturnValue(random);
      const env = await services({
        hooks: {
          query: async () => {
            throw new ProviderUnknownError('timeout: no answer to the query');
          },
        },
      });
      const { payment, createdAt } = await pay(env, '11');
      const done = await runUntilFinal(env, payment.id);
      expect(done).toMatchObject({ status: 'canceled', failure: { code: 'customer_timeout' } });
      const cancels = env.provider.of(payment.id, 'cancel');
      expect(cancels).toHaveLength(1);
      expect(cancels[0].at - createdAt).toBeGreaterThanOrEqual(30_000);
      expect(cancels[0].at - createdAt).toBeLessThanOrEqual(30_000 + STEP);
      for (const g of gaps(env.provider.of(payment.id, 'query').map((q) => q.at))) {
        expect(g).toBeLessThanOrEqual(5000 + STEP);
      }
    },
  );

  it('after a restart (new services, same database) the pending payments are finished', async () => {
    const first = await services();
    const p10 = await pay(first, '10');
    const p11 = await pay(first, '11');
    const p20 = await pay(first, '20');
    const p21 = await pay(first, '21');
    await run(first, 6000); // each has been queried once
    for (const p of [p10, p11, p20, p21]) {
      expect(first.provider.of(p.payment.id, 'query').length).toBeGreaterThanOrEqual(1);
    }
    expect((await first.payments.load(p10.payment.id)).status).toBe('pending');
    expect((await first.payments.load(p11.payment.id)).status).toBe('pending');
    // The process dies: its services go; the database file stays.
    first.sweeper.stop();
    await first.db.close();

    const clock = first.clock;
    const second = await services({
      path: first.path,
      db: await openDb(first.path),
      clock,
      device: first.device,
    });
    await run(second, 35_000);
    expect(await second.payments.load(p10.payment.id)).toMatchObject({ status: 'succeeded' });
    expect(await second.payments.load(p11.payment.id)).toMatchObject({
      status: 'canceled',
      failure: { code: 'customer_timeout' },
    });
    expect(await second.payments.load(p20.payment.id)).toMatchObject({ status: 'succeeded' });
    expect(await second.payments.load(p21.payment.id)).toMatchObject({
      status: 'failed',
      failure: { code: 'provider_error' },
    });
    // The restarted server never charged: it only queried (and canceled).
    expect(second.provider.calls.filter((c) => c.op === 'charge')).toHaveLength(0);
    for (const p of [p10, p11, p20]) expect((await second.sim.trade(p.payment.id))?.charge_calls).toBe(1);
    // The …11 cancel still came at its deadline, across the restart.
    const cancel = second.provider.of(p11.payment.id, 'cancel')[0];
    expect(cancel.at - p11.createdAt).toBeGreaterThanOrEqual(30_000);
    expect(cancel.at - p11.createdAt).toBeLessThanOrEqual(30_000 + STEP);
  });

  it('a lease left by a process that died mid-check is taken over once it expires', async () => {
    const first = await services();
    const { payment, createdAt } = await pay(first, '10');
    // The process died after leasing the payment, before it could record anything.
    await first.db.run('UPDATE payments SET lease_until = $1 WHERE id = $2', [
      createdAt + 5000 + LEASE_MS,
      payment.id,
    ]);
    await first.db.close();

    const second = await services({ db: await openDb(first.path), clock: first.clock, device: first.device });
    await run(second, 5000 + LEASE_MS - STEP);
    expect(second.provider.of(payment.id)).toHaveLength(0);
    expect((await second.payments.load(payment.id)).status).toBe('pending');
    await run(second, 2 * STEP);
    expect(second.provider.of(payment.id, 'query')).toEqual([
      expect.objectContaining({ result: 'succeeded' }),
    ]);
    expect((await second.payments.load(payment.id)).status).toBe('succeeded');
  });

  it('two sweepers ticking at once on one database never query one payment twice in a due slot', async () => {
    // Sweeper A's provider answers slowly, so B often finishes a payment while A is still busy with another.
    const a = await services();
    let slow = true;
    const slowA = new RecordingProvider(a.sim, a.clock, {
      query: async (_id, inner) => {
        if (slow) for (let i = 0; i < 30; i++) await new Promise<void>((r) => setImmediate(r));
        return inner();
      },
    });
    const sweeperA = new PaymentSweeper(a.db, a.clock, slowA, a.payments, a.timing, {
      tickMs: 250,
      leaseMs: LEASE_MS,
      batch: 50,
    });
    const b = await services({ db: a.db, clock: a.clock, device: a.device });

    const created: { payment: Payment; createdAt: number }[] = [];
    for (let i = 0; i < 6; i++) created.push(await pay(a, '11'));
    for (let i = 0; i < 6; i++) created.push(await pay(a, '10'));
    await run(a, 36_000, [sweeperA, b.sweeper]);
    slow = false;

    const all = [...slowA.calls, ...b.provider.calls].sort((x, y) => x.at - y.at);
    for (const { payment, createdAt } of created) {
      const queries = all.filter((c) => c.id === payment.id && c.op === 'query').map((c) => c.at - createdAt);
      const g = gaps(queries);
      // The deadline may cut the last gap short; every other one is a full 3-5 s.
      for (const gap of g.slice(0, -1)) expect(gap).toBeGreaterThanOrEqual(3000);
      for (const gap of g) expect(gap).toBeGreaterThan(0);
      expect(all.filter((c) => c.id === payment.id && c.op === 'cancel').length).toBeLessThanOrEqual(1);
    }
    for (const { payment } of created.slice(0, 6)) {
      expect(await a.payments.load(payment.id)).toMatchObject({ status: 'canceled' });
    }
    for (const { payment } of created.slice(6)) {
      expect(await a.payments.load(payment.id)).toMatchObject({ status: 'succeeded' });
      expect(await statusEvents(a, payment.id)).toEqual(['pending', 'succeeded']);
    }
    // Both sweepers did part of the work, and together exactly one check per lease.
    expect(slowA.calls.filter((c) => c.op === 'query').length).toBeGreaterThan(0);
    expect(b.provider.calls.filter((c) => c.op === 'query').length).toBeGreaterThan(0);
    const leases = await a.db.query<{ n: number }>('SELECT COALESCE(SUM(checks), 0) AS n FROM payments');
    expect(all.filter((c) => c.op === 'query').length).toBe(Number(leases[0].n));
  });
});

describe('PaymentSweeper: a cancel the provider refuses for good (simulator refusing cancels)', () => {
  /** The register's cancel gets no answer from the provider (502 cancel_pending): cancel_requested is
   * journaled and the sweeper takes over. Every later cancel goes to the simulator. */
  async function cancelUnconfirmed(env: Env, id: string): Promise<void> {
    await expect(env.payments.cancel(env.device, id)).rejects.toMatchObject({
      status: 502,
      code: 'cancel_pending',
    });
    const [row] = await env.db.query<{ cancel_requested: number }>(
      'SELECT cancel_requested FROM payments WHERE id = $1',
      [id],
    );
    expect(Number(row.cancel_requested)).toBe(1);
  }

  function firstCancelUnanswered(): ConstructorParameters<typeof RecordingProvider>[2] {
    let first = true;
    return {
      cancel: async (_id, inner) => {
        if (first) {
          first = false;
          throw new ProviderUnknownError('timeout: no answer to the cancel');
        }
        return inner();
      },
    };
  }

  it('the trade is paid and the provider refuses the cancel: the charge stands (succeeded), recorded and counted', async () => {
    const env = await services({ hooks: firstCancelUnanswered() });
    env.sim.refuseCancel = 'paid';
    const { payment } = await pay(env, '20'); // the charge's answer is lost; the trade is paid
    expect(payment.status).toBe('pending');
    await cancelUnconfirmed(env, payment.id);

    const done = await runUntilFinal(env, payment.id);
    expect(done.status).toBe('succeeded');
    expect(done.failure).toBeUndefined();
    expect(done.reversed).toBeUndefined();
    const [row] = await env.db.query<{ cancel_requested: number }>(
      'SELECT cancel_requested FROM payments WHERE id = $1',
      [payment.id],
    );
    expect(Number(row.cancel_requested)).toBe(0);
    expect(env.provider.of(payment.id).map((c) => [c.op, c.result])).toEqual([
      ['charge', 'throws ProviderUnknownError'],
      ['cancel', 'throws ProviderUnknownError'],
      ['cancel', 'throws ProviderRejectedError'],
      ['query', 'succeeded'],
    ]);
    expect(await env.sim.trade(payment.id)).toMatchObject({ state: 'succeeded', charge_calls: 1 });
    expect(await statusEvents(env, payment.id)).toEqual(['pending', 'succeeded']);
    const history = await env.payments.history(env.device, payment.id);
    expect(history).toEqual([
      expect.objectContaining({
        kind: 'cancel_refused',
        message: expect.stringContaining('cancel refused by provider; charge kept'),
      }),
    ]);
    expect(history[0].message).toContain('refund it');
    expect(env.sweeper.stats.cancelsRefused).toBe(1);

    // Decided: nothing more is sent, and the payment is refundable like any other.
    const before = env.provider.calls.length;
    await run(env, 20_000);
    expect(env.provider.calls.length).toBe(before);
  });

  it.each([
    ['closed', { state: 'closed' }, { status: 'canceled', failure: { code: 'closed' } }],
    [
      'failed',
      { state: 'failed', scenario: 'alipay:05' },
      { status: 'failed', failure: { code: 'insufficient_funds' } },
    ],
  ] as const)(
    'the provider refuses every cancel and later reports the trade %s: decided from its answer',
    async (_label, trade, expected) => {
      const env = await services({ hooks: firstCancelUnanswered() });
      env.sim.refuseCancel = 'all';
      const { payment } = await pay(env, '11'); // the customer never confirms
      await cancelUnconfirmed(env, payment.id);

      // While the trade is open at the provider, the payment stays pending (it may still be paid).
      await run(env, 40_000);
      expect((await env.payments.load(payment.id)).status).toBe('pending');
      expect(env.provider.of(payment.id, 'query').every((q) => q.result === 'user_paying')).toBe(true);
      expect(env.provider.of(payment.id, 'charge')).toHaveLength(1);

      // The provider closes (or fails) the trade on its side.
      const sets = Object.keys(trade).map((k, i) => `${k} = $${i + 2}`);
      await env.db.run(`UPDATE sim_trades SET ${sets.join(', ')} WHERE out_trade_no = $1`, [
        payment.id,
        ...Object.values(trade),
      ]);
      const done = await runUntilFinal(env, payment.id);
      expect(done).toMatchObject(expected);
      const history = await env.payments.history(env.device, payment.id);
      expect(history.map((h) => h.kind)).toEqual(['cancel_refused']);
      expect(history[0].message).toContain('cancel refused by provider');
      expect(env.sweeper.stats.cancelsRefused).toBe(1);
      expect(await statusEvents(env, payment.id)).toEqual(['pending', expected.status]);
    },
  );

  it("the register's own cancel refused for a paid trade: 409 payment_succeeded at once, the charge kept", async () => {
    const env = await services();
    env.sim.refuseCancel = 'paid';
    const { payment } = await pay(env, '20');
    await expect(env.payments.cancel(env.device, payment.id)).rejects.toMatchObject({
      status: 409,
      code: 'payment_succeeded',
    });
    expect(await env.payments.load(payment.id)).toMatchObject({ status: 'succeeded' });
    expect((await env.payments.history(env.device, payment.id)).map((h) => h.kind)).toEqual([
      'cancel_refused',
    ]);
    expect(await statusEvents(env, payment.id)).toEqual(['pending', 'succeeded']);
  });
});

describe('PaymentSweeper: refunds whose answer never came', () => {
  /** The store's plugin (only it may refund). */
  async function pluginOf(env: Env): Promise<Device> {
    const keys = await loadServerKeys(env.db);
    const stores = new StoresService(env.db, env.clock, keys.publicKey);
    const { code: regCode } = await stores.createRegistrationCode(env.device.storeId, 'plugin');
    const reg = await stores.register({ code: regCode, deviceId: 'P1', role: 'plugin', name: 'Register' });
    return (await stores.authenticate(reg.token))!;
  }

  /** The refund's answer is lost: before the provider got it (`before`) or after it paid out (`after`). */
  function lostRefunds(
    where: 'before' | 'after',
    count = 1,
  ): ConstructorParameters<typeof RecordingProvider>[2] {
    let left = count;
    return {
      refund: async (_id, inner) => {
        if (left > 0) {
          left--;
          if (where === 'after') await inner();
          throw new ProviderUnknownError('timeout: no answer to the refund');
        }
        return inner();
      },
    };
  }

  const refund = (env: Env, plugin: Device, id: string, key: string, value?: number) =>
    env.refunds.refund(plugin, id, key, value === undefined ? {} : { amount: { value, currency: 'CNY' } });

  async function keyState(env: Env, id: string, key: string) {
    const [k] = await env.db.query<{ state: string; response_status: number | null }>(
      'SELECT state, response_status FROM idempotency_keys WHERE scope = $1 AND idem_key = $2',
      [`refund:${id}`, key],
    );
    return { state: k.state, status: k.response_status === null ? null : Number(k.response_status) };
  }

  async function refundStatuses(env: Env, id: string): Promise<string[]> {
    const rows = await env.db.query<{ status: string }>(
      'SELECT status FROM refunds WHERE payment_id = $1 ORDER BY created_at, id',
      [id],
    );
    return rows.map((r) => r.status);
  }

  it('paid out, answer lost, never retried: the sweeper asks the provider and records it; no second payout', async () => {
    const env = await services({ hooks: lostRefunds('after') });
    const plugin = await pluginOf(env);
    const { payment } = await pay(env, '00');
    await expect(refund(env, plugin, payment.id, 'rf-lost')).rejects.toMatchObject({
      status: 502,
      code: 'refund_unknown',
    });
    // Pending, it holds the cap: nothing more can be refunded until it is decided.
    await expect(refund(env, plugin, payment.id, 'rf-more', 1)).rejects.toMatchObject({
      code: 'refund_exceeds_capture',
    });
    expect(await refundStatuses(env, payment.id)).toEqual(['pending']);

    // The plugin never retries. Once the request's hold on the key has lapsed, the sweeper asks.
    await run(env, WALLET_TIMING.keyLockMs + 5000);
    expect(await refundStatuses(env, payment.id)).toEqual(['succeeded']);
    expect(await env.payments.load(payment.id)).toMatchObject({
      status: 'refunded',
      refunded: { value: 1250, currency: 'CNY' },
    });
    expect((await env.sim.trade(payment.id))?.refunded_value).toBe(1250);
    expect(env.provider.of(payment.id, 'queryRefund').map((c) => c.result)).toEqual(['succeeded']);
    expect(env.provider.of(payment.id, 'refund')).toHaveLength(1);
    expect(await statusEvents(env, payment.id)).toEqual(['succeeded', 'refunded']);
    // Its key holds the answer now: a late retry gets it, and nothing is sent again.
    expect(await keyState(env, payment.id, 'rf-lost')).toEqual({ state: 'done', status: 201 });
    const late = await refund(env, plugin, payment.id, 'rf-lost');
    expect(late).toMatchObject({ status: 201, replayed: true, body: { status: 'succeeded' } });
    expect(env.sweeper.stats.refundsResolved).toBe(1);
  });

  it('lost before the provider got it: the sweeper sends it again under its refund id; later refunds go through', async () => {
    const env = await services({ hooks: lostRefunds('before') });
    const plugin = await pluginOf(env);
    const { payment } = await pay(env, '00');
    await expect(refund(env, plugin, payment.id, 'rf-1', 500)).rejects.toMatchObject({
      code: 'refund_unknown',
    });
    await expect(refund(env, plugin, payment.id, 'rf-2', 1000)).rejects.toMatchObject({
      code: 'refund_exceeds_capture',
    });
    await run(env, WALLET_TIMING.keyLockMs + 5000);
    expect(env.provider.of(payment.id, 'queryRefund').map((c) => c.result)).toEqual(['not_found']);
    expect(await refundStatuses(env, payment.id)).toEqual(['succeeded']);
    const rest = await refund(env, plugin, payment.id, 'rf-3', 750);
    expect(rest.status).toBe(201);
    expect(rest.body.payment).toMatchObject({ status: 'refunded', refunded: { value: 1250 } });
    expect((await env.sim.trade(payment.id))?.refunded_value).toBe(1250);
    expect(await keyState(env, payment.id, 'rf-1')).toEqual({ state: 'done', status: 201 });
  });

  it('lost, and the provider refuses it when sent again: failed with the reason, the cap freed', async () => {
    let refuse = false;
    const env = await services({
      hooks: {
        refund: async () => {
          if (!refuse) {
            refuse = true;
            throw new ProviderUnknownError('timeout: no answer to the refund');
          }
          throw new ProviderRejectedError('TRADE_HAS_CLOSE', 'the trade is closed for refunds');
        },
      },
    });
    const plugin = await pluginOf(env);
    const { payment } = await pay(env, '00');
    await expect(refund(env, plugin, payment.id, 'rf-x')).rejects.toMatchObject({ code: 'refund_unknown' });
    await run(env, WALLET_TIMING.keyLockMs + 5000);
    expect(await refundStatuses(env, payment.id)).toEqual(['failed']);
    expect(await keyState(env, payment.id, 'rf-x')).toEqual({ state: 'done', status: 422 });
    const replay = await refund(env, plugin, payment.id, 'rf-x');
    expect(replay).toMatchObject({
      status: 422,
      replayed: true,
      body: { error: { code: 'refund_refused' } },
    });
    expect(await env.payments.load(payment.id)).toMatchObject({ status: 'succeeded' });
    expect((await env.sim.trade(payment.id))?.refunded_value).toBe(0);
  });

  it('the provider stays unreachable: the refund stays pending and is asked about again every few seconds', async () => {
    const env = await services({ hooks: lostRefunds('before', 1000) });
    const plugin = await pluginOf(env);
    const { payment } = await pay(env, '00');
    jest.spyOn(env.sim, 'queryRefund').mockRejectedValue(new ProviderUnknownError('timeout'));
    await expect(refund(env, plugin, payment.id, 'rf-u')).rejects.toMatchObject({ code: 'refund_unknown' });
    await run(env, WALLET_TIMING.keyLockMs + 20_000);
    expect(await refundStatuses(env, payment.id)).toEqual(['pending']);
    const asks = env.provider.of(payment.id, 'queryRefund').map((c) => c.at);
    expect(asks.length).toBeGreaterThanOrEqual(4);
    for (const g of gaps(asks)) expect(g).toBeGreaterThanOrEqual(3000);
    expect(env.provider.of(payment.id, 'refund')).toHaveLength(1);
  });
});
