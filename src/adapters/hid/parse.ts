/**
 * Pure decoding for the hid adapter: input reports → message bytes → CapturedOrder, or a rejection that
 * says exactly what was wrong. No I/O and no timers: the adapter feeds reports in and, in `quiet` mode,
 * calls flush() when its timer says the device has been quiet long enough.
 *
 * 1. A report becomes data bytes (`reportData`):
 *    - `hid-pos`: a HID-POS barcode report as node-hid hands it over: byte 0 the report id, byte 1 the
 *      number n of data bytes, then the n data bytes, then padding up to the report size. A report shorter
 *      than 2 bytes, or one whose n runs past its end, is rejected (`hid.bad_report`), never read partly.
 *    - `ascii`: every byte of the report except NUL (0x00), which pads fixed-size reports.
 * 2. Data bytes are assembled into messages by `endOfMessage`: at each CR (`CR`) or LF (`LF`), one message
 *    per report (`report`), or whatever came before a quiet time (`quiet`, flush() from the adapter). A
 *    message longer than MAX_MESSAGE_BYTES is rejected (`hid.message_too_long`) and skipped to its end.
 *    Messages that are empty after trimming spaces, CR and LF (the LF of a CR LF suffix) are ignored.
 * 3. A message is UTF-8 text (`hid.not_text` if not). The `amount` regex's group `amount` (else its first
 *    group) is read with parseAmount in the manifest's currency (its money.* errors are passed on as they
 *    are); the `orderId` regex's group `orderId` (else first) must be a valid order id (order.bad_id).
 *    No match is `hid.no_amount` / `hid.no_order_id`, quoting the message.
 */
import { ProtocolError } from '../../protocol/errors';
import { validateOrderId } from '../../protocol/ids';
import { parseAmount } from '../../protocol/money';
import { CapturedOrder, RejectedInput } from '../host-adapter';
import { HidEndOfMessage, HidParseRules, HidReportFormat } from './hid.options';

/** Longest message worth reading; a scanner's longest 2D code is well below this. */
export const MAX_MESSAGE_BYTES = 4096;
const CR = 0x0d;
const LF = 0x0a;

/** The data bytes one input report carries; throws ProtocolError `hid.bad_report`. */
export function reportData(report: Uint8Array, format: HidReportFormat): Buffer {
  const bytes = Buffer.from(report.buffer, report.byteOffset, report.byteLength);
  if (format === 'ascii') return Buffer.from(bytes.filter((b) => b !== 0));
  if (bytes.length < 2) {
    throw new ProtocolError(
      'hid.bad_report',
      `A HID-POS report must have a report id and a length byte; got ${bytes.length} byte${bytes.length === 1 ? '' : 's'} (${hexOf(bytes)}).`,
    );
  }
  const n = bytes[1];
  if (2 + n > bytes.length) {
    throw new ProtocolError(
      'hid.bad_report',
      `A HID-POS report says it carries ${n} data bytes but has only ${bytes.length - 2} after its length byte (${hexOf(bytes)}); is parse.report right for this device?`,
    );
  }
  return Buffer.from(bytes.subarray(2, 2 + n));
}

export interface CompiledHidRules {
  rules: HidParseRules;
  amount: RegExp;
  orderId: RegExp;
}

export function compileHidRules(rules: HidParseRules): CompiledHidRules {
  return { rules, amount: new RegExp(rules.amount, 'u'), orderId: new RegExp(rules.orderId, 'u') };
}

/** One message (without its terminator) as an order; throws ProtocolError naming what is wrong. */
export function parseMessage(
  bytes: Uint8Array,
  compiled: CompiledHidRules,
  registerId: string,
  source: string,
): CapturedOrder {
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ProtocolError(
      'hid.not_text',
      `The device sent ${bytes.length} bytes that are not UTF-8 text (${hexOf(bytes)}).`,
    );
  }
  const message = decoded.replace(/^[\s\0]+|[\s\0]+$/g, '');
  const amountText = capture(compiled.amount, message, 'amount');
  if (amountText === undefined) {
    throw new ProtocolError(
      'hid.no_amount',
      `No amount in ${quoteMessage(message)}: parse.amount /${compiled.rules.amount}/ does not match it.`,
      { subject: 'amount' },
    );
  }
  const orderText = capture(compiled.orderId, message, 'orderId');
  if (orderText === undefined) {
    throw new ProtocolError(
      'hid.no_order_id',
      `No order number in ${quoteMessage(message)}: parse.orderId /${compiled.rules.orderId}/ does not match it.`,
      { subject: 'orderId' },
    );
  }
  const amount = parseAmount(amountText, compiled.rules.currency);
  const orderId = validateOrderId(orderText);
  return { orderId, registerId, amount, source };
}

function capture(re: RegExp, text: string, name: string): string | undefined {
  const m = re.exec(text);
  if (!m) return undefined;
  return m.groups?.[name] ?? m[1];
}

