/**
 * A LAN endpoint: one device's sealed, acknowledged, exactly-once messaging over a LanTransport.
 *
 * Sending: every message that needs an ack (all but ack, beacon, pong) is retransmitted on the retry
 * schedule (retry-schedule.ts: fast for the first 2 s, then backing off) until the expected devices
 * acknowledge it or its deadline passes. A retransmission carries the same message id but a new sequence
 * number and timestamp, so it passes the receiver's replay window and is recognised as the same message by
 * the receiver's de-duplication. One clock timer serves every pending message.
 *
 * Receiving: open (drop bad-seal / unknown-key / oversize / malformed) -> freshness (skew, replay window)
 * -> recipient -> body schema -> de-duplicate by message id -> handlers -> ack. The ack is sent only after
 * every handler has finished, so a message whose handler failed (or whose process died mid-way) is
 * retransmitted and processed again rather than lost; de-duplication makes that exactly once. Acks owed to
 * one sender at the end of an event-loop turn travel together (up to 16 ids in one ack).
 *
 * Sealing and opening go through envelope-codec.ts, which writes and accepts exactly what the reference
 * codec in src/protocol/lan-envelope.ts does, with less garbage per datagram.
 *
 * Garbage per datagram is kept down on purpose (issue 14: every scavenge of the young generation pauses
 * the event loop): an ack builds no header or message object and its body is written into and read from
 * buffers the endpoint keeps; no closure is made per datagram; a message's destination is worked out
 * once, not per transmission.
 */
import { randomFillSync } from 'node:crypto';
import { Clock, SystemClock, TimerHandle } from '../protocol/clock';
import { ProtocolError, TransportError } from '../protocol/errors';
import { LAN_BROADCAST_RECIPIENT, LanHeader } from '../protocol/lan-envelope';
import {
  decodeLanBody,
  encodeLanBody,
  LanBody,
  LanMessageType,
  lanTypeNeedsAck,
  UnitStatus,
} from '../protocol/lan-messages';
import { AckBodyWriter, readAckIds } from './ack-body';
import { OfferBodyWriter, readOfferBody } from './offer-body';
import { MessageIdCache } from './dedup';
import {
  DatagramOpener,
  headerOf,
  LAN_BOOT_ID_AT,
  LAN_MESSAGE_ID_AT,
  LanSealer,
  OpenedFields,
} from './envelope-codec';
import { LanKeyring } from './lan-keyring';
import { DropReason, dropReasonOf, emptyLanStats, LanStats } from './lan-stats';
import { LanTransport, PeerAddress } from './lan-transport';
import { DEFAULT_REPLAY_GUARD, ReplayGuard, ReplayGuardOptions } from './replay-guard';
import { checkRetryPolicy, DEFAULT_RETRY, nextRetryDelayMs, RetryPolicy } from './retry-schedule';

/**
 * Cryptographically random bytes from a pool filled 4 KiB at a time: message ids and boot ids are drawn
 * for every message, and one randomFillSync call per 256 ids costs far less than one call per id. Each
 * draw is a view of the pool, not a copy, so a pool is never refilled: when it runs out, a new one is
 * allocated and filled, and the old one lives as long as some id still points into it. No two draws ever
 * share a byte.
 */
const POOL_SIZE = 4096;
/** `DeliveryReport.missing` when every device acknowledged: one frozen list, not a new one per delivery. */
const NOBODY: readonly string[] = Object.freeze([]);
let pool = Buffer.alloc(0);
let poolOffset = 0;
export function pooledRandomBytes(n: number): Buffer {
  if (n > POOL_SIZE) return randomFillSync(Buffer.alloc(n));
  const at = takePooled(n);
  return pool.subarray(at, at + n);
}

/** Draws `n` (at most POOL_SIZE) bytes: they are `pool` from the offset returned, until the next draw. */
function takePooled(n: number): number {
  if (poolOffset + n > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_SIZE));
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += n;
  return at;
}

export type LanTarget =
  | { kind: 'unicast'; to: string; address: string; port: number }
  | { kind: 'broadcast'; address: string; port: number }
  | { kind: 'multicast'; group: string; port: number };

export function describeTarget(t: LanTarget): string {
  switch (t.kind) {
    case 'unicast':
      return `${t.to} at ${t.address}:${t.port}`;
    case 'broadcast':
      return `broadcast ${t.address}:${t.port}`;
    case 'multicast':
      return `multicast ${t.group}:${t.port}`;
  }
}

