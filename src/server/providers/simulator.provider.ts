/**
 * The built-in test provider (DESIGN.md, "Test payment codes"): behaves like an Alipay- or WeChat-Pay-like
 * payment-code provider, chosen by the code's last two digits. Its trades live in a `sim_trades` table (see
 * openSimulatorLedger), so they survive a crash of the server as a real provider's would, and tests can
 * count how often the server charged (`charge_calls`).
 *
 * What is stored per trade: the scenario (`brand:ending`, e.g. `alipay:10`; never the payment code), amount,
 * currency, state, creation time and, for code `10`, when the customer's confirmation lands.
 *
 * States: `succeeded`, `user_paying`, `failed` (declined), `closed` (canceled unpaid, or canceled before any
 * charge), `reversed` (canceled after it was paid: the money went back).
 *
 * Concurrency: every call is one transaction that first locks the trade's row (a charge is one upsert, the
 * others begin with an UPDATE of a counter; SQLite serialises whole transactions anyway), so concurrent
 * charges for one outTradeNo create one trade.
 *
 * A test may make it refuse cancels (`refuseCancel`), as a real provider does once its cancel window has
 * passed.
 *
 * Refunds are idempotent per refundNo, as a real provider's are (table `sim_refunds`): a refund sent again
 * under the same refundNo (the server retrying after a lost answer) pays out nothing more and answers as the
 * first did; another trade or amount under a refundNo already taken is refused. The total refunded is
 * capped at the captured amount. `queryRefund` says whether a refundNo was paid out.
 */
import { Clock } from '../../protocol/clock';
import { Db, DbUrl } from '../storage/db';
import { simRefundsTable, simTradesTable } from '../storage/migrations';
import { PostgresDb } from '../storage/postgres';
import { SqliteDb } from '../storage/sqlite';
import {
  CancelResult,
  ChargeRequest,
  ChargeResult,
  PaymentProvider,
  ProviderRejectedError,
  ProviderUnknownError,
  QueryResult,
  RefundQueryResult,
  RefundResult,
} from './provider';

export type SimBrand = 'alipay' | 'wechat' | 'wallet';
export type SimTradeState = 'succeeded' | 'user_paying' | 'closed' | 'failed' | 'reversed';

/** A `sim_trades` row, as stored (numbers normalised). */
export interface SimTradeRow {
  out_trade_no: string;
  /** `brand:ending`, e.g. `alipay:10`; `wallet:invalid` for a code that is not 18 digits; `none` for a trade
   * closed by a cancel before any charge. */
  scenario: string;
  amount_value: number;
  currency: string;
  state: SimTradeState;
  created_at: number;
  succeeds_at: number | null;
  charge_calls: number;
  query_calls: number;
  cancel_calls: number;
  refunded_value: number;
}

export interface SimulatorProviderOptions {
  db: Db;
  clock: Clock;
  /** PAYCONNECT_SIM_SPEED: every simulated delay is divided by it. Default 1 (real time). */
  speed?: number;
  /** Waits `ms`; default: a timer on `clock`. */
  sleep?: (ms: number) => Promise<void>;
  /** Cancels the provider refuses (tests): see SimulatorProvider.refuseCancel. */
  refuseCancel?: SimCancelRefusal;
}

/**
 * Which cancels the simulator refuses with a ProviderRejectedError, as a real provider does once its cancel
 * window has passed: `paid` a cancel of a trade the customer has paid (refund it instead), `all` every
 * cancel. Nothing changes at the provider when it refuses.
 */
export type SimCancelRefusal = 'paid' | 'all' | undefined;

/** How long a code-`10` customer takes to confirm, and how long a code-`20` charge hangs, at speed 1. */
export const SIM_CONFIRM_MS = 8_000;
export const SIM_TIMEOUT_MS = 10_000;

const DECLINES: Record<string, { code: string; message: string }> = {
  '05': { code: 'insufficient_funds', message: 'insufficient funds' },
  '30': { code: 'invalid_code', message: 'payment code invalid or expired' },
  invalid: { code: 'invalid_code', message: 'payment code must be 18 digits' },
};

