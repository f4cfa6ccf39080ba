/**
 * Versioned schema migrations for a device's journal (the plugin's `plugin.db`, the unit's `terminal.db`):
 * the device-side counterpart of src/server/storage/migrations.ts. A journal lives for years on a shop's
 * register PC or unit and is upgraded in place by each new install, so its schema changes only by adding
 * a migration at the end of its list; a migration, once released, is never edited.
 *
 * - Each migration is applied once, in order, in its own transaction together with its row in
 *   `schema_migrations (version, name, applied_at)`: a crash mid-migration leaves the journal at the
 *   version before, and the next start applies it again.
 * - A journal whose recorded version is newer than this code knows (the app was downgraded under it) is
 *   refused before anything is written: an older app would misread columns it does not know, or drop
 *   work a newer one journaled, so it must not run on it at all.
 * - A journal created before versioned migrations existed (its tables are there, `schema_migrations` is
 *   not) is at version 1, the baseline: version 1 is recorded without re-creating anything, then later
 *   migrations apply as to any other journal.
 */
import { PayconnectError } from '../protocol/errors';
import { openDeviceDatabase } from './device-files';
import { openSqlite, SqliteDatabase } from './sqlite-driver';
import { cachingStatements } from './statement-cache';

export interface DeviceMigration {
  version: number;
  name: string;
  /** SQL, or code for a change SQL alone cannot make. Runs inside the migration's transaction. */
  up: string | ((db: SqliteDatabase) => void);
}

/**
 * The journal was written by a newer payconnect than this one. A PayconnectError, so the CLI prints the
 * message (what to do) rather than a stack trace.
 */
export class DeviceSchemaTooNewError extends PayconnectError {
  constructor(
    readonly file: string,
    readonly found: number,
    readonly known: number,
  ) {
    super(
      'journal.schema_too_new',
      `${file} is at schema version ${found}, but this payconnect knows versions up to ${known} only: ` +
        `the journal was written by a newer payconnect (was the app downgraded?). It was not opened and ` +
        `nothing in it was changed; install the version that wrote it, or a newer one, and start again`,
      { subject: file },
    );
  }
}

/** The journal has no recorded version and holds tables this code cannot take as its own. */
export class DeviceSchemaError extends PayconnectError {
  constructor(file: string, message: string) {
    super('journal.schema_unknown', message, { subject: file });
  }
}

export interface MigrationOutcome {
  /** Version 1 was recorded for a journal that predates versioned migrations. */
  adopted: boolean;
  /** The versions applied now (an adopted baseline is not among them: nothing of it ran). */
  applied: number[];
}

const TRACK =
  'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)';

/**
 * Opens a device journal in its private data folder (openDeviceDatabase) and brings its schema up to
 * `migrations`. A journal that cannot be migrated is closed again before the error is thrown, so a
 * refused start leaves no handle (and no WAL) behind.
 */
/** A device journal's page cache, in KiB (`PRAGMA cache_size` takes it negative: a size, not pages). */
export const DEVICE_JOURNAL_CACHE_KIB = 2000;

export function openDeviceJournal(
  dir: string,
  name: string,
  migrations: DeviceMigration[],
  warn?: (line: string) => void,
): SqliteDatabase {
  const db = openDeviceDatabase(dir, name, warn);
  try {
    // Every state change is journaled before it is acted on, so a commit must be on disk when it returns.
    db.pragma('synchronous = FULL');
    // Read back (2 is FULL): a durability setting that did not take must stop the start, not pass unseen.
    const synchronous = db.pragma('synchronous', { simple: true });
    if (Number(synchronous) !== 2)
      throw new Error(`${db.name}: synchronous is ${String(synchronous)}, not FULL (2)`);
    // SQLite's page cache, the same on both drivers (better-sqlite3 builds SQLite with 16 MB per connection,
    // node:sqlite with 2 MB): a device holds its journal's cache for as long as it runs, and with every
    // everyday query on an index (docs/architecture.md) the pages it reads again are few.
    db.pragma(`cache_size = -${DEVICE_JOURNAL_CACHE_KIB}`);
    const cache = Number(db.pragma('cache_size', { simple: true }));
    if (cache !== -DEVICE_JOURNAL_CACHE_KIB)
      throw new Error(`${db.name}: cache_size is ${cache}, not -${DEVICE_JOURNAL_CACHE_KIB}`);
    migrateDeviceDatabase(db, migrations);
    return cachingStatements(db);
  } catch (e) {
    db.close();
    throw e;
  }
}

