/**
 * The print queue: receipts wait here until their printer takes them. A caller enqueues and goes on (the
 * job is saved to the store first, then printed in the background); a printer that is off is retried with
 * backoff, 1 s doubling to 60 s, for as long as it takes, and the status page shows what waits and why.
 *
 * Obligations and choices:
 *
 * - Jobs are kept by a PrintJobStore, so a plugin restart still prints what was waiting. The queue does
 *   not care what the store is (the plugin's journal, a file, memory): load, save (insert or replace by
 *   id) and remove.
 * - One lane per printer target: jobs for one printer print in the order they came, one at a time; a
 *   printer that is off holds up only its own receipts.
 * - Each job prints at least once, and never twice unmarked. Before the bytes go out the job is saved as
 *   `sending`; once the printer took them it is removed. No printer tells us which slips it printed, so a
 *   job found `sending` after a restart (the plugin died while the printer was taking it) may be on paper
 *   already: it prints again as a copy, with the `copyMark` bytes first ("补打 REPRINT" in the plugin), so
 *   nobody takes it for a second sale. A missing receipt is worse than a marked copy. The same holds in
 *   one process for an attempt that failed with `printer.write_failed` (the connection dropped while the
 *   bytes were going out): part of the slip may have printed. An attempt that failed before reaching the
 *   printer (unreachable, busy port, permission) prints the original on the retry.
 * - Enqueueing an id that is already waiting returns the waiting job: enqueue is idempotent.
 * - Every failure is retried, not only TransportError: a bad target or a bug shows on the status page with
 *   its message until someone fixes the manifest or discards the job.
 */
import { Clock, SystemClock, TimerHandle } from '../protocol/clock';
import { ProtocolError } from '../protocol/errors';
import { setBounded } from '../protocol/bounded-map';
import { openPrinterOutput } from './outputs';
import { PrinterOutput } from './receipt';

export interface PrintJob {
  /** Unique; enqueueing the same id again is a no-op while the job waits. */
  id: string;
  orderId: string;
  /** ESC/POS bytes, from renderReceipt. */
  bytes: Uint8Array;
  /** Printer target: `tcp://HOST:PORT`, `serial:DEVICE` or `file:PATH`. */
  target: string;
}

export interface PrintFailure {
  code: string;
  message: string;
  /** Clock time of the failed attempt. */
  at: number;
}

/** A job as the store keeps it. */
export interface QueuedPrintJob extends PrintJob {
  enqueuedAt: number;
  attempts: number;
  lastError?: PrintFailure;
  /** An attempt began and has not ended: the printer may have taken the bytes (kept in the store). */
  sending?: boolean;
  /** The job may be on paper already: it prints with the copy mark first. */
  copy?: boolean;
}

/** Where waiting jobs are kept across restarts. Calls may be synchronous or return promises. */
export interface PrintJobStore {
  load(): QueuedPrintJob[] | Promise<QueuedPrintJob[]>;
  /** Inserts or replaces the job with this id. */
  save(job: QueuedPrintJob): void | Promise<void>;
  remove(id: string): void | Promise<void>;
}

/** A PrintJobStore in memory: for tests, and for a plugin that accepts losing waiting receipts on restart. */
export class InMemoryPrintJobStore implements PrintJobStore {
  private readonly jobs = new Map<string, QueuedPrintJob>();

  load(): QueuedPrintJob[] {
    return [...this.jobs.values()].map(copyJob);
  }

  save(job: QueuedPrintJob): void {
    this.jobs.set(job.id, copyJob(job));
  }

  remove(id: string): void {
    this.jobs.delete(id);
  }
}

export interface PrintJobStatus {
  id: string;
  orderId: string;
  target: string;
  enqueuedAt: number;
  attempts: number;
  /** Size of the receipt in bytes. */
  size: number;
  /** Prints marked as a copy: an earlier attempt may have reached the paper (a crash while printing). */
  copy?: boolean;
  lastError?: PrintFailure;
  /** When the next attempt is due, while the printer is failing. */
  nextAttemptAt?: number;
}

export interface PrinterStatus {
  target: string;
  /** Receipts waiting for this printer. */
  waiting: number;
  /** The last attempt's error while the printer is failing; absent once it prints again. */
  lastError?: PrintFailure;
  nextAttemptAt?: number;
  /** For a person: `Printer tcp://… is unreachable (connection refused): …; 2 receipts waiting.` */
  message?: string;
}

export interface PrintQueueStatus {
  /** Every waiting job, per printer in order of printing. */
  jobs: PrintJobStatus[];
  /** Printers with receipts waiting, with the last error while they are failing. */
  printers: PrinterStatus[];
}

