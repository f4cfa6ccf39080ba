/**
 * A device's cursor on the payment server's push (`GET /v1/events?after=SEQ`): the last event sequence it has
 * dealt with, kept in its journal's meta table so a restart resumes where it left off.
 *
 * The push carries every payment event of the store, and most of them are another register's (a plugin) or
 * another unit's. Storing the cursor after each of those was one durable SQLite commit (an fsync) per event
 * per device: with 50 registers in a store, each plugin committed 50 times per sale it never took part in,
 * which was most of a plugin's time in the end-to-end bench (docs/BENCHMARKS.md, "End to end"). So:
 * - an event the device acts on moves the stored cursor at once (`acted`), as before;
 * - an event it skips moves it only in memory (`skipped`), and the stored cursor catches up at the next
 *   acted event, at most every `flushMs` while skipping, and at `stop`.
 * After a crash the device may hear some skipped events again, and skips them again: nothing is lost, as the
 * server resends everything after the stored cursor.
 */

/** The meta-table key that holds the cursor (the same in the plugin's and the unit's journal). */
export const EVENT_CURSOR_KEY = 'event_cursor';
/** How long skipped events may move the cursor in memory only. */
export const EVENT_CURSOR_FLUSH_MS = 5_000;

export interface CursorStore {
  meta(name: string): string | undefined;
  setMeta(name: string, value: string): void;
}

export class EventCursor {
  /** The highest sequence seen, when it is ahead of the stored one. */
  private unstored: number | undefined;
  private storedAt: number;

  constructor(
    private readonly store: CursorStore,
    private readonly now: () => number = Date.now,
    private readonly flushMs = EVENT_CURSOR_FLUSH_MS,
  ) {
    this.storedAt = now();
  }

  /** Where to resume the push: after every event this device has acted on or skipped. */
  after(): number {
    return Math.max(this.unstored ?? 0, this.stored());
  }

  /** An event the device acts on: the cursor is stored before the device acts, as it always was. */
  acted(seq: number): void {
    this.write(Math.max(seq, this.unstored ?? 0));
  }

  /** An event that is not this device's business: the cursor moves in memory, and is stored now and then. */
  skipped(seq: number): void {
    this.unstored = Math.max(seq, this.unstored ?? 0);
    if (this.now() - this.storedAt >= this.flushMs) this.flush();
  }

  /** Stores a cursor moved by skipped events (at stop). */
  flush(): void {
    if (this.unstored !== undefined) this.write(this.unstored);
  }

  private stored(): number {
    return Number(this.store.meta(EVENT_CURSOR_KEY) ?? 0);
  }

  private write(seq: number): void {
    this.unstored = undefined;
    this.storedAt = this.now();
    this.store.setMeta(EVENT_CURSOR_KEY, String(seq));
  }
}
