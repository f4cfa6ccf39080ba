/**
 * Natural batching of one kind of database call: while a call of that kind is in flight, the calls that
 * arrive wait, and go together as the next batch as soon as it has answered. A call that finds nothing in
 * flight goes at once and alone, so an idle server adds no latency, and under load each batch holds what
 * arrived during one round trip (as SQLite's group commit in sqlite.ts does for transactions).
 *
 * What it is for: the payment path on PostgreSQL, where every payment's journal and decision is one
 * statement committed on its own. Each such commit is a round trip, a transaction and a WAL flush, and the
 * decision's also holds its store's event lock and NOTIFY's lock until that flush (events.service.ts), so
 * one store's decisions committed one flush after another. As a batch (one statement for many payments, see
 * payment-repository.ts), one round trip, one commit and one hold of those locks carry them all.
 *
 * The contract for `many`: it does for every item exactly what `one` would, in one atomic step (one
 * statement), and answers in the items' order. When it fails:
 * - refused (`refused(error)`: the database answered the statement with an error, so it was rolled back and
 *   nothing of it took effect): every item runs again through `one`, concurrently, so that one item's error
 *   stays its own caller's and the others get what they would have got alone;
 * - otherwise (the connection broke: the statement may or may not have committed): every caller gets that
 *   error, as each would have from its own statement.
 */
export class Batcher<I, O> {
  private readonly queue: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private running = false;
  /** Batches of more than one and the items they carried; `fallbacks`: batches that ran item by item. */
  readonly stats = { batches: 0, items: 0, fallbacks: 0 };

  constructor(
    private readonly one: (item: I) => Promise<O>,
    private readonly many: (items: I[]) => Promise<O[]>,
    /** Whether `many` failed without effect (the database refused it), so each item may run alone. */
    private readonly refused: (error: unknown) => boolean,
    /** At most this many items per batch (a bound on one statement's size and on its locks' hold). */
    private readonly max = 64,
  ) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`Batcher: max must be a whole number ≥ 1, not ${max}`);
  }

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.max);
        if (batch.length === 1) {
          const [b] = batch;
          await this.one(b.item).then(b.resolve, b.reject);
          continue;
        }
        let out: O[];
        try {
          out = await this.many(batch.map((b) => b.item));
        } catch (e) {
          if (!this.refused(e)) {
            for (const b of batch) b.reject(e);
            continue;
          }
          this.stats.fallbacks++;
          await Promise.all(batch.map((b) => this.one(b.item).then(b.resolve, b.reject)));
          continue;
        }
        if (out.length !== batch.length) {
          const e = new Error(`a batch of ${batch.length} answered ${out.length} results`);
          for (const b of batch) b.reject(e);
          continue;
        }
        this.stats.batches++;
        this.stats.items += batch.length;
        batch.forEach((b, i) => b.resolve(out[i]));
      }
    } finally {
      this.running = false;
    }
  }
}
