/**
 * What a mobile POS unit keeps in its data folder:
 * - `device.json` (mode 0600): its registration: device id, store, bearer token, the server's URL and the
 *   server's public key it pinned. Written once, at registration; used on every restart.
 * - `lan-key.json` (mode 0600): the store LAN key(s), in the format the `payconnect lan` tools read.
 * - `terminal.db`: the journal (SQLite). Every payment attempt is written before it is sent, and every
 *   answer before it is acted on, so a unit killed mid-payment resumes by asking the server about exactly
 *   that attempt and never starts a second charge. The customer's payment code is never written.
 */
import { createHash } from 'node:crypto';
import type { CursorWrite } from '../device/event-cursor';
import { META_TABLE_SQL, MetaTable } from '../device/meta-table';
import { DeviceMigration, openDeviceJournal } from '../device/device-migrations';
import type { SqliteDatabase } from '../device/sqlite-driver';
import { readDeviceFile, readLanKeys, saveLanKeys, saveRegistration } from '../device/device-files';
import { Payment } from '../protocol/states';
import { setBounded } from '../protocol/bounded-map';
import { LanKeyJson } from '../lan/lan-keyring';
import type { HeldOffer } from '../lan/offers';

export interface DeviceCredentials {
  deviceId: string;
  storeId: string;
  token: string;
  serverUrl: string;
  serverPublicKey: string;
  name: string;
}

export type AttemptStatus = 'paying' | 'pending' | 'succeeded' | 'failed' | 'canceled' | 'refunded';

export interface PaymentAttempt {
  orderId: string;
  attempt: number;
  registerId: string;
  /** The plugin that offered the order, where progress and the result are sent. */
  plugin: { to: string; address: string; port: number };
  amountValue: number;
  currency: string;
  idempotencyKey: string;
  /** Known once the server answered. */
  paymentId: string | null;
  status: AttemptStatus;
  payment: Payment | null;
  signature: string | null;
  /** The signed result was acknowledged by the plugin. */
  relayed: boolean;
  createdAt: number;
  updatedAt: number;
}

/**
 * The journal's schema, oldest first (how to add one: docs/architecture.md, "Device journal migrations").
 * Released migrations are never edited: a change is a new migration at the end.
 */
export const TERMINAL_STORE_MIGRATIONS: DeviceMigration[] = [
  {
    // The schema as it was before versioned migrations; a journal holding these tables without a
    // schema_migrations table is taken as version 1 as it stands.
    version: 1,
    name: 'attempts, meta',
    up: `
      CREATE TABLE attempts (
        order_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        register_id TEXT NOT NULL,
        plugin TEXT NOT NULL,
        amount_value INTEGER NOT NULL,
        currency TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        payment_id TEXT,
        status TEXT NOT NULL,
        payment TEXT,
        signature TEXT,
        relayed INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (order_id, attempt)
      );
      ${META_TABLE_SQL};`,
  },
  {
    // The orders this unit holds (its claim was granted), journaled when the claim is granted, so a unit
    // that restarts (killed, battery out) still has them: the clerk can scan again, and a cancel from the
    // register still reaches the attempt. Offers not claimed are not kept: the plugin offers them again.
    version: 2,
    name: 'held_offers',
    up: `
      CREATE TABLE held_offers (
        order_id TEXT PRIMARY KEY,
        offer TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );`,
  },
  {
    // The queries a unit makes all day (what a restart resumes, what the plugin still has to hear, today's
    // history) scanned every attempt ever journaled: 12,000 attempts made the offer list's read take 30 ms
    // in the e2e bench, and a unit keeps its journal for years. Partial indexes hold only the few rows
    // still unfinished or unrelayed, so they cost nothing to keep.
    version: 3,
    name: 'attempts indexes',
    up: `
      CREATE INDEX attempts_unfinished ON attempts (created_at) WHERE status IN ('paying', 'pending');
      CREATE INDEX attempts_unrelayed ON attempts (created_at) WHERE relayed = 0 AND signature IS NOT NULL;
      CREATE INDEX attempts_created ON attempts (created_at);`,
  },
];

/**
 * How many orders' latest attempts `TerminalStore.latest` keeps in memory (the unit's page lists up to
 * 100 finished offers and every open one, the inbox keeps 500): more than a shift's screen needs.
 */
