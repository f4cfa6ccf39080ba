/**
 * Reads one print job — the bytes a register sent its receipt printer between two cuts, or until it closed
 * the connection or went quiet — into the order to charge. Pure: bytes in, an order or a ProtocolError
 * out, and nothing else ever thrown (a fuzz test holds it to that).
 *
 * The text comes from our ESC/POS decoder (code pages, GB18030 with and without FS &). The amount is the
 * first capture of the highest-ranked `parse.amount` rule that matches a line not matched by an `ignore`
 * rule (实收, 找零, CHANGE: what the customer gave and got back are never the charge), read by
 * parseAmount, which takes full-width digits and ￥. Rejections, each with a stable code:
 *
 * - `printer_tap.raster_job`: the job prints images (GS v 0, ESC *, GS ( L / GS 8 L) and has no text line
 *   with an amount: "raster job: no text to read". A register printing through a Windows graphics driver
 *   sends these; only its Generic / Text Only driver or a RAW queue gives text.
 * - `printer_tap.no_amount`: no line matches an amount rule.
 * - `printer_tap.ambiguous_amount`: two lines of the winning rank say different amounts.
 * - `printer_tap.bad_amount`: the winning line's amount does not parse (the parseAmount reason is quoted).
 * - `printer_tap.bad_order_id`: the order id rule matched something that is not an order id.
 */
import { decodeEscPos } from '../../printer/escpos-decode';
import { validateOrderId } from '../../protocol/ids';
import { Money, parseAmount } from '../../protocol/money';
import { ProtocolError } from '../../protocol/errors';
import type { PrinterTapParseRules } from './printer-tap.options';

export interface PrinterJob {
  /** The receipt as printed, one entry a line. */
  lines: string[];
  /** Images in the job (raster, bit image, graphics). */
  images: number;
  cuts: number;
}

export interface ReadReceipt {
  amount: Money;
  /** The order number by the rule; undefined when there is no rule or it matched nothing. */
  orderId?: string;
  /** The line the amount was read from, for the status page. */
  amountLine: string;
  lines: string[];
}

const IMAGE_COMMANDS = new Set(['GS v 0', 'ESC *', 'GS ( L', 'GS 8 L', 'FS p', 'GS /']);

/** The job's text lines and what else it holds, through escpos-decode. Never throws. */
export function decodeJob(bytes: Uint8Array, encoding: PrinterTapParseRules['encoding']): PrinterJob {
  const decoded = decodeEscPos(bytes, { encoding });
  let images = 0;
  for (const c of decoded.commands) if (IMAGE_COMMANDS.has(c.name)) images++;
  return { lines: decoded.lines, images, cuts: decoded.cuts };
}

/** True when the job has nothing a person would call a receipt: no printed text and no image. */
export function isEmptyJob(job: PrinterJob): boolean {
  return job.images === 0 && job.lines.every((l) => l.trim() === '');
}

/** Reads the amount (and order id) off a job; throws ProtocolError with one of the codes above. */
export function readReceipt(bytes: Uint8Array, rules: PrinterTapParseRules, subject: string): ReadReceipt {
  const job = decodeJob(bytes, rules.encoding);
  return readLines(job, rules, subject);
}

export function readLines(job: PrinterJob, rules: PrinterTapParseRules, subject: string): ReadReceipt {
  const fail = (code: string, message: string): ProtocolError =>
    new ProtocolError(code, `${subject}: ${message}`, { subject });
  const lines = job.lines.map((l) => l.replace(/\t/g, ' '));
  const ignore = rules.ignore.map((r) => new RegExp(r, 'iu'));
  const candidates = lines.filter((l) => l.trim() !== '' && !ignore.some((re) => re.test(l)));

  for (const rule of rules.amount) {
    const re = new RegExp(rule, 'iu');
    const hits: { line: string; text: string }[] = [];
    for (const line of candidates) {
      const m = re.exec(line);
      if (m && m[1] !== undefined) hits.push({ line, text: m[1].trim() });
    }
    if (hits.length === 0) continue;
    const amounts: { line: string; amount: Money }[] = [];
    for (const hit of hits) {
      try {
        amounts.push({ line: hit.line, amount: parseAmount(hit.text, rules.currency) });
      } catch (e) {
        const reason = e instanceof ProtocolError ? e.message : String(e);
        throw fail(
          'printer_tap.bad_amount',
          `the amount line ${JSON.stringify(hit.line.trim())} does not hold an amount: ${reason}`,
        );
      }
    }
    const distinct = [...new Set(amounts.map((a) => a.amount.value))];
    if (distinct.length > 1) {
      throw fail(
        'printer_tap.ambiguous_amount',
        `several lines of the same rank hold different amounts (${amounts
          .map((a) => JSON.stringify(a.line.trim()))
          .join(', ')}); make parse.amount tell them apart`,
      );
    }
    const orderId = readOrderId(lines, rules, fail);
    return {
      amount: amounts[0].amount,
      ...(orderId !== undefined ? { orderId } : {}),
      amountLine: amounts[0].line.trim(),
      lines: job.lines,
    };
  }
  if (job.images > 0) {
    throw fail(
      'printer_tap.raster_job',
      `raster job: no text to read (${job.images} image${job.images === 1 ? '' : 's'}, ` +
        `${candidates.length} text line${candidates.length === 1 ? '' : 's'}); print through a RAW queue ` +
        `or the Generic / Text Only driver`,
    );
  }
  const shown = candidates.slice(0, 3).map((l) => JSON.stringify(l.trim()));
  throw fail(
    'printer_tap.no_amount',
    `no line matches an amount rule (parse.amount) in ${candidates.length} text line${
      candidates.length === 1 ? '' : 's'
    }${shown.length ? `, starting ${shown.join(', ')}` : ''}`,
  );
}

function readOrderId(
  lines: string[],
  rules: PrinterTapParseRules,
  fail: (code: string, message: string) => ProtocolError,
): string | undefined {
  if (rules.orderId === undefined) return undefined;
  const re = new RegExp(rules.orderId, 'iu');
  for (const line of lines) {
    const m = re.exec(line);
    if (!m || m[1] === undefined) continue;
    const id = m[1].trim();
    try {
      return validateOrderId(id);
    } catch (e) {
      throw fail(
        'printer_tap.bad_order_id',
        `the order id rule read ${JSON.stringify(id)}: ${(e as Error).message}`,
      );
    }
  }
  return undefined;
}
