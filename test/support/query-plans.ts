/**
 * Which statements a journal ran, and which of them read a whole table: for specs that hold a journal's
 * everyday queries to its indexes, so that a register's or a unit's years of rows never make its work
 * loop or its screens slower. A test cannot time that (timings never go in pass/fail tests); it can read
 * SQLite's plan, which is what decides it.
 */
import type { SqliteDatabase } from '../../src/device/sqlite-driver';

/** Calls `seen` with the SQL text of every statement `db` compiles from now on, before compiling it. */
export function watchPrepare(db: SqliteDatabase, seen: (sql: string) => void): void {
  const prepare = db.prepare.bind(db);
  db.prepare = (sql: string) => {
    seen(sql);
    return prepare(sql);
  };
}

/** Records the SQL text of every statement prepared on `db` (a journal's private database) from now on. */
export function recordStatements(db: SqliteDatabase): Set<string> {
  const texts = new Set<string>();
  watchPrepare(db, (sql) => texts.add(sql.replace(/\s+/g, ' ').trim()));
  return texts;
}

/**
 * The statements among `texts` whose plan reads all of one of `tables` ("SCAN orders", not "SCAN orders
 * USING INDEX …", which walks an index in order and stops at the LIMIT), each with its plan.
 */
export function fullScans(db: SqliteDatabase, texts: Iterable<string>, tables: string[]): string[] {
  const found: string[] = [];
  for (const sql of texts) {
    if (!/^(SELECT|UPDATE|DELETE)\b/i.test(sql)) continue;
    // Our statements hold no "?" inside a string literal: every one is a parameter.
    const params = Array.from({ length: (sql.match(/\?/g) ?? []).length }, () => 1);
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map(
      (r) => r.detail,
    );
    const scans = plan.filter((d) => tables.some((t) => new RegExp(`^SCAN ${t}$`).test(d)));
    if (scans.length) found.push(`${sql}  →  ${plan.join('; ')}`);
  }
  return found;
}