function addressOf(t: LanTarget): PeerAddress {
  return t.kind === 'multicast' ? { address: t.group, port: t.port } : { address: t.address, port: t.port };
}

function recipientOf(t: LanTarget): string {
  return t.kind === 'unicast' ? t.to : LAN_BROADCAST_RECIPIENT;
}

export const DEFAULT_DEADLINE_MS = 10_000;

export interface SendOptions {
  /** Give up after this many ms. Default 10 s. */
  deadlineMs?: number;
  /**
   * For broadcast/multicast: the device ids that must acknowledge (e.g. the units seen on the LAN). Without
   * it the first ack completes the delivery. For unicast the recipient is always the one expected.
   */
  expect?: string[];
}

export interface DeliveryReport {
  id: string;
  type: LanMessageType;
  ackedBy: string[];
  /** Who did not acknowledge; empty (a shared, frozen list) when everyone did. */
  missing: readonly string[];
  attempts: number;
  elapsedMs: number;
}

/** A message that was not acknowledged in time; `report` says who did and did not acknowledge. */
export class DeliveryError extends TransportError {
  constructor(
    readonly report: DeliveryReport,
    target: LanTarget,
  ) {
    super(
      'lan.not_acknowledged',
      `${report.type} ${report.id} to ${describeTarget(target)} was not acknowledged within ${report.elapsedMs} ms` +
        (report.missing.length ? ` by ${report.missing.join(', ')}` : '') +
        ` after ${report.attempts} attempts; check that the unit is on and on the same network`,
      { subject: target.kind === 'unicast' ? target.to : describeTarget(target) },
    );
  }
}

export interface LanInbound<T extends LanMessageType = LanMessageType> {
  type: T;
  body: LanBody<T>;
  /** Message id, hex. */
  id: string;
  sender: string;
  recipient: string;
  /** Where the datagram came from: reply here. */
  from: PeerAddress;
  header: LanHeader;
}

/**
 * What a handler returns when the message is not for it: when every handler says so (or there is none),
 * the endpoint answers the sender `unhandled` instead of acknowledging, as Nest's own transports answer a
 * pattern nobody handles (NO_MESSAGE_HANDLER), and counts it.
 */
export const LAN_UNHANDLED = Symbol('lan-unhandled');

export type LanHandler = (message: LanInbound) => unknown;

/**
 * A received message as handlers see it. Its header is built when asked for (discovery reads a beacon's
 * time; nothing else does): building it for every datagram was two Buffer views and an object each.
 */
class ReceivedMessage implements LanInbound {
  // The header's fields, kept as numbers until the header is asked for.
  readonly version: number;
  readonly flags: number;
  readonly keyId: number;
  readonly keyVersion: number;
  readonly seq: number;
  readonly timestamp: number;
  private builtHeader: LanHeader | undefined;

  constructor(
    readonly type: LanMessageType,
    readonly body: LanBody,
    readonly id: string,
    readonly sender: string,
    readonly recipient: string,
    readonly from: PeerAddress,
    private readonly datagram: Buffer,
    // The opener's record is reused for the next datagram: what the header needs is copied now.
    f: OpenedFields,
  ) {
    this.version = f.version;
    this.flags = f.flags;
    this.keyId = f.keyId;
    this.keyVersion = f.keyVersion;
    this.seq = f.seq;
    this.timestamp = f.timestamp;
  }

  get header(): LanHeader {
    return (this.builtHeader ??= headerOf(this.datagram, this));
  }
}

type DispatchOutcome = 'handled' | 'failed' | 'unhandled';

/** The receiver has no handler for this type of message: it answered `unhandled` instead of an ack. */
export class LanNoHandlerError extends TransportError {
  constructor(
    readonly type: LanMessageType,
    readonly device: string,
  ) {
    super(
      'lan.no_handler',
      `${device} does not handle ${type} messages (it answered "unhandled"): is it running another version of payconnect? update both to the same version`,
      { subject: device },
    );
  }
}

export interface LanLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
  debug?(message: string, fields?: Record<string, unknown>): void;
}

