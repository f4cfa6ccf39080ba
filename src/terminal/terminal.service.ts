/**
 * The mobile POS unit: holds the offers the register sends over the LAN, claims one, takes the customer's
 * payment code, charges it through the payment server, and relays the server-signed result to the plugin.
 *
 * Money rules it keeps:
 * - One charge per attempt: an attempt is journaled with its idempotency key (bound to the order) before
 *   the request leaves, and every retry of it (after a timeout, a 5xx, a crash) is the same request.
 * - An unknown outcome is asked about (by idempotency key, or by payment id), never charged again.
 * - A result counts only with the server's signature, which is what goes to the plugin.
 */
import { DeviceApiError } from '../device/device-errors';
import { EventCursor } from '../device/event-cursor';
import { Clock, delay, every, SystemClock, TimerHandle } from '../protocol/clock';
import { formatMoney } from '../protocol/money';
import { isPaymentCode, normalizePaymentCode, PAYMENT_CODE_RULE } from '../protocol/payment-code';
import { isDecidedPaymentStatus, Payment } from '../protocol/states';
import { verifyPaymentResult } from '../protocol/payment-signature';
import { FINISHED_OFFER_KEEP_MS, HeldOffer, LanEndpoint, LanTarget, OfferInbox, UnitBeacon } from '../lan';
import { ProgressStage } from '../protocol/lan-messages';
import { PaymentServer, retryable, retryDelayMs, SignedPayment } from '../device/server-client';
import { LocalRequestError, ServerRefusedError, ServerUnavailableError } from '../device/server-errors';
import { AttemptStatus, DeviceCredentials, PaymentAttempt, TerminalStore } from './terminal-store';

/**
 * How long after its last try an attempt with no payment at the server counts as "nothing arrived": the
 * client's 10 s timeout (a busy server may still take a request that timed out here) and a margin.
 */
export const NOTHING_ARRIVED_MS = 15_000;

/**
 * How often results the plugin has not acknowledged are sent to it again. Each send already retries for
 * RELAY_DEADLINE_MS; this pass picks up what was left after that (the register PC was off) and what a
 * restart left undelivered.
 */
export const RELAY_INTERVAL_MS = 2000;
/** How long one relay of a result to the plugin is retried before the next pass tries again. */
export const RELAY_DEADLINE_MS = 5000;
/**
 * How often the server is asked about attempts whose outcome is unknown (a timed-out try, a restart, a
 * cancel while pending). Short, because a clerk is looking at "Paying…" meanwhile; each pass is one small
 * GET per unfinished attempt, and there are rarely more than one or two.
 */
export const RESOLVE_INTERVAL_MS = 1500;
/** How long POST /pay waits for a final answer before answering 202 (DESIGN.md: 30 s). */
export const PAY_WAIT_MS = 30_000;

/** Signed results kept that were pushed before their payment's POST answered (see earlyResults). */
const EARLY_RESULTS_KEPT = 100;

/** An answer the unit's API means to give (status, code, message); see src/device/device-errors.ts. */
export class TerminalError extends DeviceApiError {}

export interface OfferView {
  orderId: string;
  registerId: string;
  amount: { value: number; currency: string };
  amountText: string;
  mode: string;
  status: HeldOffer['status'];
  takenBy: string | null;
  collect: boolean;
  /** When this unit first heard of the offer (ISO 8601): the page lists the newest first. */
  receivedAt: string;
  expiresAt: string;
  payment: {
    status: AttemptStatus;
    paymentId: string | null;
    failure: Payment['failure'] | null;
    /** While `pending`: whom the server waits for (see TerminalService.waitingFor). */
    waitingFor: WaitingFor | null;
  } | null;
}

/**
 * Why a payment is pending: the wallet has the trade and the customer is confirming on the phone (the
 * server names the wallet brand once the provider answered), or the provider's answer is unknown (a
 * timeout, a 5xx) and the server is asking it again.
 */
export type WaitingFor = 'customer' | 'provider';

export interface TerminalServiceOptions {
  credentials: DeviceCredentials;
  store: TerminalStore;
  server: PaymentServer;
  endpoint: LanEndpoint;
  inbox: OfferInbox;
  beacon: UnitBeacon;
  clock?: Clock;
  /** How long POST /pay waits for a final answer before answering 202; default PAY_WAIT_MS. */
  payWaitMs?: number;
  /** Finished offers GET /api/offers lists beside the open ones; default LISTED_FINISHED_OFFERS. */
  listedFinishedOffers?: number;
  log?: (message: string) => void;
}

