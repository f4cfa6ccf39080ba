/**
 * Processes each message id once. A message is `processing` while its handler runs (a retransmission then
 * is ignored: the ack goes out when processing ends) and `done` afterwards (a retransmission is only
 * re-acknowledged). Ids are kept for `ttlMs`, which must exceed the sender's retry deadline plus the clock
 * skew limit, so no accepted retransmission can outlive its record.
 */
export type DedupState = 'new' | 'processing' | 'done';

export class MessageIdCache {
  private readonly entries = new Map<string, { state: 'processing' | 'done'; expires: number }>();

  constructor(
    private readonly ttlMs = 11 * 60_000,
    private readonly maxEntries = 100_000,
  ) {}

  state(id: string, now: number): DedupState {
    const e = this.entries.get(id);
    if (!e) return 'new';
    if (e.expires < now) {
      this.entries.delete(id);
      return 'new';
    }
    return e.state;
  }

  begin(id: string, now: number): void {
    this.set(id, 'processing', now);
  }

  finish(id: string, now: number): void {
    this.set(id, 'done', now);
  }

  /** Forgets an id whose handler failed, so the sender's next retry is processed afresh. */
  abandon(id: string): void {
    this.entries.delete(id);
  }

  size(): number {
    return this.entries.size;
  }

  private set(id: string, state: 'processing' | 'done', now: number): void {
    this.entries.delete(id);
    this.entries.set(id, { state, expires: now + this.ttlMs });
    // Map order is insertion order: evict expired ids from the front, then the oldest while over the cap.
    for (const [k, v] of this.entries) {
      if (v.expires >= now && this.entries.size <= this.maxEntries) break;
      this.entries.delete(k);
    }
  }
}