export interface LanEndpointOptions {
  deviceId: string;
  keyring: LanKeyring;
  transport: LanTransport;
  clock?: Clock;
  randomBytes?: (n: number) => Buffer;
  retry?: RetryPolicy;
  replay?: ReplayGuardOptions;
  /** How long processed message ids are remembered; must exceed any deadline plus the skew limit. */
  dedupTtlMs?: number;
  /** Reported in answers to ping. */
  status?: () => UnitStatus;
  /**
   * Runs endpoint work after the I/O already waiting has been read: batched acks, due retransmissions.
   * Default: setImmediate on the system clock; a microtask under any other clock (a test's FakeClock), so
   * tests stay deterministic and need no real time.
   */
  defer?: (fn: () => void) => void;
  log?: LanLogger;
}

interface Pending {
  id: string;
  /** The message id is the 16 bytes of `idBytes` from `idAt`: a view of its own, or the random pool itself. */
  idBytes: Buffer;
  idAt: number;
  type: LanMessageType;
  body: Buffer;
  target: LanTarget;
  /** Where every transmission goes (from `target`, worked out once). */
  address: PeerAddress;
  recipient: string;
  /** Unicast: the one device that must acknowledge. */
  only?: string;
  /** A group message: the devices that must acknowledge (none given: the first ack completes it). */
  expect?: Set<string>;
  /** Who acknowledged (a handful of units at most: an array, made when the first ack arrives). */
  ackedBy?: string[];
  /** Expected devices that answered `unhandled`: they will never acknowledge. */
  refusedBy?: string[];
  attempts: number;
  /** Retransmissions made in the slow phase of the retry schedule. */
  slowRetries: number;
  started: number;
  deadline: number;
  /** When the next retransmission (or, at the deadline, the verdict) is due. */
  dueAt: number;
  resolve(report: DeliveryReport): void;
  reject(err: Error): void;
}

/** Acks waiting to go out together: one datagram per sender carries up to 16 ids. */
interface AckBatch {
  target: LanTarget & { kind: 'unicast' };
  address: PeerAddress;
  /**
   * The ids owed, `ids[0]` to `ids[count - 1]`. Counted, not emptied with `length = 0` after each ack:
   * that frees the list's storage, and the next id would allocate it again.
   */
  ids: string[];
  count: number;
}

/** The most ids one ack may carry (docs/protocol.md). */
const MAX_ACK_IDS = 16;

export class LanEndpoint {
  readonly deviceId: string;
  readonly stats: LanStats = emptyLanStats();
  private readonly clock: Clock;
  private readonly random: (n: number) => Buffer;
  private readonly retry: RetryPolicy;
  private readonly replay: ReplayGuard;
  private readonly dedup: MessageIdCache;
  private readonly pending = new Map<string, Pending>();
  private readonly replyWaiters = new Map<string, (m: LanInbound) => void>();
  private readonly handlers = new Set<LanHandler>();
  /** The handlers as a list, replaced (never changed) when one is added or removed: dispatch reads it as is. */
  private handlerList: LanHandler[] = [];
  private readonly lastDropLog = new Map<DropReason, number>();
  private readonly lastUnhandledLog = new Map<LanMessageType, number>();
  private bootId: Buffer;
  private seq = 0;
  private closed = false;
  private sealer?: LanSealer;
  private readonly opener = new DatagramOpener();
  private readonly ackWriter = new AckBodyWriter();
  private readonly offerWriter = new OfferBodyWriter();
  /** The ids of the ack being read (reused). */
  private readonly ackIds: string[] = [];
  private readonly flushAcksLater = () => this.flushAcks();
  /** One clock timer for every pending message: armed for the earliest one due. */
  private retryTimer?: TimerHandle;
  private retryTimerAt = Infinity;
  private readonly ackBatches = new Map<string, AckBatch>();
  private ackFlushQueued = false;
  /**
   * Runs work after the I/O already waiting has been read (LanEndpointOptions.defer): acks finished in the
   * same turn are batched, and a retransmission that falls due is not sent if its ack was already waiting.
   */
  private readonly defer: (fn: () => void) => void;