export const LATEST_ATTEMPTS_KEPT = 1000;

export class TerminalStore {
  private readonly db: SqliteDatabase;
  private readonly metaTable: MetaTable;
  /**
   * The latest attempt of recently asked orders (null: none), kept because the unit asks for them at every
   * read of its offer list, once per listed offer, and for every payment event the server pushes. This
   * store is the only writer of `attempts`: `beginAttempt` and `update` drop an order's entry once their
   * write has committed, so a read after a write reads the journal again. Callers get a copy.
   */
  private readonly latestKept = new Map<string, PaymentAttempt | null>();

  constructor(readonly dir: string) {
    this.db = openDeviceJournal(dir, 'terminal.db', TERMINAL_STORE_MIGRATIONS);
    this.metaTable = new MetaTable(this.db);
  }

  credentials(): DeviceCredentials | undefined {
    return readDeviceFile<DeviceCredentials>(this.dir);
  }

  saveCredentials(c: DeviceCredentials, lanKeys: LanKeyJson[]): void {
    saveRegistration(this.dir, c, lanKeys);
  }

  lanKeys(): LanKeyJson[] {
    return readLanKeys(this.dir);
  }

  saveLanKeys(lanKeys: LanKeyJson[]): void {
    saveLanKeys(this.dir, lanKeys);
  }

  meta(name: string): string | undefined {
    return this.metaTable.get(name);
  }

  setMeta(name: string, value: string): void {
    this.metaTable.set(name, value);
  }

  /** Journals a new attempt before anything is sent; returns it. */
  beginAttempt(a: {
    orderId: string;
    registerId: string;
    plugin: PaymentAttempt['plugin'];
    amountValue: number;
    currency: string;
    storeId: string;
    now: number;
  }): PaymentAttempt {
    const begun = this.db.transaction(() => {
      const last = this.db
        .prepare('SELECT MAX(attempt) AS n FROM attempts WHERE order_id = ?')
        .get(a.orderId) as { n: number | null };
      const attempt = (last.n ?? 0) + 1;
      // Bound to the order (and the attempt): a retry of this attempt, however often and after any crash,
      // is the same request to the server, so it can never charge twice.
      const key = attemptIdempotencyKey(a.storeId, a.registerId, a.orderId, attempt);
      this.db
        .prepare(
          `INSERT INTO attempts (order_id, attempt, register_id, plugin, amount_value, currency, idempotency_key, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'paying', ?, ?)`,
        )
        .run(
          a.orderId,
          attempt,
          a.registerId,
          JSON.stringify(a.plugin),
          a.amountValue,
          a.currency,
          key,
          a.now,
          a.now,
        );
      return this.attempt(a.orderId, attempt)!;
    })();
    this.latestKept.delete(a.orderId);
    return begun;
  }

  update(
    orderId: string,
    attempt: number,
    change: {
      paymentId?: string;
      status?: AttemptStatus;
      payment?: Payment;
      signature?: string;
      relayed?: boolean;
    },
    now: number,
    cursor?: CursorWrite,
  ): boolean {
    const cur = this.attempt(orderId, attempt);
    if (!cur) return false;
    const write = () => {
      this.db
        .prepare(
          'UPDATE attempts SET payment_id = ?, status = ?, payment = ?, signature = ?, relayed = ?, updated_at = ? WHERE order_id = ? AND attempt = ?',
        )
        .run(
          change.paymentId ?? cur.paymentId,
          change.status ?? cur.status,
          change.payment ? JSON.stringify(change.payment) : cur.payment ? JSON.stringify(cur.payment) : null,
          change.signature ?? cur.signature,
          (change.relayed ?? cur.relayed) ? 1 : 0,
          now,
          orderId,
          attempt,
        );
      // The push event that brought the change: heard and acted on in one commit (device/event-cursor.ts).
      if (cursor) this.setMeta(cursor.name, cursor.value);
    };
    // One commit either way: the update alone, or with the cursor.
    this.db.transaction(write)();
    this.latestKept.delete(orderId);
    return true;
  }

