/**
 * The serial-display adapter (issue 11): captures each order from the bytes the register sends to its
 * customer pole display, without changing the register.
 *
 * The pass-through (serial-io.ts) writes every byte from the register on to the real display unchanged and
 * in order, and only then hands the chunk to the display decoder (`DisplayDecoder`, display-model.ts) of the
 * manifest's protocol. The decoder's changes go to the sale rule, which reads the screen model (an
 * `amountLine` regex over the lines, or the value under the total lamp) and says when a total is final
 * (the total lamp, or `parse.quietMs`, default 1.5 s, without a change; or the sale ending early after the
 * total stood `parse.minShownMs`). Each final total becomes `ctx.onOrder`, one after the other in the order
 * the register showed them.
 *
 * Corrected total: when the sale rule says a final total replaces an earlier one of the same sale (no clear,
 * tendered or change lamp between), the order handed over for the earlier one is first withdrawn with
 * `ctx.onWithdraw(id, 'the display showed a corrected total ¥15.50')`, then the new total is handed over as
 * a new order with its own number (a number read off the screen that equals the withdrawn one gets `-2`,
 * `-3`… so the plugin does not take it for the same order). When the earlier order stands (paid, or its
 * payment cannot be stopped), cannot be withdrawn, or the plugin has no onWithdraw, the new order is still
 * handed over and a CorrectedTotalError says so through env.onError: the sale now has two orders.
 *
 * Order number: the one the sale rule read off the screen (`parse.orderId`), else
 * `<register>-<yyyymmdd>-<seq>` (e.g. `R1-20261129-0007`; local date of the plugin's machine, seq from 1
 * each day). The sequence is journaled in `.serial-display-<register>.seq.json` in the plugin's data folder
 * (the adapter env's `stateDir`; the manifest's folder only when there is none, as in specs),
 * written atomically (temporary file, fsync, rename) BEFORE a number is handed over, SEQUENCE_BLOCK numbers
 * at a time, so a crash never hands out a number twice (it may skip up to a block); a clean stop writes back
 * the last number used, so a restart continues without a gap.
 *
 * Bad input never stops capture: a decoder that throws, an amount that cannot be parsed, an order the
 * plugin refuses are each counted and reported through `ctx.onReject` naming the port; the display keeps
 * receiving every byte.
 *
 * Write-back: a no-op. A customer display cannot be told a payment result (it only shows what the
 * register sends it), and writing anything to it would garble the register's screen.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Clock, TimerHandle } from '../../protocol/clock';
import { formatMoney, Money, parseAmount } from '../../protocol/money';
import type { AdapterEnv } from '../adapter-env';
import { AdapterContext, HostAdapter, OrderResult } from '../host-adapter';
import { CorrectedTotalError } from './corrected-total-error';
import { createDisplayDecoder } from './decoders';
import type { DisplayChange, DisplayDecoder, DisplayDecoderStats, DisplayProtocol } from './display-model';
import { SaleEvent, SaleTracker } from './sale-rule';
import { Led8LampVariant, SerialDisplayOptions, SerialDisplayParseRules } from './serial-display.options';
import { emptySerialIoStats, SerialIoStats, SerialPassThrough } from './serial-io';
import { writeFileDurably } from '../durable-file';

export {
  validateSerialDisplayOptions,
  validateSerialDisplayParse,
  validateSerialDisplayWriteBack,
} from './serial-display.options';

/** A total the sale rule found final: the amount as shown (parsed here) or already as Money. */
export interface SaleTotal {
  amount: string | Money;
  /** The order number read off the screen, when the rule found one. */
  orderId?: string;
  /** Set when this total replaces the sale's previous final total (as shown): withdraw that order first. */
  corrects?: string;
}

/** What the adapter needs of a sale rule (./sale-rule, being written): totals from the screen model. */
export interface SaleRule {
  /** The changes one chunk made; returns the totals that became final with them. */
  push(changes: DisplayChange[], now: number): SaleTotal[];
  /** The line has been quiet for `parse.quietMs`; returns the totals that this makes final. */
  quiet?(now: number): SaleTotal[];
}

