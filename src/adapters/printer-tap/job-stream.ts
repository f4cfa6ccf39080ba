/**
 * What printer-tap does with one stream of register bytes, the same for a TCP connection and for the one
 * long-lived stream of a serial line:
 *
 * - forward every chunk, unchanged and in order, to the printer link (when there is one and it is up),
 *   pausing the register while the printer is slower (back-pressure), and never holding capture up;
 * - without a printer that answers (`forward` none or `file:`), answer status queries itself
 *   (`options.status`), found anywhere in the stream however it is split;
 * - cut the stream into jobs: at each cut (GS V, ESC i, ESC m), after `jobIdleMs` of silence, and when the
 *   stream ends; keep at most `maxJobBytes` of a job for reading, and hand each job to `onJob`.
 *
 * Jobs of different streams, and the tap's own paid footer, never interleave on the printer: a stream
 * holds the JobGate from the first printing byte of a job to its end (cut, idle, end of stream); another
 * stream's bytes wait (its register paused) until then. A poll (a chunk of status queries only) takes its
 * turn too, but lets go at once: a register that polls every second on an open connection must not keep
 * the printer from everyone else.
 */
import { decodeEscPos } from '../../printer/escpos-decode';
import { Clock, TimerHandle } from '../../protocol/clock';
import type { PrinterLink } from './printer-link';
import type { PrinterTapEncoding, PrinterTapStatus } from './printer-tap.options';

export type StatusQuery = 'DLE EOT' | 'GS r' | 'ESC v';

