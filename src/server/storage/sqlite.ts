/**
 * SQLite engine: better-sqlite3 in WAL mode with synchronous=FULL, so a payment the server has answered
 * survives a power cut. better-sqlite3 is synchronous; an async mutex serialises whole transactions so
 * two requests' statements never interleave inside one transaction on the single connection.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
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

/** `$1, $2…` to `?` in order of appearance, with the parameters reordered to match. */
export function toSqlite(sql: string, params: SqlValue[]): { sql: string; params: unknown[] } {
  const out: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    const v = params[Number(n) - 1];
    out.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
    return '?';
  });
  return { sql: text, params: out };
}

interface Pending {
  fn: (q: Queryable) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class SqliteDb implements Db, DbChangeFeed {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly mutex = new Mutex();
  private readonly statements = new Map<string, Database.Statement>();
  private readonly listeners = new Map<string, Set<(payload: string) => void>>();

  constructor(readonly where: string) {
    if (where !== ':memory:') mkdirSync(dirname(where), { recursive: true });
    this.db = new Database(where);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private readonly direct: Queryable = {
    query: async <T>(sql: string, params: SqlValue[] = []) => {
      const q = toSqlite(sql, params);
      const s = this.statement(q.sql);
      return (s.reader ? s.all(...q.params) : (s.run(...q.params), [])) as T[];
    },
    run: async (sql: string, params: SqlValue[] = []) => {
      const q = toSqlite(sql, params);
      const s = this.statement(q.sql);
      if (s.reader) {
        const rows = s.all(...q.params);
        return { changes: rows.length };
      }
      return { changes: s.run(...q.params).changes };
    },
  };

  query<T = Record<string, unknown>>(sql: string, params?: SqlValue[]): Promise<T[]> {
    return this.mutex.lock(() => this.direct.query<T>(sql, params));
  }

  run(sql: string, params?: SqlValue[]): Promise<{ changes: number }> {
    return this.mutex.lock(() => this.direct.run(sql, params));
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
      // Start after this turn's I/O callbacks, so requests that arrived meanwhile join the batch.
      setImmediate(
        () =>
          void this.mutex.lock(async () => {
            this.batch = undefined;
            await this.runBatch(batch);
          }),
      );
    });
  }

  private batch?: Pending[];

  private async runBatch(batch: Pending[]): Promise<void> {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const item of batch) {
        this.db.exec('SAVEPOINT caller');
        try {
          const value = await item.fn(this.direct);
          this.db.exec('RELEASE caller');
          outcomes.push({ ok: true, value });
        } catch (error) {
          // A failure of the caller's own: undo its writes only. (If SQLite itself has rolled the whole
          // transaction back, ROLLBACK TO throws and the batch fails below.)
          this.db.exec('ROLLBACK TO caller');
          this.db.exec('RELEASE caller');
          outcomes.push({ ok: false, error });
        }
      }
      this.db.exec('COMMIT');
    } catch (e) {
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        // nothing left to undo
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
