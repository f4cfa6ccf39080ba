/**
 * The whole chain, end to end (issue 14): registers → plugin → LAN offer → unit pays → server → signed result
 * → plugin → write-back to the host, with its raw floor measured beside it in the same run.
 *
 * Processes. Every app is a real process started from the built dist/ (`npm run build` first; the bench
 * stops at once, saying so, when dist/cli/main.js is missing, and warns when a file in src/ is newer), each
 * with its own event loop, SQLite files and disk syncs, as in a shop:
 *   - the payment server: `node bin/payconnect.js server --port P --db sqlite:… ` (PAYCONNECT_SIM_SPEED=50),
 *   - one plugin per register: `node bin/payconnect.js plugin --manifest http-hook.yaml --also-manifest
 *     display-led8-hisense-vc110.yaml --plugin-port Q …` (a plugin serves exactly one register: AdapterHost
 *     refuses an extra manifest that names another, `setup.register_differs`),
 *   - `--units` units: `node bin/payconnect.js terminal --id Tn …`,
 *   - the floor: bench/e2e/floor.ts (node -r @swc-node/register), talking JSON lines.
 * This process (the driver) plays the registers, the register host's callback server, the shop LAN's
 * broadcast and the clerks at the units. Every child's output goes to a log file in the scratch folder
 * (its tail is printed when one fails to start or dies). All of them, the socat pty pairs and the scratch
 * folder are removed at the end, on Ctrl-C/SIGTERM/SIGHUP, on an error and at the time limit; a last
 * synchronous SIGKILL on exit catches any child still there (only a kill -9 of the driver itself leaves
 * them behind). (The one-process bench that came before this one, `--in-process`, was removed on 2026-11-30;
 * it is bench/e2e/in-process.ts at commit 9c91f54.)
 *
 * LAN: 127.0.0.0/8 only (checked). A plugin binds its LAN port on the wildcard address without
 * SO_REUSEADDR, so one host holds one plugin per port (in a shop each register is its own PC): each plugin
 * gets its own --plugin-port, and a relay here on the shared plugin port (bound to 127.255.255.255)
 * copies every unit beacon to each of them, as the shop LAN's broadcast reaches every register PC.
 * Beacons carry the unit's own address and port, so offers, acks and claims then go straight between the
 * plugin and unit processes. Units share the units' port (SO_REUSEADDR). Register Rnn dispatches unicast
 * to unit T((n-1) mod units + 1).
 *
 * Captures. Register Rnn alternates a sale by the HTTP hook (POST /api/orders on its plugin's local API) and
 * one on the customer display (led8 bytes written into the far end of a socat pty pair whose near end the
 * plugin reads; the plugin passes them on to a second pair whose far end is read here and dropped), one sale
 * open at a time, a sale started every `--interval` ms (50 registers at 1 s: 50 orders/s offered). The
 * capture clock starts at the POST, or just before the CR that completes the display's total.
 *
 * The offer reaching the unit. The unit's API has an event stream (GET /api/events, server-sent events:
 * `data: changed` whenever offers, payments or the server's state change, and nothing else) and the offer
 * list (GET /api/offers); no route names the one offer that changed. The driver holds one stream per
 * unit, as the touch page does, stamps every event as it handles it (its monotonic clock, and Date.now()),
 * and reads /api/offers after each: one read in flight per unit, events during a read cause one more
 * read; `--live-ms N` spaces the starts of reads by N ms as the page does (its LIVE_MS is 50), the
 * default reads back to back. An offer seen for the first time is dated by the first event handled at or
 * after the unit's own `receivedAt` stamp of it (ms, the same machine's wall clock): the event the unit
 * sent as it took the offer into its inbox. So the date does not wait for the read; its error is the
 * gap to an event the unit sent just before (another order's change) when that one reached the driver
 * after the stamp: well under a ms unless the driver's loop lags. When no event is found (the read's
 * answer was handled before the event) the read's answer time is used and counted
 * (`measurement.offersNotAttributed`). Reported beside it: the unit's own stamp minus the capture's wall
 * time (`byOwnStampsMs`, ms resolution), and what reads of /api/offers cost (time, size, offers listed):
 * the list holds every offer of the last hour (FINISHED_OFFER_KEEP_MS), each looked up in the unit's
 * store, so it grows with the run and the claim waits for it. Then the clerk, as the touch page does:
 * POST /api/offers/:id/claim, POST /api/offers/:id/pay with an immediate-success simulator code (18
 * digits ending 00, docs/server-api.md).
 *
 * Write-back. Hook sales: when the register host's callback server (here) receives the signed result.
 * Display sales (a display cannot be told a result; its writeBack is a no-op): the plugin's order API.
 * The driver holds the plugin's event stream (GET /api/events, `{kind: 'order', orderId}` per change)
 * and, once the unit has paid, reads GET /api/orders/:id after each event of the order until it shows
 * writeBack 'done'; the time is that of the first event of the order received at or after the history's
 * 'written back' stamp (the plugin's own, ms; it emits the event right after journaling it). The same
 * stream dates "journaled" (the order's first event, sent right after its first commit) for the stage
 * breakdown. Stages are dated on different processes' streams as the driver handles them, so two that are
 * under a ms apart may swap (journaled → offer can be slightly negative), and paid → write-back is often
 * negative: the server pushes the signed result to the plugin while the unit's pay answer is on its way.
 *
 * Floor, in its own process (bench/e2e/floor.ts), one round every `--floor-every` ms during the paced
 * part: a sealed LAN round trip (LanEndpoint offer and its ack on two loopback sockets) plus the server
 * call alone (createPayment with a success code and the signed result). The chain's ratios are to it.
 *
 * Memory: VmRSS from /proc/<pid>/status of every child every `--sample` s, by kind (plugins, units,
 * server: sum and mean per process; the driver's own RSS beside them), with a least-squares slope after
 * the first minute (or the first fifth of a shorter run) and first- and last-minute means. CPU seconds
 * per kind over the paced part from /proc/<pid>/stat.
 *
 *   npm run build && npm run bench:e2e -- --minutes 1   (short run)
 *   npm run bench:e2e -- --minutes 10    (the full run; options: --registers 50 --units 5 --interval 1000
 *                                         --burst 20 (seconds with no pause, orders/s at saturation) or
 *                                         --no-burst, --floor-every 200 --sample 5, --live-ms 50,
 *                                         --start-parallel 4 (processes started at once),
 *                                         --cpu-prof DIR [--cpu-prof-kinds plugin,unit,server],
 *                                         --heap-snapshot DIR --heap-snapshot-at 11,20 [--heap-snapshot-kinds unit])
 * Results: bench/e2e/results/e2e-<minutes>min.json (BENCH_E2E_NAME overrides the name).
 */
