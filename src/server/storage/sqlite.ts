/**
 * SQLite engine: WAL mode with synchronous=FULL (both read back at open), so a payment the server has
 * answered survives a power cut. It opens through the device journals' storage seam
 * (src/device/sqlite-driver.ts): better-sqlite3 where it loads, else Node's built-in node:sqlite, or the one
 * `PAYCONNECT_SQLITE` names. Both are synchronous; an async mutex serialises whole transactions so two
 * requests' statements never interleave inside one transaction on the single connection.
 *
 * Integers are read exactly: as bigints from the driver (`safeIntegers()`), then as numbers when they are
 * safe integers, and a row holding one beyond ±(2^53 − 1) is refused, as the PostgreSQL engine refuses such
 * a BIGINT — never a rounded amount (better-sqlite3's own reading rounds it silently). Money is integer
 * minor units; a sum that may exceed that range is read as TEXT (reports.service.ts).
 */
import { ensurePrivateFiles, sqliteFiles } from '../../protocol/private-files';
import {
  SqliteDatabase,
  SqliteDriver,
  sqliteDriver,
  SqliteDriverName,
  SqliteStatement,
} from '../../device/sqlite-driver';
import { ensureServerDataDir } from './data-dir';
import { Db, DbChangeFeed, Queryable, SqlValue } from './db';

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  lock<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

/**
 * `$1, $2…` to `?` in order of appearance: the `?` form of a statement and, for each `?`, which `$n` it
 * stands for (0-based), so that bind() can reorder the parameters to match.
 */
function rewrite(sql: string): { sql: string; order: number[] } {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { sql: text, order };
}

function bind(order: number[], params: SqlValue[]): Array<string | number | null> {
  const out = new Array<string | number | null>(order.length);
  for (let i = 0; i < order.length; i++) {
    const v = params[order[i]];
    out[i] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  return out;
}

/**
 * A row as the server reads it: every integer (a bigint from the driver) as a number, or an error naming
 * the column when it is not a safe integer.
 */
function exactRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const key in row) {
    const v = row[key];
    if (typeof v !== 'bigint') continue;
    const n = Number(v);
    if (!Number.isSafeInteger(n))
      throw new RangeError(`column ${key}: INTEGER ${v} is outside the safe integer range`);
    row[key] = n;
  }
  return row;
}

interface Prepared {
  statement: SqliteStatement;
  order: number[];
  /** SELECT, or a write with RETURNING: answers rows. */
  reader: boolean;
  /** Changes nothing: may run outside a transaction. */
  readonly: boolean;
}

