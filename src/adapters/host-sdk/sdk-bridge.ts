/**
 * Calls a vendor's SDK library through the sdk bridge (native/bridge/sdk_bridge.c): a small program of
 * the library's own width (a 32-bit DLL cannot be loaded by a 64-bit Node) that loads it and answers
 * bridge-protocol.ts lines. The adapter listens on 127.0.0.1, port chosen by the system, and starts the
 * bridge with that address and a fresh token in its environment; the first connection presenting the
 * token is the bridge, any other is closed. No stdin/stdout: see bridge-protocol.ts.
 *
 * A bridge that exits, or whose call does not return within callTimeoutMs (it is then killed: a hung SDK
 * call cannot be interrupted any other way), fails the calls it had; the next call starts a new bridge,
 * counted in `bridgeRestarts`. stop() closes the connection (the bridge exits when it closes) and kills it.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ManifestError, TransportError } from '../../protocol/errors';
import {
  AnswerLines,
  BRIDGE_NAME,
  BRIDGE_VERSION,
  BridgeAnswer,
  argTokens,
  paramCodes,
  readAnswer,
  readOutTokens,
} from './bridge-protocol';
import { CallQueue, SdkAnswer, SdkArg, SdkCaller } from './sdk-caller';
import { SdkFunction } from './signature';

/** How long a bridge may take to start and connect (Wine can take seconds to start a program). */
export const BRIDGE_START_MS = 30_000;

/** How the bridge program is started and how it sees a path: directly, or e.g. under Wine in tests. */
export interface BridgeLauncher {
  spawn(program: string, env: NodeJS.ProcessEnv): ChildProcess;
  /** The library path as the bridge opens it (a Windows path under Wine). */
  libraryPath(p: string): string;
}

export const directLauncher: BridgeLauncher = {
  spawn: (program, env) => spawn(program, [], { env, stdio: 'ignore', windowsHide: true }),
  libraryPath: (p) => p,
};

/** Where the bridge of a width is in this package: native/build/ as built by `make -C native bridge`. */
export function defaultBridgeProgram(bridge: 'x86' | 'x64'): string {
  const root = path.resolve(__dirname, '..', '..', '..', 'native', 'build');
  if (process.platform === 'win32') return path.join(root, 'windows', `sdk-bridge-${bridge}.exe`);
  return path.join(root, 'linux-x64', 'sdk-bridge');
}

export interface BridgeConfig {
  program: string;
  library: string;
  functions: { field: string; fn: SdkFunction }[];
  convention: 'cdecl' | 'stdcall';
  callTimeoutMs: number;
  launcher?: BridgeLauncher;
  onError?: (e: Error) => void;
  startTimeoutMs?: number;
}

interface Session {
  child: ChildProcess;
  socket: net.Socket;
  server: net.Server;
  pending: Map<number, (a: BridgeAnswer | Error) => void>;
  dead: boolean;
}

export class BridgeSdkCaller implements SdkCaller {
  private session?: Session;
  private nextId = 1;
  private opened = false;
  private opening?: Promise<void>;
  private readonly queue: CallQueue;
  private readonly counts = { bridgeStarts: 0, bridgeRestarts: 0, bridgeDeaths: 0 };
  private readonly index = new Map<string, number>();

  constructor(private readonly config: BridgeConfig) {
    this.queue = new CallQueue(config.library, config.callTimeoutMs);
    config.functions.forEach(({ fn }, i) => this.index.set(fn.name, i));
  }

