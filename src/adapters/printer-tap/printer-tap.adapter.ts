/**
 * The printer-tap adapter: sits between a register and its receipt printer on raw TCP (9100 style). The
 * register prints to the tap (on Windows: a Standard TCP/IP RAW port pointed at `options.listen`); the tap
 * forwards every byte, unchanged and in order, to the real printer (`options.forward`) and relays whatever
 * the printer answers back to the register, so the register's status polls (DLE EOT n, GS r n, ESC v) get
 * the real printer's answer and the printer keeps working exactly as before. Each job is read for its
 * amount (parse.ts) and handed to the plugin.
 *
 * Per register connection:
 * - With `forward: none` the tap answers status queries itself (`options.status`): DLE EOT n with the
 *   one-byte Epson real-time status (online 0x12; offline: n=1 0x1A, n=2 0x32, n=3 0x12, n=4 0x7E), GS r 1/2
 *   and ESC v with 0x00 (paper present; 0x0F when offline). The tap looks for these byte patterns anywhere
 *   in the stream, as a printer does for DLE EOT; inside image data a match may produce a stray reply byte,
 *   which registers ignore.
 * - A job ends on a cut (GS V, ESC i, ESC m), when the register closes or half-closes, or after
 *   `jobIdleMs` of silence. Empty jobs (status polls only) are not reported. A job longer than
 *   `maxJobBytes` is forwarded in full but not kept or read: rejected as `printer_tap.job_too_large`.
 * - When the register half-closes (a spooler's "send file, shut down write, wait for the printer to
 *   close"), the tap forwards what is left, half-closes towards the printer, and closes its side to the
 *   register once the printer has closed (at most 3 s later), so such spoolers never wait their 90 s.
 * - A printer that is off or unreachable does not stop the register: its bytes are still accepted (a
 *   register that cannot print would hang or error), read and captured, but not printed. The tap reports
 *   `printer_tap.printer_off` through `env.onError` once per connection and counts it; status queries then
 *   get no answer, exactly as from an absent printer, so the register shows the printer offline.
 *
 * Rejections go to `ctx.onReject` with the subject `tcp client 127.0.0.1:PORT job N` (N counts the
 * connection's non-empty jobs from 1). An order without an order number on the receipt is named
 * `<register>-<yyyymmdd>-<hhmmss>-<n>` (UTC, n counting this adapter's orders).
 *
 * writeBack: a printer tap cannot tell the register anything; it resolves and does nothing (results show
 * on the plugin's status page). probe: the listen address can be bound; an unreachable printer is only
 * warned about through `env.onError` (the printer may be switched on later).
 */
import * as net from 'node:net';
import { decodeEscPos } from '../../printer/escpos-decode';
import { Clock, TimerHandle } from '../../protocol/clock';
import { ProtocolError, TransportError } from '../../protocol/errors';
import type { AdapterEnv } from '../adapter-env';
import { AdapterContext, CapturedOrder, HostAdapter, OrderResult } from '../host-adapter';
import type { PlannedAdapterManifest } from '../manifest';
import { decodeJob, isEmptyJob, readLines } from './parse';
import type {
  PrinterTapOptions,
  PrinterTapParseRules,
  PrinterTapStatus,
  PrinterTapWriteBack,
  TcpEndpoint,
} from './printer-tap.options';

export type PrinterTapManifest = Omit<
  PlannedAdapterManifest,
  'adapter' | 'options' | 'parse' | 'writeBack'
> & {
  adapter: 'printer-tap';
  options: PrinterTapOptions;
  parse: PrinterTapParseRules;
  writeBack: PrinterTapWriteBack;
};

export interface PrinterTapConfig extends PrinterTapOptions {
  registerId: string;
  rules: PrinterTapParseRules;
}

export interface PrinterTapStats {
  connections: number;
  /** Non-empty jobs seen. */
  jobs: number;
  orders: number;
  rejected: number;
  rasterJobs: number;
  tooLarge: number;
  emptyJobs: number;
  /** Connections whose printer was off or unreachable. */
  printerOff: number;
  /** Status queries the tap answered itself (forward: none). */
  statusAnswered: number;
  bytesIn: number;
  bytesForwarded: number;
}

/** How long after the register's half-close the tap waits for the printer to close before closing. */
const PRINTER_CLOSE_GRACE_MS = 3000;
const PROBE_CONNECT_MS = 2000;

