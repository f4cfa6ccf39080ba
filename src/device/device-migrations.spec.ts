import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEVICE_JOURNAL_CACHE_KIB,
  DeviceMigration,
  DeviceSchemaError,
  DeviceSchemaTooNewError,
  migrateDeviceDatabase,
  openDeviceJournal,
} from './device-migrations';
import { PayconnectError } from '../protocol/errors';
import { openSqlite, SqliteDatabase } from './sqlite-driver';

const T0 = Date.parse('2025-03-01T08:00:00.000Z');
const now = () => T0;

const V1: DeviceMigration = {
  version: 1,
  name: 'notes',
  up: `CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL);
       CREATE TABLE tags (note_id TEXT NOT NULL, tag TEXT NOT NULL);
       CREATE INDEX tags_note ON tags (note_id);`,
};
const V2: DeviceMigration = {
  version: 2,
  name: 'notes.pinned',
  up: 'ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0',
};
// Code, not SQL: what a data fix-up looks like.
const V3: DeviceMigration = {
  version: 3,
  name: 'pin notes tagged "top"',
  up: (db) => {
    db.prepare("UPDATE notes SET pinned = 1 WHERE id IN (SELECT note_id FROM tags WHERE tag = 'top')").run();
  },
};

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-device-migrations-'));
  file = join(dir, 'journal.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function open(): SqliteDatabase {
  return openSqlite(file);
}

function recorded(db: SqliteDatabase) {
  return db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all();
}