export type PrintQueueEvent =
  | { type: 'queued'; job: PrintJobStatus }
  | { type: 'printed'; job: PrintJobStatus }
  | { type: 'failed'; job: PrintJobStatus; error: PrintFailure; retryInMs: number }
  | { type: 'discarded'; job: PrintJobStatus }
  /** The store failed to record a change (the queue goes on; a restart may print a receipt again). */
  | { type: 'store-failed'; jobId: string; message: string };

export interface PrintQueueOptions {
  store?: PrintJobStore;
  clock?: Clock;
  /** Opens the output for a target; default openPrinterOutput. Called once per target. */
  openOutput?: (target: string) => PrinterOutput;
  /** Told about every change; an exception it throws is ignored. */
  onEvent?: (event: PrintQueueEvent) => void;
  /** First retry delay; default 1 s. */
  initialBackoffMs?: number;
  /** Longest retry delay; default 60 s. */
  maxBackoffMs?: number;
  /** Printed receipts remembered for reprint(); default 100. */
  historySize?: number;
  /**
   * Bytes printed before a job that may be on paper already (see `copy`), e.g. a bold "补打 REPRINT"
   * line in the printer's encoding; given the job, whose target says which printer. Default: none, the
   * copy prints as it is.
   */
  copyMark?: (job: QueuedPrintJob) => Uint8Array;
}

/** A job in a lane; `discarded` marks one discarded while it was being sent. */
interface LaneJob extends QueuedPrintJob {
  discarded?: boolean;
}

/** One printer's queue. */
interface Lane {
  target: string;
  output?: PrinterOutput;
  jobs: LaneJob[];
  busy: boolean;
  /** Failed attempts in a row; sets the backoff. */
  failures: number;
  timer?: TimerHandle;
  nextAttemptAt?: number;
  lastError?: PrintFailure;
}

export class PrintQueue {
  private readonly store: PrintJobStore;
  private readonly clock: Clock;
  private readonly openOutput: (target: string) => PrinterOutput;
  private readonly onEvent: (event: PrintQueueEvent) => void;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly historySize: number;
  private readonly copyMark: (job: QueuedPrintJob) => Uint8Array;
  private readonly lanes = new Map<string, Lane>();
  /** Ids waiting or being saved, so a second enqueue of one is a no-op. */
  private readonly known = new Set<string>();
  /** The last printed job of each order, oldest first, for reprint(). */
  private readonly printed = new Map<string, QueuedPrintJob>();
  private readonly running = new Set<Promise<void>>();
  private started = false;
  private stopped = false;
  private reprints = 0;

  constructor(options: PrintQueueOptions = {}) {
    this.store = options.store ?? new InMemoryPrintJobStore();
    this.clock = options.clock ?? new SystemClock();
    this.openOutput = options.openOutput ?? ((target) => openPrinterOutput(target));
    const listener = options.onEvent;
    this.onEvent = (event) => {
      try {
        listener?.(event);
      } catch {
        // A listener's bug must not stop the printing.
      }
    };
    this.initialBackoffMs = options.initialBackoffMs ?? 1_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.historySize = options.historySize ?? 100;
    this.copyMark = options.copyMark ?? (() => new Uint8Array(0));
  }

  /** Loads the jobs the store kept and starts printing. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    for (const job of await this.store.load()) {
      if (this.known.has(job.id)) continue;
      this.known.add(job.id);
      const queued = copyJob(job);
      // The last process died while this job was going out: the printer may have printed it.
      if (queued.sending) {
        queued.sending = false;
        queued.copy = true;
      }
      this.lane(job.target).jobs.push(queued);
    }
    for (const lane of this.lanes.values()) this.kick(lane);
  }

  /** Stops retrying and waits for attempts in progress; waiting jobs stay in the store. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.started = false;
    for (const lane of this.lanes.values()) {
      this.clock.clearTimeout(lane.timer);
      lane.timer = undefined;
      lane.nextAttemptAt = undefined;
    }
    await Promise.all([...this.running]);
  }

  /**
   * Saves the job and returns; the printing happens in the background. Throws ProtocolError for a bad job
   * or target, and whatever the store throws (then the job is not queued).
   */
  async enqueue(job: PrintJob): Promise<PrintJobStatus> {
    checkJob(job);
    // A bad target fails here, for the caller, rather than later in the lane.
    const output = this.lanes.get(job.target)?.output ?? this.openOutput(job.target);
    const waiting = this.findWaiting((j) => j.id === job.id);
    if (waiting) return this.jobStatus(waiting.job, waiting.lane);
    if (this.known.has(job.id)) {
      throw new ProtocolError('printer.job_busy', `Print job ${job.id} is being queued already.`, {
        subject: 'job.id',
      });
    }
    const queued: QueuedPrintJob = {
      id: job.id,
      orderId: job.orderId,
      target: job.target,
      bytes: job.bytes.slice(),
      enqueuedAt: this.clock.now(),
      attempts: 0,
    };
    this.known.add(queued.id);
    try {
      await this.store.save(copyJob(queued));
    } catch (e) {
      this.known.delete(queued.id);
      throw e;
    }
    const lane = this.lane(queued.target);
    lane.output ??= output;
    lane.jobs.push(queued);
    const status = this.jobStatus(queued, lane);
    this.onEvent({ type: 'queued', job: status });
    this.kick(lane);
    return status;
  }

