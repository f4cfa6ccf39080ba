/**
 * printer-tap's paid footer (`writeBack.footer`): a short print on the tapped printer once an order is
 * paid, so the paper the customer holds says so:
 *
 *   --------------------------------
 *   已支付 ￥12.34                         (PAID $12.34 in cp437)
 *   支付方式              Alipay 支付宝
 *   支付单号                  pay_8Hc2…
 *   时间          2026-11-29 11:39:05 +08:00
 *             [QR: the payment id]
 *   (footer.lines)
 *   (cut)
 *
 * Laid out with the receipt's layout helpers (columns as the printer counts them) and rendered by the
 * receipt renderer (src/printer/render.ts), so the QR code and the encoding are built in one place.
 *
 * The journal makes writeBack idempotent across restarts: the ids of orders whose footer was printed,
 * in `<stateDir>/.printer-tap-<register>.footers.json`. An order is written to it *before* its footer
 * is sent and taken out again if sending fails: a crash in between leaves the footer unprinted rather than
 * printed twice (a second "paid" slip with a QR code would make a cashier think the customer paid twice).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { machineTimeZone, zonedIso } from '../../protocol/local-time';
import {
  formatTime,
  ReceiptLine,
  receiptMoney,
  sanitize,
  twoColumns,
  wrap,
  align,
} from '../../printer/layout';
import { renderLines } from '../../printer/render';
import type { OrderResult } from '../host-adapter';
import type { PrinterTapEncoding, PrinterTapFooter } from './printer-tap.options';
import { writeFileDurably } from '../durable-file';

/** How many printed order ids the journal keeps: far more than are retried at once. */
const JOURNAL_KEEP = 1000;

const LABELS = {
  chinese: { paid: '已支付', method: '支付方式', payment: '支付单号', time: '时间' },
  latin: { paid: 'PAID', method: 'Method', payment: 'Payment', time: 'Time' },
} as const;

/** The provider as the paper names it; a code page without Hanzi (cp437) gets the Latin name only. */
function providerName(brand: string, encoding: PrinterTapEncoding): string {
  const latin = encoding === 'cp437';
  if (brand === 'alipay') return latin ? 'Alipay' : 'Alipay 支付宝';
  if (brand === 'wechat') return latin ? 'WeChat Pay' : 'WeChat Pay 微信支付';
  return brand;
}

/** The footer's lines for a paid result. */
export function footerLines(
  result: OrderResult,
  footer: PrinterTapFooter,
  encoding: PrinterTapEncoding,
): ReceiptLine[] {
  const { width } = footer;
  const labels = encoding === 'cp437' ? LABELS.latin : LABELS.chinese;
  const clean = (s: string) => sanitize(s, encoding);
  const lines: ReceiptLine[] = [{ kind: 'text', text: '-'.repeat(width), bold: false }];
  const text = (t: string, bold = false) => lines.push({ kind: 'text', text: t, bold });
  const paid = `${labels.paid} ${receiptMoney(result.amount, encoding, true)}`;
  for (const l of wrap(clean(paid), width, encoding)) text(align(l, width, 'left', encoding), true);
  const payment = result.payment;
  if (payment) {
    const brand = clean(
      providerName(String(payment.method?.brand ?? payment.method?.type ?? 'wallet'), encoding),
    );
    for (const l of twoColumns(labels.method, brand, width, encoding)) text(l);
    for (const l of twoColumns(labels.payment, clean(payment.id), width, encoding)) text(l);
  }
  const at = zonedIso(payment?.updatedAt ?? result.decidedAt, footer.timeZone ?? machineTimeZone());
  for (const l of twoColumns(labels.time, clean(formatTime(at)), width, encoding)) text(l);
  if (footer.qr === 'payment' && payment?.id) lines.push({ kind: 'qr', data: payment.id });
  for (const extra of footer.lines) {
    for (const l of wrap(clean(extra), width, encoding)) text(align(l, width, 'center', encoding));
  }
  return lines;
}

/** The footer as ESC/POS bytes, ending with a cut. */
export function renderFooter(
  result: OrderResult,
  footer: PrinterTapFooter,
  encoding: PrinterTapEncoding,
): Uint8Array {
  return renderLines(footerLines(result, footer, encoding), { width: footer.width, encoding });
}

/** The ids of orders whose footer was printed (see the top of this file). */
export class FooterJournal {
  constructor(readonly file: string) {}

  static for(dir: string, registerId: string): FooterJournal {
    const safe = registerId.replace(/[^A-Za-z0-9._-]/g, '_');
    return new FooterJournal(path.join(dir, `.printer-tap-${safe}.footers.json`));
  }

  async has(orderId: string): Promise<boolean> {
    return (await this.read()).includes(orderId);
  }

  async add(orderId: string): Promise<void> {
    const ids = (await this.read()).filter((id) => id !== orderId);
    ids.push(orderId);
    await this.write(ids.slice(-JOURNAL_KEEP));
  }

  async remove(orderId: string): Promise<void> {
    await this.write((await this.read()).filter((id) => id !== orderId));
  }

  private async read(): Promise<string[]> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const parsed = JSON.parse(text) as { printed?: unknown };
    return Array.isArray(parsed.printed) ? parsed.printed.filter((x) => typeof x === 'string') : [];
  }

  /**
   * Atomically and durably, before the footer prints: a crash mid-write leaves the old journal, never half
   * a file, and a power cut after the print cannot lose the entry (which would print the footer again).
   */
  private async write(ids: string[]): Promise<void> {
    await writeFileDurably(this.file, JSON.stringify({ printed: ids }));
  }
}
