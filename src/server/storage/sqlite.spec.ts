/**
 * The SQLite engine's group commit, on real database files: callers share a COMMIT, each is answered only
 * once its writes are committed (another connection can read them), a caller that fails is undone alone,
 * and a write outside a transaction joins the group (or, with synchronous=NORMAL, commits at once).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteDb } from './sqlite';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-sqlite-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function freshDb(opts?: { synchronous?: 'FULL' | 'NORMAL' }): Promise<{ db: SqliteDb; path: string }> {
  const path = join(dir, `t${n++}.db`);
  const db = new SqliteDb(path, opts);
  await db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
  return { db, path };
}

/** What another connection (another process would see the same) reads from the file right now. */
function committed(path: string): string[] {
  const other = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (other.prepare('SELECT k FROM t ORDER BY k').all() as { k: string }[]).map((r) => r.k);
  } finally {
    other.close();
  }
}

describe('SqliteDb group commit', () => {
  it('keeps synchronous=FULL and WAL on the server journal', async () => {
    const { db, path } = await freshDb();
    const raw = new Database(path);
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
    const rows = await db.query<{ synchronous: number }>('PRAGMA synchronous');
    expect(rows[0].synchronous).toBe(2); // FULL
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
