/**
 * The payment server as a real child process (`node bin/payconnect.js server …`, the built dist/): start
 * it on a free port, wait until /healthz answers, stop it gracefully or kill -9 it. Every process started
 * here is remembered so a spec's afterAll can make sure none is left behind (`killAllServers`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(REPO_ROOT, 'bin', 'payconnect.js');

const live = new Set<ServerProcess>();

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface ServerOptions {
  port: number;
  /** `sqlite:PATH` or a postgres URL. */
  db: string;
  adminToken: string;
  simSpeed: number;
}

export class ServerProcess {
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private output = '';
  private exitedFlag = false;

  private constructor(
    readonly child: ChildProcess,
    port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitedFlag = true;
        live.delete(this);
        resolve({ code, signal });
      });
    });
  }

  static async start(opts: ServerOptions, readyTimeoutMs = 15_000): Promise<ServerProcess> {
    const child = spawn(process.execPath, [BIN, 'server', '--port', String(opts.port), '--db', opts.db], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PAYCONNECT_ADMIN_TOKEN: opts.adminToken,
        PAYCONNECT_SIM_SPEED: String(opts.simSpeed),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(child, opts.port);
    live.add(server);
    try {
      await server.waitHealthy(readyTimeoutMs);
    } catch (e) {
      await server.kill9();
      throw e;
    }
    return server;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return !this.exitedFlag;
  }

  /** What the process printed (stdout and stderr), for failure messages. */
  get log(): string {
    return this.output;
  }

  /** Polls GET /healthz until it answers 200. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.exitedFlag) throw new Error(`the server exited before it was ready:\n${this.output}`);
      try {
        const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the server did not answer /healthz within ${timeoutMs} ms:\n${this.output}`);
  }

  /** kill -9: no chance to clean up, like a crash or a power cut. */
  async kill9(): Promise<void> {
    if (!this.exitedFlag) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** A graceful stop (SIGTERM); kill -9 after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitedFlag) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Kills every server process still running (afterAll) and waits until each has exited. */
export async function killAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.kill9()));
}

/** True when a process with this pid still exists. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
