// Server benchmark: payments created per second and their latency through the real payment server (the
// NestJS app from createServerApp), against a bare Fastify app doing the same insert, measured side by side
// in one run, on SQLite and on PostgreSQL.
//
//   SWC_NODE_PROJECT=$PWD/tsconfig.json node -r @swc-node/register bench/server/run.ts [options]
//
//   --seconds <s>      measured time per server per engine (default 12, in --rounds alternating blocks)
//   --rounds <n>       alternating blocks per engine (default 4: bare nest, nest bare, …; more, shorter
//                      blocks spread the machine's slow spells and PostgreSQL's checkpoints over both)
//   --warmup <s>       load per server before measuring, not counted (default 2)
//   --connections <n>  autocannon connections, one request in flight on each (default 10)
//   --stores <n>       spread the connections over n stores, one terminal each (default 1: every request
//                      is the same terminal of the same store)
//   --engines <list>   sqlite,postgres (default both)
//   --pg <url>         PostgreSQL to use (default postgres://postgres@127.0.0.1:5432/test); must be on
//                      loopback. The run works in private schemas pc_bench_<random>_{nest,bare,before}
//                      that it drops at the end.
//   --before <dir>     also load the real server of another checkout of this repository (e.g. a
//                      `git worktree add /tmp/server-before <commit>` with node_modules linked), its own
//                      bench/server/target.ts and src/, as a third server "before" in the same blocks: the
//                      table then gives NestJS after / before as well as each / bare.
//   --out <file>       results file (default bench/server/results/latest.json)
//
// How: each server runs in its own child process (target.ts), both started before any load, each on its
// own database (a SQLite file in a temporary directory, or its own PostgreSQL schema) created by
// openServerDb. autocannon runs here, in the orchestrator, and sends POST /v1/payments with a fresh
// Idempotency-Key and order id per request and a payment code ending in 00 (the simulator approves it at
// once), so every 2xx answer is one new succeeded payment. The two servers are loaded in alternating blocks
// (bare nest, nest bare, …) so both see the same machine load, and the ratio between them is the figure.
// Latency is timed per response (autocannon's 'response' event, sub-millisecond), not from autocannon's
// whole-millisecond histogram. Traffic goes only to 127.0.0.1. Every duration is fixed; the run stops by
// itself after HARD_LIMIT_MS and cleans up (children, temporary files, schemas) on every exit path.
//
// Results: a Markdown table on stdout and bench/server/results/latest.json.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { execFileSync, spawn } from 'node:child_process';
import { JsonLineChild, REPO_ROOT, runTs, type JsonMessage } from '../../test/support/node-runner';
import {
  isLoopback,
  KINDS,
  paymentBody,
  summarize,
  type Autocannon,
  type Kind,
  type Summary,
} from './common';
import {
  ask as askChild,
  Cleanups,
  commandLine,
  cpuMicros,
  numberOption,
  stopChild,
  stopOnSignalsOrAfter,
  watchGc,
  writeJson,
} from '../support/bench-kit';
import { profileServer, type CostRow, type ServerProfile, type ServiceRow } from './profile';

const autocannon = require('autocannon') as Autocannon;

const TARGET = 'bench/server/target.ts';
const RESULTS = path.resolve(
  REPO_ROOT,
  process.argv.includes('--out')
    ? process.argv[process.argv.indexOf('--out') + 1]
    : path.join('bench', 'server', 'results', 'latest.json'),
);
/** The whole run stops (cleaning up) after this, whatever happens (a third server with --before: longer). */
const HARD_LIMIT_MS = process.argv.includes('--before') ? 300_000 : 180_000;

type Engine = 'sqlite' | 'postgres';

