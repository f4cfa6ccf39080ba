/**
 * The migration set on both engines: a new database gets every version once; a database of an older
 * version is brought up to date with its data kept (here: version 2, before payments_due held pending
 * payments only), and the sweeper's question is answered from the new index.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MigratableDb, migrate, MIGRATIONS } from './migrations';
import { PostgresDb } from './postgres';
import { SqliteDb } from './sqlite';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

const DUE = `SELECT id FROM payments WHERE status = 'pending' AND next_check_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
  ORDER BY next_check_at LIMIT $2`;

describe.each(['sqlite', 'postgres'] as const)('migrations on %s', (engine) => {
  let dir: string | undefined;
  const opened: MigratableDb[] = [];

  async function empty(): Promise<MigratableDb> {
    let db: MigratableDb;
    if (engine === 'sqlite') {
      dir ??= mkdtempSync(join(tmpdir(), 'pc-migrate-'));
      db = new SqliteDb(join(dir, `${randomBytes(4).toString('hex')}.db`));
    } else {
      const pg = new PostgresDb(`${PG_URL}?schema=pc_mig_${randomBytes(6).toString('hex')}`);
      await pg.init();
      db = pg;
    }
    opened.push(db);
    return db;
  }

  afterAll(async () => {
    for (const db of opened) {
      if (db instanceof PostgresDb) await db.dropSchema();
      await db.close();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies every version once to a new database, and nothing the second time', async () => {
    const db = await empty();
    expect(await migrate(db)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await migrate(db)).toEqual([]);
  });

  it('upgrades a version-2 database: its pending payment stays due, decided ones leave the due index', async () => {
    const db = await empty();
    expect(await migrate(db, 2)).toEqual([1, 2]);
    await db.run("INSERT INTO stores (id, name, created_at) VALUES ('s1', 'Shop', '2026-11-26T00:00:00Z')");
    const insert = `INSERT INTO payments (id, store_id, device_id, order_id, register_id, amount_value, currency, status,
        method_type, deadline_at, next_check_at, created_at, updated_at)
      VALUES ($1, 's1', 'T1', $1, 'R1', 100, 'CNY', $2, 'wallet_code', 5000, $3, '2026-11-26T00:00:00Z', '2026-11-26T00:00:00Z')`;
    await db.run(insert, ['p-pending', 'pending', 1000]);
    await db.run(insert, ['p-done', 'succeeded', null]);

    expect(await migrate(db)).toEqual(MIGRATIONS.filter((m) => m.version > 2).map((m) => m.version));
    expect(await db.query(DUE, [2000, 10])).toEqual([{ id: 'p-pending' }]);
    expect(await db.query(DUE, [999, 10])).toEqual([]);

    if (engine === 'sqlite') {
      const [index] = await db.query<{ sql: string }>(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'payments_due'",
      );
      expect(index.sql).toMatch(/WHERE status = 'pending'/);
      const plan = await db.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${DUE}`, [2000, 10]);
      expect(plan.map((p) => p.detail).join('\n')).toMatch(/payments_due/);
    } else {
      const [index] = await db.query<{ indexdef: string }>(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'payments_due' AND schemaname = current_schema()",
      );
      expect(index.indexdef).toMatch(/WHERE \(status = 'pending'::text\)/);
      const [table] = await db.query<{ reloptions: string[] | null }>(
        "SELECT reloptions FROM pg_class WHERE relname = 'idempotency_keys' AND relnamespace = current_schema()::regnamespace",
      );
      expect(table.reloptions).toEqual(['fillfactor=70']);
    }
  });
});
