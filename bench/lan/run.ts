// LAN benchmark: sealed, acknowledged delivery (LanEndpoint over UdpLanTransport) against raw UDP, measured
// side by side in one run, on loopback and across two network namespaces, plus delivery under 30% loss.
//
//   SWC_NODE_PROJECT=$PWD/tsconfig.json node -r @swc-node/register bench/lan/run.ts [options]
//
//   --n <count>          sequential round trips per kind (default 5000, after 1000 warm-up)
//   --window <count>     round trips in flight for throughput (default 64)
//   --seconds <s>        throughput time per kind (default 3, in 3 alternating rounds)
//   --loss-count <count> offers sent at once in the loss test (default 500)
//   --loopback-only      skip the namespace and loss parts
//   --nest-cost          run bench/lan/nest-cost.ts instead (what Nest costs on the LAN path; its own options)
//
// How: a sender peer and a receiver peer (peer.ts) run as separate processes. The receiver holds a unit
// endpoint and a raw echo socket; the sender alternates blocks of sealed and raw round trips, so both see
// the same machine load, and the ratio or difference between them is the figure. Traffic goes only to
// 127.0.0.1 or to hosts of the LAN this run creates (test/support/netns.ts), which destroy() removes on
// every exit path (end, error, SIGINT, SIGTERM, time limit). Needs root for the namespace part; without it
// the loopback part runs alone and the output says so.
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
const RESULTS = path.join(REPO_ROOT, 'bench', 'lan', 'results', 'latest.json');
/** The whole run stops (cleaning up) after this, whatever happens. */
const HARD_LIMIT_MS = 240_000;

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
  loopbackOnly: process.argv.includes('--loopback-only'),
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
}

/** Running totals of one kind in one part (sequential or windowed). */
class Tally {
  roundTrips = 0;
  senderCpu = 0;
  receiverCpu = 0;
  senderGc: Gc = { count: 0, ms: 0 };
  receiverGc: Gc = { count: 0, ms: 0 };

  add(roundTrips: number, senderCpu: number, receiverCpu: number, senderGc: Gc, receiverGc: Gc): void {
    this.roundTrips += roundTrips;
    this.senderCpu += senderCpu;
    this.receiverCpu += receiverCpu;
    this.senderGc = { count: this.senderGc.count + senderGc.count, ms: this.senderGc.ms + senderGc.ms };
    this.receiverGc = {
      count: this.receiverGc.count + receiverGc.count,
      ms: this.receiverGc.ms + receiverGc.ms,
    };
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
  tally.add(count(r), r.cpuMicros as number, after.cpu - before.cpu, r.gc as Gc, {
    count: after.gc.count - before.gc.count,
    ms: after.gc.ms - before.gc.ms,
  });
  return r;
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

async function burst(
  lan: Lan,
  sender: JsonLineChild,
  receiver: JsonLineChild,
  prefix: string,
): Promise<BurstResult> {
  const { lossCount: count, lossDeadlineMs: deadlineMs } = CONFIG;
  const hosts = ['plugin', 'unit'];
  const k0 = await Promise.all(hosts.map((h) => udpCounters(lan, h)));
  const dup0 = ((await ask(receiver, { cmd: 'stats' }, 'stats')).stats as { duplicates: number }).duplicates;
  const r = await ask(sender, { cmd: 'burst', prefix, count, deadlineMs }, 'burst', deadlineMs + 30_000);
  // Retransmissions still in the air when the last ack arrived may yet land: let them, then count.
  await new Promise((res) => setTimeout(res, 300));
  const counts = (await ask(receiver, { cmd: 'counts', prefix }, 'counts')).counts as Record<string, number>;
  const dup1 = ((await ask(receiver, { cmd: 'stats' }, 'stats')).stats as { duplicates: number }).duplicates;
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
    duplicatesSeenByUnit: dup1 - dup0,
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
      'GC pause per 1,000 round trips, sequential (ms, both processes)',
      both(s.sequential.gcMsPer1000RoundTrips),
      both(r.sequential.gcMsPer1000RoundTrips),
      2,
      ' ms',
    ),
  ];
}

