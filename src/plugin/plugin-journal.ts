/**
 * The plugin's order journal (SQLite in its data folder). Every state change of an order is written here
 * before it is acted on: an offer is journaled before it is sent, a result before the host is told, a
 * receipt before it is printed. After a restart the plugin reads what was due and finishes it, each
 * exactly once: write-back and receipt have their own "due / done" columns.
 *
 * It is also the plugin's claim book: the first claim for an order is recorded here in one statement, so
 * first-claim-wins survives a restart.
 */
import type { CursorWrite } from '../device/event-cursor';
import { META_TABLE_SQL, MetaTable } from '../device/meta-table';
import { DeviceMigration, openDeviceJournal } from '../device/device-migrations';
import type { SqliteDatabase } from '../device/sqlite-driver';
import { CapturedOrder, DispatchMode } from '../adapters/host-adapter';
import { ClaimBook, ClaimDecision } from '../lan';
import { QueuedPrintJob } from '../printer/print-queue';
import { OrderStatus, Payment } from '../protocol/states';

export type WorkState = 'none' | 'due' | 'done';

export interface OrderRecord {
  orderId: string;
  registerId: string;
  amount: { value: number; currency: string };
  items: CapturedOrder['items'];
  source: string;
  /** The adapter that captured it: write-back goes back through it. */
  adapter: string;
  dispatch: DispatchMode;
  status: OrderStatus;
  terminal: string | null;
  /** The unit's last progress stage, for the status page. */
  progress: string | null;
  payment: Payment | null;
  signature: string | null;
  /** Which path brought the deciding result first: push, lan or poll. */
  resultVia: string | null;
  writeBack: WorkState;
  writeBackError: string | null;
  writeBackAttempts: number;
  receipt: WorkState;
  receiptError: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  order_id: string;
  register_id: string;
  amount_value: number;
  currency: string;
  items: string | null;
  source: string;
  adapter: string;
  dispatch: string;
  status: OrderStatus;
  terminal: string | null;
  progress: string | null;
  payment: string | null;
  signature: string | null;
  result_via: string | null;
  write_back: WorkState;
  write_back_error: string | null;
  write_back_attempts: number;
  receipt: WorkState;
  receipt_error: string | null;
  created_at: string;
  updated_at: string;
}

/** The print job id of an order's receipt (one per order; a reprint reuses it once the first has printed). */
export function receiptJobId(orderId: string): string {
  return `receipt:${orderId}`;
}

