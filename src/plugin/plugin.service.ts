/**
 * The plugin's core: turns each captured order into an offer, follows it to a verified result, tells the
 * host and prints the receipt.
 *
 * Results arrive three ways: the server's push, the unit's LAN relay, and polling the server. Whichever
 * comes first wins, but only if the server's Ed25519 signature verifies and the payment matches the order
 * (register, amount, currency): a device on the LAN, even one holding the store key, cannot make the
 * register show "paid". Everything is journaled before it is acted on (PluginJournal), and a restart picks
 * up what was due: orders never claimed are offered again, orders being paid are asked about, write-backs
 * and receipts that were due are completed, each exactly once.
 */
import { EventEmitter } from 'node:events';
import {
  AdapterContext,
  CapturedOrder,
  DispatchMode,
  HostAdapter,
  OrderResult,
} from '../adapters/host-adapter';
import { LanEndpoint, LanInbound, OfferDispatcher, UnitDirectory, UnitRecord } from '../lan';
import { Clock, every, SystemClock } from '../protocol/clock';
import { DeviceApiError } from '../device/device-errors';
import { PaymentServer, SignedPayment } from '../device/server-client';
import { ServerConflictError, ServerRefusedError, ServerUnavailableError } from '../device/server-errors';
import { LanBody } from '../protocol/lan-messages';
import { verifyPaymentResult } from '../protocol/payment-signature';
import { isPayment, OrderStatus, Payment } from '../protocol/states';
import { ProtocolError } from '../protocol/errors';
import { EventCursor } from '../device/event-cursor';
import { formatMoney } from '../protocol/money';
import { OrderRecord, PluginJournal } from './plugin-journal';

export type SignedResult = SignedPayment;

/** Where receipts go; the printer module implements it (render, queue, retry while the printer is off). */
export interface ReceiptSink {
  print(order: OrderRecord): Promise<void>;
  /** Problems a person must fix (e.g. "printer tcp://… is off: 2 receipts waiting"). */
  problems(): string[];
}

/** An offered order with no unit heard from for this long needs a person. */
export const UNSEEN_UNIT_MS = 30_000;
/**
 * How often the work loop runs: write-backs and receipts that are due go out within this much of being
 * decided (a result also runs the loop at once; this catches retries and what a restart left due).
 */
export const PLUGIN_TICK_MS = 500;
/**
 * How often the server is asked about orders a unit is working on: the push channel may be down, and a
 * unit may be unreachable to relay. 2 s keeps a paid order from waiting long for the register either way.
 */
export const POLL_INTERVAL_MS = 2000;
/** An order offered this recently is not polled yet: nobody can have paid it so fast. */
export const FRESH_OFFER_MS = 5000;
/** Orders no unit has taken are offered again this often (units show each order once, by order id). */
export const REOFFER_INTERVAL_MS = 10_000;
/** A failed write-back is retried after 1 s, doubling up to this. */
export const WRITE_BACK_MAX_BACKOFF_MS = 60_000;

export interface PluginCounters {
  forgedResults: number;
  /** A unit could not send a payment at all (its own fault; nothing was charged). */
  unitErrors: number;
  mismatchedResults: number;
  offersFailed: number;
  rejectedInputs: number;
  /** Problems adapters reported and survive by themselves (a printer off, a serial port gone). */
  adapterProblems: number;
  /** Orders the host took back (e.g. a corrected total on the customer display). */
  withdrawnByHost: number;
}

/** An adapter's problem stays under "Needs attention" this long after it was last reported. */
export const ADAPTER_PROBLEM_SHOW_MS = 10 * 60_000;

/** One kind of problem one adapter reported, folded: how often, first and last time. */
export interface AdapterProblem {
  adapter: string;
  code: string;
  message: string;
  count: number;
  firstAt: string;
  lastAt: string;
}

export interface PluginServiceOptions {
  pluginId: string;
  storeName: string;
  journal: PluginJournal;
  endpoint: LanEndpoint;
  directory: UnitDirectory;
  dispatcher: OfferDispatcher;
  server: PaymentServer;
  serverPublicKey: string;
  /** The plugin's store: only results the server signed for it are believed. */
  storeId: string;
  /** The running adapters by kind: write-backs go through the one that captured the order. */
  adapters: { get(kind: string): HostAdapter | undefined };
  defaultDispatch: DispatchMode;
  receipts?: ReceiptSink;
  log?: (message: string) => void;
  /** How often the work loop runs; default PLUGIN_TICK_MS. */
  tickMs?: number;
  /** How often the server is polled; default POLL_INTERVAL_MS. */
  pollMs?: number;
  clock?: Clock;
}

