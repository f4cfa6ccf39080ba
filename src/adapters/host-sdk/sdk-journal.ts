/**
 * What the host-sdk adapter keeps on disk, `<stateDir>/host-sdk/<manifest id>.jsonl`: one line per order
 * handed to the plugin (`{"taken":orderId}`) and per result the SDK took (`{"told":delivery}`), each
 * appended and fsynced before the adapter relies on it. So after a restart an order the register still
 * shows is not handed over again, and a result the SDK already took is not given to it again (writeBack
 * is idempotent per (orderId, status), as host-adapter.ts asks). Only a crash between the SDK taking a
 * result and this line reaching the disk can repeat one call (docs/adapters/host-sdk.md says so).
 * The file is rewritten with the last KEEP entries of each kind when it grows past twice that.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export const KEEP = 5000;

export class SdkJournal {
  private readonly taken = new Set<string>();
  private readonly told = new Set<string>();
  private loaded?: Promise<void>;
  private tail: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  load(onBadLine?: (line: string) => void): Promise<void> {
    this.loaded ??= (async () => {
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      let text = '';
      try {
        text = await fs.readFile(this.file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      let lines = 0;
      for (const line of text.split('\n')) {
        if (line === '') continue;
        lines++;
        try {
          const entry = JSON.parse(line) as { taken?: unknown; told?: unknown };
          if (typeof entry.taken === 'string') this.taken.add(entry.taken);
          else if (typeof entry.told === 'string') this.told.add(entry.told);
          else throw new Error('not an entry');
        } catch {
          // A line cut short by a crash mid-append: its entry was never relied on.
          onBadLine?.(line);
        }
      }
      if (lines > 2 * KEEP) await this.compact();
    })();
    return this.loaded;
  }

  hasTaken(orderId: string): boolean {
    return this.taken.has(orderId);
  }

  hasTold(delivery: string): boolean {
    return this.told.has(delivery);
  }

  noteTaken(orderId: string): Promise<void> {
    if (this.taken.has(orderId)) return Promise.resolve();
    this.taken.add(orderId);
    return this.append({ taken: orderId });
  }

  noteTold(delivery: string): Promise<void> {
    if (this.told.has(delivery)) return Promise.resolve();
    this.told.add(delivery);
    return this.append({ told: delivery });
  }

  private append(entry: object): Promise<void> {
    const run = this.tail.then(async () => {
      const handle = await fs.open(this.file, 'a', 0o600);
      try {
        await handle.write(`${JSON.stringify(entry)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async compact(): Promise<void> {
    const keep = (s: Set<string>) => [...s].slice(-KEEP);
    const lines = [
      ...keep(this.taken).map((taken) => JSON.stringify({ taken })),
      ...keep(this.told).map((told) => JSON.stringify({ told })),
    ];
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, `${lines.join('\n')}\n`, { mode: 0o600 });
    const h = await fs.open(tmp, 'r+');
    await h.sync().finally(() => h.close());
    await fs.rename(tmp, this.file);
  }
}
