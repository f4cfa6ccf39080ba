/**
 * One contract suite over both drivers of the storage seam (sqlite-driver.ts): every operation the device
 * journals use answers the same on better-sqlite3 and on node:sqlite, with the values written out here so
 * that each half holds its driver to the same answers. A half runs where its driver loads (better-sqlite3:
 * built for this Node's ABI; node:sqlite: Node ≥ 22.5). Under CI=true neither may skip where CI means it to
 * run: the better-sqlite3 half everywhere but the Node 22 run (PAYCONNECT_SQLITE=node), the node:sqlite
 * half on every Node that has it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SetupError } from './setup-error';
import {
  loadSqliteDriver,
  SQLITE_DRIVER_VARIABLE,
  SqliteDatabase,
  sqliteDriver,
  SqliteDriver,
  SqliteDriverName,
} from './sqlite-driver';

const [major, minor] = process.versions.node.split('.').map(Number);
const hasNodeSqlite = major > 22 || (major === 22 && minor >= 5);

const required: Record<SqliteDriverName, boolean> = {
  'better-sqlite3': process.env.CI === 'true' && process.env[SQLITE_DRIVER_VARIABLE] !== 'node',
  node: process.env.CI === 'true' && hasNodeSqlite,
};

/**
 * An object whose prototype is an Object.prototype (node:sqlite's rows have none). Not `=== Object.prototype`:
 * Jest runs a spec in a realm of its own, and a native addon's objects come from the main one.
 */