export class PluginService extends EventEmitter {
  readonly counters: PluginCounters = {
    forgedResults: 0,
    unitErrors: 0,
    mismatchedResults: 0,
    offersFailed: 0,
    rejectedInputs: 0,
    adapterProblems: 0,
    withdrawnByHost: 0,
  };
  private readonly adapterTrouble = new Map<string, AdapterProblem & { lastMs: number }>();
  readonly rejects: { at: string; adapter: string; subject: string; code: string; message: string }[] = [];
  private lastUnitError?: { unit: string; orderId: string; detail: string };
  serverUp = false;
  private lastPollOk = true;
  private stopTicking?: () => void;
  private stopPush?: () => void;
  private ticking = false;
  private lastPoll = -Infinity;
  private readonly clock: Clock;
  private readonly cursor: EventCursor;
  private readonly lastOffer = new Map<string, number>();
  private readonly writeBackNext = new Map<string, number>();

  constructor(private readonly o: PluginServiceOptions) {
    super();
    this.clock = o.clock ?? new SystemClock();
    this.cursor = new EventCursor(o.journal, () => this.clock.now());
  }

  get journal(): PluginJournal {
    return this.o.journal;
  }

  /** After a manifest switch: orders captured from now on use the new manifest's dispatch. */
  setDefaultDispatch(d: DispatchMode): void {
    this.o.defaultDispatch = d;
  }

  /** The context adapters call with what they capture. */
  contextFor(kind: string): AdapterContext {
    return {
      onOrder: async (order) => {
        await this.capture(order, kind);
      },
      onReject: (r) => {
        this.counters.rejectedInputs++;
        this.rejects.unshift({ at: new Date(this.clock.now()).toISOString(), adapter: kind, ...r });
        this.rejects.length = Math.min(this.rejects.length, 50);
        this.o.log?.(`rejected ${r.subject}: ${r.message}`);
        this.emit('change', { kind: 'reject' });
      },
      onWithdraw: (orderId, reason) => this.withdrawnByHost(orderId, reason, kind),
    };
  }

  /**
   * The host took back an order it handed over: canceled like a cancel from the register, unless it is
   * paid or its payment cannot be stopped, when it stands (the host's next order is a separate one).
   */
  private async withdrawnByHost(
    orderId: string,
    reason: string,
    kind: string,
  ): Promise<'canceled' | 'stands' | 'unknown'> {
    if (!this.o.journal.get(orderId)) return 'unknown';
    this.counters.withdrawnByHost++;
    this.o.journal.log(orderId, 'withdrawn by the host', `${kind}: ${reason}`);
    let after: OrderRecord | undefined;
    try {
      after = await this.cancel(orderId);
    } catch (e) {
      this.o.log?.(
        `order ${orderId} withdrawn by ${kind} (${reason}) but it stands: ${(e as Error).message}`,
      );
      return 'stands';
    }
    if (after?.status === 'canceled') {
      this.o.log?.(`order ${orderId} withdrawn by ${kind}: ${reason}`);
      return 'canceled';
    }
    this.o.log?.(`order ${orderId} withdrawn by ${kind} (${reason}) but it is ${after?.status}: it stands`);
    return 'stands';
  }

  /** What an adapter survives by itself, folded per adapter and problem for the status page and the log. */
  adapterProblem(adapter: string, error: Error): void {
    const raw = (error as { code?: unknown }).code;
    const code = typeof raw === 'string' ? raw : 'adapter.error';
    const key = `${adapter}\u0000${code}`;
    const now = this.clock.now();
    const at = new Date(now).toISOString();
    const seen = this.adapterTrouble.get(key);
    this.adapterTrouble.set(key, {
      adapter,
      code,
      message: error.message,
      count: (seen?.count ?? 0) + 1,
      firstAt: seen?.firstAt ?? at,
      lastAt: at,
      lastMs: now,
    });
    this.counters.adapterProblems++;
    this.o.log?.(`${adapter}: ${error.message}`);
    this.emit('change', { kind: 'adapter' });
  }

