/**
 * Offers and claims: the plugin offers an amount to one unit (unicast), to all (broadcast) or to a group
 * (multicast); units claim it; the first claim wins.
 *
 * Plugin side (OfferDispatcher): every claim goes through a ClaimBook, whose `claim` is the single point
 * that decides, so exactly one unit is ever granted an order, also when several claims arrive in the same
 * instant or a unit retries. The winner gets `claim.granted`, every other claimer `claim.denied` naming the
 * winner, and every other unit that was offered the order a `withdraw`. The plugin app replaces the
 * in-memory ClaimBook with its journal, so the decision survives a restart.
 *
 * Unit side (OfferInbox): holds each offer once by order id however often it is resent, expires it, and
 * turns withdraw/cancel/collect into state the unit's screen shows.
 */
import { Clock, SystemClock } from '../protocol/clock';
import { TransportError } from '../protocol/errors';
import { ClaimDenial, LanBody, LanMoney, OfferMode } from '../protocol/lan-messages';
import { UnitDirectory } from './discovery';
import { DeliveryReport, LAN_UNHANDLED, LanEndpoint, LanInbound, LanTarget } from './lan-endpoint';
import { LanReply, lanReply } from './nest/lan-reply';

/**
 * How long an offer is retried before the plugin reports the unit unreachable. Longer than the endpoint's
 * 10 s default: with the 1 s backoff cap, on a very lossy Wi-Fi (30% loss each way at both ends) about 3%
 * of offers needed more than 10 s in bench/lan (p99 13-19 s over three runs).
 */
export const OFFER_DEADLINE_MS = 30_000;

export type ClaimDecision = { granted: true } | { granted: false; reason: ClaimDenial; holder?: string };

/** Decides who gets an order. `claim` must be atomic and idempotent: the holder asking again is granted again. */
export interface ClaimBook {
  open(orderId: string): void;
  claim(orderId: string, terminal: string): ClaimDecision;
  close(orderId: string): void;
  holder(orderId: string): string | undefined;
}

export class MemoryClaimBook implements ClaimBook {
  private readonly orders = new Map<string, { holder?: string; closed: boolean }>();

  open(orderId: string): void {
    if (!this.orders.has(orderId)) this.orders.set(orderId, { closed: false });
  }

  claim(orderId: string, terminal: string): ClaimDecision {
    const o = this.orders.get(orderId);
    if (!o) return { granted: false, reason: 'unknown' };
    if (o.holder === terminal) return { granted: true };
    if (o.holder) return { granted: false, reason: 'taken', holder: o.holder };
    if (o.closed) return { granted: false, reason: 'withdrawn' };
    o.holder = terminal;
    return { granted: true };
  }

  close(orderId: string): void {
    const o = this.orders.get(orderId);
    if (o) o.closed = true;
  }

  holder(orderId: string): string | undefined {
    return this.orders.get(orderId)?.holder;
  }
}

export type Dispatch = { mode: 'unicast'; terminal: string } | { mode: 'broadcast' } | { mode: 'multicast' };

export interface OrderToOffer {
  orderId: string;
  registerId: string;
  amount: LanMoney;
  collect?: boolean;
}

export interface OfferDispatcherOptions {
  endpoint: LanEndpoint;
  directory: UnitDirectory;
  claims?: ClaimBook;
  /** Where broadcast and multicast offers go. */
  broadcast?: LanTarget & { kind: 'broadcast' };
  multicast?: LanTarget & { kind: 'multicast' };
  /** How long a unit may show an offer. */
  offerTtlMs?: number;
  clock?: Clock;
}

interface OfferRecord {
  order: OrderToOffer;
  mode: OfferMode;
  /** The latest deadline it was offered with: the record is dropped FINISHED_OFFER_KEEP_MS after it. */
  expiresAt: number;
  /** Units that were offered this order: they get `withdraw` when another unit wins. */
  audience: Set<string>;
  withdrawnFrom: Set<string>;
}

export class UnitUnavailableError extends TransportError {
  constructor(terminal: string) {
    super(
      'lan.unit_unavailable',
      `terminal ${terminal} has not been seen on the LAN recently; check that it is on and on the shop network, or offer to all units`,
      { subject: terminal },
    );
  }
}

export class OfferDispatcher {
  readonly claims: ClaimBook;
  private readonly clock: Clock;
  private readonly offers = new Map<string, OfferRecord>();
  private unsubscribe?: () => void;

  constructor(private readonly options: OfferDispatcherOptions) {
    this.claims = options.claims ?? new MemoryClaimBook();
    this.clock = options.clock ?? new SystemClock();
  }

