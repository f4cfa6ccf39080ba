/**
 * The sale (amount) rule for the serial-display adapter (issue 11). It reads the decoded display model, never
 * raw bytes: the amount is a regex over the screen's lines, or the value shown under the `total` lamp (LED
 * displays). A total becomes final on the total lamp, a line rule, or a quiet time. A clear (CLR, ESC @) or
 * the tendered/change lamp ends the sale. Pure: time comes in as ms.
 *
 * What a cashier expects, rule by rule:
 * - The same total shown again in one sale is not a new order.
 * - Quiet time, ended early: a total read from the lines that stood unchanged for at least `minShownMs` and
 *   is then ended by a clear or the tendered/change lamp is final at that moment: the register finished the
 *   sale before the quiet time was up (a fast cashier), and the shown total is what the customer owes.
 *   Shown shorter than that, it was a flash while the register redrew; lines that replace it (the next item)
 *   mean the sale went on, so it is not final, and a total no longer on the screen is never made final later.
 * - Corrected total: a different total becoming final in the same sale (no clear, tendered or change lamp in
 *   between) carries `corrects`, the total it replaces: the cashier added or voided an item after the total
 *   was shown, and the earlier order must be taken back.
 */
import type { DisplayChange, DisplayLamp, DisplayScreen } from './display-model';

export interface SaleRuleOptions {
  /** Where the amount is read: `lines` (regex over the screen) or `lamp` (the value under the total lamp). */
  amountFrom?: 'lines' | 'lamp';
  /** lines: finds the amount; the named group `amount` or group 1 is the amount. Default TOTAL/合计/总计/应收. */
  amountPattern?: RegExp | string;
  /** When a total is final. Default `lamp` when amountFrom is `lamp`, else `quiet`. */
  finalOn?: 'lamp' | 'line' | 'quiet';
  /** finalOn `line`: the total is final when this matches a line of the screen. */
  finalLinePattern?: RegExp | string;
  /** finalOn `quiet`: ms without any display change after which the shown total is final. Default 1500. */
  quietMs?: number;
  /**
   * finalOn `quiet`: a total shown unchanged at least this long is final when the sale ends (clear, tendered or
   * change lamp) before the quiet time is up. Default 500. At quietMs or more it never applies.
   */
  minShownMs?: number;
  /** lamp: whether the register lights the lamp before the value (most) or after it (the LED8N class). */
  lampOrder?: 'lamp-first' | 'value-first';
  /** Finds an order number on the screen: the named group `order` or group 1. */
  orderPattern?: RegExp | string;
}

export type SaleEvent =
  | {
      kind: 'amount';
      amountText: string;
      final: boolean;
      orderNumber?: string;
      /** A final total that replaces this earlier final total of the same sale. */
      corrects?: string;
      at: number;
    }
  | { kind: 'sale-ended'; reason: 'clear' | 'tendered' | 'change'; at: number };

export const DEFAULT_MIN_SHOWN_MS = 500;
export const DEFAULT_AMOUNT_PATTERN = /(?:TOTAL|合计|总计|应收)\D*?(?<amount>\d+(?:[.,]\d{1,3})?)/i;
const NUMBER = /-?\d+(?:[.,]\d+)?/;

const toRegExp = (p: RegExp | string | undefined): RegExp | undefined =>
  p === undefined ? undefined : typeof p === 'string' ? new RegExp(p, 'i') : p;

function firstMatch(pattern: RegExp, lines: string[], group: string): string | undefined {
  for (const line of lines) {
    const m = pattern.exec(line);
    if (m) return (m.groups?.[group] ?? m[1] ?? m[0]).trim();
  }
  return undefined;
}

export class SaleTracker {
  private readonly amountFrom: 'lines' | 'lamp';
  private readonly amountPattern: RegExp;
  private readonly finalOn: 'lamp' | 'line' | 'quiet';
  private readonly finalLinePattern?: RegExp;
  private readonly quietMs: number;
  private readonly minShownMs: number;
  private readonly lampOrder: 'lamp-first' | 'value-first';
  private readonly orderPattern?: RegExp;

  private candidate: string | null = null;
  private finalText: string | null = null;
  private lastChangeAt = 0;
  /** When the current candidate appeared on the screen. */
  private shownSince = 0;
  private active = false;
  private screen: DisplayScreen | null = null;

