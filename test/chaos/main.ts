/**
 * `npm run chaos -- --seeds N [--from S]` runs seeds S..S+N-1 (default from 1); `--seed S` replays one.
 * Each seed builds a fresh shop in network namespaces, plays its orders and faults, and checks the
 * invariants (invariants.ts). Prints one line per seed, then every invariant's count; exits 1 when any
 * seed broke one (its plan, the evidence and the parts' output are printed, its folder kept).
 *
 * Options: --orders N (per seed, default 8), --window MS (faults and orders, default 12000),
 * --deadline MS (per order, default 120000), --sim-speed N (default 10), --keep (keep every run's folder),
 * --json FILE (the summary as JSON), --quiet, --parallel N (seeds at once, default 1: each seed is its own
 * shop in its own namespaces, so they do not meet; a long run on 2 CPUs does about 3-4), --root DIR (run another payconnect tree's bin/ and dist/,
 * e.g. a copy of one commit built apart, so a long run is not testing whatever a colleague's
 * `npm run build` just wrote into dist/).
 * Needs root, `ip`, `nft` and `socat`, and a built dist/ (`npm run build`).
 */
import { writeFileSync } from 'node:fs';
import { INVARIANTS, type Invariant } from './invariants';
import { DEFAULTS, runSeed, type RunOptions, type SeedResult } from './run-seed';
import { destroyAllLansNow } from '../support/netns';

export interface Summary {
  seeds: number[];
  failedSeeds: number[];
  harnessErrors: number[];
  checked: Record<Invariant, number>;
  violated: Record<Invariant, number>;
  orders: number;
  paid: number;
  canceled: number;
  redeliveries: number;
  /** Receipts printed again under "补打 REPRINT" after a kill -9 of the plugin mid-print. */
  copies: number;
  faults: Record<string, number>;
  secondsPerSeed: { min: number; median: number; max: number; total: number };
  msToFinal: { median: number; p99: number; max: number };
}

export function summarize(results: SeedResult[]): Summary {
  const checked = Object.fromEntries(INVARIANTS.map((i) => [i, 0])) as Record<Invariant, number>;
  const violated = Object.fromEntries(INVARIANTS.map((i) => [i, 0])) as Record<Invariant, number>;
  const faults: Record<string, number> = {};
  const times: number[] = [];
  let paid = 0;
  let canceled = 0;
  let redeliveries = 0;
  let copies = 0;
  let orders = 0;
  for (const r of results) {
    for (const f of r.plan.faults) {
      const key = f.kind === 'kill9' ? `kill9 ${f.part}` : f.kind;
      faults[key] = (faults[key] ?? 0) + 1;
    }
    const cancels = r.plan.orders.filter((o) => o.cancelAfterScanMs !== undefined).length;
    faults['cancel racing approval'] = (faults['cancel racing approval'] ?? 0) + cancels;
    for (const o of r.plan.orders) {
      const key = `code …${o.codes[0].slice(-2)}`;
      faults[key] = (faults[key] ?? 0) + 1;
    }
    if (!r.report) continue;
    orders += r.plan.orders.length;
    for (const i of INVARIANTS) checked[i] += r.report.checked[i];
    for (const v of r.report.violations) violated[v.invariant]++;
    paid += r.report.stats.paid;
    canceled += r.report.stats.canceled;
    redeliveries += r.report.stats.redeliveries;
    copies += r.report.stats.copies ?? 0;
    times.push(...r.report.stats.msToFinal);
  }
  const secs = results.map((r) => r.ms / 1000).sort((a, b) => a - b);
  times.sort((a, b) => a - b);
  const q = (xs: number[], p: number) =>
    xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : 0;
  return {
    seeds: results.map((r) => r.seed),
    failedSeeds: results.filter((r) => r.error || r.report?.violations.length).map((r) => r.seed),
    harnessErrors: results.filter((r) => r.error).map((r) => r.seed),
    checked,
    violated,
    orders,
    paid,
    canceled,
    redeliveries,
    copies,
    faults,
    secondsPerSeed: {
      min: secs[0] ?? 0,
      median: q(secs, 0.5),
      max: secs[secs.length - 1] ?? 0,
      total: secs.reduce((a, b) => a + b, 0),
    },
    msToFinal: { median: q(times, 0.5), p99: q(times, 0.99), max: times[times.length - 1] ?? 0 },
  };
}

