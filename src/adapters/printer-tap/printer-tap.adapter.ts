/**
 * The printer-tap adapter: sits between a register and its receipt printer. The register prints to the
 * tap — a raw TCP port (9100 style; on Windows a Standard TCP/IP RAW port pointed at `options.listen`) or
 * one end of a serial line (on Windows a com0com virtual COM pair) — and the tap forwards every byte,
 * unchanged and in order, to the real printer (`options.forward`: tcp, serial, a file or device, or
 * none) and relays whatever the printer answers back to the register, so the register's status polls
 * (DLE EOT n, GS r n, ESC v) get the real printer's answer and the printer keeps working exactly as
 * before. Each job is read for its amount (parse.ts) and handed to the plugin.
 *
 * What happens to the register's bytes is the same for a TCP connection and for a serial line
 * (job-stream.ts): forwarding with back-pressure, the tap's own status answers, jobs cut at cuts, idle
 * time and maxJobBytes. Per kind of stream:
 *
 * - TCP: one stream per register connection, with its own connection to a TCP printer. A job also ends
 *   when the register closes or half-closes. When the register half-closes (a spooler's "send file, shut
 *   down write, wait for the printer to close"), the tap forwards what is left, half-closes towards the
 *   printer, and closes its side to the register once the printer has closed (at most 3 s later), so such
 *   spoolers never wait their 90 s.
 * - Serial (`listen: serial:…`): one stream for as long as the adapter runs; jobs end at cuts and after
 *   `jobIdleMs` of silence. A TCP printer gets one connection per burst (ended when the register has been
 *   quiet for jobIdleMs), a file is appended to. A listen port that goes away is reopened every 2 s
 *   (serial-line.ts), counted (`listenLost`, `listenReopened`) and reported once per loss.
 * - A serial printer (`forward: serial:…`) is kept open for the adapter's whole run and shared by all
 *   streams one job at a time; its answers go to the stream that wrote to it last.
 * - With `forward: none` or `file:` the tap answers status queries itself (`options.status`): DLE EOT n
 *   with the one-byte Epson real-time status (online 0x12; offline: n=1 0x1A, n=2 0x32, n=3 0x12,
 *   n=4 0x7E), GS r 1/2 and ESC v with 0x00 (paper present; 0x0F when offline). The tap looks for these
 *   byte patterns anywhere in the stream, as a printer does for DLE EOT; inside image data a match may
 *   produce a stray reply byte, which registers ignore.
 * - Empty jobs (status polls only) are not reported. A job longer than `maxJobBytes` is forwarded in full
 *   but not kept or read: rejected as `printer_tap.job_too_large`.
 * - A printer that is off or unreachable (connection refused, device or port gone) does not stop the
 *   register: its bytes are still accepted (a register that cannot print would hang or error), read and
 *   captured, but not printed. The tap reports `printer_tap.printer_off` through `env.onError` once per
 *   outage (until the printer answers again) and counts it; status queries then get no answer, exactly as
 *   from an absent printer, so the register shows the printer offline.
 *
 * Rejections go to `ctx.onReject` with the subject `tcp client 127.0.0.1:PORT job N` or
 * `serial:/dev/ttyS0 job N` (N counts the stream's non-empty jobs from 1). An order without an order number
 * on the receipt is named `<register>-<yyyymmdd>-<hhmmss>-<n>` (UTC, n counting this adapter's orders).
 *
 * writeBack: without `writeBack.footer` a printer tap cannot tell the register anything; it resolves and
 * does nothing (results show on the plugin's status page). With it, a paid result prints a short footer
 * (footer.ts) on the tapped printer, through the forward link, once the register's job in progress has
 * ended (the JobGate), at most once per order (a journal in env.stateDir); `failed` and `canceled` print
 * nothing. A printer that is off, or busy with register jobs for FOOTER_WAIT_MS, throws WriteBackError and
 * the plugin retries.
 *
 * probe: the listen address can be bound or the listen port opened, or this process already holds it (the
 * running tap a new manifest on the same port is to replace: held-ports.ts); an unreachable printer is only
 * warned about through `env.onError` (the printer may be switched on later).
 */