  /** Starts the bridge and loads the library, unless a live bridge has it; concurrent calls share one start. */
  open(): Promise<void> {
    if (this.session && !this.session.dead) return Promise.resolve();
    this.opening ??= this.start().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async start(): Promise<void> {
    if (!existsSync(this.config.program)) {
      throw new ManifestError(
        'host_sdk.no_bridge',
        `options.bridgeProgram: the sdk bridge ${this.config.program} does not exist; install it with the plugin ` +
          '(make -C native bridge builds it) or correct the path',
        { subject: 'options.bridgeProgram' },
      );
    }
    const session = await this.startBridge();
    try {
      await this.load(session);
    } catch (e) {
      this.kill(session);
      throw e;
    }
    if (this.opened) this.counts.bridgeRestarts++;
    this.opened = true;
    this.session = session;
  }

  async call(fn: SdkFunction, args: Record<string, SdkArg>): Promise<SdkAnswer> {
    const index = this.index.get(fn.name);
    if (index === undefined)
      throw new TransportError('host_sdk.not_open', `${fn.name} was not declared to the bridge`);
    const tokens = argTokens(fn, args);
    // A dead bridge is replaced before the call queues (starting one under Wine takes seconds, which
    // callTimeoutMs is not for); one that dies while the call waits fails it, and the next call restarts it.
    await this.open();
    let used: Session | undefined;
    try {
      return await this.queue.run(fn.name, async () => {
        const session = this.session;
        if (!session || session.dead) {
          throw new TransportError(
            'host_sdk.bridge_died',
            `the sdk bridge for ${this.config.library} is not running`,
            { subject: this.config.library },
          );
        }
        used = session;
        const a = await this.request(session, { op: 'call', fn: index, args: tokens });
        if (!a.ok) {
          throw new TransportError(
            `host_sdk.bridge_${a.code}`,
            `${fn.name} through the sdk bridge: ${a.message}`,
            {
              subject: this.config.library,
            },
          );
        }
        if (a.ret === undefined || a.out === undefined)
          throw this.broken(session, 'a call answer without ret and out');
        let out: Record<string, Buffer | bigint>;
        try {
          out = readOutTokens(fn, a.out);
        } catch (e) {
          throw this.broken(session, (e as Error).message);
        }
        return { ret: a.ret, out };
      });
    } catch (e) {
      if (used && e instanceof TransportError && e.code === 'host_sdk.call_timeout') {
        // A call stuck in the SDK: only killing the bridge frees it. The next call starts a new one.
        this.config.onError?.(
          new TransportError(
            'host_sdk.bridge_killed',
            `${fn.name} in ${this.config.library} did not return within ${this.config.callTimeoutMs} ms; the sdk bridge is restarted`,
            { subject: this.config.library },
          ),
        );
        this.kill(used);
      }
      throw e;
    }
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) {
      s.socket.end();
      await new Promise<void>((resolve) => {
        if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
        const t = setTimeout(() => {
          s.child.kill('SIGKILL');
          resolve();
        }, 2000);
        s.child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
      this.kill(s);
    }
  }

  stats(): Record<string, number | string> {
    const pid = this.session && !this.session.dead ? this.session.child.pid : undefined;
    return { ...this.counts, callTimeouts: this.queue.timeouts, ...(pid ? { bridgePid: pid } : {}) };
  }

  private async startBridge(): Promise<Session> {
    const token = randomBytes(16).toString('hex');
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    const launcher = this.config.launcher ?? directLauncher;
    let child: ChildProcess;
    const fail = (why: string, cause?: unknown) => {
      server.close();
      return new TransportError(
        'host_sdk.bridge_failed',
        `the sdk bridge ${this.config.program} ${why}; check it is the build for options.bridge and can run on this PC`,
        { subject: 'options.bridgeProgram', cause },
      );
    };
    try {
      child = launcher.spawn(this.config.program, {
        ...process.env,
        PAYCONNECT_BRIDGE_ADDRESS: `127.0.0.1:${port}`,
        PAYCONNECT_BRIDGE_TOKEN: token,
      });
    } catch (e) {
      throw fail(`could not be started (${(e as Error).message})`, e);
    }
    this.counts.bridgeStarts++;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(fail(`did not connect within ${this.config.startTimeoutMs ?? BRIDGE_START_MS} ms`));
      }, this.config.startTimeoutMs ?? BRIDGE_START_MS);
      const onExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(fail(`exited (${code ?? signal}) before it connected`));
      };
      child.once('exit', onExit);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(fail(`could not be started (${e.message})`, e));
      });
      server.on('connection', (s) => {
        const lines = new AnswerLines(4096);
        s.on('error', () => undefined);
        const onData = (chunk: Buffer) => {
          const [hello] = lines.push(chunk);
          if (hello === undefined && !lines.overflow) return;
          s.off('data', onData);
          let ok = false;
          try {
            const h = JSON.parse(hello ?? '') as Record<string, unknown>;
            ok = h.bridge === BRIDGE_NAME && h.version === BRIDGE_VERSION && h.token === token;
          } catch {
            ok = false;
          }
          if (!ok) return void s.destroy(); // not our bridge: another local program
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(s);
        };
        s.on('data', onData);
      });
    });
    server.close(); // no more connections: the bridge has one
    socket.setNoDelay(true);
    const session: Session = { child, socket, server, pending: new Map(), dead: false };
    const lines = new AnswerLines();
    socket.on('data', (chunk: Buffer) => {
      for (const line of lines.push(chunk)) {
        let a: BridgeAnswer;
        try {
          a = readAnswer(line);
        } catch (e) {
          this.broken(session, (e as Error).message);
          return;
        }
        const waiter = session.pending.get(a.id);
        session.pending.delete(a.id);
        waiter?.(a);
      }
      if (lines.overflow) this.broken(session, 'an answer line longer than 1 MiB');
    });
    const died = () => {
      if (session.dead) return;
      session.dead = true;
      this.counts.bridgeDeaths++;
      const error = new TransportError(
        'host_sdk.bridge_died',
        `the sdk bridge for ${this.config.library} exited (${child.exitCode ?? child.signalCode ?? 'connection closed'}); it is started again at the next call`,
        { subject: this.config.library },
      );
      for (const w of session.pending.values()) w(error);
      session.pending.clear();
      socket.destroy();
    };
    socket.on('close', died);
    child.on('exit', died);
    return session;
  }

  private async load(session: Session): Promise<void> {
    const lib = await this.request(session, {
      op: 'load',
      library: (this.config.launcher ?? directLauncher).libraryPath(this.config.library),
      convention: this.config.convention,
    });
    if (!lib.ok) {
      throw new ManifestError(
        `host_sdk.${lib.code}`,
        `options.library: ${this.config.library} cannot be loaded by the ${this.config.program} bridge: ${lib.message}`,
        { subject: 'options.library' },
      );
    }
    for (const [i, { field, fn }] of this.config.functions.entries()) {
      const r = await this.request(session, { op: 'resolve', fn: i, name: fn.name, params: paramCodes(fn) });
      if (!r.ok) {
        throw new ManifestError(`host_sdk.${r.code}`, `${field}: ${this.config.library}: ${r.message}`, {
          subject: field,
        });
      }
    }
  }

  private request(session: Session, body: Record<string, unknown>): Promise<BridgeAnswer> {
    if (session.dead)
      return Promise.reject(new TransportError('host_sdk.bridge_died', 'the sdk bridge is not running'));
    const id = this.nextId++;
    return new Promise<BridgeAnswer>((resolve, reject) => {
      session.pending.set(id, (a) => (a instanceof Error ? reject(a) : resolve(a)));
      session.socket.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  /** A bridge answering what cannot be: it is not trusted with another call. */
  private broken(session: Session, why: string): TransportError {
    const e = new TransportError(
      'host_sdk.bridge_protocol',
      `the sdk bridge answered badly: ${why}; it is restarted`,
      {
        subject: this.config.program,
      },
    );
    this.config.onError?.(e);
    for (const w of session.pending.values()) w(e);
    session.pending.clear();
    this.kill(session);
    return e;
  }

  private kill(session: Session): void {
    session.socket.destroy();
    session.server.close();
    if (session.child.exitCode === null && session.child.signalCode === null) session.child.kill('SIGKILL');
  }
}
