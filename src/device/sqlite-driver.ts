/**
 * The storage seam of the device journals (the plugin's `plugin.db`, the unit's `terminal.db`): the SQLite
 * operations they use, and which library runs them.
 *
 * - `better-sqlite3` (native addon, built at install for the Node it was installed with): the default
 *   wherever it loads — on Node 20 it is the only choice.
 * - `node`: Node's built-in `node:sqlite` (DatabaseSync, Node ≥ 22.5), for installs without a native
 *   build step: the Windows package ships Node 22 and no compiler, and better-sqlite3 built for another
 *   Node fails to load there.
 *
 * Choice: better-sqlite3 when it loads (opening a `:memory:` database, since its addon loads only then),
 * else node:sqlite. `PAYCONNECT_SQLITE=better-sqlite3|node` forces one; a forced driver that is not
 * there is a SetupError naming the variable, never a silent fallback.
 *
 * The contract is better-sqlite3's own API, cut down to what the journals use, so that the journal code
 * reads the same on both and the node:sqlite driver makes up the differences (row objects with a plain
 * prototype, BLOBs as Buffer, `transaction()` with better-sqlite3's semantics, `pragma()`, the busy
 * timeout). src/device/sqlite-driver.spec.ts runs one suite over both drivers.
 *
 * Values bound: string, number, bigint, null, Buffer/Uint8Array — not booleans (both drivers refuse them:
 * write 1/0) and not undefined (write null). Named parameters (`@name`, `:name`, `$name`) are given as
 * one object whose keys have no prefix. Integers are read as numbers: the journals keep cents and epoch
 * milliseconds, far below 2^53. Beyond 2^53 the drivers differ — better-sqlite3 rounds the number
 * (2^53 + 1 reads as 2^53), node:sqlite throws — so a reader that must be exact there (the payment
 * server's amounts) turns on `safeIntegers()` and reads every integer as a bigint, the same on both.
 *
 * The payment server's store (src/server/storage/sqlite.ts) also uses the seam: it runs its own BEGIN
 * IMMEDIATE/SAVEPOINT/COMMIT as statements (its transactions span awaits, which `transaction()` cannot),
 * and asks each statement whether it answers rows (`reader`) and whether it writes (`readonly`).
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { NodeSqliteModule } from './node-sqlite-driver';
import { SetupError } from './setup-error';

export type SqliteDriverName = 'better-sqlite3' | 'node';

export type SqliteValue = string | number | bigint | null | Buffer | Uint8Array;
/** Positional values, or one object of named values (keys without `@`/`:`/`$`). */
export type SqliteParams = SqliteValue[] | [Record<string, SqliteValue>];

export interface SqliteRunResult {
  /** Rows inserted, updated or deleted by the statement. */
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface SqliteStatement {
  /**
   * True when the statement answers rows (a SELECT, a write with RETURNING, a PRAGMA that reads): read
   * those with get()/all(); run() would drop them.
   */
  readonly reader: boolean;
  /** True when the statement changes nothing in the database (SQLite's `sqlite3_stmt_readonly`). */
  readonly readonly: boolean;
  run(...params: SqliteParams): SqliteRunResult;
  /** The first row, or undefined when there is none. */
  get(...params: SqliteParams): unknown;
  all(...params: SqliteParams): unknown[];
  /**
   * From now on this statement reads every INTEGER as a bigint (`true`, the default argument) or as a
   * number (`false`, how a statement starts). REALs stay numbers. Answers the statement itself.
   */
  safeIntegers(toggle?: boolean): this;
}

/**
 * `db.transaction(fn)`: as better-sqlite3's. Calling it runs `fn` in a transaction (BEGIN, or BEGIN
 * IMMEDIATE/EXCLUSIVE through the variants) that commits when `fn` returns and rolls back when it throws;
 * called inside another transaction it runs in a SAVEPOINT instead, so a nested failure undoes only its
 * own writes. `fn` must be synchronous: a function returning a promise is refused.
 */
export interface SqliteTransaction<A extends unknown[], R> {
  (...args: A): R;
  deferred(...args: A): R;
  immediate(...args: A): R;
  exclusive(...args: A): R;
}

export interface SqliteDatabase {
  /** The file as it was opened (`:memory:` for one in memory). */
  readonly name: string;
  readonly driver: SqliteDriverName;
  /** True between BEGIN and COMMIT/ROLLBACK. */
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
  /** Runs one or more statements, no parameters, no results. */
  exec(sql: string): void;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): SqliteTransaction<A, R>;
  /** `PRAGMA <source>`: its rows, or with `simple` the first column of the first row. */
  pragma(source: string): unknown[];
  pragma(source: string, options: { simple: true }): unknown;
  close(): void;
}

export interface SqliteOpenOptions {
  readonly?: boolean;
  /** Refuse to create the file. */
  fileMustExist?: boolean;
}