  constructor(private readonly options: LanEndpointOptions) {
    this.deviceId = options.deviceId;
    this.clock = options.clock ?? new SystemClock();
    this.random = options.randomBytes ?? pooledRandomBytes;
    this.retry = checkRetryPolicy(options.retry ?? DEFAULT_RETRY);
    this.replay = new ReplayGuard(options.replay ?? DEFAULT_REPLAY_GUARD);
    this.dedup = new MessageIdCache(options.dedupTtlMs);
    this.bootId = this.random(8);
    this.defer =
      options.defer ??
      (this.clock instanceof SystemClock ? (fn) => setImmediate(fn) : (fn) => queueMicrotask(fn));
    options.transport.onDatagram((d, from) => this.receive(d, from));
  }

  get port(): number {
    return this.options.transport.port;
  }

  get keyring(): LanKeyring {
    return this.options.keyring;
  }

  /** Registers a handler for every accepted message; returns a function that removes it. */
  onMessage(handler: LanHandler): () => void {
    this.handlers.add(handler);
    this.handlerList = [...this.handlers];
    return () => {
      const had = this.handlers.delete(handler);
      this.handlerList = [...this.handlers];
      return had;
    };
  }

  /** Sends a message that must be acknowledged; resolves when it is, rejects with DeliveryError at the deadline. */
  send<T extends LanMessageType>(
    type: T,
    body: LanBody<T>,
    target: LanTarget,
    opts: SendOptions = {},
  ): Promise<DeliveryReport> {
    if (!lanTypeNeedsAck(type))
      throw new ProtocolError('lan.no_ack_type', `${type} is never acknowledged; use post()`);
    if (this.random !== pooledRandomBytes)
      return this.sendWithId(type, body, target, opts, this.random(16), 0);
    // The id straight from the random pool: the pending record keeps the pool buffer and the offset, which
    // stay valid (a drained pool is replaced, never refilled in place), instead of a view per message.
    const at = takePooled(16);
    return this.sendWithId(type, body, target, opts, pool, at);
  }

  /** Sends one datagram without waiting for an ack (beacon, pong, ack; or a best-effort hint). */
  async post<T extends LanMessageType>(type: T, body: LanBody<T>, target: LanTarget): Promise<string> {
    const id = this.random(16);
    this.transmit(type, encodeLanBody(type, body), id, 0, addressOf(target), recipientOf(target));
    return id.toString('hex');
  }

