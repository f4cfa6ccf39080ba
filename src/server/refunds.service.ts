/**
 * Refunds of succeeded payments (POST /v1/payments/:id/refunds), idempotent by key (scope
 * `refund:<paymentId>`), and the finishing of refunds whose answer never came (run by the sweeper).
 *
 * Every refund is journaled `pending`, with its key, before the provider is asked; its decision (paid out:
 * the payment's refunded amount and status, its signed event; or refused, with the reason) commits in one
 * transaction with its key's answer. The provider takes a refund id at most once, so sending a refund again
 * under its id (a retry with the same key, or the sweeper) never pays out twice.
 */
import { Clock } from '../protocol/clock';
import { money, Money } from '../protocol/money';
import { Payment } from '../protocol/states';
import { ApiError } from './api-error';
import { EventsService } from './events.service';
import { ApiResponse, IdempotencyKeys, requestHash } from './idempotency-keys';
import { PaymentRepository, toPayment } from './payment-repository';
import { PaymentProvider, ProviderRejectedError } from './providers/provider';
import { newId } from './server-crypto';
import { Db, Queryable } from './storage/db';
import { sql } from './storage/named-sql';
import { Device } from './stores.service';

export interface Refund {
  id: string;
  paymentId: string;
  amount: Money;
  status: 'succeeded';
  createdAt: string;
  payment: Payment;
}

/** What RefundsService needs of the payment timing rules. */
export interface RefundTiming {
  /** How long a request holds its key; the sweeper asks about a pending refund only after that. */
  keyLockMs: number;
  keyTtlMs: number;
  /** How soon the sweeper asks again about a refund the provider could not tell about. */
  checkEveryMs: [number, number];
}

/** What the provider did with a refund: paid it out, or refused it (with its reason). */
type RefundOutcome = { ok: true } | { ok: false; message: string };

/** The answer to a refund the provider refused (422), as stored under its key. */
function refusedAnswer(message: string): { error: { code: string; message: string } } {
  return { error: { code: 'refund_refused', message } };
}

interface RefundRow {
  id: string;
  payment_id: string;
  amount_value: number;
  status: 'pending' | 'succeeded' | 'failed';
  created_at: string;
  failure_message: string | null;
}

const PENDING_SUM = sql<{ payment_id: string }>(
  "SELECT COALESCE(SUM(amount_value), 0) AS n FROM refunds WHERE payment_id = :payment_id AND status = 'pending'",
);
const INSERT = sql<{
  id: string;
  payment_id: string;
  amount_value: number;
  created_at: string;
  next_check_at: number;
}>(
  `INSERT INTO refunds (id, payment_id, amount_value, status, created_at, next_check_at)
   VALUES (:id, :payment_id, :amount_value, 'pending', :created_at, :next_check_at)`,
);
const BY_ID = sql<{ id: string }>(
  'SELECT id, payment_id, amount_value, status, created_at, failure_message FROM refunds WHERE id = :id',
);
const MARK_SUCCEEDED = sql<{ id: string }>(
  `UPDATE refunds SET status = 'succeeded', next_check_at = NULL WHERE id = :id AND status = 'pending'
   RETURNING id, payment_id, amount_value, status, created_at, failure_message`,
);
const MARK_FAILED = sql<{ id: string; failure_message: string }>(
  `UPDATE refunds SET status = 'failed', failure_message = :failure_message, next_check_at = NULL
    WHERE id = :id AND status = 'pending'
   RETURNING id, payment_id, amount_value, status, created_at, failure_message`,
);
const DUE = sql<{ now: number; limit: number }>(
  `SELECT r.id, r.payment_id, r.amount_value, p.currency FROM refunds r JOIN payments p ON p.id = r.payment_id
    WHERE r.status = 'pending' AND r.next_check_at <= :now ORDER BY r.next_check_at LIMIT :limit`,
);
const TAKE = sql<{ id: string; now: number; next_check_at: number }>(
  "UPDATE refunds SET next_check_at = :next_check_at WHERE id = :id AND status = 'pending' AND next_check_at <= :now",
);

