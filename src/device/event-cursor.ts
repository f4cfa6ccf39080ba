/**
 * A device's cursor on the payment server's push (`GET /v1/events?after=SEQ`): the last event sequence it has
 * dealt with, kept in its journal's meta table so a restart resumes where it left off.
 *
 * The push carries every payment event of the store, and most of them are another register's (a plugin) or
 * another unit's. Storing the cursor after each of those was one durable SQLite commit (an fsync) per event
 * per device: with 50 registers in a store, each plugin committed 50 times per sale it never took part in,
 * which was most of a plugin's time in the end-to-end bench (docs/BENCHMARKS.md, "End to end"). So:
 * - an event the device acts on stores the cursor in the same journal transaction as what it changed
 *   (`writeFor`, then `committed`): the two commit together or not at all, so an event is never marked
 *   heard without its effect (a crash in between would have lost it), and the device makes one durable
 *   commit for it, not two;
 * - an event that changes nothing (another register's, another unit's, or one already acted on) moves the
 *   cursor only in memory (`skipped`), and the stored cursor catches up with the next event acted on, at
 *   most every `flushMs` while skipping, and at `stop`.
 * After a crash the device may hear some of the skipped events again, and skips them again: nothing is
 * lost, as the server resends everything after the stored cursor.
 */

/** The meta-table key that holds the cursor (the same in the plugin's and the unit's journal). */
export const EVENT_CURSOR_KEY = 'event_cursor';
/** How long skipped events may move the cursor in memory only. */
export const EVENT_CURSOR_FLUSH_MS = 5_000;

/** A cursor write for the journal to make inside the transaction of what an event changed. */
export interface CursorWrite {
  name: string;
  value: string;
}

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

  /**
   * An event whose handling writes the journal: the cursor to store in that same transaction (it also
   * covers the events skipped before it). Call `committed` once the transaction has committed.
   */
  writeFor(seq: number): CursorWrite {
    return { name: EVENT_CURSOR_KEY, value: String(Math.max(seq, this.unstored ?? 0)) };
  }

  /** The journal committed `w` (from writeFor). */
  committed(w: CursorWrite): void {
    if (this.unstored !== undefined && this.unstored <= Number(w.value)) this.unstored = undefined;
    this.storedAt = this.now();
  }

  /**
   * An event that changed nothing here (not this device's business, or already acted on): the cursor moves
   * in memory, and is stored now and then.
   */
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