function textOption(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

const CONFIG = {
  seconds: numberOption('seconds', 12),
  rounds: Math.round(numberOption('rounds', 4)),
  warmupSeconds: numberOption('warmup', 2),
  connections: Math.round(numberOption('connections', 10)),
  stores: Math.round(numberOption('stores', 1)),
  engines: textOption('engines', 'sqlite,postgres')
    .split(',')
    .map((e) => e.trim()) as Engine[],
  pg: textOption('pg', 'postgres://postgres@127.0.0.1:5432/test'),
  /** Another checkout whose real server runs as the third server, "before". */
  before: process.argv.includes('--before') ? path.resolve(textOption('before', '')) : undefined,
  profileSeconds: 2,
};
for (const e of CONFIG.engines)
  if (e !== 'sqlite' && e !== 'postgres') throw new Error(`--engines: unknown engine ${e}`);
if (CONFIG.stores > CONFIG.connections) throw new Error('--stores cannot be more than --connections');
if (CONFIG.before && !fs.existsSync(path.join(CONFIG.before, TARGET)))
  throw new Error(`--before ${CONFIG.before}: no ${TARGET} there`);
if (CONFIG.before && !fs.existsSync(path.join(CONFIG.before, 'node_modules')))
  throw new Error(`--before ${CONFIG.before}: no node_modules there (link this checkout's)`);
if (CONFIG.engines.includes('postgres') && !isLoopback(new URL(CONFIG.pg).hostname))
  throw new Error(`--pg must point at 127.0.0.x, not ${new URL(CONFIG.pg).hostname}`);

/**
 * The goals, for the reader: printed as MET or MISSED, never a pass/fail exit code. The rates and p99 are
 * step 3's; the ratios issue 14's (NestJS ≥ 0.8 of bare on each engine; with --before, PostgreSQL after
 * ≥ 1.5 × before in the same run).
 */
const GOALS = {
  sqlitePerSecond: 2000,
  sqliteP99Ms: 25,
  postgresPerSecond: 1000,
  nestOverBare: 0.8,
  postgresAfterOverBefore: 1.5,
};

// --- cleanup on every exit path ---------------------------------------------------------------------

const cleanups = new Cleanups();
/** autocannon runs being measured: stopped first on a signal or at the time limit. */
const running = new Set<{ stop(): void }>();
function stopEverything(): Promise<void> {
  for (const r of running) r.stop();
  return cleanups.runAll();
}
stopOnSignalsOrAfter(HARD_LIMIT_MS, () => stopEverything(), 'the servers and their databases');

// --- the targets ------------------------------------------------------------------------------------

const ask = (target: JsonLineChild, cmd: JsonMessage, event: string, timeoutMs = 20_000) =>
  askChild(target, cmd, event, timeoutMs);
/** Closes the target's stdin (it then closes its server and database and exits); kills it after 5 s. */
const stopTarget = (t: JsonLineChild) => stopChild(t, 5000);

interface Started {
  child: JsonLineChild;
  url: string;
  tokens: string[];
}

async function startTarget(server: Server, engine: Engine, db: string): Promise<Started> {
  const args = ['--db', db, '--stores', String(CONFIG.stores)];
  const child =
    server === 'before'
      ? startBefore(CONFIG.before!, args, `${engine}:before`)
      : runTs(TARGET, [server, ...args], { label: `${engine}:${server}` });
  cleanups.add(() => stopTarget(child));
  const ready = await child.next({ event: 'ready' }, 60_000);
  return {
    child,
    url: `http://127.0.0.1:${ready.port as number}/v1/payments`,
    tokens: ready.tokens as string[],
  };
}

/** The other checkout's target.ts (its real server), with that checkout's own sources and tsconfig. */
function startBefore(dir: string, args: string[], label: string): JsonLineChild {
  const child = spawn(
    process.execPath,
    ['-r', '@swc-node/register', path.join(dir, TARGET), 'nest', ...args],
    {
      cwd: dir,
      env: { ...process.env, SWC_NODE_PROJECT: path.join(dir, 'tsconfig.json') },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  return new JsonLineChild(label, child);
}

async function dropSchemas(schemas: string[]): Promise<void> {
  const c = new Client({ connectionString: CONFIG.pg });
  await c.connect();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await c.end();
  }
}

/** A database per server: a file in a temporary directory, or a private PostgreSQL schema. */
async function databases(engine: Engine): Promise<Record<Server, string>> {
  if (engine === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pc-bench-server-'));
    cleanups.add(async () => fs.rmSync(dir, { recursive: true, force: true }));
    return Object.fromEntries(SERVERS.map((s) => [s, `sqlite:${path.join(dir, `${s}.db`)}`])) as Record<
      Server,
      string
    >;
  }
  const prefix = `pc_bench_${randomBytes(5).toString('hex')}`;
  const schemas = SERVERS.map((s) => `${prefix}_${s}`);
  cleanups.add(() => dropSchemas(schemas));
  const url = (server: Server) => {
    const u = new URL(CONFIG.pg);
    u.searchParams.set('schema', `${prefix}_${server}`);
    return u.toString();
  };
  return Object.fromEntries(SERVERS.map((s) => [s, url(s)])) as Record<Server, string>;
}

// --- the measurements -------------------------------------------------------------------------------

interface Block {
  ok: number;
  other: number;
  errors: number;
  timeouts: number;
  seconds: number;
  samples: number[];
  serverCpuMicros: number;
  serverGc: { count: number; ms: number };
  loadCpuMicros: number;
  statusCodes: Record<string, number>;
}

async function usage(t: JsonLineChild): Promise<{ micros: number; gc: { count: number; ms: number } }> {
  const r = await ask(t, { cmd: 'usage' }, 'usage');
  return { micros: r.micros as number, gc: r.gc as { count: number; ms: number } };
}

/** One block of load on one server; the server's CPU and GC over the same span. */
async function load(target: Started, seconds: number): Promise<Block> {
  const before = await usage(target.child);
  const load0 = cpuMicros();
  const samples: number[] = [];
  let ok = 0;
  let other = 0;
  // One autocannon per store (its terminal's token), the connections shared out between them.
  const instances = target.tokens.map((token, i) => {
    const instance = autocannon({
      url: target.url,
      method: 'POST',
      connections:
        Math.floor(CONFIG.connections / CONFIG.stores) + (i < CONFIG.connections % CONFIG.stores ? 1 : 0),
      duration: seconds,
      timeout: 10,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': 'bench-[<id>]',
      },
      body: paymentBody(),
      idReplacement: true,
    });
    running.add(instance);
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) {
        ok++;
        samples.push(ms);
      } else other++;
    });
    return instance;
  });
  const rs = await Promise.all(instances);
  for (const instance of instances) running.delete(instance);
  const loadCpu = cpuMicros() - load0;
  const after = await usage(target.child);
  const statusCodes: Record<string, number> = {};
  for (const r of rs)
    for (const [code, v] of Object.entries(r.statusCodeStats))
      statusCodes[code] = (statusCodes[code] ?? 0) + v.count;
  return {
    ok,
    other,
    errors: rs.reduce((a, r) => a + r.errors, 0),
    timeouts: rs.reduce((a, r) => a + r.timeouts, 0),
    seconds: Math.max(...rs.map((r) => r.duration)),
    samples,
    serverCpuMicros: after.micros - before.micros,
    serverGc: { count: after.gc.count - before.gc.count, ms: after.gc.ms - before.gc.ms },
    loadCpuMicros: loadCpu,
    statusCodes,
  };
}