  /** Takes claims straight from the endpoint (an app with a LAN controller routes them to decideClaim). */
  start(): void {
    this.unsubscribe = this.options.endpoint.onMessage((m) =>
      m.type === 'claim' ? this.handleClaim(m as LanInbound<'claim'>) : LAN_UNHANDLED,
    );
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /**
   * Offers an order and resolves once the units it went to acknowledged it. For broadcast and multicast
   * the audience is every unit in the directory (an offer to an empty directory completes on the first ack).
   */
  async offer(
    order: OrderToOffer,
    dispatch: Dispatch,
    opts: { deadlineMs?: number } = {},
  ): Promise<DeliveryReport> {
    const body: LanBody<'offer'> = {
      orderId: order.orderId,
      registerId: order.registerId,
      amount: order.amount,
      mode: dispatch.mode,
      expiresAt: this.clock.now() + (this.options.offerTtlMs ?? 10 * 60_000),
      ...(order.collect ? { collect: true } : {}),
    };
    this.claims.open(order.orderId);
    this.forgetOld();
    const record: OfferRecord = this.offers.get(order.orderId) ?? {
      order,
      mode: dispatch.mode,
      expiresAt: body.expiresAt,
      audience: new Set(),
      withdrawnFrom: new Set(),
    };
    record.expiresAt = Math.max(record.expiresAt, body.expiresAt);
    this.offers.set(order.orderId, record);

    if (dispatch.mode === 'unicast') {
      const target = this.options.directory.targetOf(dispatch.terminal);
      if (!target) throw new UnitUnavailableError(dispatch.terminal);
      record.audience.add(dispatch.terminal);
      return this.options.endpoint.send('offer', body, target, {
        deadlineMs: opts.deadlineMs ?? OFFER_DEADLINE_MS,
      });
    }
    const target = dispatch.mode === 'broadcast' ? this.options.broadcast : this.options.multicast;
    if (!target) {
      throw new TransportError(
        'lan.mode_unconfigured',
        `${dispatch.mode} offers are not configured on this plugin`,
        {
          subject: 'dispatch.mode',
        },
      );
    }
    const expect = this.options.directory.list().map((u) => u.id);
    for (const id of expect) record.audience.add(id);
    return this.options.endpoint.send('offer', body, target, {
      deadlineMs: opts.deadlineMs ?? OFFER_DEADLINE_MS,
      expect,
    });
  }

  /** Withdraws an order from every unit it was offered to (the host canceled it, or it expired). */
  async withdraw(orderId: string, reason: 'canceled' | 'expired'): Promise<void> {
    this.claims.close(orderId);
    const record = this.offers.get(orderId);
    if (!record) return;
    await Promise.all([...record.audience].map((id) => this.withdrawFrom(record, id, { orderId, reason })));
  }

  /** How many orders it still keeps offer records of (who they went to), for tests and status. */
  get tracked(): number {
    return this.offers.size;
  }

  /**
   * Drops the records of offers whose deadline passed FINISHED_OFFER_KEEP_MS ago (as the units' inboxes do):
   * every unit has expired them, so there is nothing left to withdraw. Before, a plugin kept one per sale for
   * as long as it ran. Swept at most once a minute, on the next offer.
   */
  private forgetOld(): void {
    const now = this.clock.now();
    if (now - this.sweptAt < 60_000) return;
    this.sweptAt = now;
    for (const [orderId, r] of this.offers)
      if (r.expiresAt + FINISHED_OFFER_KEEP_MS <= now) this.offers.delete(orderId);
  }
  private sweptAt = 0;

  /** Holder of an order, once one unit has claimed it. */
  holder(orderId: string): string | undefined {
    return this.claims.holder(orderId);
  }

  /**
   * Decides a claim (first claim wins, see ClaimBook) and returns the answer for the claimer; when it is
   * granted, every other unit the order went to is told to withdraw it. The caller sends the answer (the
   * LAN controller returns it, and ServerLan delivers it with `re` set).
   */
  decideClaim(m: LanInbound<'claim'>): LanReply<'claim.granted'> | LanReply<'claim.denied'> {
    const { orderId } = m.body;
    const decision = this.claims.claim(orderId, m.sender);
    const record = this.offers.get(orderId);
    if (decision.granted) {
      record?.audience.add(m.sender);
      if (record) {
        for (const id of record.audience) {
          if (id !== m.sender)
            void this.withdrawFrom(record, id, { orderId, reason: 'claimed', claimedBy: m.sender });
        }
      }
      return lanReply('claim.granted', { orderId, terminal: m.sender });
    }
    return lanReply('claim.denied', {
      orderId,
      reason: decision.reason,
      ...(decision.holder ? { terminal: decision.holder } : {}),
    });
  }

  /** decideClaim, and sends the answer itself (when claims come straight from the endpoint). */
  handleClaim(m: LanInbound<'claim'>): void {
    const reply = this.decideClaim(m);
    // The answer is delivered reliably but not awaited here: the claim is acked as soon as it is decided.
    this.options.endpoint
      .send(reply.type, { ...reply.body, re: m.id } as never, { kind: 'unicast', to: m.sender, ...m.from })
      .catch(() => undefined);
  }

  private async withdrawFrom(record: OfferRecord, unitId: string, body: LanBody<'withdraw'>): Promise<void> {
    if (record.withdrawnFrom.has(unitId)) return;
    const target = this.options.directory.targetOf(unitId);
    if (!target) return;
    record.withdrawnFrom.add(unitId);
    try {
      await this.options.endpoint.send('withdraw', body, target);
    } catch {
      // The unit is gone; its copy of the offer expires on its own, and any claim it makes is denied.
      record.withdrawnFrom.delete(unitId);
    }
  }
}

/** How long the inbox keeps an offer after its deadline (a late resend is then not shown as new). */
export const FINISHED_OFFER_KEEP_MS = 60 * 60_000;
/**
 * How many offers the inbox keeps beyond those still in use, however busy the hour: at a rush the hour of
 * FINISHED_OFFER_KEEP_MS was tens of thousands of offers, and the unit's memory grew with every sale.
 */
export const FINISHED_OFFERS_KEPT = 500;

export type HeldOfferStatus =
  'open' | 'claiming' | 'claimed' | 'taken' | 'withdrawn' | 'canceled' | 'expired';

export interface HeldOffer {
  orderId: string;
  registerId: string;
  amount: LanMoney;
  mode: OfferMode;
  expiresAt: number;
  collect: boolean;
  status: HeldOfferStatus;
  /** The unit that has the order, when another one won. */
  takenBy?: string;
  /** The plugin that made the offer: claims and progress go back to it. */
  plugin: LanTarget & { kind: 'unicast' };
  receivedAt: number;
}

export type ClaimOutcome = { granted: true } | { granted: false; reason: ClaimDenial; holder?: string };

export class OfferInbox {
  private readonly offers = new Map<string, HeldOffer>();
  private readonly listeners = new Set<(offer: HeldOffer, event: 'new' | 'updated') => void>();
  private readonly clock: Clock;
  private unsubscribe?: () => void;
  /** Whether a claimed offer is still in use; without the app to say (keepWhile), every claimed one is. */
  private inUse: (offer: HeldOffer) => boolean = (o) => o.status === 'claimed';

