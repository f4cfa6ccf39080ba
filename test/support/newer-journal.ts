/**
 * One check for every device journal (plugin, unit): a journal file written by a newer payconnect is refused
 * with the file and both versions named, and left byte for byte as it was (a downgrade never corrupts it).
 * The migration rules themselves are tested in src/device/device-migrations.spec.ts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DeviceSchemaTooNewError } from '../../src/device/device-migrations';
import { openSqlite } from '../../src/device/sqlite-driver';

export function expectNewerJournalRefused(o: {
  /** The journal's database file, already created by `open`. */
  file: string;
  /** Opens the journal the way the app does (and so migrates it). */
  open: () => { close(): void };
  /** The latest schema version this payconnect knows. */
  latest: number;
}): void {
  const future = openSqlite(o.file);
  future.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'later', 'x')").run();
  future.close();
  const hash = () => createHash('sha256').update(readFileSync(o.file)).digest('hex');
  const before = hash();

  expect(o.open).toThrow(DeviceSchemaTooNewError);
  expect(o.open).toThrow(
    `${o.file} is at schema version 99, but this payconnect knows versions up to ${o.latest} only`,
  );
  expect(hash()).toBe(before);
}
