/**
 * What a unit keeps in memory per sale, over a long busy stretch: the heap after a full collection, sampled
 * after every stage of sales, and the bytes it grew by per sale in each stage. A unit that keeps a bounded
 * amount grows in the first stages (until its caps fill) and then not at all; one that leaks grows the
 * same in every stage.
 *
 * The unit is the real stack (TerminalService, OfferInbox, LanEndpoint, a real SQLite TerminalStore) on
 * the fake LAN and FakePaymentServer, in this process on a FakeClock: a sale is an offer from the register's
 * side, the clerk's scan of an approved code, and the result relayed back, 100 ms of fake time apart (10
 * sales a second, the rate of the e2e bench's units). Nothing sleeps, and the journal is on tmpfs, so 20,000
 * sales take a few minutes.
 * The baseline is the heap before the first sale, in the same run.
 *
 *   npm run bench:terminal:retention   (options: --sales 20000 --stages 8)
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FakePaymentServer } from '../../src/device/fake-payment-server';
import {
  FakeLanNetwork,
  LAN_UNHANDLED,
  LanEndpoint,
  LanInbound,
  LanKeyring,
  OfferDispatcher,
  OfferInbox,
  UnitBeacon,
  UnitDirectory,
} from '../../src/lan';
import { FakeClock } from '../../src/protocol/clock';
import { TerminalStore } from '../../src/terminal/terminal-store';
import { TerminalService } from '../../src/terminal/terminal.service';
import { commandLine, numberOption, stopOnSignalsOrAfter, writeJson } from '../support/bench-kit';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** 20,000 sales take a few minutes; a run that takes this long is stopped. */
const TIME_LIMIT_MS = 30 * 60_000;
const key = { id: 1, version: 1, key: Buffer.alloc(32, 7) };
const PLUGIN = { address: '10.0.0.1', port: 47811 };
const UNIT = { address: '10.0.0.10', port: 40000 };
const GROUP_PORT = 47810;
const APPROVED = '281234567890123400';

/** Heap in use after two full collections (the second picks up what finalizers freed). */
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function main(): Promise<void> {
  const sales = numberOption('sales', 20_000);
  const stages = numberOption('stages', 8);
  // On tmpfs where there is one: memory is what is measured, and an fsync per journal commit (10-20 ms on this
  // VM's disk) would make 20,000 sales take an hour.
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pc-bench-retention-'));
  // Bounded, and the scratch journal goes whatever way the run ends.
  stopOnSignalsOrAfter(
    TIME_LIMIT_MS,
    async () => rmSync(dir, { recursive: true, force: true }),
    'the scratch journal',
  );
  const clock = new FakeClock(Date.parse('2026-11-29T10:00:00Z'));
  const net = new FakeLanNetwork(3);
  const server = new FakePaymentServer('store_bench', { clock });
  // The register's side.
  const plugin = new LanEndpoint({
    deviceId: 'P1',
    keyring: new LanKeyring(key),
    transport: net.attach(PLUGIN.address, PLUGIN.port, PLUGIN.port),
    clock,
  });
  const directory = new UnitDirectory(plugin, { clock });
  directory.start();
  const dispatcher = new OfferDispatcher({
    endpoint: plugin,
    directory,
    broadcast: { kind: 'broadcast', address: '10.0.0.255', port: GROUP_PORT },
    clock,
  });
  dispatcher.start();
  let results = 0;
  plugin.onMessage((m: LanInbound) => {
    if (m.type === 'result') results++;
    else if (m.type !== 'progress') return LAN_UNHANDLED;
    return undefined;
  });
  // The unit.
  const store = new TerminalStore(dir);
  const endpoint = new LanEndpoint({
    deviceId: 'T1',
    keyring: new LanKeyring(key),
    transport: net.attach(UNIT.address, UNIT.port, GROUP_PORT),
    clock,
  });
  const inbox = new OfferInbox(endpoint, { clock });
  inbox.start();
  const beacon = new UnitBeacon({
    endpoint,
    name: 'T1',
    announce: [{ kind: 'broadcast', address: '10.0.0.255', port: PLUGIN.port }],
    status: () => 'idle',
    clock,
  });
  const service = new TerminalService({
    credentials: {
      deviceId: 'T1',
      storeId: server.storeId,
      token: 'token-T1',
      serverUrl: server.baseUrl,
      serverPublicKey: server.publicKey,
      name: 'T1',
    },
    store,
    server,
    endpoint,
    inbox,
    beacon,
    clock,
  });
  service.start();
  await clock.advanceAsync(50);

  const sale = async (n: number) => {
    const orderId = `收银-${String(n).padStart(6, '0')}`;
    const sent = dispatcher.offer(
      { orderId, registerId: 'R1', amount: { value: 1000 + (n % 5000), currency: 'CNY' } },
      { mode: 'unicast', terminal: 'T1' },
    );
    await clock.advanceAsync(20);
    await sent;
    const paid = service.pay(orderId, APPROVED);
    await clock.advanceAsync(80);
    const { attempt } = await paid;
    if (attempt.status !== 'succeeded') throw new Error(`${orderId}: ${attempt.status}`);
    // The page reads the list after every change: the read a busy unit does all day.
    service.offers();
  };

  const base = heapAfterGc();
  const rows: { sales: number; heapMB: number; bytesPerSale: number }[] = [];
  const perStage = Math.ceil(sales / stages);
  let done = 0;
  let last = base;
  const started = Date.now();
  for (let s = 0; s < stages; s++) {
    for (let i = 0; i < perStage; i++) {
      await sale(++done);
      // The fake clock runs on microtasks only: let the event loop (and so Ctrl-C) in now and then.
      if (done % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    const heap = heapAfterGc();
    rows.push({ sales: done, heapMB: heap / 2 ** 20, bytesPerSale: (heap - last) / perStage });
    console.error(
      `${done} sales (${((clock.now() - Date.parse('2026-11-29T10:00:00Z')) / 60_000).toFixed(1)} min of shop time): ` +
        `heap ${(heap / 2 ** 20).toFixed(1)} MB, ${((heap - last) / perStage).toFixed(0)} B per sale in this stage`,
    );
    last = heap;
  }
  const wallS = (Date.now() - started) / 1000;
  if (results < done) throw new Error(`only ${results} of ${done} results reached the register`);

  console.log(`# Unit memory per sale (bench/terminal/retention.ts)\n`);
  console.log(`${commandLine()}\n`);
  console.log(
    `${done} sales at 10 a second of shop time (${(done / 10 / 60).toFixed(0)} min), ${wallS.toFixed(0)} s of wall time; ` +
      `heap before the first sale ${(base / 2 ** 20).toFixed(1)} MB.\n`,
  );
  console.log('| after sales | heap after GC | grew per sale in the stage |\n| ---: | ---: | ---: |');
  for (const r of rows)
    console.log(`| ${r.sales} | ${r.heapMB.toFixed(1)} MB | ${r.bytesPerSale.toFixed(0)} B |`);
  await writeJson(path.join(__dirname, 'results', 'retention.json'), {
    command: commandLine(),
    at: new Date().toISOString(),
    sales: done,
    baseMB: base / 2 ** 20,
    rows,
  });

  await service.stop();
  beacon.stop();
  inbox.stop();
  await endpoint.close();
  await plugin.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