export type DisplayDecoderFactory = (
  protocol: DisplayProtocol,
  opts: { lamps?: Led8LampVariant },
) => DisplayDecoder;
export type SaleRuleFactory = (rules: SerialDisplayParseRules, options: SerialDisplayOptions) => SaleRule;

/** How long a shown total must stay unchanged to be final, when the manifest gives no `parse.quietMs`. */
export const DEFAULT_QUIET_MS = 1_500;

/**
 * The real sale rule (./sale-rule's SaleTracker) for a manifest: `parse.amountLine` read over the screen's
 * lines, final after `parse.quietMs` (default 1.5 s) without a change; without `amountLine` a led8 display
 * is read under its total lamp (final when the lamp lights) and any other display with the tracker's
 * default TOTAL/合计/总计/应收 line. `parse.orderId` reads the order number off the screen.
 */
export function createSaleRule(rules: SerialDisplayParseRules, options: SerialDisplayOptions): SaleRule {
  const byLamp = rules.amountLine === undefined && options.protocol === 'led8';
  const tracker = new SaleTracker({
    amountFrom: byLamp ? 'lamp' : 'lines',
    ...(options.lampOrder !== undefined ? { lampOrder: options.lampOrder } : {}),
    ...(rules.amountLine !== undefined ? { amountPattern: new RegExp(rules.amountLine, 'u') } : {}),
    ...(rules.orderId !== undefined ? { orderPattern: new RegExp(rules.orderId, 'u') } : {}),
    finalOn: byLamp ? 'lamp' : 'quiet',
    quietMs: rules.quietMs ?? DEFAULT_QUIET_MS,
    ...(rules.minShownMs !== undefined ? { minShownMs: rules.minShownMs } : {}),
  });
  const finals = (events: SaleEvent[]): SaleTotal[] =>
    events.flatMap((e) =>
      e.kind === 'amount' && e.final
        ? [
            {
              amount: e.amountText,
              ...(e.orderNumber !== undefined ? { orderId: e.orderNumber } : {}),
              ...(e.corrects !== undefined ? { corrects: e.corrects } : {}),
            },
          ]
        : [],
    );
  return {
    push: (changes, now) => finals(tracker.push(changes, now)),
    quiet: (now) => finals(tracker.tick(now)),
  };
}

export interface SerialDisplayManifest {
  register: string;
  options: SerialDisplayOptions;
  parse: SerialDisplayParseRules;
}

export interface SerialDisplayDeps {
  /** The protocol decoder; default ./decoders' createDisplayDecoder. Tests give a stub. */
  createDecoder?: DisplayDecoderFactory;
  /** The sale rule; default createSaleRule above (./sale-rule's SaleTracker). */
  createSaleRule?: SaleRuleFactory;
  /** serialport binding; default the real one. */
  binding?: unknown;
  /** Between attempts to reopen a vanished port; default 2 s. */
  reopenMs?: number;
}

export interface SerialDisplayStats {
  io: SerialIoStats;
  decoder?: DisplayDecoderStats;
  /** Decoders that threw (each replaced by a fresh one). */
  decoderErrors: number;
  saleRuleErrors: number;
  orders: number;
  rejected: number;
  /** Final totals that replaced an earlier total of the same sale. */
  corrections: number;
  /** What ctx.onWithdraw answered for the orders those replaced (failed: it threw; unsupported: no onWithdraw). */
  withdrawals: WithdrawalStats;
}

export interface WithdrawalStats {
  canceled: number;
  stands: number;
  unknown: number;
  failed: number;
  unsupported: number;
}

/**
 * Order numbers are reserved this many at a time: one fsync per block instead of one per order (it was
 * most of what the display added to capture → offer: docs/BENCHMARKS.md). A crash skips at most the rest
 * of the block; a clean stop gives it back.
 */
export const SEQUENCE_BLOCK = 10;

interface SequenceFile {
  date: string;
  seq: number;
}