function parseArgs(argv: string[]): {
  seeds: number[];
  opts: RunOptions;
  json?: string;
  quiet: boolean;
  parallel: number;
} {
  const opts: RunOptions = { ...DEFAULTS };
  let parallel = 1;
  let count = 1;
  let from = 1;
  let only: number | undefined;
  let json: string | undefined;
  let quiet = false;
  const num = (i: number) => {
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 0) {
      console.error(`${argv[i]} needs a whole number, not ${argv[i + 1]}`);
      process.exit(2);
    }
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seeds') count = num(i++);
    else if (a === '--from') from = num(i++);
    else if (a === '--seed') only = num(i++);
    else if (a === '--orders') opts.orders = num(i++);
    else if (a === '--window') opts.windowMs = num(i++);
    else if (a === '--deadline') opts.orderDeadlineMs = num(i++);
    else if (a === '--sim-speed') opts.simSpeed = num(i++);
    else if (a === '--keep') opts.keep = true;
    else if (a === '--root') opts.root = require('node:path').resolve(argv[++i]);
    else if (a === '--json') json = argv[++i];
    else if (a === '--quiet') quiet = true;
    else if (a === '--parallel') parallel = Math.max(1, num(i++));
    else if (a === '--help') {
      console.log(require('node:fs').readFileSync(__filename, 'utf8').split('*/')[0]);
      process.exit(0);
    } else {
      console.error(`unknown option ${a} (see --help)`);
      process.exit(2);
    }
  }
  const seeds = only !== undefined ? [only] : Array.from({ length: count }, (_, i) => from + i);
  return { seeds, opts, json, quiet, parallel };
}

async function main(): Promise<void> {
  const { seeds, opts, json, quiet, parallel } = parseArgs(process.argv.slice(2));
  const results: SeedResult[] = [];
  let stopping = false;
  // Quitting at once (a second Ctrl-C, or SIGTERM) leaves nothing behind: every seed's processes and
  // namespaces go first, also those of a shop still being set up.
  const quitNow = (code: number) => {
    destroyAllLansNow();
    process.exit(code);
  };
  process.on('SIGTERM', () => quitNow(143));
  process.on('SIGINT', () => {
    if (stopping) quitNow(130);
    stopping = true;
    console.log('interrupted: finishing the seeds under way, then the summary (Ctrl-C again to quit now)');
  });
  const queue = [...seeds];
  const worker = async () => {
    for (let seed = queue.shift(); seed !== undefined && !stopping; seed = queue.shift()) {
      const prefix = parallel > 1 ? `[${seed}] ` : '';
      const r = await runSeed(seed, { ...opts, log: quiet ? undefined : (l) => console.log(prefix + l) });
      results.push(r);
      report(r);
    }
  };
  const report = (r: SeedResult) => {
    const seed = r.seed;
    const v = r.report?.violations ?? [];
    const line = r.error
      ? `seed ${seed}: HARNESS ERROR after ${(r.ms / 1000).toFixed(1)} s: ${r.error.split('\n')[0]}`
      : `seed ${seed}: ${v.length ? `FAILED ${v.length} invariant(s)` : 'ok'} in ${(r.ms / 1000).toFixed(1)} s ` +
        `(${r.report!.stats.paid} paid, ${r.report!.stats.canceled} canceled, ${r.plan.faults.length} faults)`;
    console.log(line);
    for (const x of v) console.log(`  ${x.invariant} ${x.orderId}: ${x.detail}`);
    if (r.error) console.log(r.error);
    if (v.length || r.error)
      console.log(`  replay: npm run chaos -- --seed ${seed}   (files kept in ${r.dir})`);
    // After every seed, so that a run stopped hard still leaves what it measured.
    if (json)
      writeFileSync(
        json,
        JSON.stringify({ summary: summarize(results), results: results.map(brief) }, null, 2),
      );
  };
  await Promise.all(Array.from({ length: Math.min(parallel, seeds.length) }, worker));
  results.sort((a, b) => a.seed - b.seed);
  const s = summarize(results);
  console.log(JSON.stringify(s, null, 2));
  if (json) writeFileSync(json, JSON.stringify({ summary: s, results: results.map(brief) }, null, 2));
  process.exit(s.failedSeeds.length ? 1 : 0);
}

function brief(r: SeedResult) {
  return {
    seed: r.seed,
    ms: r.ms,
    error: r.error,
    violations: r.report?.violations,
    faults: r.faultsDone,
    outcomes: r.outcomes.map((o) => ({ id: o.orderId, status: o.finalStatus, notes: o.notes })),
  };
}

if (require.main === module) void main();
