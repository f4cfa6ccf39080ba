// LAN benchmark: sealed, acknowledged delivery (LanEndpoint over UdpLanTransport) against raw UDP, measured
// side by side in one run, on loopback and across two network namespaces, plus delivery under 30% loss.
//
//   SWC_NODE_PROJECT=$PWD/tsconfig.json node -r @swc-node/register bench/lan/run.ts [options]
//
//   --n <count>          sequential round trips per kind (default 5000, after 1000 warm-up)
//   --window <count>     round trips in flight for throughput (default 64)
//   --seconds <s>        throughput time per kind (default 3, in 3 alternating rounds)
//   --loss-count <count> offers sent at once in the loss test (default 500)
//   --gc-n <count>       sequential round trips per GC block (default 20000)
//   --gc-blocks <count>  GC blocks per kind (default 3)
//   --loopback-only      skip the namespace and loss parts
//   --loss-only          only the loss part (needs root): no round-trip measurements, no profile
//   --nest-cost          run bench/lan/nest-cost.ts instead (what Nest costs on the LAN path; its own options)
//
// How: a sender peer and a receiver peer (peer.ts) run as separate processes. The receiver holds a unit
// endpoint and a raw echo socket; the sender alternates blocks of sealed and raw round trips, so both see
// the same machine load, and the ratio or difference between them is the figure. Traffic goes only to
// 127.0.0.1 or to hosts of the LAN this run creates (test/support/netns.ts), which destroy() removes on
// every exit path (end, error, SIGINT, SIGTERM, time limit). Needs root for the namespace part; without it
// the loopback part runs alone and the output says so.
//
// The GC figure (the goal's "GC per 1,000 round trips") has its own blocks: a few pauses in 5,000 round
// trips, landing in whichever block filled the young generation (often a raw block right after a sealed
// one), made it swing several-fold between runs. So each GC block starts after a forced full collection in
// both processes (not counted: gc-meter.ts), and runs long enough (20,000 round trips) for several
// scavenges in both kinds; the report gives the total per 1,000 and the spread over blocks.
//
// Results: a Markdown table on stdout and bench/lan/results/latest.json.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_DEADLINE_MS, lanKeyToJson } from '../../src/lan';
import { createLan, type Lan } from '../../test/support/netns';
import { REPO_ROOT, runTs, type JsonLineChild, type JsonMessage } from '../../test/support/node-runner';
import { builtin } from '../../test/support/prerequisites';
import {
  ask as askChild,
  Cleanups,
  commandLine,
  numberOption,
  stopChild,
  stopOnSignalsOrAfter,
  writeJson,
} from '../support/bench-kit';
import { BENCH_KEY_ENV, isLoopback, summarize, type Summary } from './common';
import { profileLanStack, type CostRow } from './profile';

const PEER = 'bench/lan/peer.ts';
const RESULTS = path.join(
  REPO_ROOT,
  'bench',
  'lan',
  'results',
  process.argv.includes('--loss-only') ? 'loss.json' : 'latest.json',
);
/** The whole run stops (cleaning up) after this, whatever happens. */
const HARD_LIMIT_MS = 360_000;

const CONFIG = {
  n: Math.round(numberOption('n', 5000)),
  warmup: 1000,
  blocks: 10,
  window: Math.round(numberOption('window', 64)),
  throughputMs: Math.round(numberOption('seconds', 3) * 1000),
  rounds: 3,
  lossPercent: 30,
  lossCount: Math.round(numberOption('loss-count', 500)),
  lossDeadlineMs: 60_000,
  gcN: Math.round(numberOption('gc-n', 20_000)),
  gcBlocks: Math.round(numberOption('gc-blocks', 3)),
  loopbackOnly: process.argv.includes('--loopback-only'),
  lossOnly: process.argv.includes('--loss-only'),
};

// --- cleanup on every exit path ---------------------------------------------------------------------

const cleanups = new Cleanups();
stopOnSignalsOrAfter(HARD_LIMIT_MS, () => stopEverything(), 'namespaces');

/** A LAN being created registers its cleanup only once createLan returns: a signal waits for that. */
let creatingLan: Promise<unknown> = Promise.resolve();
function stopEverything(): Promise<void> {
  return creatingLan.catch(() => undefined).then(() => cleanups.runAll());
}

// --- talking to the peers ---------------------------------------------------------------------------

const ask = (agent: JsonLineChild, cmd: JsonMessage, event: string, timeoutMs = 60_000) =>
  askChild(agent, cmd, event, timeoutMs);
/** Closes the peer's stdin (it then exits by itself); kills it if it is still there after 2 s. */
const stopPeer = (peer: JsonLineChild) => stopChild(peer, 2000);