export class SerialDisplayAdapter implements HostAdapter {
  readonly kind = 'serial-display';
  private io?: SerialPassThrough;
  private decoder?: DisplayDecoder;
  private rule?: SaleRule;
  private ctx?: AdapterContext;
  private quietTimer?: TimerHandle;
  /** Orders are handed over one after the other, in the order they were shown. */
  private queue: Promise<void> = Promise.resolve();
  private counts = { decoderErrors: 0, saleRuleErrors: 0, orders: 0, rejected: 0, corrections: 0 };
  private withdrawals: WithdrawalStats = { canceled: 0, stands: 0, unknown: 0, failed: 0, unsupported: 0 };
  /** The orders handed over for the current sale's totals, the latest last (a correction adds one). */
  private saleOrders: string[] = [];
  /** The stats of decoders replaced after they failed, so the totals cover the whole run. */
  private retired: DisplayDecoderStats = { bytes: 0, unknownCommands: 0, garbage: 0 };
  private readonly source: string;
  /** Today's numbers: the last handed out and the highest the journal has reserved. */
  private sequence?: { date: string; last: number; reserved: number };

  constructor(
    readonly manifest: SerialDisplayManifest,
    private readonly env: {
      baseDir: string;
      stateDir?: string;
      clock: Clock;
      onError?: (error: Error) => void;
    },
    private readonly deps: SerialDisplayDeps = {},
  ) {
    this.source = `serial:${manifest.options.input}`;
  }

  /** The sequence journal: `.serial-display-<register>.seq.json` in the state folder. */
  get sequenceFile(): string {
    const safe = this.manifest.register.replace(/[^A-Za-z0-9._-]/g, '_');
    return path.join(this.env.stateDir ?? this.env.baseDir, `.serial-display-${safe}.seq.json`);
  }

  stats(): SerialDisplayStats {
    return {
      io: { ...(this.io?.stats ?? emptySerialIoStats()) },
      ...(this.decoder ? { decoder: addStats(this.retired, this.decoder.stats) } : {}),
      ...this.counts,
      withdrawals: { ...this.withdrawals },
    };
  }