/**
 * How many finished offers (taken by another unit, withdrawn, canceled, expired, or paid here) GET
 * /api/offers lists, the newest, beside every offer still open or being paid. The unit keeps an hour of
 * them (FINISHED_OFFER_KEEP_MS), hundreds at a busy shop; the page reads the list after every change, and
 * a phone shows a screenful.
 */
export const LISTED_FINISHED_OFFERS = 100;

export class TerminalService {
  private readonly clock: Clock;
  private readonly cursor: EventCursor;
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly working = new Set<string>();
  private stopListening?: () => void;
  /** Set by stop(): work in flight (a retry waiting out its backoff) ends instead of touching the store. */
  private stopped = false;
  private stopRelaying?: () => void;
  private stopResolving?: () => void;
  /** Who is told that what the API shows changed (the touch page's live event stream). */
  private readonly changeListeners = new Set<() => void>();
  private up = false;

  constructor(private readonly o: TerminalServiceOptions) {
    this.clock = o.clock ?? new SystemClock();
    this.cursor = new EventCursor(o.store, () => this.clock.now());
  }

  get deviceId(): string {
    return this.o.credentials.deviceId;
  }

  /** Whether the payment server answered last time; the page shows it, so a flip is a change. */
  get serverUp(): boolean {
    return this.up;
  }

  set serverUp(up: boolean) {
    if (up === this.up) return;
    this.up = up;
    this.changed();
  }

  /**
   * Calls `listener` whenever something the unit's API shows may have changed: an offer (new, claimed,
   * taken, withdrawn, canceled, expired), an attempt (begun, its status, its payment, relayed) or the
   * server's reachability. It says only that: the listener reads the API again for what changed, so there
   * is one state (the inbox and the store) and nothing to keep in step. Returns the unsubscribe.
   */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(): void {
    for (const l of [...this.changeListeners]) {
      try {
        l();
      } catch (e) {
        // A listener's fault (a stream that just closed) must not break the payment path that changed.
        this.o.log?.(`change listener: ${(e as Error).message}`);
      }
    }
  }

  /** One timer per offer that can still expire: see watchExpiry. */
  private readonly expiryTimers = new Map<string, TimerHandle>();

  /**
   * The inbox notices that an offer expired only when it is read. Read it when an open offer's time is up,
   * so the change is told (and the page drops the offer) then, not at the page's next fallback poll.
   */
  private watchExpiry(offer: HeldOffer): void {
    this.clock.clearTimeout(this.expiryTimers.get(offer.orderId));
    this.expiryTimers.delete(offer.orderId);
    if (this.stopped || (offer.status !== 'open' && offer.status !== 'claiming')) return;
    const timer = this.clock.setTimeout(
      () => {
        this.expiryTimers.delete(offer.orderId);
        const now = this.o.inbox.get(offer.orderId); // expires it (and tells) if its time is up
        // A resent offer may have been given more time: watch the new expiry.
        if (now && !this.stopped && now.expiresAt > this.clock.now()) this.watchExpiry(now);
      },
      Math.max(0, offer.expiresAt - this.clock.now()) + 1,
    );
    this.expiryTimers.set(offer.orderId, timer);
  }

  /** Orders whose offer is journaled (claimed by this unit at some point). */
  private readonly held = new Set<string>();

  /**
   * Journals an order this unit holds: when its claim is granted (before the clerk can scan), and at every
   * later change of it (a cancel from the register), so a restart gives the unit back what it held.
   */
  private journalHeld(offer: HeldOffer): void {
    if (offer.status !== 'claimed' && !this.held.has(offer.orderId)) return;
    this.held.add(offer.orderId);
    this.o.store.holdOffer(offer, this.clock.now());
  }

  /** Every attempt write goes through here, so each one is a change the page hears of. */
  private updateAttempt(...args: Parameters<TerminalStore['update']>): boolean {
    const wrote = this.o.store.update(...args);
    this.changed();
    return wrote;
  }