import { spawn, type ChildProcess, execSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { Agent, createServer, request, Server } from 'node:http';
import net from 'node:net';
import tty from 'node:tty';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { cpus, tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { freeTcpPort, freeUdpPort } from '../../test/support/child-process';
import { PtyPair } from '../../test/support/pty';
import { REPO_ROOT, runTs, type JsonLineChild } from '../../test/support/node-runner';
import { pickLanPorts } from '../../test/terminal/support/harness';
import {
  Cleanups,
  commandLine,
  isLoopback,
  jsonRequest,
  listOption,
  numberOption,
  stopChild,
  stopOnSignalsOrAfter,
  summarize,
  textOption,
  watchGc,
  writeJson,
} from '../support/bench-kit';
import { elapsedMs, led8Value, manifestCopy, yuan } from '../support/shop';

const HOST = '127.0.0.1';
const BROADCAST = '127.255.255.255';
const ADMIN = 'bench-e2e-admin-token';
const HOOK_SECRET = 'bench-e2e-hook-secret-0123456789';
const BIN = path.join(REPO_ROOT, 'bin', 'payconnect.js');
/**
 * `--cpu-prof DIR`: the app processes of the kinds in `--cpu-prof-kinds` (default `plugin`, comma-separated)
 * run under node's --cpu-prof and write a .cpuprofile each into DIR when they stop (open them in Chrome's
 * DevTools, or sum them with bench/e2e/prof-top.ts).
 */
const cpuProfDirOption = textOption('cpu-prof');
const cpuProfDir = cpuProfDirOption === undefined ? undefined : path.resolve(cpuProfDirOption);
const cpuProfKinds = listOption('cpu-prof-kinds', ['plugin']);
/**
 * `--heap-snapshot DIR --heap-snapshot-at M1,M2,…`: the first process of each kind in `--heap-snapshot-kinds`
 * (default `unit`) runs with node's --heapsnapshot-signal=SIGUSR2, and at each listed minute of the paced part
 * the driver sends it SIGUSR2: node writes a .heapsnapshot into DIR (the process stops for a few seconds while
 * it does). Compare two with bench/e2e/heap-diff.ts.
 */
const heapDirOption = textOption('heap-snapshot');
const heapDir = heapDirOption === undefined ? undefined : path.resolve(heapDirOption);
const heapKinds = listOption('heap-snapshot-kinds', ['unit']);
const heapAtMinutes = listOption('heap-snapshot-at', []).map(Number);
if (heapAtMinutes.some((m) => !(m >= 0)))
  throw new Error('--heap-snapshot-at: minutes as numbers, comma-separated');
const heapSnapshotted = new Set<Kind>();
if (heapDir) mkdirSync(heapDir, { recursive: true });
const SAMPLE_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const CR = Buffer.from([0x0d]);
const CLR = Buffer.from([0x0c]);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => process.hrtime.bigint();
/** An Alipay-like simulator code that succeeds at once (last two digits 00). */
const successCode = () => `28${String(randomBytes(7).readUIntBE(0, 6) % 1e14).padStart(14, '0')}00`;

interface Answer {
  status: number;
  body: string;
}

function call(
  agent: Agent,
  base: URL,
  method: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return jsonRequest(agent, base, method, urlPath, { body, headers, timeoutMs: REQUEST_TIMEOUT_MS });
}

/** An event as the driver received it: its monotonic time and its wall clock in ms (Date.now()). */
interface Stamp {
  at: bigint;
  wall: number;
}

/**
 * A server-sent event stream (GET `urlPath`), each event's `data:` handed over with the moment its chunk
 * arrived. Reopened after 100 ms if it ends before close(); `onDrop` is told.
 */
function eventStream(
  base: URL,
  urlPath: string,
  onData: (data: string, stamp: Stamp) => void,
  onDrop: (why: string) => void,
): { opened: Promise<void>; close(): void } {
  let closed = false;
  let req: ReturnType<typeof request> | undefined;
  let opened!: () => void;
  const ready = new Promise<void>((r) => (opened = r));
  const open = () => {
    let buffer = '';
    req = request(
      {
        host: base.hostname,
        port: base.port,
        path: urlPath,
        agent: false,
        headers: { accept: 'text/event-stream' },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reopen(`HTTP ${res.statusCode}`);
          return;
        }
        opened();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const stamp = { at: now(), wall: Date.now() };
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = event
              .split('\n')
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(5).trimStart())
              .join('\n');
            if (data) onData(data, stamp);
          }
        });
        res.on('end', () => reopen('the stream ended'));
        res.on('error', () => undefined);
      },
    );
    req.on('error', (e) => reopen(e.message));
    req.end();
  };
  const reopen = (why: string) => {
    if (closed) return;
    onDrop(why);
    setTimeout(() => !closed && open(), 100);
  };
  open();
  return {
    opened: ready,
    close: () => {
      closed = true;
      req?.destroy();
    },
  };
}

/** Promises keyed by a string, resolved with what happened; late arrivals are kept briefly. */
class Waits<T> {
  private readonly waiting = new Map<string, (v: T) => void>();
  private readonly early = new Map<string, T>();
  wait(key: string, timeoutMs = SAMPLE_TIMEOUT_MS): Promise<T | undefined> {
    const got = this.early.get(key);
    if (got !== undefined) {
      this.early.delete(key);
      return Promise.resolve(got);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(key, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
    });
  }
  hit(key: string, v: T): void {
    const w = this.waiting.get(key);
    if (w) {
      this.waiting.delete(key);
      w(v);
    } else if (this.early.size < 10_000) this.early.set(key, v);
  }
  forget(key: string): void {
    this.early.delete(key);
  }
}

// --- processes --------------------------------------------------------------------------------------

type Kind = 'server' | 'plugin' | 'unit';

