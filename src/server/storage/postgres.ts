/**
 * PostgreSQL engine: a connection pool for queries and transactions, and one dedicated connection for
 * LISTEN, so every server instance sharing the database hears what any instance committed.
 *
 * `?schema=NAME` in the URL puts every table in that schema (created if missing): tests use it to get a
 * private, disposable set of tables in the shared `test` database.
 */
import { createHash } from 'node:crypto';
import { Client, DatabaseError, Pool, PoolClient, types } from 'pg';
import { Db, DbChangeFeed, Queryable, redactDbUrl, SqlValue } from './db';

// BIGINT (int8) comes back as a string by default; our BIGINTs are money and sequence numbers, always
// safe integers, so read them as numbers and refuse anything that is not.
types.setTypeParser(20, (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`BIGINT ${v} is outside the safe integer range`);
  return n;
});

/**
 * Whether PostgreSQL answered a statement with an error (severity ERROR): a statement committed on its own
 * is then rolled back and has taken no effect. A broken connection, or a FATAL error (the server ending the
 * session), leaves the outcome unknown: it may have committed.
 */
export function refusedByPostgres(e: unknown): boolean {
  return e instanceof DatabaseError && e.severity === 'ERROR';
}

function splitSchema(url: string): { url: string; schema?: string } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? undefined;
  u.searchParams.delete('schema');
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`schema "${schema}" must be lower-case letters, digits and _`);
  }
  return { url: u.toString(), schema };
}

/**
 * Every statement is a named prepared statement: PostgreSQL parses and plans it once per connection, not on
 * every call (for the payment path's statements that is most of a backend's CPU per call). The name is
 * derived from the text, so one text is one statement on every connection. A text without parameters
 * (a migration script, which may hold several statements) goes as a simple query.
 */
const names = new Map<string, string>();
function statementName(sql: string): string {
  let name = names.get(sql);
  if (!name) {
    name = `pc_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`;
    names.set(sql, name);
  }
  return name;
}

function wrap(c: Pool | PoolClient): Queryable {
  const send = (text: string, values: SqlValue[]) =>
    values.length ? c.query({ name: statementName(text), text, values }) : c.query(text);
  return {
    query: async <T>(sql: string, params: SqlValue[] = []) => (await send(sql, params)).rows as T[],
    run: async (sql: string, params: SqlValue[] = []) => ({
      changes: (await send(sql, params)).rowCount ?? 0,
    }),
  };
}

export class PostgresDb implements Db, DbChangeFeed {
  readonly kind = 'postgres' as const;
  readonly where: string;
  private readonly pool: Pool;
  private readonly plain: Queryable;
  private listener?: Client;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private readonly url: string;
  readonly schema?: string;
  private readonly connectOptions?: string;

  /**
   * `synchronousCommit: false` is for a store that is not the server's journal (the simulator's ledger): its
   * commits do not wait for the WAL to reach the disk (they survive a crash of the server process, and
   * PostgreSQL's own crash loses at most its last fraction of a second).
   */
  constructor(url: string, opts: { max?: number; synchronousCommit?: boolean } = {}) {
    const split = splitSchema(url);
    this.url = split.url;
    this.schema = split.schema;
    this.where = redactDbUrl(url);
    // The schema goes in the connection's startup options, so every connection (pool and LISTEN) starts
    // with it, before any query.
    const options = [
      ...(this.schema ? [`-c search_path=${this.schema}`] : []),
      ...(opts.synchronousCommit === false ? ['-c synchronous_commit=off'] : []),
    ];
    this.connectOptions = options.length ? options.join(' ') : undefined;
    this.pool = new Pool({ connectionString: this.url, max: opts.max ?? 10, options: this.connectOptions });
    // A pool error on an idle connection (the server restarted) must not kill the process; the next
    // query gets a new connection.
    this.pool.on('error', () => undefined);
    this.plain = wrap(this.pool);
  }

  async init(): Promise<void> {
    if (this.schema) {
      const c = new Client({ connectionString: this.url });
      await c.connect();
      try {
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      } finally {
        await c.end();
      }
    }
  }

  query<T = Record<string, unknown>>(sql: string, params?: SqlValue[]): Promise<T[]> {
    return this.plain.query<T>(sql, params);
  }

  run(sql: string, params?: SqlValue[]): Promise<{ changes: number }> {
    return this.plain.run(sql, params);
  }

  async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(wrap(client));
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async listen(channel: string, handler: (payload: string) => void): Promise<void> {
    if (!this.listener) {
      this.listener = new Client({ connectionString: this.url, options: this.connectOptions });
      this.listener.on('error', () => undefined);
      await this.listener.connect();
      this.listener.on('notification', (n) => {
        for (const h of this.handlers.get(n.channel) ?? []) h(n.payload ?? '');
      });
    }
    if (!this.handlers.has(channel)) {
      this.handlers.set(channel, new Set());
      await this.listener.query(`LISTEN ${channel}`);
    }
    this.handlers.get(channel)!.add(handler);
  }

  async notify(channel: string, payload: string): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  /** Drops the private schema (tests). */
  async dropSchema(): Promise<void> {
    if (this.schema) await this.pool.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }

  async close(): Promise<void> {
    await this.listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}