function startPeer(
  role: 'sender' | 'receiver',
  args: string[],
  env: NodeJS.ProcessEnv,
  lan?: Lan,
  host?: string,
) {
  const peer = runTs(PEER, [role, ...args], {
    env,
    label: `${host ?? 'loopback'}:${role}`,
    ...(lan ? { lan, host } : {}),
  });
  cleanups.add(() => stopPeer(peer));
  return peer;
}

async function peerPair(env: NodeJS.ProcessEnv, senderAddr: string, receiverAddr: string, lan?: Lan) {
  if (!isLoopback(receiverAddr) && !(lan && Object.values(lan.hosts).some((h) => h.address === receiverAddr)))
    throw new Error(`refusing to target ${receiverAddr}`);
  const receiver = startPeer('receiver', ['--bind', receiverAddr], env, lan, lan ? 'unit' : undefined);
  const ready = await receiver.next({ event: 'ready' }, 20_000);
  const sender = startPeer(
    'sender',
    [
      '--bind',
      senderAddr,
      '--target',
      receiverAddr,
      '--lan-port',
      String(ready.lanPort),
      '--echo-port',
      String(ready.echoPort),
      ...(lan ? ['--lan-subnet', lan.subnet] : []),
    ],
    env,
    lan,
    lan ? 'plugin' : undefined,
  );
  const senderReady = await sender.next({ event: 'ready' }, 20_000);
  return { sender, receiver, datagramBytes: senderReady.sealedLength as number };
}

// --- the measurements -------------------------------------------------------------------------------

type Kind = 'sealed' | 'raw';
const KINDS: Kind[] = ['raw', 'sealed'];
/** Alternate which kind goes first, so neither always runs right after the other's warm caches. */
const order = (i: number): Kind[] => (i % 2 ? [...KINDS].reverse() : KINDS);

interface KindResult {
  latencyMs: Summary;
  lostRoundTrips: number;
  /** CPU (all threads) and GC pauses per round trip, sender and receiver, in the sequential part. */
  sequential: PerProcess;
  throughput: { roundTrips: number; seconds: number; perSecond: number; lostInFlight: number };
  /** The same in the windowed (throughput) part. */
  windowed: PerProcess;
  /** The GC figure: blocks of sequential round trips, each after a forced full collection of both processes. */
  gc: GcFigure;
}

interface GcBlock {
  roundTrips: number;
  lost: number;
  seconds: number;
  /** Both processes. */
  pauses: number;
  minorPauses: number;
  msPer1000RoundTrips: number;
  minorMsPer1000RoundTrips: number;
}

interface GcFigure {
  blocks: GcBlock[];
  roundTrips: number;
  pauses: number;
  minorPauses: number;
  /** Total pause ms of both processes over all blocks, per 1,000 round trips. */
  msPer1000RoundTrips: number;
  minorMsPer1000RoundTrips: number;
}

interface PerProcess {
  cpuMicrosPerRoundTrip: { sender: number; receiver: number };
  gcMsPer1000RoundTrips: { sender: number; receiver: number };
  gcPauses: { sender: number; receiver: number };
}

interface PairResult {
  datagramBytes: number;
  sealed: KindResult;
  raw: KindResult;
  senderRetransmissions: number;
  receiverDrops: Record<string, number>;
}

interface Gc {
  count: number;
  ms: number;
  minorCount: number;
  minorMs: number;
}

const gcPlus = (a: Gc, b: Gc): Gc => ({
  count: a.count + b.count,
  ms: a.ms + b.ms,
  minorCount: a.minorCount + b.minorCount,
  minorMs: a.minorMs + b.minorMs,
});
const gcMinus = (a: Gc, b: Gc): Gc => ({
  count: a.count - b.count,
  ms: a.ms - b.ms,
  minorCount: a.minorCount - b.minorCount,
  minorMs: a.minorMs - b.minorMs,
});
const NO_GC: Gc = { count: 0, ms: 0, minorCount: 0, minorMs: 0 };

/** Running totals of one kind in one part (sequential or windowed). */
class Tally {
  roundTrips = 0;
  senderCpu = 0;
  receiverCpu = 0;
  senderGc: Gc = NO_GC;
  receiverGc: Gc = NO_GC;

  add(roundTrips: number, senderCpu: number, receiverCpu: number, senderGc: Gc, receiverGc: Gc): void {
    this.roundTrips += roundTrips;
    this.senderCpu += senderCpu;
    this.receiverCpu += receiverCpu;
    this.senderGc = gcPlus(this.senderGc, senderGc);
    this.receiverGc = gcPlus(this.receiverGc, receiverGc);
  }

