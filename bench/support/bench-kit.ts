/**
 * What every benchmark here shares: percentile summaries, the loopback check for where a benchmark may
 * send traffic, asking a JSON-lines child process and stopping it, and the optional CPU profile a child
 * writes for a person to open in Chrome DevTools.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import type { JsonLineChild, JsonMessage } from '../../test/support/node-runner';

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