function fromRow(r: Row): OrderRecord {
  return {
    orderId: r.order_id,
    registerId: r.register_id,
    amount: { value: r.amount_value, currency: r.currency },
    items: r.items ? JSON.parse(r.items) : undefined,
    source: r.source,
    adapter: r.adapter,
    dispatch: JSON.parse(r.dispatch) as DispatchMode,
    status: r.status,
    terminal: r.terminal,
    progress: r.progress,
    payment: r.payment ? (JSON.parse(r.payment) as Payment) : null,
    signature: r.signature,
    resultVia: r.result_via,
    writeBack: r.write_back,
    writeBackError: r.write_back_error,
    writeBackAttempts: r.write_back_attempts,
    receipt: r.receipt,
    receiptError: r.receipt_error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * The journal's schema, oldest first (how to add one: docs/architecture.md, "Device journal migrations").
 * Released migrations are never edited: a change is a new migration at the end.
 */
export const PLUGIN_JOURNAL_MIGRATIONS: DeviceMigration[] = [
  {
    // The schema as it was before versioned migrations; a journal holding these tables without a
    // schema_migrations table is taken as version 1 as it stands.
    version: 1,
    name: 'orders, order_log, print_jobs, meta',
    up: `
      CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        register_id TEXT NOT NULL,
        amount_value INTEGER NOT NULL,
        currency TEXT NOT NULL,
        items TEXT,
        source TEXT NOT NULL,
        adapter TEXT NOT NULL,
        dispatch TEXT NOT NULL,
        status TEXT NOT NULL,
        terminal TEXT,
        claim_closed INTEGER NOT NULL DEFAULT 0,
        progress TEXT,
        payment TEXT,
        signature TEXT,
        result_via TEXT,
        write_back TEXT NOT NULL DEFAULT 'none',
        write_back_error TEXT,
        write_back_attempts INTEGER NOT NULL DEFAULT 0,
        receipt TEXT NOT NULL DEFAULT 'none',
        receipt_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE order_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id TEXT NOT NULL,
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT
      );
      CREATE TABLE print_jobs (id TEXT PRIMARY KEY, job TEXT NOT NULL);
      ${META_TABLE_SQL};`,
  },
  {
    // The work loop (every 500 ms: write-backs and receipts due, orders still open) and the status page
    // (the newest orders, an order's history) scanned every order and log line ever journaled; a register
    // keeps its journal for years. Partial indexes hold only the few rows with work due.
    version: 2,
    name: 'orders and order_log indexes',
    up: `
      CREATE INDEX orders_created ON orders (created_at);
      CREATE INDEX orders_status ON orders (status, created_at);
      CREATE INDEX orders_write_back_due ON orders (updated_at) WHERE write_back = 'due';
      CREATE INDEX orders_receipt_due ON orders (updated_at) WHERE receipt = 'due';
      CREATE INDEX order_log_order ON order_log (order_id, seq);`,
  },
];

export class PluginJournal implements ClaimBook {
  private readonly db: SqliteDatabase;
  private readonly metaTable: MetaTable;

  constructor(
    dir: string,
    private readonly now: () => number = Date.now,
  ) {
    this.db = openDeviceJournal(dir, 'plugin.db', PLUGIN_JOURNAL_MIGRATIONS);
    this.metaTable = new MetaTable(this.db);
  }

  /** Receipts waiting for their printer, kept across restarts (a PrintJobStore). */
  readonly printJobs = {
    load: (): QueuedPrintJob[] =>
      (this.db.prepare('SELECT job FROM print_jobs').all() as { job: string }[]).map((r) => {
        const j = JSON.parse(r.job) as QueuedPrintJob & { bytes: string };
        return { ...j, bytes: Buffer.from(j.bytes, 'base64') };
      }),
    /**
     * Saving an order's receipt job also marks its receipt work done, in one transaction: after a crash
     * between the two, the restart would otherwise print the queued job and then queue it again.
     */
    save: (job: QueuedPrintJob): void => {
      const text = JSON.stringify({ ...job, bytes: Buffer.from(job.bytes).toString('base64') });
      this.db.transaction(() => {
        this.db
          .prepare(
            'INSERT INTO print_jobs (id, job) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET job = excluded.job',
          )
          .run(job.id, text);
        if (
          job.id === receiptJobId(job.orderId) &&
          this.db
            .prepare(
              "UPDATE orders SET receipt = 'done', receipt_error = NULL WHERE order_id = ? AND receipt = 'due'",
            )
            .run(job.orderId).changes > 0
        )
          this.log(job.orderId, 'receipt queued');
      })();
    },
    remove: (id: string): void => {
      this.db.prepare('DELETE FROM print_jobs WHERE id = ?').run(id);
    },
  };

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  log(orderId: string, event: string, detail?: string): void {
    this.db
      .prepare('INSERT INTO order_log (order_id, at, event, detail) VALUES (?, ?, ?, ?)')
      .run(orderId, this.iso(), event, detail ?? null);
  }

  history(orderId: string): { at: string; event: string; detail: string | null }[] {
    return this.db
      .prepare('SELECT at, event, detail FROM order_log WHERE order_id = ? ORDER BY seq')
      .all(orderId) as {
      at: string;
      event: string;
      detail: string | null;
    }[];
  }

  /** Records a captured order once; the same order id again returns the first record and `created: false`. */
  capture(
    order: CapturedOrder,
    adapter: string,
    dispatch: DispatchMode,
  ): { record: OrderRecord; created: boolean } {
    return this.db.transaction(() => {
      const existing = this.get(order.orderId);
      if (existing) return { record: existing, created: false };
      const at = this.iso();
      this.db
        .prepare(
          `INSERT INTO orders (order_id, register_id, amount_value, currency, items, source, adapter, dispatch, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'captured', ?, ?)`,
        )
        .run(
          order.orderId,
          order.registerId,
          order.amount.value,
          order.amount.currency,
          order.items ? JSON.stringify(order.items) : null,
          order.source,
          adapter,
          JSON.stringify(dispatch),
          at,
          at,
        );
      this.log(order.orderId, 'captured', `${order.source}`);
      return { record: this.get(order.orderId)!, created: true };
    })();
  }

  get(orderId: string): OrderRecord | undefined {
    const r = this.db.prepare('SELECT * FROM orders WHERE order_id = ?').get(orderId) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** The register of a journaled order (undefined: none): one column, for every payment the store pushes. */
  registerOf(orderId: string): string | undefined {
    const r = this.db.prepare('SELECT register_id FROM orders WHERE order_id = ?').get(orderId) as
      { register_id: string } | undefined;
    return r?.register_id;
  }

  list(limit = 200): OrderRecord[] {
    return (this.db.prepare('SELECT * FROM orders ORDER BY created_at DESC LIMIT ?').all(limit) as Row[]).map(
      fromRow,
    );
  }

  byStatus(statuses: OrderStatus[]): OrderRecord[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM orders WHERE status IN (${statuses.map(() => '?').join(',')}) ORDER BY created_at`,
        )
        .all(...statuses) as Row[]
    ).map(fromRow);
  }

  setStatus(
    orderId: string,
    status: OrderStatus,
    fields: { terminal?: string; progress?: string } = {},
    note?: string,
  ): void {
    // The change and its log line in one commit: both or neither, and one fsync instead of two.
    this.db.transaction(() => {
      this.db
        .prepare(
          'UPDATE orders SET status = ?, terminal = COALESCE(?, terminal), progress = COALESCE(?, progress), updated_at = ? WHERE order_id = ?',
        )
        .run(status, fields.terminal ?? null, fields.progress ?? null, this.iso(), orderId);
      this.log(orderId, status, note);
    })();
  }

  /**
   * The unit's progress stage. A stage the journal holds already (the claim and the decision record theirs,
   * and the unit reports them too) writes nothing: no commit, no fsync.
   */
  setProgress(orderId: string, progress: string, terminal: string): void {
    this.db
      .prepare(
        'UPDATE orders SET progress = ?, terminal = COALESCE(terminal, ?), updated_at = ? WHERE order_id = ? AND (progress IS NOT ? OR terminal IS NULL)',
      )
      .run(progress, terminal, this.iso(), orderId, progress);
  }

  /**
   * Records a decided result (journaled before the host is told or a receipt printed). Returns false when
   * the order was already decided with this outcome: the first valid copy wins, and nothing is written.
   * `cursor`: the push cursor of the event that brought it, stored in the same transaction.
   */
  decide(
    orderId: string,
    status: OrderStatus,
    payment: Payment,
    signature: string,
    via: string,
    work: { writeBack: boolean; receipt: boolean },
    cursor?: CursorWrite,
  ): boolean {
    return this.db.transaction(() => {
      const cur = this.get(orderId);
      if (!cur) return false;
      if (cur.status === 'paid' || (cur.status === status && cur.payment?.id === payment.id)) return false;
      if (cur.status === 'canceled' && status !== 'paid') return false;
      // The push event that brought the result: heard and acted on in one commit (device/event-cursor.ts).
      if (cursor) this.setMeta(cursor.name, cursor.value);
      this.db
        .prepare(
          `UPDATE orders SET status = ?, payment = ?, signature = ?, result_via = ?, progress = 'done', write_back = CASE WHEN ? THEN 'due' ELSE write_back END,
             receipt = CASE WHEN ? THEN 'due' ELSE receipt END, updated_at = ? WHERE order_id = ?`,
        )
        .run(
          status,
          JSON.stringify(payment),
          signature,
          via,
          work.writeBack ? 1 : 0,
          work.receipt ? 1 : 0,
          this.iso(),
          orderId,
        );
      this.log(orderId, status, `payment ${payment.id} ${payment.status} (via ${via})`);
      return true;
    })();
  }

  cancel(orderId: string): boolean {
    return this.db.transaction(() => {
      const cur = this.get(orderId);
      if (!cur || cur.status === 'paid' || cur.status === 'canceled') return false;
      this.db
        .prepare(
          "UPDATE orders SET status = 'canceled', claim_closed = 1, write_back = 'due', updated_at = ? WHERE order_id = ?",
        )
        .run(this.iso(), orderId);
      this.log(orderId, 'canceled', 'by the host');
      return true;
    })();
  }

  due(kind: 'write_back' | 'receipt'): OrderRecord[] {
    return (
      this.db.prepare(`SELECT * FROM orders WHERE ${kind} = 'due' ORDER BY updated_at`).all() as Row[]
    ).map(fromRow);
  }

  /**
   * Marks the work done. `doneFor` is the status the work was done for: when the order has been decided
   * again since (canceled, then a charge already under way made it paid), the new status's work stays
   * due and false is returned, so the host is told the newer status too. False also when the journal holds
   * the work as done already, with no error (a receipt the print queue saved): nothing is written then.
   */
  workDone(orderId: string, kind: 'write_back' | 'receipt', doneFor?: OrderStatus): boolean {
    // The change and its log line in one commit. Work the journal holds as done already (a receipt the
    // print queue saved: printJobs.save marks it done and logs it) writes nothing.
    return this.db.transaction(() => {
      const changed = this.db
        .prepare(
          `UPDATE orders SET ${kind} = 'done', ${kind}_error = NULL, updated_at = ? WHERE order_id = ?${doneFor ? ' AND status = ?' : ''} AND (${kind} <> 'done' OR ${kind}_error IS NOT NULL)`,
        )
        .run(this.iso(), orderId, ...(doneFor ? [doneFor] : [])).changes;
      if (changed > 0) this.log(orderId, kind === 'write_back' ? 'written back' : 'receipt queued', doneFor);
      return changed > 0;
    })();
  }

  workFailed(orderId: string, kind: 'write_back' | 'receipt', error: string): void {
    this.db
      .prepare(
        `UPDATE orders SET ${kind}_error = ?, ${kind === 'write_back' ? 'write_back_attempts = write_back_attempts + 1,' : ''} updated_at = ? WHERE order_id = ?`,
      )
      .run(error, this.iso(), orderId);
  }

  requeueReceipt(orderId: string): boolean {
    const r = this.db
      .prepare("UPDATE orders SET receipt = 'due' WHERE order_id = ? AND status = 'paid'")
      .run(orderId);
    return r.changes === 1;
  }

  meta(name: string): string | undefined {
    return this.metaTable.get(name);
  }

  setMeta(name: string, value: string): void {
    this.metaTable.set(name, value);
  }

  // --- ClaimBook: first claim wins, recorded in one statement ---------------------------------------

  open(orderId: string): void {
    // Only when closed: opening an open book changes no row, so it writes (and fsyncs) nothing.
    this.db
      .prepare(
        "UPDATE orders SET claim_closed = 0 WHERE order_id = ? AND claim_closed <> 0 AND terminal IS NULL AND status IN ('captured', 'offered')",
      )
      .run(orderId);
  }

  claim(orderId: string, terminal: string): ClaimDecision {
    return this.db.transaction((): ClaimDecision => {
      const r = this.db
        .prepare('SELECT terminal, claim_closed, status FROM orders WHERE order_id = ?')
        .get(orderId) as { terminal: string | null; claim_closed: number; status: string } | undefined;
      if (!r) return { granted: false, reason: 'unknown' };
      if (r.terminal === terminal) return { granted: true };
      if (r.terminal) return { granted: false, reason: 'taken', holder: r.terminal };
      if (r.claim_closed || r.status === 'canceled' || r.status === 'paid')
        return { granted: false, reason: 'withdrawn' };
      this.db
        .prepare(
          "UPDATE orders SET terminal = ?, status = 'claimed', progress = 'claimed', updated_at = ? WHERE order_id = ?",
        )
        .run(terminal, this.iso(), orderId);
      this.log(orderId, 'claimed', terminal);
      return { granted: true };
    })();
  }

  close(orderId: string): void {
    this.db.prepare('UPDATE orders SET claim_closed = 1 WHERE order_id = ?').run(orderId);
  }

  holder(orderId: string): string | undefined {
    return (
      (
        this.db.prepare('SELECT terminal FROM orders WHERE order_id = ?').get(orderId) as
          { terminal: string | null } | undefined
      )?.terminal ?? undefined
    );
  }

  closeDb(): void {
    this.db.close();
  }
}
