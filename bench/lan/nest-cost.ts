// What Nest costs on the LAN path: sealed, acknowledged round trips over real loopback UDP sockets to a
// receiver whose handler is a plain `endpoint.onMessage` callback, against the same work routed by ServerLan
// to @EventPattern / @MessagePattern controller methods, measured side by side in one run.
//
//   npm run bench:lan -- --nest-cost [options]
//   SWC_NODE_PROJECT=$PWD/tsconfig.json node -r @swc-node/register bench/lan/nest-cost.ts [options]
//
//   --rounds <count>   alternating rounds (default 10)
//   --n <count>        sequential round trips per receiver per round (default 1000, after 1000 warm-up)
//   --ms <ms>          throughput time per receiver per round (default 500)
//   --window <count>   round trips in flight for throughput (default 64)
//
// How: two processes on 127.0.0.1 (nest-peer.ts). The receiver holds three receivers doing the same work:
// `plain` (endpoint.onMessage), `nest` (NestFactory.createMicroservice + ServerLan) and `device` (the same
// controller in the hybrid app startDeviceApp builds for the plugin and the unit: its global filter and
// validation pipe apply to LAN handlers too). Two kinds of message: `event` = offer -> ack (@EventPattern)
// and `request` = claim -> claim.granted (@MessagePattern; the plain handler sends the answer itself).
// Every round measures each receiver in turn, for each kind, the order reversed every other round; each
// figure of Nest is divided by the plain figure of the same round, and the report gives the median of
// those ratios and their range. The receiver's CPU time (all threads, process.cpuUsage) and event-loop
// busy time (performance.eventLoopUtilization) are read before and after every block. Last, in-process
// with no sockets: what handing one offer to each receiver costs, and Nest's pattern lookup on its own.
//
// Results: a Markdown table on stdout and bench/lan/results/nest-cost.json.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { lanKeyToJson } from '../../src/lan';
import { REPO_ROOT, runTs, type JsonLineChild, type JsonMessage } from '../../test/support/node-runner';
import {
  ask as askChild,
  Cleanups,
  commandLine,
  numberOption,
  stopChild,
  stopOnSignalsOrAfter,
  summarize,
  writeJson,
} from '../support/bench-kit';
import { BENCH_KEY_ENV } from './common';
import { profileNestDispatch, type DispatchRow, type MessageKind, type ReceiverName } from './nest-app';

const PEER = 'bench/lan/nest-peer.ts';
const RESULTS = path.join(REPO_ROOT, 'bench', 'lan', 'results', 'nest-cost.json');
const HARD_LIMIT_MS = 180_000;

const CONFIG = {
  rounds: Math.round(numberOption('rounds', 10)),
  n: Math.round(numberOption('n', 1000)),
  warmup: 1000,
  throughputMs: Math.round(numberOption('ms', 500)),
  window: Math.round(numberOption('window', 64)),
};

const RECEIVERS: ReceiverName[] = ['plain', 'nest', 'device'];
const KINDS: MessageKind[] = ['event', 'request'];
const order = <T>(xs: T[], i: number): T[] => (i % 2 ? [...xs].reverse() : xs);

const ask = (child: JsonLineChild, cmd: JsonMessage, event: string) => askChild(child, cmd, event, 60_000);

interface Usage {
  cpuMicros: number;
  loopActiveMs: number;
  gc: { count: number; ms: number };
}

/** One receiver, one kind, one round. */
interface Block {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  perSecond: number;
  /** Receiver CPU (all threads) per round trip, µs: sequential, then with `window` in flight. */
  cpuSeq: number;
  cpuWin: number;
  /** Receiver main-thread (event loop) busy time per round trip, µs. */
  loopSeq: number;
  loopWin: number;
  /** Receiver GC pause per 1,000 round trips, ms, with `window` in flight. */
  gcWin: number;
  /** Sender CPU per round trip, µs, sequential (the same work whoever receives). */
  senderCpuSeq: number;
}

type Metric = keyof Block;

const METRICS: { key: Metric; label: string; digits: number; unit: string }[] = [
  {
    key: 'perSecond',
    label: `throughput, ${CONFIG.window} in flight (round trips/s)`,
    digits: 0,
    unit: '/s',
  },
  { key: 'p50Ms', label: 'round trip p50, one at a time (ms)', digits: 3, unit: ' ms' },
  { key: 'p99Ms', label: 'round trip p99, one at a time (ms)', digits: 3, unit: ' ms' },
  { key: 'cpuSeq', label: 'receiver CPU per round trip, one at a time (µs)', digits: 1, unit: ' µs' },
  {
    key: 'cpuWin',
    label: `receiver CPU per round trip, ${CONFIG.window} in flight (µs)`,
    digits: 1,
    unit: ' µs',
  },
  {
    key: 'loopSeq',
    label: 'receiver event-loop busy per round trip, one at a time (µs)',
    digits: 1,
    unit: ' µs',
  },
  {
    key: 'loopWin',
    label: `receiver event-loop busy per round trip, ${CONFIG.window} in flight (µs)`,
    digits: 1,
    unit: ' µs',
  },
  {
    key: 'gcWin',
    label: `receiver GC pause per 1,000 round trips, ${CONFIG.window} in flight (ms)`,
    digits: 2,
    unit: ' ms',
  },
];

