import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeClock } from '../../protocol/clock';
import { Db, DbUrl } from '../storage/db';
import { openServerDb, ServerDb } from '../storage/open';
import { PostgresDb } from '../storage/postgres';
import { ProviderRejectedError, ProviderUnknownError } from './provider';
import { openSimulatorLedger, SimulatorProvider } from './simulator.provider';
import { waitFor } from '../../../test/support/wait';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** An 18-digit code with the given prefix and ending. */
const code = (ending: string, prefix = '28') =>
  `${prefix}${'1234567890123456'.slice(prefix.length)}${ending}`;
const CNY = (value: number) => ({ value, currency: 'CNY' });

describe.each(['sqlite', 'postgres'] as const)('SimulatorProvider on %s', (engine) => {
  /** The server's database (its migrations make PostgreSQL's sim_trades), and the simulator's ledger. */
  let server: ServerDb;
  let ledger: Awaited<ReturnType<typeof openSimulatorLedger>>;
  let db: Db;
  let dir: string | undefined;
  let clock: FakeClock;
  let sleeps: number[];
  let sim: SimulatorProvider;
  let seq = 0;
  let out: string;

  const charge = (c: string, outTradeNo = out, value = 1000) =>
    sim.charge({ outTradeNo, amount: CNY(value), code: c, storeId: 'S1' });

  beforeAll(async () => {
    let url: DbUrl;
    if (engine === 'sqlite') {
      dir = mkdtempSync(join(tmpdir(), 'pc-sim-'));
      url = { kind: 'sqlite', path: join(dir, 'server.db') };
    } else {
      url = { kind: 'postgres', url: `${PG_URL}?schema=pc_sim_${randomBytes(6).toString('hex')}` };
    }
    server = await openServerDb(url);
    ledger = await openSimulatorLedger(url);
    db = ledger.db;
  });

  afterAll(async () => {
    await ledger?.close();
    if (server instanceof PostgresDb) await server.dropSchema();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps its trades apart from the server's journal, in a ledger that does not wait for the disk", async () => {
    if (engine === 'sqlite') {
      expect(ledger.where).toBe(join(dir!, 'server.db-simulator'));
      expect((await db.query<{ synchronous: number }>('PRAGMA synchronous'))[0].synchronous).toBe(1);
      expect((await server.query<{ synchronous: number }>('PRAGMA synchronous'))[0].synchronous).toBe(2);
    } else {
      expect(
        (await db.query<{ s: string }>('SELECT current_setting($1) AS s', ['synchronous_commit']))[0].s,
      ).toBe('off');
      expect(
        (await server.query<{ s: string }>('SELECT current_setting($1) AS s', ['synchronous_commit']))[0].s,
      ).toBe('on');
    }
    await charge(code('00'));
    expect((await sim.trade(out))?.charge_calls).toBe(1);
    // PostgreSQL: the table every instance shares; SQLite: the server's own table stays empty.
    const inServer = await server.query('SELECT out_trade_no FROM sim_trades');
    expect(inServer).toHaveLength(engine === 'postgres' ? 1 : 0);
  });

  beforeEach(async () => {
    await db.run('DELETE FROM sim_trades');
    await db.run('DELETE FROM sim_refunds');
    clock = new FakeClock();
    sleeps = [];
    sim = new SimulatorProvider({
      db,
      clock,
      speed: 1,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    out = `pay_${++seq}`;
  });

  it('brands codes by prefix: 28 alipay, 13 wechat, anything else a generic wallet', async () => {
    expect(await charge(code('00', '28'), 'a')).toEqual({
      outcome: 'succeeded',
      tradeNo: 'SIMa',
      brand: 'alipay',
    });
    expect(await charge(code('00', '13'), 'b')).toMatchObject({ outcome: 'succeeded', brand: 'wechat' });
    expect(await charge(code('00', '62'), 'c')).toMatchObject({ outcome: 'succeeded', brand: 'wallet' });
    expect((await sim.trade('b'))?.scenario).toBe('wechat:00');
  });

  it('00 succeeds at once; query shows it; cancel reverses it and the trade reads closed', async () => {
    expect(await charge(code('00'))).toEqual({ outcome: 'succeeded', tradeNo: `SIM${out}`, brand: 'alipay' });
    expect(await sim.query(out)).toEqual({ state: 'succeeded', tradeNo: `SIM${out}` });
    expect(await sim.cancel(out)).toEqual({ reversed: true });
    expect(await sim.cancel(out)).toEqual({ reversed: true }); // idempotent
    expect(await sim.query(out)).toEqual({ state: 'closed' });
    expect(await sim.trade(out)).toMatchObject({
      state: 'reversed',
      scenario: 'alipay:00',
      amount_value: 1000,
      currency: 'CNY',
      created_at: clock.now(),
      succeeds_at: null,
      charge_calls: 1,
      query_calls: 2,
      cancel_calls: 2,
    });
    expect(sleeps).toEqual([]);
  });

  it('an ending with no scenario succeeds at once', async () => {
    expect(await charge(code('47', '13'))).toMatchObject({ outcome: 'succeeded', brand: 'wechat' });
    expect(await sim.query(out)).toEqual({ state: 'succeeded', tradeNo: `SIM${out}` });
  });

  it('05 is declined for insufficient funds; query shows failed; cancel reverses nothing', async () => {
    expect(await charge(code('05'))).toEqual({
      outcome: 'declined',
      code: 'insufficient_funds',
      message: 'insufficient funds',
      brand: 'alipay',
    });
    expect(await sim.query(out)).toEqual({
      state: 'failed',
      code: 'insufficient_funds',
      message: 'insufficient funds',
    });
    expect(await sim.cancel(out)).toEqual({ reversed: false });
    expect(await sim.query(out)).toMatchObject({ state: 'failed' });
  });

  it('30 is declined as an invalid or expired code', async () => {
    expect(await charge(code('30', '13'))).toEqual({
      outcome: 'declined',
      code: 'invalid_code',
      message: 'payment code invalid or expired',
      brand: 'wechat',
    });
    expect(await sim.query(out)).toEqual({
      state: 'failed',
      code: 'invalid_code',
      message: 'payment code invalid or expired',
    });
    expect(await sim.cancel(out)).toEqual({ reversed: false });
  });

  it('a code that is not 18 digits is declined as invalid', async () => {
    for (const bad of ['28123400', '2812345678901234567', '28123456789012345x', '']) {
      const id = `bad_${bad.length}_${bad.slice(-1)}`;
      expect(await charge(bad, id)).toMatchObject({ outcome: 'declined', code: 'invalid_code' });
      expect(await sim.query(id)).toMatchObject({ state: 'failed', code: 'invalid_code' });
    }
  });

  it('10: the customer confirms for 8 s, then it succeeds; cancel afterwards reverses', async () => {
    const created = clock.now();
    expect(await charge(code('10'))).toEqual({
      outcome: 'user_paying',
      tradeNo: `SIM${out}`,
      brand: 'alipay',
    });
    expect((await sim.trade(out))?.succeeds_at).toBe(created + 8000);
    expect(await sim.query(out)).toEqual({ state: 'user_paying' });
    clock.advance(7999);
    expect(await sim.query(out)).toEqual({ state: 'user_paying' });
    clock.advance(1);
    expect(await sim.query(out)).toEqual({ state: 'succeeded', tradeNo: `SIM${out}` });
    expect((await sim.trade(out))?.state).toBe('succeeded'); // persisted
    expect(await sim.cancel(out)).toEqual({ reversed: true });
    expect(sleeps).toEqual([]);
  });

  it('10: canceled while the customer is still confirming, the trade closes and stays closed', async () => {
    await charge(code('10'));
    clock.advance(5000);
    expect(await sim.cancel(out)).toEqual({ reversed: false });
    clock.advance(10_000);
    expect(await sim.query(out)).toEqual({ state: 'closed' });
    expect(await sim.cancel(out)).toEqual({ reversed: false });
    expect((await sim.trade(out))?.state).toBe('closed');
  });

  it('10: the customer paid just as the cancel went out: the cancel reverses', async () => {
    await charge(code('10'));
    clock.advance(8000); // no query in between: the trade still reads user_paying in the table
    expect((await sim.trade(out))?.state).toBe('user_paying');
    expect(await sim.cancel(out)).toEqual({ reversed: true });
    expect((await sim.trade(out))?.state).toBe('reversed');
    expect(await sim.query(out)).toEqual({ state: 'closed' });
  });

  it('11: the customer never confirms; only a cancel ends it, closed and not reversed', async () => {
    expect(await charge(code('11', '13'))).toMatchObject({ outcome: 'user_paying', brand: 'wechat' });
    clock.advance(3_600_000);
    expect(await sim.query(out)).toEqual({ state: 'user_paying' });
    expect(await sim.cancel(out)).toEqual({ reversed: false });
    expect(await sim.query(out)).toEqual({ state: 'closed' });
    expect(await sim.cancel(out)).toEqual({ reversed: false });
    expect(await sim.trade(out)).toMatchObject({ state: 'closed', cancel_calls: 2, query_calls: 2 });
  });

  it('20: the charge times out after 10 s though the trade was created; a query shows it succeeded', async () => {
    const err = await charge(code('20')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnknownError);
    expect((err as ProviderUnknownError).message).toMatch(/^timeout/);
    expect((err as ProviderUnknownError).code).toBe('provider.unknown_outcome');
    expect(sleeps).toEqual([10_000]);
    expect(await sim.query(out)).toEqual({ state: 'succeeded', tradeNo: `SIM${out}` });
    expect(await sim.trade(out)).toMatchObject({ state: 'succeeded', charge_calls: 1 });
    // A second charge (which the server never sends) finds the trade: no second timeout, no second trade.
    expect(await charge(code('20'))).toMatchObject({ outcome: 'succeeded' });
    expect(sleeps).toEqual([10_000]);
    expect(await sim.trade(out)).toMatchObject({ charge_calls: 2 });
  });

  it('21: the provider fails with a 500 and creates no trade; a query shows not_found', async () => {
    const err = await charge(code('21')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnknownError);
    expect((err as ProviderUnknownError).message).toMatch(/^provider returned 500/);
    expect(sleeps).toEqual([]);
    expect(await sim.query(out)).toEqual({ state: 'not_found' });
    expect(await sim.trade(out)).toBeUndefined();
    expect(await sim.totalChargeCalls()).toBe(0);
  });

  it('a cancel before any charge closes the trade, so a late charge is declined', async () => {
    expect(await sim.cancel(out)).toEqual({ reversed: false });
    expect(await sim.trade(out)).toMatchObject({ state: 'closed', charge_calls: 0, cancel_calls: 1 });
    await expect(sim.refund(out, 'r0', CNY(1))).rejects.toMatchObject({ code: 'trade_not_found' });
    expect(await sim.query(out)).toEqual({ state: 'closed' });
    expect(await sim.cancel(out)).toEqual({ reversed: false });
    expect(await charge(code('00'))).toMatchObject({
      outcome: 'declined',
      code: 'trade_closed',
      brand: 'alipay',
    });
    expect(await sim.trade(out)).toMatchObject({ state: 'closed', charge_calls: 1, cancel_calls: 2 });
    await expect(sim.refund(out, 'r1', CNY(1))).rejects.toMatchObject({ code: 'trade_not_refundable' });
  });

  it('charge is idempotent per outTradeNo: a repeat returns the current state and counts the call', async () => {
    expect(await charge(code('10'))).toMatchObject({ outcome: 'user_paying' });
    expect(await charge(code('10'))).toMatchObject({ outcome: 'user_paying' });
    clock.advance(8000);
    expect(await charge(code('10'))).toMatchObject({ outcome: 'succeeded', tradeNo: `SIM${out}` });
    expect(await charge(code('05'), out, 99)).toMatchObject({ outcome: 'succeeded' }); // the trade, not the code
    expect(await sim.trade(out)).toMatchObject({
      charge_calls: 4,
      amount_value: 1000,
      scenario: 'alipay:10',
    });
    expect(await sim.totalChargeCalls()).toBe(4);
    const rows = await db.query('SELECT out_trade_no FROM sim_trades');
    expect(rows).toHaveLength(1);
  });

  it('20 concurrent charges for one outTradeNo create one trade with charge_calls 20', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => charge(code('00'))));
    expect(results.every((r) => r.outcome === 'succeeded')).toBe(true);
    expect(await sim.trade(out)).toMatchObject({ charge_calls: 20, state: 'succeeded' });
    expect(await db.query('SELECT out_trade_no FROM sim_trades')).toHaveLength(1);
    expect(await sim.totalChargeCalls()).toBe(20);
  });

  it('concurrent charges and a cancel for one outTradeNo leave one consistent trade', async () => {
    const all = await Promise.all([
      charge(code('11')),
      sim.cancel(out),
      charge(code('11')),
      charge(code('11')),
    ]);
    const trade = await sim.trade(out);
    expect(trade?.state).toBe('closed');
    expect(trade?.cancel_calls).toBe(1);
    expect(all[1]).toEqual({ reversed: false });
    expect(await db.query('SELECT out_trade_no FROM sim_trades')).toHaveLength(1);
  });

  it("refuseCancel 'paid' refuses to cancel a paid trade (nothing changes); 'all' refuses every cancel", async () => {
    sim.refuseCancel = 'paid';
    await charge(code('00'));
    const refused = await sim.cancel(out).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProviderRejectedError);
    expect(refused).toMatchObject({ code: 'cancel_refused' });
    expect(await sim.trade(out)).toMatchObject({ state: 'succeeded' });
    expect(await sim.query(out)).toMatchObject({ state: 'succeeded' });
    // A trade not paid yet still closes.
    await charge(code('11'), `${out}_open`);
    expect(await sim.cancel(`${out}_open`)).toEqual({ reversed: false });

    sim.refuseCancel = 'all';
    await charge(code('11'), `${out}_all`);
    await expect(sim.cancel(`${out}_all`)).rejects.toMatchObject({ code: 'cancel_refused' });
    await expect(sim.cancel(`${out}_never`)).rejects.toBeInstanceOf(ProviderRejectedError);
    expect(await sim.trade(`${out}_all`)).toMatchObject({ state: 'user_paying', cancel_calls: 1 });
    expect(await sim.trade(`${out}_never`)).toBeUndefined();
  });

  it('refunds only a paid trade, and never more than it captured', async () => {
    await charge(code('00'), out, 1000);
    expect(await sim.refund(out, 'r1', CNY(300))).toEqual({ refundNo: 'r1' });
    expect(await sim.refund(out, 'r2', CNY(700))).toEqual({ refundNo: 'r2' });
    const over = await sim.refund(out, 'r3', CNY(1)).catch((e: unknown) => e);
    expect(over).toBeInstanceOf(ProviderRejectedError);
    expect(over).toMatchObject({ code: 'refund_exceeds_capture' });
    expect((await sim.trade(out))?.refunded_value).toBe(1000);

    const other = `${out}_b`;
    await charge(code('00'), other, 500);
    await expect(sim.refund(other, 'r4', CNY(501))).rejects.toMatchObject({ code: 'refund_exceeds_capture' });
    await expect(sim.refund(other, 'r5', { value: 100, currency: 'USD' })).rejects.toMatchObject({
      code: 'currency_mismatch',
    });
    await expect(sim.refund(other, 'r6', CNY(0))).rejects.toMatchObject({ code: 'invalid_amount' });
    expect((await sim.trade(other))?.refunded_value).toBe(0);

    const paying = `${out}_c`;
    await charge(code('10'), paying);
    await expect(sim.refund(paying, 'r7', CNY(1))).rejects.toMatchObject({ code: 'trade_not_refundable' });
    clock.advance(8000); // confirmed: now refundable
    expect(await sim.refund(paying, 'r8', CNY(1))).toEqual({ refundNo: 'r8' });
    await sim.cancel(paying);
    await expect(sim.refund(paying, 'r9', CNY(1))).rejects.toMatchObject({ code: 'trade_not_refundable' });

    const declined = `${out}_d`;
    await charge(code('05'), declined);
    await expect(sim.refund(declined, 'r10', CNY(1))).rejects.toMatchObject({ code: 'trade_not_refundable' });
    await expect(sim.refund('nope', 'r11', CNY(1))).rejects.toMatchObject({ code: 'trade_not_found' });
  });

  it('takes a refund id once: the same refund again pays out nothing more; another amount under it is refused', async () => {
    await charge(code('00'), out, 1000);
    expect(await sim.refund(out, 'r1', CNY(300))).toEqual({ refundNo: 'r1' });
    // A retry after a lost answer (502 at the server) sends the same refund id again.
    expect(await sim.refund(out, 'r1', CNY(300))).toEqual({ refundNo: 'r1' });
    expect((await sim.trade(out))?.refunded_value).toBe(300);
    await expect(sim.refund(out, 'r1', CNY(200))).rejects.toMatchObject({ code: 'refund_no_reused' });
    await expect(sim.refund(`${out}_other`, 'r1', CNY(300))).rejects.toBeInstanceOf(ProviderRejectedError);
    expect(await sim.queryRefund(out, 'r1')).toEqual({ state: 'succeeded' });
    expect(await sim.queryRefund(out, 'r2')).toEqual({ state: 'not_found' });
    // Concurrent retries of one refund id: still paid out once.
    await Promise.all(Array.from({ length: 5 }, () => sim.refund(out, 'r3', CNY(700))));
    expect((await sim.trade(out))?.refunded_value).toBe(1000);
    // A refused refund leaves no record: it is not found, and may be sent again.
    await expect(sim.refund(out, 'r4', CNY(1))).rejects.toMatchObject({ code: 'refund_exceeds_capture' });
    expect(await sim.queryRefund(out, 'r4')).toEqual({ state: 'not_found' });
  });

  it('never stores the payment code', async () => {
    const codes = [code('00'), code('10', '13'), code('05', '62'), code('20')];
    for (const [i, c] of codes.entries()) await charge(c, `${out}_${i}`).catch(() => undefined);
    const dump = JSON.stringify(await db.query('SELECT * FROM sim_trades'));
    for (const c of codes) {
      expect(dump).not.toContain(c);
      expect(dump).not.toContain(c.slice(2, 16));
    }
  });

  it('scales delays by speed', async () => {
    const fast = new SimulatorProvider({ db, clock, speed: 1000, sleep: async (ms) => void sleeps.push(ms) });
    const created = clock.now();
    await fast.charge({ outTradeNo: out, amount: CNY(1), code: code('10'), storeId: 'S1' });
    expect((await fast.trade(out))?.succeeds_at).toBe(created + 8);
    clock.advance(8);
    expect(await fast.query(out)).toMatchObject({ state: 'succeeded' });
    await expect(
      fast.charge({ outTradeNo: `${out}_t`, amount: CNY(1), code: code('20'), storeId: 'S1' }),
    ).rejects.toBeInstanceOf(ProviderUnknownError);
    expect(sleeps).toEqual([10]);
  });

  it('sleeps on the clock by default: a code-20 charge answers only when 10 s have passed', async () => {
    const onClock = new SimulatorProvider({ db, clock });
    let settled = false;
    const p = onClock
      .charge({ outTradeNo: out, amount: CNY(1), code: code('20'), storeId: 'S1' })
      .finally(() => (settled = true));
    p.catch(() => undefined);
    await waitFor('the charge to sleep on the clock', () => clock.pending() > 0, 2000, 5);
    expect(clock.pending()).toBe(1);
    clock.advance(9999);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    clock.advance(1);
    await expect(p).rejects.toBeInstanceOf(ProviderUnknownError);
  });

  it('refuses a speed that is not above 0', () => {
    for (const speed of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new SimulatorProvider({ db, clock, speed })).toThrow(/PAYCONNECT_SIM_SPEED/);
    }
  });
});
