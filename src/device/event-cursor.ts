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
 *   most every `flushMs` while skipping, and at `stop`;
 * - an event whose effect waits in memory (`hold`: the unit's result pushed before its payment's answer)
 *   keeps the stored cursor below it until it is journaled or dropped (`release`);
 * - the stored cursor never moves back.
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
  /** The stored cursor as last read or written (the meta table is read once). */
  private storedValue: number | undefined;
  private storedAt: number;
  /** Events whose effect waits in memory (see hold): the stored cursor stays below the lowest. */
  private readonly held = new Set<number>();

  constructor(
    private readonly store: CursorStore,
    private readonly now: () => number = Date.now,
    private readonly flushMs = EVENT_CURSOR_FLUSH_MS,
  ) {
    this.storedAt = now();
  }

  /** Where to resume the push: after every event this device has acted on, skipped or holds. */
  after(): number {
    return Math.max(this.unstored ?? 0, this.stored());
  }

  /**
   * An event whose handling writes the journal: the cursor to store in that same transaction (it also
   * covers the events skipped before it, and never moves the stored cursor back or past a held event).
   * Call `committed` once the transaction has committed.
   */
  writeFor(seq: number): CursorWrite {
    const value = Math.max(this.stored(), Math.min(Math.max(seq, this.unstored ?? 0), this.limit()));
    return { name: EVENT_CURSOR_KEY, value: String(value) };
  }

  /** The journal committed `w` (from writeFor). */
  committed(w: CursorWrite): void {
    const value = Number(w.value);
    this.storedValue = Math.max(this.stored(), value);
    if (this.unstored !== undefined && this.unstored <= value) this.unstored = undefined;
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

  /**
   * An event whose effect is kept in memory for now, to be journaled later (the unit's result pushed before
   * its payment's answer): it moves the cursor in memory like a skipped one, but nothing at or past it is
   * stored until `release`, so a crash meanwhile hears it again.
   */
  hold(seq: number): void {
    this.held.add(seq);
    this.skipped(seq);
  }

  /** A held event was journaled (then its writeFor stores it) or dropped. */
  release(seq: number): void {
    this.held.delete(seq);
  }

  /** Stores a cursor moved by skipped events (now and then, and at stop), short of any held event. */
  flush(): void {
    if (this.unstored === undefined) return;
    const value = Math.min(this.unstored, this.limit());
    if (value >= this.unstored) this.unstored = undefined;
    this.storedAt = this.now();
    if (value <= this.stored()) return;
    this.storedValue = value;
    this.store.setMeta(EVENT_CURSOR_KEY, String(value));
  }

  /** The highest cursor that may be stored: below the lowest held event. */
  private limit(): number {
    let lowest = Infinity;
    for (const seq of this.held) lowest = Math.min(lowest, seq);
    return lowest - 1;
  }

  private stored(): number {
    this.storedValue ??= Number(this.store.meta(EVENT_CURSOR_KEY) ?? 0);
    return this.storedValue;
  }
}
