/**
 * The node:sqlite driver of the storage seam (src/device/sqlite-driver.ts): Node's built-in DatabaseSync
 * (Node ≥ 22.5), made to answer as better-sqlite3 does where the journals could tell the difference:
 *
 * - rows are plain objects (node:sqlite's have a null prototype) and BLOBs are Buffers (not Uint8Array);
 * - `undefined` binds as NULL, as better-sqlite3 binds it (node:sqlite refuses it);
 * - `transaction(fn)` with better-sqlite3's semantics (BEGIN variants, SAVEPOINT when nested, rollback on
 *   a throw, a promise refused), which node:sqlite does not have;
 * - `pragma()`; a busy timeout of 5 s (better-sqlite3's default; node:sqlite's is 0, so a second process
 *   opening a journal mid-migration would fail at once instead of waiting for the first);
 * - a statement's `reader` and `readonly`, which node:sqlite does not tell: from its columns (Node ≥ 22.16)
 *   or its EXPLAIN program (before), worked out the first time they are asked — the journals never ask, the
 *   payment server once per statement it caches; `safeIntegers()` is node:sqlite's `setReadBigInts()`.
 *
 * Foreign keys (on) and double-quoted string literals (refused) are already the same on both. Integers
 * read as numbers on both; one beyond 2^53 throws here where better-sqlite3 rounds it — the journals keep
 * none, and the payment server reads with safeIntegers() (bigints on both).
 */
import { existsSync } from 'node:fs';
import type {
  SqliteDatabase,
  SqliteDriver,
  SqliteOpenOptions,
  SqliteParams,
  SqliteRunResult,
  SqliteStatement,
  SqliteTransaction,
} from './sqlite-driver';

/** What this file uses of node:sqlite (@types/node 20 does not declare the module). */
export interface NodeSqliteModule {
  DatabaseSync: new (file: string, options?: { readOnly?: boolean }) => DatabaseSync;
}
interface DatabaseSync {
  prepare(sql: string): StatementSync;
  exec(sql: string): void;
  close(): void;
}
interface StatementSync {
  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: unknown[]): Record<string, unknown> | undefined;
  all(...params: unknown[]): Record<string, unknown>[];
  setReadBigInts(enabled: boolean): void;
  /** Node ≥ 22.16 (and 23.11). */
  columns?(): unknown[];
}

/** better-sqlite3's default busy timeout, which node:sqlite (0) does not share. */
const BUSY_TIMEOUT_MS = 5000;
/** One name for every nesting level, as better-sqlite3 does: ROLLBACK TO/RELEASE take the innermost. */
const SAVEPOINT = '"\t_payconnect."';

function plainRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in row) {
    const v = row[key];
    out[key] =
      v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
  }
  return out;
}

function bindable(params: unknown[]): unknown[] {
  for (let i = 0; i < params.length; i++) if (params[i] === undefined) return params.map((p) => p ?? null);
  return params;
}

/**
 * What SQLite's `sqlite3_stmt_readonly()` answers, read from the statement's EXPLAIN program as SQLite
 * itself decides it (vdbeaux.c, resolveP2Values): a statement writes when it opens a write transaction
 * (Transaction with P2 ≠ 0) or checkpoints, vacuums, changes the journal mode or updates a virtual table.
 * BEGIN, COMMIT, SAVEPOINT and the like are read-only there too.
 */
const WRITING_OPCODES = new Set(['Checkpoint', 'Vacuum', 'JournalMode', 'VUpdate']);

const LEADING_SPACE_AND_COMMENTS = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;

interface ExplainRow {
  opcode: string;
  p2: number;
}

class NodeSqliteStatement implements SqliteStatement {
  private shape?: { reader: boolean; readonly: boolean };

  constructor(
    private readonly statement: StatementSync,
    private readonly sql: string,
    private readonly db: DatabaseSync,
  ) {}

  get reader(): boolean {
    return (this.shape ??= this.explain()).reader;
  }

  get readonly(): boolean {
    return (this.shape ??= this.explain()).readonly;
  }

