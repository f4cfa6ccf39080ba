/**
 * What every benchmark here shares: percentile summaries, the loopback check for where a benchmark may
 * send traffic, asking a JSON-lines child process and stopping it, the optional CPU profile a child
 * writes for a person to open in Chrome DevTools, a process's CPU and GC counters, command-line options,
 * cleanup on every exit path, writing the results file with the command that made it, and a JSON request
 * to an app's HTTP API.
 */
import fs from 'node:fs';
import { request, type Agent } from 'node:http';
import { Session } from 'node:inspector';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { REPO_ROOT, type JsonLineChild, type JsonMessage } from '../../test/support/node-runner';

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentiles, in the samples' own unit. */
export function summarize(samples: number[]): Summary {
  const s = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, p50: NaN, p99: NaN, mean: NaN, min: NaN, max: NaN };
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  return {
    n: s.length,
    p50: rank(50),
    p99: rank(99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    min: s[0],
    max: s[s.length - 1],
  };
}

/** Addresses a benchmark may send to: loopback, or (checked by the caller) its own namespaces' hosts. */
export function isLoopback(address: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/** Sends a command to a child and waits for its answer `event`; an `error` or `fatal` answer throws. */
export async function ask(
  child: JsonLineChild,
  cmd: JsonMessage,
  event: string,
  timeoutMs: number,
): Promise<JsonMessage> {
  child.send(cmd);
  const msg = await child.next(
    (m) => m.event === event || m.event === 'error' || m.event === 'fatal',
    timeoutMs,
  );
  if (msg.event !== event) throw new Error(`${child.label}: ${String(msg.message)}`);
  return msg;
}

/** Closes the child's stdin (it then cleans up and exits by itself); kills it if still there after `graceMs`. */
export async function stopChild(child: JsonLineChild, graceMs: number): Promise<void> {
  child.child.stdin?.end();
  let timer: NodeJS.Timeout | undefined;
  const exited = await Promise.race([
    child.done.then(() => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
  ]);
  clearTimeout(timer);
  if (!exited) await child.kill();
}

/**
 * Starts a CPU profile when the environment variable `envVar` names a folder; the returned function
 * writes `<name>-<pid>.cpuprofile` there. Without the variable it does nothing.
 */
export function startCpuProfile(envVar: string, name: string): () => Promise<void> {
  const dir = process.env[envVar];
  if (!dir) return async () => undefined;
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 100 });
  session.post('Profiler.start');
  return () =>
    new Promise<void>((resolve) =>
      session.post('Profiler.stop', (err, result) => {
        if (!err) {
          fs.mkdirSync(dir, { recursive: true });
          fs.writeFileSync(
            path.join(dir, `${name}-${process.pid}.cpuprofile`),
            JSON.stringify(result.profile),
          );
        }
        resolve();
      }),
    );
}

/** CPU time of the whole process (all threads: JIT, GC helpers and the thread pool included), µs. */
export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Garbage-collection pauses of this process from now on (`gc`: a live count and total ms) until stop(). */
export function watchGc(): { gc: { count: number; ms: number }; stop(): void } {
  const gc = { count: 0, ms: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.ms += e.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return { gc, stop: () => observer.disconnect() };
}

/** `--name <positive number>` from the command line, or `fallback`. */
export function numberOption(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

/** `--name <value>` from the command line, or undefined when the option is not given. */
export function textOption(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : (process.argv[i + 1] ?? '');
}

/** `--name a,b,c` from the command line as a list, or `fallback`. */
export function listOption(name: string, fallback: string[]): string[] {
  const v = textOption(name);
  return v === undefined ? fallback : v.split(',');
}

/** What to undo on every exit path (children, network namespaces, scratch files, schemas). */
export class Cleanups {
  private readonly list: Array<() => Promise<void>> = [];
  private running: Promise<void> = Promise.resolve();

  add(fn: () => Promise<void>): void {
    this.list.push(fn);
  }

  /** Runs (newest first) every cleanup added so far; concurrent calls queue behind each other. */
  runAll(): Promise<void> {
    this.running = this.running.then(async () => {
      while (this.list.length) {
        try {
          await this.list.pop()!();
        } catch (e) {
          console.error(`cleanup failed: ${(e as Error).message}`);
        }
      }
    });
    return this.running;
  }
}

/** The command that is running, as a person would type it from the repository's root. */
export function commandLine(): string {
  const script = path.relative(REPO_ROOT, process.argv[1]) || process.argv[1];
  const env = process.env.SWC_NODE_PROJECT ? `SWC_NODE_PROJECT=${process.env.SWC_NODE_PROJECT} ` : '';
  return `${env}node ${[...process.execArgv, script, ...process.argv.slice(2)].join(' ')}`;
}

/** Writes a results file, formatted as the repo's prettier would, so `prettier --check .` stays clean. */
export async function writeJson(file: string, data: unknown): Promise<void> {
  let text = JSON.stringify(data, null, 2) + '\n';
  try {
    const prettier = require('prettier') as typeof import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    text = await prettier.format(text, { ...config, parser: 'json', filepath: file });
  } catch {
    // prettier missing: plain JSON is still JSON
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/**
 * On SIGINT, SIGTERM or SIGHUP, or once `limitMs` have passed, runs `stop` (saying `what` it removes) and
 * exits: 130, 143 or 129 for a signal, 2 at the time limit. A benchmark never outlives its limit.
 */
export function stopOnSignalsOrAfter(limitMs: number, stop: () => Promise<void>, what: string): void {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping, removing ${what}…`);
      void stop().finally(() => process.exit(code));
    });
  }
  setTimeout(() => {
    console.error(`time limit of ${limitMs / 1000} s reached: stopping`);
    void stop().finally(() => process.exit(2));
  }, limitMs).unref();
}

/**
 * One JSON request over a kept-alive `agent` (the benches' clients of the apps' HTTP APIs): resolves with
 * the status and the body as text, whatever the status. An API that does not answer within `timeoutMs`
 * fails the request (and so the run, which then cleans up) instead of stalling it.
 */
export function jsonRequest(
  agent: Agent,
  base: URL,
  method: string,
  urlPath: string,
  o: { body?: unknown; headers?: Record<string, string>; timeoutMs: number },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path: urlPath,
        headers: {
          ...o.headers,
          ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.setTimeout(o.timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer`)));
    req.end(data);
  });
}
