/**
 * The whole capture chain, register to unit (issue 11: display total shown → offer on a unit, and printer job
 * end → offer, p99 under 20 ms on loopback), next to its floor in the same run: an order POSTed to the same
 * plugin's HTTP hook → offer on the unit (the path without capture).
 *
 * Everything runs in this one process on 127.0.0.0/8, as test/terminal/support/harness.ts's startShop does:
 * the payment server (createServerApp, SQLite in a scratch folder), a real plugin (createPluginApp) running
 * three manifests of manifests/ with only their ports and dispatch changed — http-hook (main: the hook
 * takes POSTs only as the main manifest), display-led8-hisense-vc110 (total lamp rule: final when the
 * total lamp's value is complete, no quiet time) and printer-tap-gb18030-80mm (raw TCP, forward none) —
 * and one real unit T1 (createTerminalApp) on the loopback LAN, to which every order is dispatched unicast.
 *
 * - **display**: the register writes a led8 total (ESC s 2, ESC Q A <amount> CR) to its end of a socat pty
 *   pair; the plugin reads the other end and passes the bytes on to a second pair, whose far end is read
 *   and dropped (the customer display). The clock starts just before the CR (the byte that completes the
 *   value) is written; everything before it went out ~5 ms earlier.
 * - **printer**: the register connects to the tap (one connection per job, as spoolers do) and prints a
 *   GB18030 receipt with a unique 单号 ending in GS V 66 0; the clock starts before the cut's last byte.
 * - **http (baseline)**: POST /api/orders {orderId, amount, dispatch unicast T1} over a kept-alive
 *   connection; the clock starts before the request is written.
 *
 * The clock stops when the unit's OfferInbox reports the new offer: from then on the unit's GET /api/offers
 * lists it. (The touch page polls that every second, so a clerk's screen shows it up to 1 s later still;
 * that is not in these figures.) The moment the plugin journaled the order (its `change` event) splits the
 * figure into capture and LAN parts. After each offer the register's side ends the sale (CLR on the display
 * line) and the order is canceled over the plugin's API (POST /api/orders/:id/cancel, which withdraws it
 * from the unit), so orders do not pile up as open. Blocks of the three kinds alternate in order
 * (A B C, C B A, …) so the machine's noise falls on all alike. Also reported: the display's pty read and
 * order-number journal, GC and event-loop delay over the rounds, and the path's durable writes timed alone.
 * Results in docs/BENCHMARKS.md; BENCH_CAPTURE_CPU_PROFILE=<dir> writes a CPU profile of the rounds.
 *
 *   npm run bench:capture:chain   (options: --rounds 6 --n 60 --warmup 20 --gap 2)
 */
