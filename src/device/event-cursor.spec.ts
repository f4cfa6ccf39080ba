import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDeviceJournal } from './device-migrations';
import { CursorWrite, EVENT_CURSOR_FLUSH_MS, EVENT_CURSOR_KEY, EventCursor } from './event-cursor';
import { META_TABLE_SQL, MetaTable } from './meta-table';
import type { SqliteDatabase } from './sqlite-driver';

/** A device journal as the plugin's and the unit's hold it: real SQLite, WAL, synchronous FULL. */
class Journal {
  readonly db: SqliteDatabase;
  private readonly table: MetaTable;
  constructor(dir: string) {
    this.db = openDeviceJournal(dir, 'cursor.db', [
      { version: 1, name: 'meta', up: META_TABLE_SQL },
      { version: 2, name: 'effects', up: 'CREATE TABLE effects (seq INTEGER NOT NULL)' },
    ]);
    this.table = new MetaTable(this.db);
  }
  /** What an event changes, with its cursor, in one transaction (as the plugin's decide does). */
  act(seq: number, cursor: CursorWrite, fail = false) {
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO effects (seq) VALUES (?)').run(seq);
      this.table.set(cursor.name, cursor.value);
      if (fail) throw new Error('the disk is full');
    })();
  }
  effects(): number[] {
    return (this.db.prepare('SELECT seq FROM effects ORDER BY seq').all() as Array<{ seq: number }>).map(
      (r) => r.seq,
    );
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

  /** An event the device acts on, as the apps do: its effect and the cursor commit together. */
  const act = (c: EventCursor, seq: number) => {
    const w = c.writeFor(seq);
    journal.act(seq, w);
    c.committed(w);
  };

  it('stores the cursor of an event the device acts on in the commit of its effect', () => {
    const c = new EventCursor(counted(), () => now);
    act(c, 7);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('7');
    expect(journal.effects()).toEqual([7]);
    expect(c.after()).toBe(7);
    expect(writes).toBe(0); // no write of the cursor on its own
  });

  it('stores neither the effect nor the cursor when that commit fails: the event comes again', () => {
    const c = new EventCursor(counted(), () => now);
    act(c, 7);
    c.skipped(8);
    const w = c.writeFor(9);
    expect(() => journal.act(9, w, true)).toThrow('the disk is full');
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('7');
    expect(journal.effects()).toEqual([7]);
    // Resumes after the skipped 8, before 9: the server sends 9 again.
    expect(c.after()).toBe(8);
    journal.closeDb();
    journal = new Journal(dir);
    expect(new EventCursor(journal, () => now).after()).toBe(7);
  });

  it("moves past other registers' events in memory, and stores them at most every flush interval", () => {
    const c = new EventCursor(counted(), () => now);
    act(c, 1);
    for (let seq = 2; seq <= 200; seq++) {
      now += 10;
      c.skipped(seq);
    }
    // 199 skipped events over 1.99 s: resumes after all of them, but none was a write of its own.
    expect(c.after()).toBe(200);
    expect(writes).toBe(0);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('1');
    now += EVENT_CURSOR_FLUSH_MS;
    c.skipped(201);
    expect(writes).toBe(1);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('201');
  });

  it('stores skipped events with the next acted one, and at stop (flush)', () => {
    const c = new EventCursor(counted(), () => now);
    c.skipped(3);
    c.skipped(4);
    act(c, 5);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('5');
    expect(writes).toBe(0);
    c.skipped(6);
    c.flush();
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('6');
    expect(writes).toBe(1);
    c.flush(); // nothing new: no write
    expect(writes).toBe(1);
  });

  it('resumes after a restart from what was stored: a crash only hears skipped events again', () => {
    const c = new EventCursor(counted(), () => now);
    act(c, 10);
    c.skipped(11);
    c.skipped(12);
    journal.closeDb();
    journal = new Journal(dir); // the restart, without a flush (kill -9)
    expect(new EventCursor(journal, () => now).after()).toBe(10);
  });

  it('never moves back when an acted event is older than a skipped one', () => {
    const c = new EventCursor(counted(), () => now);
    c.skipped(9);
    act(c, 8);
    expect(c.after()).toBe(9);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('9');
    // and what it stored covers the skipped 9: nothing is left to store at stop
    c.flush();
    expect(writes).toBe(0);
  });

  it('never stores a cursor lower than one it stored: an older event acted on later keeps it', () => {
    const c = new EventCursor(counted(), () => now);
    c.skipped(100);
    now += EVENT_CURSOR_FLUSH_MS + 500;
    c.skipped(101); // flushed: 101 stored on its own
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('101');
    act(c, 100); // an effect of event 100 journaled only now
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('101');
    expect(journal.effects()).toEqual([100]);
  });

  it('stores nothing at or past a held event until it is journaled: a crash hears it again', () => {
    const c = new EventCursor(counted(), () => now);
    act(c, 99);
    c.hold(100); // the unit keeps this result in memory until its payment's answer
    now += EVENT_CURSOR_FLUSH_MS + 500;
    c.skipped(101);
    c.flush();
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('99');
    expect(c.after()).toBe(101); // a reconnect need not hear them again: the unit holds 100 in memory
    journal.closeDb();
    journal = new Journal(dir); // kill -9 while 100 was held
    expect(new EventCursor(journal, () => now).after()).toBe(99);
  });

  it('a held event journaled stores the cursor past it and what was skipped meanwhile', () => {
    const c = new EventCursor(counted(), () => now);
    c.hold(100);
    c.skipped(101);
    c.release(100);
    act(c, 100);
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('101');
    expect(writes).toBe(0);
  });

  it('a held event dropped unused lets the next flush store past it', () => {
    const c = new EventCursor(counted(), () => now);
    c.hold(100);
    c.skipped(101);
    c.flush();
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('99'); // short of the held event
    c.release(100);
    c.flush();
    expect(journal.meta(EVENT_CURSOR_KEY)).toBe('101');
  });
});