  /**
   * Starts beaconing, listening to the server and the relay and resolve passes. Offers reach the inbox
   * through the app's LAN controller (or `inbox.start()` where there is no Nest app, as in specs).
   */
  start(): void {
    // A claimed offer stays in the inbox while its payment is unfinished or its result not relayed.
    this.o.inbox.keepWhile((offer) => {
      const a = this.o.store.latest(offer.orderId);
      return (
        offer.status === 'claimed' && (!a || a.status === 'paying' || a.status === 'pending' || !a.relayed)
      );
    });
    this.o.inbox.onChange((offer, event) => {
      this.journalHeld(offer);
      this.changed();
      this.watchExpiry(offer);
      void this.onOfferChange(offer, event);
    });
    // The orders this unit held before it stopped: the clerk can scan again, a cancel still reaches them.
    for (const held of this.o.store.heldOffers(this.clock.now(), FINISHED_OFFER_KEEP_MS))
      this.o.inbox.restore(held);
    this.o.beacon.start();
    this.stopListening = this.o.server.listen({
      publicKey: this.o.credentials.serverPublicKey,
      storeId: this.o.credentials.storeId,
      after: () => this.cursor.after(),
      // Payments other units took: skipped unverified, the cursor stored now and then.
      wants: (p) => this.isOwnPayment(p),
      onSkipped: (seq) => this.cursor.skipped(seq),
      onEvent: (e) => void this.onSignedResult(e, undefined, e.seq),
      onState: (up) => (this.serverUp = up),
    });
    // Relay what the plugin has not acknowledged, and ask the server about what is still undecided:
    // after a restart this finishes what was in flight when the unit died.
    this.stopRelaying = every(this.clock, RELAY_INTERVAL_MS, () => this.relayPending());
    this.stopResolving = every(this.clock, RESOLVE_INTERVAL_MS, () => this.resolveUnfinished());
    void this.resolveUnfinished();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.expiryTimers.values()) this.clock.clearTimeout(timer);
    this.expiryTimers.clear();
    this.stopRelaying?.();
    this.stopResolving?.();
    this.stopListening?.();
    this.cursor.flush();
    this.o.beacon.stop();
  }

  /** A payment of an order this unit tried to charge: the push events it acts on (see findAttempt). */
  private isOwnPayment(p: unknown): boolean {
    if (typeof p !== 'object' || p === null) return false;
    const { orderId } = p as { orderId?: unknown };
    return typeof orderId === 'string' && this.o.store.latest(orderId) !== undefined;
  }

  /**
   * The offers for the page, oldest first: the newest ones until `listedFinishedOffers` of them are past
   * open (claimed, taken, withdrawn, canceled, expired), and every older one still open or being paid on
   * this unit (open, claiming, or claimed with no payment or one not decided yet). Only a claimed offer
   * older than those needs its payment looked up.
   */
  offers(): OfferView[] {
    const all = this.o.inbox.list();
    const cap = this.o.listedFinishedOffers ?? LISTED_FINISHED_OFFERS;
    let unfinished: Set<string> | undefined;
    const stillOpen = (o: HeldOffer) => {
      if (o.status === 'open' || o.status === 'claiming') return true;
      if (o.status !== 'claimed') return false;
      unfinished ??= new Set(this.o.store.unfinished().map((a) => a.orderId));
      return unfinished.has(o.orderId) || this.o.store.latest(o.orderId) === undefined;
    };
    const listed: HeldOffer[] = [];
    let finished = 0;
    for (let i = all.length - 1; i >= 0; i--) {
      const o = all[i];
      if (finished < cap) {
        listed.push(o);
        if (o.status !== 'open' && o.status !== 'claiming') finished++;
      } else if (stillOpen(o)) listed.push(o);
    }
    return listed.reverse().map((o) => this.view(o));
  }

  offer(orderId: string): OfferView {
    const o = this.o.inbox.get(orderId);
    if (!o)
      throw new TerminalError(404, 'no_such_offer', `there is no offer for order ${orderId} on this unit`);
    return this.view(o);
  }

  private view(o: HeldOffer): OfferView {
    const a = this.o.store.latest(o.orderId);
    return {
      orderId: o.orderId,
      registerId: o.registerId,
      amount: o.amount,
      amountText: formatMoney(o.amount, { symbol: true, grouping: true }),
      mode: o.mode,
      status: o.status,
      takenBy: o.takenBy ?? null,
      collect: o.collect,
      receivedAt: new Date(o.receivedAt).toISOString(),
      expiresAt: new Date(o.expiresAt).toISOString(),
      payment: a
        ? {
            status: a.status,
            paymentId: a.paymentId,
            failure:
              a.payment?.failure ??
              (this.failureText.has(`${a.orderId}#${a.attempt}`)
                ? { code: 'not_charged', message: this.failureText.get(`${a.orderId}#${a.attempt}`)! }
                : null),
            waitingFor: this.waitingFor(a),
          }
        : null,
    };
  }

  lanStats() {
    return this.o.endpoint.stats;
  }

  /** What the API and screen show about an attempt (never the payment code: it was never stored). */
  paymentView(a: PaymentAttempt) {
    return {
      orderId: a.orderId,
      attempt: a.attempt,
      status: a.status,
      paymentId: a.paymentId,
      amount: { value: a.amountValue, currency: a.currency },
      amountText: formatMoney(
        { value: a.amountValue, currency: a.currency },
        { symbol: true, grouping: true },
      ),
      payment: a.payment,
      signature: a.signature,
      failure:
        a.payment?.failure ??
        (this.failureText.has(`${a.orderId}#${a.attempt}`)
          ? { code: 'not_charged', message: this.failureText.get(`${a.orderId}#${a.attempt}`)! }
          : null),
      waitingFor: this.waitingFor(a),
      relayedToRegister: a.relayed,
      time: new Date(a.createdAt).toISOString(),
    };
  }

  paymentOf(orderId: string) {
    const a = this.o.store.latest(orderId);
    if (!a)
      throw new TerminalError(404, 'no_payment', `no payment was started for order ${orderId} on this unit`);
    return this.paymentView(a);
  }

  /** Today's attempts, newest first; `startOfDay` turns the time now into the shop's midnight. */
  history(startOfDay?: (now: number) => number): PaymentAttempt[] {
    const now = this.clock.now();
    if (startOfDay) return this.o.store.since(startOfDay(now));
    const midnight = new Date(now);
    midnight.setHours(0, 0, 0, 0);
    return this.o.store.since(midnight.getTime());
  }

  async claim(orderId: string): Promise<{ granted: true }> {
    const offer = this.o.inbox.get(orderId);
    if (!offer)
      throw new TerminalError(404, 'no_such_offer', `there is no offer for order ${orderId} on this unit`);
    const outcome = await this.o.inbox.claim(orderId).catch((e) => {
      throw new TerminalError(
        503,
        'register_unreachable',
        `the register did not answer the claim: ${(e as Error).message}; try again`,
      );
    });
    if (!outcome.granted) {
      if (outcome.reason === 'taken')
        throw new TerminalError(409, 'taken', `taken by ${outcome.holder ?? 'another unit'}`);
      throw new TerminalError(409, 'withdrawn', 'this order is no longer offered (canceled or expired)');
    }
    this.progress(offer, 'claimed');
    return { granted: true };
  }

  /**
   * Charges the customer's code for a claimed order. Resolves with the attempt once the payment is
   * decided, or after `payWaitMs` with it still pending (the caller polls GET /api/payments/:orderId).
   */
  async pay(orderId: string, rawCode: string): Promise<{ final: boolean; attempt: PaymentAttempt }> {
    // The protocol's payment code rule (protocol/payment-code.ts); anything else is a bad scan.
    const code = normalizePaymentCode(String(rawCode ?? ''));
    if (!isPaymentCode(code)) {
      throw new TerminalError(
        400,
        'invalid_payment_code',
        `that is not a payment code (${PAYMENT_CODE_RULE}); scan the customer's code again`,
      );
    }
    let offer = this.o.inbox.get(orderId);
    if (!offer)
      throw new TerminalError(404, 'no_such_offer', `there is no offer for order ${orderId} on this unit`);
    if (offer.status === 'open') {
      await this.claim(orderId);
      offer = this.o.inbox.get(orderId)!;
    }
    if (offer.status === 'taken')
      throw new TerminalError(409, 'taken', `taken by ${offer.takenBy ?? 'another unit'}`);
    if (offer.status !== 'claimed')
      throw new TerminalError(409, 'not_claimed', `this order is ${offer.status}; it cannot be paid here`);
    const latest = this.o.store.latest(orderId);
    if (
      latest &&
      (latest.status === 'paying' || latest.status === 'pending' || latest.status === 'succeeded')
    ) {
      // Already being paid, or paid: never a second charge. Answer with that attempt.
      return this.waitFinal(latest);
    }
    if (this.working.has(orderId)) throw new TerminalError(409, 'busy', 'this order is being paid right now');
    this.working.add(orderId);
    let attempt: PaymentAttempt;
    try {
      attempt = this.o.store.beginAttempt({
        orderId,
        registerId: offer.registerId,
        plugin: { to: offer.plugin.to, address: offer.plugin.address, port: offer.plugin.port },
        amountValue: offer.amount.value,
        currency: offer.amount.currency,
        storeId: this.o.credentials.storeId,
        now: this.clock.now(),
      });
    } finally {
      this.working.delete(orderId);
    }
    this.changed();
    this.progress(offer, 'paying');
    this.submit(attempt, code).catch((e) =>
      // The attempt stays journaled as paying: the resolver asks the server about it by its key.
      this.o.log?.(`payment for ${orderId}: ${(e as Error).message}; asking the server`),
    );
    return this.waitFinal(attempt);
  }

  private async waitFinal(attempt: PaymentAttempt): Promise<{ final: boolean; attempt: PaymentAttempt }> {
    const done = () => {
      const a = this.o.store.attempt(attempt.orderId, attempt.attempt)!;
      return a.status !== 'paying' && a.status !== 'pending' ? a : undefined;
    };
    const now = done();
    if (now) return { final: true, attempt: now };
    const clock = this.clock;
    await new Promise<void>((resolve) => {
      const key = attempt.orderId;
      const timer: TimerHandle = clock.setTimeout(finish, this.o.payWaitMs ?? PAY_WAIT_MS);
      const waiters = this.waiters;
      function finish() {
        clock.clearTimeout(timer);
        set.delete(finish);
        if (set.size === 0 && waiters.get(key) === set) waiters.delete(key);
        resolve();
      }
      const set = this.waiters.get(key) ?? new Set();
      set.add(finish);
      this.waiters.set(key, set);
    });
    const a = done();
    return a
      ? { final: true, attempt: a }
      : { final: false, attempt: this.o.store.attempt(attempt.orderId, attempt.attempt)! };
  }

  private wake(orderId: string): void {
    for (const w of [...(this.waiters.get(orderId) ?? [])]) w();
  }

  /** Sends the charge, retrying the same request while the outcome is unknown. */
  private async submit(attempt: PaymentAttempt, code: string): Promise<void> {
    this.submitted.add(attempt.idempotencyKey);
    try {
      await this.submitLoop(attempt, code);
    } finally {
      this.submitted.delete(attempt.idempotencyKey);
    }
  }

  private async submitLoop(attempt: PaymentAttempt, code: string): Promise<void> {
    const body = {
      orderId: attempt.orderId,
      registerId: attempt.registerId,
      amount: { value: attempt.amountValue, currency: attempt.currency },
      method: { type: 'wallet_code', code },
    };
    for (let tries = 0; ; tries++) {
      try {
        this.lastSent.set(attempt.idempotencyKey, this.clock.now());
        const payment = await this.o.server.createPayment(attempt.idempotencyKey, body);
        this.serverUp = true;
        this.notePending(attempt, payment);
        // The signed result may have come by the push channel before this answer: never take a decided
        // attempt back to paying/pending (it would be decided, shown and relayed a second time).
        const known = this.o.store.attempt(attempt.orderId, attempt.attempt)!;
        const undecided = known.status === 'paying' || known.status === 'pending';
        const early = this.takeEarly(payment.id);
        if (
          early &&
          undecided &&
          !known.paymentId &&
          isDecidedPaymentStatus(early.signed.payment.status) &&
          early.signed.payment.status === payment.status
        ) {
          // The server pushed this payment's signed result before it answered (it pushes at its commit):
          // the attempt learns its payment id and its result in one write, without asking again, and the
          // push cursor of that event goes into the same write.
          await this.onSignedResult(early.signed, known, early.seq);
          return;
        }
        this.updateAttempt(
          attempt.orderId,
          attempt.attempt,
          {
            paymentId: payment.id,
            ...(undecided ? { status: payment.status === 'pending' ? 'pending' : 'paying' } : {}),
          },
          this.clock.now(),
        );
        await this.fetchSigned(attempt.orderId, attempt.attempt, payment.id);
        return;
      } catch (e) {
        if (e instanceof ServerRefusedError) {
          // The server refused the request itself (e.g. an invalid code, or an order the register canceled
          // while this charge was on its way): nothing was charged.
          const canceled = e.serverCode === 'order_canceled';
          this.failureText.set(
            `${attempt.orderId}#${attempt.attempt}`,
            canceled ? 'canceled at the register; nothing was charged' : e.message,
          );
          this.updateAttempt(
            attempt.orderId,
            attempt.attempt,
            { status: canceled ? 'canceled' : 'failed' },
            this.clock.now(),
          );
          this.progress(attempt, 'waiting_for_code', e.message);
          this.wake(attempt.orderId);
          return;
        }
        if (e instanceof LocalRequestError) {
          // Nothing left this unit, so nothing was charged; retrying would fail the same way. Shown on the
          // unit and sent to the register as the reason, never taken for "the server is unreachable".
          const message = `could not send the payment: ${e.message}`;
          this.o.log?.(`payment for ${attempt.orderId}: ${message}`);
          this.failureText.set(`${attempt.orderId}#${attempt.attempt}`, message);
          this.updateAttempt(attempt.orderId, attempt.attempt, { status: 'failed' }, this.clock.now());
          this.progress(attempt, 'unit_error', message);
          this.wake(attempt.orderId);
          return;
        }
        if (!retryable(e)) {
          // A bug after the request may have left: the outcome is unknown, so no new charge and no blind
          // retry; the resolver asks the server by this attempt's key.
          this.o.log?.(
            `payment for ${attempt.orderId}: unexpected error ${(e as Error).stack ?? e}; asking the server`,
          );
          return;
        }
        this.serverUp = false;
        this.o.log?.(`payment for ${attempt.orderId}: ${(e as Error).message}; retrying the same request`);
        // Retry the same request (same key) with backoff; the resolver also asks by key.
        await delay(this.clock, retryDelayMs(tries, e));
        // Stopping (the app is closing): the next start's resolver finishes this attempt by its key.
        if (this.stopped) return;
        const known = this.o.store.attempt(attempt.orderId, attempt.attempt)!;
        if (known.status !== 'paying') return;
        // Canceled at the register meanwhile: send nothing more; the resolver asks the server by this
        // attempt's key whether an earlier try arrived (then cancels that payment) or not (nothing charged).
        if (this.o.inbox.get(attempt.orderId)?.status === 'canceled') return;
      }
    }
  }

  /** What the server last said of a pending attempt (in memory: after a restart the screen says "provider"). */
  private readonly pendingSeen = new Map<string, WaitingFor>();

  private notePending(a: { orderId: string; attempt: number }, p: Payment): void {
    if (p.status !== 'pending') return;
    this.pendingSeen.set(`${a.orderId}#${a.attempt}`, p.method?.brand ? 'customer' : 'provider');
  }

  private waitingFor(a: PaymentAttempt): WaitingFor | null {
    if (a.status !== 'pending') return null;
    return this.pendingSeen.get(`${a.orderId}#${a.attempt}`) ?? 'provider';
  }

  /** Refusal messages of attempts the server refused, for the screen. */
  readonly failureText = new Map<string, string>();

  private async fetchSigned(orderId: string, attempt: number, paymentId: string): Promise<void> {
    try {
      const signed = await this.o.server.signed(paymentId);
      await this.onSignedResult(signed);
    } catch (e) {
      if (!(e instanceof ServerUnavailableError)) throw e;
      this.o.log?.(`reading payment ${paymentId} for ${orderId}#${attempt}: ${e.message}`);
    }
  }

  /**
   * Signed results pushed for an order this unit is paying before the POST that made the payment
   * answered, so before the attempt knows its payment id: kept by payment id (the newest
   * EARLY_RESULTS_KEPT) until that answer names it. Matched by payment id only, as findAttempt.
   */
  private readonly earlyResults = new Map<string, { signed: SignedPayment; seq?: number }>();

  /**
   * Keeps a result pushed before its payment's answer. Its push event is held (EventCursor.hold): the
   * stored cursor stays short of it until the attempt journals it, so a crash before that hears it again.
   */
  private keepEarly(signed: SignedPayment, seq: number | undefined): void {
    this.takeEarly(signed.payment.id);
    if (this.earlyResults.size >= EARLY_RESULTS_KEPT) {
      const [oldest] = this.earlyResults.keys();
      this.takeEarly(oldest);
    }
    this.earlyResults.set(signed.payment.id, { signed, seq });
    if (seq !== undefined) this.cursor.hold(seq);
  }

  /** Takes a kept early result out (to use it or drop it), releasing its push event. */
  private takeEarly(paymentId: string): { signed: SignedPayment; seq?: number } | undefined {
    const early = this.earlyResults.get(paymentId);
    if (!early) return undefined;
    this.earlyResults.delete(paymentId);
    if (early.seq !== undefined) this.cursor.release(early.seq);
    return early;
  }

  /**
   * A signed result from any path (push, poll, POST follow-up). Unsigned or foreign ones are ignored.
   * `attempt`: the attempt it is for, when the caller matched it by payment id already (the POST's
   * answer named the payment of a result pushed before it). `seq`: the push event's sequence, when it
   * came by the push: a result that changes the attempt stores that cursor in the same commit, one that
   * changes nothing moves the cursor in memory only.
   */
  private async onSignedResult(s: SignedPayment, attempt?: PaymentAttempt, seq?: number): Promise<void> {
    const unchanged = () => {
      if (seq !== undefined) this.cursor.skipped(seq);
    };
    if (
      !verifyPaymentResult(
        s.payment,
        s.signature,
        this.o.credentials.serverPublicKey,
        this.o.credentials.storeId,
      )
    )
      return unchanged();
    const a = attempt ?? this.findAttempt(s.payment);
    if (!a) {
      const latest = this.o.store.latest(s.payment.orderId);
      if (latest?.status === 'paying' && !latest.paymentId) {
        this.keepEarly(s, seq);
        return;
      }
      return unchanged();
    }
    if (a.status !== 'paying' && a.status !== 'pending' && a.signature) {
      // Already decided; only a refund may still change it.
      if (s.payment.status !== 'refunded') return unchanged();
    }
    this.notePending(a, s.payment);
    const status: AttemptStatus = s.payment.status;
    const decided = isDecidedPaymentStatus(s.payment.status);
    const cursor = seq === undefined ? undefined : this.cursor.writeFor(seq);
    const wrote = this.updateAttempt(
      a.orderId,
      a.attempt,
      {
        paymentId: s.payment.id,
        status,
        ...(decided ? { payment: s.payment, signature: s.signature, relayed: false } : {}),
      },
      this.clock.now(),
      cursor,
    );
    if (cursor && wrote) this.cursor.committed(cursor);
    else unchanged();
    if (decided) {
      this.progress(a, 'done', s.payment.status);
      this.wake(a.orderId);
      await this.relay(this.o.store.attempt(a.orderId, a.attempt)!);
    }
  }

  private findAttempt(p: Payment): PaymentAttempt | undefined {
    const latest = this.o.store.latest(p.orderId);
    if (!latest) return undefined;
    for (let n = latest.attempt; n >= 1; n--) {
      const a = this.o.store.attempt(p.orderId, n)!;
      // Only by payment id: guessing by order and amount could pin an earlier attempt's (replayed) result
      // on the attempt in flight, and a clerk who then sees "failed" might charge the customer again. An
      // attempt whose id is not known yet learns it from the POST answer or by its idempotency key.
      if (a.paymentId === p.id) return a;
    }
    return undefined;
  }

  /**
   * Drops the in-memory notes of attempts that are decided and of orders the inbox no longer holds: a few
   * per sale, kept for as long as the unit ran before (see bench/terminal/retention.ts).
   */
  private forgetFinished(unfinished: PaymentAttempt[]): void {
    const keys = new Set(unfinished.map((a) => a.idempotencyKey));
    for (const k of this.lastSent.keys()) if (!keys.has(k) && !this.submitted.has(k)) this.lastSent.delete(k);
    const attempts = new Set(unfinished.map((a) => `${a.orderId}#${a.attempt}`));
    for (const k of this.pendingSeen.keys()) if (!attempts.has(k)) this.pendingSeen.delete(k);
    const held = new Set(this.o.inbox.list().map((o) => o.orderId));
    for (const id of this.held) if (!held.has(id)) this.held.delete(id);
    // An early result whose order is no longer being paid without a payment id (its answer never came, and
    // the attempt was decided another way) is of no use: dropped, so its push event no longer holds the cursor.
    for (const [id, early] of this.earlyResults) {
      const latest = this.o.store.latest(early.signed.payment.orderId);
      if (!(latest?.status === 'paying' && !latest.paymentId)) this.takeEarly(id);
    }
    // failureText stays: today's history shows it, and it holds only refused attempts (a few a day).
  }

  /** Asks the server about every attempt whose outcome is unknown (after a timeout or a restart). */
  async resolveUnfinished(): Promise<void> {
    if (this.stopped) return;
    const unfinished = this.o.store.unfinished();
    this.forgetFinished(unfinished);
    for (const a of unfinished) {
      if (this.stopped) return;
      if (this.working.has(`resolve:${a.orderId}`)) continue;
      this.working.add(`resolve:${a.orderId}`);
      try {
        const canceled = this.o.inbox.get(a.orderId)?.status === 'canceled';
        if (a.paymentId) {
          // Canceled at the register while the payment was pending: ask the server to cancel it, again at
          // every pass until it is decided (the plugin's own cancel may have failed or come too early).
          if (canceled && a.status === 'pending') await this.cancelAtServer(a.orderId, a.paymentId);
          await this.fetchSigned(a.orderId, a.attempt, a.paymentId);
          continue;
        }
        const found = await this.o.server.byIdempotencyKey(a.idempotencyKey);
        this.serverUp = true;
        if (found[0]) {
          this.updateAttempt(a.orderId, a.attempt, { paymentId: found[0].payment.id }, this.clock.now());
          if (canceled && found[0].payment.status === 'pending')
            await this.cancelAtServer(a.orderId, found[0].payment.id);
          await this.onSignedResult(found[0]);
        } else if (
          canceled &&
          !this.inMemory(a) &&
          // A try that timed out may still be taken by a busy server: only after the client's timeout and a
          // margin is "nothing arrived" final.
          this.clock.now() - (this.lastSent.get(a.idempotencyKey) ?? a.updatedAt) > NOTHING_ARRIVED_MS
        ) {
          // Canceled at the register, and no try of this attempt reached the server (none is in flight
          // any more): nothing was charged. The screen says so at once instead of "Paying…" forever.
          this.failureText.set(
            `${a.orderId}#${a.attempt}`,
            'canceled at the register before the payment reached the server; nothing was charged',
          );
          this.updateAttempt(a.orderId, a.attempt, { status: 'canceled' }, this.clock.now());
          this.wake(a.orderId);
        } else if (this.clock.now() - a.createdAt > NOTHING_ARRIVED_MS && !this.inMemory(a)) {
          // The request never reached the server and its code is gone with the process that had it:
          // nothing was charged. The clerk scans the customer's code again.
          const message = "the payment was not sent; scan the customer's code again";
          this.failureText.set(`${a.orderId}#${a.attempt}`, message);
          this.updateAttempt(a.orderId, a.attempt, { status: 'failed' }, this.clock.now());
          // The register shows it too (it still says "paying" from before this unit stopped).
          this.progress(a, 'waiting_for_code', message);
          this.wake(a.orderId);
        }
      } catch (e) {
        if (e instanceof ServerUnavailableError) this.serverUp = false;
      } finally {
        this.working.delete(`resolve:${a.orderId}`);
      }
    }
  }

  private readonly submitted = new Set<string>();
  /** When each attempt's request last left this unit (by idempotency key; in memory). */
  private readonly lastSent = new Map<string, number>();

  private async cancelAtServer(orderId: string, paymentId: string): Promise<void> {
    try {
      await this.o.server.cancelPayment(paymentId);
    } catch (e) {
      // 409: the customer had already paid; the payment stands and its result comes as usual.
      this.o.log?.(`cancel of ${paymentId} for ${orderId}: ${(e as Error).message}`);
    }
  }
  private inMemory(a: PaymentAttempt): boolean {
    return this.submitted.has(a.idempotencyKey);
  }

  /** Sends the signed result to the plugin that offered the order; retried until acknowledged. */
  private async relay(a: PaymentAttempt): Promise<void> {
    if (!a.payment || !a.signature || a.relayed) return;
    const target: LanTarget = { kind: 'unicast', ...a.plugin };
    try {
      await this.o.endpoint.send(
        'result',
        { payment: a.payment as unknown as Record<string, unknown>, signature: a.signature },
        target,
        { deadlineMs: RELAY_DEADLINE_MS },
      );
      this.updateAttempt(a.orderId, a.attempt, { relayed: true }, this.clock.now());
    } catch {
      // The register is unreachable now; relayPending tries again.
    }
  }

  private async relayPending(): Promise<void> {
    if (this.stopped) return;
    for (const a of this.o.store.unrelayed()) {
      if (this.stopped) return;
      await this.relay(a);
    }
  }

  private progress(
    o: { orderId: string; plugin: { to: string; address: string; port: number } },
    stage: ProgressStage,
    detail?: string,
  ): void {
    this.o.endpoint
      .send(
        'progress',
        { orderId: o.orderId, stage, ...(detail ? { detail: detail.slice(0, 200) } : {}) },
        { kind: 'unicast', ...o.plugin },
      )
      .catch(() => undefined);
  }

  private async onOfferChange(offer: HeldOffer, _event: 'new' | 'updated'): Promise<void> {
    if (offer.status !== 'canceled') return;
    // The register canceled: abort what has not been paid.
    const a = this.o.store.latest(offer.orderId);
    if (!a || (a.status !== 'paying' && a.status !== 'pending')) return;
    if (!a.paymentId) {
      // No answer from the server yet (it may be down): the retry loop stops, the resolver decides.
      void this.resolveUnfinished();
      return;
    }
    await this.cancelAtServer(offer.orderId, a.paymentId);
    await this.fetchSigned(a.orderId, a.attempt, a.paymentId);
  }
}
