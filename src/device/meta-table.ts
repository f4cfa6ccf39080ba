/**
 * A name → value table in a device's SQLite journal, for small facts that must survive a restart (the
 * push cursor: the last event sequence the device has seen).
 */
import type { SqliteDatabase } from './sqlite-driver';

/**
 * The table, created by each journal's migration 1 (src/device/device-migrations.ts): its schema changes
 * only by a migration of the journal that holds it, never here.
 */
export const META_TABLE_SQL = 'CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)';

export class MetaTable {
  constructor(private readonly db: SqliteDatabase) {}

  get(name: string): string | undefined {
    return (
      this.db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as { value: string } | undefined
    )?.value;
  }

  set(name: string, value: string): void {
    this.db
      .prepare(
        'INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
      )
      .run(name, value);
  }
}