  /** Every problem adapters reported since start, the latest first. */
  adapterProblems(): AdapterProblem[] {
    return [...this.adapterTrouble.values()]
      .sort((a, b) => b.lastMs - a.lastMs)
      .map(({ lastMs: _, ...p }) => p);
  }

  /**
   * Starts listening to the server and the work loop. LAN messages come in through `lanMessage` (the
   * app's LAN controller routes progress, result and claim to it).
   */
  async start(): Promise<void> {
    this.o.directory.onUnit(() => this.emit('change', { kind: 'terminals' }));
    this.stopPush = this.o.server.listen({
      publicKey: this.o.serverPublicKey,
      storeId: this.o.storeId,
      after: () => this.cursor.after(),
      // The store's other registers' payments: skipped unverified, the cursor stored now and then.
      wants: (p) => this.isOwnPayment(p),
      onSkipped: (seq) => this.cursor.skipped(seq),
      onEvent: (e) => {
        // Acted on: the cursor went into the decision's commit. Otherwise nothing changed, and the cursor
        // moves as for a skipped event.
        if (!this.onResult(e, 'push', undefined, e.seq)) this.cursor.skipped(e.seq);
      },
      onState: (up) => {
        this.serverUp = up;
        this.emit('change', { kind: 'server' });
      },
    });
    this.stopTicking = every(this.clock, this.o.tickMs ?? PLUGIN_TICK_MS, () => this.tick());
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopTicking?.();
    this.stopPush?.();
    this.cursor.flush();
  }

  /** A payment of an order this plugin journaled (its register's): the push events it acts on. */
  private isOwnPayment(p: unknown): boolean {
    if (typeof p !== 'object' || p === null) return false;
    const { orderId, registerId } = p as { orderId?: unknown; registerId?: unknown };
    return typeof orderId === 'string' && this.o.journal.registerOf(orderId) === registerId;
  }

  /** Journals a captured order (once per order id) and offers it. */
  async capture(order: CapturedOrder, adapterKind: string): Promise<OrderRecord> {
    const dispatch = order.dispatch ?? this.o.defaultDispatch;
    const { record, created } = this.o.journal.capture(order, adapterKind, dispatch);
    if (
      !created &&
      (record.amount.value !== order.amount.value || record.amount.currency !== order.amount.currency)
    ) {
      // The same order number with another amount: never re-price an order silently (a unit may be
      // charging the first amount right now). The host must use a new order number or cancel this one.
      throw new ProtocolError(
        'order.amount_conflict',
        `order ${order.orderId} was already sent for ${formatMoney(record.amount, { symbol: true })} (${record.status}); ` +
          `it cannot be sent again for ${formatMoney(order.amount, { symbol: true })}: cancel it or use a new order number`,
        { subject: order.orderId },
      );
    }
    if (created) {
      this.emit('change', { kind: 'order', orderId: order.orderId });
      void this.offer(record);
    }
    return record;
  }

  private async offer(record: OrderRecord): Promise<void> {
    this.lastOffer.set(record.orderId, this.clock.now());
    // The datagram leaves inside this call (its delivery is awaited below). "offered" is journaled right
    // after, in the same turn of the event loop, so nothing a unit answers can be handled in between; the
    // order's durable record is its capture, before this. A crash between the two leaves it "captured",
    // and the restart offers it again, which a unit takes as the same order. One fsync less before the
    // offer reaches the unit.
    const delivered = this.o.dispatcher.offer(
      { orderId: record.orderId, registerId: record.registerId, amount: record.amount },
      record.dispatch,
    );
    if (record.status === 'captured')
      this.o.journal.setStatus(record.orderId, 'offered', {}, describeDispatch(record.dispatch));
    this.emit('change', { kind: 'order', orderId: record.orderId });
    try {
      await delivered;
    } catch (e) {
      this.counters.offersFailed++;
      this.o.journal.log(record.orderId, 'offer not delivered', (e as Error).message);
      this.o.log?.(`offer ${record.orderId}: ${(e as Error).message}`);
      this.emit('change', { kind: 'order', orderId: record.orderId });
    }
  }