function lossRows(loss: BurstResult, base: BurstResult): string[] {
  const row = (what: string, a: string, b: string) => `| ${what} | ${a} | ${b} |`;
  return [
    `| Unicast offers, all in flight at once, deadline ${CONFIG.lossDeadlineMs / 1000} s | ${CONFIG.lossPercent}% loss on both hosts | no loss (baseline) |`,
    '|---|--:|--:|',
    row('offers sent', String(loss.offers), String(base.offers)),
    row('lost: not acknowledged by the deadline', String(loss.notAcked), String(base.notAcked)),
    row('lost: never processed by the unit', String(loss.neverProcessed), String(base.neverProcessed)),
    row(
      'processed more than once by the unit',
      String(loss.processedMoreThanOnce),
      String(base.processedMoreThanOnce),
    ),
    row('delivery (send → ack) p50 (ms)', f(loss.deliveryMs.p50, 1), f(base.deliveryMs.p50, 1)),
    row('delivery (send → ack) p99 (ms)', f(loss.deliveryMs.p99, 1), f(base.deliveryMs.p99, 1)),
    row('delivery (send → ack) max (ms)', f(loss.deliveryMs.max, 1), f(base.deliveryMs.max, 1)),
    row(
      `acked only after the default ${DEFAULT_DEADLINE_MS / 1000} s deadline`,
      String(loss.slowerThanDefaultDeadline),
      String(base.slowerThanDefaultDeadline),
    ),
    row(
      'kernel receive-buffer drops (RcvbufErrors), plugin + unit',
      String((loss.kernelUdp.plugin?.RcvbufErrors ?? NaN) + (loss.kernelUdp.unit?.RcvbufErrors ?? NaN)),
      String((base.kernelUdp.plugin?.RcvbufErrors ?? NaN) + (base.kernelUdp.unit?.RcvbufErrors ?? NaN)),
    ),
    row(
      'attempts per offer, mean / max',
      `${f(loss.attemptsMean, 2)} / ${loss.attemptsMax}`,
      `${f(base.attemptsMean, 2)} / ${base.attemptsMax}`,
    ),
    row(
      'retransmissions recognised as duplicates by the unit',
      String(loss.duplicatesSeenByUnit),
      String(base.duplicatesSeenByUnit),
    ),
  ];
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

  const loopback = await measurePair(env, '127.0.0.1', '127.0.0.1');
  await stopPeer(loopback.pair.sender);
  await stopPeer(loopback.pair.receiver);

  let namespaces: PairResult | undefined;
  let loss: { loss: BurstResult; base: BurstResult } | undefined;
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
      const m = await measurePair(env, lan.hosts.plugin.address, lan.hosts.unit.address, lan);
      namespaces = m.result;
      if (missing.length) {
        notes.push(`Loss part skipped: ${missing.map(([k, why]) => `${k}: ${why}`).join('; ')}.`);
      } else {
        console.error(`${CONFIG.lossCount} offers at once, no loss, then ${CONFIG.lossPercent}% loss…`);
        const base = await burst(lan, m.pair.sender, m.pair.receiver, 'B-');
        for (const h of ['plugin', 'unit']) await lan.setLoss(h, CONFIG.lossPercent);
        try {
          loss = { loss: await burst(lan, m.pair.sender, m.pair.receiver, 'L-'), base };
        } finally {
          for (const h of ['plugin', 'unit']) await lan.clearLoss(h);
        }
      }
    } finally {
      await cleanups.runAll();
    }
  }

  console.error('profiling the stack in-process…');
  const profile = await profileLanStack();
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const date = new Date().toISOString();

  const lines: string[] = [];
  lines.push(`## LAN benchmark — ${date}`, '');
  lines.push('```', commandLine(), '```', '');
  lines.push(
    `Node ${machine.node}, ${machine.cpus} × ${machine.cpuModel}, load average at start ${machine.loadAverageAtStart.join(' / ')}; ` +
      `${CONFIG.n} sequential round trips per kind (after ${CONFIG.warmup} warm-up) in ${CONFIG.blocks} alternating blocks; ` +
      `throughput ${CONFIG.throughputMs / 1000} s per kind in ${CONFIG.rounds} alternating rounds; ` +
      `sealed offer datagram ${loopback.result.datagramBytes} B, raw baseline datagram the same length. Run took ${elapsedS.toFixed(0)} s.`,
    '',
  );
  for (const note of notes) lines.push(`> ${note}`, '');
  lines.push(
    '| Measurement | LanEndpoint offer → ack (sealed) | raw UDP echo (baseline) | ratio | difference |',
    '|---|--:|--:|--:|--:|',
    ...pairRows('loopback', loopback.result),
    ...(namespaces ? pairRows('namespaces', namespaces) : []),
    '',
  );
  if (loss) lines.push(...lossRows(loss.loss, loss.base), '');
  const p99Diff = loopback.result.sealed.latencyMs.p99 - loopback.result.raw.latencyMs.p99;
  const goals = {
    loopbackP99WithinOneMs: { differenceMs: p99Diff, met: p99Diff <= 1 },
    zeroLostAtLoss: loss
      ? {
          lost: Math.max(loss.loss.notAcked, loss.loss.neverProcessed),
          processedMoreThanOnce: loss.loss.processedMoreThanOnce,
          met:
            loss.loss.notAcked === 0 &&
            loss.loss.neverProcessed === 0 &&
            loss.loss.processedMoreThanOnce === 0,
        }
      : undefined,
  };
  lines.push(
    `Goal "sealed, acked delivery within 1 ms of raw UDP at p99 on loopback": ${goals.loopbackP99WithinOneMs.met ? 'MET' : 'MISSED'} (p99 difference ${diff(loopback.result.sealed.latencyMs.p99, loopback.result.raw.latencyMs.p99)}).`,
    '',
    goals.zeroLostAtLoss
      ? `Goal "zero lost offers at ${CONFIG.lossPercent}% loss": ${goals.zeroLostAtLoss.met ? 'MET' : 'MISSED'} (${goals.zeroLostAtLoss.lost} lost, ${goals.zeroLostAtLoss.processedMoreThanOnce} processed more than once).`
      : `Goal "zero lost offers at ${CONFIG.lossPercent}% loss": not measured in this run.`,
    '',
  );
  const extra = [
    loopback.result.senderRetransmissions || namespaces?.senderRetransmissions
      ? `Retransmissions during the latency/throughput parts: loopback ${loopback.result.senderRetransmissions}, namespaces ${namespaces?.senderRetransmissions ?? 'n/a'}.`
      : '',
    [loopback.result, namespaces].some((p) => p && (p.raw.lostRoundTrips || p.raw.throughput.lostInFlight))
      ? 'Some raw baseline datagrams were lost (no retry); they are left out of its timings.'
      : '',
  ].filter(Boolean);
  for (const e of extra) lines.push(e, '');
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
    loopback: loopback.result,
    namespaces: namespaces ?? null,
    loss: loss ?? null,
    goals,
    profile,
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
