/**
 * Fresh, migrated server databases for specs that run on both engines: a SQLite file in a temporary folder,
 * or a private schema in the PostgreSQL test database (127.0.0.1:5432, db `test`). `closeAll` closes them,
 * drops the schemas and removes the folders.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openServerDb, ServerDb } from '../../../src/server/storage/open';
import { PostgresDb } from '../../../src/server/storage/postgres';

export type Engine = 'sqlite' | 'postgres';
export const ENGINES: Engine[] = ['sqlite', 'postgres'];

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export class TestDatabases {
  private readonly opened: ServerDb[] = [];
  private readonly dirs: string[] = [];

  constructor(private readonly prefix: string) {}

  async open(engine: Engine): Promise<ServerDb> {
    let db: ServerDb;
    if (engine === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), `pc-${this.prefix}-`));
      this.dirs.push(dir);
      db = await openServerDb({ kind: 'sqlite', path: join(dir, 'server.db') });
    } else {
      const schema = `pc_${this.prefix}_${randomBytes(6).toString('hex')}`;
      db = await openServerDb({ kind: 'postgres', url: `${PG_URL}?schema=${schema}` }, { poolSize: 4 });
    }
    this.opened.push(db);
    return db;
  }

  async closeAll(): Promise<void> {
    for (const db of this.opened.splice(0)) {
      if (db instanceof PostgresDb) await db.dropSchema().catch(() => undefined);
      await db.close().catch(() => undefined);
    }
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