export interface SqliteDriver {
  readonly name: SqliteDriverName;
  open(file: string, options?: SqliteOpenOptions): SqliteDatabase;
}

export const SQLITE_DRIVER_VARIABLE = 'PAYCONNECT_SQLITE';

/** A driver, or why it is not there. */
export type LoadedSqliteDriver = { driver: SqliteDriver } | { error: string };

const loaders: Record<SqliteDriverName, () => LoadedSqliteDriver> = {
  'better-sqlite3': () => {
    let Database: typeof BetterSqlite3;
    try {
      Database = require('better-sqlite3') as typeof BetterSqlite3;
      // The native addon loads on the first open, not on require: a binary built for another Node's ABI
      // fails only here.
      new Database(':memory:').close();
    } catch (e) {
      return {
        error: `better-sqlite3 does not load on Node ${process.versions.node}: ${oneLine(e)}`,
      };
    }
    const { betterSqlite3Driver } =
      require('./better-sqlite3-driver') as typeof import('./better-sqlite3-driver');
    return { driver: betterSqlite3Driver(Database) };
  },
  node: () => {
    let sqlite: NodeSqliteModule;
    try {
      sqlite = requireNodeSqlite();
    } catch (e) {
      return {
        error: `node:sqlite needs Node 22.5 or newer, this is Node ${process.versions.node} (${oneLine(e)})`,
      };
    }
    const { nodeSqliteDriver } = require('./node-sqlite-driver') as typeof import('./node-sqlite-driver');
    return { driver: nodeSqliteDriver(sqlite) };
  },
};

/**
 * `require('node:sqlite')`, without the ExperimentalWarning Node 22 prints on stderr the first time: the
 * Windows service's stderr may be no pipe at all, and the module is the one this install is meant to use.
 * Any other warning passes.
 */
function requireNodeSqlite(): NodeSqliteModule {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if ((type ?? (warning as Error).name) === 'ExperimentalWarning' && /SQLite/.test(text)) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return require('node:sqlite') as NodeSqliteModule;
  } finally {
    process.emitWarning = emit;
  }
}

/** An error's message on one line, without its final full stop (it is quoted inside a sentence). */
function oneLine(e: unknown): string {
  return String((e as Error).message ?? e)
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\.+$/, '');
}

const loaded = new Map<SqliteDriverName, LoadedSqliteDriver>();

/** Loads one driver (once per process); undefined with the reason when it is not there. */
export function loadSqliteDriver(name: SqliteDriverName): LoadedSqliteDriver {
  let l = loaded.get(name);
  if (!l) {
    l = loaders[name]();
    loaded.set(name, l);
  }
  return l;
}

/**
 * The driver this process uses: `PAYCONNECT_SQLITE` when set, else better-sqlite3 when it loads, else
 * node:sqlite. Throws a SetupError when none is there, or the forced one is not.
 */
export function sqliteDriver(env: NodeJS.ProcessEnv = process.env): SqliteDriver {
  const forced = env[SQLITE_DRIVER_VARIABLE];
  if (forced !== undefined && forced !== '') {
    if (forced !== 'better-sqlite3' && forced !== 'node')
      throw new SetupError(
        'setup.sqlite_driver_unknown',
        `${SQLITE_DRIVER_VARIABLE}=${forced} is not a SQLite driver: use better-sqlite3 or node (Node's built-in ` +
          `node:sqlite, Node 22.5 or newer), or leave it unset to take better-sqlite3 when it loads`,
        { subject: SQLITE_DRIVER_VARIABLE },
      );
    const l = loadSqliteDriver(forced);
    if ('error' in l)
      throw new SetupError(
        'setup.sqlite_driver_unavailable',
        `${SQLITE_DRIVER_VARIABLE}=${forced}, but ${l.error}. ` +
          (forced === 'node'
            ? 'Run payconnect on Node 22.5 or newer, or unset the variable to use better-sqlite3'
            : 'Reinstall payconnect with this Node (npm ci builds better-sqlite3 for it), or set ' +
              `${SQLITE_DRIVER_VARIABLE}=node on Node 22.5 or newer`),
        { subject: SQLITE_DRIVER_VARIABLE },
      );
    return l.driver;
  }
  const better = loadSqliteDriver('better-sqlite3');
  if ('driver' in better) return better.driver;
  const node = loadSqliteDriver('node');
  if ('driver' in node) return node.driver;
  throw new SetupError(
    'setup.sqlite_driver_unavailable',
    `no SQLite driver: ${better.error}, and ${node.error}. Reinstall payconnect with this Node (npm ci ` +
      'builds better-sqlite3 for it), or run it on Node 22.5 or newer',
    { subject: SQLITE_DRIVER_VARIABLE },
  );
}

/** Opens a SQLite database with the driver this process uses (sqliteDriver()). */
export function openSqlite(file: string, options?: SqliteOpenOptions): SqliteDatabase {
  return sqliteDriver().open(file, options);
}
