/**
 * The SQLite engine's group commit, on real database files: callers share a COMMIT, each is answered only
 * once its writes are committed (another connection can read them), a caller that fails is undone alone,
 * and a write outside a transaction joins the group (or, with synchronous=NORMAL, commits at once). Integers
 * are read exactly or refused.
 *
 * Once per driver of the storage seam (src/device/sqlite-driver.ts), with the same answers: a half runs
 * where its driver loads, and under CI=true neither may skip where CI means it to run, as in
 * src/device/sqlite-driver.spec.ts (better-sqlite3 but in the Node 22 run, node:sqlite on Node ≥ 22.5).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadSqliteDriver,
  SQLITE_DRIVER_VARIABLE,
  SqliteDriver,
  SqliteDriverName,
} from '../../device/sqlite-driver';
import { SqliteDb } from './sqlite';

const [major, minor] = process.versions.node.split('.').map(Number);
const required: Record<SqliteDriverName, boolean> = {
  'better-sqlite3': process.env.CI === 'true' && process.env[SQLITE_DRIVER_VARIABLE] !== 'node',
  node: process.env.CI === 'true' && (major > 22 || (major === 22 && minor >= 5)),
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-sqlite-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;

describe.each(['better-sqlite3', 'node'] as const)('SqliteDb on %s', (name) => {
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

  async function freshDb(opts?: {
    synchronous?: 'FULL' | 'NORMAL';
  }): Promise<{ db: SqliteDb; path: string }> {
    const path = join(dir, `t${n++}.db`);
    const db = new SqliteDb(path, { ...opts, driver });
    await db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    return { db, path };
  }

  /** What another connection (another process would see the same) reads from the file right now. */
  function committed(path: string): string[] {
    const other = driver.open(path, { readonly: true, fileMustExist: true });
    try {
      return (other.prepare('SELECT k FROM t ORDER BY k').all() as { k: string }[]).map((r) => r.k);
    } finally {
      other.close();
    }
  }

  it('keeps synchronous=FULL and WAL on the server journal', async () => {
    const { db, path } = await freshDb();
    expect(db.driver).toBe(name);
    const raw = driver.open(path);
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
    const rows = await db.query<{ synchronous: number }>('PRAGMA synchronous');
    expect(rows[0].synchronous).toBe(2); // FULL
    await db.close();
  });

  it('keeps a payment it answered after closing and opening the file again', async () => {
    const { db, path } = await freshDb();
    await db.tx((q) => q.run('INSERT INTO t (k, v) VALUES ($1, $2)', ['p-1', 1999]));
    await db.close();
    const again = new SqliteDb(path, { driver });
    expect(await again.query('SELECT k, v FROM t')).toEqual([{ k: 'p-1', v: 1999 }]);
    await again.close();
  });

  it('reads integers exactly up to 2^53 − 1, and refuses a row holding a larger one instead of rounding it', async () => {
    const { db } = await freshDb();
    const max = Number.MAX_SAFE_INTEGER;
    await db.run('INSERT INTO t (k, v) VALUES ($1, $2), ($3, $4)', ['max', max, 'min', -max]);
    expect(await db.query('SELECT k, v FROM t ORDER BY v')).toEqual([
      { k: 'min', v: -max },
      { k: 'max', v: max },
    ]);
    // 2^53 + 1 as SQLite holds it (a JS number cannot be it): better-sqlite3 alone would read 2^53.
    await db.run("INSERT INTO t (k, v) VALUES ('big', 9007199254740993)");
    await expect(db.query('SELECT k, v FROM t WHERE k = $1', ['big'])).rejects.toThrow(
      'column v: INTEGER 9007199254740993 is outside the safe integer range',
    );
    await expect(db.tx((q) => q.query('SELECT v + 1 AS w FROM t WHERE k = $1', ['max']))).rejects.toThrow(
      'column w: INTEGER 9007199254740992 is outside the safe integer range',
    );
    // Exact as TEXT, as the reports read sums; REALs stay numbers.
    expect(await db.query("SELECT CAST(v AS TEXT) AS v, 1.5 AS r FROM t WHERE k = 'big'")).toEqual([
      { v: '9007199254740993', r: 1.5 },
    ]);
    expect(await db.run('DELETE FROM t WHERE k = $1', ['big'])).toEqual({ changes: 1 });
    await db.close();
  });

  it('lets transactions that arrive together share one COMMIT, and answers each only once it is committed', async () => {
    const { db, path } = await freshDb();
    const before = { ...db.stats };
    const seen: string[][] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        db
          .tx(async (q) => {
            await q.run('INSERT INTO t (k, v) VALUES ($1, $2)', [`k${i}`, i]);
            return i;
          })
          // When a caller hears back, its row is in the file for everyone.
          .then(() => seen.push(committed(path))),
      ),
    );
    expect(seen.every((rows) => rows.length === 10)).toBe(true);
    expect(db.stats.transactions - before.transactions).toBe(10);
    expect(db.stats.commits - before.commits).toBe(1);
    await db.close();
  });

  it('undoes a failing caller alone; the others in its batch commit', async () => {
    const { db, path } = await freshDb();
    const results = await Promise.allSettled([
      db.tx((q) => q.run('INSERT INTO t (k, v) VALUES ($1, 1)', ['a'])),
      db.tx(async (q) => {
        await q.run('INSERT INTO t (k, v) VALUES ($1, 2)', ['b']);
        throw new Error('the caller changed its mind');
      }),
      db.tx((q) => q.run('INSERT INTO t (k, v) VALUES ($1, 3)', ['a'])), // duplicate key: SQLite refuses
      db.tx((q) => q.run('INSERT INTO t (k, v) VALUES ($1, 4)', ['c'])),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('the caller changed its mind');
    expect(String((results[2] as PromiseRejectedResult).reason.message)).toMatch(/UNIQUE/);
    expect(committed(path)).toEqual(['a', 'c']);
    expect(await db.query('SELECT v FROM t WHERE k = $1', ['a'])).toEqual([{ v: 1 }]);
    await db.close();
  });

  it('sends a write outside a transaction through the group commit; a read runs at once', async () => {
    const { db, path } = await freshDb();
    const before = { ...db.stats };
    const writes = [
      db.run('INSERT INTO t (k, v) VALUES ($1, 1)', ['x']),
      db.query('INSERT INTO t (k, v) VALUES ($1, 2) RETURNING k', ['y']),
    ];
    expect(await writes[1]).toEqual([{ k: 'y' }]);
    expect(await writes[0]).toEqual({ changes: 1 });
    expect(committed(path)).toEqual(['x', 'y']);
    expect(db.stats.transactions - before.transactions).toBe(2);
    const afterWrites = { ...db.stats };
    expect(await db.query('SELECT COUNT(*) AS n FROM t')).toEqual([{ n: 2 }]);
    expect(db.stats).toEqual(afterWrites);
    await db.close();
  });

  it('with synchronous=NORMAL (a ledger that is not the journal) commits a single write at once', async () => {
    const { db, path } = await freshDb({ synchronous: 'NORMAL' });
    expect((await db.query<{ synchronous: number }>('PRAGMA synchronous'))[0].synchronous).toBe(1);
    await db.run('INSERT INTO t (k, v) VALUES ($1, 1)', ['n']);
    expect(committed(path)).toEqual(['n']);
    expect(db.stats.commits).toBe(0); // not a group commit: SQLite's own autocommit
    await db.tx((q) => q.run('INSERT INTO t (k, v) VALUES ($1, 2)', ['m']));
    expect(committed(path)).toEqual(['m', 'n']);
    await db.close();
  });

  it('fails every caller of a batch whose COMMIT fails, and leaves nothing of theirs', async () => {
    const { db, path } = await freshDb();
    await db.exec(
      'CREATE TABLE parent (id TEXT PRIMARY KEY); ' +
        'CREATE TABLE child (id TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)',
    );
    // A deferred foreign key is checked at COMMIT: the second caller's orphan fails the whole batch.
    const results = await Promise.allSettled([
      db.tx((q) => q.run('INSERT INTO t (k, v) VALUES ($1, 1)', ['a'])),
      db.tx((q) => q.run('INSERT INTO child (id) VALUES ($1)', ['orphan'])),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason.message)).toMatch(/FOREIGN KEY/);
    expect(committed(path)).toEqual([]);
    // The connection is usable again.
    await db.tx((q) => q.run('INSERT INTO t (k, v) VALUES ($1, 1)', ['b']));
    expect(committed(path)).toEqual(['b']);
    await db.close();
  });

  it('rejects (not throws) a statement SQLite cannot prepare, naming the problem', async () => {
    const { db } = await freshDb();
    // (Matched by message: better-sqlite3's error class may come from another test file's module realm.)
    const p = db.query('SELECT nope FROM t');
    await expect(p).rejects.toMatchObject({ message: expect.stringMatching(/no such column: nope/) });
    await expect(db.run('INSERT INTO missing (k) VALUES ($1)', ['z'])).rejects.toMatchObject({
      message: expect.stringMatching(/no such table: missing/),
    });
    await db.close();
  });

  it('binds $n placeholders in any order and reused, as PostgreSQL does', async () => {
    const { db } = await freshDb();
    expect(await db.query('SELECT $2 AS x, $1 AS y, $2 AS z', ['a', 'b'])).toEqual([
      { x: 'b', y: 'a', z: 'b' },
    ]);
    expect(await db.query('SELECT $1 AS yes, $2 AS no', [true, false])).toEqual([{ yes: 1, no: 0 }]);
    await db.run('INSERT INTO t (k, v) VALUES ($2, $1)', [7, 'seven']);
    expect(await db.query('SELECT k, v FROM t WHERE v = $1 AND k = $2 AND v = $1', [7, 'seven'])).toEqual([
      { k: 'seven', v: 7 },
    ]);
    await db.close();
  });
});
