/**
 * Signed payment events: every payment state change is written, in the same transaction as the change,
 * as an event with a store-wide sequence number and the server's Ed25519 signature over the payment. After
 * commit it is announced on the database's change feed, so every server instance (PostgreSQL LISTEN/NOTIFY;
 * in-process for SQLite) pushes it to the devices connected to it. A device that was away asks for what
 * came after the last sequence it saw (its cursor) and gets it in order.
 */
import { createPrivateKey, KeyObject } from 'node:crypto';
import { Payment } from '../protocol/states';
import { signPaymentResult, signPaymentResultAsync } from '../protocol/payment-signature';
import { Db, DbChangeFeed, Queryable } from './storage/db';

export const EVENTS_CHANNEL = 'payconnect_events';

const INSERT_EVENT =
  'INSERT INTO events (store_id, payment_id, body, signature, created_at) VALUES ($1, $2, $3, $4, $5)';

/**
 * PostgreSQL: the part of one statement that records an event for the store of the row in CTE `source`
 * (which has a `store_id` column): `s` takes the store's transaction-scoped advisory lock, then `e` inserts
 * the event, taking its seq only once the lock is held (it reads from `s`). With the lock held until commit,
 * a store's events commit in seq order: PostgreSQL hands out seq at insert, not at commit, and without the
 * lock a device's cursor could pass a seq still uncommitted and never receive that event. (An advisory lock,
 * not a row lock: it writes nothing. Two stores whose ids hash alike only wait for each other.) The
 * placeholders (`$2`, or `:name` in a named statement) give the payment id, the body, the signature and the
 * time. Select `PG_EVENT_RESULT` from `e`.
 */
export function pgEventCtes(
  source: string,
  p: { paymentId: string; body: string; signature: string; at: string },
): string {
  return `s AS (SELECT store_id, pg_advisory_xact_lock(${STORE_EVENTS_LOCK}, hashtext(store_id)) FROM ${source}),
    e AS (INSERT INTO events (store_id, payment_id, body, signature, created_at)
          SELECT s.store_id, ${p.paymentId}, ${p.body}, ${p.signature}, ${p.at} FROM s RETURNING seq, store_id)`;
}

/**
 * pgEventCtes for many events in one statement: one event for each row of CTE `source`, whose columns are
 * store_id, payment_id, body, signature and at. `s` takes each store's lock once (in store order, so two
 * such statements never wait for each other crosswise), then `e` inserts the events, each taking its seq
 * only once its store's lock is held (it joins `s`). Select `e.payment_id` and `PG_EVENT_RESULT` from `e`.
 */
export function pgEventsCtes(source: string): string {
  return `s AS (SELECT store_id, pg_advisory_xact_lock(${STORE_EVENTS_LOCK}, hashtext(store_id))
          FROM (SELECT DISTINCT store_id FROM ${source} ORDER BY store_id) d),
    e AS (INSERT INTO events (store_id, payment_id, body, signature, created_at)
          SELECT r.store_id, r.payment_id, r.body, r.signature, r.at FROM ${source} r JOIN s ON s.store_id = r.store_id
          RETURNING seq, store_id, payment_id)`;
}

/** The first key of the per-store advisory locks (the migrations' lock is a one-key lock: another space). */
const STORE_EVENTS_LOCK = 47813;

/** The event's seq, and its notification to every instance, queued for COMMIT. */
export const PG_EVENT_RESULT = `e.seq, pg_notify('${EVENTS_CHANNEL}', json_build_object('storeId', e.store_id, 'seq', e.seq)::text)`;

export interface PaymentEvent {
  type: 'payment.updated';
  seq: number;
  payment: Payment;
  signature: string;
}

/** One push frame: its sequence number and its text as sent. */
export interface EventFrame {
  seq: number;
  text: string;
}

interface EventRow {
  seq: number;
  body: string;
  signature: string;
}

export class EventsService {
  private readonly subscribers = new Map<string, Set<(storeId: string, seq: number) => void>>();
  private listening?: Promise<void>;
  /** Parsed once: parsing PKCS #8 DER costs ~0.35 ms of CPU (OpenSSL 3), signing itself ~0.05 ms. */
  private readonly privateKey: KeyObject;

