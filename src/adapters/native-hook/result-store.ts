/**
 * What the native hook keeps on disk, in `<stateDir>/native-hook/`: one small JSON file per order taken
 * through the hook, holding the results written back for it and whether the library acknowledged each.
 * A result is queued for the register by writing it here (temporary file, fsync, rename, folder fsync)
 * before writeBack resolves, so a restart of the plugin never loses one the register has not confirmed,
 * and an ack is written the same way before it is answered, so a confirmed result is never offered again.
 *
 * Each result has a delivery id, `<orderId percent-encoded>:<status>` (as http-hook's
 * X-Payconnect-Delivery): one per final state, so writeBack is idempotent per (orderId, status).
 * Writes of one order are serialised; different orders are written independently.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { deliveryId } from '../http-hook/http-hook.adapter';
import { ResultDocument } from '../result-document';
import { writeFileDurably } from '../durable-file';

export type HookResult = ResultDocument & { delivery: string };

/** How long an order whose results were all acknowledged stays on disk: 30 days. */
export const KEEP_DELIVERED_MS = 30 * 24 * 3600_000;

interface OrderFile {
  orderId: string;
  submittedAt: string;
  results: { result: HookResult; delivered: boolean }[];
}

export class ResultStore {
  private readonly orders = new Map<string, OrderFile>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private loaded?: Promise<void>;

  constructor(readonly dir: string) {}

  /**
   * Reads what is on disk (once); unreadable files are reported and skipped, never fatal. Temporary files
   * of a write cut short by a crash are removed, and so are orders whose every result the library
   * acknowledged more than `keepDeliveredMs` ago (the plugin repeats a write-back only soon after a
   * restart, so their record is no longer needed to keep it from being offered twice).
   */
  load(
    onBadFile?: (file: string, error: Error) => void,
    now = Date.now(),
    keepDeliveredMs = KEEP_DELIVERED_MS,
  ): Promise<void> {
    this.loaded ??= (async () => {
      await fs.mkdir(this.dir, { recursive: true });
      for (const name of await fs.readdir(this.dir)) {
        const file = path.join(this.dir, name);
        if (name.startsWith('.') && name.endsWith('.tmp')) {
          await fs.unlink(file).catch(() => undefined);
          continue;
        }
        if (!name.endsWith('.json') || name.startsWith('.')) continue;
        try {
          const data = JSON.parse(await fs.readFile(file, 'utf8')) as OrderFile;
          if (typeof data.orderId !== 'string' || !Array.isArray(data.results))
            throw new Error('not an order file');
          const done = data.results.length > 0 && data.results.every((r) => r.delivered);
          if (done && now - (await fs.stat(file)).mtimeMs > keepDeliveredMs) {
            await fs.unlink(file).catch(() => undefined);
            continue;
          }
          this.orders.set(data.orderId, data);
        } catch (e) {
          onBadFile?.(file, e as Error);
        }
      }
    })();
    return this.loaded;
  }

  has(orderId: string): boolean {
    return this.orders.has(orderId);
  }

  /** Records that the order came through the hook (before it is handed to the plugin). */
  noteSubmitted(orderId: string, at: string): Promise<void> {
    return this.serial(orderId, async () => {
      if (this.orders.has(orderId)) return;
      const record: OrderFile = { orderId, submittedAt: at, results: [] };
      await this.write(record);
      this.orders.set(orderId, record);
    });
  }

  /** Queues a result durably; false when this (orderId, status) was queued before (nothing changes). */
  add(doc: ResultDocument, at: string): Promise<boolean> {
    return this.serial(doc.orderId, async () => {
      const delivery = deliveryId(doc.orderId, doc.status);
      const old = this.orders.get(doc.orderId);
      if (old?.results.some((r) => r.result.delivery === delivery)) return false;
      const record: OrderFile = {
        orderId: doc.orderId,
        submittedAt: old?.submittedAt ?? at,
        results: [...(old?.results ?? []), { result: { ...doc, delivery }, delivered: false }],
      };
      await this.write(record);
      this.orders.set(doc.orderId, record);
      return true;
    });
  }

  /** The oldest result of the order the library has not acknowledged. */
  nextUndelivered(orderId: string): HookResult | undefined {
    return this.orders.get(orderId)?.results.find((r) => !r.delivered)?.result;
  }

  /** 'acked' the first time, 'again' for a delivery acknowledged before, 'unknown' for none such. */
  ack(delivery: string): Promise<'acked' | 'again' | 'unknown'> {
    const orderId = orderIdOf(delivery);
    if (orderId === undefined) return Promise.resolve('unknown');
    return this.serial(orderId, async () => {
      const old = this.orders.get(orderId);
      const i = old?.results.findIndex((r) => r.result.delivery === delivery) ?? -1;
      if (!old || i < 0) return 'unknown';
      if (old.results[i].delivered) return 'again';
      const record: OrderFile = {
        ...old,
        results: old.results.map((r, j) => (j === i ? { ...r, delivered: true } : r)),
      };
      await this.write(record);
      this.orders.set(orderId, record);
      return 'acked';
    });
  }

  /** Results queued and not yet acknowledged, over all orders. */
  undeliveredCount(): number {
    let n = 0;
    for (const o of this.orders.values()) n += o.results.filter((r) => !r.delivered).length;
    return n;
  }

  /** The file an order's record lives in: a hash, as order ids may hold any character. */
  fileOf(orderId: string): string {
    return path.join(this.dir, `${createHash('sha256').update(orderId).digest('hex').slice(0, 40)}.json`);
  }

  private serial<T>(orderId: string, f: () => Promise<T>): Promise<T> {
    const run = (this.chains.get(orderId) ?? Promise.resolve()).then(f, f);
    const tail = run.catch(() => undefined);
    this.chains.set(orderId, tail);
    void tail.then(() => {
      if (this.chains.get(orderId) === tail) this.chains.delete(orderId);
    });
    return run;
  }

  private async write(record: OrderFile): Promise<void> {
    await writeFileDurably(this.fileOf(record.orderId), JSON.stringify(record), { mode: 0o600 });
  }
}

/** The order id in a delivery id (`<orderId percent-encoded>:<status>`). */
export function orderIdOf(delivery: string): string | undefined {
  const i = delivery.lastIndexOf(':');
  if (i <= 0) return undefined;
  try {
    return decodeURIComponent(delivery.slice(0, i));
  } catch {
    return undefined;
  }
}
