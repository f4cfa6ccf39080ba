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

  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.mutex.lock(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.direct);
        this.db.exec('COMMIT');
        return result;
      } catch (e) {
        this.db.exec('ROLLBACK');
        throw e;
      }
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
