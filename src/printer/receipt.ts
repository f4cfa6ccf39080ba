/**
 * The receipt contract: what the plugin prints on a successful payment, and the printer outputs.
 */
import { Money } from '../protocol/money';

export interface ReceiptData {
  storeName: string;
  registerId: string;
  orderId: string;
  amount: Money;
  /** e.g. "Alipay", "WeChat Pay", "wallet" */
  method: string;
  paymentId: string;
  /** ISO time of the payment. */
  time: string;
  items?: { name: string; quantity?: number; amount?: Money }[];
  /** Printed at the bottom, e.g. "谢谢惠顾 Thank you". */
  footer?: string;
}

export interface ReceiptLayout {
  /** Characters per line: 32 (58 mm), 42 or 48 (80 mm). */
  width: 32 | 42 | 48;
  /** Text encoding the printer expects: gb18030 for Chinese printers, cp437 / utf8 otherwise. */
  encoding: 'gb18030' | 'cp437' | 'utf8';
}

/** Where receipts go: `tcp://host:port`, `serial:PATH`, `file:PATH`. */
export interface PrinterOutput {
  readonly target: string;
  /** Sends the bytes; throws TransportError naming the printer when it is off or unreachable. */
  write(bytes: Uint8Array): Promise<void>;
}
