/**
 * Payments: the server's source of truth for money.
 *
 * Creating a payment follows Stripe's idempotency semantics, keyed per store by the Idempotency-Key
 * header: the same key and body replays the stored response; the same key with another body is 422; the
 * same key while the first request still runs is 409; a request that fails validation is not stored; keys
 * are kept at least 24 hours.
 *
 * Every state change is journaled before anything is acted on: the new payment row (pending) commits before
 * the charge is sent, and each later change commits with its signed event in one transaction. A payment's
 * `pending` event (the push to devices) is written only if it stays pending past its create request (the
 * charge answered user_paying or an unknown outcome, or the sweeper or a cancel decides it): a charge
 * decided at once gives one event, the decision. The provider is never asked to charge twice: an unknown
 * outcome (timeout, 5xx, a crash between charge and answer) is resolved by querying, by PaymentSweeper. A
 * payment moves only out of `pending` (conditional UPDATE), so two instances or a late provider answer can
 * never decide it twice.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../protocol/canonical-json';
import { Clock } from '../protocol/clock';
import { ProtocolError } from '../protocol/errors';
import { formatMoney, money, Money } from '../protocol/money';
import { Payment, PaymentStatus } from '../protocol/states';
import { validateOrderId } from '../protocol/ids';
import { ApiError } from './api-error';
import { EventsService, PG_EVENT_RESULT, pgEventCtes } from './events.service';
import { PaymentHistory, PaymentNote } from './payment-history';
import {
  ChargeResult,
  PaymentProvider,
  ProviderRejectedError,
  ProviderUnknownError,
  QueryResult,
} from './providers/provider';
import { newId } from './server-crypto';
import { Device } from './stores.service';
import { Db, Queryable, SqlValue } from './storage/db';

export interface CreatePaymentInput {
  orderId: string;
  registerId: string;
  amount: { value: number; currency: string };
  method: { type: 'wallet_code'; code: string };
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  replayed: boolean;
}

export interface Refund {
  id: string;
  paymentId: string;
  amount: Money;
  status: 'succeeded';
  createdAt: string;
  payment: Payment;
}

/**
 * Wallet timing rules, in real-time milliseconds (divided by PAYCONNECT_SIM_SPEED): while the customer
 * confirms, query first within 5 s, then every 3-5 s; cancel (reverse) at 30 s. Idempotency keys live 24 h.
 */
export interface PaymentTiming {
  firstCheckMs: number;
  checkEveryMs: [number, number];
  deadlineMs: number;
  /** How long a request may hold its idempotency key before another may take it over (a crashed process). */
  keyLockMs: number;
  keyTtlMs: number;
}

export const WALLET_TIMING: PaymentTiming = {
  firstCheckMs: 5000,
  checkEveryMs: [3000, 5000],
  deadlineMs: 30_000,
  keyLockMs: 60_000,
  keyTtlMs: 24 * 60 * 60_000,
};

export function scaledTiming(speed: number, base: PaymentTiming = WALLET_TIMING): PaymentTiming {
  const s = speed > 0 ? speed : 1;
  return {
    firstCheckMs: base.firstCheckMs / s,
    checkEveryMs: [base.checkEveryMs[0] / s, base.checkEveryMs[1] / s],
    deadlineMs: base.deadlineMs / s,
    keyLockMs: base.keyLockMs,
    keyTtlMs: base.keyTtlMs,
  };
}

interface PaymentRow {
  id: string;
  store_id: string;
  device_id: string;
  order_id: string;
  register_id: string;
  amount_value: number;
  currency: string;
  status: PaymentStatus;
  method_type: string;
  method_brand: string | null;
  code_hint: string | null;
  provider_trade_no: string | null;
  failure_code: string | null;
  failure_message: string | null;
  refunded_value: number;
  reversed: number;
  deadline_at: number;
  next_check_at: number | null;
  checks: number;
  created_at: string;
  updated_at: string;
}

const WALLET_CODE = /^\d{10,32}$/;

/** Decides a pending payment (the first decision stands): $1 status … $8 id, see decideParams(). */
const DECIDE = `UPDATE payments SET status = $1, provider_trade_no = COALESCE($2, provider_trade_no),
    method_brand = COALESCE($3, method_brand), failure_code = $4, failure_message = $5, reversed = $6,
    next_check_at = NULL, lease_until = NULL, updated_at = $7
  WHERE id = $8 AND status = 'pending' AND (cancel_requested = 0 OR $1 <> 'succeeded') RETURNING *`;

function decideParams(id: string, change: Change, nowIso: string): SqlValue[] {
  return [
    change.status,
    change.tradeNo ?? null,
    change.brand ?? null,
    change.failure?.code ?? null,
    change.failure?.message ?? null,
    change.reversed ? 1 : 0,
    nowIso,
    id,
  ];
}

// The hot path's statements, spelt once (see journalNew and decideAtOnce).

const CLAIM_KEY = `INSERT INTO idempotency_keys (store_id, scope, idem_key, request_hash, state, resource_id, created_at, locked_until)
  VALUES ($1, 'payments', $2, $3, 'running', $4, $5, $6) ON CONFLICT DO NOTHING`;

const PENDING_INTO = `INSERT INTO payments (id, store_id, device_id, order_id, register_id, amount_value, currency,
    status, method_type, code_hint, deadline_at, next_check_at, lease_until, pending_event, created_at, updated_at)`;

/** SQLite: the pending payment, after CLAIM_KEY in the same transaction. */
const INSERT_PENDING = `${PENDING_INTO}
  VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 'wallet_code', $8, $9, $10, $9, 0, $11, $11)`;

