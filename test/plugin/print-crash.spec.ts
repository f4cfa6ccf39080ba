/**
 * A receipt across a crash (docs/support/problems.md): the plugin dies with SIGKILL after the printer took
 * the receipt and before the journal recorded it. No printer says which slips it printed, so the restart
 * prints the receipt again, marked "补打 REPRINT" at the top, so the customer and the cashier can tell it
 * from a second sale; and nothing more after that. Real parts: a child process, the plugin's SQLite
 * journal, a TCP printer on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PluginJournal } from '../../src/plugin/plugin-journal';
import { decodeEscPos } from '../../src/printer/escpos-decode';
import { FakeTcpPrinter } from '../../src/printer/fake-tcp-printer';
import { PrintQueue, PrintQueueEvent } from '../../src/printer/print-queue';
import { COPY_MARK, renderCopyMark } from '../../src/printer/render';
import { LAYOUT } from './support/print-crash-receipt';

const REPO = path.resolve(__dirname, '..', '..');
const ORDER = '收银-0042';

describe('a receipt whose printing the plugin died in', () => {
  let dir: string;
  let printer: FakeTcpPrinter;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'pc-print-crash-'));
    printer = new FakeTcpPrinter();
  });
  afterEach(async () => {
    await printer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints once more after the restart, marked 补打 REPRINT, and never a third time', async () => {
    const port = await printer.listen();
    const child = spawn(
      process.execPath,
      [
        '-r',
        '@swc-node/register',
        path.join(__dirname, 'support', 'print-crash-child.ts'),
        dir,
        String(port),
        ORDER,
      ],
      {
        cwd: REPO,
        env: { ...process.env, SWC_NODE_PROJECT: path.join(REPO, 'tsconfig.json') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });
    await printer.waitForReceipts(1);
    const first = decodeEscPos(printer.receipts[0], { encoding: 'gb18030' });
    expect(first.text).toContain(ORDER);
    expect(first.text).not.toContain('补打');

    // The restart: the plugin's queue over the same journal file.
    const journal = new PluginJournal(dir);
    const queues: PrintQueue[] = [];
    try {
      expect(journal.printJobs.load()).toEqual([expect.objectContaining({ orderId: ORDER, sending: true })]);
      const events: PrintQueueEvent[] = [];
      const queue = new PrintQueue({
        store: journal.printJobs,
        copyMark: () => renderCopyMark(LAYOUT),
        onEvent: (e) => events.push(e),
      });
      queues.push(queue);
      await queue.start();
      expect(queue.status().jobs).toEqual([expect.objectContaining({ orderId: ORDER, copy: true })]);
      await printer.waitForReceipts(2);
      const copy = decodeEscPos(printer.receipts[1], { encoding: 'gb18030' });
      // The mark is the first thing on the slip, above the same receipt.
      expect(copy.lines[0].trim()).toBe(COPY_MARK.title);
      expect(copy.text).toContain(COPY_MARK.zh);
      expect(copy.text).toContain(first.text.trim());
      expect(copy.qr).toEqual(first.qr);
      expect(copy.cuts).toBe(1);
      await queue.stop();
      expect(events.filter((e) => e.type === 'printed')).toEqual([
        { type: 'printed', job: expect.objectContaining({ orderId: ORDER, copy: true }) },
      ]);
      expect(journal.printJobs.load()).toEqual([]);

      // A further restart prints nothing.
      const again = new PrintQueue({ store: journal.printJobs, copyMark: () => renderCopyMark(LAYOUT) });
      queues.push(again);
      await again.start();
      expect(again.status().jobs).toEqual([]);
      await again.stop();
      await new Promise((r) => setTimeout(r, 200));
      expect(printer.receipts).toHaveLength(2);
    } finally {
      for (const q of queues) await q.stop();
      journal.closeDb();
    }
  }, 30_000);
});
