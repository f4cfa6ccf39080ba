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
//                      loopback. The run works in two private schemas pc_bench_<random>_{nest,bare} that
//                      it drops at the end.
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
import { execFileSync } from 'node:child_process';
import { REPO_ROOT, runTs, type JsonLineChild, type JsonMessage } from '../../test/support/node-runner';
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
const RESULTS = path.join(REPO_ROOT, 'bench', 'server', 'results', 'latest.json');
/** The whole run stops (cleaning up) after this, whatever happens. */
const HARD_LIMIT_MS = 180_000;

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
  profileSeconds: 2,
};
for (const e of CONFIG.engines)
  if (e !== 'sqlite' && e !== 'postgres') throw new Error(`--engines: unknown engine ${e}`);
if (CONFIG.stores > CONFIG.connections) throw new Error('--stores cannot be more than --connections');
if (CONFIG.engines.includes('postgres') && !isLoopback(new URL(CONFIG.pg).hostname))
  throw new Error(`--pg must point at 127.0.0.x, not ${new URL(CONFIG.pg).hostname}`);

/** The goals, for the reader: printed as MET or MISSED, never a pass/fail exit code. */
const GOALS = {
  sqlitePerSecond: 2000,
  sqliteP99Ms: 25,
  postgresPerSecond: 1000,
  nestOverBare: 0.6,
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

async function startTarget(kind: Kind, engine: Engine, db: string): Promise<Started> {
  const child = runTs(TARGET, [kind, '--db', db, '--stores', String(CONFIG.stores)], {
    label: `${engine}:${kind}`,
  });
  cleanups.add(() => stopTarget(child));
  const ready = await child.next({ event: 'ready' }, 60_000);
  return {
    child,
    url: `http://127.0.0.1:${ready.port as number}/v1/payments`,
    tokens: ready.tokens as string[],
  };
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
async function databases(engine: Engine): Promise<Record<Kind, string>> {
  if (engine === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pc-bench-server-'));
    cleanups.add(async () => fs.rmSync(dir, { recursive: true, force: true }));
    return { nest: `sqlite:${path.join(dir, 'nest.db')}`, bare: `sqlite:${path.join(dir, 'bare.db')}` };
  }
  const prefix = `pc_bench_${randomBytes(5).toString('hex')}`;
  const schemas = KINDS.map((k) => `${prefix}_${k}`);
  cleanups.add(() => dropSchemas(schemas));
  const url = (kind: Kind) => {
    const u = new URL(CONFIG.pg);
    u.searchParams.set('schema', `${prefix}_${kind}`);
    return u.toString();
  };
  return { nest: url('nest'), bare: url('bare') };
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
  ratio: { perSecond: number; p50: number; p99: number };
}

/** Alternate which server goes first, so neither always runs right after the other. */
const order = (i: number): Kind[] => (i % 2 ? [...KINDS].reverse() : KINDS);

async function measureEngine(engine: Engine): Promise<EngineResult> {
  const dbs = await databases(engine);
  const targets = {} as Record<Kind, Started>;
  await Promise.all(KINDS.map(async (k) => (targets[k] = await startTarget(k, engine, dbs[k]))));

  const answered = { nest: 0, bare: 0 } as Record<Kind, number>;
  for (const k of KINDS) {
    console.error(`  ${engine}: warm-up ${k} ${CONFIG.warmupSeconds} s…`);
    answered[k] += (await load(targets[k], CONFIG.warmupSeconds)).ok;
  }
  const blocks = { nest: [], bare: [] } as Record<Kind, Block[]>;
  const perBlock = CONFIG.seconds / CONFIG.rounds;
  for (let i = 0; i < CONFIG.rounds; i++) {
    for (const k of order(i)) {
      console.error(`  ${engine}: ${k} ${perBlock} s (round ${i + 1}/${CONFIG.rounds})…`);
      const b = await load(targets[k], perBlock);
      answered[k] += b.ok;
      blocks[k].push(b);
    }
  }
  const result = {} as Record<Kind, KindResult>;
  for (const k of KINDS) {
    const bs = blocks[k];
    const sum = (f: (b: Block) => number) => bs.reduce((a, b) => a + f(b), 0);
    const payments = sum((b) => b.ok);
    const seconds = sum((b) => b.seconds);
    const statusCodes: Record<string, number> = {};
    for (const b of bs)
      for (const [code, n] of Object.entries(b.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
    const stored = (await ask(targets[k].child, { cmd: 'count' }, 'count')).byStatus as Record<
      string,
      number
    >;
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
  for (const k of KINDS) await stopTarget(targets[k].child);
  const { nest, bare } = result;
  return {
    nest,
    bare,
    ratio: {
      perSecond: nest.perSecond / bare.perSecond,
      p50: nest.latencyMs.p50 / bare.latencyMs.p50,
      p99: nest.latencyMs.p99 / bare.latencyMs.p99,
    },
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
    for (const k of KINDS) {
      // A request in flight when a block ends may commit without its answer being counted: at most one per
      // connection per block (warm-up included).
      const slack = CONFIG.connections * (CONFIG.rounds + 1);
      const stored = r[k].stored.succeeded ?? 0;
      const extra = stored - r[k].answered2xxIncludingWarmup;
      const others = Object.entries(r[k].stored).filter(([s]) => s !== 'succeeded');
      if (extra < 0 || extra > slack || others.length)
        notes.push(
          `${engine} ${k}: ${r[k].answered2xxIncludingWarmup} answered 2xx but the database holds ` +
            `${JSON.stringify(r[k].stored)}: check the server.`,
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
  lines.push(
    `Blocks (payments/s, in order): ` +
      (Object.entries(results) as [Engine, EngineResult][])
        .map(
          ([e, r]) =>
            `${e} nest ${r.nest.perSecondByBlock.map(fi).join(', ')}; ${e} bare ${r.bare.perSecondByBlock.map(fi).join(', ')}`,
        )
        .join('; ') +
      `. Load generator CPU: ${(Object.entries(results) as [Engine, EngineResult][])
        .map(
          ([e, r]) =>
            `${e} ${f(r.nest.loadGeneratorCpuCores)} / ${f(r.bare.loadGeneratorCpuCores)} cores (nest / bare)`,
        )
        .join(', ')}.`,
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