interface KindResult {
  payments: number;
  seconds: number;
  perSecond: number;
  latencyMs: Summary;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Server process CPU (all threads) per created payment, and as a share of one core over the blocks. */
  serverCpuMicrosPerPayment: number;
  serverCpuCores: number;
  serverGcMsPer1000: number;
  /** The load generator's (this process's) CPU as a share of one core. */
  loadGeneratorCpuCores: number;
  perSecondByBlock: number[];
  /** Payments the server's database holds at the end, by status (warm-up included), and 2xx answers. */
  stored: Record<string, number>;
  answered2xxIncludingWarmup: number;
}

interface EngineResult {
  nest: KindResult;
  bare: KindResult;
  /** With --before: the other checkout's real server. */
  before?: KindResult;
  /** NestJS / bare. */
  ratio: { perSecond: number; p50: number; p99: number };
  /** With --before: before / bare, and NestJS after / before. */
  beforeRatio?: { perSecond: number; p50: number; p99: number };
  afterOverBefore?: { perSecond: number; p50: number; p99: number };
  /**
   * The same ratios of payments/s round by round (each round loads every server once, within seconds), and
   * their medians: steadier than the ratio of the totals when the machine's load swings between rounds.
   */
  byRound: { nestOverBare: number[]; afterOverBefore?: number[]; beforeOverBare?: number[] };
  medianByRound: { nestOverBare: number; afterOverBefore?: number; beforeOverBare?: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * The servers loaded: `bare` and `nest` (this checkout's real server), and with --before `before` (the
 * other checkout's real server, run by its own target.ts as its `nest`).
 */
type Server = Kind | 'before';
const SERVERS: Server[] = CONFIG.before ? ['bare', 'nest', 'before'] : KINDS;

/** Rotate which server goes first, and reverse every other round, so none always follows the same one. */
const order = (i: number): Server[] => {
  const r = [...SERVERS.slice(i % SERVERS.length), ...SERVERS.slice(0, i % SERVERS.length)];
  return i % 2 ? r.reverse() : r;
};

/**
 * The payments a server's database holds, by status, once the requests still in flight when its last
 * block ended have finished (the server answers each one even if the load generator has gone): up to 5 s.
 */
async function settledCount(target: JsonLineChild): Promise<Record<string, number>> {
  const count = async () => (await ask(target, { cmd: 'count' }, 'count')).byStatus as Record<string, number>;
  let stored = await count();
  for (let i = 0; i < 50 && stored.pending; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    stored = await count();
  }
  return stored;
}

async function measureEngine(engine: Engine): Promise<EngineResult> {
  const dbs = await databases(engine);
  const targets = {} as Record<Server, Started>;
  await Promise.all(SERVERS.map(async (k) => (targets[k] = await startTarget(k, engine, dbs[k]))));

  const answered = { nest: 0, bare: 0, before: 0 } as Record<Server, number>;
  for (const k of SERVERS) {
    console.error(`  ${engine}: warm-up ${k} ${CONFIG.warmupSeconds} s…`);
    answered[k] += (await load(targets[k], CONFIG.warmupSeconds)).ok;
  }
  const blocks = { nest: [], bare: [], before: [] } as Record<Server, Block[]>;
  const perBlock = CONFIG.seconds / CONFIG.rounds;
  for (let i = 0; i < CONFIG.rounds; i++) {
    for (const k of order(i)) {
      console.error(`  ${engine}: ${k} ${perBlock} s (round ${i + 1}/${CONFIG.rounds})…`);
      const b = await load(targets[k], perBlock);
      answered[k] += b.ok;
      blocks[k].push(b);
    }
  }
  const result = {} as Record<Server, KindResult>;
  for (const k of SERVERS) {
    const bs = blocks[k];
    const sum = (f: (b: Block) => number) => bs.reduce((a, b) => a + f(b), 0);
    const payments = sum((b) => b.ok);
    const seconds = sum((b) => b.seconds);
    const statusCodes: Record<string, number> = {};
    for (const b of bs)
      for (const [code, n] of Object.entries(b.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
    const stored = await settledCount(targets[k].child);
    result[k] = {
      payments,
      seconds,
      perSecond: payments / seconds,
      latencyMs: summarize(bs.flatMap((b) => b.samples)),
      non2xx: sum((b) => b.other),
      errors: sum((b) => b.errors),
      timeouts: sum((b) => b.timeouts),
      statusCodes,
      serverCpuMicrosPerPayment: sum((b) => b.serverCpuMicros) / payments,
      serverCpuCores: sum((b) => b.serverCpuMicros) / 1e6 / seconds,
      serverGcMsPer1000: (sum((b) => b.serverGc.ms) * 1000) / payments,
      loadGeneratorCpuCores: sum((b) => b.loadCpuMicros) / 1e6 / seconds,
      perSecondByBlock: bs.map((b) => b.ok / b.seconds),
      stored,
      answered2xxIncludingWarmup: answered[k],
    };
  }
  for (const k of SERVERS) await stopTarget(targets[k].child);
  const { nest, bare, before } = result;
  const perRound = (a: KindResult, b: KindResult) =>
    a.perSecondByBlock.map((x, i) => x / b.perSecondByBlock[i]);
  const byRound: EngineResult['byRound'] = {
    nestOverBare: perRound(nest, bare),
    ...(before ? { afterOverBefore: perRound(nest, before), beforeOverBare: perRound(before, bare) } : {}),
  };
  const ratio = (a: KindResult, b: KindResult) => ({
    perSecond: a.perSecond / b.perSecond,
    p50: a.latencyMs.p50 / b.latencyMs.p50,
    p99: a.latencyMs.p99 / b.latencyMs.p99,
  });
  return {
    nest,
    bare,
    ratio: ratio(nest, bare),
    ...(before ? { before, beforeRatio: ratio(before, bare), afterOverBefore: ratio(nest, before) } : {}),
    byRound,
    medianByRound: Object.fromEntries(
      Object.entries(byRound).map(([k, v]) => [k, median(v)]),
    ) as EngineResult['medianByRound'],
  };
}

// --- report -----------------------------------------------------------------------------------------

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const fi = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');

function engineRows(engine: Engine, r: EngineResult): string[] {
  const row = (label: string, k: KindResult, ratio: string) =>
    `| ${engine} | ${label} | ${fi(k.perSecond)} | ${f(k.latencyMs.p50)} | ${f(k.latencyMs.p99)} | ` +
    `${k.errors + k.timeouts} / ${k.non2xx} | ${fi(k.serverCpuMicrosPerPayment)} | ${f(k.serverCpuCores)} | ${ratio} |`;
  return [
    row('NestJS server (createServerApp)', r.nest, `**${f(r.ratio.perSecond)}×**`),
    ...(r.before && r.beforeRatio && r.afterOverBefore
      ? [
          row(
            `NestJS server before (--before ${CONFIG.before})`,
            r.before,
            `${f(r.beforeRatio.perSecond)}× (after / before: **${f(r.afterOverBefore.perSecond)}×**)`,
          ),
        ]
      : []),
    row('bare Fastify, same insert (baseline)', r.bare, '1.00×'),
  ];
}

/** The commit measured, and the files under src/ that differ from it (read-only git). */
function sourceState(): { commit: string; dirty: string[] } {
  try {
    const git = (args: string[]) => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' });
    const commit = git(['rev-parse', '--short', 'HEAD']).trim();
    const dirty = git(['status', '--porcelain', '--', 'src'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: [] };
  }
}

function profileLines(p: ServerProfile): string[] {
  const w = (s: ServiceRow) =>
    `${s.work.transactions} + ${s.work.writesOutside} (${s.work.statements} statements, ${s.work.outsideTransactions - s.work.writesOutside} reads outside)`;
  return [
    `The service layer alone (PaymentsService.create called in process, no HTTP, no Nest; simulator on its own ledger, code …00; work counted in the server's database):`,
    '',
    '| Engine | one at a time (ms per payment) | CPU per payment (µs) | ' +
      `${CONFIG.connections} in flight (payments/s) | CPU (cores) | commits per payment: db.tx + writes outside a tx |`,
    '|---|--:|--:|--:|--:|---|',
    ...p.service.map(
      (s) =>
        `| ${s.engine} | ${f(s.sequentialMicros / 1000)} | ${fi(s.sequentialCpuMicros)} | ${fi(s.perSecond)} | ${f(s.cpuCores)} | ${w(s)} |`,
    ),
    '',
    'Single steps (median of 5 batches):',
    '',
    '| Step | wall µs per op | CPU µs per op | Note |',
    '|---|--:|--:|---|',
    ...p.rows.map(
      (r: CostRow) => `| ${r.step} | ${f(r.wallMicros, 1)} | ${f(r.cpuMicros, 1)} | ${r.note ?? ''} |`,
    ),
    '',
  ];
}

// --- main -------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const source = sourceState();
  const machine = {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
  const { gc: loadGc, stop: stopWatchingGc } = watchGc();
  console.error(
    `Server benchmark: ${CONFIG.engines.join(', ')} (${machine.cpus} CPUs, load ${machine.loadAverageAtStart.join(' ')})`,
  );

  const results: Partial<Record<Engine, EngineResult>> = {};
  for (const engine of CONFIG.engines) {
    results[engine] = await measureEngine(engine);
    await cleanups.runAll();
  }
  stopWatchingGc();
  console.error('profiling the service layer in process…');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pc-bench-server-profile-'));
  cleanups.add(async () => fs.rmSync(scratch, { recursive: true, force: true }));
  let profileDb: string | undefined;
  if (CONFIG.engines.includes('postgres')) {
    const schema = `pc_bench_${randomBytes(5).toString('hex')}_profile`;
    cleanups.add(() => dropSchemas([schema]));
    const u = new URL(CONFIG.pg);
    u.searchParams.set('schema', schema);
    profileDb = u.toString();
  }
  const profile = await profileServer({
    dir: scratch,
    sqlite: CONFIG.engines.includes('sqlite'),
    pgUrl: profileDb,
    concurrency: CONFIG.connections,
    seconds: CONFIG.profileSeconds,
  });
  await cleanups.runAll();
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const date = new Date().toISOString();

  const notes: string[] = [];
  if (source.dirty.length)
    notes.push(`Measured at ${source.commit} with uncommitted changes in ${source.dirty.join(', ')}.`);
  for (const [engine, r] of Object.entries(results) as [Engine, EngineResult][]) {
    for (const k of SERVERS) {
      const kr = r[k];
      if (!kr) continue;
      // A request in flight when a block ends may commit without its answer being counted: at most one per
      // connection per block (warm-up included).
      const slack = CONFIG.connections * (CONFIG.rounds + 1);
      const stored = kr.stored.succeeded ?? 0;
      const extra = stored - kr.answered2xxIncludingWarmup;
      const others = Object.entries(kr.stored).filter(([s]) => s !== 'succeeded');
      if (extra < 0 || extra > slack || others.length)
        notes.push(
          `${engine} ${k}: ${kr.answered2xxIncludingWarmup} answered 2xx but the database holds ` +
            `${JSON.stringify(kr.stored)}: check the server.`,
        );
    }
  }

  const sqlite = results.sqlite?.nest;
  const pg = results.postgres?.nest;
  const goals = {
    sqlitePerSecond: sqlite
      ? {
          value: sqlite.perSecond,
          goal: GOALS.sqlitePerSecond,
          met: sqlite.perSecond >= GOALS.sqlitePerSecond,
        }
      : null,
    sqliteP99Ms: sqlite
      ? {
          value: sqlite.latencyMs.p99,
          goal: GOALS.sqliteP99Ms,
          met: sqlite.latencyMs.p99 < GOALS.sqliteP99Ms,
        }
      : null,
    postgresPerSecond: pg
      ? { value: pg.perSecond, goal: GOALS.postgresPerSecond, met: pg.perSecond >= GOALS.postgresPerSecond }
      : null,
    nestOverBare: Object.fromEntries(
      (Object.entries(results) as [Engine, EngineResult][]).map(([e, r]) => [
        e,
        { value: r.ratio.perSecond, goal: GOALS.nestOverBare, met: r.ratio.perSecond >= GOALS.nestOverBare },
      ]),
    ),
    postgresAfterOverBefore: results.postgres?.afterOverBefore
      ? {
          value: results.postgres.afterOverBefore.perSecond,
          goal: GOALS.postgresAfterOverBefore,
          met: results.postgres.afterOverBefore.perSecond >= GOALS.postgresAfterOverBefore,
        }
      : null,
  };
  const verdict = (g: { met: boolean } | null) => (g === null ? 'not measured' : g.met ? 'MET' : 'MISSED');

  const lines: string[] = [];
  lines.push(`## Server benchmark — ${date}`, '');
  lines.push('```', commandLine(), '```', '');
  lines.push(
    `Node ${machine.node}, ${machine.cpus} × ${machine.cpuModel}, load average at start ${machine.loadAverageAtStart.join(' / ')}; ` +
      `autocannon, ${CONFIG.connections} connections, POST /v1/payments with a new Idempotency-Key each, ` +
      `${CONFIG.stores === 1 ? 'one terminal of one store' : `${CONFIG.stores} stores with one terminal each`}, ` +
      `${CONFIG.seconds} s measured per server per engine in ${CONFIG.rounds} alternating blocks after ${CONFIG.warmupSeconds} s warm-up each. ` +
      `Run took ${elapsedS.toFixed(0)} s.`,
    '',
  );
  lines.push(
    '| Engine | Server | payments/s | p50 (ms) | p99 (ms) | errors / non-2xx | server CPU per payment (µs) | server CPU (cores) | payments/s vs bare |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|',
    ...(Object.entries(results) as [Engine, EngineResult][]).flatMap(([e, r]) => engineRows(e, r)),
    '',
  );
  for (const note of notes) lines.push(`> ${note}`, '');
  if (goals.sqlitePerSecond && goals.sqliteP99Ms)
    lines.push(
      `Goal "≥ ${fi(GOALS.sqlitePerSecond)} payments/s on SQLite": ${verdict(goals.sqlitePerSecond)} (${fi(goals.sqlitePerSecond.value)}/s). ` +
        `Goal "p99 < ${GOALS.sqliteP99Ms} ms on SQLite": ${verdict(goals.sqliteP99Ms)} (${f(goals.sqliteP99Ms.value)} ms).`,
      '',
    );
  if (goals.postgresPerSecond)
    lines.push(
      `Goal "≥ ${fi(GOALS.postgresPerSecond)} payments/s on PostgreSQL": ${verdict(goals.postgresPerSecond)} (${fi(goals.postgresPerSecond.value)}/s).`,
      '',
    );
  for (const [e, g] of Object.entries(goals.nestOverBare))
    lines.push(
      `Goal "NestJS server ≥ ${GOALS.nestOverBare * 100}% of bare Fastify" on ${e}: ${verdict(g)} (${f(g.value * 100, 0)}%).`,
      '',
    );
  if (goals.postgresAfterOverBefore)
    lines.push(
      `Goal "PostgreSQL ≥ ${GOALS.postgresAfterOverBefore}× the rate before (--before)": ${verdict(goals.postgresAfterOverBefore)} (${f(goals.postgresAfterOverBefore.value)}×).`,
      '',
    );
  lines.push(
    `Blocks (payments/s, in order): ` +
      (Object.entries(results) as [Engine, EngineResult][])
        .map(
          ([e, r]) =>
            `${e} nest ${r.nest.perSecondByBlock.map(fi).join(', ')}; ` +
            (r.before ? `${e} before ${r.before.perSecondByBlock.map(fi).join(', ')}; ` : '') +
            `${e} bare ${r.bare.perSecondByBlock.map(fi).join(', ')}`,
        )
        .join('; ') +
      `. Load generator CPU: ${(Object.entries(results) as [Engine, EngineResult][])
        .map(
          ([e, r]) =>
            `${e} ${f(r.nest.loadGeneratorCpuCores)} / ${f(r.bare.loadGeneratorCpuCores)} cores (nest / bare)` +
            (r.before ? `, ${f(r.before.loadGeneratorCpuCores)} (before)` : ''),
        )
        .join(', ')}.`,
    '',
  );
  const spread = (xs: number[]) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
  lines.push(
    `Ratios round by round, median (range): ` +
      (Object.entries(results) as [Engine, EngineResult][])
        .map(
          ([e, r]) =>
            `${e} NestJS / bare ${spread(r.byRound.nestOverBare)}` +
            (r.byRound.afterOverBefore ? `, after / before ${spread(r.byRound.afterOverBefore)}` : ''),
        )
        .join('; ') +
      '.',
    '',
  );
  lines.push(...profileLines(profile));
  console.log(lines.join('\n'));

  await writeJson(RESULTS, {
    date,
    command: commandLine(),
    source,
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))) },
    config: CONFIG,
    notes,
    elapsedSeconds: Number(elapsedS.toFixed(1)),
    loadGeneratorGc: { count: loadGc.count, ms: Number(loadGc.ms.toFixed(1)) },
    results,
    goals,
    profile,
  });
  console.error(`results written to ${path.relative(process.cwd(), RESULTS)}`);
}

main()
  .catch(async (e) => {
    console.error(`server benchmark failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(() => cleanups.runAll());