  /** A LAN message for the plugin's orders: a unit's progress, a relayed result, a claim just decided. */
  lanMessage(m: LanInbound): void {
    if (m.type === 'progress') {
      const b = m.body as LanBody<'progress'>;
      const order = this.o.journal.get(b.orderId);
      if (!order || order.terminal !== m.sender) return;
      // "paying" on a claimed (or failed, then retried) order is also its status change: both in one commit.
      if (b.stage === 'paying' && (order.status === 'claimed' || order.status === 'failed'))
        this.o.journal.setStatus(b.orderId, 'paying', { progress: b.stage, terminal: m.sender }, m.sender);
      else this.o.journal.setProgress(b.orderId, b.stage, m.sender);
      if (b.stage === 'unit_error') {
        this.counters.unitErrors++;
        this.lastUnitError = { unit: m.sender, orderId: b.orderId, detail: b.detail ?? 'no detail' };
        this.o.journal.log(b.orderId, 'unit error', `${m.sender}: ${b.detail ?? ''}`);
        this.o.log?.(`unit ${m.sender} could not send the payment for ${b.orderId}: ${b.detail ?? ''}`);
      }
      this.emit('change', { kind: 'order', orderId: b.orderId });
    } else if (m.type === 'result') {
      const b = m.body as LanBody<'result'>;
      this.onResult({ payment: b.payment as unknown as Payment, signature: b.signature }, 'lan', m.sender);
    } else if (m.type === 'claim') {
      this.emit('change', { kind: 'order', orderId: (m.body as LanBody<'claim'>).orderId });
    }
  }

  /**
   * The one door every result comes through, whatever path it took. `seq`: the push event's sequence,
   * stored with the decision. Returns whether it decided the order (and so stored that cursor).
   */
  onResult(r: SignedResult, via: 'push' | 'lan' | 'poll', from?: string, seq?: number): boolean {
    if (
      !isPayment(r.payment) ||
      !verifyPaymentResult(r.payment, r.signature, this.o.serverPublicKey, this.o.storeId)
    ) {
      this.counters.forgedResults++;
      this.o.log?.(
        `ignored a result without a valid server signature for this store (forged, or another store's; via ${via}${from ? ` from ${from}` : ''})`,
      );
      this.emit('change', { kind: 'alert' });
      return false;
    }
    const p = r.payment;
    const order = this.o.journal.get(p.orderId);
    if (!order) return false;
    if (
      p.registerId !== order.registerId ||
      p.amount.value !== order.amount.value ||
      p.amount.currency !== order.amount.currency
    ) {
      this.counters.mismatchedResults++;
      this.o.log?.(
        `payment ${p.id} does not match order ${order.orderId} (register or amount differ); ignored`,
      );
      return false;
    }
    let status: OrderStatus;
    if (p.status === 'succeeded') status = 'paid';
    else if (p.status === 'failed' || p.status === 'canceled') status = 'failed';
    else if (p.status === 'pending') {
      if (order.status === 'claimed' || order.status === 'offered')
        this.o.journal.setStatus(order.orderId, 'paying', {}, `payment ${p.id}`);
      this.emit('change', { kind: 'order', orderId: order.orderId });
      return false;
    } else return false; // refunds are the server's business; the order stays paid
    // A failed attempt is not final: the clerk may scan another code. Only "paid" is told to the host.
    const cursor = seq === undefined ? undefined : this.cursor.writeFor(seq);
    if (
      !this.o.journal.decide(
        order.orderId,
        status,
        p,
        r.signature,
        via,
        { writeBack: status === 'paid', receipt: status === 'paid' },
        cursor,
      )
    )
      return false;
    if (cursor) this.cursor.committed(cursor);
    this.emit('change', { kind: 'order', orderId: order.orderId });
    void this.tick();
    return true;
  }