  /**
   * Prints an order's receipt again: the last one printed since this queue started. When the order's
   * receipt is still waiting, that job is returned and nothing is added (it prints once the printer is
   * back). Undefined when the queue has no receipt for the order: render it again and enqueue it.
   */
  async reprint(orderId: string): Promise<PrintJobStatus | undefined> {
    const waiting = this.findWaiting((j) => j.orderId === orderId);
    if (waiting) return this.jobStatus(waiting.job, waiting.lane);
    const last = this.printed.get(orderId);
    if (!last) return undefined;
    const base = last.id.replace(/:reprint:.*$/, '');
    return this.enqueue({
      id: `${base}:reprint:${this.clock.now()}-${++this.reprints}`,
      orderId,
      bytes: last.bytes,
      target: last.target,
    });
  }

  /** Drops a waiting job (e.g. the shop gave up on a broken printer). False when there is no such job. */
  async discard(jobId: string): Promise<boolean> {
    const waiting = this.findWaiting((j) => j.id === jobId);
    if (!waiting) return false;
    const { job, lane } = waiting;
    // The job at the head of a busy lane is being sent; it goes when the attempt ends, whatever the outcome.
    if (lane.busy && lane.jobs[0] === job) {
      job.discarded = true;
    } else {
      lane.jobs.splice(lane.jobs.indexOf(job), 1);
      this.known.delete(job.id);
    }
    await this.removeFromStore(job.id);
    this.onEvent({ type: 'discarded', job: this.jobStatus(job, lane) });
    return true;
  }

  /** Tries the failing printers now instead of at their next backoff (a "try again" button). */
  retryNow(target?: string): void {
    for (const lane of this.lanes.values()) {
      if (target !== undefined && lane.target !== target) continue;
      if (lane.timer === undefined) continue;
      this.clock.clearTimeout(lane.timer);
      lane.timer = undefined;
      lane.nextAttemptAt = undefined;
      this.kick(lane);
    }
  }

  status(): PrintQueueStatus {
    const jobs: PrintJobStatus[] = [];
    const printers: PrinterStatus[] = [];
    for (const lane of this.lanes.values()) {
      const waiting = lane.jobs.filter((j) => !isDiscarded(j));
      for (const job of waiting) jobs.push(this.jobStatus(job, lane));
      if (waiting.length === 0) continue;
      const printer: PrinterStatus = { target: lane.target, waiting: waiting.length };
      if (lane.lastError) printer.lastError = { ...lane.lastError };
      if (lane.nextAttemptAt !== undefined) printer.nextAttemptAt = lane.nextAttemptAt;
      if (lane.lastError) {
        const receipts = waiting.length === 1 ? '1 receipt' : `${waiting.length} receipts`;
        printer.message = `${lane.lastError.message} ${receipts} waiting.`;
      }
      printers.push(printer);
    }
    return { jobs, printers };
  }

  private lane(target: string): Lane {
    let lane = this.lanes.get(target);
    if (!lane) {
      lane = { target, jobs: [], busy: false, failures: 0 };
      this.lanes.set(target, lane);
    }
    return lane;
  }