  /**
   * Sends a message and waits for the answer that names it in `re` (claim -> claim.granted/denied,
   * ping -> pong). The request itself is delivered reliably; the answer is awaited until `timeoutMs`.
   */
  request<T extends LanMessageType>(
    type: T,
    body: LanBody<T>,
    target: LanTarget,
    timeoutMs = DEFAULT_DEADLINE_MS,
  ): Promise<LanInbound> {
    const idBytes = this.random(16);
    const id = idBytes.toString('hex');
    return new Promise<LanInbound>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.replyWaiters.delete(id);
        reject(
          new TransportError(
            'lan.no_reply',
            `no answer to ${type} from ${describeTarget(target)} within ${timeoutMs} ms`,
            {
              subject: target.kind === 'unicast' ? target.to : undefined,
            },
          ),
        );
      }, timeoutMs);
      this.replyWaiters.set(id, (m) => {
        this.clock.clearTimeout(timer);
        this.replyWaiters.delete(id);
        resolve(m);
      });
      this.sendWithId(type, body, target, { deadlineMs: timeoutMs }, idBytes, 0).catch((err) => {
        if (!this.replyWaiters.has(id)) return;
        this.clock.clearTimeout(timer);
        this.replyWaiters.delete(id);
        reject(err);
      });
    });
  }

  /** Asks a device whether it is there; resolves with the round trip in ms and its reported status. */
  async ping(
    target: LanTarget & { kind: 'unicast' },
    timeoutMs = 3000,
  ): Promise<{ rttMs: number; status?: UnitStatus }> {
    const started = this.clock.now();
    const reply = await this.request('ping', {}, target, timeoutMs);
    const body = reply.body as LanBody<'pong'>;
    return { rttMs: this.clock.now() - started, status: body.status };
  }

  pendingCount(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.flushAcks();
    for (const p of this.pending.values()) {
      p.reject(new TransportError('lan.closed', `${p.type} ${p.id} abandoned: the endpoint closed`));
    }
    this.pending.clear();
    await this.options.transport.close();
  }

  // --- sending -------------------------------------------------------------------------------------

  private sendWithId<T extends LanMessageType>(
    type: T,
    body: LanBody<T>,
    target: LanTarget,
    opts: SendOptions,
    idBytes: Buffer,
    idAt: number,
  ): Promise<DeliveryReport> {
    if (this.closed) return Promise.reject(new TransportError('lan.closed', 'the LAN endpoint is closed'));
    // Offers, the commonest acknowledged message, are written without a JSON string (offer-body.ts).
    const encoded =
      type === 'offer' ? this.offerWriter.encode(body as LanBody<'offer'>) : encodeLanBody(type, body);
    const id = idBytes.toString('hex', idAt, idAt + 16);
    const now = this.clock.now();
    const expect =
      target.kind !== 'unicast' && opts.expect && opts.expect.length > 0 ? new Set(opts.expect) : undefined;
    return new Promise<DeliveryReport>((resolve, reject) => {
      const p: Pending = {
        id,
        idBytes,
        idAt,
        type,
        body: encoded,
        target,
        address: addressOf(target),
        recipient: recipientOf(target),
        only: target.kind === 'unicast' ? target.to : undefined,
        expect,
        attempts: 0,
        slowRetries: 0,
        started: now,
        deadline: now + (opts.deadlineMs ?? DEFAULT_DEADLINE_MS),
        dueAt: now,
        resolve,
        reject,
      };
      this.pending.set(id, p);
      this.stats.messagesSent++;
      this.attempt(p);
    });
  }

  /** Transmits `p` (again) and sets when it is next due; at its deadline, fails it instead. */
  private attempt(p: Pending): void {
    if (!this.pending.has(p.id)) return;
    const now = this.clock.now();
    if (now >= p.deadline) {
      this.finish(p, false);
      return;
    }
    try {
      this.transmit(p.type, p.body, p.idBytes, p.idAt, p.address, p.recipient);
    } catch (err) {
      // Could not even be sealed (a datagram over the size limit): retrying cannot help.
      this.finish(p, false, err as Error);
      return;
    }
    if (p.attempts > 0) this.stats.retransmissions++;
    p.attempts++;
    // Jitter only spreads retries out; it needs no cryptographic randomness.
    const delay = nextRetryDelayMs(this.retry, p, now - p.started, Math.random());
    p.dueAt = Math.min(now + delay, p.deadline);
    this.armRetryTimer(p.dueAt);
  }

  private armRetryTimer(at: number): void {
    if (this.closed || at >= this.retryTimerAt) return;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimerAt = at;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.retryTimerAt = Infinity;
      // Let acks already waiting in the socket be read first: a message whose ack is there is not resent.
      this.defer(() => this.retryDue());
    }, at - this.clock.now());
  }

  /** Retransmits (or fails) every message that is due, and arms the timer for the next one. */
  private retryDue(): void {
    if (this.closed) return;
    const now = this.clock.now();
    let next = Infinity;
    for (const p of this.pending.values()) {
      if (p.dueAt <= now) this.attempt(p);
      else if (p.dueAt < next) next = p.dueAt;
    }
    if (next < Infinity) this.armRetryTimer(next);
  }

  private finish(p: Pending, complete: boolean, error?: Error): void {
    this.pending.delete(p.id);
    const report: DeliveryReport = {
      id: p.id,
      type: p.type,
      ackedBy: p.ackedBy ?? [],
      missing: p.only
        ? p.ackedBy
          ? NOBODY
          : [p.only]
        : p.expect
          ? [...p.expect].filter((d) => !p.ackedBy?.includes(d))
          : p.ackedBy
            ? NOBODY
            : ['(anyone)'],
      attempts: p.attempts,
      elapsedMs: this.clock.now() - p.started,
    };
    if (complete) {
      this.stats.acked++;
      p.resolve(report);
    } else if (error) {
      p.reject(error);
    } else {
      this.stats.expired++;
      p.reject(new DeliveryError(report, p.target));
    }
  }

  /**
   * Seals and sends one datagram. A failure to send (network down, no route) is just another lost
   * datagram: the retry schedule covers it, so it is logged at debug level and not thrown.
   */
  private transmit(
    type: LanMessageType,
    body: Buffer,
    idBytes: Buffer,
    idAt: number,
    to: PeerAddress,
    recipient: string,
  ): void {
    if (this.seq > 0xffffffff - 1) {
      // Never reuse a nonce: a new boot id restarts the sequence.
      this.bootId = this.random(8);
      this.seq = 0;
    }
    const seq = this.seq++;
    this.sealer ??= new LanSealer(this.deviceId);
    const datagram = this.sealer.sealWith(
      type,
      this.bootId,
      seq,
      this.clock.now(),
      idBytes,
      idAt,
      recipient,
      body,
      this.options.keyring.current,
    );
    this.stats.datagramsOut++;
    const transport = this.options.transport;
    try {
      if (transport.sendNow) transport.sendNow(datagram, to);
      else transport.send(datagram, to).catch((err) => this.sendFailed(type, err));
    } catch (err) {
      this.sendFailed(type, err);
    }
  }

  private sendFailed(type: LanMessageType, err: unknown): void {
    this.options.log?.debug?.('LAN send failed', { type, error: (err as Error).message });
  }

  // --- receiving -----------------------------------------------------------------------------------

  private drop(reason: DropReason, detail: string, from: PeerAddress): void {
    this.stats.dropped[reason]++;
    if (reason === 'not-for-me') return;
    // Log the first drop of each reason, then at most one line per reason every 10 s: a flood of forged
    // datagrams must not flood the log as well. The counters carry the totals.
    const now = this.clock.now();
    const last = this.lastDropLog.get(reason) ?? -Infinity;
    if (now - last >= 10_000) {
      this.lastDropLog.set(reason, now);
      this.options.log?.warn(
        `dropped a LAN datagram (${reason}) from ${from.address}:${from.port}: ${detail}`,
        {
          reason,
          total: this.stats.dropped[reason],
        },
      );
    }
  }

  private receive(datagram: Buffer, from: PeerAddress): void {
    if (this.closed) return;
    this.stats.datagramsIn++;
    let f: OpenedFields;
    try {
      // A record the opener reuses: everything needed from it is read before any handler runs.
      f = this.opener.open(datagram, this.options.keyring.lookup);
    } catch (e) {
      const code = e instanceof ProtocolError ? e.code : 'lan.malformed';
      this.drop(dropReasonOf(code), (e as Error).message, from);
      return;
    }
    const { type, sender, recipient } = f;
    const verdict = this.replay.checkAt(
      sender,
      datagram,
      LAN_BOOT_ID_AT,
      f.seq,
      f.timestamp,
      this.clock.now(),
    );
    if (verdict !== 'ok') {
      this.drop(verdict, `from "${sender}" (seq ${f.seq}, ${new Date(f.timestamp).toISOString()})`, from);
      return;
    }
    // A datagram in our own name: our multicast looped back, or someone reflecting what we sent. Never
    // news to us either way; counted with replays so a reflection attack shows up in the counters.
    if (sender === this.deviceId) {
      this.drop('replay', 'a copy of our own datagram', from);
      return;
    }
    if (recipient !== LAN_BROADCAST_RECIPIENT && recipient !== this.deviceId) {
      this.drop('not-for-me', recipient, from);
      return;
    }
    if (type === 'ack') {
      // The commonest datagram: read by position (ack-body.ts) into a reused list, and no header or
      // message object is built for it.
      try {
        readAckIds(f.plaintext, this.ackIds);
      } catch (e) {
        this.drop('malformed', (e as Error).message, from);
        return;
      }
      this.onAck(sender, this.ackIds);
      return;
    }
    let body: LanBody;
    try {
      body = type === 'offer' ? readOfferBody(f.plaintext) : decodeLanBody(type, f.plaintext);
    } catch (e) {
      this.drop('malformed', (e as Error).message, from);
      return;
    }
    const id = datagram.toString('hex', LAN_MESSAGE_ID_AT, LAN_MESSAGE_ID_AT + 16);
    const message: LanInbound = new ReceivedMessage(type, body, id, sender, recipient, from, datagram, f);

    if (type === 'unhandled') {
      this.onUnhandled(message as LanInbound<'unhandled'>);
      return;
    }
    if (!lanTypeNeedsAck(type)) {
      void this.dispatch(message);
      return;
    }
    const now = this.clock.now();
    const state = this.dedup.state(id, now);
    if (state !== 'new') {
      this.stats.duplicates++;
      // Already processed: the sender missed our ack, so send it again. Still processing: the ack follows.
      if (state === 'done') this.sendAck(message);
      return;
    }
    this.dedup.begin(id, now);
    const outcome = this.dispatch(message);
    if (typeof outcome === 'string') this.settle(message, outcome);
    else
      outcome.then(
        (o) => this.settle(message, o),
        () => this.dedup.abandon(id),
      );
  }

  /** After the handlers: acknowledged when handled; otherwise forgotten, so a retry is processed afresh. */
  private settle(message: LanInbound, outcome: DispatchOutcome): void {
    if (outcome === 'handled') {
      this.dedup.finish(message.id, this.clock.now());
      this.sendAck(message);
    } else {
      // Failed: not acknowledged, so the sender retries. Unhandled: answered, and forgotten, so a
      // retransmission (the answer was lost) is answered again.
      this.dedup.abandon(message.id);
      if (outcome === 'unhandled') this.answerUnhandled(message);
    }
  }

  /**
   * Runs the built-in answers and every handler: `failed` when a handler threw (the message is not acked),
   * `unhandled` when nothing here handles its type (neither a built-in answer, nor a reply someone waits
   * for, nor a handler that took it). When no handler returns a promise the outcome is returned at once,
   * without a trip through the microtask queue.
   */
  private dispatch(message: LanInbound): DispatchOutcome | Promise<DispatchOutcome> {
    let handled = false;
    if (message.type === 'ping') {
      handled = true;
      this.post(
        'pong',
        { re: message.id, ...(this.options.status ? { status: this.options.status() } : {}) },
        { kind: 'unicast', to: message.sender, ...message.from },
      ).catch(() => undefined);
    }
    const re = (message.body as { re?: unknown }).re;
    const waiter = typeof re === 'string' ? this.replyWaiters.get(re) : undefined;
    if (waiter) {
      handled = true;
      waiter(message);
    }
    let ok = true;
    // Handlers run one after the other, each after the previous one's promise settled. The list as it is
    // now: a handler may remove itself (or add another) while it runs, which replaces the list.
    const handlers = this.handlerList;
    for (let i = 0; i < handlers.length; i++) {
      let r: unknown;
      try {
        r = handlers[i](message);
      } catch (e) {
        this.handlerFailed(message, e);
        handled = true;
        ok = false;
        continue;
      }
      if (r && typeof (r as PromiseLike<unknown>).then === 'function')
        // From here on asynchronous: wait for this one, then run the rest in order.
        return this.dispatchRest(message, handlers, i, r as PromiseLike<unknown>, handled, ok);
      if (r !== LAN_UNHANDLED) handled = true;
    }
    return this.verdict(handled, ok);
  }

  private async dispatchRest(
    message: LanInbound,
    handlers: LanHandler[],
    i: number,
    pending: PromiseLike<unknown>,
    handled: boolean,
    ok: boolean,
  ): Promise<DispatchOutcome> {
    for (let j = i; j < handlers.length; j++) {
      try {
        if ((await (j === i ? pending : handlers[j](message))) !== LAN_UNHANDLED) handled = true;
      } catch (e) {
        this.handlerFailed(message, e);
        handled = true;
        ok = false;
      }
    }
    return this.verdict(handled, ok);
  }

  private handlerFailed(message: LanInbound, e: unknown): void {
    this.stats.handlerErrors++;
    this.options.log?.warn(
      `handling ${message.type} ${message.id} from ${message.sender} failed: ${(e as Error).message}`,
      {
        type: message.type,
      },
    );
  }

  private verdict(handled: boolean, ok: boolean): DispatchOutcome {
    if (!ok) return 'failed';
    if (!handled) {
      this.stats.unhandled++;
      return 'unhandled';
    }
    this.stats.processed++;
    return 'handled';
  }

  private answerUnhandled(message: LanInbound): void {
    if (!lanTypeNeedsAck(message.type)) return; // a beacon nobody here wants: nothing to answer
    const now = this.clock.now();
    const last = this.lastUnhandledLog.get(message.type) ?? -Infinity;
    if (now - last >= 10_000) {
      this.lastUnhandledLog.set(message.type, now);
      this.options.log?.warn(
        `no handler for ${message.type} messages here; answered ${message.sender} "unhandled"`,
        { type: message.type, total: this.stats.unhandled },
      );
    }
    this.post(
      'unhandled',
      { re: message.id, type: message.type },
      { kind: 'unicast', to: message.sender, ...message.from },
    ).catch(() => undefined);
  }

  /** The receiver will never acknowledge this message: fail it now instead of retrying to its deadline. */
  private onUnhandled(message: LanInbound<'unhandled'>): void {
    const p = this.pending.get(message.body.re);
    if (!p) return;
    if (p.target.kind === 'unicast') {
      if (p.target.to === message.sender)
        this.finish(p, false, new LanNoHandlerError(p.type, message.sender));
      return;
    }
    // A group message: only a device we wait for counts. It is done when every expected device answered
    // one way or the other: delivered if any of them acknowledged.
    if (!p.expect?.has(message.sender)) return;
    if (!p.refusedBy?.includes(message.sender)) (p.refusedBy ??= []).push(message.sender);
    if (this.everyExpectedAnswered(p)) {
      if (p.ackedBy) this.finish(p, true);
      else this.finish(p, false, new LanNoHandlerError(p.type, p.refusedBy!.join(', ')));
    }
  }

  /**
   * Acknowledges `message`. Acks to one sender at one address that fall due in the same turn of the event
   * loop (a window of offers arriving together) travel in one datagram of up to 16 ids, as the protocol
   * allows: one seal and one datagram instead of sixteen.
   */
  private sendAck(message: LanInbound): void {
    // One batch per sender, kept for its next ack (the handful of devices of a shop; bounded all the same).
    // A sender heard from another address (it moved, or restarted on another port) gets the acks it is
    // owed at the old one first.
    let batch = this.ackBatches.get(message.sender);
    const target = batch?.target;
    if (!batch || target!.address !== message.from.address || target!.port !== message.from.port) {
      if (batch && batch.count > 0) this.postAck(batch);
      if (!batch && this.ackBatches.size >= 256) this.dropIdleAckBatches();
      batch = {
        target: {
          kind: 'unicast',
          to: message.sender,
          address: message.from.address,
          port: message.from.port,
        },
        address: { address: message.from.address, port: message.from.port },
        ids: [],
        count: 0,
      };
      this.ackBatches.set(message.sender, batch);
    }
    batch.ids[batch.count++] = message.id;
    if (batch.count >= MAX_ACK_IDS) this.postAck(batch);
    if (!this.ackFlushQueued) {
      this.ackFlushQueued = true;
      this.defer(this.flushAcksLater);
    }
  }

  private flushAcks(): void {
    this.ackFlushQueued = false;
    for (const batch of this.ackBatches.values()) if (batch.count > 0) this.postAck(batch);
  }

  private dropIdleAckBatches(): void {
    for (const [key, batch] of this.ackBatches) if (batch.count === 0) this.ackBatches.delete(key);
  }

  private postAck(batch: AckBatch): void {
    // Written into the writer's own buffer, sealed at once (before anything can write another).
    const body = this.ackWriter.write(batch.ids, batch.count);
    batch.count = 0;
    try {
      // The ack's own message id, straight from the random pool into the datagram: no view of it is kept.
      if (this.random === pooledRandomBytes) {
        const at = takePooled(16);
        this.transmit('ack', body, pool, at, batch.address, batch.target.to);
      } else this.transmit('ack', body, this.random(16), 0, batch.address, batch.target.to);
    } catch (err) {
      this.options.log?.debug?.('LAN ack not sent', { error: (err as Error).message });
    }
  }

  private onAck(sender: string, ids: string[]): void {
    for (const id of ids) {
      const p = this.pending.get(id);
      if (!p) continue;
      if (p.only !== undefined) {
        // Unicast: only the recipient's ack counts, and it completes the delivery.
        if (sender !== p.only) continue;
        p.ackedBy = [sender];
        this.finish(p, true);
        continue;
      }
      if (p.expect && !p.expect.has(sender)) continue;
      if (!p.ackedBy?.includes(sender)) (p.ackedBy ??= []).push(sender);
      if (!p.expect || this.everyExpectedAnswered(p)) this.finish(p, true);
    }
  }

  /** A group message: has every expected device acknowledged it or answered `unhandled`? */
  private everyExpectedAnswered(p: Pending): boolean {
    for (const d of p.expect ?? []) if (!p.ackedBy?.includes(d) && !p.refusedBy?.includes(d)) return false;
    return true;
  }
}