/** PostgreSQL: CLAIM_KEY and the pending payment as one statement; no row when the key was taken. */
const PG_JOURNAL = `WITH k AS (${CLAIM_KEY} RETURNING resource_id)
  ${PENDING_INTO}
  SELECT k.resource_id, $1, $7, $8, $9, $10::bigint, $11, 'pending', 'wallet_code', $12, $13::bigint, $14::bigint,
    $13::bigint, 0, $15, $15 FROM k
  RETURNING id`;

/** A payment no one has touched since create() journaled it: pending, no event written. */
const DECIDE_AT_ONCE = `UPDATE payments SET status = $1, provider_trade_no = $2, method_brand = $3, failure_code = $4,
    failure_message = $5, reversed = $6, next_check_at = NULL, lease_until = NULL, updated_at = $7
  WHERE id = $8 AND status = 'pending' AND pending_event = 0 AND cancel_requested = 0`;

const COMPLETE_KEY = `UPDATE idempotency_keys SET state = 'done', response_status = $10, response_body = $9
  WHERE store_id = $11 AND scope = $12 AND idem_key = $13`;

/** PostgreSQL: the decision, its event (lock, insert, NOTIFY) and the completed key as one statement. */
const PG_DECIDE_AT_ONCE = `WITH p AS (${DECIDE_AT_ONCE} RETURNING store_id),
    ${pgEventCtes('p', 8, 9, 14, 7)},
    k AS (${COMPLETE_KEY} AND EXISTS (SELECT 1 FROM p))
  SELECT ${PG_EVENT_RESULT} FROM e`;

/** Completes an idempotency key with its answer: $1 status, $2 body, $3 store, $4 scope, $5 key. */
const STORE_ANSWER =
  "UPDATE idempotency_keys SET state = 'done', response_status = $1, response_body = $2 WHERE store_id = $3 AND scope = $4 AND idem_key = $5";

/** Completes the key of a refund ($5, its resource) still running: $1 status, $2 body, $3 store, $4 scope. */
const COMPLETE_KEY_OF = `UPDATE idempotency_keys SET state = 'done', response_status = $1, response_body = $2
  WHERE store_id = $3 AND scope = $4 AND resource_id = $5 AND state = 'running'`;

/** What the provider did with a refund: paid it out, or refused it (with its reason). */
type RefundOutcome = { ok: true } | { ok: false; message: string };

/** The answer to a refund the provider refused (422), as stored under its key. */
function refusedAnswer(message: string): { error: { code: string; message: string } } {
  return { error: { code: 'refund_refused', message } };
}

/** Never store or log a payment code: keep its first two and last two digits, enough to recognise it. */
export function codeHint(code: string): string {
  return code.length <= 4 ? '****' : `${code.slice(0, 2)}${'*'.repeat(code.length - 4)}${code.slice(-2)}`;
}