  /**
   * The host cancels an order. Nobody is paying it yet: it is canceled at once (the offer withdrawn, the
   * unit told, the host told "canceled"). A unit is paying it: the server decides first, so the register is
   * never told "canceled" and then "paid" —
   * - the customer has paid: the charge stands, the order ends paid, and the cancel is refused (409
   *   `order_paid`: refund it instead);
   * - a payment is pending: it is canceled at the server (or the server says it will end canceled), then
   *   the order is canceled;
   * - the server cannot be reached (to close the order there) while a unit holds it: refused (503
   *   `cancel_unconfirmed`); nothing is changed, and a payment's result decides the order. Also when the
   *   unit has not reported "paying" (yet): its clerk may be scanning, and only the server's close stops
   *   that charge.
   * The server's close comes first: a charge the unit sends after it is refused (409 order_canceled), and
   * one that reached the server before it is in the close's answer, so a canceled order stays canceled.
   */
  async cancel(orderId: string): Promise<OrderRecord | undefined> {
    const before = this.o.journal.get(orderId);
    if (!before) return undefined;
    if (before.status === 'paid' || before.status === 'canceled') return before;
    if (
      before.terminal &&
      (before.status === 'paying' || before.status === 'claimed' || before.status === 'failed')
    )
      await this.stopPayments(before);
    if (!this.o.journal.cancel(orderId)) return this.o.journal.get(orderId);
    this.emit('change', { kind: 'order', orderId });
    await this.o.dispatcher.withdraw(orderId, 'canceled').catch(() => undefined);
    if (before.terminal) {
      const unit = this.o.directory.targetOf(before.terminal);
      if (unit)
        await this.o.endpoint
          .send('cancel', { orderId, reason: 'canceled at the register' }, unit)
          .catch(() => undefined);
    }
    void this.tick();
    return this.o.journal.get(orderId);
  }

  /** Cancels the order's pending payments at the server; throws when the cancel must be refused. */
  private async stopPayments(order: OrderRecord): Promise<void> {
    const paid = (r: SignedResult) => {
      this.onResult(r, 'poll');
      return new DeviceApiError(
        409,
        'order_paid',
        `order ${order.orderId} was paid (payment ${r.payment.id}) before the cancel reached the wallet: the charge stands and the register is told "paid"; refund it if the customer should not pay`,
      );
    };
    const unconfirmed = (why: string) =>
      new DeviceApiError(
        503,
        'cancel_unconfirmed',
        order.status === 'paying'
          ? `order ${order.orderId} is being paid on ${order.terminal} and the payment server cannot confirm the cancel (${why}): nothing was changed and the payment decides the order; try the cancel again in a moment`
          : `order ${order.orderId} is taken by ${order.terminal}, whose clerk may be scanning right now, and the payment server cannot confirm the cancel (${why}): nothing was changed; try the cancel again in a moment`,
      );
    let results: SignedResult[];
    try {
      // Closed at the server first: from this answer on, a charge for the order that is still on its way
      // (a unit retrying through an outage or a lossy LAN) is refused, so the order cannot end "canceled"
      // here and then be paid there. The answer lists what reached the server before.
      results = await this.closeAtServer(order.orderId);
    } catch (e) {
      this.o.log?.(`cancel of order ${order.orderId}: ${(e as Error).message}`);
      // Only the server's close stops a charge the unit may be sending: also for an order the plugin knows
      // as claimed (the unit's "paying" may still be on its way) or failed (the clerk scanning the next
      // code). Canceled here without it, a charge that reaches the server later makes the order paid after
      // the register was told "canceled" (chaos seed 215 on 6a4bfad).
      throw unconfirmed((e as Error).message);
    }
    const succeeded = results.find((r) => r.payment.status === 'succeeded');
    if (succeeded) throw paid(succeeded);
    for (const r of results.filter((x) => x.payment.status === 'pending')) {
      try {
        await this.o.server.cancelPayment(r.payment.id);
      } catch (e) {
        if (e instanceof ServerConflictError) {
          // The customer paid while we asked: the payment succeeded.
          const now = await this.o.server.signed(r.payment.id).catch(() => undefined);
          if (now) throw paid(now);
          throw unconfirmed('it says the payment succeeded; its signed result is on the way');
        }
        // 502 cancel_pending: the server has journaled the cancel, and the payment can now only end
        // canceled (docs/server-api.md). Anything else leaves the outcome open.
        if (e instanceof ServerUnavailableError && e.status === 502) continue;
        throw unconfirmed((e as Error).message);
      }
    }
  }

  /** closeOrder, or only the order's payments from a server that predates it (404 on the route). */
  private async closeAtServer(orderId: string): Promise<SignedResult[]> {
    try {
      return await this.o.server.closeOrder(orderId);
    } catch (e) {
      if (e instanceof ServerRefusedError && e.status === 404) return this.o.server.resultsOf(orderId);
      throw e;
    }
  }

  orders(): OrderRecord[] {
    return this.o.journal.list();
  }