/** The brand a code's prefix stands for: `28` Alipay-like, `13` WeChat-Pay-like, else a generic wallet. */
export function simBrand(code: string): SimBrand {
  if (code.startsWith('28')) return 'alipay';
  if (code.startsWith('13')) return 'wechat';
  return 'wallet';
}

function scenarioOf(code: string): { brand: SimBrand; ending: string } {
  const brand = simBrand(code);
  return /^\d{18}$/.test(code) ? { brand, ending: code.slice(16) } : { brand, ending: 'invalid' };
}

function parseScenario(scenario: string): { brand?: string; ending?: string } {
  const i = scenario.indexOf(':');
  return i < 0 ? {} : { brand: scenario.slice(0, i), ending: scenario.slice(i + 1) };
}

function normalise(r: Record<string, unknown>): SimTradeRow {
  const n = (v: unknown) => Number(v);
  return {
    out_trade_no: String(r.out_trade_no),
    scenario: String(r.scenario),
    amount_value: n(r.amount_value),
    currency: String(r.currency),
    state: String(r.state) as SimTradeState,
    created_at: n(r.created_at),
    succeeds_at: r.succeeds_at === null || r.succeeds_at === undefined ? null : n(r.succeeds_at),
    charge_calls: n(r.charge_calls),
    query_calls: n(r.query_calls),
    cancel_calls: n(r.cancel_calls),
    refunded_value: n(r.refunded_value),
  };
}

type Q = Pick<Db, 'query' | 'run'>;

/** The simulator's ledger file beside a SQLite server database. */
export function simulatorLedgerPath(serverPath: string): string {
  return serverPath === ':memory:' ? ':memory:' : `${serverPath}-simulator`;
}

/**
 * Where the simulator keeps its trades. It stands for a provider's own system, which in real life costs the
 * server a network round trip, not a share of its database's durable commits (in the server's journal the
 * simulator's commits were a third of the server's fsyncs per payment). So its commits do not wait for the
 * disk: they survive a crash of the server process (kill -9), though not necessarily a power cut, while the
 * server's own journal keeps waiting for every commit.
 *
 * - SQLite: a database of its own beside the server's (`<server file>-simulator`, or in memory with
 *   `:memory:`), synchronous=NORMAL.
 * - PostgreSQL: the `sim_trades` table of the server's database, shared by every instance (any instance's
 *   sweeper can query a trade another one charged), through a small pool of its own with
 *   synchronous_commit=off.
 */
export async function openSimulatorLedger(
  server: DbUrl,
): Promise<{ db: Db; where: string; close(): Promise<void> }> {
  if (server.kind !== 'sqlite') {
    const db = new PostgresDb(server.url, { max: 4, synchronousCommit: false });
    return { db, where: db.where, close: () => db.close() };
  }
  const where = simulatorLedgerPath(server.path);
  const db = new SqliteDb(where, { synchronous: 'NORMAL' });
  try {
    await db.exec(simTradesTable({ ifNotExists: true, withoutRowid: true }));
    await db.exec(simRefundsTable({ ifNotExists: true, withoutRowid: true }));
  } catch (e) {
    await db.close().catch(() => undefined);
    throw new Error(`cannot open the simulator's ledger at ${where}: ${(e as Error).message}`, { cause: e });
  }
  return { db, where, close: () => db.close() };
}

export class SimulatorProvider implements PaymentProvider {
  readonly name = 'simulator';
  private readonly db: Db;
  private readonly clock: Clock;
  private readonly speed: number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Which cancels are refused from now on (tests may change it at any time). */
  refuseCancel: SimCancelRefusal;