async function usage(receiver: JsonLineChild): Promise<Usage> {
  const r = await ask(receiver, { cmd: 'usage' }, 'usage');
  return {
    cpuMicros: r.cpuMicros as number,
    loopActiveMs: r.loopActiveMs as number,
    gc: r.gc as Usage['gc'],
  };
}

/** Runs one sender command and reads the receiver's usage over the same span. */
async function booked(receiver: JsonLineChild, sender: JsonLineChild, cmd: JsonMessage, event: string) {
  const before = await usage(receiver);
  const r = await ask(sender, cmd, event);
  const after = await usage(receiver);
  return {
    r,
    cpu: after.cpuMicros - before.cpuMicros,
    loopMicros: (after.loopActiveMs - before.loopActiveMs) * 1000,
    gcMs: after.gc.ms - before.gc.ms,
  };
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const f = (x: number, d: number) =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
    : 'n/a';
const sign = (x: number, d: number, unit: string) => `${x >= 0 ? '+' : '−'}${f(Math.abs(x), d)}${unit}`;

type Rounds = Record<MessageKind, Record<ReceiverName, Block[]>>;

function summaryOf(rounds: Rounds) {
  const out = {} as Record<
    MessageKind,
    Record<
      Metric,
      Record<ReceiverName, number> & {
        ratio: Record<'nest' | 'device', { median: number; min: number; max: number }>;
        difference: Record<'nest' | 'device', number>;
      }
    >
  >;
  for (const kind of KINDS) {
    out[kind] = {} as (typeof out)[MessageKind];
    for (const { key } of METRICS.concat([{ key: 'senderCpuSeq', label: '', digits: 1, unit: '' }])) {
      const col = (r: ReceiverName) => rounds[kind][r].map((b) => b[key]);
      const ratios = (r: 'nest' | 'device') => col(r).map((x, i) => x / col('plain')[i]);
      const stats = (r: 'nest' | 'device') => {
        const xs = ratios(r).filter((x) => Number.isFinite(x));
        return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
      };
      out[kind][key] = {
        plain: median(col('plain')),
        nest: median(col('nest')),
        device: median(col('device')),
        ratio: { nest: stats('nest'), device: stats('device') },
        difference: {
          nest: median(col('nest').map((x, i) => x - col('plain')[i])),
          device: median(col('device').map((x, i) => x - col('plain')[i])),
        },
      };
    }
  }
  return out;
}

export async function runNestCost(cleanups: Cleanups): Promise<void> {
  const started = process.hrtime.bigint();
  const env = {
    [BENCH_KEY_ENV]: JSON.stringify(lanKeyToJson({ id: 9002, version: 1, key: randomBytes(32) })),
  };
  const machine = {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
  console.error(
    `Nest cost on the LAN path: ${CONFIG.rounds} rounds (${machine.cpus} CPUs, load ${machine.loadAverageAtStart.join(' ')})…`,
  );
  const receiver = runTs(PEER, ['receiver'], { env, label: 'nest-cost:receiver' });
  cleanups.add(() => stopChild(receiver, 2000));
  const ready = await receiver.next({ event: 'ready' }, 30_000);
  const ports = ready.ports as Record<ReceiverName, number>;
  const sender = runTs(PEER, ['sender', '--target', '127.0.0.1'], { env, label: 'nest-cost:sender' });
  cleanups.add(() => stopChild(sender, 2000));
  await sender.next({ event: 'ready' }, 30_000);

  const { n, warmup, window, throughputMs } = CONFIG;
  for (const kind of KINDS)
    for (const r of RECEIVERS) {
      await ask(sender, { cmd: 'latency', kind, port: ports[r], n: warmup }, 'latency');
      await ask(sender, { cmd: 'throughput', kind, port: ports[r], ms: 300, window }, 'throughput');
    }

  const rounds = {} as Rounds;
  for (const kind of KINDS) rounds[kind] = { plain: [], nest: [], device: [] };
  for (let i = 0; i < CONFIG.rounds; i++) {
    for (const kind of order(KINDS, i)) {
      const seq = {} as Record<ReceiverName, Awaited<ReturnType<typeof booked>>>;
      for (const r of order(RECEIVERS, i))
        seq[r] = await booked(receiver, sender, { cmd: 'latency', kind, port: ports[r], n }, 'latency');
      const win = {} as Record<ReceiverName, Awaited<ReturnType<typeof booked>>>;
      for (const r of order(RECEIVERS, i + 1))
        win[r] = await booked(
          receiver,
          sender,
          { cmd: 'throughput', kind, port: ports[r], ms: throughputMs, window },
          'throughput',
        );
      for (const r of RECEIVERS) {
        const lat = summarize(seq[r].r.samples as number[]);
        const count = win[r].r.count as number;
        rounds[kind][r].push({
          p50Ms: lat.p50,
          p99Ms: lat.p99,
          meanMs: lat.mean,
          perSecond: count / (win[r].r.seconds as number),
          cpuSeq: seq[r].cpu / n,
          cpuWin: win[r].cpu / count,
          loopSeq: seq[r].loopMicros / n,
          loopWin: win[r].loopMicros / count,
          gcWin: (win[r].gcMs * 1000) / count,
          senderCpuSeq: (seq[r].r.cpuMicros as number) / n,
        });
      }
    }
    console.error(`round ${i + 1}/${CONFIG.rounds} done`);
  }
  const receiverStats = (await ask(receiver, { cmd: 'stats' }, 'stats')).stats as Record<
    ReceiverName,
    Record<string, unknown>
  >;
  const senderStats = (await ask(sender, { cmd: 'stats' }, 'stats')).stats as Record<string, unknown>;
  await stopChild(sender, 2000);
  await stopChild(receiver, 2000);

  console.error('routing one offer in-process…');
  const dispatch: DispatchRow[] = await profileNestDispatch();

  const summary = summaryOf(rounds);
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const date = new Date().toISOString();
  const lines: string[] = [`## Nest on the LAN path — ${date}`, '', '```', commandLine(), '```', ''];
  lines.push(
    `Node ${machine.node}, ${machine.cpus} × ${machine.cpuModel}, load average at start ${machine.loadAverageAtStart.join(' / ')}; ` +
      `${CONFIG.rounds} alternating rounds, each with ${n} sequential round trips and ${throughputMs} ms at ${window} in flight per receiver and kind ` +
      `(after ${warmup} + 300 ms warm-up). Figures: median over rounds; ratio: median of the per-round ratios to plain [min–max]. ` +
      `Sender retransmissions: ${String(senderStats.retransmissions)}. Run took ${elapsedS.toFixed(0)} s.`,
    '',
  );
  const title: Record<MessageKind, string> = {
    event: 'offer → ack (@EventPattern)',
    request: 'claim → claim.granted (@MessagePattern)',
  };
  for (const kind of KINDS) {
    lines.push(
      `| ${title[kind]} | plain onMessage | Nest (ServerLan) | Nest / plain | as the device apps run it | device / plain |`,
      '|---|--:|--:|--:|--:|--:|',
    );
    for (const m of METRICS) {
      const s = summary[kind][m.key];
      const cell = (r: 'nest' | 'device') =>
        `${f(s.ratio[r].median, 2)}× [${f(s.ratio[r].min, 2)}–${f(s.ratio[r].max, 2)}] (${sign(s.difference[r], m.digits, m.unit)})`;
      lines.push(
        `| ${m.label} | ${f(s.plain, m.digits)} | ${f(s.nest, m.digits)} | ${cell('nest')} | ${f(s.device, m.digits)} | ${cell('device')} |`,
      );
    }
    lines.push('');
  }
  lines.push(
    'Routing one offer in-process (no sockets, no sealing; µs per message, median of 5 batches):',
    '',
    '| Step | µs per message | Note |',
    '|---|--:|---|',
    ...dispatch.map((r) => `| ${r.step} | ${f(r.micros, 2)} | ${r.note ?? ''} |`),
    '',
  );
  console.log(lines.join('\n'));

  await writeJson(RESULTS, {
    date,
    command: commandLine(),
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))) },
    config: CONFIG,
    elapsedSeconds: Number(elapsedS.toFixed(1)),
    summary,
    rounds,
    senderStats,
    receiverStats,
    dispatch,
  });
  console.error(`results written to ${path.relative(process.cwd(), RESULTS)}`);
}

if (require.main === module) {
  const cleanups = new Cleanups();
  stopOnSignalsOrAfter(HARD_LIMIT_MS, () => cleanups.runAll(), 'the peers');
  runNestCost(cleanups)
    .catch((e) => {
      console.error(`Nest-cost benchmark failed: ${(e as Error).stack ?? e}`);
      process.exitCode = 1;
    })
    .finally(() => cleanups.runAll());
}