  /** Starts the lane's worker unless it is running, waiting for its backoff, or the queue is stopped. */
  private kick(lane: Lane): void {
    if (!this.started || this.stopped || lane.busy || lane.timer !== undefined) return;
    const run = this.drain(lane);
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  /** Prints the lane's jobs in order until it is empty or an attempt fails. Never rejects. */
  private async drain(lane: Lane): Promise<void> {
    lane.busy = true;
    try {
      while (!this.stopped && lane.jobs.length > 0) {
        const job = lane.jobs[0];
        if (isDiscarded(job)) {
          this.finish(lane, job);
          continue;
        }
        job.attempts++;
        // Saved before the bytes go out, so that a restart knows this job may be on paper already.
        job.sending = true;
        await this.saveToStore(job);
        if (isDiscarded(job)) {
          // Discarded while it was being saved: it never went out.
          this.finish(lane, job);
          continue;
        }
        try {
          lane.output ??= this.openOutput(lane.target);
          await lane.output.write(job.copy ? this.withCopyMark(job) : job.bytes);
        } catch (e) {
          job.sending = false;
          // The connection dropped while the bytes were going out: part of the slip may be on paper.
          if ((e as { code?: unknown })?.code === 'printer.write_failed') job.copy = true;
          this.failed(lane, job, e);
          return;
        }
        job.sending = false;
        lane.failures = 0;
        lane.lastError = undefined;
        lane.nextAttemptAt = undefined;
        this.finish(lane, job);
        this.remember(job);
        if (!isDiscarded(job)) await this.removeFromStore(job.id);
        this.onEvent({ type: 'printed', job: this.jobStatus(job, lane) });
      }
    } catch (e) {
      // Only a bug gets here; the lane is retried like a failed print rather than left stuck.
      const job = lane.jobs[0];
      if (job) this.failed(lane, job, e);
    } finally {
      lane.busy = false;
    }
  }

  private withCopyMark(job: QueuedPrintJob): Uint8Array {
    let mark: Uint8Array;
    try {
      mark = this.copyMark(copyJob(job));
    } catch {
      // A copy without its mark beats no receipt.
      mark = new Uint8Array(0);
    }
    const out = new Uint8Array(mark.length + job.bytes.length);
    out.set(mark, 0);
    out.set(job.bytes, mark.length);
    return out;
  }

  private failed(lane: Lane, job: LaneJob, error: unknown): void {
    lane.failures++;
    const delay = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** Math.min(lane.failures - 1, 30));
    const failure: PrintFailure = {
      code:
        typeof (error as { code?: unknown })?.code === 'string'
          ? (error as { code: string }).code
          : 'printer.error',
      message: error instanceof Error ? error.message : String(error),
      at: this.clock.now(),
    };
    job.lastError = failure;
    lane.lastError = failure;
    // A job discarded while it was being sent is gone from the store already.
    if (!isDiscarded(job)) void this.saveToStore(job);
    if (this.stopped) return;
    lane.nextAttemptAt = this.clock.now() + delay;
    lane.timer = this.clock.setTimeout(() => {
      lane.timer = undefined;
      lane.nextAttemptAt = undefined;
      this.kick(lane);
    }, delay);
    this.onEvent({ type: 'failed', job: this.jobStatus(job, lane), error: { ...failure }, retryInMs: delay });
  }

  private finish(lane: Lane, job: LaneJob): void {
    lane.jobs.shift();
    this.known.delete(job.id);
  }

  private remember(job: QueuedPrintJob): void {
    setBounded(this.printed, job.orderId, job, this.historySize);
  }

  private findWaiting(match: (job: QueuedPrintJob) => boolean): { job: LaneJob; lane: Lane } | undefined {
    for (const lane of this.lanes.values()) {
      const job = lane.jobs.find((j) => !isDiscarded(j) && match(j));
      if (job) return { job, lane };
    }
    return undefined;
  }

  private jobStatus(job: QueuedPrintJob, lane: Lane): PrintJobStatus {
    const status: PrintJobStatus = {
      id: job.id,
      orderId: job.orderId,
      target: job.target,
      enqueuedAt: job.enqueuedAt,
      attempts: job.attempts,
      size: job.bytes.length,
    };
    if (job.copy) status.copy = true;
    if (job.lastError) status.lastError = { ...job.lastError };
    if (lane.nextAttemptAt !== undefined && lane.jobs.includes(job))
      status.nextAttemptAt = lane.nextAttemptAt;
    return status;
  }

  private async saveToStore(job: QueuedPrintJob): Promise<void> {
    try {
      await this.store.save(copyJob(job));
    } catch (e) {
      this.onEvent({ type: 'store-failed', jobId: job.id, message: (e as Error)?.message ?? String(e) });
    }
  }

  private async removeFromStore(id: string): Promise<void> {
    try {
      await this.store.remove(id);
    } catch (e) {
      this.onEvent({ type: 'store-failed', jobId: id, message: (e as Error)?.message ?? String(e) });
    }
  }
}

function checkJob(job: PrintJob): void {
  const bad = (field: string, what: string) =>
    new ProtocolError('printer.bad_job', `A print job needs ${what}.`, { subject: `job.${field}` });
  if (typeof job?.id !== 'string' || job.id === '') throw bad('id', 'an id');
  if (typeof job.orderId !== 'string' || job.orderId === '') throw bad('orderId', 'an order id');
  if (!(job.bytes instanceof Uint8Array) || job.bytes.length === 0) throw bad('bytes', 'the receipt bytes');
  if (typeof job.target !== 'string') throw bad('target', 'a printer target');
}

function isDiscarded(job: LaneJob): boolean {
  return job.discarded === true;
}

function copyJob(job: QueuedPrintJob): QueuedPrintJob {
  const copy: QueuedPrintJob = {
    id: job.id,
    orderId: job.orderId,
    target: job.target,
    bytes: new Uint8Array(job.bytes),
    enqueuedAt: job.enqueuedAt,
    attempts: job.attempts,
  };
  if (job.lastError) copy.lastError = { ...job.lastError };
  if (job.sending) copy.sending = true;
  if (job.copy) copy.copy = true;
  return copy;
}