  constructor(opts: SimulatorProviderOptions) {
    const speed = opts.speed ?? 1;
    if (!Number.isFinite(speed) || speed <= 0) {
      throw new Error(`the simulator speed (PAYCONNECT_SIM_SPEED) must be a number above 0, not ${speed}`);
    }
    this.db = opts.db;
    this.clock = opts.clock;
    this.speed = speed;
    this.refuseCancel = opts.refuseCancel;
    this.sleep = opts.sleep ?? ((ms) => new Promise<void>((resolve) => this.clock.setTimeout(resolve, ms)));
  }

  /** A delay of `ms` at real time, scaled by the speed. */
  private scaled(ms: number): number {
    return Math.max(0, Math.round(ms / this.speed));
  }

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    const { outTradeNo, amount } = req;
    if (!Number.isSafeInteger(amount.value) || amount.value <= 0) {
      throw new ProviderRejectedError(
        'invalid_amount',
        `the amount must be a positive whole number of minor units`,
      );
    }
    const { brand, ending } = scenarioOf(req.code);
    const now = this.clock.now();

    if (ending === '21') {
      // A 500 before any trade exists. A call for an outTradeNo the provider already knows still counts.
      await this.db.run('UPDATE sim_trades SET charge_calls = charge_calls + 1 WHERE out_trade_no = $1', [
        outTradeNo,
      ]);
      throw new ProviderUnknownError(`provider returned 500 (internal error) to the charge of ${outTradeNo}`);
    }

    let state: SimTradeState = 'succeeded';
    let succeedsAt: number | null = null;
    if (DECLINES[ending]) state = 'failed';
    else if (ending === '10') {
      state = 'user_paying';
      succeedsAt = now + this.scaled(SIM_CONFIRM_MS);
    } else if (ending === '11') state = 'user_paying';

    // One statement, so one round trip on PostgreSQL and one transaction on either engine: create the trade
    // or count another charge of it, settling (as settle() does) a code-10 customer who has confirmed by
    // now. The upsert locks
    // the trade's row, so concurrent charges for one outTradeNo create one trade.
    const rows = await this.db.query(
      `INSERT INTO sim_trades (out_trade_no, scenario, amount_value, currency, state, created_at, succeeds_at, charge_calls)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 1)
       ON CONFLICT (out_trade_no) DO UPDATE SET charge_calls = sim_trades.charge_calls + 1,
         state = CASE WHEN sim_trades.state = 'user_paying' AND sim_trades.succeeds_at IS NOT NULL
           AND sim_trades.succeeds_at <= $6 THEN 'succeeded' ELSE sim_trades.state END
       RETURNING *`,
      [outTradeNo, `${brand}:${ending}`, amount.value, amount.currency, state, now, succeedsAt],
    );
    const row = normalise(rows[0]);
    // Created by this call: its first charge. (A trade a cancel created first has the scenario `none`.)
    const created = row.charge_calls === 1 && row.scenario !== 'none';

