/**
 * The native-hook adapter: serves the payconnect hook library (native/include/payconnect.h) that register
 * software calls, on a loopback TCP port, one JSON object per line each way (line-protocol.ts).
 *
 * - Every connection first presents the token of `<stateDir>/native-hook.token` (hook-token.ts), written
 *   by start() when missing. A wrong or missing token is answered `bad_token`, counted, reported through
 *   `env.onError` (a register pointed at the wrong file is a wiring problem to fix) and the connection is
 *   closed.
 * - `submit` reads the order exactly as the HTTP hook reads its body (http-hook/parse.ts) and answers OK
 *   only once `ctx.onOrder` resolved, i.e. the plugin journaled it. A bad order is answered `rejected`
 *   with every bad field named, and reported to `ctx.onReject`.
 * - `writeBack(result)` queues the result durably (result-store.ts) and wakes the library's waits for
 *   that order; it resolves once the result is on disk. `wait` answers the oldest result of the order the
 *   library has not acknowledged, at once when there is one, else when one is written back, else
 *   `timeout` after `timeoutMs`; `ack` marks it delivered, durably, so it is never answered again. So the
 *   library gets each final state of an order exactly once, across restarts of the plugin and the
 *   register, except a result whose ack was lost with the register's process, which comes once more with
 *   the same delivery id (payconnect.h explains this to register vendors).
 * - `cancel` asks the plugin to withdraw the order (`ctx.onWithdraw`) and answers its outcome.
 * - A line that is not JSON, an unknown op or a bad field is answered `bad_request`, counted and reported
 *   to `ctx.onReject`; the connection stays open. A line longer than `maxLineBytes` is answered once and its
 *   connection closed. Nothing a connection sends affects another connection or any order but its own.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { Clock, TimerHandle } from '../../protocol/clock';
import { ManifestError, PayconnectError, ProtocolError, TransportError } from '../../protocol/errors';
import type { AdapterEnv } from '../adapter-env';
import { holdPort, portHolder } from '../held-ports';
import { AdapterContext, CapturedOrder, HostAdapter, OrderResult } from '../host-adapter';
import type { PlannedAdapterManifest } from '../manifest';
import { resultDocument } from '../result-document';
import { parseOrderBody } from '../http-hook/parse';
import { ensureHookToken, tokenMatches } from './hook-token';
import {
  HookRequest,
  LineProblem,
  LineSplitter,
  PROTOCOL_VERSION,
  isProblem,
  okLine,
  problem,
  problemLine,
  readRequest,
} from './line-protocol';
import type { NativeHookOptions, NativeHookParseRules, NativeHookWriteBack } from './native-hook.options';
import { ResultStore } from './result-store';

export type NativeHookManifest = Omit<
  PlannedAdapterManifest,
  'adapter' | 'options' | 'parse' | 'writeBack'
> & {
  adapter: 'native-hook';
  options: NativeHookOptions;
  parse: NativeHookParseRules;
  writeBack: NativeHookWriteBack;
};

export interface NativeHookConfig extends NativeHookOptions {
  registerId: string;
  currency: string;
  /** The plugin's data folder: the token file and the results folder live here. */
  stateDir: string;
}

export interface NativeHookStats {
  /** Connections accepted, and open now. */
  connections: number;
  open: number;
  orders: number;
  /** Orders refused (bad amount, currency, field). */
  rejected: number;
  /** Connections refused for a wrong or missing token. */
  badTokens: number;
  /** Lines that were not a request: not JSON, unknown op, bad field, too long. */
  badLines: number;
  cancels: number;
  /** Results acknowledged by the library, and queued but not yet acknowledged. */
  resultsDelivered: number;
  resultsWaiting: number;
}

/** Who uses a listen address that is taken: this plugin's adapter that holds it, or another program. */
function inUse(listen: { host: string; port: number }): string {
  const holder = portHolder({ tcp: listen });
  return holder
    ? `this plugin's ${holder} uses this port`
    : 'another program (or another plugin) uses this port';
}