  order(orderId: string): OrderRecord | undefined {
    return this.o.journal.get(orderId);
  }

  terminals(): UnitRecord[] {
    return this.o.directory.list();
  }

  /**
   * Everything that needs a person, each with what to do next: what the status page lists under "Needs
   * attention". `now` is for tests.
   */
  problems(now = this.clock.now()): string[] {
    const out: string[] = [];
    if (!this.serverUp && !this.lastPollOk)
      out.push(
        `the payment server ${this.o.server.baseUrl} is unreachable: results arrive by LAN only; check this PC's internet connection, then the server`,
      );
    // An order nobody can take: offered for a while and no unit heard from in that time.
    const units = this.o.directory.list();
    const lastUnit = Math.max(0, ...units.map((u) => u.lastSeen));
    for (const o of this.o.journal.list()) {
      if (o.status !== 'offered') continue;
      const waited = now - Date.parse(o.createdAt);
      if (waited < UNSEEN_UNIT_MS || now - lastUnit < UNSEEN_UNIT_MS) continue;
      out.push(
        `order ${o.orderId} has waited ${Math.round(waited / 1000)} s and no unit is on the LAN: switch a unit on and check it is on this PC's network (payconnect lan discover), or cancel the order`,
      );
    }
    for (const o of this.o.journal.due('write_back')) {
      if (o.writeBackError)
        out.push(
          `order ${o.orderId}: telling the register failed (${o.writeBackError}); retrying: check that the register software is running and its callback or outbox is right in the manifest`,
        );
    }
    out.push(...(this.o.receipts?.problems() ?? []));
    for (const p of this.adapterTrouble.values()) {
      if (now - p.lastMs > ADAPTER_PROBLEM_SHOW_MS) continue;
      const ago = Math.max(0, Math.round((now - p.lastMs) / 1000));
      out.push(
        `${p.adapter}: ${p.message}` +
          (p.count > 1
            ? ` (${p.count} times, the last ${ago < 120 ? `${ago} s` : `${Math.round(ago / 60)} min`} ago)`
            : '') +
          `; the adapter keeps trying by itself: check the cable, port or device named here`,
      );
    }
    if (this.counters.rejectedInputs) {
      const last = this.rejects[0];
      out.push(
        `${this.counters.rejectedInputs} order input(s) rejected${last ? `, the last: ${last.subject}: ${last.message}` : ''}; those orders were not offered: fix the register's export or the manifest's parse rules, then send them again` +
          (last?.adapter === 'file-drop'
            ? " (rejected files wait in the inbox's rejected/ folder with the reason beside each)"
            : ''),
      );
    }
    if (this.counters.unitErrors && this.lastUnitError) {
      const e = this.lastUnitError;
      out.push(
        `${this.counters.unitErrors} payment(s) could not be sent by a unit (the last: ${e.unit}, order ${e.orderId}: ${e.detail}); nothing was charged and the clerk can scan again: if it repeats, restart or update that unit's app and tell support`,
      );
    }
    if (this.counters.forgedResults)
      out.push(
        `${this.counters.forgedResults} result(s) without a valid server signature were ignored (forged, or another store's): nothing was marked paid; find the device that sent them`,
      );
    if (this.counters.mismatchedResults)
      out.push(
        `${this.counters.mismatchedResults} signed result(s) did not match their order (register or amount differ) and were ignored: check that no other register uses the same order numbers`,
      );
    return out;
  }

  async reprint(orderId: string): Promise<boolean> {
    const ok = this.o.journal.requeueReceipt(orderId);
    if (ok) void this.tick();
    return ok;
  }