  attempt(orderId: string, attempt: number): PaymentAttempt | undefined {
    const r = this.db
      .prepare('SELECT * FROM attempts WHERE order_id = ? AND attempt = ?')
      .get(orderId, attempt) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  latest(orderId: string): PaymentAttempt | undefined {
    let a = this.latestKept.get(orderId);
    if (a === undefined) {
      const r = this.db
        .prepare('SELECT * FROM attempts WHERE order_id = ? ORDER BY attempt DESC LIMIT 1')
        .get(orderId) as Row | undefined;
      a = r ? fromRow(r) : null;
      setBounded(this.latestKept, orderId, a, LATEST_ATTEMPTS_KEPT);
    }
    return a ? { ...a, plugin: { ...a.plugin } } : undefined;
  }

  /** Attempts whose outcome is not known yet: what a restart must ask the server about. */
  unfinished(): PaymentAttempt[] {
    return (
      this.db
        .prepare("SELECT * FROM attempts WHERE status IN ('paying', 'pending') ORDER BY created_at")
        .all() as Row[]
    ).map(fromRow);
  }

  /** Final results the plugin has not yet acknowledged. */
  unrelayed(): PaymentAttempt[] {
    return (
      this.db
        .prepare('SELECT * FROM attempts WHERE relayed = 0 AND signature IS NOT NULL ORDER BY created_at')
        .all() as Row[]
    ).map(fromRow);
  }

  since(from: number): PaymentAttempt[] {
    return (
      this.db
        .prepare('SELECT * FROM attempts WHERE created_at >= ? ORDER BY created_at DESC')
        .all(from) as Row[]
    ).map(fromRow);
  }

  /** Journals an order this unit holds, as it stands now (written again at each change of it). */
  holdOffer(offer: HeldOffer, now: number): void {
    this.db
      .prepare(
        `INSERT INTO held_offers (order_id, offer, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (order_id) DO UPDATE SET offer = excluded.offer, updated_at = excluded.updated_at`,
      )
      .run(offer.orderId, JSON.stringify(offer), now);
  }

  /**
   * The orders this unit held, for a restart. Those whose offer ended more than `keepMs` ago are dropped
   * (the inbox keeps a finished offer for an hour, then forgets it).
   */
  heldOffers(now: number, keepMs: number): HeldOffer[] {
    const all = (this.db.prepare('SELECT offer FROM held_offers').all() as { offer: string }[]).map(
      (r) => JSON.parse(r.offer) as HeldOffer,
    );
    const old = all.filter((o) => o.expiresAt + keepMs <= now);
    const del = this.db.prepare('DELETE FROM held_offers WHERE order_id = ?');
    for (const o of old) del.run(o.orderId);
    return all.filter((o) => o.expiresAt + keepMs > now);
  }

  close(): void {
    this.db.close();
  }
}

interface Row {
  order_id: string;
  attempt: number;
  register_id: string;
  plugin: string;
  amount_value: number;
  currency: string;
  idempotency_key: string;
  payment_id: string | null;
  status: AttemptStatus;
  payment: string | null;
  signature: string | null;
  relayed: number;
  created_at: number;
  updated_at: number;
}

function fromRow(r: Row): PaymentAttempt {
  return {
    orderId: r.order_id,
    attempt: r.attempt,
    registerId: r.register_id,
    plugin: JSON.parse(r.plugin) as PaymentAttempt['plugin'],
    amountValue: r.amount_value,
    currency: r.currency,
    idempotencyKey: r.idempotency_key,
    paymentId: r.payment_id,
    status: r.status,
    payment: r.payment ? (JSON.parse(r.payment) as Payment) : null,
    signature: r.signature,
    relayed: r.relayed === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * The Idempotency-Key of a payment attempt. Order numbers are whatever the host uses (Chinese, spaces,
 * `<`), but an HTTP header value and the server's key rule take printable ASCII only, so the key carries a
 * digest of the order instead of the order itself: `pc1-<43 base64url characters>-<attempt>`, the digest
 * being SHA-256 over the store, register and order ids (length-prefixed, so no two triples collide by
 * concatenation). Deterministic: the same attempt always has the same key, which the journal also keeps.
 */
export function attemptIdempotencyKey(
  storeId: string,
  registerId: string,
  orderId: string,
  attempt: number,
): string {
  const h = createHash('sha256');
  for (const part of [storeId, registerId, orderId]) {
    const bytes = Buffer.from(part, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  }
  return `pc1-${h.digest('base64url')}-${attempt}`;
}