export function toPayment(r: PaymentRow): Payment {
  const p: Payment = {
    id: r.id,
    orderId: r.order_id,
    registerId: r.register_id,
    amount: { value: Number(r.amount_value), currency: r.currency },
    status: r.status,
    method: {
      type: r.method_type,
      ...(r.method_brand ? { brand: r.method_brand } : {}),
      ...(r.code_hint ? { code: r.code_hint } : {}),
    },
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
  if (r.failure_code) p.failure = { code: r.failure_code, message: r.failure_message ?? '' };
  if (Number(r.refunded_value) > 0) p.refunded = { value: Number(r.refunded_value), currency: r.currency };
  if (Number(r.reversed)) p.reversed = true;
  return p;
}

/**
 * The hash that tells "same request" from "same key, other request": canonical JSON of the body (plain
 * JSON data, as parsed from the request or built by the caller).
 */
function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/** create() deciding within its request: its Idempotency-Key (completed with 201 in the decision's
 * transaction) and the row create() inserted (so the decided payment, its event and signature are known
 * before the statement). */
type KeyCompletion = { key: string; row: PaymentRow };

export type Change = {
  status: PaymentStatus;
  tradeNo?: string;
  brand?: string;
  failure?: { code: string; message: string };
  reversed?: boolean;
};

/** How a cancel the provider refused for good ended (see settleRefusedCancel). */
export type RefusedCancelOutcome = 'charge_kept' | 'canceled' | 'failed';

export class PaymentsService {
  private readonly notes: PaymentHistory;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly provider: PaymentProvider,
    private readonly events: EventsService,
    private readonly timing: PaymentTiming = WALLET_TIMING,
    private readonly onChange: (p: Payment) => void = () => undefined,
    /** A payment decided after the provider refused its cancel (metrics count these). */
    private readonly onCancelRefused: (outcome: RefusedCancelOutcome, note: PaymentNote) => void = () =>
      undefined,
  ) {
    this.notes = new PaymentHistory(db);
  }

  /** Checks a create request; throws ApiError naming the field. Nothing is stored for a bad request. */
  validate(input: CreatePaymentInput): { amount: Money } {
    try {
      validateOrderId(input.orderId);
    } catch (e) {
      throw ApiError.badRequest('invalid_order_id', `orderId: ${(e as Error).message}`);
    }
    if (typeof input.registerId !== 'string' || !/^[A-Za-z0-9._:-]{1,32}$/.test(input.registerId)) {
      throw ApiError.badRequest('invalid_register_id', 'registerId must be 1-32 of A-Z a-z 0-9 . _ : -');
    }
    let amount: Money;
    try {
      amount = money(input.amount?.value, input.amount?.currency);
    } catch (e) {
      const field = (e as ProtocolError).code?.includes('currency') ? 'amount.currency' : 'amount.value';
      throw ApiError.badRequest('invalid_amount', `${field}: ${(e as Error).message}`);
    }
    if (input.method?.type !== 'wallet_code')
      throw ApiError.badRequest('invalid_method', 'method.type must be "wallet_code"');
    if (typeof input.method.code !== 'string' || !WALLET_CODE.test(input.method.code)) {
      // The message never repeats the code.
      throw ApiError.badRequest(
        'invalid_payment_code',
        "method.code must be the digits of the customer's payment code (10-32 digits)",
      );
    }
    return { amount };
  }

  async create(device: Device, idemKey: string, input: CreatePaymentInput): Promise<ApiResponse<Payment>> {
    const { amount } = this.validate(input);
    // The limit holds for new payments only: a retry of one made before the admin lowered it (or while
    // another instance still knew the old value) must get its stored answer, not a refusal the unit would
    // read as "nothing was charged".
    if (amount.value > device.maxPaymentValue && !(await this.keyExists(device.storeId, idemKey))) {
      throw ApiError.unprocessable(
        'amount_too_large',
        `amount.value: ${formatMoney(amount, { symbol: true, grouping: true })} is more than this store's largest single payment, ` +
          `${formatMoney({ value: device.maxPaymentValue, currency: amount.currency }, { symbol: true, grouping: true })}; check the amount, or ` +
          `ask the admin to raise the store's maxPaymentValue`,
      );
    }
    const hash = requestHash(input);
    const now = this.clock.now();
    const iso = new Date(now).toISOString();
    const id = newId('pay');

    const row: PaymentRow = {
      id,
      store_id: device.storeId,
      device_id: device.deviceId,
      order_id: input.orderId,
      register_id: input.registerId,
      amount_value: amount.value,
      currency: amount.currency,
      status: 'pending',
      method_type: 'wallet_code',
      method_brand: null,
      code_hint: codeHint(input.method.code),
      provider_trade_no: null,
      failure_code: null,
      failure_message: null,
      refunded_value: 0,
      reversed: 0,
      deadline_at: now + this.timing.deadlineMs,
      // A safety net: if this process dies before the charge's answer is recorded, the sweeper asks.
      next_check_at: now + this.timing.firstCheckMs,
      checks: 0,
      created_at: iso,
      updated_at: iso,
    };
    const claimed = await this.journalNew(row, idemKey, hash, now);
    const start = claimed
      ? { kind: 'new' as const }
      : await this.db.tx((q) => this.existingKey(q, device.storeId, 'payments', idemKey, hash, now));

    if (start.kind === 'replay') return { status: start.status, body: start.body as Payment, replayed: true };
    if (start.kind === 'resume') {
      // The request that held this key died; answer with the payment as it stands (the sweeper finishes it).
      const payment = await this.load(start.resourceId);
      return this.completeKey(device.storeId, 'payments', idemKey, 201, payment);
    }

    let outcome: ChargeResult | undefined;
    try {
      outcome = await this.provider.charge({
        outTradeNo: id,
        amount,
        code: input.method.code,
        storeId: device.storeId,
      });
    } catch (e) {
      if (!(e instanceof ProviderUnknownError)) {
        await this.decide(
          id,
          { status: 'failed', failure: { code: 'provider_error', message: (e as Error).message } },
          { atOnce: true },
        );
      } else {
        // Unknown outcome: stays pending; the sweeper queries at next_check_at, never charges again.
        const pending = await this.db.tx((q) => this.pendingEvent(q, id));
        if (pending) await this.events.announce(pending.storeId, pending.seq);
      }
    }
    if (outcome) {
      // A final answer is recorded and the key completed in one transaction: one commit, no reload. (The
      // decision also clears the lease.)
      const decided = await this.applyCharge(id, outcome, { key: idemKey, row });
      if (decided) return { status: 201, body: decided, replayed: false };
    }
    // The charge has answered (or failed): from now on the sweeper queries a payment still pending.
    await this.db.run(
      "UPDATE payments SET lease_until = NULL WHERE id = $1 AND status = 'pending' AND lease_until = $2",
      [id, now + this.timing.deadlineMs],
    );
    const payment = await this.load(id);
    return this.completeKey(device.storeId, 'payments', idemKey, 201, payment);
  }

  private async keyExists(storeId: string, key: string): Promise<boolean> {
    const rows = await this.db.query(
      "SELECT 1 AS k FROM idempotency_keys WHERE store_id = $1 AND scope = 'payments' AND idem_key = $2",
      [storeId, key],
    );
    return rows.length > 0;
  }

  /**
   * The journal of a new payment: claims the Idempotency-Key and inserts the payment, pending, in one
   * commit. False if the key was taken (nothing is written). The payment is leased to this request while
   * its charge is in flight (until the deadline at most), so the sweeper never takes a charge that has not
   * reached the provider yet for a lost one. Its `pending` event (the push to devices) is written only if
   * the charge does not decide the payment within this request: see pendingEvent().
   *
   * On PostgreSQL this is one statement (one round trip, committed on its own); on SQLite, where a
   * statement costs no round trip, two in one transaction of the group commit.
   */
  private async journalNew(row: PaymentRow, idemKey: string, hash: string, now: number): Promise<boolean> {
    const keyParams = [row.store_id, idemKey, hash, row.id, now, now + this.timing.keyLockMs];
    const paymentParams = [
      row.device_id,
      row.order_id,
      row.register_id,
      row.amount_value,
      row.currency,
      row.code_hint,
      row.deadline_at,
      row.next_check_at,
      row.created_at,
    ];
    if (this.db.kind === 'postgres') {
      const rows = await this.db.query(PG_JOURNAL, [...keyParams, ...paymentParams]);
      return rows.length === 1;
    }
    return this.db.tx(async (q) => {
      if ((await q.run(CLAIM_KEY, keyParams)).changes === 0) return false;
      await q.run(INSERT_PENDING, [row.id, row.store_id, ...paymentParams]);
      return true;
    });
  }

  private async existingKey(
    q: Queryable,
    storeId: string,
    scope: string,
    key: string,
    hash: string,
    now: number,
  ): Promise<{ kind: 'replay'; status: number; body: unknown } | { kind: 'resume'; resourceId: string }> {
    const row = (
      await q.query<{
        request_hash: string;
        state: string;
        resource_id: string;
        response_status: number;
        response_body: string;
        locked_until: number;
        created_at: number;
      }>(
        'SELECT request_hash, state, resource_id, response_status, response_body, locked_until, created_at FROM idempotency_keys WHERE store_id = $1 AND scope = $2 AND idem_key = $3',
        [storeId, scope, key],
      )
    )[0];
    if (row.request_hash !== hash) {
      throw ApiError.unprocessable(
        'idempotency_key_reused',
        'this Idempotency-Key was used with a different request body; use a new key for a new request',
      );
    }
    if (row.state === 'done')
      return { kind: 'replay', status: Number(row.response_status), body: JSON.parse(row.response_body) };
    if (Number(row.locked_until) > now) {
      throw ApiError.conflict(
        'idempotency_key_in_use',
        'a request with this Idempotency-Key is still being processed; retry in a moment',
      );
    }
    await q.run(
      'UPDATE idempotency_keys SET locked_until = $1 WHERE store_id = $2 AND scope = $3 AND idem_key = $4',
      [now + this.timing.keyLockMs, storeId, scope, key],
    );
    return { kind: 'resume', resourceId: row.resource_id };
  }

  private async completeKey<T>(
    storeId: string,
    scope: string,
    key: string,
    status: number,
    body: T,
  ): Promise<ApiResponse<T>> {
    await this.db.run(STORE_ANSWER, [status, JSON.stringify(body), storeId, scope, key]);
    return { status, body, replayed: false };
  }

  /**
   * Records what the provider said about a charge. With `complete` (create(), the charge answered within
   * the request), a final answer also completes that idempotency key in the same transaction, and the
   * decided payment is returned; its `pending` event is then never written, as no one saw it pending
   * through events.
   */
  async applyCharge(
    id: string,
    outcome: ChargeResult,
    complete?: KeyCompletion,
  ): Promise<Payment | undefined> {
    switch (outcome.outcome) {
      case 'succeeded':
        return this.decide(
          id,
          { status: 'succeeded', tradeNo: outcome.tradeNo, brand: outcome.brand },
          { complete },
        );
      case 'declined':
        return this.decide(
          id,
          {
            status: 'failed',
            brand: outcome.brand,
            failure: { code: outcome.code, message: outcome.message },
          },
          { complete },
        );
      case 'user_paying': {
        // The customer confirms on the phone: first query within firstCheckMs (already scheduled). The
        // payment stays pending for a while, so its `pending` event is written now.
        const pending = await this.db.tx(async (q) => {
          await q.run('UPDATE payments SET provider_trade_no = $1, method_brand = $2 WHERE id = $3', [
            outcome.tradeNo,
            outcome.brand,
            id,
          ]);
          return this.pendingEvent(q, id);
        });
        if (pending) await this.events.announce(pending.storeId, pending.seq);
        return undefined;
      }
    }
  }

  /**
   * Moves a pending payment to a final status, journaling the signed event in the same transaction.
   * A payment that is no longer pending is left alone: the first decision stands.
   */
  async transition(id: string, change: Change): Promise<boolean> {
    return (await this.decide(id, change)) !== undefined;
  }

  /**
   * Writes the `pending` event of a payment still pending whose event is not written yet (create() skips it
   * while the charge may still decide the payment at once), inside the caller's transaction. The
   * conditional UPDATE makes it happen once, also with several instances (PostgreSQL row lock).
   */
  private async pendingEvent(
    q: Queryable,
    id: string,
  ): Promise<{ storeId: string; seq: number } | undefined> {
    const row = (
      await q.query<PaymentRow>(
        "UPDATE payments SET pending_event = 1 WHERE id = $1 AND status = 'pending' AND pending_event = 0 RETURNING *",
        [id],
      )
    )[0];
    if (!row) return undefined;
    return { storeId: row.store_id, seq: await this.events.record(q, row.store_id, toPayment(row)) };
  }

  /**
   * transition() returning the decided payment; with `complete`, also completes that key in the same tx.
   * Unless `atOnce` (create() deciding within the request), a `pending` event not written yet is written
   * first, so a device sees pending, then the decision.
   */
  private async decide(
    id: string,
    change: Change,
    opts: {
      complete?: KeyCompletion;
      atOnce?: boolean;
      /** Clears cancel_requested first (a cancel the provider refused: the charge may stand). */
      clearCancel?: boolean;
      /** Written with the decision (only if the payment is decided). */
      note?: Omit<PaymentNote, 'paymentId' | 'at'>;
    } = {},
  ): Promise<Payment | undefined> {
    const { complete } = opts;
    if (complete) return this.decideAtOnce(change, complete);
    const nowIso = new Date(this.clock.now()).toISOString();
    const result = await this.db.tx(async (q) => {
      if (!opts.atOnce) await this.pendingEvent(q, id);
      if (opts.clearCancel) {
        await q.run("UPDATE payments SET cancel_requested = 0 WHERE id = $1 AND status = 'pending'", [id]);
      }
      const row = (await q.query<PaymentRow>(DECIDE, decideParams(id, change, nowIso)))[0];
      if (!row) return undefined;
      const payment = toPayment(row);
      if (opts.note) {
        await this.notes.record(q, row.store_id, { ...opts.note, paymentId: id, at: nowIso });
      }
      const seq = await this.events.record(q, row.store_id, payment);
      return { storeId: row.store_id, seq, payment };
    });
    if (!result) return undefined;
    await this.events.announce(result.storeId, result.seq);
    this.onChange(result.payment);
    return result.payment;
  }

  /**
   * create() deciding its payment within the request (the hot path): the decision, its signed event and
   * the completed Idempotency-Key in one commit. The decided payment is known before the statement (the row
   * create() inserted, with the change), so its signature is made on the thread pool while the transaction
   * waits for its group commit on SQLite, which then takes it (a ~25 µs job, never a network call; measured:
   * 0.60 -> 0.62 of bare Fastify's rate, against signing before queueing the transaction). The UPDATE
   * matches only while the payment is pending with no event written (`pending_event = 0`): no one else has
   * touched it, so the row is exactly that payment. On PostgreSQL this is one statement.
   */
  private async decideAtOnce(change: Change, k: KeyCompletion): Promise<Payment | undefined> {
    const nowIso = new Date(this.clock.now()).toISOString();
    const payment = toPayment({
      ...k.row,
      status: change.status,
      method_brand: change.brand ?? null,
      failure_code: change.failure?.code ?? null,
      failure_message: change.failure?.message ?? null,
      reversed: change.reversed ? 1 : 0,
      updated_at: nowIso,
    });
    const body = JSON.stringify(payment);
    const signing = this.events.signAsync(k.row.store_id, payment);
    signing.catch(() => undefined); // awaited below; never an unhandled rejection if the UPDATE misses
    const params = decideParams(k.row.id, change, nowIso);
    const keyParams = [body, 201, k.row.store_id, 'payments', k.key];
    if (this.db.kind === 'postgres') {
      const rows = await this.db.query<{ seq: number }>(PG_DECIDE_AT_ONCE, [
        ...params,
        ...keyParams,
        await signing,
      ]);
      if (rows.length === 0) return undefined;
    } else {
      const seq = await this.db.tx(async (q) => {
        if ((await q.run(DECIDE_AT_ONCE, params)).changes === 0) return undefined;
        await q.run(COMPLETE_KEY, [...params, ...keyParams]);
        return this.events.record(q, k.row.store_id, payment, await signing, body);
      });
      if (seq === undefined) return undefined;
      await this.events.announce(k.row.store_id, seq);
    }
    this.onChange(payment);
    return payment;
  }

  async load(id: string): Promise<Payment> {
    const row = (await this.db.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [id]))[0];
    if (!row) throw ApiError.notFound(`payment ${id}`);
    return toPayment(row);
  }

  /** A device sees only its own store's payments; another store's id is simply not found. */
  async get(device: Device, id: string): Promise<Payment> {
    const row = (
      await this.db.query<PaymentRow>('SELECT * FROM payments WHERE id = $1 AND store_id = $2', [
        id,
        device.storeId,
      ])
    )[0];
    if (!row) throw ApiError.notFound(`payment ${id}`);
    return toPayment(row);
  }

  /**
   * The payment a request with this Idempotency-Key created, if any: how a device that lost the answer
   * (timeout, crash) learns the outcome without sending the charge again.
   */
  async findByIdempotencyKey(device: Device, key: string): Promise<Payment[]> {
    const rows = await this.db.query<PaymentRow>(
      `SELECT p.* FROM idempotency_keys k JOIN payments p ON p.id = k.resource_id
        WHERE k.store_id = $1 AND k.scope = 'payments' AND k.idem_key = $2 AND p.store_id = $1`,
      [device.storeId, key],
    );
    return rows.map(toPayment);
  }

  /** A payment with the server's signature over its current state, for devices that poll. */
  signed(device: Device, payment: Payment): { payment: Payment; signature: string } {
    return { payment, signature: this.events.sign(device.storeId, payment) };
  }

  async listByOrder(device: Device, orderId: string): Promise<Payment[]> {
    const rows = await this.db.query<PaymentRow>(
      'SELECT * FROM payments WHERE store_id = $1 AND order_id = $2 ORDER BY created_at',
      [device.storeId, orderId],
    );
    return rows.map(toPayment);
  }

  /**
   * Cancels a payment still pending, closing or reversing its trade at the provider. A cancel either wins
   * (the trade closed or reversed, the payment `canceled`, the devices told) or loses (409, the payment
   * succeeded and the charge stands); never both. The intent is journaled first (`cancel_requested`, only
   * while pending): from that commit on no charge answer or query can decide the payment `succeeded`
   * (DECIDE, DECIDE_AT_ONCE), so a charge that was in flight when the cancel came is reversed by it rather
   * than reported paid. If the provider does not confirm the cancel, the sweeper keeps cancelling.
   */
  async cancel(device: Device, id: string): Promise<Payment> {
    const payment = await this.get(device, id);
    if (payment.status !== 'pending') return this.afterCancel(payment);
    const marked = await this.db.run(
      "UPDATE payments SET cancel_requested = 1 WHERE id = $1 AND status = 'pending'",
      [id],
    );
    if (marked.changes === 0) return this.afterCancel(await this.load(id));
    let result: { reversed: boolean };
    try {
      result = await this.provider.cancel(id);
    } catch (e) {
      let refused = false;
      if (e instanceof ProviderRejectedError) {
        // Refused for good: the provider's answer about the trade decides the payment, now if it can.
        refused = true;
        const settled = await this.settleRefusedCancel(id, e).catch(() => undefined);
        if (settled) return this.afterCancel(await this.load(id));
      }
      // The cancel is journaled: the sweeper takes the payment at its next check and cancels it again.
      await this.db.run("UPDATE payments SET next_check_at = $1 WHERE id = $2 AND status = 'pending'", [
        this.clock.now(),
        id,
      ]);
      throw new ApiError(
        502,
        'cancel_pending',
        refused
          ? `the provider refused the cancel of payment ${id} (${(e as Error).message}) and its trade is not decided yet; the server keeps asking the provider and decides the payment from its answer (succeeded if the customer pays: then refund it): watch its status`
          : `the provider did not confirm the cancel of payment ${id} (${(e as Error).message}); it cannot succeed any more and the server keeps cancelling it: watch its status`,
      );
    }
    await this.transition(id, canceledChange(result.reversed, 'register'));
    return this.afterCancel(await this.load(id));
  }

  /**
   * A cancel the provider refused for good (ProviderRejectedError: its cancel window has passed, the trade
   * is paid and may only be refunded…): asking again would be refused forever and leave the payment
   * pending, so the provider is asked about the trade and the payment decided from its answer:
   * - paid: the charge stands. cancel_requested is cleared in the decision's transaction (it blocks
   *   `succeeded` in DECIDE) and the payment is `succeeded`: the register may refund it;
   * - closed / failed: `canceled` / `failed`, nothing was charged;
   * - still confirming, or unknown to the provider: undecided (undefined); the sweeper asks again later.
   * The decision carries a `cancel_refused` note in the payment's history saying why, and is counted.
   * Throws when the query itself fails (the sweeper then tries again).
   */
  async settleRefusedCancel(
    id: string,
    refusal: ProviderRejectedError,
  ): Promise<RefusedCancelOutcome | undefined> {
    const answer: QueryResult = await this.provider.query(id);
    const why = `cancel refused by provider (${refusal.code}: ${refusal.message})`;
    let outcome: RefusedCancelOutcome;
    let change: Change;
    let message: string;
    switch (answer.state) {
      case 'succeeded':
        outcome = 'charge_kept';
        change = { status: 'succeeded', tradeNo: answer.tradeNo };
        message = `cancel refused by provider; charge kept: the provider refused the cancel (${refusal.code}: ${refusal.message}) and reports the trade paid, so the payment succeeded. If the customer should get the money back, refund it`;
        break;
      case 'closed':
        outcome = 'canceled';
        change = {
          status: 'canceled',
          failure: { code: 'closed', message: 'the provider closed the trade unpaid' },
        };
        message = `${why}; the provider reports the trade closed unpaid: canceled, nothing was charged`;
        break;
      case 'failed':
        outcome = 'failed';
        change = { status: 'failed', failure: { code: answer.code, message: answer.message } };
        message = `${why}; the provider reports the charge failed (${answer.code}): nothing was charged`;
        break;
      default:
        return undefined;
    }
    const decided = await this.decide(id, change, {
      clearCancel: outcome === 'charge_kept',
      note: { kind: 'cancel_refused', message },
    });
    if (!decided) return undefined;
    this.onCancelRefused(outcome, {
      paymentId: id,
      kind: 'cancel_refused',
      message,
      at: decided.updatedAt,
    });
    return outcome;
  }

  /**
   * The history notes of a payment, oldest first: of the device's store, or (the admin, no device) of any
   * store. Another store's payment is not found.
   */
  async history(device: Device | undefined, id: string): Promise<PaymentNote[]> {
    const rows = await this.db.query<{ store_id: string }>('SELECT store_id FROM payments WHERE id = $1', [
      id,
    ]);
    if (!rows[0] || (device && rows[0].store_id !== device.storeId)) throw ApiError.notFound(`payment ${id}`);
    return this.notes.list(rows[0].store_id, id);
  }

  /** What a cancel answers for a payment already decided: a charge that stands is a 409, never a 200. */
  private afterCancel(payment: Payment): Payment {
    if (payment.status === 'succeeded' || payment.status === 'refunded') {
      throw ApiError.conflict(
        'payment_succeeded',
        `payment ${payment.id} succeeded before the cancel; the charge stands: refund it instead of canceling`,
      );
    }
    return payment;
  }

  /**
   * Refunds part or all of a succeeded payment; never more than was captured. Idempotent by key.
   *
   * Who may refund: the store's plugin (the register's side, where the cashier's manager works) — not a
   * mobile unit, whose clerk could otherwise hand money back to anyone — and the admin through the plugin's
   * store. Refunds of one payment are serialised at the decision: the payment's row is locked (PostgreSQL)
   * or the transaction is alone (SQLite), and the cap counts refunds still pending, so ten concurrent full
   * refunds give one refund and nine clean refusals even with a provider that keeps no cap of its own. A
   * provider's refusal is the refund's answer (422 with its reason), kept under the key like any answer.
   */
  async refund(
    device: Device,
    id: string,
    idemKey: string,
    input: { amount?: { value: number; currency: string } | null },
  ): Promise<ApiResponse<Refund>> {
    const payment = await this.get(device, id);
    if (device.role !== 'plugin') {
      throw ApiError.forbidden(
        `a ${device.role} may not refund: refunds are made at the register (the store's plugin), where the manager can approve them`,
      );
    }
    if (input.amount === null) {
      throw ApiError.badRequest(
        'invalid_amount',
        'amount: must be {value, currency} in minor units, or left out to refund everything left',
      );
    }
    const captured = payment.amount.value - (payment.refunded?.value ?? 0);
    let value = captured;
    if (input.amount !== undefined) {
      try {
        value = money(input.amount.value, input.amount.currency).value;
      } catch (e) {
        throw ApiError.badRequest('invalid_amount', `amount: ${(e as Error).message}`);
      }
      if (input.amount.currency !== payment.amount.currency) {
        throw ApiError.badRequest(
          'invalid_amount',
          `amount.currency must be ${payment.amount.currency}, the payment's currency`,
        );
      }
    }
    // Plain data only (the body may arrive as DTO instances).
    const asked = input.amount ? { value: input.amount.value, currency: input.amount.currency } : null;
    const hash = requestHash({ paymentId: id, amount: asked });
    const scope = `refund:${id}`;
    const now = this.clock.now();
    const refundId = newId('re');
    const lock = this.db.kind === 'postgres' ? ' FOR UPDATE' : '';
    const start = await this.db.tx(async (q) => {
      const claimed = await q.run(
        `INSERT INTO idempotency_keys (store_id, scope, idem_key, request_hash, state, resource_id, created_at, locked_until)
         VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) ON CONFLICT DO NOTHING`,
        [device.storeId, scope, idemKey, hash, refundId, now, now + this.timing.keyLockMs],
      );
      if (claimed.changes === 0) return this.existingKey(q, device.storeId, scope, idemKey, hash, now);
      // Thrown errors roll the key back with the rest: a refused refund leaves no key running.
      const current = (await q.query<PaymentRow>(`SELECT * FROM payments WHERE id = $1${lock}`, [id]))[0];
      if (current.status !== 'succeeded') {
        throw ApiError.conflict(
          'not_refundable',
          `payment ${id} is ${current.status}; only a succeeded payment can be refunded`,
        );
      }
      const pending = Number(
        (
          await q.query<{ n: number | string }>(
            "SELECT COALESCE(SUM(amount_value), 0) AS n FROM refunds WHERE payment_id = $1 AND status = 'pending'",
            [id],
          )
        )[0].n,
      );
      const left = Number(current.amount_value) - Number(current.refunded_value) - pending;
      if (value > left) {
        throw ApiError.unprocessable(
          'refund_exceeds_capture',
          `a refund of ${value} is more than the ${Math.max(0, left)} left to refund on payment ${id} ` +
            `(${current.refunded_value} refunded${pending ? `, ${pending} being refunded now` : ''})`,
        );
      }
      await q.run(
        `INSERT INTO refunds (id, payment_id, amount_value, status, created_at, next_check_at)
         VALUES ($1, $2, $3, 'pending', $4, $5)`,
        // The sweeper asks about it only once this request's hold on the key has lapsed.
        [refundId, id, value, new Date(now).toISOString(), now + this.timing.keyLockMs],
      );
      return { kind: 'new' as const };
    });
    if (start.kind === 'replay') return { status: start.status, body: start.body as Refund, replayed: true };
    const rid = start.kind === 'resume' ? start.resourceId : refundId;
    const refundRow = (
      await this.db.query<{
        amount_value: number;
        status: string;
        created_at: string;
        failure_message: string | null;
      }>('SELECT amount_value, status, created_at, failure_message FROM refunds WHERE id = $1', [rid])
    )[0];
    if (refundRow.status === 'failed') {
      // Only a resumed key gets here: its request died after the refusal was recorded and before its key
      // was completed (an older server did the two in separate transactions). Its answer is the refusal.
      const error = refusedAnswer(refundRow.failure_message ?? `refund ${rid} was refused by the provider`);
      await this.completeKey(device.storeId, scope, idemKey, 422, error);
      throw ApiError.unprocessable(error.error.code, error.error.message);
    }
    if (refundRow.status === 'pending') {
      let outcome: RefundOutcome;
      try {
        await this.provider.refund(id, rid, {
          value: Number(refundRow.amount_value),
          currency: payment.amount.currency,
        });
        outcome = { ok: true };
      } catch (e) {
        if (!(e instanceof ProviderRejectedError)) {
          // Unknown outcome: the refund stays pending (and counts against the cap); the same key retried
          // after a moment sends the same refund id again, which the provider takes at most once. Not
          // retried, the sweeper asks the provider about it once the key's hold lapses.
          throw new ApiError(
            502,
            'refund_unknown',
            `the provider did not answer the refund (${(e as Error).message}); retry with the same Idempotency-Key`,
          );
        }
        // Nothing was paid out: the refund failed, and that is this key's answer from now on.
        outcome = { ok: false, message: `the provider refused the refund: ${e.message}` };
      }
      await this.settleRefund(rid, outcome);
    }
    // Decided now (here, by a request before, or by the sweeper): the key's answer, stored with the
    // decision; a key a crash left running (an older server) is completed here.
    const stored = await this.keyAnswer(device.storeId, scope, idemKey);
    if (stored) return this.refundAnswer(stored.status, stored.body);
    const refund: Refund = {
      id: rid,
      paymentId: id,
      amount: { value: Number(refundRow.amount_value), currency: payment.amount.currency },
      status: 'succeeded',
      createdAt: refundRow.created_at,
      payment: await this.load(id),
    };
    return this.completeKey(device.storeId, scope, idemKey, 201, refund);
  }

  /** A refund's answer as an ApiResponse (201) or the ApiError it is (422 refused). */
  private refundAnswer(status: number, body: unknown): ApiResponse<Refund> {
    if (status === 422) {
      const e = (body as { error: { code: string; message: string } }).error;
      throw ApiError.unprocessable(e.code, e.message);
    }
    return { status, body: body as Refund, replayed: false };
  }

  private async keyAnswer(
    storeId: string,
    scope: string,
    key: string,
  ): Promise<{ status: number; body: unknown } | undefined> {
    const [k] = await this.db.query<{ state: string; response_status: number; response_body: string }>(
      'SELECT state, response_status, response_body FROM idempotency_keys WHERE store_id = $1 AND scope = $2 AND idem_key = $3',
      [storeId, scope, key],
    );
    if (!k || k.state !== 'done') return undefined;
    return { status: Number(k.response_status), body: JSON.parse(k.response_body) };
  }

  /**
   * Decides a pending refund, with its key's answer, in one transaction: paid out (the payment's refunded
   * amount and status, its signed event, 201 with the refund) or refused (failed with the reason, 422).
   * Undefined when it was decided already (the first decision stands).
   */
  private async settleRefund(rid: string, outcome: RefundOutcome): Promise<boolean> {
    const nowIso = new Date(this.clock.now()).toISOString();
    const done = await this.db.tx(async (q) => {
      const [refund] = await q.query<{
        payment_id: string;
        amount_value: number;
        created_at: string;
      }>(
        outcome.ok
          ? "UPDATE refunds SET status = 'succeeded', next_check_at = NULL WHERE id = $1 AND status = 'pending' RETURNING payment_id, amount_value, created_at"
          : "UPDATE refunds SET status = 'failed', failure_message = $2, next_check_at = NULL WHERE id = $1 AND status = 'pending' RETURNING payment_id, amount_value, created_at",
        outcome.ok ? [rid] : [rid, outcome.message],
      );
      if (!refund) return undefined;
      const scope = `refund:${refund.payment_id}`;
      if (!outcome.ok) {
        const [p] = await q.query<{ store_id: string }>('SELECT store_id FROM payments WHERE id = $1', [
          refund.payment_id,
        ]);
        await q.run(COMPLETE_KEY_OF, [
          422,
          JSON.stringify(refusedAnswer(outcome.message)),
          p.store_id,
          scope,
          rid,
        ]);
        return { event: undefined };
      }
      const row = (
        await q.query<PaymentRow>(
          `UPDATE payments SET refunded_value = refunded_value + $1,
             status = CASE WHEN refunded_value + $1 >= amount_value THEN 'refunded' ELSE status END, updated_at = $2
           WHERE id = $3 RETURNING *`,
          [Number(refund.amount_value), nowIso, refund.payment_id],
        )
      )[0];
      const payment = toPayment(row);
      const body: Refund = {
        id: rid,
        paymentId: refund.payment_id,
        amount: { value: Number(refund.amount_value), currency: row.currency },
        status: 'succeeded',
        createdAt: refund.created_at,
        payment,
      };
      await q.run(COMPLETE_KEY_OF, [201, JSON.stringify(body), row.store_id, scope, rid]);
      return { event: { seq: await this.events.record(q, row.store_id, payment), storeId: row.store_id } };
    });
    if (done?.event) await this.events.announce(done.event.storeId, done.event.seq);
    return done !== undefined;
  }

  /**
   * Finishes refunds still pending whose request will not (its answer was lost and it was not retried, or
   * it died): once due (the request's hold on its key lapsed), asks the provider what became of the refund
   * id: paid out, recorded (201 under its key); refused, failed (422); never received, sent again under the
   * same id, which the provider takes at most once. No answer: asked again in 3-5 s. Several instances may
   * do this at once: each takes a refund by moving its next check (a lease), and a decision is made once.
   * Returns how many were decided.
   */
  async resolvePendingRefunds(limit: number): Promise<number> {
    const now = this.clock.now();
    const due = await this.db.query<{
      id: string;
      payment_id: string;
      amount_value: number;
      currency: string;
    }>(
      `SELECT r.id, r.payment_id, r.amount_value, p.currency FROM refunds r JOIN payments p ON p.id = r.payment_id
        WHERE r.status = 'pending' AND r.next_check_at <= $1 ORDER BY r.next_check_at LIMIT $2`,
      [now, limit],
    );
    let decided = 0;
    for (const r of due) {
      const [lo, hi] = this.timing.checkEveryMs;
      const next = Math.round(now + lo + Math.random() * (hi - lo));
      const taken = await this.db.run(
        "UPDATE refunds SET next_check_at = $1 WHERE id = $2 AND status = 'pending' AND next_check_at <= $3",
        [next, r.id, now],
      );
      if (taken.changes === 0) continue;
      const outcome = await this.askAboutRefund(r.payment_id, r.id, {
        value: Number(r.amount_value),
        currency: r.currency,
      });
      if (outcome && (await this.settleRefund(r.id, outcome))) decided++;
    }
    return decided;
  }

  /** What became of a refund, per the provider; undefined while it cannot tell (ask again later). */
  private async askAboutRefund(
    paymentId: string,
    rid: string,
    amount: Money,
  ): Promise<RefundOutcome | undefined> {
    try {
      const q = await this.provider.queryRefund(paymentId, rid);
      if (q.state === 'succeeded') return { ok: true };
      if (q.state === 'failed')
        return { ok: false, message: `the provider refused the refund: ${q.message}` };
      await this.provider.refund(paymentId, rid, amount);
      return { ok: true };
    } catch (e) {
      if (e instanceof ProviderRejectedError)
        return { ok: false, message: `the provider refused the refund: ${e.message}` };
      return undefined;
    }
  }

  /** Forgets idempotency keys older than their time to live (run by the sweeper). */
  async expireKeys(): Promise<number> {
    const r = await this.db.run("DELETE FROM idempotency_keys WHERE created_at < $1 AND state = 'done'", [
      this.clock.now() - this.timing.keyTtlMs,
    ]);
    return r.changes;
  }
}

/** The decision of a canceled payment: reversed (the customer had paid; the money went back) or closed. */
export function canceledChange(reversed: boolean, by: 'register' | 'deadline'): Change {
  if (!reversed)
    return by === 'register'
      ? { status: 'canceled', failure: { code: 'canceled', message: 'canceled before the customer paid' } }
      : {
          status: 'canceled',
          failure: {
            code: 'customer_timeout',
            message: 'the customer did not confirm in time; nothing was charged',
          },
        };
  return {
    status: 'canceled',
    reversed: true,
    failure: {
      code: 'reversed',
      message:
        by === 'register'
          ? "canceled; the customer's money was returned"
          : 'the customer confirmed after the time limit; the payment was reversed and the money returned',
    },
  };
}
