/**
 * payconnect's own processes in tests (`node bin/payconnect.js …`, the built dist/): start one, wait until
 * it answers over HTTP, stop it gracefully or kill -9 it, and make sure none is left behind
 * (`killAllChildren` in a spec's afterAll). Also a free TCP port to give one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'payconnect.js');

const children = new Set<ChildProc>();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freeTcpPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export class ChildProc {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private out = '';
  private done = false;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    children.add(this);
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.done = true;
        children.delete(this);
        resolve({ code, signal });
      });
    });
  }

  static spawn(name: string, args: string[], env: Record<string, string> = {}): ChildProc {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ChildProc(name, child);
  }

  get alive(): boolean {
    return !this.done;
  }

  get output(): string {
    return this.out;
  }

  /** kill -9: no chance to clean up, like a crash or a pulled battery. */
  async kill9(): Promise<void> {
    if (!this.done) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then kill -9 after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.done) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Waits for the process to exit by itself; kills it and throws with its output after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const exit = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (exit === 'timeout') {
      await this.kill9();
      throw new Error(`${this.name} did not exit within ${timeoutMs} ms:\n${this.out}`);
    }
    return exit;
  }

  /** Polls `url` until it answers 200; fails at once if the process exits first. */
  async waitHttp(url: string, timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.done) throw new Error(`${this.name} exited before it was ready:\n${this.out}`);
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`${this.name} did not answer ${url} within ${timeoutMs} ms:\n${this.out}`);
  }
}

/** Kills (-9) every child process a spec started and waits until each has exited. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => c.kill9()));
}