  constructor(options: SaleRuleOptions = {}) {
    this.amountFrom = options.amountFrom ?? 'lines';
    this.amountPattern = toRegExp(options.amountPattern) ?? DEFAULT_AMOUNT_PATTERN;
    this.finalOn = options.finalOn ?? (this.amountFrom === 'lamp' ? 'lamp' : 'quiet');
    this.finalLinePattern = toRegExp(options.finalLinePattern);
    this.quietMs = options.quietMs ?? 1500;
    this.minShownMs = options.minShownMs ?? DEFAULT_MIN_SHOWN_MS;
    this.lampOrder = options.lampOrder ?? 'lamp-first';
    this.orderPattern = toRegExp(options.orderPattern);
  }

  /** Feeds decoder changes seen at `now` (ms). */
  push(changes: readonly DisplayChange[], now: number): SaleEvent[] {
    const events: SaleEvent[] = [];
    for (const change of changes) this.apply(change, now, events);
    return events;
  }

  /** Call when time passes with no bytes: makes a quiet-time total final. */
  tick(now: number): SaleEvent[] {
    const events: SaleEvent[] = [];
    if (this.awaitingQuiet() && now - this.lastChangeAt >= this.quietMs) this.finalize(now, events);
    return events;
  }

  private apply(change: DisplayChange, now: number, events: SaleEvent[]): void {
    if (change.kind === 'printer') return;
    this.lastChangeAt = now;
    // A sale's end is judged on the screen it ended (its order number), before the clear blanks it.
    const ends =
      change.kind === 'clear'
        ? 'clear'
        : change.kind === 'lamp' && (change.lamp === 'tendered' || change.lamp === 'change')
          ? change.lamp
          : null;
    if (ends !== null) this.end(ends, now, events);
    this.screen = change.screen;
    if (ends !== null || change.kind === 'clear') return;
    const amount = this.readAmount(change.kind, change.screen);
    if (amount === undefined && this.amountFrom === 'lines') {
      // The total is gone from the screen (the next item replaced it): it can no longer become final.
      this.candidate = null;
    } else if (amount !== undefined && amount !== this.candidate) {
      this.candidate = amount;
      this.shownSince = now;
      this.active = true;
      if (amount !== this.finalText && !this.isFinalNow(change.screen)) {
        events.push({ kind: 'amount', amountText: amount, final: false, ...this.order(), at: now });
      }
    }
    if (this.candidate !== null && this.candidate !== this.finalText && this.isFinalNow(change.screen)) {
      this.finalize(now, events);
    }
  }

  private readAmount(kind: 'text' | 'lamp', screen: DisplayScreen): string | undefined {
    if (this.amountFrom === 'lines') return firstMatch(this.amountPattern, screen.lines, 'amount');
    if (screen.lamp !== 'total') return undefined;
    // value-first: the value belongs to the lamp that follows it, so only the lamp change reads it;
    // lamp-first: the lamp comes on over the previous phase's value, so only the text after it is read.
    if ((this.lampOrder === 'value-first') !== (kind === 'lamp')) return undefined;
    return NUMBER.exec(screen.lines.join(' '))?.[0];
  }

  /** A quiet-time total is on the screen and not final yet. */
  private awaitingQuiet(): boolean {
    return this.finalOn === 'quiet' && this.candidate !== null && this.candidate !== this.finalText;
  }

  private isFinalNow(screen: DisplayScreen): boolean {
    if (this.finalOn === 'lamp') return screen.lamp === 'total';
    if (this.finalOn === 'line') {
      return this.finalLinePattern !== undefined && screen.lines.some((l) => this.finalLinePattern!.test(l));
    }
    return false;
  }

  private finalize(now: number, events: SaleEvent[]): void {
    if (this.candidate === null) return;
    const corrects = this.finalText;
    this.finalText = this.candidate;
    this.active = true;
    events.push({
      kind: 'amount',
      amountText: this.candidate,
      final: true,
      ...this.order(),
      ...(corrects !== null ? { corrects } : {}),
      at: now,
    });
  }

  private order(): { orderNumber?: string } {
    if (!this.orderPattern || !this.screen) return {};
    const n = firstMatch(this.orderPattern, this.screen.lines, 'order');
    return n ? { orderNumber: n } : {};
  }

  private end(reason: 'clear' | DisplayLamp, now: number, events: SaleEvent[]): void {
    // The sale ended before the quiet time was up: a total that stood long enough is what is owed.
    if (this.awaitingQuiet() && now - this.shownSince >= this.minShownMs) this.finalize(now, events);
    if (this.active) {
      events.push({ kind: 'sale-ended', reason: reason as 'clear' | 'tendered' | 'change', at: now });
    }
    this.active = false;
    this.candidate = null;
    this.finalText = null;
  }
}