/** How long a connection may stay silent before it presents its token. */
const HELLO_TIMEOUT_MS = 10_000;
/** How long a connection being closed may take to close its side before it is cut off. */
const CLOSE_GRACE_MS = 1000;
/** A connection silent this long is closed (longer than the longest wait a library may ask for). */
const IDLE_TIMEOUT_MS = 11 * 60_000;

export class NativeHookAdapter implements HostAdapter {
  readonly kind = 'native-hook';
  private ctx?: AdapterContext;
  private server?: net.Server;
  /** Forgets the listen address in held-ports.ts, once the server is closed. */
  private releaseListen?: () => void;
  private token?: string;
  private tokenFile?: string;
  private readonly sockets = new Set<net.Socket>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly store: ResultStore;
  private readonly counts = {
    connections: 0,
    orders: 0,
    rejected: 0,
    badTokens: 0,
    badLines: 0,
    cancels: 0,
    resultsDelivered: 0,
  };

  constructor(
    readonly config: NativeHookConfig,
    private readonly deps: { clock: Clock; onError?: (e: Error) => void },
  ) {
    this.store = new ResultStore(path.join(config.stateDir, 'native-hook'));
  }

  /** The port listened on, or 0 when not started. */
  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  stats(): NativeHookStats {
    return {
      ...this.counts,
      open: this.sockets.size,
      resultsWaiting: this.store.undeliveredCount(),
    };
  }

  /**
   * The listen address can be bound and the data folder holds (or takes) the token and the results. An
   * address this process listens on (the running hook a new manifest is to replace) counts as working:
   * binding it again would fail (held-ports.ts).
   */
  async probe(): Promise<void> {
    if (!this.server && portHolder({ tcp: this.config.listen }) === undefined) {
      const server = net.createServer();
      await this.listenOn(server);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await this.prepareState();
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.ctx || this.server) throw new Error('the native-hook adapter is already started');
    await this.prepareState();
    const server = net.createServer((socket) => this.connection(socket));
    await this.listenOn(server);
    this.server = server;
    this.releaseListen = holdPort(
      { tcp: { host: this.config.listen.host, port: this.port } },
      'native-hook options.listen',
    );
    this.ctx = ctx;
  }

  async stop(): Promise<void> {
    this.ctx = undefined;
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    for (const wake of [...this.waiters.values()].flatMap((s) => [...s])) wake();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.releaseListen?.();
    this.releaseListen = undefined;
  }

  /** Queues the result for the library, durably; idempotent per (orderId, status). */
  async writeBack(result: OrderResult): Promise<void> {
    const doc = resultDocument(result);
    await this.store.load((file, e) => this.deps.onError?.(unreadable(file, e)), this.deps.clock.now());
    await this.store.add(doc, new Date(this.deps.clock.now()).toISOString());
    for (const wake of this.waiters.get(doc.orderId) ?? []) wake();
  }

  private async prepareState(): Promise<void> {
    try {
      const { token, file } = await ensureHookToken(this.config.stateDir);
      this.token = token;
      this.tokenFile = file;
      await this.store.load((f, e) => this.deps.onError?.(unreadable(f, e)), this.deps.clock.now());
    } catch (e) {
      throw new TransportError(
        'native_hook.state_unwritable',
        `The plugin's data folder ${this.config.stateDir} cannot hold the native hook's token and results ` +
          `(${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the plugin's account write access to it.`,
        { subject: this.config.stateDir, cause: e },
      );
    }
  }