import * as net from 'node:net';
import { FilePrinterOutput, TcpPrinterOutput, printerUnreachable } from '../../printer/outputs';
import { Clock } from '../../protocol/clock';
import {
  ManifestError,
  PayconnectError,
  ProtocolError,
  TransportError,
  WriteBackError,
} from '../../protocol/errors';
import type { AdapterEnv } from '../adapter-env';
import { holdPort, portHolder } from '../held-ports';
import { AdapterContext, CapturedOrder, HostAdapter, OrderResult } from '../host-adapter';
import type { PlannedAdapterManifest } from '../manifest';
import { FooterJournal, renderFooter } from './footer';
import { JobGate, JobStream, JobStreamSides } from './job-stream';
import { decodeJob, isEmptyJob, readLines } from './parse';
import { FileLink, LinkEvents, PrinterLink, SerialLink, TcpLink } from './printer-link';
import {
  ForwardEndpoint,
  ListenEndpoint,
  PrinterTapOptions,
  PrinterTapParseRules,
  PrinterTapWriteBack,
  SerialEndpoint,
  TcpEndpoint,
  isFile,
  isSerial,
  isTcp,
} from './printer-tap.options';
import { DEFAULT_REOPEN_MS, SerialLine, serialName } from './serial-line';

export { StatusQueryScanner, firstCutEnd, statusReply } from './job-stream';

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
  /** Absent or `{}`: writeBack does nothing. */
  writeBack?: PrinterTapWriteBack;
}

export interface PrinterTapDeps {
  clock: Clock;
  onError?: (error: Error) => void;
  /** Where the footer journal lives (env.stateDir, else env.baseDir); required for a footer. */
  stateDir?: string;
  /** How long to wait between attempts to reopen a serial port that went away. Default 2 s. */
  reopenMs?: number;
  /** serialport's binding; default the real one. */
  binding?: unknown;
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
  /** Times the printer was found off or unreachable (once per outage). */
  printerOff: number;
  /** Status queries the tap answered itself (forward: none or file). */
  statusAnswered: number;
  bytesIn: number;
  bytesForwarded: number;
  /** Serial listen: times the register's port went away, and was opened again. */
  listenLost: number;
  listenReopened: number;
  /** Paid footers printed, and writeBacks that found theirs already printed. */
  footers: number;
  footersAlreadyPrinted: number;
}

/** How long after the register's half-close the tap waits for the printer to close before closing. */
const PRINTER_CLOSE_GRACE_MS = 3000;
const PROBE_CONNECT_MS = 2000;
/** How long a footer waits for the register's jobs to end before writeBack fails (and is retried). */
export const FOOTER_WAIT_MS = 30_000;