  /** Write-backs, receipts, polls and re-offers that are due. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    const now = this.clock.now();
    try {
      await this.writeBacks();
      await this.printReceipts();
      if (now - this.lastPoll >= (this.o.pollMs ?? POLL_INTERVAL_MS)) {
        this.lastPoll = now;
        await this.poll();
      }
      await this.reoffer();
    } catch (e) {
      this.o.log?.(`plugin work loop: ${(e as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  private resultOf(o: OrderRecord): OrderResult {
    return {
      orderId: o.orderId,
      registerId: o.registerId,
      status: o.status === 'paid' ? 'paid' : o.status === 'canceled' ? 'canceled' : 'failed',
      amount: o.amount,
      ...(o.payment ? { payment: o.payment } : {}),
      ...(o.signature ? { signature: o.signature } : {}),
      decidedAt: o.updatedAt,
    };
  }

  private async writeBacks(): Promise<void> {
    for (const o of this.o.journal.due('write_back')) {
      if ((this.writeBackNext.get(o.orderId) ?? 0) > this.clock.now()) continue;
      const adapter = this.o.adapters.get(o.adapter);
      if (!adapter) {
        this.o.journal.workFailed(o.orderId, 'write_back', `the ${o.adapter} adapter is not running`);
        continue;
      }
      try {
        await adapter.writeBack(this.resultOf(o));
        // Done for the status written; one decided meanwhile (a charge completing a canceled order) is due.
        this.o.journal.workDone(o.orderId, 'write_back', o.status);
        this.writeBackNext.delete(o.orderId);
      } catch (e) {
        this.o.journal.workFailed(o.orderId, 'write_back', (e as Error).message);
        // Backoff: 1 s doubling to WRITE_BACK_MAX_BACKOFF_MS.
        this.writeBackNext.set(
          o.orderId,
          this.clock.now() +
            Math.min(WRITE_BACK_MAX_BACKOFF_MS, 1000 * 2 ** Math.min(o.writeBackAttempts, 6)),
        );
      }
      this.emit('change', { kind: 'order', orderId: o.orderId });
    }
  }

  private async printReceipts(): Promise<void> {
    if (!this.o.receipts) return;
    for (const o of this.o.journal.due('receipt')) {
      try {
        // The sink queues the receipt (it never blocks on a printer that is off): done means queued.
        await this.o.receipts.print(o);
        this.o.journal.workDone(o.orderId, 'receipt');
      } catch (e) {
        this.o.journal.workFailed(o.orderId, 'receipt', (e as Error).message);
      }
    }
  }

  /** Asks the server about orders a unit is working on (the push may have been down). */
  private async poll(): Promise<void> {
    for (const o of this.o.journal.byStatus(['claimed', 'paying', 'failed', 'offered'])) {
      if (o.status === 'offered' && Date.parse(o.updatedAt) > this.clock.now() - FRESH_OFFER_MS) continue;
      try {
        for (const r of await this.o.server.resultsOf(o.orderId)) this.onResult(r, 'poll');
        this.lastPollOk = true;
      } catch {
        this.lastPollOk = false;
        return;
      }
    }
  }

  /** Orders no unit has taken are offered again every REOFFER_INTERVAL_MS (units show each order once). */
  private async reoffer(): Promise<void> {
    const now = this.clock.now();
    for (const o of this.o.journal.byStatus(['captured', 'offered'])) {
      if (now - (this.lastOffer.get(o.orderId) ?? 0) < REOFFER_INTERVAL_MS) continue;
      void this.offer(o);
    }
    // An order a unit holds but has not begun to pay: offered again to that unit alone, now and then. A unit
    // killed after the plugin granted its claim but before it heard so never journaled the order, and
    // after its restart nobody could pay it (its clerk sees nothing, the other unit sees "taken"): it gets
    // the offer again and claims it again (the holder is granted again). A unit that has the order only
    // takes the later expiry. The first reminder comes an interval after the plugin saw the claim.
    const claimed = this.o.journal.byStatus(['claimed']);
    const held = new Set(claimed.map((o) => o.orderId));
    for (const id of this.lastRemind.keys()) if (!held.has(id)) this.lastRemind.delete(id);
    for (const o of claimed) {
      const last = this.lastRemind.get(o.orderId);
      if (last !== undefined && now - last < REOFFER_INTERVAL_MS) continue;
      this.lastRemind.set(o.orderId, now);
      if (last === undefined || !o.terminal) continue;
      this.o.dispatcher
        .offer(
          { orderId: o.orderId, registerId: o.registerId, amount: o.amount },
          { mode: 'unicast', terminal: o.terminal },
        )
        .catch((e: Error) => this.o.log?.(`reminding ${o.terminal} of order ${o.orderId}: ${e.message}`));
    }
  }

  /** When each claimed order was last offered again to its holder (reoffer). */
  private readonly lastRemind = new Map<string, number>();
}

function describeDispatch(d: DispatchMode): string {
  return d.mode === 'unicast' ? `to ${d.terminal}` : d.mode;
}