  private listenOn(server: net.Server): Promise<void> {
    const { host, port } = this.config.listen;
    return new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) =>
        reject(
          new ManifestError(
            'native_hook.listen_failed',
            `options.listen: cannot listen on tcp://${host.includes(':') ? `[${host}]` : host}:${port} ` +
              `(${e.code ?? e.message})` +
              (e.code === 'EADDRINUSE'
                ? `; ${inUse(this.config.listen)}: choose a free one here and in the register's hook library config ("address")`
                : ''),
            { subject: 'options.listen', cause: e },
          ),
        );
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
  }

  private connection(socket: net.Socket): void {
    this.counts.connections++;
    this.sockets.add(socket);
    const subject = `native hook client ${socket.remoteAddress}:${socket.remotePort}`;
    const splitter = new LineSplitter(this.config.maxLineBytes);
    let authed = false;
    /** Set once the connection is being closed: lines still queued are not read (nor counted) any more. */
    let closing = false;
    let queue = Promise.resolve();
    socket.setNoDelay(true);
    socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
    });
    const answer = (line: string) => {
      if (!socket.destroyed && socket.writable) socket.write(line);
    };
    /** Answers last, then closes; a client that does not close its side is cut off a second later. */
    const close = () => {
      closing = true;
      socket.end();
      this.deps.clock.setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    };
    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      for (const line of splitter.push(chunk)) {
        queue = queue.then(async () => {
          if (socket.destroyed || closing) return;
          if (!authed) {
            authed = this.hello(line, subject, answer);
            if (!authed) close();
            else socket.setTimeout(IDLE_TIMEOUT_MS);
            return;
          }
          answer(await this.handle(line, subject, socket));
        });
      }
      if (splitter.overflow) {
        closing = true;
        socket.pause();
        queue = queue.then(() => {
          const p = problem(
            'bad_request',
            'native_hook.line_too_long',
            `a request line is longer than ${this.config.maxLineBytes} bytes (options.maxLineBytes); the connection is closed`,
          );
          this.badLine(subject, p);
          answer(problemLine(p));
          close();
        });
      }
    });
  }

  /** The first line: true when it presents the right token. */
  private hello(line: string, subject: string, answer: (line: string) => void): boolean {
    const req = readRequest(line);
    const ok =
      !isProblem(req) &&
      req.op === 'hello' &&
      this.token !== undefined &&
      tokenMatches(req.token, this.token);
    if (ok) {
      answer(okLine({ protocol: PROTOCOL_VERSION, server: 'payconnect' }));
      return true;
    }
    this.counts.badTokens++;
    const first = isProblem(req) || req.op !== 'hello';
    const message = first
      ? `the first line of a connection must be {"op":"hello","token":…}; the hook library sends it`
      : `wrong token: the register's hook library must read the plugin's token file ${this.tokenFile}`;
    this.deps.onError?.(
      new TransportError('native_hook.bad_token', `${subject}: ${message}`, { subject: this.tokenFile }),
    );
    answer(problemLine(problem('bad_token', 'native_hook.bad_token', message)));
    return false;
  }

  private async handle(line: string, subject: string, socket: net.Socket): Promise<string> {
    const req = readRequest(line);
    if (isProblem(req)) {
      this.badLine(subject, req);
      return problemLine(req);
    }
    try {
      return await this.run(req, subject, socket);
    } catch (e) {
      // Never let one request take the adapter (or another connection) down: answer and go on.
      const err = e as Error;
      return problemLine(
        problem(
          'unavailable',
          err instanceof PayconnectError ? err.code : 'native_hook.failed',
          `the plugin could not do this now: ${err.message}`,
        ),
      );
    }
  }

  private async run(req: HookRequest, subject: string, socket: net.Socket): Promise<string> {
    switch (req.op) {
      case 'hello':
        return problemLine(problem('bad_request', 'native_hook.hello_twice', 'hello is only the first line'));
      case 'ping':
        return okLine({ pong: true });
      case 'submit':
        return this.submit(req.order, subject);
      case 'wait':
        return this.wait(req.orderId, req.timeoutMs, socket);
      case 'ack': {
        const outcome = await this.store.ack(req.delivery);
        if (outcome === 'unknown') {
          return problemLine(
            problem(
              'bad_request',
              'native_hook.unknown_delivery',
              `no result has the delivery id ${JSON.stringify(req.delivery)}`,
            ),
          );
        }
        if (outcome === 'acked') this.counts.resultsDelivered++;
        return okLine({ delivery: req.delivery });
      }
      case 'cancel':
        return this.cancel(req.orderId);
    }
  }

  private async submit(body: unknown, subject: string): Promise<string> {
    const ctx = this.ctx;
    if (!ctx) return notTaking();
    let order: CapturedOrder;
    try {
      order = parseOrderBody(
        body,
        { registerId: this.config.registerId, currency: this.config.currency },
        'native-hook',
      );
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.counts.rejected++;
      ctx.onReject({ subject, code: e.code, message: e.message });
      return problemLine(problem('rejected', e.code, e.message));
    }
    // Known to the hook before the plugin has it, so a wait after a crash in between is not `unknown_order`.
    await this.store.noteSubmitted(order.orderId, new Date(this.deps.clock.now()).toISOString());
    try {
      await ctx.onOrder(order);
    } catch (e) {
      const err = e as Error;
      const code = err instanceof PayconnectError ? err.code : 'native_hook.order_failed';
      return problemLine(
        problem(
          err instanceof ProtocolError ? 'rejected' : 'unavailable',
          code,
          `the plugin did not take order ${order.orderId}: ${err.message}`,
        ),
      );
    }
    this.counts.orders++;
    return okLine({ orderId: order.orderId, amount: order.amount });
  }

  private async wait(orderId: string, timeoutMs: number, socket: net.Socket): Promise<string> {
    const ready = () => this.store.nextUndelivered(orderId);
    let result = ready();
    if (!result) {
      if (!this.store.has(orderId)) {
        return problemLine(
          problem(
            'unknown_order',
            'native_hook.unknown_order',
            `no order ${JSON.stringify(orderId)} was taken through the hook`,
          ),
        );
      }
      await this.until(orderId, timeoutMs, socket, () => ready() !== undefined);
      result = ready();
    }
    if (!result) {
      return problemLine(
        problem(
          'timeout',
          'native_hook.no_result_yet',
          `order ${orderId} has no new result within ${timeoutMs} ms`,
        ),
      );
    }
    return okLine({ delivery: result.delivery, result });
  }

  /** Resolves when `done()` holds after a write-back of the order, after `ms`, or when the socket closes. */
  private until(orderId: string, ms: number, socket: net.Socket, done: () => boolean): Promise<void> {
    if (socket.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const set = this.waiters.get(orderId) ?? new Set<() => void>();
      this.waiters.set(orderId, set);
      const finish = () => {
        this.deps.clock.clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiters.get(orderId) === set) this.waiters.delete(orderId);
        socket.off('close', finish);
        resolve();
      };
      const wake = () => {
        if (done() || !this.server) finish();
      };
      set.add(wake);
      socket.once('close', finish);
      const timer: TimerHandle = this.deps.clock.setTimeout(finish, ms);
    });
  }

  private async cancel(orderId: string): Promise<string> {
    const ctx = this.ctx;
    if (!ctx) return notTaking();
    if (!ctx.onWithdraw) {
      return problemLine(
        problem(
          'unavailable',
          'native_hook.cancel_unsupported',
          'this plugin cannot take orders back; cancel it on its status page',
        ),
      );
    }
    const outcome = await ctx.onWithdraw(orderId, 'canceled by the register through the hook library');
    if (outcome === 'canceled') {
      this.counts.cancels++;
      return okLine({ outcome });
    }
    if (outcome === 'stands') {
      return problemLine(
        problem(
          'stands',
          'native_hook.order_stands',
          `order ${orderId} is paid or being paid and cannot be canceled now`,
        ),
      );
    }
    return problemLine(
      problem(
        'unknown_order',
        'native_hook.unknown_order',
        `the plugin has no order ${JSON.stringify(orderId)}`,
      ),
    );
  }

  private badLine(subject: string, p: LineProblem): void {
    this.counts.badLines++;
    this.ctx?.onReject({ subject, code: p.code, message: p.message });
  }
}

function notTaking(): string {
  return problemLine(
    problem(
      'unavailable',
      'native_hook.not_started',
      'the native hook is not taking orders now (the plugin is switching or stopping)',
    ),
  );
}

function unreadable(file: string, e: Error): Error {
  return new TransportError(
    'native_hook.bad_state_file',
    `${file} cannot be read and is skipped: ${e.message}`,
    {
      subject: file,
      cause: e,
    },
  );
}

export function createNativeHookAdapter(manifest: NativeHookManifest, env: AdapterEnv): NativeHookAdapter {
  return new NativeHookAdapter(
    {
      ...manifest.options,
      registerId: manifest.register,
      currency: manifest.parse.currency,
      stateDir: env.stateDir ?? env.baseDir,
    },
    { clock: env.clock, onError: env.onError },
  );
}
