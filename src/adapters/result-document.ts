/**
 * The result a host is told, as one flat document: the file-drop result file and the http-hook callback
 * body are both this, so a host that switches adapters reads the same fields. The payment method is
 * reduced to its type: the customer's wallet code never leaves the plugin.
 */
import { ProtocolError } from '../protocol/errors';
import { validateOrderId } from '../protocol/ids';
import { Money, formatMoney, isMoney } from '../protocol/money';
import { OrderResult } from './host-adapter';

export const RESULT_STATUSES = ['paid', 'failed', 'canceled'] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];

/** Paid and canceled never change again (see ORDER_TRANSITIONS); a failed order may still be paid. */
export const FINAL_RESULT_STATUSES: readonly ResultStatus[] = ['paid', 'canceled'];

export interface ResultDocument {
  orderId: string;
  registerId: string;
  status: ResultStatus;
  amount: Money;
  /** The server's payment id; null when no payment was made (e.g. canceled before paying). */
  paymentId: string | null;
  /** The payment method's type, e.g. `wallet_code`; null without a payment. */
  method: string | null;
  decidedAt: string;
  /** The server's signature over the payment, when there is one, so a host can verify it. */
  signature?: string;
  /** Why the payment failed, when it did. */
  failure?: { code: string; message: string };
}

/** Builds the document; a result that is not well formed is a ProtocolError (a bug, not a host problem). */
export function resultDocument(result: OrderResult): ResultDocument {
  validateOrderId(result.orderId);
  if (!(RESULT_STATUSES as readonly unknown[]).includes(result.status)) {
    throw new ProtocolError(
      'result.bad_status',
      `A result status must be paid, failed or canceled, not ${JSON.stringify(result.status)}.`,
      {
        subject: 'status',
      },
    );
  }
  if (!isMoney(result.amount)) {
    throw new ProtocolError('result.bad_amount', `The result for ${result.orderId} has no valid amount.`, {
      subject: 'amount',
    });
  }
  const payment = result.payment;
  const doc: ResultDocument = {
    orderId: result.orderId,
    registerId: result.registerId,
    status: result.status,
    amount: { value: result.amount.value, currency: result.amount.currency },
    paymentId: payment?.id ?? null,
    method: payment?.method.type ?? null,
    decidedAt: result.decidedAt,
  };
  if (result.signature !== undefined) doc.signature = result.signature;
  if (payment?.failure) doc.failure = { code: payment.failure.code, message: payment.failure.message };
  return doc;
}

/** The CSV columns of a result file, in order; `amount` is decimal text, `amountMinor` the integer. */
export const RESULT_CSV_COLUMNS = [
  'orderId',
  'registerId',
  'status',
  'amount',
  'currency',
  'amountMinor',
  'paymentId',
  'method',
  'decidedAt',
  'signature',
  'failureCode',
  'failureMessage',
] as const;

export function resultCsvFields(doc: ResultDocument): string[] {
  return [
    doc.orderId,
    doc.registerId,
    doc.status,
    formatMoney(doc.amount),
    doc.amount.currency,
    String(doc.amount.value),
    doc.paymentId ?? '',
    doc.method ?? '',
    doc.decidedAt,
    doc.signature ?? '',
    doc.failure?.code ?? '',
    doc.failure?.message ?? '',
  ];
}
