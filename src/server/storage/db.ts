/**
 * The one database interface the server's repositories use, with two engines behind it: SQLite (the
 * default, one server process; better-sqlite3 or Node's node:sqlite through src/device/sqlite-driver.ts) and
 * PostgreSQL (several stateless server instances
 * sharing one database). SQL is written once, in the subset both engines speak, with `$1, $2…`
 * placeholders; the SQLite engine rewrites them.
 *
 * Transactions: `tx(fn)` runs `fn` with a handle whose queries are inside the transaction. Keep network
 * calls (providers, pushes) out of `fn`: a transaction holds SQLite's single writer and a Postgres
 * connection for as long as it runs.
 */
export type SqlValue = string | number | null | boolean;

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: SqlValue[]): Promise<T[]>;
  /** Runs a statement; `changes` is the number of rows it inserted, updated or deleted. */
  run(sql: string, params?: SqlValue[]): Promise<{ changes: number }>;
}

export interface Db extends Queryable {
  readonly kind: 'sqlite' | 'postgres';
  /** A human-readable location for logs and errors (never with a password). */
  readonly where: string;
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DbChangeFeed {
  /** Calls `listener` (on every server instance) after `notify(channel)` committed anywhere. */
  listen(channel: string, listener: (payload: string) => void): Promise<void>;
  notify(channel: string, payload: string): Promise<void>;
}

/** `sqlite:PATH` or `postgres://…` (DESIGN.md, "Command line"). */
export type DbUrl = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

export function parseDbUrl(text: string): DbUrl {
  if (text.startsWith('sqlite:')) {
    const path = text.slice('sqlite:'.length);
    if (!path) throw new Error('the database URL "sqlite:" needs a file path, e.g. sqlite:./var/server.db');
    return { kind: 'sqlite', path };
  }
  if (text.startsWith('postgres://') || text.startsWith('postgresql://'))
    return { kind: 'postgres', url: text };
  throw new Error(`database URL "${redactDbUrl(text)}" must start with sqlite: or postgres://`);
}

/** Drops a password from a URL before it is shown anywhere. */
export function redactDbUrl(text: string): string {
  return text.replace(/(\/\/[^:/@]+):[^@/]*@/, '$1:***@');
}