export function endpointText(e: TcpEndpoint): string {
  return `tcp://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

/** The byte a printer answers a status query with, per options.status; undefined: no answer. */
export function statusReply(
  query: 'DLE EOT' | 'GS r' | 'ESC v',
  n: number,
  status: PrinterTapStatus,
): number | undefined {
  const online = status === 'online';
  if (query === 'DLE EOT') {
    const offline: Record<number, number> = { 1: 0x1a, 2: 0x32, 3: 0x12, 4: 0x7e };
    if (!(n in offline)) return undefined;
    return online ? 0x12 : offline[n];
  }
  if (query === 'GS r') {
    if (n === 1 || n === 49) return online ? 0x00 : 0x0f;
    if (n === 2 || n === 50) return 0x00;
    return undefined;
  }
  return online ? 0x00 : 0x0f;
}

/** Finds status queries in a byte stream that may split them across chunks. */
export class StatusQueryScanner {
  private carry: number[] = [];

  /** The queries completed by this chunk, in order. */
  feed(chunk: Uint8Array): { query: 'DLE EOT' | 'GS r' | 'ESC v'; n: number }[] {
    const buf = this.carry.length ? Buffer.concat([Buffer.from(this.carry), chunk]) : chunk;
    this.carry = [];
    const out: { query: 'DLE EOT' | 'GS r' | 'ESC v'; n: number }[] = [];
    let i = 0;
    while (i < buf.length) {
      const b = buf[i];
      const pattern = b === 0x10 ? 0x04 : b === 0x1d ? 0x72 : b === 0x1b ? 0x76 : -1;
      if (pattern < 0) {
        i++;
        continue;
      }
      const need = b === 0x1b ? 2 : 3;
      if (i + 1 >= buf.length || (buf[i + 1] === pattern && i + need > buf.length)) {
        this.carry = Array.from(buf.subarray(i));
        break;
      }
      if (buf[i + 1] !== pattern) {
        i++;
        continue;
      }
      out.push({
        query: b === 0x10 ? 'DLE EOT' : b === 0x1d ? 'GS r' : 'ESC v',
        n: need === 3 ? buf[i + 2] : 0,
      });
      i += need;
    }
    return out;
  }
}

/** True when the bytes (with the last byte of the previous chunk) may hold the start of a cut command. */
function mayHoldCut(prev: number | undefined, chunk: Uint8Array): boolean {
  for (let i = -1; i < chunk.length - 1; i++) {
    const a = i < 0 ? prev : chunk[i];
    const b = chunk[i + 1];
    if ((a === 0x1d && b === 0x56) || (a === 0x1b && (b === 0x69 || b === 0x6d))) return true;
  }
  return false;
}

const CUT_WITH_FEED = [65, 66, 97, 98, 103, 104];
const CUTS = [0, 1, 48, 49, ...CUT_WITH_FEED];

/** Where the first cut in `bytes` ends (the job's end), or undefined; `truncated` when a command is cut off. */
export function firstCutEnd(
  bytes: Uint8Array,
  encoding: PrinterTapParseRules['encoding'],
): { end?: number; truncated: boolean } {
  const decoded = decodeEscPos(bytes, { encoding });
  for (const c of decoded.commands) {
    if (c.name === 'ESC i' || c.name === 'ESC m') return { end: c.at + 2, truncated: false };
    if (c.name === 'GS V') {
      const m = bytes[c.at + 2];
      if (CUTS.includes(m)) return { end: c.at + (CUT_WITH_FEED.includes(m) ? 4 : 3), truncated: false };
    }
  }
  return { truncated: decoded.truncatedAt !== undefined };
}

export class PrinterTapAdapter implements HostAdapter {
  readonly kind = 'printer-tap';
  private ctx?: AdapterContext;
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly counts: PrinterTapStats = {
    connections: 0,
    jobs: 0,
    orders: 0,
    rejected: 0,
    rasterJobs: 0,
    tooLarge: 0,
    emptyJobs: 0,
    printerOff: 0,
    statusAnswered: 0,
    bytesIn: 0,
    bytesForwarded: 0,
  };
  private orderSeq = 0;

  constructor(
    readonly config: PrinterTapConfig,
    private readonly deps: { clock: Clock; onError?: (error: Error) => void },
  ) {}

  stats(): PrinterTapStats {
    return { ...this.counts };
  }

  /** The port the tap listens on (useful with port 0), or 0 when not started. */
  get port(): number {
    return (this.server?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  async probe(): Promise<void> {
    if (!this.server) {
      const server = net.createServer();
      await this.listenOn(server);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const forward = this.config.forward;
    if (forward) {
      const problem = await reach(forward, PROBE_CONNECT_MS);
      if (problem) this.deps.onError?.(this.printerOff(problem));
    }
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.ctx || this.server) throw new Error('the printer-tap adapter is already started');
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.connection(socket));
    await this.listenOn(server);
    this.server = server;
    this.ctx = ctx;
  }

  async stop(): Promise<void> {
    this.ctx = undefined;
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A printer tap cannot tell the register anything: results show on the status page. */
  async writeBack(_result: OrderResult): Promise<void> {}

  private listenOn(server: net.Server): Promise<void> {
    const { host, port } = this.config.listen;
    return new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) =>
        reject(
          new TransportError(
            'printer_tap.listen_failed',
            `options.listen: cannot listen on ${endpointText(this.config.listen)} (${e.code ?? e.message})` +
              (e.code === 'EADDRINUSE' ? '; another program (a print spooler?) already uses that port' : ''),
            { subject: 'options.listen', cause: e },
          ),
        );
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        server.on('error', (e) => this.deps.onError?.(e));
        resolve();
      });
    });
  }

  private printerOff(reason: string): TransportError {
    const target = this.config.forward ? endpointText(this.config.forward) : '(none)';
    return new TransportError(
      'printer_tap.printer_off',
      `printer ${target} is off or unreachable (${reason}); the register's jobs are still read, but not printed`,
      { subject: target },
    );
  }

  private connection(register: net.Socket): void {
    this.counts.connections++;
    this.sockets.add(register);
    const client = `tcp client ${register.remoteAddress}:${register.remotePort}`;
    const { forward, maxJobBytes, jobIdleMs, rules } = this.config;
    let job: Buffer[] = [];
    let jobLength = 0;
    let overflow = 0;
    let jobNo = 0;
    let maybeCut = false;
    let lastByte: number | undefined;
    let idle: TimerHandle | undefined;
    let ended = false;
    const scanner = new StatusQueryScanner();

    let printer: net.Socket | undefined;
    let printerUp = false;
    let printerClosed = false;
    let reported = false;
    const onPrinterClosed: (() => void)[] = [];
    if (forward) {
      printer = net.connect({ host: forward.host, port: forward.port });
      printerUp = true;
      this.sockets.add(printer);
      printer.setNoDelay(true);
      printer.on('data', (answer) => {
        if (!register.destroyed && register.writable) register.write(answer);
      });
      const report = (reason: string): void => {
        if (reported) return;
        reported = true;
        this.counts.printerOff++;
        this.deps.onError?.(this.printerOff(reason));
      };
      printer.on('error', (e: NodeJS.ErrnoException) => {
        printerUp = false;
        report(e.code ?? e.message);
        if (register.isPaused()) register.resume();
      });
      printer.on('close', () => {
        // Closed while the register was still printing: what follows is read, but not printed.
        if (!ended && !register.destroyed && this.ctx) report('it closed the connection during a job');
        printerUp = false;
        printerClosed = true;
        if (printer) this.sockets.delete(printer);
        if (register.isPaused()) register.resume();
        for (const f of onPrinterClosed.splice(0)) f();
      });
    }

    const finish = (): void => {
      this.deps.clock.clearTimeout(idle);
      idle = undefined;
      const bytes = Buffer.concat(job, jobLength);
      const total = jobLength + overflow;
      const tooLarge = overflow > 0;
      job = [];
      jobLength = 0;
      overflow = 0;
      maybeCut = false;
      if (total === 0) return;
      this.finishJob(bytes, tooLarge, total, () => `${client} job ${++jobNo}`);
    };

    const splitAtCuts = (): void => {
      for (;;) {
        const bytes = Buffer.concat(job, jobLength);
        job = [bytes];
        const cut = firstCutEnd(bytes, rules.encoding);
        maybeCut = cut.truncated;
        if (cut.end === undefined) return;
        job = [bytes.subarray(0, cut.end)];
        jobLength = cut.end;
        const rest = bytes.subarray(cut.end);
        finish();
        if (rest.length === 0) return;
        job = [rest];
        jobLength = rest.length;
        if (!mayHoldCut(undefined, rest)) return;
      }
    };

    register.setNoDelay(true);
    register.on('data', (chunk: Buffer) => {
      this.counts.bytesIn += chunk.length;
      if (printer && printerUp) {
        this.counts.bytesForwarded += chunk.length;
        if (!printer.write(chunk)) {
          register.pause();
          printer.once('drain', () => register.resume());
        }
      } else if (!forward) {
        const replies: number[] = [];
        for (const q of scanner.feed(chunk)) {
          const reply = statusReply(q.query, q.n, this.config.status);
          if (reply !== undefined) replies.push(reply);
        }
        if (replies.length) {
          this.counts.statusAnswered += replies.length;
          register.write(Buffer.from(replies));
        }
      }
      if (overflow > 0 || jobLength + chunk.length > maxJobBytes) {
        overflow += chunk.length + jobLength;
        job = [];
        jobLength = 0;
      } else {
        job.push(chunk);
        jobLength += chunk.length;
        if (maybeCut || mayHoldCut(lastByte, chunk)) splitAtCuts();
      }
      lastByte = chunk[chunk.length - 1];
      this.deps.clock.clearTimeout(idle);
      idle = jobLength + overflow > 0 ? this.deps.clock.setTimeout(finish, jobIdleMs) : undefined;
    });

    const closeRegister = (): void => {
      if (!register.destroyed) register.end();
    };
    register.on('end', () => {
      ended = true;
      finish();
      if (!printer || printerClosed) {
        closeRegister();
        return;
      }
      const grace = this.deps.clock.setTimeout(() => {
        closeRegister();
        printer?.destroy();
      }, PRINTER_CLOSE_GRACE_MS);
      onPrinterClosed.push(() => {
        this.deps.clock.clearTimeout(grace);
        closeRegister();
      });
      printer.end();
    });
    register.on('error', () => undefined);
    register.on('close', () => {
      this.sockets.delete(register);
      if (!ended) finish();
      this.deps.clock.clearTimeout(idle);
      if (printer && !printerClosed && !ended) printer.end();
    });
  }

  private finishJob(bytes: Buffer, tooLarge: boolean, total: number, nextSubject: () => string): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (tooLarge) {
      const subject = nextSubject();
      this.counts.jobs++;
      this.counts.tooLarge++;
      this.counts.rejected++;
      ctx.onReject({
        subject,
        code: 'printer_tap.job_too_large',
        message: `${subject}: ${total} bytes is more than options.maxJobBytes (${this.config.maxJobBytes}); forwarded to the printer but not read`,
      });
      return;
    }
    const job = decodeJob(bytes, this.config.rules.encoding);
    if (isEmptyJob(job)) {
      this.counts.emptyJobs++;
      return;
    }
    const subject = nextSubject();
    this.counts.jobs++;
    let order: CapturedOrder;
    try {
      const receipt = readLines(job, this.config.rules, subject);
      order = {
        orderId: receipt.orderId ?? this.orderIdFor(),
        registerId: this.config.registerId,
        amount: receipt.amount,
        source: subject,
      };
    } catch (e) {
      const error =
        e instanceof ProtocolError
          ? e
          : new ProtocolError('printer_tap.unreadable', `${subject}: ${String(e)}`, { subject });
      if (error.code === 'printer_tap.raster_job') this.counts.rasterJobs++;
      this.counts.rejected++;
      ctx.onReject({ subject, code: error.code, message: error.message });
      return;
    }
    ctx.onOrder(order).then(
      () => void this.counts.orders++,
      (e: unknown) => this.deps.onError?.(e instanceof Error ? e : new Error(String(e))),
    );
  }

  private orderIdFor(): string {
    const t = new Date(this.deps.clock.now()).toISOString();
    const stamp = `${t.slice(0, 10).replace(/-/g, '')}-${t.slice(11, 19).replace(/:/g, '')}`;
    return `${this.config.registerId}-${stamp}-${++this.orderSeq}`;
  }
}

/** Undefined when a TCP connection to `e` opens within `ms`; else why not. */
function reach(e: TcpEndpoint, ms: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: e.host, port: e.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(`no answer within ${ms} ms`);
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.end();
      resolve(undefined);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
  });
}

export function createPrinterTapAdapter(manifest: PrinterTapManifest, env: AdapterEnv): PrinterTapAdapter {
  return new PrinterTapAdapter(
    { registerId: manifest.register, ...manifest.options, rules: manifest.parse },
    { clock: env.clock, onError: env.onError },
  );
}