export function migrateDeviceDatabase(
  db: SqliteDatabase,
  migrations: DeviceMigration[],
  now: () => number = Date.now,
): MigrationOutcome {
  checkList(migrations);
  const known = migrations[migrations.length - 1].version;
  // Read-only until the version check passed: a journal from the future stays exactly as it was.
  let done = recordedVersions(db);
  const found = done && Math.max(0, ...done);
  if (found && found > known) throw new DeviceSchemaTooNewError(db.name, found, known);

  let adopted = false;
  if (!done && holdsAny(db, tablesOf(migrations[0]))) {
    adoptBaseline(db, migrations[0], now);
    adopted = true;
    done = recordedVersions(db);
  }

  const applied: number[] = [];
  for (const m of migrations) {
    if (done?.has(m.version)) continue;
    // IMMEDIATE: take the write lock before looking, so two processes opening one journal at once
    // cannot both apply the same migration.
    const ran = db
      .transaction(() => {
        db.exec(TRACK);
        if (db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version)) return false;
        if (typeof m.up === 'string') db.exec(m.up);
        else m.up(db);
        record(db, m.version, m.name, now);
        return true;
      })
      .immediate();
    if (ran) applied.push(m.version);
  }
  return { adopted, applied };
}

/** Versions 1, 2, 3… in order: a gap or a duplicate is a mistake in the code, found on the first test run. */
function checkList(migrations: DeviceMigration[]): void {
  if (migrations.length === 0) throw new Error('no migrations given');
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(
        `migration "${m.name}" has version ${m.version} where ${i + 1} was expected: versions run 1, 2, 3… in order`,
      );
  });
}

/** The versions recorded, or undefined when the journal has no `schema_migrations` table. */
function recordedVersions(db: SqliteDatabase): Set<number> | undefined {
  if (!tableExists(db, 'schema_migrations')) return undefined;
  const rows = db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[];
  return new Set(rows.map((r) => Number(r.version)));
}

function tableExists(db: SqliteDatabase, name: string): boolean {
  return !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name);
}

function holdsAny(db: SqliteDatabase, tables: Map<string, SchemaObject>): boolean {
  return [...tables.keys()].some((t) => tableExists(db, t));
}

interface SchemaObject {
  type: string;
  sql: string;
  columns: string[];
}

/** What migration 1 creates (tables and indexes with their SQL and columns), learnt by running it in memory. */
function tablesOf(baseline: DeviceMigration): Map<string, SchemaObject> {
  const mem = openSqlite(':memory:');
  try {
    if (typeof baseline.up === 'string') mem.exec(baseline.up);
    else baseline.up(mem);
    return schemaObjects(mem);
  } finally {
    mem.close();
  }
}

function schemaObjects(db: SqliteDatabase): Map<string, SchemaObject> {
  // sqlite_* objects (autoindexes, sqlite_sequence) come with the tables that need them.
  const rows = db
    .prepare(
      "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
    )
    .all() as { type: string; name: string; sql: string }[];
  return new Map(
    rows.map((r) => [
      r.name,
      {
        type: r.type,
        sql: r.sql,
        columns:
          r.type === 'table'
            ? (db.pragma(`table_info(${JSON.stringify(r.name)})`) as { name: string }[]).map((c) => c.name)
            : [],
      },
    ]),
  );
}

/**
 * Records version 1 for a journal made before versioned migrations. Its tables stay as they are, rows and
 * all. A table or index of the baseline it lacks is created, as the code of that time did on every start
 * (`CREATE TABLE IF NOT EXISTS`) — a journal from before the print queue, say, has no `print_jobs` — but a
 * table lacking one of the baseline's columns is not a journal this code knows, and is refused rather
 * than guessed at.
 */
function adoptBaseline(db: SqliteDatabase, baseline: DeviceMigration, now: () => number): void {
  const wanted = tablesOf(baseline);
  db.transaction(() => {
    if (tableExists(db, 'schema_migrations')) return; // another process adopted it meanwhile
    const present = schemaObjects(db);
    for (const [name, want] of wanted) {
      const have = present.get(name);
      if (!have) {
        db.exec(want.sql);
        continue;
      }
      const missing = want.columns.filter((c) => !have.columns.includes(c));
      if (missing.length > 0)
        throw new DeviceSchemaError(
          db.name,
          `${db.name} has no schema_migrations and its table ${name} lacks column(s) ${missing.join(', ')}: ` +
            `it is not a journal this payconnect wrote, and it was left as it was`,
        );
    }
    db.exec(TRACK);
    record(
      db,
      baseline.version,
      `${baseline.name} (found in place: created before versioned migrations)`,
      now,
    );
  }).immediate();
}

function record(db: SqliteDatabase, version: number, name: string, now: () => number): void {
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
    version,
    name,
    new Date(now()).toISOString(),
  );
}
