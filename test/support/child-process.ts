/**
 * payconnect's own processes in tests (`node bin/payconnect.js …`, the built dist/): start one, wait until
 * it answers over HTTP, stop it gracefully or kill -9 it, and make sure none is left behind
 * (`killAllChildren` in a spec's afterAll). Also a free TCP port to give one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'payconnect.js');

const children = new Set<ChildProc>();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A port to give a process (or a test's own server) to listen on: below Linux's ephemeral range
 * (32768–60999 by default), checked free by binding it, and never handed out twice by this process. A port
 * the kernel hands out for binding to 0 is free only at that moment: it comes from the range that outgoing
 * connections take their local ports from, and with many processes connecting (bench/e2e's 56, the chaos
 * harness) one of them could take it before the process bound it (EADDRINUSE). Jest runs test files in
 * several processes at once: each draws from its own ports (its worker id picks them), so two never meet.
 */
export async function freePort(kind: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  return (await freePorts(kind, 1))[0];
}

export const freeTcpPort = (): Promise<number> => freePort('tcp');
export const freeUdpPort = (): Promise<number> => freePort('udp');

/** Two free UDP ports N and N+1 (a LAN test's units' shared port and its register's), as freePort. */
export async function freeUdpPortPair(): Promise<[number, number]> {
  const [a, b] = await freePorts('udp', 2);
  return [a, b];
}

const handedOut = new Set<number>();
/** This process's ports: 20000 + 32k + 2w and the one after it, for Jest worker w (mod 16). */
const WORKER_SLOT = 2 * (Number(process.env.JEST_WORKER_ID ?? 0) % 16);

async function freePorts(kind: 'tcp' | 'udp', count: 1 | 2): Promise<number[]> {
  for (let tries = 0; tries < 300; tries++) {
    const first = 20_000 + 32 * Math.floor(Math.random() * 375) + WORKER_SLOT;
    const ports = count === 1 ? [first] : [first, first + 1];
    if (ports.some((p) => handedOut.has(p))) continue;
    let free = true;
    for (const p of ports) if (!(await bindable(kind, p))) free = false;
    if (free) {
      for (const p of ports) handedOut.add(p);
      return ports;
    }
  }
  throw new Error(`no ${count} free ${kind} port(s) found in 20000–31999`);
}

/** Whether `port` can be bound now: TCP on 127.0.0.1, UDP on every address (as the LAN sockets bind). */
function bindable(kind: 'tcp' | 'udp', port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    if (kind === 'tcp') {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
      return;
    }
    const s = createSocket({ type: 'udp4', reuseAddr: false });
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind({ port, address: '0.0.0.0', exclusive: true }, () => s.close(() => resolve(true)));
  });
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