export function endpointText(e: TcpEndpoint): string {
  return `tcp://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

/** How messages name a listen or forward endpoint. */
export function forwardText(e: ForwardEndpoint | ListenEndpoint | undefined): string {
  if (e === undefined) return '(none)';
  if (isTcp(e)) return endpointText(e);
  if (isSerial(e)) return serialName(e);
  return `file:${e.file}`;
}

export class PrinterTapAdapter implements HostAdapter {
  readonly kind = 'printer-tap';
  private ctx?: AdapterContext;
  private server?: net.Server;
  /** Forgets the TCP listen address in held-ports.ts, once the server is closed. */
  private releaseListen?: () => void;
  private listenLine?: SerialLine;
  private printerLine?: SerialLine;
  private sharedLink?: SerialLink;
  /** Where the shared serial printer's answers go: the stream that wrote to it last. */
  private answerTo?: (bytes: Buffer) => void;
  private readonly gate = new JobGate();
  private readonly streams = new Set<JobStream>();
  private readonly sockets = new Set<net.Socket>();
  private readonly links = new Set<PrinterLink>();
  /** The printer is known to be off: reported once, until it answers again. */
  private printerDown = false;
  /** writeBacks run one at a time, so two calls for one order cannot both print. */
  private footerQueue: Promise<unknown> = Promise.resolve();
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
    listenLost: 0,
    listenReopened: 0,
    footers: 0,
    footersAlreadyPrinted: 0,
  };
  private orderSeq = 0;

  constructor(
    readonly config: PrinterTapConfig,
    private readonly deps: PrinterTapDeps,
  ) {}

  stats(): PrinterTapStats {
    return { ...this.counts };
  }

  /** The port the tap listens on (useful with port 0), or 0 when not started or listening on serial. */
  get port(): number {
    return (this.server?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  async probe(): Promise<void> {
    const { listen, forward } = this.config;
    // An address this process listens on (the running tap a new manifest is to replace) counts as working:
    // binding it again would fail (held-ports.ts).
    if (isTcp(listen) && !this.server && portHolder({ tcp: listen }) === undefined) {
      const server = net.createServer();
      await this.listenOn(server, listen);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    if (isSerial(listen) && !this.listenLine) {
      await this.serialLine(listen, 'listen')
        .probe()
        .catch((e: unknown) => {
          throw this.listenFailed(e);
        });
    }
    if (isTcp(forward)) {
      const problem = await reach(forward, PROBE_CONNECT_MS);
      if (problem) this.deps.onError?.(this.printerOff(problem));
    }
    if (isSerial(forward) && !this.printerLine) {
      await this.serialLine(forward, 'forward')
        .probe()
        .catch((e: unknown) => this.deps.onError?.(this.printerOff(reasonOf(e))));
    }
    if (this.config.writeBack?.footer && !forward) {
      throw new ManifestError(
        'printer_tap.footer_without_printer',
        'writeBack.footer needs a printer to print on: set options.forward to the real printer, or remove the footer',
        { subject: 'writeBack.footer' },
      );
    }
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.ctx || this.server || this.listenLine)
      throw new Error('the printer-tap adapter is already started');
    const { listen, forward } = this.config;
    this.ctx = ctx;
    try {
      if (isSerial(forward)) await this.openPrinterLine(forward);
      if (isTcp(listen)) {
        const server = net.createServer({ allowHalfOpen: true }, (socket) => this.connection(socket));
        await this.listenOn(server, listen);
        this.server = server;
        this.releaseListen = holdPort(
          { tcp: { host: listen.host, port: this.port } },
          'printer-tap options.listen',
        );
      } else {
        await this.listenSerial(listen);
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    this.ctx = undefined;
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    for (const stream of this.streams) void stream.end();
    this.streams.clear();
    for (const l of this.links) l.destroy();
    this.links.clear();
    const lines = [this.listenLine, this.printerLine];
    this.listenLine = undefined;
    this.printerLine = undefined;
    this.sharedLink = undefined;
    for (const line of lines) await line?.close();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.releaseListen?.();
    this.releaseListen = undefined;
  }

  /**
   * Without `writeBack.footer`, nothing (a printer tap cannot tell the register anything). With it, a paid
   * result prints its footer once (see the top of this file); failed and canceled print nothing.
   */
  async writeBack(result: OrderResult): Promise<void> {
    const footer = this.config.writeBack?.footer;
    if (!footer || result.status !== 'paid') return;
    const run = this.footerQueue.then(() => this.printFooter(result));
    this.footerQueue = run.catch(() => undefined);
    await run;
  }

  private async printFooter(result: OrderResult): Promise<void> {
    const footer = this.config.writeBack!.footer!;
    const dir = this.deps.stateDir;
    if (dir === undefined) {
      throw new WriteBackError(
        'printer_tap.no_state_dir',
        'the footer journal needs a state folder (env.stateDir)',
      );
    }
    const journal = FooterJournal.for(dir, this.config.registerId);
    if (await this.journaled(journal, () => journal.has(result.orderId))) {
      this.counts.footersAlreadyPrinted++;
      return;
    }
    const bytes = renderFooter(result, footer, this.config.rules.encoding);
    const target = forwardText(this.config.forward);
    const turn = {};
    const waited = await this.waitForPrinter(turn);
    if (!waited) {
      this.gate.leave(turn);
      throw new WriteBackError(
        'printer_tap.printer_busy',
        `order ${result.orderId}: the register kept printing to ${target} for ${FOOTER_WAIT_MS / 1000} s; the paid footer will be printed on retry`,
        { subject: target },
      );
    }
    try {
      await this.journaled(journal, () => journal.add(result.orderId));
      try {
        await this.sendToPrinter(bytes);
      } catch (e) {
        await this.journaled(journal, () => journal.remove(result.orderId));
        throw new WriteBackError(
          'printer_tap.footer_not_printed',
          `order ${result.orderId}: the paid footer could not be printed on ${target} (${(e as Error).message}); it is retried`,
          { subject: target, cause: e },
        );
      }
      this.counts.footers++;
    } finally {
      this.gate.leave(turn);
    }
  }

  /** A journal step; a journal that cannot be read or written is a WriteBackError naming the file. */
  private async journaled<T>(journal: FooterJournal, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (e) {
      throw new WriteBackError(
        'printer_tap.footer_journal',
        `the paid-footer journal ${journal.file} cannot be used (${(e as Error).message}); ` +
          'check the plugin data folder (free space, permissions), or delete the file if it is damaged',
        { subject: journal.file, cause: e },
      );
    }
  }

  /** True once the footer has the printer; false after FOOTER_WAIT_MS of register jobs. */
  private waitForPrinter(turn: object): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = this.deps.clock.setTimeout(() => resolve(false), FOOTER_WAIT_MS);
      void this.gate.enter(turn).then(() => {
        this.deps.clock.clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Footer bytes to the printer through the forward link's kind: throws when it is off. */
  private async sendToPrinter(bytes: Uint8Array): Promise<void> {
    const forward = this.config.forward;
    const target = forwardText(forward);
    if (isTcp(forward)) {
      await new TcpPrinterOutput(target, forward.host, forward.port, { clock: this.deps.clock }).write(bytes);
    } else if (isFile(forward)) {
      await new FilePrinterOutput(target, forward.file).write(bytes);
    } else if (isSerial(forward)) {
      const line = this.printerLine;
      if (!line?.isOpen) throw printerUnreachable(target, 'the serial port is not open');
      let failed: Error | undefined;
      line.write(Buffer.from(bytes), (e) => void (failed ??= e ?? undefined));
      await line.drained();
      if (failed || !line.isOpen) {
        throw printerUnreachable(target, failed?.message ?? 'the port went away during the footer', failed);
      }
    } else {
      throw printerUnreachable(target, 'options.forward is none');
    }
  }

  private listenOn(server: net.Server, listen: TcpEndpoint): Promise<void> {
    const { host, port } = listen;
    return new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) =>
        reject(
          new TransportError(
            'printer_tap.listen_failed',
            `options.listen: cannot listen on ${endpointText(listen)} (${e.code ?? e.message})` +
              (e.code === 'EADDRINUSE'
                ? inUseHint(listen, 'another program (a print spooler?) already uses that port')
                : ''),
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

  private listenFailed(e: unknown): TransportError {
    return new TransportError(
      'printer_tap.listen_failed',
      `options.listen: ${e instanceof Error ? e.message : String(e)}`,
      { subject: 'options.listen', cause: e },
    );
  }

  private printerOff(reason: string): TransportError {
    const target = forwardText(this.config.forward);
    return new TransportError(
      'printer_tap.printer_off',
      `printer ${target} is off or unreachable (${reason}); the register's jobs are still read, but not printed`,
      { subject: target },
    );
  }

  private printerIsDown(reason: string): void {
    if (this.printerDown || !this.ctx) return;
    this.printerDown = true;
    this.counts.printerOff++;
    this.deps.onError?.(this.printerOff(reason));
  }

  private serialLine(
    e: SerialEndpoint,
    field: 'listen' | 'forward',
    more: Partial<SerialLineEvents> = {},
  ): SerialLine {
    const role =
      field === 'listen' ? "the register's port (options.listen)" : 'the printer (options.forward)';
    return new SerialLine(e, role, {
      clock: this.deps.clock,
      reopenMs: this.deps.reopenMs ?? DEFAULT_REOPEN_MS,
      onData: more.onData ?? (() => undefined),
      onLost: more.onLost ?? (() => undefined),
      ...(more.onBack ? { onBack: more.onBack } : {}),
      ...(this.deps.binding ? { binding: this.deps.binding } : {}),
    });
  }

  /** The serial printer, kept open; one that is off now is reported and waited for. */
  private async openPrinterLine(forward: SerialEndpoint): Promise<void> {
    const line = this.serialLine(forward, 'forward', {
      onData: (answer) => this.answerTo?.(answer),
      onLost: (e) => this.printerIsDown(reasonOf(e)),
      onBack: () => void (this.printerDown = false),
    });
    this.printerLine = line;
    this.sharedLink = new SerialLink(line, (e) => this.printerIsDown(e.message));
    try {
      await line.open();
    } catch (e) {
      line.reopenLater(line.error(e, 'cannot be opened'));
    }
  }

  /** A per-connection or per-burst link to a TCP printer or a file; undefined for none and serial. */
  private openLink(
    forward: ForwardEndpoint | undefined,
    events: Pick<LinkEvents, 'onAnswer' | 'onClosed'>,
  ): PrinterLink | undefined {
    if (!isTcp(forward) && !isFile(forward)) return undefined;
    const all: LinkEvents = {
      ...events,
      onDown: (reason) => this.printerIsDown(reason),
      onUp: () => void (this.printerDown = false),
    };
    const link: TcpLink | FileLink = isTcp(forward)
      ? new TcpLink(forward, all)
      : new FileLink(forward.file, all);
    this.links.add(link);
    return link;
  }

  private stream(
    subject: string,
    sides: Omit<JobStreamSides, 'clock' | 'gate' | 'counts' | 'onJob'>,
  ): JobStream {
    const { rules, status, jobIdleMs, maxJobBytes } = this.config;
    let jobNo = 0;
    const stream = new JobStream(
      { encoding: rules.encoding, status, jobIdleMs, maxJobBytes },
      {
        ...sides,
        clock: this.deps.clock,
        gate: this.gate,
        counts: this.counts,
        onJob: (bytes, tooLarge, total) =>
          this.finishJob(bytes, tooLarge, total, () => `${subject} job ${++jobNo}`),
      },
    );
    this.streams.add(stream);
    return stream;
  }

  /** The shared serial printer link, with its answers going to `reply`. */
  private shared(reply: (bytes: Buffer) => void): PrinterLink | undefined {
    this.answerTo = reply;
    return this.sharedLink;
  }

  private async listenSerial(listen: SerialEndpoint): Promise<void> {
    const forward = this.config.forward;
    let burst: PrinterLink | undefined;
    const line = this.serialLine(listen, 'listen', {
      onData: (chunk) => stream.push(chunk),
      onLost: (e) => {
        this.counts.listenLost++;
        this.deps.onError?.(e);
      },
      onBack: () => void this.counts.listenReopened++,
    });
    const reply = (bytes: Buffer): void => void line.write(bytes);
    const stream = this.stream(`serial:${listen.serial}`, {
      link: () => {
        if (isSerial(forward)) return this.shared(reply);
        burst ??= this.openLink(forward, { onAnswer: reply });
        return burst;
      },
      reply,
      pause: () => line.pause(),
      resume: () => line.resume(),
      onIdle: () => {
        // A serial line has no connections: a TCP printer's connection (or the file) ends with the burst.
        burst?.end();
        if (burst) this.links.delete(burst);
        burst = undefined;
      },
    });
    this.listenLine = line;
    await line.open().catch((e: unknown) => {
      throw this.listenFailed(e);
    });
  }

  private connection(register: net.Socket): void {
    this.counts.connections++;
    this.sockets.add(register);
    const forward = this.config.forward;
    const onPrinterClosed: (() => void)[] = [];
    const reply = (bytes: Buffer): void => {
      if (!register.destroyed && register.writable) register.write(bytes);
    };
    const link = this.openLink(forward, {
      onAnswer: reply,
      onClosed: () => {
        if (link) this.links.delete(link);
        for (const f of onPrinterClosed.splice(0)) f();
      },
    });
    const tcpLink = link instanceof TcpLink ? link : undefined;
    const stream = this.stream(`tcp client ${register.remoteAddress}:${register.remotePort}`, {
      link: () => (isSerial(forward) ? this.shared(reply) : link),
      reply,
      pause: () => register.pause(),
      resume: () => register.resume(),
    });
    let ended = false;
    const closeRegister = (): void => {
      if (!register.destroyed) register.end();
    };

    register.setNoDelay(true);
    register.on('data', (chunk: Buffer) => stream.push(chunk));
    register.on('end', () => {
      ended = true;
      void stream.end().then(() => {
        this.streams.delete(stream);
        if (!tcpLink || tcpLink.closed) {
          link?.end();
          closeRegister();
          return;
        }
        const grace = this.deps.clock.setTimeout(() => {
          closeRegister();
          tcpLink.destroy();
        }, PRINTER_CLOSE_GRACE_MS);
        onPrinterClosed.push(() => {
          this.deps.clock.clearTimeout(grace);
          closeRegister();
        });
        tcpLink.end();
      });
    });
    register.on('error', () => undefined);
    register.on('close', () => {
      this.sockets.delete(register);
      if (ended) return;
      void stream.end().then(() => {
        this.streams.delete(stream);
        link?.end();
      });
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

/** Why a listen address is in use: this plugin's adapter that holds it, else `otherwise`. */
function inUseHint(listen: TcpEndpoint, otherwise: string): string {
  const holder = portHolder({ tcp: listen });
  return `; ${holder ? `this plugin's ${holder} listens there` : otherwise}`;
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
    {
      registerId: manifest.register,
      ...manifest.options,
      rules: manifest.parse,
      writeBack: manifest.writeBack,
    },
    { clock: env.clock, onError: env.onError, stateDir: env.stateDir ?? env.baseDir },
  );
}

interface SerialLineEvents {
  onData(chunk: Buffer): void;
  onLost(error: TransportError): void;
  onBack(): void;
}

/** The OS's words for why a port or printer failed, without our wrapping. */
function reasonOf(e: unknown): string {
  if (e instanceof PayconnectError && e.cause instanceof Error) return e.cause.message;
  return e instanceof Error ? e.message : String(e);
}