    if (created && ending === '20') {
      await this.sleep(this.scaled(SIM_TIMEOUT_MS));
      throw new ProviderUnknownError(
        `timeout: the provider did not answer the charge of ${outTradeNo} within ${this.scaled(SIM_TIMEOUT_MS)} ms`,
      );
    }
    return this.chargeResult(row, brand);
  }

  async query(outTradeNo: string): Promise<QueryResult> {
    const row = await this.db.tx(async (q) => {
      const hit = await q.run('UPDATE sim_trades SET query_calls = query_calls + 1 WHERE out_trade_no = $1', [
        outTradeNo,
      ]);
      if (hit.changes === 0) return undefined;
      await this.settle(q, outTradeNo);
      return this.load(q, outTradeNo);
    });
    if (!row) return { state: 'not_found' };
    switch (row.state) {
      case 'succeeded':
        return { state: 'succeeded', tradeNo: tradeNoOf(row.out_trade_no) };
      case 'user_paying':
        return { state: 'user_paying' };
      case 'failed': {
        const d = declineOf(row);
        return { state: 'failed', code: d.code, message: d.message };
      }
      default: // closed, reversed: the trade is closed
        return { state: 'closed' };
    }
  }

  async cancel(outTradeNo: string): Promise<CancelResult> {
    if (this.refuseCancel === 'all') {
      await this.db.run('UPDATE sim_trades SET cancel_calls = cancel_calls + 1 WHERE out_trade_no = $1', [
        outTradeNo,
      ]);
      throw new ProviderRejectedError(
        'cancel_refused',
        `the provider refuses to cancel trade ${outTradeNo}: its cancel window has passed`,
      );
    }
    const refusePaid = this.refuseCancel === 'paid';
    const refused = await this.db.tx(async (q): Promise<CancelResult | 'refused'> => {
      // Unknown trade: close it, so a charge arriving late for this outTradeNo cannot succeed.
      const inserted = await q.run(
        `INSERT INTO sim_trades (out_trade_no, scenario, amount_value, currency, state, created_at, charge_calls, cancel_calls)
         VALUES ($1, 'none', 0, '', 'closed', $2, 0, 1) ON CONFLICT (out_trade_no) DO NOTHING`,
        [outTradeNo, this.clock.now()],
      );
      if (inserted.changes === 1) return { reversed: false };
      await q.run('UPDATE sim_trades SET cancel_calls = cancel_calls + 1 WHERE out_trade_no = $1', [
        outTradeNo,
      ]);
      // A code-10 customer who confirmed before the cancel arrived has paid: the cancel reverses.
      await this.settle(q, outTradeNo);
      const row = (await this.load(q, outTradeNo))!;
      if (row.state === 'user_paying') {
        await q.run(`UPDATE sim_trades SET state = 'closed' WHERE out_trade_no = $1`, [outTradeNo]);
        return { reversed: false };
      }
      if (row.state === 'succeeded') {
        if (refusePaid) return 'refused';
        await q.run(`UPDATE sim_trades SET state = 'reversed' WHERE out_trade_no = $1`, [outTradeNo]);
        return { reversed: true };
      }
      return { reversed: row.state === 'reversed' };
    });
    if (refused === 'refused') {
      throw new ProviderRejectedError(
        'cancel_refused',
        `the provider refuses to cancel trade ${outTradeNo}: it is paid and can no longer be canceled; refund it`,
      );
    }
    return refused;
  }

  async refund(
    outTradeNo: string,
    refundNo: string,
    amount: { value: number; currency: string },
  ): Promise<RefundResult> {
    if (!Number.isSafeInteger(amount.value) || amount.value <= 0) {
      throw new ProviderRejectedError(
        'invalid_amount',
        `refund ${refundNo}: the amount must be a positive whole number`,
      );
    }
    await this.db.tx(async (q) => {
      // The refund id first: a second refund under it (a retry, concurrent or later) finds it taken and
      // pays out nothing more. (On PostgreSQL a concurrent one waits here for the first to commit.)
      const taken = await q.run(
        `INSERT INTO sim_refunds (refund_no, out_trade_no, amount_value, currency, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (refund_no) DO NOTHING`,
        [refundNo, outTradeNo, amount.value, amount.currency, this.clock.now()],
      );
      if (taken.changes === 0) {
        const [first] = await q.query<{ out_trade_no: string; amount_value: unknown; currency: string }>(
          'SELECT out_trade_no, amount_value, currency FROM sim_refunds WHERE refund_no = $1',
          [refundNo],
        );
        if (
          first.out_trade_no === outTradeNo &&
          Number(first.amount_value) === amount.value &&
          first.currency === amount.currency
        )
          return; // the same refund again: already paid out
        throw new ProviderRejectedError(
          'refund_no_reused',
          `refund ${refundNo} was already made for ${first.amount_value} ${first.currency} of trade ${first.out_trade_no}`,
        );
      }
      await this.settle(q, outTradeNo);
      const done = await q.run(
        `UPDATE sim_trades SET refunded_value = refunded_value + $2
         WHERE out_trade_no = $1 AND state = 'succeeded' AND currency = $3 AND refunded_value + $2 <= amount_value`,
        [outTradeNo, amount.value, amount.currency],
      );
      if (done.changes === 1) return;
      const row = await this.load(q, outTradeNo);
      if (!row || row.charge_calls === 0) {
        throw new ProviderRejectedError('trade_not_found', `refund ${refundNo}: no trade ${outTradeNo}`);
      }
      if (row.state !== 'succeeded') {
        throw new ProviderRejectedError(
          'trade_not_refundable',
          `refund ${refundNo}: trade ${outTradeNo} is ${row.state}, only a paid trade can be refunded`,
        );
      }
      if (row.currency !== amount.currency) {
        throw new ProviderRejectedError(
          'currency_mismatch',
          `refund ${refundNo}: trade ${outTradeNo} is in ${row.currency}, not ${amount.currency}`,
        );
      }
      throw new ProviderRejectedError(
        'refund_exceeds_capture',
        `refund ${refundNo}: ${amount.value} more would exceed the ${row.amount_value} captured ` +
          `(${row.refunded_value} already refunded)`,
      );
    });
    return { refundNo };
  }

  /** Whether a refund id was paid out (a refused refund leaves no record: not found). */
  async queryRefund(outTradeNo: string, refundNo: string): Promise<RefundQueryResult> {
    const rows = await this.db.query(
      'SELECT 1 AS found FROM sim_refunds WHERE refund_no = $1 AND out_trade_no = $2',
      [refundNo, outTradeNo],
    );
    return rows.length ? { state: 'succeeded' } : { state: 'not_found' };
  }

  /** The stored trade (tests): counters, state, scenario. Undefined when the provider never heard of it. */
  async trade(outTradeNo: string): Promise<SimTradeRow | undefined> {
    return this.load(this.db, outTradeNo);
  }

  /** Charge calls over all trades (tests: "charged at most once"). A code-21 charge creates no trade and so
   * is counted only when its outTradeNo already had one. */
  async totalChargeCalls(): Promise<number> {
    const rows = await this.db.query<{ n: unknown }>(
      'SELECT COALESCE(SUM(charge_calls), 0) AS n FROM sim_trades',
    );
    return Number(rows[0]?.n ?? 0);
  }

  private async load(q: Q, outTradeNo: string): Promise<SimTradeRow | undefined> {
    const rows = await q.query('SELECT * FROM sim_trades WHERE out_trade_no = $1', [outTradeNo]);
    return rows[0] ? normalise(rows[0]) : undefined;
  }

  /** A code-10 trade whose customer has confirmed by now is paid; persist that. */
  private async settle(q: Q, outTradeNo: string): Promise<void> {
    await q.run(
      `UPDATE sim_trades SET state = 'succeeded'
       WHERE out_trade_no = $1 AND state = 'user_paying' AND succeeds_at IS NOT NULL AND succeeds_at <= $2`,
      [outTradeNo, this.clock.now()],
    );
  }

  private chargeResult(row: SimTradeRow, requestBrand: SimBrand): ChargeResult {
    const brand = parseScenario(row.scenario).brand ?? requestBrand;
    const tradeNo = tradeNoOf(row.out_trade_no);
    switch (row.state) {
      case 'succeeded':
        return { outcome: 'succeeded', tradeNo, brand };
      case 'user_paying':
        return { outcome: 'user_paying', tradeNo, brand };
      case 'failed':
        return { outcome: 'declined', ...declineOf(row), brand };
      case 'reversed':
        return {
          outcome: 'declined',
          code: 'trade_closed',
          message: 'trade closed: it was paid and reversed',
          brand,
        };
      case 'closed':
      default:
        return { outcome: 'declined', code: 'trade_closed', message: 'trade closed: it was canceled', brand };
    }
  }
}

function tradeNoOf(outTradeNo: string): string {
  return `SIM${outTradeNo}`;
}

function declineOf(row: SimTradeRow): { code: string; message: string } {
  return DECLINES[parseScenario(row.scenario).ending ?? ''] ?? { code: 'declined', message: 'declined' };
}
