import {
  canTransitionOrder,
  canTransitionPayment,
  isDecidedPaymentStatus,
  isFinalOrderStatus,
  isFinalPaymentStatus,
  isOrderStatus,
  isPayment,
  isPaymentStatus,
  ORDER_STATUSES,
  ORDER_TRANSITIONS,
  PAYMENT_STATUSES,
  type OrderStatus,
  type Payment,
  type PaymentStatus,
} from './states';

// The policy, written out once more by hand, so that a change to the tables is a deliberate change here too.
const ORDER_MOVES = new Set([
  'captured>offered',
  'captured>canceled',
  'offered>claimed',
  'offered>paying',
  'offered>paid',
  'offered>failed',
  'offered>canceled',
  'claimed>offered',
  'claimed>paying',
  'claimed>paid',
  'claimed>failed',
  'claimed>canceled',
  'paying>paid',
  'paying>failed',
  'paying>canceled',
  'failed>offered',
  'failed>paying',
  'failed>paid',
  'failed>canceled',
]);

const PAYMENT_MOVES = new Set([
  'pending>succeeded',
  'pending>failed',
  'pending>canceled',
  'succeeded>refunded',
]);

const pairs = <T>(xs: readonly T[]): [T, T][] => xs.flatMap((a) => xs.map((b): [T, T] => [a, b]));

/** Statuses reachable from `start` through the order table. */
function reachable(start: OrderStatus): Set<OrderStatus> {
  const seen = new Set<OrderStatus>([start]);
  const queue = [start];
  while (queue.length > 0) {
    for (const next of ORDER_TRANSITIONS[queue.shift() as OrderStatus]) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen;
}

describe('order states', () => {
  test.each(pairs(ORDER_STATUSES))('%s -> %s', (from, to) => {
    expect(canTransitionOrder(from, to)).toBe(ORDER_MOVES.has(`${from}>${to}`));
  });

  test('only paid and canceled are final', () => {
    expect(ORDER_STATUSES.filter(isFinalOrderStatus)).toEqual(['paid', 'canceled']);
  });

  test('every status is reachable from captured, and every unfinished order can still be paid or canceled', () => {
    expect([...reachable('captured')].sort()).toEqual([...ORDER_STATUSES].sort());
    for (const status of ORDER_STATUSES.filter((s) => !isFinalOrderStatus(s))) {
      expect(reachable(status).has('paid')).toBe(true);
      expect(reachable(status).has('canceled')).toBe(true);
    }
  });

  test('an order being paid is never handed to another unit, and nothing returns to captured', () => {
    expect(canTransitionOrder('paying', 'offered')).toBe(false);
    expect(canTransitionOrder('paying', 'claimed')).toBe(false);
    for (const from of ORDER_STATUSES) expect(canTransitionOrder(from, 'captured')).toBe(false);
  });

  test('unknown statuses are neither statuses nor transitions', () => {
    expect(isOrderStatus('paid')).toBe(true);
    expect(isOrderStatus('PAID')).toBe(false);
    expect(isOrderStatus(undefined)).toBe(false);
    expect(canTransitionOrder('captured', 'toString' as OrderStatus)).toBe(false);
    expect(canTransitionOrder('constructor' as OrderStatus, 'paid')).toBe(false);
    expect(isFinalOrderStatus('gone' as OrderStatus)).toBe(false);
  });
});

describe('payment states', () => {
  test.each(pairs(PAYMENT_STATUSES))('%s -> %s', (from, to) => {
    expect(canTransitionPayment(from, to)).toBe(PAYMENT_MOVES.has(`${from}>${to}`));
  });

  test('failed, canceled and refunded are final; succeeded may still be refunded', () => {
    expect(PAYMENT_STATUSES.filter(isFinalPaymentStatus)).toEqual(['failed', 'canceled', 'refunded']);
  });

  test('every status but pending is decided', () => {
    expect(PAYMENT_STATUSES.filter(isDecidedPaymentStatus)).toEqual([
      'succeeded',
      'failed',
      'canceled',
      'refunded',
    ]);
  });

  test('unknown statuses are neither statuses nor transitions', () => {
    expect(isPaymentStatus('refunded')).toBe(true);
    expect(isPaymentStatus('partially_refunded')).toBe(false);
    expect(canTransitionPayment('pending', 'done' as PaymentStatus)).toBe(false);
    expect(isFinalPaymentStatus('valueOf' as PaymentStatus)).toBe(false);
    expect(isDecidedPaymentStatus('done' as PaymentStatus)).toBe(false);
  });
});

describe('isPayment', () => {
  const payment: Payment = {
    id: 'pay_1',
    orderId: 'A-1001',
    registerId: 'R1',
    amount: { value: 1250, currency: 'CNY' },
    status: 'failed',
    method: { type: 'wallet_code', code: '280000000000000005' },
    failure: { code: 'insufficient_funds', message: 'Insufficient funds' },
    createdAt: '2025-01-31T09:15:00.000Z',
    updatedAt: '2025-01-31T09:15:02.000Z',
  };

  test('accepts a well-formed payment, with or without failure', () => {
    expect(isPayment(payment)).toBe(true);
    expect(isPayment({ ...payment, status: 'succeeded', failure: undefined })).toBe(true);
  });

  test.each<[string, unknown]>([
    ['null', null],
    ['an array', [payment]],
    ['a missing id', { ...payment, id: undefined }],
    ['an empty orderId', { ...payment, orderId: '' }],
    ['a numeric registerId', { ...payment, registerId: 1 }],
    ['an amount in floating point', { ...payment, amount: { value: 12.5, currency: 'CNY' } }],
    ['an unknown currency', { ...payment, amount: { value: 1250, currency: 'XYZ' } }],
    ['an unknown status', { ...payment, status: 'done' }],
    ['a method without type', { ...payment, method: { code: '1' } }],
    ['a failure without message', { ...payment, failure: { code: 'x' } }],
    ['a missing updatedAt', { ...payment, updatedAt: undefined }],
  ])('refuses %s', (_name, value) => {
    expect(isPayment(value)).toBe(false);
  });
});
