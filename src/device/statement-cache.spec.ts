import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDeviceJournal } from './device-migrations';
import { loadSqliteDriver, SqliteDatabase, SqliteDriver } from './sqlite-driver';
import { cachingStatements } from './statement-cache';
import { watchPrepare } from '../../test/support/query-plans';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-statement-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The database with a count of the statements it really compiled. */
function counting(db: SqliteDatabase): { db: SqliteDatabase; compiled: string[] } {
  const compiled: string[] = [];
  watchPrepare(db, (sql) => compiled.push(sql));
  return { db, compiled };
}

// The halves whose driver is missing are checked for presence by sqlite-driver.spec.ts (CI=true fails there).
const drivers = (['better-sqlite3', 'node'] as const).flatMap((name) => {
  const l = loadSqliteDriver(name);
  return 'driver' in l ? [[name, l.driver] as [string, SqliteDriver]] : [];
});

describe.each(drivers)('cachingStatements on %s', (_name, driver) => {
  let raw: { db: SqliteDatabase; compiled: string[] };
  let db: SqliteDatabase;
  beforeEach(() => {
    raw = counting(driver.open(join(dir, 'j.db')));
    raw.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL)');
    db = cachingStatements(raw.db, 3);
  });
  afterEach(() => {
    try {
      db.close();
    } catch {
      // closed by the test
    }
  });

  it('compiles a text once, and the kept statement reads what was written after it was compiled', () => {
    const count = () => (db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n;
    expect(count()).toBe(0);
    for (let i = 1; i <= 5; i++) db.prepare('INSERT INTO t (id, s) VALUES (?, ?)').run(i, `第${i}单`);
    expect(count()).toBe(5);
    expect(db.prepare('SELECT s FROM t WHERE id = ?').get(3)).toEqual({ s: '第3单' });
    expect(raw.compiled).toEqual([
      'SELECT COUNT(*) AS n FROM t',
      'INSERT INTO t (id, s) VALUES (?, ?)',
      'SELECT s FROM t WHERE id = ?',
    ]);
  });

  it('works inside transaction(): a rollback undoes writes made through kept statements', () => {
    const insert = (id: number) => db.prepare('INSERT INTO t (id, s) VALUES (?, ?)').run(id, 'x');
    insert(1);
    expect(() =>
      db.transaction(() => {
        insert(2);
        insert(1); // the primary key refuses it: the whole transaction goes
      })(),
    ).toThrow(/UNIQUE|constraint/i);
    expect(db.prepare('SELECT id FROM t ORDER BY id').all()).toEqual([{ id: 1 }]);
    expect(db.inTransaction).toBe(false);
  });

  it('keeps at most its limit of texts, dropping the oldest', () => {
    for (const sql of ['SELECT 1 AS v', 'SELECT 2 AS v', 'SELECT 3 AS v', 'SELECT 4 AS v'])
      db.prepare(sql).get();
    db.prepare('SELECT 4 AS v').get();
    db.prepare('SELECT 2 AS v').get();
    expect(db.prepare('SELECT 1 AS v').get()).toEqual({ v: 1 });
    // 1 was dropped when 4 came, so it compiled again; 2 and 4 were still kept.
    expect(raw.compiled.filter((s) => s === 'SELECT 1 AS v')).toHaveLength(2);
    expect(raw.compiled.filter((s) => s === 'SELECT 2 AS v')).toHaveLength(1);
    expect(raw.compiled.filter((s) => s === 'SELECT 4 AS v')).toHaveLength(1);
  });

  it('refuses statements after close(), kept ones included', () => {
    const select = db.prepare('SELECT COUNT(*) AS n FROM t');
    db.close();
    expect(() => select.get()).toThrow();
    expect(() => db.prepare('SELECT COUNT(*) AS n FROM t').get()).toThrow();
  });

  it('passes the name, driver and pragmas through', () => {
    expect(db.name).toBe(raw.db.name);
    expect(db.driver).toBe(raw.db.driver);
    expect(db.pragma('journal_mode', { simple: true })).toBe(raw.db.pragma('journal_mode', { simple: true }));
  });
});

it('a device journal (openDeviceJournal) answers the same statement for the same text', () => {
  const db = openDeviceJournal(dir, 'd.db', [{ version: 1, name: 't', up: 'CREATE TABLE t (id INTEGER)' }]);
  try {
    expect(db.prepare('SELECT id FROM t')).toBe(db.prepare('SELECT id FROM t'));
  } finally {
    db.close();
  }
});
