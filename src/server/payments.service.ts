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
 *
 * The parts: this service decides (create, charge answers, cancels, the sweeper's transitions); the SQL on
 * payments is PaymentRepository's (payment-repository.ts), the keys IdempotencyKeys' (idempotency-keys.ts),
 * refunds RefundsService's (refunds.service.ts), the history notes PaymentHistory's.
 */
import { Clock } from '../protocol/clock';
import { ProtocolError } from '../protocol/errors';
import { formatMoney, money, Money } from '../protocol/money';
import { Payment } from '../protocol/states';
import { DEVICE_ID_RULE, isDeviceId, validateOrderId } from '../protocol/ids';
import { isPaymentCode, PAYMENT_CODE_RULE } from '../protocol/payment-code';
import { ApiError } from './api-error';
import { EventsService } from './events.service';
import { ApiResponse, IdempotencyKeys, requestHash } from './idempotency-keys';
import { PaymentHistory, PaymentNote } from './payment-history';
import { Change, PaymentRepository, PaymentRow, toPayment } from './payment-repository';
import {
  ChargeResult,
  PaymentProvider,
  ProviderRejectedError,
  ProviderUnknownError,
  QueryResult,
} from './providers/provider';
import { newId } from './server-crypto';
import { Device } from './stores.service';
import { Db, Queryable } from './storage/db';

export type { ApiResponse } from './idempotency-keys';
export type { Change } from './payment-repository';
export { toPayment } from './payment-repository';
export type { Refund } from './refunds.service';

export interface CreatePaymentInput {
  orderId: string;
  registerId: string;
  amount: { value: number; currency: string };
  method: { type: 'wallet_code'; code: string };
}

/**
 * Wallet timing rules, in real-time milliseconds (divided by PAYCONNECT_SIM_SPEED): while the customer
 * confirms, query first within 5 s, then every 3-5 s; cancel (reverse) at 30 s. Idempotency keys live 24 h.
 */
export interface PaymentTiming {
  firstCheckMs: number;
  checkEveryMs: [number, number];
  deadlineMs: number;
  /** No cancel goes to the provider sooner than this after the charge (WeChat Pay: 15 s); 0 = any time. */
  cancelNotBeforeMs?: number;
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

/** The earliest moment a cancel of a payment created at `createdAt` may go to its provider
 * (PaymentTiming.cancelNotBeforeMs after the charge; the creation time at once when there is no such rule). */
export function cancelFrom(createdAt: string, timing: PaymentTiming): number {
  return Date.parse(createdAt) + (timing.cancelNotBeforeMs ?? 0);
}

/** Where new payments go and the timing rules each provider's payments live by (providers/router.ts). */
export interface Routing {
  route(storeId: string, code: string): Promise<Route>;
  timingOf(provider: string): PaymentTiming;
}

export interface Route {
  provider: string;
  timing: PaymentTiming;
}

/** Never store or log a payment code: keep its first two and last two digits, enough to recognise it. */
export function codeHint(code: string): string {
  return code.length <= 4 ? '****' : `${code.slice(0, 2)}${'*'.repeat(code.length - 4)}${code.slice(-2)}`;
}

/** create() deciding within its request: its Idempotency-Key (completed with 201 in the decision's
 * transaction) and the row create() inserted (so the decided payment, its event and signature are known
 * before the statement). */
type KeyCompletion = { key: string; row: PaymentRow };

/** How a cancel the provider refused for good ended (see settleRefusedCancel). */
export type RefusedCancelOutcome = 'charge_kept' | 'canceled' | 'failed';

export class PaymentsService {
  private readonly notes: PaymentHistory;
  private readonly repo: PaymentRepository;
  private readonly keys: IdempotencyKeys;

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
    /** Where each new payment goes (providers/router.ts); without it every payment is the simulator's. */
    private readonly routing?: Routing,
  ) {
    this.notes = new PaymentHistory(db);
    this.repo = new PaymentRepository(db);
    this.keys = new IdempotencyKeys(db, timing);
  }

  /** Checks a create request; throws ApiError naming the field. Nothing is stored for a bad request. */
  validate(input: CreatePaymentInput): { amount: Money } {
    try {
      validateOrderId(input.orderId);
    } catch (e) {
      throw ApiError.badRequest('invalid_order_id', `orderId: ${(e as Error).message}`);
    }
    // Register ids follow the device id rule (protocol/ids.ts), as everywhere else (manifests, LAN offers).
    if (!isDeviceId(input.registerId)) {
      throw ApiError.badRequest('invalid_register_id', `registerId must be ${DEVICE_ID_RULE}`);
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
    // The protocol's payment code rule (protocol/payment-code.ts), already normalized: the unit removes the
    // spaces scanners add before it sends the code. The message never repeats the code.
    if (!isPaymentCode(input.method.code)) {
      throw ApiError.badRequest(
        'invalid_payment_code',
        `method.code must be the digits of the customer's payment code (${PAYMENT_CODE_RULE}, no spaces)`,
      );
    }
    return { amount };
  }

  async create(device: Device, idemKey: string, input: CreatePaymentInput): Promise<ApiResponse<Payment>> {
    const { amount } = this.validate(input);
    // The limit holds for new payments only: a retry of one made before the admin lowered it (or while
    // another instance still knew the old value) must get its stored answer, not a refusal the unit would
    // read as "nothing was charged".
    if (
      amount.value > device.maxPaymentValue &&
      !(await this.keys.exists(device.storeId, 'payments', idemKey))
    ) {
      throw ApiError.unprocessable(
        'amount_too_large',
        `amount.value: ${formatMoney(amount, { symbol: true, grouping: true })} is more than this store's largest single payment, ` +
          `${formatMoney({ value: device.maxPaymentValue, currency: amount.currency }, { symbol: true, grouping: true })}; check the amount, or ` +
          `ask the admin to raise the store's maxPaymentValue`,
      );
    }
    let route: Route = { provider: 'simulator', timing: this.timing };
    if (this.routing) {
      try {
        route = await this.routing.route(device.storeId, input.method.code);
      } catch (e) {
        // As with the limit above: a retry of a payment already made gets its stored answer, whatever
        // became of the store's wallet accounts since (the route below is then never used: no insert).
        if (!(await this.keys.exists(device.storeId, 'payments', idemKey))) throw e;
      }
    }
    const timing = route.timing;
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
      provider: route.provider,
      provider_trade_no: null,
      failure_code: null,
      failure_message: null,
      refunded_value: 0,
      reversed: 0,
      deadline_at: now + timing.deadlineMs,
      // A safety net: if this process dies before the charge's answer is recorded, the sweeper asks.
      next_check_at: now + timing.firstCheckMs,
      checks: 0,
      created_at: iso,
      updated_at: iso,
    };
    // The journal of the new payment: its key claimed and the payment inserted, pending, in one commit (on
    // PostgreSQL one statement). The payment is leased to this request while its charge is in flight (until
    // the deadline at most), so the sweeper never takes a charge that has not reached the provider yet for
    // a lost one. Its `pending` event is written only if the charge does not decide it within this request.
    const claim = this.keys.claimParams(device.storeId, 'payments', idemKey, hash, id, now);
    const claimed = await this.repo.journalNew(row, claim);
    const start = claimed
      ? { kind: 'new' as const }
      : await this.db.tx((q) => this.keys.existing(q, device.storeId, 'payments', idemKey, hash, now));

    if (start.kind === 'absent') {
      // The key was not taken, so the claim was refused for the order: the register canceled it. Nothing
      // was stored and nothing is charged (a unit's charge that outlived the cancel, e.g. through an outage).
      const closedAt = await this.repo.closedAt(device.storeId, input.orderId);
      throw ApiError.conflict(
        'order_canceled',
        `order ${input.orderId} was canceled at the register${closedAt ? ` at ${closedAt}` : ''}; nothing was charged: do not scan again for it`,
      );
    }
    if (start.kind === 'replay') return { status: start.status, body: start.body as Payment, replayed: true };
    if (start.kind === 'resume') {
      // The request that held this key died; answer with the payment as it stands (the sweeper finishes it).
      const payment = await this.load(start.resourceId);
      return this.keys.complete(device.storeId, 'payments', idemKey, 201, payment);
    }

    let outcome: ChargeResult | undefined;
    try {
      outcome = await this.provider.charge({
        outTradeNo: id,
        amount,
        code: input.method.code,
        storeId: device.storeId,
        provider: route.provider,
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
    await this.repo.releaseLease(id, now + timing.deadlineMs);
    const payment = await this.load(id);
    return this.keys.complete(device.storeId, 'payments', idemKey, 201, payment);
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
          await this.repo.setTrade(q, id, outcome.tradeNo, outcome.brand);
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
    const row = await this.repo.markPendingEvent(q, id);
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
      if (opts.clearCancel) await this.repo.clearCancelRequest(q, id);
      const row = await this.repo.decide(q, id, change, nowIso);
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
    const id = k.row.id;
    if (this.db.kind === 'postgres') {
      const key = {
        store_id: k.row.store_id,
        scope: 'payments',
        idem_key: k.key,
        response_status: 201,
        response_body: body,
      };
      if (!(await this.repo.decideAtOncePg(id, change, nowIso, key, await signing))) return undefined;
    } else {
      const seq = await this.db.tx(async (q) => {
        if (!(await this.repo.decideAtOnce(q, id, change, nowIso))) return undefined;
        await this.keys.complete(k.row.store_id, 'payments', k.key, 201, payment, q, body);
        return this.events.record(q, k.row.store_id, payment, await signing, body);
      });
      if (seq === undefined) return undefined;
      await this.events.announce(k.row.store_id, seq);
    }
    this.onChange(payment);
    return payment;
  }

  async load(id: string): Promise<Payment> {
    return this.repo.load(id);
  }

  /** A device sees only its own store's payments; another store's id is simply not found. */
  async get(device: Device, id: string): Promise<Payment> {
    const row = await this.repo.inStore(device.storeId, id);
    if (!row) throw ApiError.notFound(`payment ${id}`);
    return toPayment(row);
  }

  /**
   * The payment a request with this Idempotency-Key created, if any: how a device that lost the answer
   * (timeout, crash) learns the outcome without sending the charge again.
   */
  async findByIdempotencyKey(device: Device, key: string): Promise<Payment[]> {
    return (await this.repo.byIdempotencyKey(device.storeId, key)).map(toPayment);
  }

  /** A payment with the server's signature over its current state, for devices that poll. */
  signed(device: Device, payment: Payment): { payment: Payment; signature: string } {
    return { payment, signature: this.events.sign(device.storeId, payment) };
  }

  async listByOrder(device: Device, orderId: string): Promise<Payment[]> {
    return (await this.repo.byOrder(device.storeId, orderId)).map(toPayment);
  }

  /**
   * The register canceled an order: closes it to new payments in its store, whoever sends them (a unit's
   * charge still on its way is refused with 409 order_canceled), and returns the order's payments as they
   * stand, signed, so the plugin decides the cancel from them (a succeeded one: the charge stands; pending
   * ones: cancel each). The plugin only (the register's side). Repeating it changes nothing.
   */
  async closeOrder(
    device: Device,
    orderId: string,
  ): Promise<{ orderId: string; closedAt: string; payments: { payment: Payment; signature: string }[] }> {
    try {
      validateOrderId(orderId);
    } catch (e) {
      throw ApiError.badRequest('invalid_order_id', `orderId: ${(e as Error).message}`);
    }
    if (device.role !== 'plugin') {
      throw ApiError.forbidden(
        `a ${device.role} may not cancel an order: orders are canceled at the register (the store's plugin)`,
      );
    }
    const nowIso = new Date(this.clock.now()).toISOString();
    const { closedAt, rows } = await this.repo.closeOrder(device.storeId, orderId, device.deviceId, nowIso);
    return { orderId, closedAt, payments: rows.map((r) => this.signed(device, toPayment(r))) };
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
    if (!(await this.repo.requestCancel(id))) return this.afterCancel(await this.load(id));
    const earliest = this.earliestCancel(payment);
    if (earliest !== undefined && this.clock.now() < earliest.at) {
      // The provider takes no cancel this soon after the charge (WeChat Pay: 15 s). The cancel is journaled:
      // from now on the payment cannot succeed, and the sweeper cancels it at the earliest moment.
      await this.repo.checkAt(id, earliest.at);
      throw new ApiError(
        502,
        'cancel_pending',
        `${earliest.provider} takes a cancel only ${Math.round(earliest.afterMs / 1000)} s after the charge; payment ${id} cannot succeed any more and the server cancels it at ${new Date(earliest.at).toISOString()}: watch its status`,
      );
    }
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
      await this.repo.checkAt(id, this.clock.now());
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
   * The earliest moment a cancel of this payment (as cancel() already loaded it) may go to its provider, or
   * undefined when any time will do.
   */
  private earliestCancel(payment: Payment): { at: number; afterMs: number; provider: string } | undefined {
    if (!this.routing) return undefined;
    const provider = String(payment.method.provider ?? 'simulator');
    const timing = this.routing.timingOf(provider);
    if (!(timing.cancelNotBeforeMs ?? 0)) return undefined;
    return { at: cancelFrom(payment.createdAt, timing), afterMs: timing.cancelNotBeforeMs!, provider };
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
      case 'closed': {
        // Closed after a cancel was asked: the cancel's reason, not the customer's time, is why.
        outcome = 'canceled';
        change = CLOSED_BY_PROVIDER;
        message = `${why}; the provider reports the trade closed unpaid: canceled, nothing was charged`;
        break;
      }
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
    const row = await this.repo.row(id);
    if (!row || (device && row.store_id !== device.storeId)) throw ApiError.notFound(`payment ${id}`);
    return this.notes.list(row.store_id, id);
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

  /** Forgets idempotency keys older than their time to live (run by the sweeper). */
  async expireKeys(): Promise<number> {
    return this.keys.expire(this.clock.now());
  }
}

/**
 * The decision of a trade the provider closed unpaid on its own, found by a query (no cancel asked). Once
 * the payment's deadline has passed the customer's time was up, whoever closed first (WeChat Pay revokes an
 * unconfirmed trade at 45 s, ours cancels at 40 s; a sweep delayed past the provider's close finds it
 * closed): `customer_timeout`, as when our cancel closes it, so the shop reads one reason for one situation.
 * Before the deadline the trade was closed elsewhere (the merchant's console): `closed`.
 */
export function closedByProviderChange(deadlineAt: number, now: number): Change {
  if (now >= deadlineAt)
    return {
      status: 'canceled',
      failure: {
        code: 'customer_timeout',
        message: 'the customer did not confirm in time (the provider closed the trade); nothing was charged',
      },
    };
  return CLOSED_BY_PROVIDER;
}

/** A trade the provider reports closed unpaid, whatever the deadline: canceled, failure `closed`. */
export const CLOSED_BY_PROVIDER: Change = Object.freeze({
  status: 'canceled',
  failure: Object.freeze({ code: 'closed', message: 'the provider closed the trade unpaid' }),
});

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