function isPlainObject(o: unknown): boolean {
  const proto = Object.getPrototypeOf(o) as object | null;
  return proto !== null && Object.getPrototypeOf(proto) === null;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-sqlite-driver-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['better-sqlite3', 'node'] as const)('SqliteDriver %s', (name) => {
  const loaded = loadSqliteDriver(name);
  if ('error' in loaded) {
    if (required[name])
      it('loads (CI=true: this half must not skip)', () => {
        throw new Error(`the ${name} driver must run here: ${loaded.error}`);
      });
    else it.skip(`skipped: ${loaded.error}`, () => undefined);
    return;
  }
  const driver: SqliteDriver = loaded.driver;
  let db: SqliteDatabase;
  let file: string;
  beforeEach(() => {
    file = join(dir, 'j.db');
    db = driver.open(file);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT, n INTEGER, r REAL, b BLOB)');
  });
  afterEach(() => {
    try {
      db.close();
    } catch {
      // closed by the test
    }
  });

  it('names itself and the file it opened', () => {
    expect(driver.name).toBe(name);
    expect(db.driver).toBe(name);
    expect(db.name).toBe(file);
  });

  it("keeps a journal's durability settings: WAL (also after reopening) and synchronous FULL", () => {
    expect(db.pragma('journal_mode = WAL', { simple: true })).toBe('wal');
    db.pragma('synchronous = FULL');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    db.prepare('INSERT INTO t (s) VALUES (?)').run('x');
    expect(existsSync(`${file}-wal`)).toBe(true);
    db.close();
    db = driver.open(file);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it("has better-sqlite3's defaults: busy timeout 5 s, foreign keys on, double-quoted strings refused", () => {
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(() => db.prepare('SELECT "not a column"').get()).toThrow(/no such column/);
  });

  it('pragma() answers rows as plain objects, or with simple the first value', () => {
    expect(db.pragma('table_info("t")').map((c) => (c as { name: string }).name)).toEqual([
      'id',
      's',
      'n',
      'r',
      'b',
    ]);
    expect(isPlainObject(db.pragma('user_version')[0])).toBe(true);
    expect(db.pragma('user_version')).toEqual([{ user_version: 0 }]);
    db.pragma('user_version = 7');
    expect(db.pragma('user_version', { simple: true })).toBe(7);
  });

  it('run() answers changes and lastInsertRowid as numbers', () => {
    const insert = db.prepare('INSERT INTO t (s, n) VALUES (?, ?)');
    expect(insert.run('a', 1)).toEqual({ changes: 1, lastInsertRowid: 1 });
    expect(insert.run('b', 2)).toEqual({ changes: 1, lastInsertRowid: 2 });
    expect(db.prepare('UPDATE t SET n = n + 1').run().changes).toBe(2);
    expect(db.prepare("UPDATE t SET n = 0 WHERE s = 'none'").run().changes).toBe(0);
    expect(db.prepare('DELETE FROM t WHERE s = ?').run('a').changes).toBe(1);
  });

  it('get() and all() answer plain rows: text, integer, real, null, BLOB as Buffer; get() undefined for none', () => {
    db.prepare('INSERT INTO t (s, n, r, b) VALUES (?, ?, ?, ?)').run(
      '订单-0001 <&>',
      1740816000000,
      0.5,
      Buffer.from([0, 255, 1]),
    );
    db.prepare('INSERT INTO t (s, n, r, b) VALUES (?, ?, ?, ?)').run(null, -1, null, new Uint8Array([7]));
    const row = db.prepare('SELECT s, n, r, b FROM t WHERE id = ?').get(1) as Record<string, unknown>;
    expect(isPlainObject(row)).toBe(true);
    expect(row).toEqual({ s: '订单-0001 <&>', n: 1740816000000, r: 0.5, b: Buffer.from([0, 255, 1]) });
    expect(Buffer.isBuffer(row.b)).toBe(true);
    const rows = db.prepare('SELECT s, n, r, b FROM t ORDER BY id').all() as Record<string, unknown>[];
    expect(rows).toEqual([row, { s: null, n: -1, r: null, b: Buffer.from([7]) }]);
    expect(rows.every((r) => isPlainObject(r) && Buffer.isBuffer(r.b))).toBe(true);
    expect(db.prepare('SELECT * FROM t WHERE id = ?').get(99)).toBeUndefined();
    expect(db.prepare('SELECT * FROM t WHERE id = ?').all(99)).toEqual([]);
    expect(db.prepare('SELECT MAX(n) AS m FROM t WHERE s = ?').get('none')).toEqual({ m: null });
  });

  it('binds positional values spread, named values as one object (@, :, $), undefined as NULL', () => {
    db.prepare('INSERT INTO t (s, n) VALUES (?, ?), (?, ?), (?, ?)').run('a', 1, 'b', 2, 'c', 3);
    expect(db.prepare('SELECT s FROM t WHERE s IN (?, ?) ORDER BY s').all(...['c', 'a'])).toEqual([
      { s: 'a' },
      { s: 'c' },
    ]);
    db.prepare('INSERT INTO t (s, n, r) VALUES (@s, :n, $r)').run({ s: 'named', n: 5, r: 1.5 });
    expect(db.prepare('SELECT s, n, r FROM t WHERE s = @s').get({ s: 'named' })).toEqual({
      s: 'named',
      n: 5,
      r: 1.5,
    });
    db.prepare('INSERT INTO t (s, n) VALUES (?, ?)').run('u', undefined as unknown as null);
    expect(db.prepare("SELECT n FROM t WHERE s = 'u'").get()).toEqual({ n: null });
  });

  it('refuses booleans (the journals write 1 and 0)', () => {
    expect(() => db.prepare('INSERT INTO t (n) VALUES (?)').run(true as unknown as number)).toThrow();
    expect(db.prepare('SELECT COUNT(*) AS c FROM t').get()).toEqual({ c: 0 });
  });

  it('reads integers beyond 2^53 exactly as bigints with safeIntegers(), and switches back', () => {
    db.prepare('INSERT INTO t (s, n, r) VALUES (?, ?, ?)').run('big', 9007199254740993n, 0.5);
    db.prepare('INSERT INTO t (s, n) VALUES (?, ?)').run('max', 9223372036854775807n);
    db.prepare('INSERT INTO t (s, n) VALUES (?, ?)').run('cents', 1999);
    const all = db.prepare('SELECT s, n, r FROM t ORDER BY id');
    expect(all.safeIntegers()).toBe(all);
    expect(all.all()).toEqual([
      { s: 'big', n: 9007199254740993n, r: 0.5 },
      { s: 'max', n: 9223372036854775807n, r: null },
      { s: 'cents', n: 1999n, r: null },
    ]);
    const one = db.prepare('SELECT n FROM t WHERE s = ?').safeIntegers();
    expect(one.get('big')).toEqual({ n: 9007199254740993n });
    expect(one.safeIntegers(false).get('cents')).toEqual({ n: 1999 });
    // What SQLite holds is exact: only the default reading of a number loses (or refuses) it.
    expect(db.prepare("SELECT CAST(n AS TEXT) AS n FROM t WHERE s = 'big'").get()).toEqual({
      n: '9007199254740993',
    });
  });

  it.each([
    ['SELECT s FROM t', true, true],
    ['INSERT INTO t (s) VALUES (?)', false, false],
    ['INSERT INTO t (s) VALUES (?) RETURNING id', true, false],
    ['UPDATE t SET n = 1', false, false],
    ['DELETE FROM t WHERE id = ?', false, false],
    ['CREATE TABLE u (x)', false, false],
    ['PRAGMA synchronous', true, true],
    ['PRAGMA user_version = 3', false, false],
    ['WITH x AS (SELECT 1 AS v) SELECT v FROM x', true, true],
    ['/* a comment */ SELECT 1', true, true],
    ['EXPLAIN QUERY PLAN SELECT s FROM t', true, true],
    [' -- a comment\n EXPLAIN SELECT s FROM t', true, true],
    ['EXPLAIN INSERT INTO t (s) VALUES (1)', true, false],
    ['BEGIN', false, true],
    // It takes the write lock: SQLite counts it as a write.
    ['BEGIN IMMEDIATE', false, false],
    ['SAVEPOINT caller', false, true],
  ])('tells whether %s answers rows (%s) and changes nothing (%s)', (sql, reader, readonly) => {
    const statement = db.prepare(sql);
    expect({ reader: statement.reader, readonly: statement.readonly }).toEqual({ reader, readonly });
    // Asking does not run it.
    expect(db.prepare('SELECT COUNT(*) AS c FROM t').get()).toEqual({ c: 0 });
    expect(db.inTransaction).toBe(false);
  });

  it('exec() runs several statements', () => {
    db.exec("INSERT INTO t (s) VALUES ('a'); INSERT INTO t (s) VALUES ('b');");
    expect(db.prepare('SELECT COUNT(*) AS c FROM t').get()).toEqual({ c: 2 });
  });

  describe('transaction()', () => {
    const count = () => (db.prepare('SELECT COUNT(*) AS c FROM t').get() as { c: number }).c;
    const insert = (s: string) => db.prepare('INSERT INTO t (s) VALUES (?)').run(s);

    it('commits what the function wrote and answers what it returned, with its arguments', () => {
      expect(db.inTransaction).toBe(false);
      const tx = db.transaction((a: string, b: string) => {
        expect(db.inTransaction).toBe(true);
        insert(a);
        insert(b);
        return 'done';
      });
      expect(tx('a', 'b')).toBe('done');
      expect(db.inTransaction).toBe(false);
      expect(count()).toBe(2);
    });

    it('rolls back everything the function wrote when it throws, and throws the same error', () => {
      const boom = new Error('boom');
      expect(() =>
        db.transaction(() => {
          insert('a');
          throw boom;
        })(),
      ).toThrow(boom);
      expect(db.inTransaction).toBe(false);
      expect(count()).toBe(0);
    });

    it('rolls back when a statement fails inside it', () => {
      db.exec('CREATE TABLE u (k TEXT PRIMARY KEY)');
      const put = db.prepare('INSERT INTO u (k) VALUES (?)');
      expect(() =>
        db.transaction(() => {
          put.run('k1');
          put.run('k1');
        })(),
      ).toThrow(/UNIQUE/);
      expect(db.prepare('SELECT COUNT(*) AS c FROM u').get()).toEqual({ c: 0 });
      expect(db.inTransaction).toBe(false);
    });

    it('nests as a savepoint: an inner failure undoes the inner writes only, the outer commits', () => {
      const inner = db.transaction((fail: boolean) => {
        insert('inner');
        if (fail) throw new Error('inner failed');
      });
      db.transaction(() => {
        insert('outer');
        inner(false);
        expect(() => inner(true)).toThrow('inner failed');
        expect(db.inTransaction).toBe(true);
        insert('outer again');
      })();
      expect(db.prepare('SELECT s FROM t ORDER BY id').all()).toEqual([
        { s: 'outer' },
        { s: 'inner' },
        { s: 'outer again' },
      ]);
    });

    it('an outer failure undoes inner work that had succeeded', () => {
      const inner = db.transaction(() => insert('inner'));
      expect(() =>
        db
          .transaction(() => {
            inner();
            throw new Error('outer failed');
          })
          .immediate(),
      ).toThrow('outer failed');
      expect(count()).toBe(0);
    });

    it('immediate() takes the write lock at BEGIN, deferred() at the first write', () => {
      const other = driver.open(file);
      try {
        other.pragma('busy_timeout = 0');
        db.transaction(() => {
          expect(() => other.exec('BEGIN IMMEDIATE')).toThrow(/locked|busy/i);
        }).immediate();
        db.transaction(() => {
          other.exec('BEGIN IMMEDIATE');
          other.exec('ROLLBACK');
        }).deferred();
        db.transaction(() => {
          expect(() => other.exec('BEGIN IMMEDIATE')).toThrow(/locked|busy/i);
        }).exclusive();
      } finally {
        other.close();
      }
    });

    it('refuses a function that returns a promise, and rolls its writes back', () => {
      expect(() =>
        db.transaction(() => {
          insert('a');
          return Promise.resolve();
        })(),
      ).toThrow(TypeError);
      expect(db.inTransaction).toBe(false);
      expect(count()).toBe(0);
    });
  });

  it('opens read-only, and refuses a missing file with fileMustExist', () => {
    db.prepare('INSERT INTO t (s) VALUES (?)').run('kept');
    const ro = driver.open(file, { readonly: true });
    try {
      expect(ro.prepare('SELECT s FROM t').all()).toEqual([{ s: 'kept' }]);
      expect(() => ro.prepare("INSERT INTO t (s) VALUES ('no')").run()).toThrow(/readonly/);
    } finally {
      ro.close();
    }
    expect(() => driver.open(join(dir, 'missing.db'), { fileMustExist: true })).toThrow(
      'unable to open database file',
    );
    expect(existsSync(join(dir, 'missing.db'))).toBe(false);
  });

  it('opens in memory', () => {
    const mem = driver.open(':memory:');
    try {
      expect(mem.name).toBe(':memory:');
      mem.exec('CREATE TABLE m (x)');
      expect(mem.prepare('INSERT INTO m VALUES (1)').run()).toEqual({ changes: 1, lastInsertRowid: 1 });
    } finally {
      mem.close();
    }
  });

  it('refuses statements after close()', () => {
    db.close();
    expect(() => db.prepare('SELECT 1')).toThrow();
  });
});

describe('sqliteDriver (which driver a process uses)', () => {
  const better = loadSqliteDriver('better-sqlite3');
  const node = loadSqliteDriver('node');

  it('takes better-sqlite3 when it loads, else node:sqlite', () => {
    const expected = 'driver' in better ? 'better-sqlite3' : 'driver' in node ? 'node' : undefined;
    if (expected) expect(sqliteDriver({}).name).toBe(expected);
    else expect(() => sqliteDriver({})).toThrow(SetupError);
  });

  it(`takes the one ${SQLITE_DRIVER_VARIABLE} names when it is there`, () => {
    if ('driver' in better)
      expect(sqliteDriver({ PAYCONNECT_SQLITE: 'better-sqlite3' }).name).toBe('better-sqlite3');
    if ('driver' in node) expect(sqliteDriver({ PAYCONNECT_SQLITE: 'node' }).name).toBe('node');
  });

  it(`refuses a forced driver that is not there, naming ${SQLITE_DRIVER_VARIABLE} and the Node it needs`, () => {
    const missing = (['better-sqlite3', 'node'] as const).filter((n) => 'error' in loadSqliteDriver(n));
    for (const n of missing) {
      let error: unknown;
      try {
        sqliteDriver({ PAYCONNECT_SQLITE: n });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SetupError);
      expect(error).toMatchObject({
        code: 'setup.sqlite_driver_unavailable',
        subject: SQLITE_DRIVER_VARIABLE,
      });
      expect((error as Error).message).toContain(`${SQLITE_DRIVER_VARIABLE}=${n}, but`);
      expect((error as Error).message).toContain('Node 22.5 or newer');
    }
  });

  it('refuses an unknown driver name', () => {
    expect(() => sqliteDriver({ PAYCONNECT_SQLITE: 'sqlite3' })).toThrow(SetupError);
    expect(() => sqliteDriver({ PAYCONNECT_SQLITE: 'sqlite3' })).toThrow(
      `${SQLITE_DRIVER_VARIABLE}=sqlite3 is not a SQLite driver: use better-sqlite3 or node`,
    );
  });
});