  private explain(): { reader: boolean; readonly: boolean } {
    // An EXPLAIN statement answers rows and is as read-only as what it explains (SQLite compiles that);
    // EXPLAIN QUERY PLAN is read-only. EXPLAIN cannot be EXPLAINed: its own rows are the program.
    const text = this.sql.replace(LEADING_SPACE_AND_COMMENTS, '');
    if (/^EXPLAIN\s+QUERY\s+PLAN\b/i.test(text)) return { reader: true, readonly: true };
    const explained = /^EXPLAIN\b/i.test(text);
    const program = this.db
      .prepare(explained ? this.sql : `EXPLAIN ${this.sql}`)
      .all() as unknown as ExplainRow[];
    const readonly = !program.some(
      (op) => (op.opcode === 'Transaction' && op.p2 !== 0) || WRITING_OPCODES.has(op.opcode),
    );
    // The column count is what better-sqlite3 answers; ResultRow in the program says the same before 22.16.
    const reader = this.statement.columns
      ? this.statement.columns().length > 0
      : explained || program.some((op) => op.opcode === 'ResultRow');
    return { reader, readonly };
  }

  safeIntegers(toggle = true): this {
    this.statement.setReadBigInts(toggle);
    return this;
  }

  run(...params: SqliteParams): SqliteRunResult {
    const r = this.statement.run(...bindable(params));
    return { changes: Number(r.changes), lastInsertRowid: r.lastInsertRowid };
  }

  get(...params: SqliteParams): unknown {
    const row = this.statement.get(...bindable(params));
    return row === undefined ? undefined : plainRow(row);
  }

  all(...params: SqliteParams): unknown[] {
    return this.statement.all(...bindable(params)).map(plainRow);
  }
}

function isThenable(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

class NodeSqliteDatabase implements SqliteDatabase {
  readonly driver = 'node' as const;
  /**
   * Open transactions and savepoints of transaction(): node:sqlite before 22.16 cannot say whether a
   * transaction is open, so this one knows of those it began itself (the journals begin no others).
   */
  private depth = 0;

  constructor(
    private readonly db: DatabaseSync,
    readonly name: string,
  ) {}

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  prepare(sql: string): SqliteStatement {
    return new NodeSqliteStatement(this.db.prepare(sql), sql, this.db);
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): SqliteTransaction<A, R> {
    const variant =
      (begin: string) =>
      (...args: A): R =>
        this.depth > 0 ? this.nested(fn, args) : this.outermost(begin, fn, args);
    return Object.assign(variant('BEGIN'), {
      deferred: variant('BEGIN DEFERRED'),
      immediate: variant('BEGIN IMMEDIATE'),
      exclusive: variant('BEGIN EXCLUSIVE'),
    });
  }

  private outermost<A extends unknown[], R>(begin: string, fn: (...args: A) => R, args: A): R {
    this.db.exec(begin);
    this.depth++;
    try {
      const result = fn(...args);
      if (isThenable(result)) throw new TypeError('Transaction function cannot return a promise');
      this.db.exec('COMMIT');
      return result;
    } catch (e) {
      // SQLite may have rolled back already (some errors end the transaction): then there is nothing to undo.
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // no transaction is active
      }
      throw e;
    } finally {
      this.depth--;
    }
  }

  private nested<A extends unknown[], R>(fn: (...args: A) => R, args: A): R {
    this.db.exec(`SAVEPOINT ${SAVEPOINT}`);
    this.depth++;
    try {
      const result = fn(...args);
      if (isThenable(result)) throw new TypeError('Transaction function cannot return a promise');
      this.db.exec(`RELEASE ${SAVEPOINT}`);
      return result;
    } catch (e) {
      try {
        this.db.exec(`ROLLBACK TO ${SAVEPOINT}`);
        this.db.exec(`RELEASE ${SAVEPOINT}`);
      } catch {
        // the whole transaction was rolled back by SQLite: the outer one's ROLLBACK finds nothing either
      }
      throw e;
    } finally {
      this.depth--;
    }
  }

  pragma(source: string): unknown[];
  pragma(source: string, options: { simple: true }): unknown;
  pragma(source: string, options?: { simple: true }): unknown {
    const rows = this.db.prepare(`PRAGMA ${source}`).all();
    if (!options?.simple) return rows.map(plainRow);
    return rows.length === 0 ? undefined : Object.values(plainRow(rows[0]))[0];
  }

  close(): void {
    this.db.close();
  }
}

export function nodeSqliteDriver(sqlite: NodeSqliteModule): SqliteDriver {
  return {
    name: 'node',
    open: (file: string, options: SqliteOpenOptions = {}) => {
      // node:sqlite has no such option; better-sqlite3's error for it, so a caller sees the same.
      if (options.fileMustExist && file !== ':memory:' && !existsSync(file))
        throw Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' });
      const db = new sqlite.DatabaseSync(file, { readOnly: options.readonly ?? false });
      try {
        db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      } catch (e) {
        db.close();
        throw e;
      }
      return new NodeSqliteDatabase(db, file);
    },
  };
}
