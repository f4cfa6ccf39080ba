/**
 * Receipts: rendered from the journal's order with the running manifest's layout, queued per printer, and
 * retried while the printer is off (src/printer/print-queue.ts).
 */
import { isAbsolute, resolve } from 'node:path';
import { Manifest } from '../adapters/manifest';
import { zonedIso } from '../protocol/local-time';
import { PrintQueue } from '../printer/print-queue';
import { renderReceipt, renderReceiptSvg, renderReceiptText } from '../printer/render';
import { ReceiptData } from '../printer/receipt';
import { OrderRecord, receiptJobId } from './plugin-journal';
import { ReceiptSink } from './plugin.service';

export interface PluginReceiptsOptions {
  queue: PrintQueue;
  /** The running manifest (its `receipt` section) and the folder its relative paths start from. */
  manifest: () => Manifest;
  baseDir: () => string;
  storeName: string;
  /** The shop's zone: the receipt shows its wall-clock time and offset, not UTC. */
  timeZone: string;
}

export class PluginReceipts implements ReceiptSink {
  constructor(private readonly o: PluginReceiptsOptions) {}

  /** A relative `file:` printer path starts from the manifest's folder, like every path in a manifest. */
  private target(printer: string): string {
    const m = /^file:(.+)$/.exec(printer);
    return m && !isAbsolute(m[1]) ? `file:${resolve(this.o.baseDir(), m[1])}` : printer;
  }

  data(o: OrderRecord): ReceiptData {
    const brand = String(o.payment?.method?.brand ?? 'wallet');
    return {
      storeName: this.o.storeName,
      registerId: o.registerId,
      orderId: o.orderId,
      amount: o.amount,
      method: brand === 'alipay' ? 'Alipay 支付宝' : brand === 'wechat' ? 'WeChat Pay 微信支付' : brand,
      paymentId: o.payment?.id ?? '',
      time: zonedIso(o.payment?.updatedAt ?? o.updatedAt, this.o.timeZone),
      ...(o.items ? { items: o.items } : {}),
      footer: '谢谢惠顾 Thank you',
    };
  }

  async print(o: OrderRecord): Promise<void> {
    const r = this.o.manifest().receipt;
    if (!r) return;
    await this.o.queue.enqueue({
      id: receiptJobId(o.orderId),
      orderId: o.orderId,
      bytes: renderReceipt(this.data(o), r),
      target: this.target(r.printer),
    });
  }

  /** The receipt of a paid order as ESC/POS bytes, an SVG picture or plain text (for the status page). */
  render(o: OrderRecord, format: 'escpos' | 'svg' | 'text'): { contentType: string; body: string | Buffer } {
    const layout = this.o.manifest().receipt ?? {
      printer: '',
      encoding: 'utf8' as const,
      width: 42 as const,
    };
    const data = this.data(o);
    if (format === 'escpos')
      return { contentType: 'application/octet-stream', body: Buffer.from(renderReceipt(data, layout)) };
    if (format === 'svg')
      return { contentType: 'image/svg+xml; charset=utf-8', body: renderReceiptSvg(data, layout) };
    return { contentType: 'text/plain; charset=utf-8', body: renderReceiptText(data, layout) };
  }

  problems(): string[] {
    return this.o.queue
      .status()
      .printers.filter((p) => p.waiting > 0 && p.lastError)
      .map(
        (p) => p.message ?? `printer ${p.target}: ${p.lastError!.message} (${p.waiting} receipt(s) waiting)`,
      );
  }
}