function tables(db: SqliteDatabase): string[] {
  return (
    db
      .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'")
      .all() as { name: string }[]
  )
    .map((r) => r.name)
    .sort();
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('migrateDeviceDatabase', () => {
  it('applies every migration to a new journal, in order, and records each', () => {
    const db = open();
    expect(migrateDeviceDatabase(db, [V1, V2, V3], now)).toEqual({ adopted: false, applied: [1, 2, 3] });
    expect(recorded(db)).toEqual([
      { version: 1, name: 'notes', applied_at: '2025-03-01T08:00:00.000Z' },
      { version: 2, name: 'notes.pinned', applied_at: '2025-03-01T08:00:00.000Z' },
      { version: 3, name: 'pin notes tagged "top"', applied_at: '2025-03-01T08:00:00.000Z' },
    ]);
    expect(tables(db)).toEqual(['notes', 'schema_migrations', 'tags', 'tags_note']);
    db.close();
  });

  it('does nothing on a journal that is up to date', () => {
    const db = open();
    migrateDeviceDatabase(db, [V1, V2], now);
    const before = recorded(db);
    expect(migrateDeviceDatabase(db, [V1, V2], () => T0 + 60_000)).toEqual({ adopted: false, applied: [] });
    expect(recorded(db)).toEqual(before);
    db.close();
  });

  it('applies only the new migrations to an older journal, keeping its rows', () => {
    const db = open();
    migrateDeviceDatabase(db, [V1, V2], now);
    db.exec("INSERT INTO notes (id, body) VALUES ('n1', 'first'), ('n2', 'second')");
    db.exec("INSERT INTO tags (note_id, tag) VALUES ('n2', 'top')");
    expect(migrateDeviceDatabase(db, [V1, V2, V3], now).applied).toEqual([3]);
    expect(db.prepare('SELECT id, body, pinned FROM notes ORDER BY id').all()).toEqual([
      { id: 'n1', body: 'first', pinned: 0 },
      { id: 'n2', body: 'second', pinned: 1 },
    ]);
    db.close();
  });

  it('rolls a failing migration back whole, records nothing for it, and applies it on the next start', () => {
    const db = open();
    const broken: DeviceMigration = {
      version: 2,
      name: 'two changes, the second fails',
      up: 'ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0; ALTER TABLE missing ADD COLUMN x TEXT',
    };
    expect(() => migrateDeviceDatabase(db, [V1, broken], now)).toThrow(/missing/);
    expect(recorded(db)).toEqual([{ version: 1, name: 'notes', applied_at: '2025-03-01T08:00:00.000Z' }]);
    // The first ALTER of the failed migration is gone too: applying the fixed one must not hit "duplicate column".
    expect(migrateDeviceDatabase(db, [V1, V2], now).applied).toEqual([2]);
    db.close();
  });

  it('refuses a journal from a newer payconnect, naming the file and both versions, and leaves it unchanged', () => {
    const setup = open();
    migrateDeviceDatabase(setup, [V1, V2, V3], now);
    setup.exec("INSERT INTO notes (id, body) VALUES ('n1', 'kept')");
    setup.prepare('INSERT INTO schema_migrations VALUES (99, ?, ?)').run('from the future', 'x');
    setup.close();
    const hash = sha256(file);

    const db = open();
    let error: unknown;
    try {
      migrateDeviceDatabase(db, [V1, V2], now);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DeviceSchemaTooNewError);
    // A PayconnectError with a code: the CLI prints its message and exits 1 instead of reporting a bug.
    expect(error).toBeInstanceOf(PayconnectError);
    expect(error).toMatchObject({ code: 'journal.schema_too_new', subject: file, file, found: 99, known: 2 });
    expect((error as Error).message).toContain(`${file} is at schema version 99`);
    expect((error as Error).message).toContain('knows versions up to 2');
    db.close();
    expect(sha256(file)).toBe(hash);
  });

  it('takes a journal made before versioned migrations as version 1 without touching its tables', () => {
    const setup = open();
    // V1's tables, exactly as pre-migration code made them, holding rows.
    setup.exec((V1.up as string).replace(/CREATE (TABLE|INDEX) /g, 'CREATE $1 IF NOT EXISTS '));
    setup.exec("INSERT INTO notes (id, body) VALUES ('n1', 'old'); INSERT INTO tags VALUES ('n1', 'top')");
    setup.close();

    const db = open();
    expect(migrateDeviceDatabase(db, [V1, V2, V3], now)).toEqual({ adopted: true, applied: [2, 3] });
    expect(recorded(db)).toEqual([
      {
        version: 1,
        name: 'notes (found in place: created before versioned migrations)',
        applied_at: '2025-03-01T08:00:00.000Z',
      },
      { version: 2, name: 'notes.pinned', applied_at: '2025-03-01T08:00:00.000Z' },
      { version: 3, name: 'pin notes tagged "top"', applied_at: '2025-03-01T08:00:00.000Z' },
    ]);
    expect(db.prepare('SELECT id, body, pinned FROM notes').all()).toEqual([
      { id: 'n1', body: 'old', pinned: 1 },
    ]);
    db.close();
  });

  it('creates a baseline table or index an old journal lacks, as the code of that time did on start', () => {
    const setup = open();
    setup.exec(
      "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL); INSERT INTO notes VALUES ('n1', 'old')",
    );
    setup.close();

    const db = open();
    expect(migrateDeviceDatabase(db, [V1], now)).toEqual({ adopted: true, applied: [] });
    expect(tables(db)).toEqual(['notes', 'schema_migrations', 'tags', 'tags_note']);
    expect(db.prepare('SELECT id, body FROM notes').all()).toEqual([{ id: 'n1', body: 'old' }]);
    db.close();
  });

  it('refuses an unversioned journal whose tables lack a column of the baseline, leaving it unchanged', () => {
    const setup = open();
    setup.exec("CREATE TABLE notes (id TEXT PRIMARY KEY); INSERT INTO notes VALUES ('n1')");
    setup.close();
    const hash = sha256(file);

    const db = open();
    expect(() => migrateDeviceDatabase(db, [V1], now)).toThrow(
      new DeviceSchemaError(
        file,
        `${file} has no schema_migrations and its table notes lacks column(s) body: ` +
          'it is not a journal this payconnect wrote, and it was left as it was',
      ),
    );
    expect(tables(db)).toEqual(['notes']);
    db.close();
    expect(sha256(file)).toBe(hash);
  });

  it('rejects a migration list whose versions do not run 1, 2, 3…', () => {
    const db = open();
    expect(() => migrateDeviceDatabase(db, [V1, V3], now)).toThrow(/version 3 where 2 was expected/);
    expect(() => migrateDeviceDatabase(db, [], now)).toThrow('no migrations given');
    expect(tables(db)).toEqual([]);
    db.close();
  });
});

describe('openDeviceJournal', () => {
  it('opens and migrates a journal in a private data folder', () => {
    const db = openDeviceJournal(join(dir, 'data'), 'j.db', [V1, V2]);
    expect((recorded(db) as { version: number }[]).map((r) => r.version)).toEqual([1, 2]);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('keeps every commit durable on the driver this environment selects: WAL and synchronous FULL took effect', () => {
    const db = openDeviceJournal(join(dir, 'data'), 'j.db', [V1]);
    try {
      // PAYCONNECT_SQLITE=node (CI's Node 22 run) must be obeyed here, not fall back to better-sqlite3.
      if (process.env.PAYCONNECT_SQLITE) expect(db.driver).toBe(process.env.PAYCONNECT_SQLITE);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
      db.prepare("INSERT INTO notes (id, body) VALUES ('n1', 'x')").run();
      expect(existsSync(join(dir, 'data', 'j.db-wal'))).toBe(true);
    } finally {
      db.close();
    }
  });

  it('holds the same 2 MB page cache on either driver (better-sqlite3 would hold 16 MB)', () => {
    const db = openDeviceJournal(join(dir, 'data'), 'j.db', [V1]);
    try {
      expect(db.pragma('cache_size', { simple: true })).toBe(-DEVICE_JOURNAL_CACHE_KIB);
      expect(DEVICE_JOURNAL_CACHE_KIB).toBe(2000);
    } finally {
      db.close();
    }
  });

  it('closes the journal it refuses, so nothing is left open or half-written', () => {
    const db = openDeviceJournal(join(dir, 'data'), 'j.db', [V1, V2]);
    db.prepare('INSERT INTO schema_migrations VALUES (99, ?, ?)').run('from the future', 'x');
    db.close();
    const path = join(dir, 'data', 'j.db');
    const hash = sha256(path);
    expect(() => openDeviceJournal(join(dir, 'data'), 'j.db', [V1, V2])).toThrow(DeviceSchemaTooNewError);
    // A connection left open would keep its -wal file; closing the last one removes it.
    expect(existsSync(`${path}-wal`)).toBe(false);
    expect(sha256(path)).toBe(hash);
  });
});