export type HidOutcome = { kind: 'order'; order: CapturedOrder } | { kind: 'reject'; reject: RejectedInput };

/**
 * Reports in, outcomes out, in the order the messages ended. One per device connection; after a device
 * is lost, flush() and keep using it (the partial message is rejected, not glued to the next one).
 */
export class HidDecoder {
  private readonly compiled: CompiledHidRules;
  private readonly end: HidEndOfMessage;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** True after an over-long message, until its terminator: those bytes are dropped. */
  private skipping = false;

  constructor(
    rules: HidParseRules,
    private readonly registerId: string,
    private readonly source: string,
  ) {
    this.compiled = compileHidRules(rules);
    this.end = rules.endOfMessage;
  }

  /** Bytes received but not yet part of a finished message. */
  get pendingBytes(): number {
    return this.pendingLength;
  }

  report(report: Uint8Array): HidOutcome[] {
    let data: Buffer;
    try {
      data = reportData(report, this.compiled.rules.report);
    } catch (e) {
      return [this.rejection(e)];
    }
    const out: HidOutcome[] = [];
    if (this.end === 'report') {
      this.append(data, out);
      this.finish(out);
      return out;
    }
    if (this.end === 'quiet') {
      this.append(data, out);
      return out;
    }
    const terminator = this.end === 'CR' ? CR : LF;
    let from = 0;
    for (let at = data.indexOf(terminator, from); at >= 0; at = data.indexOf(terminator, from)) {
      this.append(data.subarray(from, at), out);
      this.finish(out);
      from = at + 1;
    }
    this.append(data.subarray(from), out);
    return out;
  }

  /**
   * Ends the message in progress: in `quiet` mode it is read as a message (the adapter calls this after
   * the quiet time); in the other modes the input ended without a terminator, so it is rejected
   * (`hid.incomplete_message`). Nothing pending: nothing happens.
   */
  flush(): HidOutcome[] {
    const out: HidOutcome[] = [];
    if (this.end === 'quiet') {
      this.finish(out);
      return out;
    }
    const length = this.pendingLength;
    const wasSkipping = this.skipping;
    this.reset();
    if (length > 0 && !wasSkipping) {
      out.push(
        this.reject(
          'hid.incomplete_message',
          `${length} byte${length === 1 ? '' : 's'} came without the end of message (${this.end}) before the input ended; they were dropped.`,
        ),
      );
    }
    return out;
  }

  private append(data: Buffer, out: HidOutcome[]): void {
    if (this.skipping || data.length === 0) return;
    if (this.pendingLength + data.length > MAX_MESSAGE_BYTES) {
      this.reset();
      // In quiet and report modes the message ends with this data; otherwise skip to the terminator.
      this.skipping = this.end === 'CR' || this.end === 'LF';
      out.push(
        this.reject(
          'hid.message_too_long',
          `A message ran past ${MAX_MESSAGE_BYTES} bytes without an end (${this.end}); it was dropped. Is parse.endOfMessage right for this device?`,
        ),
      );
      return;
    }
    this.pending.push(data);
    this.pendingLength += data.length;
  }

  private finish(out: HidOutcome[]): void {
    const bytes = Buffer.concat(this.pending);
    const wasSkipping = this.skipping;
    this.reset();
    if (wasSkipping) return;
    if (isBlank(bytes)) return;
    try {
      out.push({
        kind: 'order',
        order: parseMessage(bytes, this.compiled, this.registerId, this.source),
      });
    } catch (e) {
      out.push(this.rejection(e));
    }
  }

  private reset(): void {
    this.pending = [];
    this.pendingLength = 0;
    this.skipping = false;
  }

  private rejection(e: unknown): HidOutcome {
    if (e instanceof ProtocolError) return this.reject(e.code, e.message);
    throw e;
  }

  private reject(code: string, message: string): HidOutcome {
    return { kind: 'reject', reject: { subject: this.source, code, message } };
  }
}

/** All reports of a recording, then the end of input (flush): every outcome, in order. */
export function decodeReports(
  reports: readonly Uint8Array[],
  rules: HidParseRules,
  registerId: string,
  source: string,
): HidOutcome[] {
  const decoder = new HidDecoder(rules, registerId, source);
  return [...reports.flatMap((r) => decoder.report(r)), ...decoder.flush()];
}

function isBlank(bytes: Buffer): boolean {
  return bytes.every((b) => b === 0x20 || b === 0x09 || b === CR || b === LF || b === 0);
}

function quoteMessage(message: string): string {
  return JSON.stringify(message.length > 80 ? `${message.slice(0, 77)}…` : message);
}

function hexOf(bytes: Uint8Array): string {
  const shown = Array.from(bytes.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return bytes.length > 16 ? `${shown} …` : shown || 'no bytes';
}
