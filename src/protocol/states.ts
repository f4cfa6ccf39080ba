/**
 * Order and payment states, and the only moves between them, as data: the plugin's journal, the server's
 * store and the apps' UIs all ask these tables instead of keeping their own idea of what may follow what.
 * A status moving to itself is not a transition: callers treat a repeat as a duplicate, which is harmless.
 */
import type { JsonValue } from './canonical-json';
import { isMoney, type Money } from './money';

/** The plugin's view of one host order (DESIGN.md "Plugin local HTTP API"). */
export type OrderStatus = 'captured' | 'offered' | 'claimed' | 'paying' | 'paid' | 'failed' | 'canceled';

/** The server's view of one charge (DESIGN.md "Payment results"). */
export type PaymentStatus = 'pending' | 'succeeded' | 'failed' | 'canceled' | 'refunded';

export const ORDER_STATUSES: readonly OrderStatus[] = [
  'captured',
  'offered',
  'claimed',
  'paying',
  'paid',
  'failed',
  'canceled',
];

export const PAYMENT_STATUSES: readonly PaymentStatus[] = [
  'pending',
  'succeeded',
  'failed',
  'canceled',
  'refunded',
];

/**
 * Why each move exists:
 * - captured → offered: the plugin journals the offer before it sends it, so nothing skips `offered`.
 * - offered → paying | paid | failed: a unicast unit pays without claiming, and LAN progress messages can be
 *   lost, so a signed result may be the first news the plugin gets. The same holds after `claimed`.
 * - claimed → offered: the claiming unit released the order before paying, and it is offered again.
 * - paying never goes back to offered or claimed: once a unit has asked the server to charge, giving the
 *   order to another unit could charge twice. Only a signed result (paid, failed) or a cancel ends it.
 * - failed is not final: the customer may pay with another code (failed → paying, or → paid when a later
 *   attempt's signed success arrives), or the cashier offers the order again.
 * - canceled is reached only after the server has canceled every payment of the order, so no signed
 *   success can arrive afterwards; paid and canceled are final.
 */
export const ORDER_TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  captured: ['offered', 'canceled'],
  offered: ['claimed', 'paying', 'paid', 'failed', 'canceled'],
  claimed: ['offered', 'paying', 'paid', 'failed', 'canceled'],
  paying: ['paid', 'failed', 'canceled'],
  paid: [],
  failed: ['offered', 'paying', 'paid', 'canceled'],
  canceled: [],
};

/**
 * pending → succeeded | failed | canceled; succeeded → refunded. The server never leaves a payment pending:
 * an unknown provider outcome is queried and canceled (reversed) at its deadline. A partial refund keeps
 * the payment `succeeded` (the refunds are tracked beside it); it becomes `refunded` only when the whole
 * amount has been refunded. A reversal after success is a refund, never `canceled`.
 */
export const PAYMENT_TRANSITIONS: Readonly<Record<PaymentStatus, readonly PaymentStatus[]>> = {
  pending: ['succeeded', 'failed', 'canceled'],
  succeeded: ['refunded'],
  failed: [],
  canceled: [],
  refunded: [],
};

export function isOrderStatus(x: unknown): x is OrderStatus {
  return typeof x === 'string' && (ORDER_STATUSES as readonly string[]).includes(x);
}

export function isPaymentStatus(x: unknown): x is PaymentStatus {
  return typeof x === 'string' && (PAYMENT_STATUSES as readonly string[]).includes(x);
}

/** False for a status moving to itself and for anything that is not a status. */
export function canTransitionOrder(from: OrderStatus, to: OrderStatus): boolean {
  return isOrderStatus(from) && isOrderStatus(to) && ORDER_TRANSITIONS[from].includes(to);
}

export function canTransitionPayment(from: PaymentStatus, to: PaymentStatus): boolean {
  return isPaymentStatus(from) && isPaymentStatus(to) && PAYMENT_TRANSITIONS[from].includes(to);
}

/** Nothing leaves a final order status: `paid`, `canceled`. */
export function isFinalOrderStatus(status: OrderStatus): boolean {
  return isOrderStatus(status) && ORDER_TRANSITIONS[status].length === 0;
}

/**
 * Nothing leaves a final payment status: `failed`, `canceled`, `refunded`. `succeeded` is not final, since
 * it may still be refunded; to ask whether the charge itself is decided, use isDecidedPaymentStatus.
 */
export function isFinalPaymentStatus(status: PaymentStatus): boolean {
  return isPaymentStatus(status) && PAYMENT_TRANSITIONS[status].length === 0;
}

/** The outcome of the charge is known (anything but `pending`): what "final" means in the terminal API. */
export function isDecidedPaymentStatus(status: PaymentStatus): boolean {
  return isPaymentStatus(status) && status !== 'pending';
}

/** How the customer paid; `wallet_code` carries the scanned code. Other fields depend on the type. */
export interface PaymentMethod {
  type: string;
  [field: string]: JsonValue;
}

export interface WalletCodeMethod extends PaymentMethod {
  type: 'wallet_code';
  code: string;
}

export interface PaymentFailure {
  /** Stable code, e.g. `insufficient_funds`. */
  code: string;
  /** For the clerk and the cashier. */
  message: string;
}

/** A payment as the server returns, stores and signs it (DESIGN.md "Server HTTP API"). */
export interface Payment {
  /** The server's payment id. */
  id: string;
  /** The host's order number. */
  orderId: string;
  registerId: string;
  amount: Money;
  status: PaymentStatus;
  method: PaymentMethod;
  /** Present when `status` is `failed` (and for `canceled`, saying why). */
  failure?: PaymentFailure;
  /** What has been refunded so far; present once a refund was made. */
  refunded?: Money;
  /** True when a cancel returned money the customer had already paid (a reversal). */
  reversed?: boolean;
  /** ISO 8601 times, e.g. `2025-01-31T09:15:00.000Z`. */
  createdAt: string;
  updatedAt: string;
}

/**
 * Checks the shape of a payment received from elsewhere (types, known status, valid amount). It does not
 * check that the status fits `failure`, nor the times' format: the server that signed it decides those.
 */
export function isPayment(x: unknown): x is Payment {
  if (!isRecord(x)) return false;
  const { id, orderId, registerId, amount, status, method, failure, createdAt, updatedAt } = x;
  return (
    [id, orderId, registerId, createdAt, updatedAt].every((s) => typeof s === 'string' && s !== '') &&
    isMoney(amount) &&
    isPaymentStatus(status) &&
    isRecord(method) &&
    typeof method.type === 'string' &&
    (failure === undefined ||
      (isRecord(failure) && typeof failure.code === 'string' && typeof failure.message === 'string'))
  );
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