  result(): PerProcess {
    const per = (x: number, k = 1) => (this.roundTrips ? (x * k) / this.roundTrips : NaN);
    return {
      cpuMicrosPerRoundTrip: { sender: per(this.senderCpu), receiver: per(this.receiverCpu) },
      gcMsPer1000RoundTrips: { sender: per(this.senderGc.ms, 1000), receiver: per(this.receiverGc.ms, 1000) },
      gcPauses: { sender: this.senderGc.count, receiver: this.receiverGc.count },
    };
  }
}

/** The receiver's CPU time and GC totals so far. */
async function receiverUsage(receiver: JsonLineChild): Promise<{ cpu: number; gc: Gc }> {
  const r = await ask(receiver, { cmd: 'cpu' }, 'cpu');
  return { cpu: r.micros as number, gc: r.gc as Gc };
}

/** Runs `fn` (one sender command) and books it, with the receiver's usage over the same span. */
async function booked(
  receiver: JsonLineChild,
  tally: Tally,
  fn: () => Promise<JsonMessage>,
  count: (r: JsonMessage) => number,
) {
  const before = await receiverUsage(receiver);
  const r = await fn();
  const after = await receiverUsage(receiver);
  tally.add(
    count(r),
    r.cpuMicros as number,
    after.cpu - before.cpu,
    r.gc as Gc,
    gcMinus(after.gc, before.gc),
  );
  return r;
}

/** One GC block: both processes collected (forced, not counted), then `n` sequential round trips. */
async function gcBlock(
  sender: JsonLineChild,
  receiver: JsonLineChild,
  kind: Kind,
  n: number,
): Promise<GcBlock> {
  await Promise.all([
    ask(sender, { cmd: 'collect' }, 'collected'),
    ask(receiver, { cmd: 'collect' }, 'collected'),
  ]);
  const before = await receiverUsage(receiver);
  const r = await ask(sender, { cmd: 'gc-block', kind, n }, 'gc-block', 300_000);
  const after = await receiverUsage(receiver);
  const both = gcPlus(r.gc as Gc, gcMinus(after.gc, before.gc));
  const roundTrips = (r.count as number) - (r.lost as number);
  return {
    roundTrips,
    lost: r.lost as number,
    seconds: r.seconds as number,
    pauses: both.count,
    minorPauses: both.minorCount,
    msPer1000RoundTrips: (both.ms * 1000) / roundTrips,
    minorMsPer1000RoundTrips: (both.minorMs * 1000) / roundTrips,
  };
}

function gcFigure(blocks: GcBlock[]): GcFigure {
  const roundTrips = blocks.reduce((a, b) => a + b.roundTrips, 0);
  const sum = (f: (b: GcBlock) => number) => blocks.reduce((a, b) => a + f(b), 0);
  // Back from per-1,000 to ms, so the total weights each block by its round trips.
  const ms = sum((b) => (b.msPer1000RoundTrips * b.roundTrips) / 1000);
  const minorMs = sum((b) => (b.minorMsPer1000RoundTrips * b.roundTrips) / 1000);
  return {
    blocks,
    roundTrips,
    pauses: sum((b) => b.pauses),
    minorPauses: sum((b) => b.minorPauses),
    msPer1000RoundTrips: (ms * 1000) / roundTrips,
    minorMsPer1000RoundTrips: (minorMs * 1000) / roundTrips,
  };
}

