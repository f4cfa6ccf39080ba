/**
 * Prepared statements kept for reuse. The device journals ask for a statement by its SQL text at every
 * call (`db.prepare('SELECT …').get(…)`), which reads well; but compiling the SQL is most of what a short
 * query costs: in a unit at the e2e bench's rate, `prepare` was 20 % of its CPU and the query it served
 * (the latest attempt of each listed offer) another 24 %. `cachingStatements(db)` answers the same
 * database with a `prepare` that compiles each text once and hands back the same statement after.
 *
 * Safe because every statement call of the journals runs to its end before the next one starts (run, get
 * and all are synchronous; nothing iterates), and because no journal changes a statement's mode: a caller
 * that calls `safeIntegers()` must prepare on the database itself (the payment server keeps its own cache
 * for that reason). The cache is bounded: past `limit` texts (the journals have a few dozen), the oldest is
 * dropped, so SQL built from values by mistake costs compiles, never memory.
 */
import type { SqliteDatabase, SqliteStatement } from './sqlite-driver';
import { setBounded } from '../protocol/bounded-map';

export const STATEMENT_CACHE_LIMIT = 200;

export function cachingStatements(db: SqliteDatabase, limit = STATEMENT_CACHE_LIMIT): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  const prepare = (sql: string): SqliteStatement => {
    const hit = cache.get(sql);
    if (hit) return hit;
    const statement = db.prepare(sql);
    setBounded(cache, sql, statement, limit);
    return statement;
  };
  return {
    get name() {
      return db.name;
    },
    get driver() {
      return db.driver;
    },
    get inTransaction() {
      return db.inTransaction;
    },
    prepare,
    exec: (sql) => db.exec(sql),
    transaction: (fn) => db.transaction(fn),
    pragma: ((source: string, options?: { simple: true }) =>
      options ? db.pragma(source, options) : db.pragma(source)) as SqliteDatabase['pragma'],
    close: () => {
      cache.clear();
      db.close();
    },
  };
}