/** A device's own account of its memory, MB (src/device/process-facts.ts). */
interface ProcessMemory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** One `node bin/payconnect.js …` child, its output in a log file. */
class AppProc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** Whether this process writes a heap snapshot on SIGUSR2 (`--heap-snapshot`). */
  readonly heapSnapshots: boolean;
  exit: string | undefined;
  private stopping = false;

  constructor(
    readonly name: string,
    readonly kind: Kind,
    args: string[],
    readonly log: string,
    env: Record<string, string>,
    onDeath: (p: AppProc) => void,
  ) {
    const fd = openSync(log, 'a');
    const prof =
      cpuProfDir && cpuProfKinds.includes(kind) ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [];
    // One process per kind is enough to see what its kind keeps; each snapshot stops it for seconds.
    this.heapSnapshots = !!heapDir && heapKinds.includes(kind) && !heapSnapshotted.has(kind);
    if (this.heapSnapshots) heapSnapshotted.add(kind);
    const heap = this.heapSnapshots ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir}`] : [];
    this.child = spawn(process.execPath, [...prof, ...heap, BIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = signal ?? `code ${code}`;
        if (!this.stopping && !ending) onDeath(this);
        resolve();
      });
      this.child.once('error', (e) => {
        this.exit = `could not start: ${e.message}`;
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.exit === undefined ? this.child.pid : undefined;
  }

  tail(lines = 20): string {
    try {
      return readFileSync(this.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Polls `url` until it answers 200; fails at once, with the log's tail, if the process exits first. */
  async waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.exit !== undefined)
        throw new Error(`${this.name} exited (${this.exit}) before it was ready:\n${this.tail()}`);
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`${this.name} did not answer ${url} within ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** SIGTERM (the app closes itself), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.exit !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  killNow(): void {
    this.stopping = true;
    if (this.exit === undefined) this.child.kill('SIGKILL');
  }
}

/** VmRSS of a process in bytes, from /proc/<pid>/status; undefined once it is gone. */
function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const TICKS_PER_S = (() => {
  try {
    return Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds of a process, from /proc/<pid>/stat. */
function cpuOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_S; // fields 14 and 15 (utime, stime)
  } catch {
    return undefined;
  }
}

/** The newest .ts file under src/ when it is newer than dist/cli/main.js (a stale build), or undefined. */
function newerSource(): string | undefined {
  const built = statSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js')).mtimeMs;
  let newest: { file: string; at: number } | undefined;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts')) {
        const at = statSync(p).mtimeMs;
        if (at > built && (!newest || at > newest.at)) newest = { file: p, at };
      }
    }
  };
  walk(path.join(REPO_ROOT, 'src'));
  return newest && path.relative(REPO_ROOT, newest.file);
}

/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