  /**
   * A decoder exists for the protocol, and the ports open with the manifest's settings (then are let go);
   * a port the adapter this one replaces holds in this process counts as working (serial-io.ts).
   */
  async probe(): Promise<void> {
    this.makeDecoder();
    this.makeSaleRule();
    await this.makeIo(() => undefined).probe();
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.io) throw new Error('the serial-display adapter is already started');
    this.ctx = ctx;
    this.decoder = this.makeDecoder();
    this.rule = this.makeSaleRule();
    const io = this.makeIo((bytes) => this.onBytes(bytes));
    this.io = io;
    try {
      await io.start();
    } catch (e) {
      this.io = undefined;
      throw e;
    }
  }

  /** A display cannot be told a result: nothing to do, and so trivially idempotent. */
  async writeBack(result: OrderResult): Promise<void> {
    void result;
  }

  async stop(): Promise<void> {
    this.env.clock.clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    const io = this.io;
    this.io = undefined;
    await io?.stop();
    await this.queue;
    await this.releaseSequence();
  }

  private makeIo(onChunk: (bytes: Uint8Array) => void): SerialPassThrough {
    const { input, display, line, forwardGapMs } = this.manifest.options;
    return new SerialPassThrough(
      {
        input,
        ...(display !== undefined ? { display } : {}),
        line,
        reopenMs: this.deps.reopenMs,
        ...(forwardGapMs !== undefined ? { forwardGapMs } : {}),
      },
      { clock: this.env.clock, onChunk, onError: this.env.onError, binding: this.deps.binding },
    );
  }

  private makeDecoder(): DisplayDecoder {
    const { protocol, lamps } = this.manifest.options;
    const create = this.deps.createDecoder ?? createDisplayDecoder;
    return create(protocol, lamps !== undefined ? { lamps } : {});
  }

  private makeSaleRule(): SaleRule {
    return (this.deps.createSaleRule ?? createSaleRule)(this.manifest.parse, this.manifest.options);
  }

  /**
   * Called after the bytes went to the display: decode, apply the sale rule, restart the quiet timer. A
   * decoder that throws is a bug whose state can no longer be trusted: it is replaced by a fresh one (a
   * blank screen, as after a clear), so one bad moment cannot end capture until a restart.
   */
  private onBytes(bytes: Uint8Array): void {
    const decoder = this.decoder!;
    const rule = this.rule!;
    let totals: SaleTotal[];
    try {
      let changes: DisplayChange[];
      try {
        changes = decoder.push(bytes);
      } catch (e) {
        this.counts.decoderErrors++;
        this.retired = addStats(this.retired, decoder.stats);
        this.decoder = this.makeDecoder();
        this.reject(
          'serial_display.decoder_failed',
          `the ${decoder.protocol} decoder failed on ${bytes.length} bytes (${message(e)}); it starts again ` +
            'from a blank screen',
        );
        return;
      }
      try {
        totals = rule.push(changes, this.env.clock.now());
      } catch (e) {
        this.counts.saleRuleErrors++;
        this.reject('serial_display.sale_rule_failed', `the sale rule failed: ${message(e)}`);
        return;
      }
    } finally {
      this.armQuiet();
    }
    for (const total of totals) this.enqueue(total);
  }

  private armQuiet(): void {
    const quietMs = this.manifest.parse.quietMs ?? DEFAULT_QUIET_MS;
    if (!this.rule?.quiet) return;
    this.env.clock.clearTimeout(this.quietTimer);
    this.quietTimer = this.env.clock.setTimeout(() => {
      this.quietTimer = undefined;
      if (!this.io) return;
      try {
        for (const total of this.rule!.quiet!(this.env.clock.now())) this.enqueue(total);
      } catch (e) {
        this.counts.saleRuleErrors++;
        this.reject('serial_display.sale_rule_failed', `the sale rule failed: ${message(e)}`);
      }
    }, quietMs);
  }

  private enqueue(total: SaleTotal): void {
    this.queue = this.queue.then(() => this.handOver(total)).catch(() => undefined);
  }

  private async handOver(total: SaleTotal): Promise<void> {
    const { currency } = this.manifest.parse;
    // A total that corrects nothing starts a new sale; one that does replaces the sale's latest order.
    if (total.corrects === undefined) this.saleOrders = [];
    const replaced = total.corrects !== undefined ? this.saleOrders.at(-1) : undefined;
    let amount: Money;
    try {
      amount = typeof total.amount === 'string' ? parseAmount(total.amount, currency) : total.amount;
    } catch (e) {
      // The earlier total is wrong even when the correction cannot be read: it must not be charged.
      if (replaced !== undefined) await this.withdraw(replaced, JSON.stringify(total.amount));
      this.reject('serial_display.bad_amount', `the total ${JSON.stringify(total.amount)}: ${message(e)}`);
      return;
    }
    if (replaced !== undefined) await this.withdraw(replaced, formatMoney(amount, { symbol: true }));
    let orderId: string;
    try {
      orderId = total.orderId ?? (await this.nextOrderId());
    } catch (e) {
      this.reject('serial_display.sequence_failed', `cannot journal the order sequence: ${message(e)}`);
      return;
    }
    // The screen may show the same order number with the corrected total: the plugin would take the same
    // id for the same order, so the correction gets its own.
    if (this.saleOrders.includes(orderId)) orderId = `${orderId}-${this.saleOrders.length + 1}`;
    try {
      await this.ctx!.onOrder({
        orderId,
        registerId: this.manifest.register,
        amount,
        source: this.source,
      });
      this.counts.orders++;
      this.saleOrders.push(orderId);
    } catch (e) {
      this.reject('serial_display.order_not_taken', `order ${orderId}: ${message(e)}`);
    }
  }

  /**
   * Takes back the order a corrected total (`shown`: ¥15.50, or the unreadable text) replaces. Whatever the
   * plugin answers, the corrected total is handed over next; when the old order is kept, support is told
   * that the sale now has two orders.
   */
  private async withdraw(orderId: string, shown: string): Promise<void> {
    this.counts.corrections++;
    const reason = `the display showed a corrected total ${shown}`;
    const onWithdraw = this.ctx?.onWithdraw;
    if (!onWithdraw) {
      this.withdrawals.unsupported++;
      this.problem(
        'serial_display.cannot_withdraw',
        orderId,
        `order ${orderId} was replaced by a corrected total ${shown} in the same sale, but this plugin ` +
          `cannot withdraw orders: cancel ${orderId} by hand so the customer is not charged twice`,
      );
      return;
    }
    let answer: 'canceled' | 'stands' | 'unknown';
    try {
      answer = await onWithdraw.call(this.ctx, orderId, reason);
    } catch (e) {
      this.withdrawals.failed++;
      this.problem(
        'serial_display.withdraw_failed',
        orderId,
        `order ${orderId} was replaced by a corrected total ${shown}, but withdrawing it failed ` +
          `(${message(e)}): cancel ${orderId} by hand so the customer is not charged twice`,
        e,
      );
      return;
    }
    this.withdrawals[answer]++;
    if (answer === 'stands') {
      this.problem(
        'serial_display.corrected_after_payment',
        orderId,
        `order ${orderId} is already paid (or its payment could not be stopped) and stands; the corrected ` +
          `total ${shown} of the same sale is offered as a separate order: settle the difference with the ` +
          'customer, or cancel the new order',
      );
    }
  }

  private problem(code: string, orderId: string, text: string, cause?: unknown): void {
    try {
      this.env.onError?.(
        new CorrectedTotalError(code, `${this.source}: ${text}`, {
          subject: orderId,
          ...(cause !== undefined ? { cause } : {}),
        }),
      );
    } catch {
      // A reporter that fails must not stop capture.
    }
  }

  /** `<register>-<yyyymmdd>-<seq>`, the sequence journaled before the number is used. */
  private async nextOrderId(): Promise<string> {
    const date = localDate(this.env.clock.now());
    if (!this.sequence) this.sequence = await this.loadSequence(date);
    if (this.sequence.date !== date) this.sequence = { date, last: 0, reserved: 0 };
    const seq = this.sequence.last + 1;
    if (seq > this.sequence.reserved) {
      await this.saveSequence(date, seq + SEQUENCE_BLOCK - 1);
      this.sequence.reserved = seq + SEQUENCE_BLOCK - 1;
    }
    this.sequence.last = seq;
    return `${this.manifest.register}-${date}-${String(seq).padStart(4, '0')}`;
  }

  /** Where the numbers stand after the journal: every number up to its `seq` may have been handed out. */
  private async loadSequence(date: string): Promise<{ date: string; last: number; reserved: number }> {
    let onDisk: SequenceFile | undefined;
    try {
      onDisk = JSON.parse(await fs.readFile(this.sequenceFile, 'utf8')) as SequenceFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const used = onDisk && onDisk.date === date && Number.isInteger(onDisk.seq) ? onDisk.seq : 0;
    return { date, last: used, reserved: used };
  }

  /** Written atomically and durably (durable-file.ts: temporary file, fsync, rename, folder fsync). */
  private async saveSequence(date: string, seq: number): Promise<void> {
    await writeFileDurably(this.sequenceFile, JSON.stringify({ date, seq } satisfies SequenceFile));
  }

  /** On a clean stop the numbers reserved but not handed out are given back: no gap after a restart. */
  private async releaseSequence(): Promise<void> {
    const s = this.sequence;
    if (!s || s.last >= s.reserved) return;
    try {
      await this.saveSequence(s.date, s.last);
      s.reserved = s.last;
    } catch (e) {
      // Keeping the reservation only costs a gap in the numbers.
      this.env.onError?.(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private reject(code: string, text: string): void {
    this.counts.rejected++;
    try {
      this.ctx?.onReject({ subject: this.source, code, message: `${this.source}: ${text}` });
    } catch {
      // A reporter that fails must not stop capture.
    }
  }
}

export function createSerialDisplayAdapter(
  manifest: SerialDisplayManifest,
  env: AdapterEnv,
  deps: SerialDisplayDeps = {},
): SerialDisplayAdapter {
  return new SerialDisplayAdapter(
    manifest,
    { baseDir: env.baseDir, stateDir: env.stateDir, clock: env.clock, onError: env.onError },
    deps,
  );
}

function localDate(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}`;
}

function addStats(a: DisplayDecoderStats, b: DisplayDecoderStats): DisplayDecoderStats {
  return {
    bytes: a.bytes + b.bytes,
    unknownCommands: a.unknownCommands + b.unknownCommands,
    garbage: a.garbage + b.garbage,
  };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
