/**
 * Does a unit's resident memory grow with its journal? The e2e bench's units grew about 1 MB of RSS a
 * minute while their live JS objects stayed flat (heap snapshots at minutes 11 and 19.5), so the question
 * is what else grows: SQLite's page cache, malloc, or the heap V8 reserves (heap total) around the objects. This writes attempts the way a sale does (begin,
 * the server's answer, relayed; the latest read back; what a restart resumes asked now and then) into a real
 * TerminalStore, as fast as the disk allows, and prints RSS and heap after a full collection at every
 * stage. The baseline is the first line: the process with the journal open and nothing written yet.
 *
 *   npm run bench:terminal:journal-rss   (options: --attempts 60000 --stages 6; the journal is in the
 *                                         system's temp folder, removed at the end, on Ctrl-C and on SIGTERM)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Payment } from '../../src/protocol/states';
import { TerminalStore } from '../../src/terminal/terminal-store';
import { commandLine, numberOption, stopOnSignalsOrAfter, writeJson } from '../support/bench-kit';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const attempts = Math.round(numberOption('attempts', 60_000));
const stages = Math.round(numberOption('stages', 6));
const dir = mkdtempSync(path.join(tmpdir(), 'payconnect-journal-rss-'));
let store: TerminalStore | undefined;
let stopped = false;
const cleanup = async () => {
  stopped = true;
  store?.close();
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
};
stopOnSignalsOrAfter(10 * 60_000, cleanup, `the scratch journal ${dir}`);

const mb = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

async function main(): Promise<void> {
  store = new TerminalStore(dir);
  const rows: {
    attempts: number;
    rssMB: number;
    heapUsedMB: number;
    heapTotalMB: number;
    seconds: number;
  }[] = [];
  const t0 = Date.now();
  const sample = (n: number) => {
    gc();
    const m = process.memoryUsage();
    rows.push({
      attempts: n,
      rssMB: mb(m.rss),
      heapUsedMB: mb(m.heapUsed),
      heapTotalMB: mb(m.heapTotal),
      seconds: (Date.now() - t0) / 1000,
    });
    const r = rows[rows.length - 1];
    console.log(
      `${r.attempts} attempts: RSS ${r.rssMB} MB, heap used ${r.heapUsedMB} MB of ${r.heapTotalMB} MB (${r.seconds.toFixed(0)} s)`,
    );
  };
  sample(0);
  const plugin = { to: 'P1', address: '127.0.0.1', port: 47811 };
  for (let i = 1; i <= attempts && !stopped; i++) {
    const orderId = `收银-${String(i).padStart(6, '0')}`;
    const now = Date.now();
    const a = store.beginAttempt({
      orderId,
      registerId: 'R1',
      plugin,
      amountValue: 8650,
      currency: 'CNY',
      storeId: 'sto_demo',
      now,
    });
    const payment: Payment = {
      id: `pay_${String(i).padStart(25, '0')}`,
      orderId,
      registerId: 'R1',
      amount: { value: 8650, currency: 'CNY' },
      status: 'succeeded',
      method: { type: 'wallet_code', brand: 'alipay' },
      createdAt: new Date(now).toISOString(),
      updatedAt: new Date(now).toISOString(),
    };
    store.update(
      orderId,
      a.attempt,
      { paymentId: payment.id, status: 'succeeded', payment, signature: 'A'.repeat(86) },
      now,
    );
    store.update(orderId, a.attempt, { relayed: true }, now);
    store.latest(orderId);
    if (i % 100 === 0) store.unfinished();
    if (i % 1000 === 0) await new Promise((r) => setImmediate(r)); // let a signal in
    if (i % Math.max(1, Math.floor(attempts / stages)) === 0) sample(i);
  }
  if (stopped) return;
  const file = path.join(__dirname, 'results', 'journal-rss.json');
  await writeJson(file, {
    command: commandLine(),
    at: new Date().toISOString(),
    node: process.version,
    rows,
  });
  console.log(`written ${file}`);
  await cleanup();
}

main().catch(async (e) => {
  console.error(e);
  await cleanup();
  process.exit(1);
});