/** The LAN counters that say whether datagrams were lost or retried (as GET /api/status shows them). */
function lanBrief(st: Record<string, unknown> | undefined) {
  const n = (k: string) => Number(st?.[k] ?? 0);
  const dropped = Object.values((st?.dropped ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
  return {
    messagesSent: n('messagesSent'),
    retransmissions: n('retransmissions'),
    datagramsIn: n('datagramsIn'),
    datagramsOut: n('datagramsOut'),
    duplicates: n('duplicates'),
    expired: n('expired'),
    dropped,
  };
}

/** Least-squares slope of y over x (per unit of x). */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return num / den;
}

const uptime = () => {
  try {
    return execSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `loadavg ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`;
  }
};

// --- the shop's parts as the driver sees them -----------------------------------------------------

/** An offer as a unit's GET /api/offers lists it (the fields used here). */
interface OfferJson {
  orderId: string;
  registerId: string;
  status: string;
  receivedAt: string;
}

/** An offer a unit showed for the first time. */
interface SeenOffer {
  orderId: string;
  /** The unit's event that announced it (see the header), or the read's answer when none was found. */
  at: bigint;
  attributed: boolean;
  /** The unit's own receivedAt, ms since the epoch. */
  unitStamp: number;
}

/** A unit process and the driver's view of it: its event stream, the offers it has shown. */
class UnitView {
  readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });
  private readonly events: Stamp[] = [];
  private readonly seen = new Set<string>();
  private running = false;
  private again = false;
  private stream?: { opened: Promise<void>; close(): void };
  /** Each read of /api/offers: how long it took, how big the answer was, how many offers it listed. */
  readonly reads: { ms: number; bytes: number; offers: number; at: number }[] = [];
  eventCount = 0;
  notAttributed = 0;

  private lastRead = 0;

  constructor(
    readonly id: string,
    readonly proc: AppProc,
    readonly url: URL,
    private readonly onOffer: (o: OfferJson, seen: SeenOffer) => void,
    private readonly fail: (s: string) => void,
    /** At least this long between the starts of two reads (the touch page: 50 ms); 0: back to back. */
    private readonly liveMs: number,
  ) {}

  listen(): Promise<void> {
    this.stream = eventStream(
      this.url,
      '/api/events',
      (_data, stamp) => {
        this.eventCount++;
        this.events.push(stamp);
        if (this.events.length > 20_000) this.events.splice(0, 10_000);
        void this.refresh();
      },
      (why) => this.fail(`unit ${this.id} event stream dropped: ${why}`),
    );
    return this.stream.opened;
  }

  close(): void {
    this.stream?.close();
    this.agent.destroy();
  }

  private async refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        const wait = this.lastRead + this.liveMs - Date.now();
        if (wait > 0) await sleep(wait);
        this.lastRead = Date.now();
        await this.read();
      } while (this.again);
    } catch (e) {
      this.fail(`unit ${this.id} GET /api/offers: ${(e as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async read(): Promise<void> {
    const t0 = now();
    const a = await call(this.agent, this.url, 'GET', '/api/offers');
    const t1 = now();
    if (a.status !== 200) throw new Error(`HTTP ${a.status} ${a.body.slice(0, 200)}`);
    const list = JSON.parse(a.body) as OfferJson[];
    this.reads.push({ ms: elapsedMs(t0, t1), bytes: a.body.length, offers: list.length, at: Date.now() });
    for (const o of list) {
      if (this.seen.has(o.orderId)) continue;
      this.seen.add(o.orderId);
      const unitStamp = Date.parse(o.receivedAt);
      // The first event received at or after the unit's own stamp: the one it sent as it took the offer.
      let lo = 0;
      let hi = this.events.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.events[mid].wall >= unitStamp) hi = mid;
        else lo = mid + 1;
      }
      const ev = this.events[lo];
      if (!ev) this.notAttributed++;
      this.onOffer(o, { orderId: o.orderId, at: ev ? ev.at : t1, attributed: !!ev, unitStamp });
    }
    // Events older than a minute can no longer date an offer not yet seen.
    const old = Date.now() - 60_000;
    let drop = 0;
    while (drop < this.events.length && this.events[drop].wall < old) drop++;
    if (drop) this.events.splice(0, drop);
  }
}

interface Register {
  id: string;
  plugin: AppProc;
  url: URL;
  agent: Agent;
  /** The register's end of its line to the plugin (the display protocol is written here). */
  fd: number;
  unit: UnitView;
  /** The plugin's events per order (its event stream), kept until the sale is over. */
  events: Map<string, Stamp[]>;
  waiters: Set<() => void>;
  stream?: { opened: Promise<void>; close(): void };
}

interface Sample {
  kind: 'http' | 'display';
  offerMs: number;
  /** The unit's own receivedAt minus the capture's wall time (ms resolution). */
  offerUnitStampMs: number;
  writeBackMs: number;
  /** Display sales: the plugin's own 'written back' stamp minus the capture's wall time (ms). */
  writeBackPluginStampMs?: number;
  /** Capture → the plugin's first event of the order (it journaled it). */
  journaledMs?: number;
  /** Capture → the unit's claim answered. */
  claimedMs: number;
  /** Capture → the unit's pay answered (the payment decided at the unit). */
  paidMs: number;
  at: number;
}

const cleanups = new Cleanups();
const procs: AppProc[] = [];
const sockets: ChildProcess[] = []; // socat of each pty pair, for the last-resort kill
let floorChild: JsonLineChild | undefined;
/** Set once the bench is ending: a child exiting then is not a death to report. */
let ending = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => (ending = true));

/** Stops every app process at once (SIGTERM, SIGKILL after 5 s), then the rest of the cleanups. */
async function shutdown(): Promise<void> {
  ending = true;
  await Promise.all(procs.map((p) => p.stop()));
  if (floorChild) await stopChild(floorChild, 2000).catch(() => undefined);
  await cleanups.runAll();
}

// Whatever way this process ends (an exception, process.exit), no child outlives it.
process.on('exit', () => {
  for (const p of procs) p.killNow();
  for (const s of sockets) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
  if (floorChild && floorChild.child.exitCode === null) floorChild.child.kill('SIGKILL');
});

async function main(): Promise<void> {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js')))
    throw new Error(
      'dist/ is not built: this bench starts the apps from dist/ (node bin/payconnect.js …); run `npm run build` first',
    );
  const stale = newerSource();
  if (stale)
    console.error(
      `warning: ${stale} is newer than dist/: the apps run the last build (npm run build to refresh)`,
    );

  const minutes = numberOption('minutes', 1);
  const registers = numberOption('registers', 50);
  const units = numberOption('units', 5);
  const intervalMs = numberOption('interval', 1000);
  const burstS = process.argv.includes('--no-burst') ? 0 : numberOption('burst', 20);
  const floorEveryMs = numberOption('floor-every', 200);
  const sampleS = numberOption('sample', 5);
  const parallel = numberOption('start-parallel', 4);
  const liveMs = process.argv.includes('--live-ms') ? numberOption('live-ms', 50) : 0;
  const limitMs = (minutes * 60 + burstS + 600) * 1000;
  const debug = (m: string) => process.env.BENCH_DEBUG && console.error(m);
  stopOnSignalsOrAfter(limitMs, shutdown, 'every process of the shop and the scratch folder');
  const loadAtStart = uptime();
  console.error(`start: ${loadAtStart}`);

  const tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-bench-e2e-'));
  cleanups.add(async () => rmSync(tmp, { recursive: true, force: true }));
  const logs = path.join(tmp, 'logs');
  mkdirSync(logs);
  const lan = await pickLanPorts();
  for (const a of [HOST, BROADCAST]) if (!isLoopback(a)) throw new Error(`${a} is not loopback`);

  const failures: string[] = [];
  let failureCount = 0;
  const fail = (s: string) => {
    failureCount++;
    if (failures.length < 200) failures.push(s);
  };
  const deaths: string[] = [];
  const start = (name: string, kind: Kind, args: string[], env: Record<string, string> = {}) => {
    const p = new AppProc(name, kind, args, path.join(logs, `${name}.log`), env, (dead) => {
      const msg = `${dead.name} (pid ${dead.child.pid}) exited during the run: ${dead.exit}\n${dead.tail()}`;
      deaths.push(msg);
      fail(`${dead.name} exited: ${dead.exit}`);
      console.error(msg);
    });
    procs.push(p);
    return p;
  };

  // The payment server.
  const serverPort = await freeTcpPort();
  const server = start(
    'server',
    'server',
    ['server', '--port', String(serverPort), '--host', HOST, '--db', `sqlite:${path.join(tmp, 'server.db')}`],
    { PAYCONNECT_ADMIN_TOKEN: ADMIN, PAYCONNECT_SIM_SPEED: '50' },
  );
  const serverUrl = new URL(`http://${HOST}:${serverPort}`);
  if (!isLoopback(serverUrl.hostname)) throw new Error(`the server is on ${serverUrl.hostname}`);
  const started0 = Date.now();
  await server.waitHttp(`${serverUrl.origin}/healthz`);
  const adminAgent = new Agent({ keepAlive: true });
  const admin = async (p: string, body: unknown) => {
    const a = await call(adminAgent, serverUrl, 'POST', p, body, { authorization: `Bearer ${ADMIN}` });
    if (a.status !== 201) throw new Error(`${p}: HTTP ${a.status} ${a.body}`);
    return JSON.parse(a.body) as Record<string, string>;
  };
  const storeId = (await admin('/v1/stores', { name: 'Bench shop' })).id;
  const code = async (role: 'plugin' | 'terminal') =>
    (await admin(`/v1/stores/${storeId}/registration-codes`, { role })).code;
  debug(`server up in ${Date.now() - started0} ms`);

  // Write-backs of hook sales: the register host's callback server, one for every register.
  const hookWriteBacks = new Waits<bigint>();
  const hook: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      const at = now();
      try {
        const b = JSON.parse(text) as { orderId?: string; result?: { orderId?: string } };
        const id = b.orderId ?? b.result?.orderId;
        if (id) hookWriteBacks.hit(id, at);
      } catch {
        // not JSON: not counted
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => hook.listen(0, HOST, () => r()));
  cleanups.add(() => new Promise<void>((r) => hook.close(() => r())));
  hook.keepAliveTimeout = 60_000;

  const lanArgs = (pluginPort: number) => [
    '--lan-interface',
    HOST,
    '--lan-broadcast',
    BROADCAST,
    '--lan-port',
    String(lan.unitPort),
    '--plugin-port',
    String(pluginPort),
  ];

  // Offers by register: one sale open per register at a time, so the register id names it.
  const offers = new Waits<SeenOffer>();
  const unitIds = Array.from({ length: units }, (_, i) => `T${i + 1}`);
  const unitViews = await pool(unitIds, parallel, async (id) => {
    const port = await freeTcpPort();
    const p = start('unit-' + id, 'unit', [
      'terminal',
      '--id',
      id,
      '--server',
      serverUrl.origin,
      '--registration-code',
      await code('terminal'),
      '--port',
      String(port),
      '--host',
      HOST,
      '--data',
      path.join(tmp, id),
      ...lanArgs(lan.pluginPort),
    ]);
    const url = new URL(`http://${HOST}:${port}`);
    await p.waitHttp(`${url.origin}/api/status`);
    const v = new UnitView(id, p, url, (o, seen) => offers.hit(o.registerId, seen), fail, liveMs);
    await v.listen();
    cleanups.add(async () => v.close());
    debug(`unit ${id} up`);
    return v;
  });

  // The shop LAN's broadcast: every unit beacon to every plugin's own port (see the header).
  const pluginPorts: number[] = [];
  for (let n = 1; n <= registers; n++) pluginPorts.push(await freeUdpPort());
  const relay = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  // Bound to the loopback broadcast address itself (Linux delivers the beacons there): nothing but 127/8.
  await new Promise<void>((r) => relay.bind(lan.pluginPort, BROADCAST, () => r()));
  relay.on('message', (msg) => {
    for (const port of pluginPorts) relay.send(msg, port, HOST);
  });
  cleanups.add(() => new Promise<void>((r) => relay.close(() => r())));

  const hookPort = (hook.address() as net.AddressInfo).port;
  const regs = await pool(
    Array.from({ length: registers }, (_, i) => i + 1),
    parallel,
    async (n): Promise<Register> => {
      const id = `R${String(n).padStart(2, '0')}`;
      const unit = unitViews[(n - 1) % units];
      const unicast = { mode: 'unicast', terminal: unit.id };
      const registerLine = await PtyPair.open(tmp, `${id}reg`);
      sockets.push(registerLine['socat']!);
      cleanups.add(() => registerLine.stop());
      const displayLine = await PtyPair.open(tmp, `${id}disp`);
      sockets.push(displayLine['socat']!);
      cleanups.add(() => displayLine.stop());
      const displayFd = openSync(displayLine.far, 'r+');
      // A tty stream (libuv's non-blocking tty handle), not fs.createReadStream: a blocking fs read on a
      // pty holds one of libuv's four pool threads for good, and the fifth register's line never opens.
      const reader = new tty.ReadStream(displayFd);
      reader.on('error', () => undefined);
      reader.on('data', () => undefined);
      cleanups.add(async () => {
        reader.destroy();
      });
      const fd = openSync(registerLine.far, 'r+');
      cleanups.add(async () => closeSync(fd));
      const dir = path.join(tmp, id);
      mkdirSync(dir);
      const hookManifest = manifestCopy(dir, 'http-hook.yaml', (m) => {
        m.register = id;
        m.writeBack = {
          callback: `http://${HOST}:${hookPort}/payconnect/results/${id}`,
          secret: HOOK_SECRET,
          timeoutMs: 2000,
        };
        m.dispatch = unicast;
      });
      const displayManifest = manifestCopy(dir, 'display-led8-hisense-vc110.yaml', (m) => {
        m.register = id;
        const o = m.options as Record<string, unknown>;
        o.input = `serial:${registerLine.near}`;
        o.display = `serial:${displayLine.near}`;
        m.dispatch = unicast;
      });
      const port = await freeTcpPort();
      const name = `P${String(n).padStart(2, '0')}`;
      const plugin = start('plugin-' + name, 'plugin', [
        'plugin',
        '--manifest',
        hookManifest,
        '--also-manifest',
        displayManifest,
        '--server',
        serverUrl.origin,
        '--registration-code',
        await code('plugin'),
        '--port',
        String(port),
        '--host',
        HOST,
        '--data',
        path.join(tmp, name),
        ...lanArgs(pluginPorts[n - 1]),
      ]);
      const url = new URL(`http://${HOST}:${port}`);
      await plugin.waitHttp(`${url.origin}/api/status`);
      const r: Register = {
        id,
        plugin,
        url,
        agent: new Agent({ keepAlive: true, maxSockets: 4 }),
        fd,
        unit,
        events: new Map(),
        waiters: new Set(),
      };
      r.stream = eventStream(
        url,
        '/api/events',
        (data, stamp) => {
          let e: { kind?: string; orderId?: string };
          try {
            e = JSON.parse(data) as typeof e;
          } catch {
            return;
          }
          if (e.kind !== 'order' || !e.orderId) return;
          const list = r.events.get(e.orderId);
          if (list) list.push(stamp);
          else {
            r.events.set(e.orderId, [stamp]);
            // Orders whose sale is over still change (the receipt): keep the map small.
            if (r.events.size > 200) r.events.delete(r.events.keys().next().value!);
          }
          for (const w of [...r.waiters]) w();
        },
        (why) => fail(`plugin of ${id}: event stream dropped: ${why}`),
      );
      await r.stream.opened;
      cleanups.add(async () => {
        r.stream?.close();
        r.agent.destroy();
      });
      debug(`plugin of ${id} up`);
      return r;
    },
  );
  // Every plugin has heard its unit's beacon.
  for (const r of regs) {
    for (let i = 0; ; i++) {
      const t = await call(r.agent, r.url, 'GET', '/api/terminals');
      if ((JSON.parse(t.body) as { id: string }[]).some((u) => u.id === r.unit.id)) break;
      if (i > 400) throw new Error(`plugin of ${r.id} never heard unit ${r.unit.id}`);
      await sleep(50);
    }
  }

  // The floor, in its own process.
  const floorProc = runTs('bench/e2e/floor.ts', [], { label: 'e2e floor' });
  floorChild = floorProc;
  floorProc.send({ serverUrl: serverUrl.origin, code: await code('terminal') });
  await floorProc
    .next((m) => m.event === 'ready' || m.event === 'fatal', 120_000)
    .then((m) => {
      if (m.event !== 'ready') throw new Error(`the floor process: ${String(m.message)}`);
    });
  const setupS = (Date.now() - started0) / 1000;
  console.error(
    `shop up in ${setupS.toFixed(1)} s: server, ${registers} plugin processes (one per register), ${units} unit processes`,
  );

  /** Waits until the plugin of `r` has an event of `orderId` beyond the first `seen`, or `timeoutMs`. */
  const nextPluginEvent = (r: Register, orderId: string, seen: number, timeoutMs: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if ((r.events.get(orderId)?.length ?? 0) > seen) done();
      };
      const timer = setTimeout(() => done(), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        r.waiters.delete(check);
        resolve();
      };
      r.waiters.add(check);
      check();
    });

  /** A display sale's write-back, from the plugin's order API and event stream (see the header). */
  const displayWriteBack = async (r: Register, orderId: string) => {
    const until = Date.now() + SAMPLE_TIMEOUT_MS;
    while (Date.now() < until) {
      const seen = r.events.get(orderId)?.length ?? 0;
      const a = await call(r.agent, r.url, 'GET', `/api/orders/${encodeURIComponent(orderId)}`);
      const answered = now();
      if (a.status === 200) {
        const o = JSON.parse(a.body) as { writeBack: string; history?: { at: string; event: string }[] };
        if (o.writeBack === 'done') {
          const h = o.history?.find((x) => x.event === 'written back');
          const stamp = h ? Date.parse(h.at) : NaN;
          const ev = (r.events.get(orderId) ?? []).find((e) => e.wall >= stamp);
          return { at: ev ? ev.at : answered, stamp, attributed: !!ev };
        }
      }
      await nextPluginEvent(r, orderId, seen, 250);
    }
    return undefined;
  };

  let seq = 0;
  let writeBackNotAttributed = 0;

  /** One sale at register r; resolves with its sample or undefined (the failure noted). */
  const sale = async (r: Register, kind: 'http' | 'display'): Promise<Sample | undefined> => {
    const i = ++seq;
    const fen = 100 + (i % 9000);
    offers.forget(r.id); // a late offer of an earlier sale that timed out
    let t0: bigint;
    let t0Wall: number;
    let wait: Promise<SeenOffer | undefined>;
    let posted: Promise<Answer> | undefined;
    let hookId: string | undefined;
    if (kind === 'display') {
      writeSync(r.fd, Buffer.concat([led8Value(1, yuan(fen)), CR, led8Value(2, yuan(fen))]));
      await sleep(5);
      wait = offers.wait(r.id);
      t0 = now();
      t0Wall = Date.now();
      writeSync(r.fd, CR);
    } else {
      hookId = `HH-${r.id}-${i}`;
      wait = offers.wait(r.id);
      t0 = now();
      t0Wall = Date.now();
      posted = call(r.agent, r.url, 'POST', '/api/orders', { orderId: hookId, amount: yuan(fen) });
    }
    const offered = await wait;
    if (posted) {
      const a = await posted.catch((e: Error) => ({ status: 0, body: e.message }));
      if (a.status !== 202) fail(`${r.id} POST: HTTP ${a.status} ${a.body}`);
    }
    if (offered === undefined) {
      fail(`${r.id} ${kind} sale ${i}: no offer on unit ${r.unit.id} within ${SAMPLE_TIMEOUT_MS} ms`);
      if (kind === 'display') writeSync(r.fd, CLR);
      return undefined;
    }
    const orderId = offered.orderId;
    if (hookId && orderId !== hookId) fail(`${r.id}: offered ${orderId}, expected ${hookId}`);
    const written = kind === 'http' ? hookWriteBacks.wait(orderId) : undefined;
    const enc = encodeURIComponent(orderId);
    let claimedAt: bigint | undefined;
    let paidAt: bigint | undefined;
    try {
      const c = await call(r.unit.agent, r.unit.url, 'POST', `/api/offers/${enc}/claim`);
      claimedAt = now();
      if (c.status !== 200) fail(`${orderId}: claim HTTP ${c.status} ${c.body.slice(0, 200)}`);
      const p = await call(r.unit.agent, r.unit.url, 'POST', `/api/offers/${enc}/pay`, {
        paymentCode: successCode(),
      });
      paidAt = now();
      if (p.status !== 200) fail(`${orderId}: pay HTTP ${p.status} ${p.body.slice(0, 200)}`);
      else if ((JSON.parse(p.body) as { status?: string }).status !== 'succeeded')
        fail(`${orderId}: payment ${p.body.slice(0, 200)}`);
    } catch (e) {
      fail(`${orderId}: claim/pay: ${(e as Error).message}`);
    }
    let wb: bigint | undefined;
    let pluginStamp: number | undefined;
    if (written) {
      wb = await written;
      hookWriteBacks.forget(orderId);
    } else {
      const d = await displayWriteBack(r, orderId).catch((e: Error) => {
        fail(`${orderId}: GET order: ${e.message}`);
        return undefined;
      });
      if (d && !d.attributed) writeBackNotAttributed++;
      wb = d?.at;
      pluginStamp = d?.stamp;
    }
    const journaledAt = r.events.get(orderId)?.[0]?.at;
    r.events.delete(orderId);
    if (kind === 'display') writeSync(r.fd, CLR); // the sale is over at the register
    if (wb === undefined || claimedAt === undefined || paidAt === undefined) {
      if (wb === undefined) fail(`${orderId}: no write-back within ${SAMPLE_TIMEOUT_MS} ms`);
      return undefined;
    }
    return {
      kind,
      offerMs: elapsedMs(t0, offered.at),
      offerUnitStampMs: offered.unitStamp - t0Wall,
      writeBackMs: elapsedMs(t0, wb),
      ...(pluginStamp !== undefined && Number.isFinite(pluginStamp)
        ? { writeBackPluginStampMs: pluginStamp - t0Wall }
        : {}),
      ...(journaledAt !== undefined ? { journaledMs: elapsedMs(t0, journaledAt) } : {}),
      claimedMs: elapsedMs(t0, claimedAt),
      paidMs: elapsedMs(t0, paidAt),
      at: Date.now(),
    };
  };

  debug('warm-up');
  await Promise.all(
    regs.map(async (r) => {
      await sale(r, 'http');
      await sale(r, 'display');
    }),
  );
  debug(`warm-up failures: ${JSON.stringify(failures.slice(0, 5))}`);
  failures.length = 0;
  failureCount = 0;
  const warmupNotAttributed = {
    offers: unitViews.reduce((a, u) => a + u.notAttributed, 0),
    writeBacks: writeBackNotAttributed,
  };

  // Memory and CPU by kind of process.
  const byKind = (k: Kind) => procs.filter((p) => p.kind === k);
  interface MemorySample {
    s: number;
    server: number;
    plugins: number[];
    units: number[];
    driver: number;
  }
  const memory: MemorySample[] = [];
  /** Once a minute, what each unit says of its own memory (`process` in GET /api/status), MB. */
  const unitProcess: { s: number; units: Record<string, ProcessMemory | undefined> }[] = [];
  const sampleUnitProcess = async (s: number) => {
    const entries = await Promise.all(
      unitViews.map(async (u) => {
        const a = await call(adminAgent, u.url, 'GET', '/api/status').catch(() => undefined);
        const facts =
          a?.status === 200 ? (JSON.parse(a.body) as { process?: { memoryMB: ProcessMemory } }) : undefined;
        return [u.id, facts?.process?.memoryMB] as const;
      }),
    );
    unitProcess.push({ s: Math.round(s), units: Object.fromEntries(entries) });
  };
  const cpuNow = () => ({
    server: byKind('server').reduce((a, p) => a + (cpuOf(p.pid) ?? 0), 0),
    plugins: byKind('plugin').reduce((a, p) => a + (cpuOf(p.pid) ?? 0), 0),
    units: byKind('unit').reduce((a, p) => a + (cpuOf(p.pid) ?? 0), 0),
    driver: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    floor: cpuOf(floorProc.child.pid) ?? 0,
  });

  const samples: Sample[] = [];
  const loads: string[] = [uptime()];
  const gc = watchGc();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpu0 = cpuNow();
  const t0 = Date.now();
  const endAt = t0 + minutes * 60_000;
  const rssList = (k: Kind) => byKind(k).map((p) => rssOf(p.pid) ?? NaN);
  const mb = (b: number) => b / 2 ** 20;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const meanOf = (xs: number[]) => sum(xs) / Math.max(1, xs.length);
  const memTimer = setInterval(() => {
    const m: MemorySample = {
      s: (Date.now() - t0) / 1000,
      server: rssOf(server.pid) ?? NaN,
      plugins: rssList('plugin'),
      units: rssList('unit'),
      driver: process.memoryUsage().rss,
    };
    memory.push(m);
    if (memory.length % Math.max(1, Math.round(60 / sampleS)) === 0) {
      loads.push(uptime());
      void sampleUnitProcess(m.s);
      const s = summarize(samples.slice(-500).map((x) => x.offerMs));
      const reads = unitViews.flatMap((u) => u.reads.slice(-200));
      const listed = Math.max(0, ...unitViews.map((u) => u.reads[u.reads.length - 1]?.offers ?? 0));
      console.error(
        `${((Date.now() - t0) / 60000).toFixed(1)} min: ${samples.length} sales, offer p99 (last 500) ${s.p99.toFixed(2)} ms; unit offer list ${listed} offers, read p50 ${summarize(reads.map((x) => x.ms)).p50.toFixed(1)} ms; RSS MB: server ${mb(m.server).toFixed(0)}, plugins ${mb(sum(m.plugins)).toFixed(0)} (mean ${mb(meanOf(m.plugins)).toFixed(0)}), units ${mb(sum(m.units)).toFixed(0)} (mean ${mb(meanOf(m.units)).toFixed(0)}); ${loads[loads.length - 1]}`,
      );
    }
  }, sampleS * 1000);
  const heapTimers = heapAtMinutes.map((m) =>
    setTimeout(() => {
      for (const p of procs.filter((x) => x.heapSnapshots && x.pid !== undefined)) {
        console.error(`${m} min: heap snapshot of ${p.name} (pid ${p.pid}) into ${heapDir}`);
        process.kill(p.pid!, 'SIGUSR2');
      }
    }, m * 60_000),
  );
  cleanups.add(async () => heapTimers.forEach(clearTimeout));
  floorProc.send({ cmd: 'run', everyMs: floorEveryMs });
  const registerLoop = async (r: Register, k: number, until: () => boolean, pace: number, into: Sample[]) => {
    // Registers start spread over one interval so their sales do not all begin together.
    await sleep((k / regs.length) * pace);
    let kind: 'http' | 'display' = k % 2 ? 'display' : 'http';
    while (!until()) {
      const begun = Date.now();
      const s = await sale(r, kind);
      if (s) into.push(s);
      kind = kind === 'http' ? 'display' : 'http';
      const rest = pace - (Date.now() - begun);
      if (rest > 0) await sleep(rest);
    }
  };
  await Promise.all(regs.map((r, k) => registerLoop(r, k, () => Date.now() >= endAt, intervalMs, samples)));
  const paced = { seconds: (Date.now() - t0) / 1000 };
  const cpu1 = cpuNow();
  floorProc.send({ cmd: 'stop' });
  await floorProc.next({ event: 'stopped' }, 30_000);
  clearInterval(memTimer);
  loopDelay.disable();
  gc.stop();
  const pacedFailures = failureCount;

  // Saturation: no pause between a register's sales, for orders/s.
  const burst: Sample[] = [];
  let burstSeconds = 0;
  if (burstS > 0) {
    const b0 = Date.now();
    await Promise.all(
      regs.map((r, k) => registerLoop(r, k, () => Date.now() >= b0 + burstS * 1000, 1, burst)),
    );
    burstSeconds = (Date.now() - b0) / 1000;
  }
  const loadAtEnd = uptime();

  // What the apps say about the LAN.
  const statusOf = async (url: URL) => {
    const a = await call(adminAgent, url, 'GET', '/api/status').catch(() => undefined);
    return a?.status === 200 ? (JSON.parse(a.body) as { lan?: Record<string, unknown> }) : undefined;
  };
  const unitLan = Object.fromEntries(
    await Promise.all(unitViews.map(async (u) => [u.id, lanBrief((await statusOf(u.url))?.lan)] as const)),
  );
  const pluginLan = (await Promise.all(regs.map(async (r) => lanBrief((await statusOf(r.url))?.lan)))).reduce(
    (a, b) => {
      for (const k of Object.keys(b) as (keyof typeof b)[]) a[k] = (a[k] ?? 0) + b[k];
      return a;
    },
    {} as Record<string, number>,
  );

  const floor = floorProc.all().filter((m) => m.event === 'sample') as unknown as {
    lanMs: number;
    serverMs: number;
    totalMs: number;
  }[];
  const floorErrors = floorProc.all().filter((m) => m.event === 'error').length;

  const pick = (xs: Sample[], kind?: string) => (kind ? xs.filter((s) => s.kind === kind) : xs);
  const figs = (xs: number[]) => {
    const s = summarize(xs);
    return { n: s.n, p50: s.p50, p99: s.p99, max: s.max, mean: s.mean };
  };
  const chain = (xs: Sample[]) => ({
    captureToOfferMs: figs(xs.map((s) => s.offerMs)),
    captureToWriteBackMs: figs(xs.map((s) => s.writeBackMs)),
    byOwnStampsMs: {
      captureToOfferUnitReceivedAt: figs(xs.map((s) => s.offerUnitStampMs)),
      captureToWrittenBackPluginLog: figs(
        xs.filter((s) => s.writeBackPluginStampMs !== undefined).map((s) => s.writeBackPluginStampMs!),
      ),
    },
    stagesMs: {
      captureToJournaled: figs(xs.filter((s) => s.journaledMs !== undefined).map((s) => s.journaledMs!)),
      journaledToOffer: figs(
        xs.filter((s) => s.journaledMs !== undefined).map((s) => s.offerMs - s.journaledMs!),
      ),
      offerToClaimedAtUnit: figs(xs.map((s) => s.claimedMs - s.offerMs)),
      claimedToPaidAtUnit: figs(xs.map((s) => s.paidMs - s.claimedMs)),
      paidAtUnitToWriteBack: figs(xs.map((s) => s.writeBackMs - s.paidMs)),
    },
  });
  const floorFig = {
    rounds: floor.length,
    errors: floorErrors,
    lanRoundTripMs: figs(floor.map((f) => f.lanMs)),
    serverCallMs: figs(floor.map((f) => f.serverMs)),
    totalMs: figs(floor.map((f) => f.totalMs)),
  };
  const all = chain(samples);
  // Memory trend after the first minute (or the first fifth of a short run).
  const warm = Math.min(60, (minutes * 60) / 5);
  const mem = memory.filter((m) => m.s >= warm);
  const window = (from: number, to: number) => mem.filter((m) => m.s >= from && m.s < to);
  const lastS = mem.length ? mem[mem.length - 1].s : 0;
  const firstW = window(warm, warm + 60);
  const lastW = window(lastS - 60, lastS + 1);
  const trend = (f: (m: MemorySample) => number) => ({
    slopeMBPerMin: slope(
      mem.map((m) => m.s / 60),
      mem.map((m) => mb(f(m))),
    ),
    firstMinuteMeanMB: mb(meanOf(firstW.map(f))),
    lastMinuteMeanMB: mb(meanOf(lastW.map(f))),
    minMB: mb(Math.min(...mem.map(f))),
    maxMB: mb(Math.max(...mem.map(f))),
  });
  const kindTrend = (f: (m: MemorySample) => number[]) => ({
    processes: mem.length ? f(mem[mem.length - 1]).length : 0,
    sum: trend((m) => sum(f(m))),
    meanPerProcess: trend((m) => meanOf(f(m))),
    largestProcessAtEndMB: mem.length ? mb(Math.max(...f(mem[mem.length - 1]))) : NaN,
  });
  const offerReads = unitViews.flatMap((u) => u.reads);
  const lastMinuteReads = offerReads.filter((x) => x.at >= Date.now() - 60_000);
  const cpuSeconds = Object.fromEntries(
    (Object.keys(cpu0) as (keyof typeof cpu0)[]).map((k) => [k, cpu1[k] - cpu0[k]]),
  );
  const result = {
    command: commandLine(),
    at: new Date().toISOString(),
    node: process.version,
    layout: 'processes: server, one plugin per register and each unit started from dist/ (bin/payconnect.js)',
    load: { atStart: loadAtStart, duringEachMinute: loads, atEnd: loadAtEnd },
    setup: {
      liveMs,
      registers,
      pluginsOnePerRegister: registers,
      units,
      intervalMs,
      setupSeconds: setupS,
      machineCpus: cpus().length,
    },
    paced: {
      seconds: paced.seconds,
      sales: samples.length,
      failures: pacedFailures,
      ordersPerSecond: samples.length / paced.seconds,
      all,
      http: chain(pick(samples, 'http')),
      display: chain(pick(samples, 'display')),
    },
    burst: {
      seconds: burstSeconds,
      sales: burst.length,
      failures: failureCount - pacedFailures,
      ordersPerSecond: burstSeconds ? burst.length / burstSeconds : 0,
      ...chain(burst),
    },
    floor: floorFig,
    ratios: {
      writeBackToFloor: {
        p50: all.captureToWriteBackMs.p50 / floorFig.totalMs.p50,
        p99: all.captureToWriteBackMs.p99 / floorFig.totalMs.p99,
      },
      offerToLanRoundTrip: {
        p50: all.captureToOfferMs.p50 / floorFig.lanRoundTripMs.p50,
        p99: all.captureToOfferMs.p99 / floorFig.lanRoundTripMs.p99,
      },
    },
    goals: {
      captureToOfferP99Under10Ms: all.captureToOfferMs.p99 < 10,
      chainUnder2xFloorP50: all.captureToWriteBackMs.p50 < 2 * floorFig.totalMs.p50,
      chainUnder2xFloorP99: all.captureToWriteBackMs.p99 < 2 * floorFig.totalMs.p99,
    },
    measurement: {
      note: 'offers are dated by the unit event stream (see the header); reads of /api/offers follow each event',
      unitEvents: Object.fromEntries(unitViews.map((u) => [u.id, u.eventCount])),
      offersNotAttributed: unitViews.reduce((a, u) => a + u.notAttributed, 0) - warmupNotAttributed.offers,
      writeBacksNotAttributed: writeBackNotAttributed - warmupNotAttributed.writeBacks,
      offersReadMs: figs(offerReads.map((x) => x.ms)),
      offersReadLastMinuteMs: figs(lastMinuteReads.map((x) => x.ms)),
      offersListedAtEnd: Object.fromEntries(
        unitViews.map((u) => [u.id, u.reads.length ? u.reads[u.reads.length - 1].offers : 0]),
      ),
      offersReadBytesAtEnd: Math.max(
        0,
        ...unitViews.map((u) => (u.reads.length ? u.reads[u.reads.length - 1].bytes : 0)),
      ),
      offersReads: offerReads.length,
    },
    memory: {
      note: 'VmRSS from /proc/<pid>/status of each process; sum and mean per process by kind',
      sampleSeconds: sampleS,
      fromSecond: warm,
      samples: mem.length,
      plugins: kindTrend((m) => m.plugins),
      units: kindTrend((m) => m.units),
      server: kindTrend((m) => [m.server]),
      driver: trend((m) => m.driver),
      series: memory.map((m) => ({
        s: Math.round(m.s),
        serverMB: +mb(m.server).toFixed(1),
        pluginsMB: +mb(sum(m.plugins)).toFixed(1),
        unitsMB: +mb(sum(m.units)).toFixed(1),
        driverMB: +mb(m.driver).toFixed(1),
      })),
    },
    unitProcess: {
      note: "each unit's own account of its memory once a minute (GET /api/status `process.memoryMB`): live JS objects (heapUsed), what V8 holds for them (heapTotal), memory outside the heap (external), RSS",
      series: unitProcess,
    },
    cpuSecondsPaced: cpuSeconds,
    driver: {
      note: 'this process: the registers, the hook host, the beacon relay, the clerks, the event streams',
      gcPauses: gc.gc.count,
      gcMsPerSecond: gc.gc.ms / paced.seconds,
      eventLoopDelayMs: {
        p50: loopDelay.percentile(50) / 1e6,
        p99: loopDelay.percentile(99) / 1e6,
        max: loopDelay.max / 1e6,
      },
    },
    lan: { units: unitLan, pluginsSummed: pluginLan },
    processDeaths: deaths,
    failures,
  };
  const { series, ...memShort } = result.memory;
  void series;
  console.log(JSON.stringify({ ...result, memory: memShort }, null, 2));
  const name = process.env.BENCH_E2E_NAME ?? `e2e-${minutes}min`;
  await writeJson(path.join(REPO_ROOT, 'bench', 'e2e', 'results', `${name}.json`), result);
  adminAgent.destroy();
  await shutdown();
  process.exit(0);
}

main().catch(async (e) => {
  // Once stopping, a register's line or an app gone under a sale is expected: not an error to show.
  if (!ending) console.error(e);
  await shutdown();
  process.exit(1);
});
