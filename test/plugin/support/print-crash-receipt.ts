/** The receipt test/plugin/print-crash.spec.ts prints, shared with its child process. */
import { ReceiptData, ReceiptLayout } from '../../../src/printer/receipt';

export const LAYOUT: ReceiptLayout = { width: 32, encoding: 'gb18030' };

export function receiptFor(orderId: string): ReceiptData {
  return {
    storeName: '好又多便利店',
    registerId: '收银台1',
    orderId,
    amount: { value: 3850, currency: 'CNY' },
    method: 'WeChat Pay 微信支付',
    paymentId: 'pay_crash_0042',
    time: '2026-11-29T20:15:00+08:00',
    footer: '谢谢惠顾 Thank you',
  };
}
