import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDeviceJournal } from './device-migrations';
import { EVENT_CURSOR_FLUSH_MS, EVENT_CURSOR_KEY, EventCursor } from './event-cursor';
import { META_TABLE_SQL, MetaTable } from './meta-table';
import type { SqliteDatabase } from './sqlite-driver';

/** A device journal as the plugin's and the unit's hold it: real SQLite, WAL, synchronous FULL. */
class Journal {
  readonly db: SqliteDatabase;
  private readonly table: MetaTable;
  constructor(dir: string) {
    this.db = openDeviceJournal(dir, 'cursor.db', [{ version: 1, name: 'meta', up: META_TABLE_SQL }]);
    this.table = new MetaTable(this.db);
  }
  meta(n: string) {
    return this.table.get(n);
  }
  setMeta(n: string, v: string) {
    this.table.set(n, v);
  }
  closeDb() {
    this.db.close();
  }
}

describe('EventCursor (on a real SQLite journal)', () => {
  let dir: string;
  let journal: Journal;
  let now: number;
  let writes: number;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'pc-cursor-'));
    journal = new Journal(dir);
    now = 1_000_000;
    writes = 0;
  });
  afterEach(() => {
    journal.closeDb();
    rmSync(dir, { recursive: true, force: true });
  });
  /** The journal, counting each durable write of the cursor. */
  const counted = () => ({
    meta: (n: string) => journal.meta(n),
    setMeta: (n: string, v: string) => {
      writes++;
      journal.setMeta(n, v);
    },
  });

  it('stores the cursor of an event the device acts on at once', () => {
    const c = new EventCursor(counted(), () => now);
    c.acted(7);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('7');
    expect(c.after()).toBe(7);
  });

  it("moves past other registers' events in memory, and stores them at most every flush interval", () => {
    const c = new EventCursor(counted(), () => now);
    c.acted(1);
    for (let seq = 2; seq <= 200; seq++) {
      now += 10;
      c.skipped(seq);
    }
    // 199 skipped events over 1.99 s: resumes after all of them, but none was a write of its own.
    expect(c.after()).toBe(200);
    expect(writes).toBe(1);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('1');
    now += EVENT_CURSOR_FLUSH_MS;
    c.skipped(201);
    expect(writes).toBe(2);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('201');
  });

  it('stores skipped events with the next acted one, and at stop (flush)', () => {
    const c = new EventCursor(counted(), () => now);
    c.skipped(3);
    c.skipped(4);
    c.acted(5);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('5');
    c.skipped(6);
    c.flush();
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('6');
    const writesBefore = writes;
    c.flush(); // nothing new: no write
    expect(writes).toBe(writesBefore);
  });

  it('resumes after a restart from what was stored: a crash only hears skipped events again', () => {
    const c = new EventCursor(counted(), () => now);
    c.acted(10);
    c.skipped(11);
    c.skipped(12);
    journal.closeDb();
    journal = new Journal(dir); // the restart, without a flush (kill -9)
    expect(new EventCursor(journal, () => now).after()).toBe(10);
  });

  it('never moves back when an acted event is older than a skipped one', () => {
    const c = new EventCursor(counted(), () => now);
    c.skipped(9);
    c.acted(8);
    expect(c.after()).toBe(9);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('9');
  });
});