interface Pending {
  fn: (q: Queryable) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class SqliteDb implements Db, DbChangeFeed {
  readonly kind = 'sqlite' as const;
  /** Which SQLite library runs this store (for logs and tests). */
  get driver(): SqliteDriverName {
    return this.db.driver;
  }
  private readonly db: SqliteDatabase;
  private readonly mutex = new Mutex();
  /** Prepared once per SQL text (as written, with `$n`): parsing and planning cost more than running. */
  private readonly statements = new Map<string, Prepared>();
  private readonly listeners = new Map<string, Set<(payload: string) => void>>();
  private readonly control: Record<
    'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'undo',
    SqliteStatement
  >;

  /**
   * Group commits so far, and the transactions they carried (transactions / commits is how many callers
   * shared each fsync); shown on /metrics.
   */
  readonly stats = { commits: 0, transactions: 0 };

  /** Turns of the event loop a transaction waits for others to share its COMMIT; see tx(). */
  private readonly lingerTurns: number;

  /**
   * `synchronous: 'NORMAL'` is for a store that is not the server's journal (the simulator's ledger): a
   * COMMIT then writes the WAL without waiting for the disk, so it survives a crash of the process but not
   * necessarily a power cut, and a transaction starts at once instead of lingering for others to share an
   * fsync it does not make.
   *
   * `driver`: the SQLite library (default: the one this process uses, sqliteDriver()).
   */
  constructor(
    readonly where: string,
    opts: { synchronous?: 'FULL' | 'NORMAL'; warn?: (line: string) => void; driver?: SqliteDriver } = {},
  ) {
    // The database holds the signing key and the LAN keys: its files are the owner's alone, and so is its
    // folder when it is the server's own. A shared or system folder (/tmp, the working folder, a folder
    // with other files) is left as it is, with a warning: see data-dir.ts.
    if (where !== ':memory:') {
      ensureServerDataDir(where, opts.warn);
      ensurePrivateFiles(sqliteFiles(where), opts.warn);
    }
    const synchronous = opts.synchronous ?? 'FULL';
    this.lingerTurns = synchronous === 'FULL' ? 2 : 0;
    // SQLite creates the database, -wal and -shm files with the process's umask: 0600 from the start.
    const umask = where !== ':memory:' ? process.umask(0o077) : undefined;
    let journalMode: unknown;
    try {
      this.db = (opts.driver ?? sqliteDriver()).open(where);
      journalMode = this.db.pragma('journal_mode = WAL', { simple: true });
    } finally {
      if (umask !== undefined) process.umask(umask);
    }
    try {
      if (where !== ':memory:') ensurePrivateFiles(sqliteFiles(where), opts.warn);
      this.db.pragma(`synchronous = ${synchronous}`);
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      // SQLite answers a journal mode or synchronous level it cannot take by keeping the old one, silently:
      // read both back, so the server never answers payments from a store weaker than this comment says.
      const level = this.db.pragma('synchronous', { simple: true });
      const expected = { FULL: 2, NORMAL: 1 }[synchronous];
      if ((where !== ':memory:' && journalMode !== 'wal') || level !== expected)
        throw new Error(
          `SQLite at ${where} runs with journal_mode=${String(journalMode)} and synchronous=${String(level)}, ` +
            `not WAL and ${synchronous} (${expected}): the ${this.db.driver} driver's SQLite refused them`,
        );
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.control = {
      begin: this.db.prepare('BEGIN IMMEDIATE'),
      commit: this.db.prepare('COMMIT'),
      rollback: this.db.prepare('ROLLBACK'),
      savepoint: this.db.prepare('SAVEPOINT caller'),
      release: this.db.prepare('RELEASE caller'),
      undo: this.db.prepare('ROLLBACK TO caller'),
    };
  }

  private prepared(sql: string): Prepared {
    let p = this.statements.get(sql);
    if (!p) {
      const { sql: text, order } = rewrite(sql);
      const statement = this.db.prepare(text);
      const reader = statement.reader;
      if (reader) statement.safeIntegers();
      p = { statement, order, reader, readonly: statement.readonly };
      this.statements.set(sql, p);
    }
    return p;
  }

  private readonly direct: Queryable = {
    query: async <T>(sql: string, params: SqlValue[] = []) => {
      const p = this.prepared(sql);
      const args = bind(p.order, params);
      if (!p.reader) {
        p.statement.run(...args);
        return [];
      }
      return (p.statement.all(...args) as Record<string, unknown>[]).map(exactRow) as T[];
    },
    run: async (sql: string, params: SqlValue[] = []) => {
      const p = this.prepared(sql);
      const args = bind(p.order, params);
      if (p.reader) return { changes: p.statement.all(...args).length };
      return { changes: p.statement.run(...args).changes };
    },
  };

  /**
   * A statement outside any transaction. A read runs at once; a write joins the next group commit as a
   * transaction of its own (so it shares that COMMIT's fsync instead of paying for one alone), or, with
   * synchronous=NORMAL, commits on its own at once.
   */
  query<T = Record<string, unknown>>(sql: string, params?: SqlValue[]): Promise<T[]> {
    return this.outside(sql, (q) => q.query<T>(sql, params));
  }

  run(sql: string, params?: SqlValue[]): Promise<{ changes: number }> {
    return this.outside(sql, (q) => q.run(sql, params));
  }

  private outside<T>(sql: string, fn: (q: Queryable) => Promise<T>): Promise<T> {
    let readonly: boolean;
    try {
      readonly = this.prepared(sql).readonly;
    } catch (e) {
      return Promise.reject(e);
    }
    // Without fsyncs to share (synchronous=NORMAL), a single write commits on its own at once.
    return readonly || this.lingerTurns === 0 ? this.mutex.lock(() => fn(this.direct)) : this.tx(fn);
  }

  /**
   * Group commit: transactions that arrive while another holds the connection wait in one batch, which then
   * runs as one SQLite transaction with a SAVEPOINT per caller, and one COMMIT (one fsync) for all. A caller
   * whose function throws is rolled back to its savepoint alone; every caller's promise settles only after
   * the COMMIT, so an answered write is as durable as before. If the COMMIT fails, every caller fails.
   */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const item = { fn, resolve, reject } as Pending;
      if (this.batch) {
        this.batch.push(item);
        return;
      }
      const batch = [item];
      this.batch = batch;
      // Linger two turns of the event loop (their I/O callbacks and the promise continuations they
      // resolve) before taking the connection, so that more callers share the COMMIT's fsync: with one turn
      // the payment benchmark's batches held 5.6 transactions on average, with two 9.5 (of at most 10 in
      // flight), for 11% more payments per second and a lower p50; more turns gained nothing. The cost is
      // one more turn of latency.
      const start = () =>
        void this.mutex.lock(async () => {
          this.batch = undefined;
          await this.runBatch(batch);
        });
      const linger = (turns: number): void => {
        if (turns === 0) start();
        else setImmediate(() => linger(turns - 1));
      };
      linger(this.lingerTurns);
    });
  }

  private batch?: Pending[];

  private async runBatch(batch: Pending[]): Promise<void> {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.control.begin.run();
      for (const item of batch) {
        this.control.savepoint.run();
        try {
          const value = await item.fn(this.direct);
          this.control.release.run();
          outcomes.push({ ok: true, value });
        } catch (error) {
          // A failure of the caller's own: undo its writes only. (If SQLite itself has rolled the whole
          // transaction back, ROLLBACK TO throws and the batch fails below.)
          this.control.undo.run();
          this.control.release.run();
          outcomes.push({ ok: false, error });
        }
      }
      this.control.commit.run();
      this.stats.commits++;
      this.stats.transactions += batch.length;
    } catch (e) {
      // Not `db.inTransaction`: node:sqlite before 22.16 cannot tell. A ROLLBACK with nothing to undo throws.
      try {
        this.control.rollback.run();
      } catch {
        // nothing left to undo: the failure (or SQLite) ended the transaction
      }
      for (const item of batch) item.reject(e);
      return;
    }
    batch.forEach((item, i) => {
      const o = outcomes[i];
      if (o.ok) item.resolve(o.value);
      else item.reject(o.error);
    });
  }

  /** Runs a migration script (several statements) outside the statement cache. */
  exec(sql: string): Promise<void> {
    return this.mutex.lock(() => {
      this.db.exec(sql);
    });
  }

  /** One process owns a SQLite database, so notifications stay in this process. */
  async listen(channel: string, listener: (payload: string) => void): Promise<void> {
    if (!this.listeners.has(channel)) this.listeners.set(channel, new Set());
    this.listeners.get(channel)!.add(listener);
  }

  async notify(channel: string, payload: string): Promise<void> {
    for (const l of this.listeners.get(channel) ?? []) queueMicrotask(() => l(payload));
  }

  async close(): Promise<void> {
    await this.mutex.lock(() => this.db.close());
  }
}