import {
  closeSync,
  createReadStream,
  promises as fsp,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { Agent, createServer, Server } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import iconv from 'iconv-lite';
import { SerialDisplayAdapter } from '../../src/adapters/serial-display/serial-display.adapter';
import type { HeldOffer, OfferInbox } from '../../src/lan';
import { createPluginApp, RunningPlugin } from '../../src/plugin/plugin-app';
import { createServerApp, RunningServer } from '../../src/server/server-app';
import { createTerminalApp, RunningTerminal } from '../../src/terminal/terminal-app';
import { freeTcpPort } from '../../test/support/child-process';
import { PtyPair } from '../../test/support/pty';
import { REPO_ROOT } from '../../test/support/node-runner';
import { pickLanPorts } from '../../test/terminal/support/harness';
import {
  Cleanups,
  commandLine,
  isLoopback,
  jsonRequest,
  numberOption,
  startCpuProfile,
  stopOnSignalsOrAfter,
  summarize,
  watchGc,
  writeJson,
} from '../support/bench-kit';
import { elapsedMs, led8Value, manifestCopy, yuan } from '../support/shop';

type Kind = 'display' | 'printer' | 'http';
const KINDS: readonly Kind[] = ['display', 'printer', 'http'];
const HOST = '127.0.0.1';
const BROADCAST = '127.255.255.255';
const ADMIN = 'bench-chain-admin-token';
const HOOK_SECRET = 'bench-chain-hook-secret-0123456789';
const SAMPLE_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
const TIME_LIMIT_MS = 5 * 60_000;

const ESC = 0x1b;
const CR = Buffer.from([0x0d]);
const CLR = Buffer.from([0x0c]);
/** GS V 66 0: feed and partial cut, as chinese-80mm.hex ends. */
const CUT = Buffer.from([0x1d, 0x56, 0x42, 0x00]);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A led8 value command: ESC s lamp ESC Q A <text> CR, split so the caller can time the CR alone. */
function led8(lamp: number, text: string): { body: Buffer; last: Buffer } {
  return { body: led8Value(lamp, text), last: CR };
}

/** An 80 mm Chinese receipt in GB18030 (FS & mode), 应收 = `fen`, ending in a cut. */
function receipt(orderId: string, fen: number): Buffer {
  const text = (s: string) => iconv.encode(`${s}\n`, 'gb18030');
  return Buffer.concat([
    Buffer.from([ESC, 0x40, 0x1c, 0x26, ESC, 0x61, 0x01]),
    text('好又多超市'),
    Buffer.from([ESC, 0x61, 0x00]),
    text(`单号: ${orderId}`),
    text('收银员: 003   2026-11-29 10:21'),
    text('-'.repeat(44)),
    text(`金龙鱼大米5kg   1       ${yuan(fen)}     ${yuan(fen)}`),
    text('-'.repeat(44)),
    text(`合计:                          ￥${yuan(fen)}`),
    Buffer.from([ESC, 0x45, 0x01]),
    text(`应收:                          ￥${yuan(fen)}`),
    Buffer.from([ESC, 0x45, 0x00]),
    text(`实收:                          ￥${yuan(fen + 1000)}`),
    text(`找零:                          ￥${yuan(1000)}`),
    Buffer.from([0x1c, 0x2e, ESC, 0x64, 0x04]),
    CUT,
  ]);
}

/** The register host's end of the HTTP hook: answers every result delivery 200 and drops it. */
async function hookHost(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  return server;
}

/** One JSON request over the kept-alive agent; resolves with status and body. */
function call(
  agent: Agent,
  base: URL,
  method: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return jsonRequest(agent, base, method, urlPath, { body, headers, timeoutMs: REQUEST_TIMEOUT_MS });
}

/** Waits for the unit's inbox and the plugin's journal to report an order; `match` picks which. */
class Arrivals {
  private waiting?: {
    match: (orderId: string) => boolean;
    captured?: bigint;
    resolve: (a: { orderId: string; value: number; captured?: bigint; offered: bigint }) => void;
  };

  constructor(inbox: OfferInbox, plugin: RunningPlugin) {
    inbox.onChange((offer: HeldOffer, event) => {
      const at = process.hrtime.bigint();
      const w = this.waiting;
      if (event !== 'new' || !w || !w.match(offer.orderId)) return;
      this.waiting = undefined;
      w.resolve({ orderId: offer.orderId, value: offer.amount.value, captured: w.captured, offered: at });
    });
    plugin.service.on('change', (c: { kind: string; orderId?: string }) => {
      const w = this.waiting;
      if (c.kind === 'order' && w && w.captured === undefined && c.orderId && w.match(c.orderId))
        w.captured = process.hrtime.bigint();
    });
  }

  /** Arms the wait (before the register's last byte goes out). */
  expect(match: (orderId: string) => boolean) {
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<
      { orderId: string; value: number; captured?: bigint; offered: bigint } | undefined
    >((resolve) => {
      this.waiting = { match, resolve };
      timer = setTimeout(() => {
        this.waiting = undefined;
        resolve(undefined);
      }, SAMPLE_TIMEOUT_MS);
    });
    return done.finally(() => clearTimeout(timer));
  }
}

/**
 * Where the display's capture time goes: the adapter's private onBytes (a chunk read off the register's
 * pty) and nextOrderId (the order-number journal: read, write, fsync, rename) are wrapped to note the time.
 * In this process only; one hrtime call each.
 */
const displayStages = { bytesAt: 0n, seqStart: 0n, seqEnd: 0n };
function watchDisplayStages(): void {
  const proto = SerialDisplayAdapter.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const onBytes = proto['onBytes'];
  proto['onBytes'] = function (this: unknown, ...a: unknown[]) {
    displayStages.bytesAt = process.hrtime.bigint();
    return onBytes.apply(this, a);
  };
  const nextOrderId = proto['nextOrderId'];
  proto['nextOrderId'] = async function (this: unknown, ...a: unknown[]) {
    displayStages.seqStart = process.hrtime.bigint();
    try {
      return await nextOrderId.apply(this, a);
    } finally {
      displayStages.seqEnd = process.hrtime.bigint();
    }
  };
}

interface Sample {
  totalMs: number;
  /** Register's last byte (or the POST) → the plugin journaled the order. */
  captureMs: number;
  /** Journaled → the unit has the offer. */
  lanMs: number;
  /** display: the last byte written → the adapter has the chunk. */
  readMs?: number;
  /** display: the order-number journal (nextOrderId). */
  seqMs?: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function figures(samples: Sample[]) {
  const total = samples.map((s) => s.totalMs);
  const sum = summarize(total);
  return {
    n: sum.n,
    p50: sum.p50,
    p90: percentile(total, 90),
    p99: sum.p99,
    max: sum.max,
    mean: sum.mean,
    captureP50: percentile(
      samples.map((s) => s.captureMs),
      50,
    ),
    captureP99: percentile(
      samples.map((s) => s.captureMs),
      99,
    ),
    lanP50: percentile(
      samples.map((s) => s.lanMs),
      50,
    ),
    lanP99: percentile(
      samples.map((s) => s.lanMs),
      99,
    ),
    ...(samples[0]?.readMs !== undefined
      ? {
          readP50: percentile(
            samples.map((s) => s.readMs!),
            50,
          ),
          readP99: percentile(
            samples.map((s) => s.readMs!),
            99,
          ),
          seqP50: percentile(
            samples.map((s) => s.seqMs!),
            50,
          ),
          seqP99: percentile(
            samples.map((s) => s.seqMs!),
            99,
          ),
        }
      : {}),
  };
}

/**
 * The durable writes on the path, alone, in the same scratch folder: a one-row commit in a SQLite file set
 * up as the plugin's journal is (WAL, synchronous=FULL; the plugin makes four such commits between the
 * capture and the offer datagram), and the display adapter's order-number journal (read, write, fsync,
 * close, rename).
 */
async function durableWrites(dir: string, n: number) {
  const db = new Database(path.join(dir, 'steps.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const commit: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    insert.run(`row ${i}`);
    commit.push(elapsedMs(t0, process.hrtime.bigint()));
    await sleep(1);
  }
  db.close();
  const file = path.join(dir, 'steps.seq.json');
  const seqJournal: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fsp.readFile(file, 'utf8').catch(() => undefined);
    const handle = await fsp.open(`${file}.tmp`, 'w');
    await handle.writeFile(JSON.stringify({ date: '20261129', seq: i }));
    await handle.sync();
    await handle.close();
    await fsp.rename(`${file}.tmp`, file);
    seqJournal.push(elapsedMs(t0, process.hrtime.bigint()));
    await sleep(1);
  }
  const brief = (xs: number[]) => ({
    p50: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
  });
  return { sqliteCommitMs: brief(commit), orderNumberJournalMs: brief(seqJournal) };
}

/** Undone on every exit path: a normal end, an error, a signal, the time limit. */
const cleanups = new Cleanups();

async function main(): Promise<void> {
  const rounds = numberOption('rounds', 6);
  const n = numberOption('n', 60);
  const warmup = numberOption('warmup', 20);
  /** Pause after each sample's cancel, before the next sample. */
  const gapMs = numberOption('gap', 2);
  stopOnSignalsOrAfter(TIME_LIMIT_MS, () => cleanups.runAll(), 'the shop and its scratch folder');

  watchDisplayStages();
  const tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-bench-chain-'));
  cleanups.add(async () => rmSync(tmp, { recursive: true, force: true }));
  const lan = await pickLanPorts();
  for (const address of [HOST, BROADCAST])
    if (!isLoopback(address)) throw new Error(`${address} is not a loopback address`);

  // The payment server, a store, and registration codes.
  const server: RunningServer = await createServerApp({
    port: 0,
    host: HOST,
    db: { kind: 'sqlite', path: path.join(tmp, 'server.db') },
    adminToken: ADMIN,
    simSpeed: 50,
    logger: false,
  });
  cleanups.add(() => server.close());
  const serverUrl = new URL(server.url);
  if (!isLoopback(serverUrl.hostname)) throw new Error(`the server is on ${serverUrl.hostname}`);
  const adminAgent = new Agent({ keepAlive: true });
  const admin = async (p: string, body: unknown) => {
    const a = await call(adminAgent, serverUrl, 'POST', p, body, { authorization: `Bearer ${ADMIN}` });
    if (a.status !== 201) throw new Error(`${p}: HTTP ${a.status} ${a.body}`);
    return JSON.parse(a.body) as Record<string, string>;
  };
  const storeId = (await admin('/v1/stores', { name: 'Bench shop' })).id;
  const code = async (role: 'plugin' | 'terminal') =>
    (await admin(`/v1/stores/${storeId}/registration-codes`, { role })).code;

  // The register's cables: a pty pair to the plugin's input, one from the plugin to the display.
  const registerLine = await PtyPair.open(tmp, 'register');
  cleanups.add(() => registerLine.stop());
  const displayLine = await PtyPair.open(tmp, 'display');
  cleanups.add(() => displayLine.stop());
  const displayFd = openSync(displayLine.far, 'r+');
  const displayReader = createReadStream('', { fd: displayFd, autoClose: false });
  // A pty read fails with EIO once socat is gone at the end: expected.
  displayReader.on('error', () => undefined);
  displayReader.on('data', () => undefined);
  const registerFd = openSync(registerLine.far, 'r+');
  cleanups.add(async () => closeSync(registerFd));
  const hook = await hookHost();
  cleanups.add(() => new Promise<void>((r) => hook.close(() => r())));
  const tapPort = await freeTcpPort();
  const unicast = { mode: 'unicast', terminal: 'T1' };

  const displayManifest = manifestCopy(tmp, 'display-led8-hisense-vc110.yaml', (m) => {
    const o = m.options as Record<string, unknown>;
    o.input = `serial:${registerLine.near}`;
    o.display = `serial:${displayLine.near}`;
    m.dispatch = unicast;
  });
  const tapManifest = manifestCopy(tmp, 'printer-tap-gb18030-80mm.yaml', (m) => {
    const o = m.options as Record<string, unknown>;
    o.listen = `tcp://${HOST}:${tapPort}`;
    o.forward = 'none';
    m.dispatch = unicast;
  });
  const hookManifest = manifestCopy(tmp, 'http-hook.yaml', (m) => {
    m.writeBack = {
      callback: `http://${HOST}:${(hook.address() as net.AddressInfo).port}/payconnect/results`,
      secret: HOOK_SECRET,
      timeoutMs: 2000,
    };
    m.dispatch = unicast;
  });

  const lanConfig = { interfaceAddress: HOST, broadcastAddress: BROADCAST, ...lan };
  const plugin = await createPluginApp({
    // The HTTP hook takes POST /api/orders only as the main manifest (AdapterHost.httpHook).
    manifestPath: hookManifest,
    alsoManifests: [displayManifest, tapManifest],
    id: 'P1',
    serverUrl: server.url,
    registrationCode: await code('plugin'),
    port: 0,
    host: HOST,
    dataDir: path.join(tmp, 'P1'),
    lan: lanConfig,
    logger: false,
    watchManifest: false,
  });
  cleanups.add(() => plugin.close());
  const unit: RunningTerminal = await createTerminalApp({
    id: 'T1',
    serverUrl: server.url,
    registrationCode: await code('terminal'),
    port: 0,
    host: HOST,
    dataDir: path.join(tmp, 'T1'),
    lan: lanConfig,
    logger: false,
  });
  cleanups.add(() => unit.close());

  const pluginUrl = new URL(plugin.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  for (let i = 0; ; i++) {
    const t = await call(agent, pluginUrl, 'GET', '/api/terminals');
    if ((JSON.parse(t.body) as { id: string }[]).some((u) => u.id === 'T1')) break;
    if (i > 200) throw new Error('the plugin never heard unit T1 beacon');
    await sleep(50);
  }

  // The unit's inbox, where GET /api/offers reads from. RunningTerminal does not expose it; the bench
  // reaches it through the service's options (TypeScript allows this bracket access to a private field).
  const inbox = (unit.service['o'] as { inbox: OfferInbox }).inbox;
  const arrivals = new Arrivals(inbox, plugin);
  const failures: Record<Kind, string[]> = { display: [], printer: [], http: [] };
  let seq = 0;

  const one = async (kind: Kind): Promise<Sample | undefined> => {
    const i = ++seq;
    const fen = 100 + (i % 9000);
    let t0 = 0n;
    let arrived: Awaited<ReturnType<Arrivals['expect']>>;
    let stages = displayStages;
    if (kind === 'display') {
      const price = led8(1, yuan(fen));
      const total = led8(2, yuan(fen));
      writeSync(registerFd, Buffer.concat([price.body, price.last, total.body]));
      await sleep(5);
      const wait = arrivals.expect(() => true);
      t0 = process.hrtime.bigint();
      writeSync(registerFd, total.last);
      arrived = await wait;
      stages = { ...displayStages };
      writeSync(registerFd, CLR); // the sale is over: the next total is a new sale
    } else if (kind === 'printer') {
      const orderId = `PT${process.pid}-${i}`;
      const job = receipt(orderId, fen);
      const s = net.connect(tapPort, HOST);
      s.setNoDelay(true);
      s.on('error', () => undefined);
      await new Promise<void>((res, rej) => s.once('connect', res).once('error', rej));
      s.write(job.subarray(0, job.length - 1));
      await sleep(5);
      const wait = arrivals.expect((id) => id === orderId);
      t0 = process.hrtime.bigint();
      s.write(job.subarray(job.length - 1));
      arrived = await wait;
      s.end();
    } else {
      const orderId = `HH${process.pid}-${i}`;
      const wait = arrivals.expect((id) => id === orderId);
      t0 = process.hrtime.bigint();
      const posted = call(agent, pluginUrl, 'POST', '/api/orders', {
        orderId,
        amount: yuan(fen),
        dispatch: unicast,
      });
      arrived = await wait;
      const answer = await posted;
      if (answer.status !== 202) failures.http.push(`POST ${orderId}: HTTP ${answer.status} ${answer.body}`);
    }
    if (!arrived) {
      failures[kind].push(`sample ${i}: no offer at the unit within ${SAMPLE_TIMEOUT_MS} ms`);
      return undefined;
    }
    if (arrived.value !== fen)
      failures[kind].push(`${arrived.orderId}: offered ${arrived.value}, sent ${fen}`);
    const c = await call(
      agent,
      pluginUrl,
      'POST',
      `/api/orders/${encodeURIComponent(arrived.orderId)}/cancel`,
    );
    if (c.status !== 200) failures[kind].push(`cancel ${arrived.orderId}: HTTP ${c.status} ${c.body}`);
    await sleep(gapMs);
    const captured = arrived.captured ?? arrived.offered;
    return {
      totalMs: elapsedMs(t0, arrived.offered),
      captureMs: elapsedMs(t0, captured),
      lanMs: elapsedMs(captured, arrived.offered),
      ...(kind === 'display'
        ? {
            readMs: elapsedMs(t0, stages.bytesAt),
            seqMs: elapsedMs(stages.seqStart, stages.seqEnd),
          }
        : {}),
    };
  };

  for (const kind of KINDS) for (let i = 0; i < warmup; i++) await one(kind);
  for (const kind of KINDS) failures[kind].length = 0;

  const all: Record<Kind, Sample[]> = { display: [], printer: [], http: [] };
  const ratios: { display: number[]; printer: number[] } = { display: [], printer: [] };
  const started = Date.now();
  const gc = watchGc();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const stopProfile = startCpuProfile('BENCH_CAPTURE_CPU_PROFILE', 'chain');
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? KINDS : [...KINDS].reverse();
    const got: Record<Kind, Sample[]> = { display: [], printer: [], http: [] };
    for (const kind of order)
      for (let i = 0; i < n; i++) {
        const s = await one(kind);
        if (s) got[kind].push(s);
      }
    for (const kind of KINDS) all[kind].push(...got[kind]);
    if (process.env.BENCH_DEBUG)
      console.error(JSON.stringify({ got: KINDS.map((k) => got[k].length), failures }));
    const p99 = (k: Kind) =>
      percentile(
        got[k].map((s) => s.totalMs),
        99,
      );
    ratios.display.push(p99('display') / p99('http'));
    ratios.printer.push(p99('printer') / p99('http'));
    console.error(
      `round ${r + 1}/${rounds}: p99 display ${p99('display').toFixed(2)} ms, printer ${p99('printer').toFixed(2)} ms, http ${p99('http').toFixed(2)} ms`,
    );
  }
  await stopProfile();
  loopDelay.disable();
  gc.stop();
  const samples = KINDS.reduce((a, k) => a + all[k].length, 0);
  const process_ = {
    gcPauses: gc.gc.count,
    gcMsPer100Samples: (gc.gc.ms / samples) * 100,
    // The event loop that the server, the plugin and the unit share here: how late its timers ran.
    eventLoopDelayMs: {
      p50: loopDelay.percentile(50) / 1e6,
      p99: loopDelay.percentile(99) / 1e6,
      max: loopDelay.max / 1e6,
    },
  };
  const steps = await durableWrites(tmp, 300);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    command: commandLine(),
    at: new Date().toISOString(),
    node: process.version,
    seconds: (Date.now() - started) / 1000,
    displayRule:
      'display-led8-hisense-vc110: led8 binary lamps, lamp-first, final on the total lamp (no quiet time)',
    measuredAt: "the unit's OfferInbox 'new' event (GET /api/offers lists the offer from then on)",
    ms: {
      display: figures(all.display),
      printer: figures(all.printer),
      http: figures(all.http),
    },
    ratioToHttp: {
      display: {
        p50: summarize(all.display.map((s) => s.totalMs)).p50 / summarize(all.http.map((s) => s.totalMs)).p50,
        p99: summarize(all.display.map((s) => s.totalMs)).p99 / summarize(all.http.map((s) => s.totalMs)).p99,
        p99MedianOfRounds: median(ratios.display),
      },
      printer: {
        p50: summarize(all.printer.map((s) => s.totalMs)).p50 / summarize(all.http.map((s) => s.totalMs)).p50,
        p99: summarize(all.printer.map((s) => s.totalMs)).p99 / summarize(all.http.map((s) => s.totalMs)).p99,
        p99MedianOfRounds: median(ratios.printer),
      },
    },
    process: process_,
    steps,
    goalP99Ms: 20,
    failures,
  };
  console.log(JSON.stringify(result, null, 2));
  if (process.env.BENCH_CHAIN_SAMPLES) writeFileSync(process.env.BENCH_CHAIN_SAMPLES, JSON.stringify(all));
  await writeJson(path.join(REPO_ROOT, 'bench', 'capture', 'results', 'chain.json'), result);
  agent.destroy();
  adminAgent.destroy();
  await cleanups.runAll();
  process.exit(0);
}

main().catch(async (e) => {
  console.error(e);
  await cleanups.runAll();
  process.exit(1);
});