  constructor(
    private readonly endpoint: LanEndpoint,
    options: { clock?: Clock } = {},
  ) {
    this.clock = options.clock ?? new SystemClock();
  }

  /** Takes messages straight from the endpoint (an app with a LAN controller routes them to `receive`). */
  start(): void {
    this.unsubscribe = this.endpoint.onMessage((m) => this.receive(m));
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /** Called once per new order id, and again whenever an offer's status changes. */
  onChange(listener: (offer: HeldOffer, event: 'new' | 'updated') => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Tells the inbox which claimed offers are still in use (their payment is unfinished), so that keeping only
   * the newest FINISHED_OFFERS_KEPT never drops one. Open and claiming offers are always kept.
   */
  keepWhile(inUse: (offer: HeldOffer) => boolean): void {
    this.inUse = inUse;
  }

  list(): HeldOffer[] {
    this.expire();
    return [...this.offers.values()].sort((a, b) => a.receivedAt - b.receivedAt);
  }

  get(orderId: string): HeldOffer | undefined {
    this.expire();
    return this.offers.get(orderId);
  }

  /** Claims an order from the plugin that offered it. Losing a race is an outcome, not an error. */
  async claim(orderId: string, timeoutMs = 5000): Promise<ClaimOutcome> {
    const offer = this.get(orderId);
    if (!offer) return { granted: false, reason: 'unknown' };
    if (offer.status === 'claimed') return { granted: true };
    if (offer.status === 'taken') return { granted: false, reason: 'taken', holder: offer.takenBy };
    if (offer.status !== 'open' && offer.status !== 'claiming')
      return { granted: false, reason: 'withdrawn' };
    this.update(offer, { status: 'claiming' });
    let reply: LanInbound;
    try {
      reply = await this.endpoint.request('claim', { orderId }, offer.plugin, timeoutMs);
    } catch (e) {
      if (offer.status === 'claiming') this.update(offer, { status: 'open' });
      throw e;
    }
    return this.applyClaimAnswer(reply) ?? { granted: false, reason: 'unknown' };
  }

  private applyClaimAnswer(m: LanInbound): ClaimOutcome | undefined {
    const offer = this.offers.get((m.body as { orderId: string }).orderId);
    if (!offer || m.sender !== offer.plugin.to) return undefined;
    if (m.type === 'claim.granted') {
      this.update(offer, { status: 'claimed' });
      return { granted: true };
    }
    const body = m.body as LanBody<'claim.denied'>;
    if (body.reason === 'taken') this.update(offer, { status: 'taken', takenBy: body.terminal });
    else this.update(offer, { status: 'withdrawn' });
    return { granted: false, reason: body.reason, holder: body.terminal };
  }

  /** An offer, withdraw, cancel, collect or claim answer from a plugin; LAN_UNHANDLED for anything else. */
  receive(m: LanInbound): void | typeof LAN_UNHANDLED {
    switch (m.type) {
      case 'offer': {
        const b = m.body as LanBody<'offer'>;
        const existing = this.offers.get(b.orderId);
        if (existing) {
          // A resend (or the plugin re-offering after a restart): show it once, keep the later expiry.
          if (b.expiresAt > existing.expiresAt) existing.expiresAt = b.expiresAt;
          return;
        }
        if (b.expiresAt <= this.clock.now()) return;
        const offer: HeldOffer = {
          orderId: b.orderId,
          registerId: b.registerId,
          amount: b.amount,
          mode: b.mode,
          expiresAt: b.expiresAt,
          collect: b.collect === true,
          status: 'open',
          plugin: { kind: 'unicast', to: m.sender, ...m.from },
          receivedAt: this.clock.now(),
        };
        this.offers.set(b.orderId, offer);
        for (const l of this.listeners) l(offer, 'new');
        return;
      }
      case 'withdraw': {
        const b = m.body as LanBody<'withdraw'>;
        const offer = this.fromItsPlugin(b.orderId, m.sender);
        // "Claimed by someone" never concerns the holder; a cancel or expiry concerns everyone.
        if (!offer || (offer.status === 'claimed' && b.reason === 'claimed')) return;
        if (b.reason === 'claimed') this.update(offer, { status: 'taken', takenBy: b.claimedBy });
        else this.update(offer, { status: b.reason === 'canceled' ? 'canceled' : 'expired' });
        return;
      }
      case 'cancel': {
        const offer = this.fromItsPlugin((m.body as LanBody<'cancel'>).orderId, m.sender);
        if (offer) this.update(offer, { status: 'canceled' });
        return;
      }
      case 'collect': {
        const offer = this.fromItsPlugin((m.body as LanBody<'collect'>).orderId, m.sender);
        if (offer) this.update(offer, { collect: true });
        return;
      }
      case 'claim.granted':
      case 'claim.denied':
        this.applyClaimAnswer(m);
        return;
      default:
        return LAN_UNHANDLED;
    }
  }

  /**
   * Puts back an order this unit held before it restarted (the terminal's journal of held offers), unless
   * the inbox has it already. Told as new, so the page shows it.
   */
  restore(offer: HeldOffer): void {
    if (this.offers.has(offer.orderId)) return;
    const held = { ...offer };
    this.offers.set(held.orderId, held);
    for (const l of this.listeners) l(held, 'new');
  }

  /** Only the plugin that made an offer may change it. */
  private fromItsPlugin(orderId: string, sender: string): HeldOffer | undefined {
    const offer = this.offers.get(orderId);
    return offer && offer.plugin.to === sender ? offer : undefined;
  }

  private update(offer: HeldOffer, change: Partial<HeldOffer>): void {
    const changed = (Object.keys(change) as (keyof HeldOffer)[]).some((k) => offer[k] !== change[k]);
    if (!changed) return;
    Object.assign(offer, change);
    for (const l of this.listeners) l(offer, 'updated');
  }

  private expire(): void {
    const now = this.clock.now();
    for (const o of this.offers.values()) {
      if (o.expiresAt <= now && (o.status === 'open' || o.status === 'claiming'))
        this.update(o, { status: 'expired' });
      // Keep finished offers for an hour so a late resend is not shown as new.
      if (o.expiresAt + FINISHED_OFFER_KEEP_MS <= now) this.offers.delete(o.orderId);
    }
    // And only the newest few hundred of them: checked once the inbox is a tenth over, so the (journal)
    // lookups of inUse run once per fifty offers, not on every read.
    if (this.offers.size > FINISHED_OFFERS_KEPT * 1.1) {
      const byAge = [...this.offers.values()].sort((a, b) => a.receivedAt - b.receivedAt);
      let over = byAge.length - FINISHED_OFFERS_KEPT;
      for (const o of byAge) {
        if (over <= 0) break;
        if (o.status === 'open' || o.status === 'claiming' || this.inUse(o)) continue;
        this.offers.delete(o.orderId);
        over--;
      }
    }
  }
}