async function measurePair(env: NodeJS.ProcessEnv, senderAddr: string, receiverAddr: string, lan?: Lan) {
  const { sender, receiver, datagramBytes } = await peerPair(env, senderAddr, receiverAddr, lan);
  const { n, warmup, blocks, window, throughputMs, rounds } = CONFIG;
  for (const kind of KINDS) await ask(sender, { cmd: 'latency', kind, n: warmup }, 'latency');
  for (const kind of KINDS) await ask(sender, { cmd: 'throughput', kind, ms: 300, window }, 'throughput');

  const acc = {} as Record<
    Kind,
    { samples: number[]; seq: Tally; win: Tally; count: number; seconds: number; lost: number }
  >;
  for (const k of KINDS)
    acc[k] = { samples: [], seq: new Tally(), win: new Tally(), count: 0, seconds: 0, lost: 0 };

  const perBlock = Math.ceil(n / blocks);
  for (let b = 0; b < blocks; b++) {
    for (const kind of order(b)) {
      const r = await booked(
        receiver,
        acc[kind].seq,
        () => ask(sender, { cmd: 'latency', kind, n: perBlock }, 'latency'),
        (r) => (r.samples as unknown[]).length,
      );
      acc[kind].samples.push(...(r.samples as (number | null)[]).map((x) => (x === null ? NaN : x)));
    }
  }
  for (let i = 0; i < rounds; i++) {
    for (const kind of order(i)) {
      const r = await booked(
        receiver,
        acc[kind].win,
        () =>
          ask(
            sender,
            { cmd: 'throughput', kind, ms: Math.round(throughputMs / rounds), window },
            'throughput',
          ),
        (r) => r.count as number,
      );
      acc[kind].count += r.count as number;
      acc[kind].seconds += r.seconds as number;
      acc[kind].lost += r.lost as number;
    }
  }
  const gcBlocks: Record<Kind, GcBlock[]> = { sealed: [], raw: [] };
  for (let b = 0; b < CONFIG.gcBlocks; b++)
    for (const kind of order(b)) gcBlocks[kind].push(await gcBlock(sender, receiver, kind, CONFIG.gcN));
  const senderStats = (await ask(sender, { cmd: 'stats' }, 'stats')).stats as { retransmissions: number };
  const receiverStats = (await ask(receiver, { cmd: 'stats' }, 'stats')).stats as {
    dropped: Record<string, number>;
  };
  const result = (kind: Kind): KindResult => {
    const a = acc[kind];
    const timed = a.samples.filter((x) => Number.isFinite(x));
    return {
      latencyMs: summarize(timed),
      lostRoundTrips: a.samples.length - timed.length,
      sequential: a.seq.result(),
      throughput: {
        roundTrips: a.count,
        seconds: a.seconds,
        perSecond: a.count / a.seconds,
        lostInFlight: a.lost,
      },
      windowed: a.win.result(),
      gc: gcFigure(gcBlocks[kind]),
    };
  };
  return {
    pair: { sender, receiver },
    result: {
      datagramBytes,
      sealed: result('sealed'),
      raw: result('raw'),
      senderRetransmissions: senderStats.retransmissions,
      receiverDrops: Object.fromEntries(Object.entries(receiverStats.dropped).filter(([, v]) => v > 0)),
    } satisfies PairResult,
  };
}

interface BurstResult {
  offers: number;
  /** Acked, but later than LanEndpoint's default 10 s deadline: lost with default options. */
  slowerThanDefaultDeadline: number;
  acked: number;
  notAcked: number;
  neverProcessed: number;
  processedMoreThanOnce: number;
  deliveryMs: Summary;
  attemptsMean: number;
  attemptsMax: number;
  retransmissions: number;
  duplicatesSeenByUnit: number;
  /** Datagrams sent during the burst: offers and retransmissions by the plugin, acks by the unit. */
  datagrams: { plugin: number; unit: number };
  wallMs: number;
  /** The kernel's UDP counters (/proc/net/snmp of each host's namespace) over the burst. */
  kernelUdp: Record<string, UdpCounters>;
}

type UdpCounters = Record<string, number>;

