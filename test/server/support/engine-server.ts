/**
 * The payment server in this process on each storage engine, for specs that run the same checks on
 * SQLite and PostgreSQL (a scratch SQLite file, or a PostgreSQL schema of its own, dropped afterwards).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerApp, RunningServer, type ServerConfig } from '../../../src/server/server-app';
import type { DbUrl } from '../../../src/server/storage/db';
import type { PostgresDb } from '../../../src/server/storage/postgres';
import { PG_BASE_URL } from './server-client';

export interface EngineCase {
  name: 'sqlite' | 'postgres';
  /** The database for a server whose scratch folder is `dir`; each PostgreSQL call names a new schema. */
  db: (dir: string) => DbUrl;
}

/** SQLite and PostgreSQL, with PostgreSQL schemas named `<schemaPrefix>_<random>`. */
export function engineCases(schemaPrefix: string): EngineCase[] {
  return [
    { name: 'sqlite', db: (dir) => ({ kind: 'sqlite', path: join(dir, 'server.db') }) },
    {
      name: 'postgres',
      db: () => ({
        kind: 'postgres',
        url: `${PG_BASE_URL}?schema=${schemaPrefix}_${randomBytes(6).toString('hex')}`,
      }),
    },
  ];
}

export interface EngineServer {
  running: RunningServer;
  /** Closes the server, drops its PostgreSQL schema and removes its scratch folder. */
  close(): Promise<void>;
}

/** Starts a server on port 0 over `engine` with `options` (anything but the port and the database). */
export async function startEngineServer(
  engine: EngineCase,
  options: Omit<ServerConfig, 'port' | 'db'>,
): Promise<EngineServer> {
  const dir = mkdtempSync(join(tmpdir(), `pc-${engine.name}-`));
  let running: RunningServer | undefined;
  const close = async () => {
    try {
      if (engine.name === 'postgres') await (running?.context.db as unknown as PostgresDb)?.dropSchema();
      await running?.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    running = await createServerApp({ ...options, port: 0, db: engine.db(dir) });
  } catch (e) {
    await close();
    throw e;
  }
  return { running, close };
}