/** The byte a printer answers a status query with, per options.status; undefined: no answer. */
export function statusReply(query: StatusQuery, n: number, status: PrinterTapStatus): number | undefined {
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
  feed(chunk: Uint8Array): { query: StatusQuery; n: number }[] {
    const buf = this.carry.length ? Buffer.concat([Buffer.from(this.carry), chunk]) : chunk;
    this.carry = [];
    const out: { query: StatusQuery; n: number }[] = [];
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

/**
 * True when the chunk is nothing but status queries (a register's poll, written as one write): such a job
 * is forwarded in its turn but does not keep the printer from others while it waits for its idle end.
 */
export function isStatusOnly(chunk: Uint8Array): boolean {
  let i = 0;
  while (i < chunk.length) {
    const [a, b] = [chunk[i], chunk[i + 1]];
    if ((a === 0x10 && b === 0x04) || (a === 0x1d && b === 0x72)) i += 3;
    else if (a === 0x1b && b === 0x76) i += 2;
    else return false;
  }
  return chunk.length > 0 && i === chunk.length;
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
  encoding: PrinterTapEncoding,
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

/**
 * Who may write to the printer now: one register job, or the tap's footer. `enter` waits its turn (first
 * come, first served); `leave` hands the printer to the next in line.
 */
export class JobGate {
  private holder?: object;
  private readonly waiting: { who: object; go: () => void }[] = [];

  get busy(): boolean {
    return this.holder !== undefined;
  }

  /** Takes the gate when it is free (or already held by `who`); false when someone else holds it. */
  tryEnter(who: object): boolean {
    if (this.holder === undefined && this.waiting.length === 0) this.holder = who;
    return this.holder === who;
  }

  enter(who: object): Promise<void> {
    if (this.tryEnter(who)) return Promise.resolve();
    return new Promise<void>((go) => this.waiting.push({ who, go }));
  }

  /** Gives up a turn held or waited for. */
  leave(who: object): void {
    const i = this.waiting.findIndex((w) => w.who === who);
    if (i >= 0) this.waiting.splice(i, 1);
    if (this.holder !== who) return;
    const next = this.waiting.shift();
    this.holder = next?.who;
    next?.go();
  }
}

/** The counters a stream adds to (the adapter's stats). */
export interface JobStreamCounts {
  bytesIn: number;
  bytesForwarded: number;
  statusAnswered: number;
}

export interface JobStreamConfig {
  encoding: PrinterTapEncoding;
  status: PrinterTapStatus;
  jobIdleMs: number;
  maxJobBytes: number;
}

export interface JobStreamSides {
  clock: Clock;
  gate: JobGate;
  counts: JobStreamCounts;
  /** The printer link for the next bytes (may open one), or undefined for `forward: none`. */
  link(): PrinterLink | undefined;
  /** Bytes for the register: the tap's own status answers. */
  reply(bytes: Buffer): void;
  /** Stop and restart reading from the register. */
  pause(): void;
  resume(): void;
  /** A job ended: its kept bytes, whether it outgrew maxJobBytes, and its full length. */
  onJob(bytes: Buffer, tooLarge: boolean, total: number): void;
  /** The register was quiet for jobIdleMs (after any job it had ended). */
  onIdle?(): void;
}

export class JobStream {
  private job: Buffer[] = [];
  private jobLength = 0;
  private overflow = 0;
  private maybeCut = false;
  private lastByte: number | undefined;
  private idle: TimerHandle | undefined;
  private readonly scanner = new StatusQueryScanner();
  /** Chunks that arrived while another job or the footer had the printer. */
  private readonly queued: Buffer[] = [];
  private waitingForGate = false;
  private waitingForPrinter = false;
  private ended = false;
  private ending = false;
  /** The current job has more than status polls: it keeps the gate until it ends. */
  private printing = false;
  private markClosed!: () => void;
  private readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));

  constructor(
    private readonly config: JobStreamConfig,
    private readonly sides: JobStreamSides,
  ) {}

  /** True from a job's first byte to its end. */
  get inJob(): boolean {
    return this.jobLength + this.overflow > 0 || this.queued.length > 0;
  }

  /** A chunk from the register. */
  push(chunk: Buffer): void {
    if (this.ending) return;
    if (this.queued.length > 0 || !this.sides.gate.tryEnter(this)) {
      this.queued.push(chunk);
      if (!this.waitingForGate) {
        this.waitingForGate = true;
        this.sides.pause();
        void this.sides.gate.enter(this).then(() => this.takeTurn());
      }
      return;
    }
    this.take(chunk);
  }

  /**
   * The register closed (or half-closed) the stream: what it sent last is a job of its own. Resolves once
   * the stream's last bytes were handed to the link (they may wait for the printer's turn first).
   */
  end(): Promise<void> {
    if (!this.ending) {
      this.ending = true;
      if (!this.waitingForGate) this.close();
    }
    return this.closed;
  }

  private close(): void {
    this.ended = true;
    this.finish();
    this.sides.clock.clearTimeout(this.idle);
    this.idle = undefined;
    this.sides.gate.leave(this);
    this.markClosed();
  }

  private takeTurn(): void {
    this.waitingForGate = false;
    for (const chunk of this.queued.splice(0)) this.take(chunk);
    if (this.ending) this.close();
    else this.release();
  }

  private take(chunk: Buffer): void {
    const { counts } = this.sides;
    counts.bytesIn += chunk.length;
    const link = this.sides.link();
    if (link?.up) {
      counts.bytesForwarded += chunk.length;
      if (!link.write(chunk) && !this.waitingForPrinter) {
        this.waitingForPrinter = true;
        this.sides.pause();
        link.whenWritable(() => {
          this.waitingForPrinter = false;
          // The register was held by the tap, not silent: its idle time starts only now.
          if (!this.ended && this.idle === undefined) this.waitIdle();
          this.release();
        });
      }
    }
    if (!link?.answersStatus) this.answerStatus(chunk);
    this.keep(chunk);
    if (this.jobLength + this.overflow > 0 && !isStatusOnly(chunk)) this.printing = true;
    this.lastByte = chunk[chunk.length - 1];
    this.sides.clock.clearTimeout(this.idle);
    this.idle = undefined;
    // While the tap holds the register back for a slow printer, the register is not silent: a job must
    // not end (and be split in two) because the printer took longer than the idle time.
    if (!this.waitingForPrinter) this.waitIdle();
    if (!this.printing || !this.inJob) this.sides.gate.leave(this);
  }

  /** Resumes the register when nothing holds it any more. */
  private release(): void {
    if (!this.waitingForGate && !this.waitingForPrinter && !this.ended) this.sides.resume();
  }

  private answerStatus(chunk: Buffer): void {
    const replies: number[] = [];
    for (const q of this.scanner.feed(chunk)) {
      const reply = statusReply(q.query, q.n, this.config.status);
      if (reply !== undefined) replies.push(reply);
    }
    if (replies.length) {
      this.sides.counts.statusAnswered += replies.length;
      this.sides.reply(Buffer.from(replies));
    }
  }

  private keep(chunk: Buffer): void {
    if (this.overflow > 0 || this.jobLength + chunk.length > this.config.maxJobBytes) {
      this.overflow += chunk.length + this.jobLength;
      this.job = [];
      this.jobLength = 0;
      return;
    }
    this.job.push(chunk);
    this.jobLength += chunk.length;
    if (this.maybeCut || mayHoldCut(this.lastByte, chunk)) this.splitAtCuts();
  }

  private waitIdle(): void {
    this.idle = this.sides.clock.setTimeout(() => this.quiet(), this.config.jobIdleMs);
  }

  private quiet(): void {
    this.idle = undefined;
    this.finish();
    // A stream waiting for its turn holds nothing yet: leaving would drop it from the line.
    if (!this.waitingForGate) this.sides.gate.leave(this);
    this.sides.onIdle?.();
  }

  private finish(): void {
    const bytes = Buffer.concat(this.job, this.jobLength);
    const total = this.jobLength + this.overflow;
    const tooLarge = this.overflow > 0;
    this.job = [];
    this.jobLength = 0;
    this.overflow = 0;
    this.maybeCut = false;
    this.printing = false;
    if (total > 0) this.sides.onJob(bytes, tooLarge, total);
  }

  private splitAtCuts(): void {
    for (;;) {
      const bytes = Buffer.concat(this.job, this.jobLength);
      this.job = [bytes];
      const cut = firstCutEnd(bytes, this.config.encoding);
      this.maybeCut = cut.truncated;
      if (cut.end === undefined) return;
      this.job = [bytes.subarray(0, cut.end)];
      this.jobLength = cut.end;
      const rest = bytes.subarray(cut.end);
      this.finish();
      if (rest.length === 0) return;
      this.job = [rest];
      this.jobLength = rest.length;
      if (!mayHoldCut(undefined, rest)) return;
    }
  }
}