/** A host's UDP counters (InDatagrams, InErrors, RcvbufErrors, …): /proc/net/snmp is per namespace. */
async function udpCounters(lan: Lan, host: string): Promise<UdpCounters> {
  const r = await lan.exec(host, 'cat', ['/proc/net/snmp']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp: '));
  if (lines.length < 2) return {};
  const names = lines[0].split(/\s+/).slice(1);
  const values = lines[1].split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

function counterDelta(a: UdpCounters, b: UdpCounters): UdpCounters {
  const keep = ['InDatagrams', 'OutDatagrams', 'InErrors', 'RcvbufErrors', 'SndbufErrors'];
  return Object.fromEntries(keep.filter((k) => k in a && k in b).map((k) => [k, b[k] - a[k]]));
}

/** Which retry schedule a burst uses: today's (DEFAULT_RETRY) or the one before issue 14. */
type Schedule = 'default' | 'backoff-only';
const SCHEDULES: Schedule[] = ['backoff-only', 'default'];

async function burst(
  lan: Lan,
  sender: JsonLineChild,
  receiver: JsonLineChild,
  prefix: string,
  schedule: Schedule,
): Promise<BurstResult> {
  const { lossCount: count, lossDeadlineMs: deadlineMs } = CONFIG;
  const hosts = ['plugin', 'unit'];
  type UnitStats = { duplicates: number; datagramsOut: number };
  const k0 = await Promise.all(hosts.map((h) => udpCounters(lan, h)));
  const u0 = (await ask(receiver, { cmd: 'stats' }, 'stats')).stats as UnitStats;
  const r = await ask(
    sender,
    { cmd: 'burst', prefix, count, deadlineMs, schedule },
    'burst',
    deadlineMs + 30_000,
  );
  // Retransmissions still in the air when the last ack arrived may yet land: let them, then count.
  await new Promise((res) => setTimeout(res, 300));
  const counts = (await ask(receiver, { cmd: 'counts', prefix }, 'counts')).counts as Record<string, number>;
  const u1 = (await ask(receiver, { cmd: 'stats' }, 'stats')).stats as UnitStats;
  const k1 = await Promise.all(hosts.map((h) => udpCounters(lan, h)));
  const ids = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(8, '0')}`);
  const attempts = r.attempts as number[];
  const times = r.times as number[];
  return {
    offers: count,
    slowerThanDefaultDeadline: times.filter((t) => t > DEFAULT_DEADLINE_MS).length,
    acked: times.length,
    notAcked: (r.failed as string[]).length,
    neverProcessed: ids.filter((id) => !counts[id]).length,
    processedMoreThanOnce: Object.values(counts).filter((v) => v > 1).length,
    deliveryMs: summarize(times),
    attemptsMean: attempts.reduce((a, b) => a + b, 0) / Math.max(1, attempts.length),
    attemptsMax: Math.max(0, ...attempts),
    retransmissions: r.retransmissions as number,
    duplicatesSeenByUnit: u1.duplicates - u0.duplicates,
    datagrams: { plugin: r.datagramsOut as number, unit: u1.datagramsOut - u0.datagramsOut },
    wallMs: r.wallMs as number,
    kernelUdp: Object.fromEntries(hosts.map((h, i) => [h, counterDelta(k0[i], k1[i])])),
  };
}

// --- report -----------------------------------------------------------------------------------------

const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const fi = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : 'n/a');
const diff = (a: number, b: number, d = 3, unit = ' ms') => `${a - b >= 0 ? '+' : ''}${f(a - b, d)}${unit}`;

function pairRows(label: string, p: PairResult): string[] {
  const { sealed: s, raw: r } = p;
  const row = (what: string, a: number, b: number, d: number, unit: string) =>
    `| ${label}: ${what} | ${f(a, d)} | ${f(b, d)} | ${ratio(a, b)} | ${diff(a, b, d, unit)} |`;
  const both = (x: { sender: number; receiver: number }) => x.sender + x.receiver;
  return [
    row('round trip p50 (ms)', s.latencyMs.p50, r.latencyMs.p50, 3, ' ms'),
    row('round trip p99 (ms)', s.latencyMs.p99, r.latencyMs.p99, 3, ' ms'),
    row('round trip mean (ms)', s.latencyMs.mean, r.latencyMs.mean, 3, ' ms'),
    `| ${label}: throughput, ${CONFIG.window} in flight (round trips/s) | ${fi(s.throughput.perSecond)} | ${fi(r.throughput.perSecond)} | ${ratio(s.throughput.perSecond, r.throughput.perSecond)} | ${s.throughput.perSecond >= r.throughput.perSecond ? '+' : '-'}${fi(Math.abs(s.throughput.perSecond - r.throughput.perSecond))}/s |`,
    row(
      'CPU per round trip, sequential (µs, both processes)',
      both(s.sequential.cpuMicrosPerRoundTrip),
      both(r.sequential.cpuMicrosPerRoundTrip),
      1,
      ' µs',
    ),
    row(
      'CPU per round trip, windowed (µs, both processes)',
      both(s.windowed.cpuMicrosPerRoundTrip),
      both(r.windowed.cpuMicrosPerRoundTrip),
      1,
      ' µs',
    ),
    row(
      'GC pause per 1,000 round trips, sequential part (ms, both processes; a few pauses)',
      both(s.sequential.gcMsPer1000RoundTrips),
      both(r.sequential.gcMsPer1000RoundTrips),
      2,
      ' ms',
    ),
    row(
      'GC pause per 1,000 round trips, windowed (ms, both processes)',
      both(s.windowed.gcMsPer1000RoundTrips),
      both(r.windowed.gcMsPer1000RoundTrips),
      2,
      ' ms',
    ),
    gcRow(label, s.gc, r.gc),
    `| ${label}: GC blocks: pauses, minor / other (both processes) | ${s.gc.minorPauses} / ${s.gc.pauses - s.gc.minorPauses} | ${r.gc.minorPauses} / ${r.gc.pauses - r.gc.minorPauses} | | |`,
    row(
      'GC blocks: minor (scavenge) pause per 1,000 round trips (ms)',
      s.gc.minorMsPer1000RoundTrips,
      r.gc.minorMsPer1000RoundTrips,
      2,
      ' ms',
    ),
  ];
}

/** The goal's GC row: the total over the GC blocks, with the range over blocks and over block pairs. */
function gcRow(label: string, s: GcFigure, r: GcFigure): string {
  const range = (xs: number[], d: number, unit = '') =>
    xs.length ? `${f(Math.min(...xs), d)}–${f(Math.max(...xs), d)}${unit}` : 'n/a';
  const per = (g: GcFigure) => g.blocks.map((b) => b.msPer1000RoundTrips);
  const pairRatios = s.blocks
    .map((b, i) => b.msPer1000RoundTrips / r.blocks[i]?.msPer1000RoundTrips)
    .filter((x) => Number.isFinite(x));
  return (
    `| ${label}: **GC pause per 1,000 round trips**, ${s.blocks.length} × ${fi(CONFIG.gcN)} sequential after a full collection (ms, both processes; range over blocks) ` +
    `| ${f(s.msPer1000RoundTrips, 2)} (${range(per(s), 2)}) | ${f(r.msPer1000RoundTrips, 2)} (${range(per(r), 2)}) ` +
    `| ${ratio(s.msPer1000RoundTrips, r.msPer1000RoundTrips)} (pairs ${range(pairRatios, 2, '×')}) | ${diff(s.msPer1000RoundTrips, r.msPer1000RoundTrips, 2, ' ms')} |`
  );
}

/** The loss test: each schedule at 30% loss and at no loss, all in one run. */
type LossResults = Record<Schedule, { loss: BurstResult; base: BurstResult }>;

function lossRows(r: LossResults): string[] {
  const cols = [r.default.loss, r['backoff-only'].loss, r.default.base, r['backoff-only'].base];
  const row = (what: string, cell: (b: BurstResult) => string) =>
    `| ${what} | ${cols.map(cell).join(' | ')} |`;
  const total = (b: BurstResult) => b.datagrams.plugin + b.datagrams.unit;
  const kernelDrops = (b: BurstResult) =>
    String((b.kernelUdp.plugin?.RcvbufErrors ?? NaN) + (b.kernelUdp.unit?.RcvbufErrors ?? NaN));
  return [
    `| Unicast offers, all in flight at once, deadline ${CONFIG.lossDeadlineMs / 1000} s | ${CONFIG.lossPercent}% loss on both hosts: retry schedule now | ${CONFIG.lossPercent}% loss: schedule before (baseline) | no loss: schedule now | no loss: schedule before (baseline) |`,
    '|---|--:|--:|--:|--:|',
    row('offers sent', (b) => String(b.offers)),
    row('lost: not acknowledged by the deadline', (b) => String(b.notAcked)),
    row('lost: never processed by the unit', (b) => String(b.neverProcessed)),
    row('processed more than once by the unit', (b) => String(b.processedMoreThanOnce)),
    row('delivery (send → ack) p50 (ms)', (b) => f(b.deliveryMs.p50, 1)),
    row('delivery (send → ack) p99 (ms)', (b) => f(b.deliveryMs.p99, 1)),
    row('delivery (send → ack) max (ms)', (b) => f(b.deliveryMs.max, 1)),
    row(`acked only after the default ${DEFAULT_DEADLINE_MS / 1000} s deadline`, (b) =>
      String(b.slowerThanDefaultDeadline),
    ),
    row('kernel receive-buffer drops (RcvbufErrors), plugin + unit', kernelDrops),
    row('attempts per offer, mean / max', (b) => `${f(b.attemptsMean, 2)} / ${b.attemptsMax}`),
    row('retransmissions recognised as duplicates by the unit', (b) => String(b.duplicatesSeenByUnit)),
    row('datagrams sent, plugin + unit (offers, retransmissions, acks)', (b) => fi(total(b))),
    '',
    `Ratios, schedule now / before, same run: delivery p99 at ${CONFIG.lossPercent}% loss ` +
      `${ratio(r.default.loss.deliveryMs.p99, r['backoff-only'].loss.deliveryMs.p99)}; datagrams at no loss ` +
      `${ratio(total(r.default.base), total(r['backoff-only'].base))}; datagrams at ${CONFIG.lossPercent}% loss ` +
      `${ratio(total(r.default.loss), total(r['backoff-only'].loss))}.`,
  ];
}

async function lossTest(lan: Lan, sender: JsonLineChild, receiver: JsonLineChild): Promise<LossResults> {
  console.error(
    `${CONFIG.lossCount} offers at once with each retry schedule, no loss, then ${CONFIG.lossPercent}% loss…`,
  );
  const out = {} as LossResults;
  const base = {} as Record<Schedule, BurstResult>;
  for (const s of SCHEDULES) base[s] = await burst(lan, sender, receiver, `B${s[0]}-`, s);
  for (const h of ['plugin', 'unit']) await lan.setLoss(h, CONFIG.lossPercent);
  try {
    // The other order under loss, so neither schedule always goes first.
    for (const s of [...SCHEDULES].reverse())
      out[s] = { loss: await burst(lan, sender, receiver, `L${s[0]}-`, s), base: base[s] };
  } finally {
    for (const h of ['plugin', 'unit']) await lan.clearLoss(h);
  }
  return out;
}

// --- main -------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const env = {
    [BENCH_KEY_ENV]: JSON.stringify(lanKeyToJson({ id: 9001, version: 1, key: randomBytes(32) })),
  };
  const machine = {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
  const notes: string[] = [];
  console.error(
    `LAN benchmark: loopback… (${machine.cpus} CPUs, load ${machine.loadAverageAtStart.join(' ')})`,
  );

  let loopback: { result: PairResult } | undefined;
  if (!CONFIG.lossOnly) {
    const m = await measurePair(env, '127.0.0.1', '127.0.0.1');
    await stopPeer(m.pair.sender);
    await stopPeer(m.pair.receiver);
    loopback = m;
  } else notes.push('Only the loss part (--loss-only).');

  let namespaces: PairResult | undefined;
  let loss: LossResults | undefined;
  const missing = ['root', 'ip', 'netns', 'nft']
    .map((k) => [k, builtin[k as keyof typeof builtin].check()] as const)
    .filter(([, ok]) => ok !== true);
  if (CONFIG.loopbackOnly) {
    notes.push('Namespace and loss parts skipped (--loopback-only).');
  } else if (missing.some(([k]) => k !== 'nft')) {
    notes.push(
      `Network namespaces unavailable (${missing.map(([k, why]) => `${k}: ${why}`).join('; ')}): loopback part only.`,
    );
  } else {
    console.error('across namespaces…');
    const creating = createLan({ hosts: ['plugin', 'unit'] }).then((lan) => {
      cleanups.add(() => lan.destroy());
      return lan;
    });
    creatingLan = creating;
    const lan = await creating;
    try {
      let pair: { sender: JsonLineChild; receiver: JsonLineChild };
      if (CONFIG.lossOnly) {
        pair = await peerPair(env, lan.hosts.plugin.address, lan.hosts.unit.address, lan);
      } else {
        const m = await measurePair(env, lan.hosts.plugin.address, lan.hosts.unit.address, lan);
        namespaces = m.result;
        pair = m.pair;
      }
      if (missing.length) {
        notes.push(`Loss part skipped: ${missing.map(([k, why]) => `${k}: ${why}`).join('; ')}.`);
      } else {
        loss = await lossTest(lan, pair.sender, pair.receiver);
      }
    } finally {
      await cleanups.runAll();
    }
  }

  console.error('profiling the stack in-process…');
  const profile = CONFIG.lossOnly ? undefined : await profileLanStack();
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const date = new Date().toISOString();

  const lines: string[] = [];
  lines.push(`## LAN benchmark — ${date}`, '');
  lines.push('```', commandLine(), '```', '');
  lines.push(
    `Node ${machine.node}, ${machine.cpus} × ${machine.cpuModel}, load average at start ${machine.loadAverageAtStart.join(' / ')}; ` +
      (loopback
        ? `${CONFIG.n} sequential round trips per kind (after ${CONFIG.warmup} warm-up) in ${CONFIG.blocks} alternating blocks; ` +
          `throughput ${CONFIG.throughputMs / 1000} s per kind in ${CONFIG.rounds} alternating rounds; ` +
          `GC: ${CONFIG.gcBlocks} alternating blocks of ${CONFIG.gcN} sequential round trips per kind, each after a forced full collection of both processes; ` +
          `sealed offer datagram ${loopback.result.datagramBytes} B, raw baseline datagram the same length. `
        : '') +
      `Run took ${elapsedS.toFixed(0)} s.`,
    '',
  );
  for (const note of notes) lines.push(`> ${note}`, '');
  if (loopback)
    lines.push(
      '| Measurement | LanEndpoint offer → ack (sealed) | raw UDP echo (baseline) | ratio | difference |',
      '|---|--:|--:|--:|--:|',
      ...pairRows('loopback', loopback.result),
      ...(namespaces ? pairRows('namespaces', namespaces) : []),
      '',
    );
  if (loss) lines.push(...lossRows(loss), '');
  const total = (b: BurstResult) => b.datagrams.plugin + b.datagrams.unit;
  const cost = (p: PairResult) => {
    const throughput = p.sealed.throughput.perSecond / p.raw.throughput.perSecond;
    const gcSealed = p.sealed.gc.msPer1000RoundTrips;
    const gcRaw = p.raw.gc.msPer1000RoundTrips;
    return {
      throughputRatio: throughput,
      gcRatio: gcRaw > 0 ? gcSealed / gcRaw : null,
      met: throughput >= 0.5 && (gcRaw > 0 ? gcSealed <= 2 * gcRaw : gcSealed === 0),
    };
  };
  const p99Diff = loopback ? loopback.result.sealed.latencyMs.p99 - loopback.result.raw.latencyMs.p99 : NaN;
  const now = loss?.default.loss;
  const goals = {
    loopbackP99WithinOneMs: loopback ? { differenceMs: p99Diff, met: p99Diff <= 1 } : undefined,
    zeroLostAtLoss: now
      ? {
          lost: Math.max(now.notAcked, now.neverProcessed),
          processedMoreThanOnce: now.processedMoreThanOnce,
          met: now.notAcked === 0 && now.neverProcessed === 0 && now.processedMoreThanOnce === 0,
        }
      : undefined,
    lossP99UnderTwoSeconds: now ? { p99Ms: now.deliveryMs.p99, met: now.deliveryMs.p99 < 2000 } : undefined,
    datagramsAtNoLossWithinTwiceBefore: loss
      ? {
          ratio: total(loss.default.base) / total(loss['backoff-only'].base),
          met: total(loss.default.base) <= 2 * total(loss['backoff-only'].base),
        }
      : undefined,
    costLoopback: loopback ? cost(loopback.result) : undefined,
    costNamespaces: namespaces ? cost(namespaces) : undefined,
  };
  const verdict = (met: boolean) => (met ? 'MET' : 'MISSED');
  if (goals.loopbackP99WithinOneMs && loopback)
    lines.push(
      `Goal "sealed, acked delivery within 1 ms of raw UDP at p99 on loopback": ${verdict(goals.loopbackP99WithinOneMs.met)} (p99 difference ${diff(loopback.result.sealed.latencyMs.p99, loopback.result.raw.latencyMs.p99)}).`,
      '',
    );
  lines.push(
    goals.zeroLostAtLoss
      ? `Goal "zero lost offers at ${CONFIG.lossPercent}% loss": ${verdict(goals.zeroLostAtLoss.met)} (${goals.zeroLostAtLoss.lost} lost, ${goals.zeroLostAtLoss.processedMoreThanOnce} processed more than once).`
      : `Goal "zero lost offers at ${CONFIG.lossPercent}% loss": not measured in this run.`,
    '',
  );
  if (goals.lossP99UnderTwoSeconds && goals.datagramsAtNoLossWithinTwiceBefore)
    lines.push(
      `Goal "delivery p99 under 2 s at ${CONFIG.lossPercent}% loss": ${verdict(goals.lossP99UnderTwoSeconds.met)} (${f(goals.lossP99UnderTwoSeconds.p99Ms, 0)} ms). ` +
        `Goal "at no loss, at most 2× the datagrams of the schedule before": ${verdict(goals.datagramsAtNoLossWithinTwiceBefore.met)} (${f(goals.datagramsAtNoLossWithinTwiceBefore.ratio, 2)}×).`,
      '',
    );
  for (const [label, c] of [
    ['loopback', goals.costLoopback],
    ['namespaces', goals.costNamespaces],
  ] as const)
    if (c)
      lines.push(
        `Goal "windowed throughput ≥ 0.5× raw UDP and GC per 1,000 round trips ≤ 2× raw" (${label}): ${verdict(c.met)} (throughput ${f(c.throughputRatio, 2)}×, GC ${c.gcRatio === null ? 'n/a: raw had none' : `${f(c.gcRatio, 2)}×`}).`,
        '',
      );
  const extra = [
    loopback?.result.senderRetransmissions || namespaces?.senderRetransmissions
      ? `Retransmissions during the latency/throughput parts: loopback ${loopback?.result.senderRetransmissions ?? 'n/a'}, namespaces ${namespaces?.senderRetransmissions ?? 'n/a'}.`
      : '',
    [loopback?.result, namespaces].some((p) => p && (p.raw.lostRoundTrips || p.raw.throughput.lostInFlight))
      ? 'Some raw baseline datagrams were lost (no retry); they are left out of its timings.'
      : '',
  ].filter(Boolean);
  for (const e of extra) lines.push(e, '');
  if (profile)
    lines.push(
      `Where the time goes (in-process, no network; µs per operation, median of 5 batches; sealed offer body ${profile.bodyBytes} B):`,
      '',
      '| Step | µs per op | Note |',
      '|---|--:|---|',
      ...profile.rows.map((r: CostRow) => `| ${r.step} | ${f(r.micros, 2)} | ${r.note ?? ''} |`),
      '',
    );
  console.log(lines.join('\n'));

  await writeJson(RESULTS, {
    date,
    command: commandLine(),
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))) },
    config: CONFIG,
    notes,
    elapsedSeconds: Number(elapsedS.toFixed(1)),
    loopback: loopback?.result ?? null,
    namespaces: namespaces ?? null,
    loss: loss ?? null,
    goals,
    profile: profile ?? null,
  });
  console.error(`results written to ${path.relative(process.cwd(), RESULTS)}`);
}

// `--nest-cost`: the Nest-cost benchmark (nest-cost.ts) instead, so that it runs as `npm run bench:lan -- --nest-cost`.
(process.argv.includes('--nest-cost') ? import('./nest-cost').then((m) => m.runNestCost(cleanups)) : main())
  .catch(async (e) => {
    console.error(`LAN benchmark failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(() => cleanups.runAll());
