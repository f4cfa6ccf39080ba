/**
 * The payment server as a real child process (`node bin/payconnect.js server …`, the built dist/): start
 * it on a free port, wait until /healthz answers, stop it gracefully or kill -9 it. Built on the shared
 * ChildProc (test/support/child-process.ts), which remembers every process so a spec's afterAll can make
 * sure none is left behind (`killAllServers`).
 */
import { ChildProc, killAllChildren } from '../../support/child-process';

export { freePort } from '../../support/child-process';

export interface ServerOptions {
  port: number;
  /** `sqlite:PATH` or a postgres URL. */
  db: string;
  adminToken: string;
  simSpeed: number;
  /** More environment (e.g. PAYCONNECT_WALLET_SPEED). */
  env?: Record<string, string>;
}

export class ServerProcess {
  readonly url: string;

  private constructor(
    readonly proc: ChildProc,
    port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(opts: ServerOptions, readyTimeoutMs = 15_000): Promise<ServerProcess> {
    const proc = ChildProc.spawn('server', ['server', '--port', String(opts.port), '--db', opts.db], {
      PAYCONNECT_ADMIN_TOKEN: opts.adminToken,
      PAYCONNECT_SIM_SPEED: String(opts.simSpeed),
      ...(opts.env ?? {}),
    });
    const server = new ServerProcess(proc, opts.port);
    try {
      await server.waitHealthy(readyTimeoutMs);
    } catch (e) {
      await proc.kill9();
      throw e;
    }
    return server;
  }

  get pid(): number {
    return this.proc.child.pid!;
  }

  get alive(): boolean {
    return this.proc.alive;
  }

  get exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.proc.exited;
  }

  /** What the process printed (stdout and stderr), for failure messages. */
  get log(): string {
    return this.proc.output;
  }

  /** Polls GET /healthz until it answers 200. */
  waitHealthy(timeoutMs: number): Promise<void> {
    return this.proc.waitHttp(`${this.url}/healthz`, timeoutMs);
  }

  /** kill -9: no chance to clean up, like a crash or a power cut. */
  kill9(): Promise<void> {
    return this.proc.kill9();
  }

  /** A graceful stop (SIGTERM); kill -9 after `graceMs`. */
  stop(graceMs = 5000): Promise<void> {
    return this.proc.stop(graceMs);
  }
}

/** Kills every process still running (afterAll) and waits until each has exited. */
export const killAllServers = killAllChildren;

/** True when a process with this pid still exists. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
