/**
 * The better-sqlite3 driver of the storage seam (src/device/sqlite-driver.ts). The seam's contract is
 * better-sqlite3's API cut down, so its Database is the SqliteDatabase almost as it is: statements are
 * better-sqlite3's own, with no wrapper on the journals' hot path.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type {
  SqliteDatabase,
  SqliteDriver,
  SqliteOpenOptions,
  SqliteStatement,
  SqliteTransaction,
} from './sqlite-driver';

class BetterSqlite3Database implements SqliteDatabase {
  readonly driver = 'better-sqlite3' as const;

  constructor(private readonly db: BetterSqlite3.Database) {}

  get name(): string {
    return this.db.name;
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  prepare(sql: string): SqliteStatement {
    return this.db.prepare(sql) as SqliteStatement;
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): SqliteTransaction<A, R> {
    return this.db.transaction(fn) as unknown as SqliteTransaction<A, R>;
  }

  pragma(source: string): unknown[];
  pragma(source: string, options: { simple: true }): unknown;
  pragma(source: string, options?: { simple: true }): unknown {
    return this.db.pragma(source, options);
  }

  close(): void {
    this.db.close();
  }
}

export function betterSqlite3Driver(Database: typeof BetterSqlite3): SqliteDriver {
  return {
    name: 'better-sqlite3',
    open: (file: string, options: SqliteOpenOptions = {}) =>
      new BetterSqlite3Database(
        new Database(file, {
          readonly: options.readonly ?? false,
          fileMustExist: options.fileMustExist ?? false,
        }),
      ),
  };
}