export class RefundsService {
  private readonly keys: IdempotencyKeys;
  private readonly payments: PaymentRepository;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly provider: PaymentProvider,
    private readonly events: EventsService,
    private readonly timing: RefundTiming,
  ) {
    this.keys = new IdempotencyKeys(db, timing);
    this.payments = new PaymentRepository(db);
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
    const row = await this.payments.inStore(device.storeId, id);
    if (!row) throw ApiError.notFound(`payment ${id}`);
    const payment = toPayment(row);
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
    const start = await this.db.tx(async (q) => {
      const claim = this.keys.claimParams(device.storeId, scope, idemKey, hash, refundId, now);
      if (!(await this.keys.claim(q, claim))) {
        const taken = await this.keys.existing(q, device.storeId, scope, idemKey, hash, now);
        // Taken a moment ago and expired since: the caller's retry claims it afresh.
        if (taken.kind === 'absent')
          throw ApiError.conflict('idempotency_key_in_use', 'this Idempotency-Key was just released; retry');
        return taken;
      }
      // Thrown errors roll the key back with the rest: a refused refund leaves no key running.
      const current = (await this.payments.lockedRow(q, id))!;
      if (current.status !== 'succeeded') {
        throw ApiError.conflict(
          'not_refundable',
          `payment ${id} is ${current.status}; only a succeeded payment can be refunded`,
        );
      }
      const [sum] = await q.query<{ n: number | string }>(
        PENDING_SUM.text,
        PENDING_SUM.params({ payment_id: id }),
      );
      const pending = Number(sum.n);
      const left = Number(current.amount_value) - Number(current.refunded_value) - pending;
      if (value > left) {
        throw ApiError.unprocessable(
          'refund_exceeds_capture',
          `a refund of ${value} is more than the ${Math.max(0, left)} left to refund on payment ${id} ` +
            `(${current.refunded_value} refunded${pending ? `, ${pending} being refunded now` : ''})`,
        );
      }
      await q.run(
        INSERT.text,
        INSERT.params({
          id: refundId,
          payment_id: id,
          amount_value: value,
          created_at: new Date(now).toISOString(),
          // The sweeper asks about it only once this request's hold on the key has lapsed.
          next_check_at: now + this.timing.keyLockMs,
        }),
      );
      return { kind: 'new' as const };
    });
    if (start.kind === 'replay') return { status: start.status, body: start.body as Refund, replayed: true };
    const rid = start.kind === 'resume' ? start.resourceId : refundId;
    const refundRow = (await this.db.query<RefundRow>(BY_ID.text, BY_ID.params({ id: rid })))[0];
    if (refundRow.status === 'failed') {
      // Only a resumed key gets here: its request died after the refusal was recorded and before its key
      // was completed (an older server did the two in separate transactions). Its answer is the refusal.
      const error = refusedAnswer(refundRow.failure_message ?? `refund ${rid} was refused by the provider`);
      await this.keys.complete(device.storeId, scope, idemKey, 422, error);
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
      await this.settle(rid, outcome);
    }
    // Decided now (here, by a request before, or by the sweeper): the key's answer, stored with the
    // decision; a key a crash left running (an older server) is completed here.
    const stored = await this.keys.answer(device.storeId, scope, idemKey);
    if (stored) return answerOf(stored.status, stored.body);
    const refund: Refund = {
      id: rid,
      paymentId: id,
      amount: { value: Number(refundRow.amount_value), currency: payment.amount.currency },
      status: 'succeeded',
      createdAt: refundRow.created_at,
      payment: await this.payments.load(id),
    };
    return this.keys.complete(device.storeId, scope, idemKey, 201, refund);
  }

  /**
   * Decides a pending refund, with its key's answer, in one transaction: paid out (the payment's refunded
   * amount and status, its signed event, 201 with the refund) or refused (failed with the reason, 422).
   * False when it was decided already (the first decision stands).
   */
  private async settle(rid: string, outcome: RefundOutcome): Promise<boolean> {
    const nowIso = new Date(this.clock.now()).toISOString();
    const done = await this.db.tx(async (q: Queryable) => {
      const [refund] = outcome.ok
        ? await q.query<RefundRow>(MARK_SUCCEEDED.text, MARK_SUCCEEDED.params({ id: rid }))
        : await q.query<RefundRow>(
            MARK_FAILED.text,
            MARK_FAILED.params({ id: rid, failure_message: outcome.message }),
          );
      if (!refund) return undefined;
      const scope = `refund:${refund.payment_id}`;
      if (!outcome.ok) {
        const p = (await this.payments.row(refund.payment_id, q))!;
        await this.keys.completeFor(q, p.store_id, scope, rid, 422, refusedAnswer(outcome.message));
        return { event: undefined };
      }
      const row = await this.payments.addRefunded(q, refund.payment_id, Number(refund.amount_value), nowIso);
      const payment = toPayment(row);
      const body: Refund = {
        id: rid,
        paymentId: refund.payment_id,
        amount: { value: Number(refund.amount_value), currency: row.currency },
        status: 'succeeded',
        createdAt: refund.created_at,
        payment,
      };
      await this.keys.completeFor(q, row.store_id, scope, rid, 201, body);
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
  async resolvePending(limit: number): Promise<number> {
    const now = this.clock.now();
    const due = await this.db.query<{
      id: string;
      payment_id: string;
      amount_value: number;
      currency: string;
    }>(DUE.text, DUE.params({ now, limit }));
    let decided = 0;
    for (const r of due) {
      const [lo, hi] = this.timing.checkEveryMs;
      const next = Math.round(now + lo + Math.random() * (hi - lo));
      const taken = await this.db.run(TAKE.text, TAKE.params({ id: r.id, now, next_check_at: next }));
      if (taken.changes === 0) continue;
      const outcome = await this.ask(r.payment_id, r.id, {
        value: Number(r.amount_value),
        currency: r.currency,
      });
      if (outcome && (await this.settle(r.id, outcome))) decided++;
    }
    return decided;
  }

  /** What became of a refund, per the provider; undefined while it cannot tell (ask again later). */
  private async ask(paymentId: string, rid: string, amount: Money): Promise<RefundOutcome | undefined> {
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
}

/** A refund's stored answer as an ApiResponse (201) or the ApiError it is (422 refused). */
function answerOf(status: number, body: unknown): ApiResponse<Refund> {
  if (status === 422) {
    const e = (body as { error: { code: string; message: string } }).error;
    throw ApiError.unprocessable(e.code, e.message);
  }
  return { status, body: body as Refund, replayed: false };
}
