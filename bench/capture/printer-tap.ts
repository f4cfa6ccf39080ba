/**
 * What the printer tap costs the register, and how soon a receipt becomes an order (issue 11, bench/capture).
 *
 * In one process on 127.0.0.1, a stand-in printer that answers status queries (DLE EOT 1 → one status
 * byte) the moment they arrive, and the printer-tap adapter forwarding to it. Measured in alternating
 * batches, so the machine's noise falls on both alike:
 * - status round trip, register → printer directly (the baseline) and register → tap → printer → tap →
 *   register: the pass-through's added latency, as the register feels it;
 * - job end → order: from the last byte of a Chinese receipt (ending in a cut) leaving the register to the
 *   adapter's onOrder, which is where the plugin journals and offers it.
 *
 *   npm run bench:capture            (options: --rounds 10 --n 300 --jobs 50)
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseManifest } from '../../src/adapters/manifest';
import { createAdapter } from '../../src/adapters/registry';
import { PrinterTapAdapter } from '../../src/adapters/printer-tap/printer-tap.adapter';
import { SystemClock } from '../../src/protocol/clock';
import { REPO_ROOT } from '../../test/support/node-runner';
import { commandLine, numberOption, summarize, writeJson } from '../support/bench-kit';

const STATUS_QUERY = Buffer.from([0x10, 0x04, 0x01]);
const CUT = Buffer.from([0x1d, 0x56, 0x00]);

function hexFixture(name: string): Buffer {
  const text = readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'printer-tap', name), 'utf8');
  return Buffer.from(
    text
      .split('\n')
      .map((l) => l.replace(/#.*$/, ''))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
}

/** A printer that answers every DLE EOT n at once with "online" (0x16) and swallows everything else. */
async function standInPrinter(): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('data', (d) => {
      for (let i = 0; i + 2 < d.length; i++)
        if (d[i] === 0x10 && d[i + 1] === 0x04) s.write(Buffer.from([0x16]));
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

/** N status round trips on one connection to `port`, in ms each. */
async function statusRoundTrips(port: number, n: number): Promise<number[]> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      s.once('data', () => resolve());
      s.write(STATUS_QUERY);
    });
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  s.destroy();
  return out;
}

async function main(): Promise<void> {
  const rounds = numberOption('rounds', 10);
  const n = numberOption('n', 300);
  const jobs = numberOption('jobs', 50);
  const printer = await standInPrinter();
  const printerPort = (printer.address() as net.AddressInfo).port;
  const manifest = parseManifest(
    [
      'id: bench-tap',
      'name: bench',
      'adapter: printer-tap',
      'register: R1',
      `options: { listen: "tcp://127.0.0.1:0", forward: "tcp://127.0.0.1:${printerPort}", jobIdleMs: 5000 }`,
      'parse: { encoding: gb18030, currency: CNY }',
      'writeBack: {}',
      'dispatch: { mode: broadcast }',
    ].join('\n'),
    'bench-tap.yaml',
  );
  const tap = createAdapter(manifest, { baseDir: REPO_ROOT, clock: new SystemClock() }) as PrinterTapAdapter;
  let orderAt: (() => void) | undefined;
  let orders = 0;
  await tap.start({
    onOrder: async () => {
      orders++;
      orderAt?.();
    },
    onReject: (r) => console.error(`rejected: ${r.message}`),
  });
  const receipt = Buffer.concat([hexFixture('chinese-80mm.hex'), CUT]);

  const direct: number[] = [];
  const through: number[] = [];
  const ratios: { p50: number; p99: number }[] = [];
  const jobToOrder: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['direct', 'tap'] : ['tap', 'direct'];
    const got: Record<string, number[]> = {};
    for (const which of order)
      got[which] = await statusRoundTrips(which === 'direct' ? printerPort : tap.port, n);
    direct.push(...got.direct);
    through.push(...got.tap);
    const d = summarize(got.direct);
    const t = summarize(got.tap);
    ratios.push({ p50: t.p50 / d.p50, p99: t.p99 / d.p99 });
    // Jobs: one connection each, as spoolers print; the clock stops at onOrder.
    for (let j = 0; j < jobs / rounds; j++) {
      const s = net.connect(tap.port, '127.0.0.1');
      await new Promise<void>((res, rej) => s.once('connect', res).once('error', rej));
      const seen = new Promise<void>((res) => (orderAt = res));
      s.write(receipt.subarray(0, receipt.length - 1));
      const t0 = process.hrtime.bigint();
      s.write(receipt.subarray(receipt.length - 1));
      await seen;
      jobToOrder.push(Number(process.hrtime.bigint() - t0) / 1e6);
      s.destroy();
    }
  }
  await tap.stop();
  await new Promise((r) => printer.close(r));
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    command: commandLine(),
    at: new Date().toISOString(),
    node: process.version,
    statusDirectMs: summarize(direct),
    statusThroughTapMs: summarize(through),
    addedP50Ms: summarize(through).p50 - summarize(direct).p50,
    addedP99Ms: summarize(through).p99 - summarize(direct).p99,
    medianRatio: { p50: median(ratios.map((x) => x.p50)), p99: median(ratios.map((x) => x.p99)) },
    jobEndToOrderMs: summarize(jobToOrder),
    orders,
  };
  console.log(JSON.stringify(result, null, 2));
  await writeJson(path.join(REPO_ROOT, 'bench', 'capture', 'results', 'printer-tap.json'), result);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