  constructor(
    private readonly db: Queryable,
    private readonly feed: DbChangeFeed,
    privateKey: string,
    /**
     * The engine behind `db`. PostgreSQL: record() locks the store's row and queues the NOTIFY in the
     * transaction (sent at COMMIT, so announce() has nothing left to do). SQLite: neither is needed.
     */
    private readonly engine: Db['kind'],
  ) {
    this.privateKey = createPrivateKey({
      key: Buffer.from(privateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
  }

  sign(storeId: string, payment: Payment): string {
    return signPaymentResult(payment, storeId, this.privateKey);
  }

  /** sign() on the thread pool, for the payment path: the event loop only prepares the bytes. */
  signAsync(storeId: string, payment: Payment): Promise<string> {
    return signPaymentResultAsync(payment, storeId, this.privateKey);
  }

  /**
   * Writes the event inside the caller's transaction; returns its sequence number. `signature` and `body`
   * (its JSON) may be given when the caller has them already: they must be of exactly this payment.
   */
  async record(
    q: Queryable,
    storeId: string,
    payment: Payment,
    signature = this.sign(storeId, payment),
    body = JSON.stringify(payment),
  ): Promise<number> {
    const params = [storeId, payment.id, body, signature, payment.updatedAt];
    if (this.engine === 'sqlite') {
      // SQLite runs one write transaction at a time, so seq is handed out in commit order: no lock needed.
      const rows = await q.query<{ seq: number }>(`${INSERT_EVENT} RETURNING seq`, params);
      return Number(rows[0].seq);
    }
    // PostgreSQL: one statement takes the store's lock, inserts the event and queues the notification
    // (sent at COMMIT, in commit order, and not at all on ROLLBACK).
    const rows = await q.query<{ seq: number }>(
      `WITH src AS (SELECT $1::text AS store_id), ${pgEventCtes('src', { paymentId: '$2', body: '$3', signature: '$4', at: '$5' })} SELECT ${PG_EVENT_RESULT} FROM e`,
      params,
    );
    if (!rows[0]) throw new Error(`cannot record an event of payment ${payment.id}: no store ${storeId}`);
    return Number(rows[0].seq);
  }

  /**
   * Tells every instance (after commit) that a store has a new event. On PostgreSQL record() has queued
   * the notification in the transaction already.
   */
  async announce(storeId: string, seq: number): Promise<void> {
    if (this.engine !== 'sqlite') return;
    await this.feed.notify(EVENTS_CHANNEL, JSON.stringify({ storeId, seq }));
  }

  /** Events of a store after `after`, oldest first. */
  async since(storeId: string, after: number, limit = 500): Promise<PaymentEvent[]> {
    return (await this.rows(storeId, after, limit)).map((r) => ({
      type: 'payment.updated',
      seq: Number(r.seq),
      payment: JSON.parse(r.body) as Payment,
      signature: r.signature,
    }));
  }

  private rows(storeId: string, after: number, limit: number): Promise<EventRow[]> {
    return this.db.query<EventRow>(
      'SELECT seq, body, signature FROM events WHERE store_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      [storeId, after, limit],
    );
  }

  /** Reads of frames() in flight, by store, cursor and limit: the devices that are caught up share one. */
  private readonly framesInFlight = new Map<string, Promise<EventFrame[]>>();

  /**
   * The push frames of a store's events after `after`, oldest first, each as the exact text of
   * `JSON.stringify(event)` for the PaymentEvent since() gives (built from the stored body, which is that
   * payment's JSON.stringify, without parsing it).
   *
   * A new event is announced to every device connected to its store at once, and the devices that are
   * caught up all ask from the same cursor: they share one read and the same strings, where each used to
   * run its own query and serialize every event again (with 50 registers, 56 reads per event). A read
   * started before an event committed does not see it, so a caller that was told of an event must ask
   * again with `fresh` when a shared read came back without it: a fresh read never joins one in flight.
   */
  frames(storeId: string, after: number, limit: number, fresh = false): Promise<EventFrame[]> {
    const key = `${storeId}\u0000${after}\u0000${limit}`;
    if (!fresh) {
      const shared = this.framesInFlight.get(key);
      if (shared) return shared;
    }
    const read = this.rows(storeId, after, limit).then((rows) =>
      rows.map((r) => ({
        seq: Number(r.seq),
        text: `{"type":"payment.updated","seq":${Number(r.seq)},"payment":${r.body},"signature":${JSON.stringify(r.signature)}}`,
      })),
    );
    if (!fresh) {
      this.framesInFlight.set(key, read);
      // Registered before any caller's continuation, so it runs first: a caller that asks again on
      // what it got starts a new read.
      const forget = () => {
        if (this.framesInFlight.get(key) === read) this.framesInFlight.delete(key);
      };
      read.then(forget, forget);
    }
    return read;
  }

  async latestSeq(storeId: string): Promise<number> {
    const rows = await this.db.query<{ seq: number | null }>(
      'SELECT MAX(seq) AS seq FROM events WHERE store_id = $1',
      [storeId],
    );
    return Number(rows[0]?.seq ?? 0);
  }

  /** Calls `onNews` whenever an event of `storeId` was committed on any instance. Returns an unsubscribe. */
  async subscribe(storeId: string, onNews: (storeId: string, seq: number) => void): Promise<() => void> {
    this.listening ??= this.feed.listen(EVENTS_CHANNEL, (payload) => {
      let news: { storeId: string; seq: number };
      try {
        news = JSON.parse(payload);
      } catch {
        return;
      }
      for (const s of this.subscribers.get(news.storeId) ?? []) s(news.storeId, news.seq);
    });
    await this.listening;
    if (!this.subscribers.has(storeId)) this.subscribers.set(storeId, new Set());
    this.subscribers.get(storeId)!.add(onNews);
    return () => this.subscribers.get(storeId)?.delete(onNews);
  }

  connectedSubscribers(): number {
    let n = 0;
    for (const s of this.subscribers.values()) n += s.size;
    return n;
  }
}
