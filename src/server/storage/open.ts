import { Db, DbChangeFeed, DbUrl } from './db';
import { migrate, MigratableDb } from './migrations';
import { PostgresDb } from './postgres';
import { SqliteDb } from './sqlite';

export type ServerDb = MigratableDb & DbChangeFeed;

/** Opens the database named by the URL and brings its schema up to date. */
export async function openServerDb(url: DbUrl, opts: { poolSize?: number } = {}): Promise<ServerDb> {
  let db: ServerDb;
  if (url.kind === 'sqlite') {
    db = new SqliteDb(url.path);
  } else {
    const pg = new PostgresDb(url.url, { max: opts.poolSize });
    await pg.init();
    db = pg;
  }
  try {
    await migrate(db);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw new Error(`cannot prepare the database at ${db.where}: ${(e as Error).message}`, { cause: e });
  }
  return db;
}

export type { Db };
