import { attemptIdempotencyKey } from './terminal-store';

describe('attemptIdempotencyKey', () => {
  const SERVER_KEY_RULE = /^[\x21-\x7e]{1,255}$/; // the server's: printable ASCII, no spaces

  it('is a valid header and server key for any order number the host uses', () => {
    for (const orderId of ['订单-0001', 'A 1', '<b>', 'x'.repeat(64), '销售-0003\u00e9', '\u{1F600}']) {
      const key = attemptIdempotencyKey('sto_1', 'R1', orderId, 1);
      expect({ orderId, ok: SERVER_KEY_RULE.test(key) }).toEqual({ orderId, ok: true });
      expect(() => new Headers({ 'idempotency-key': key })).not.toThrow();
    }
  });

  it('is the same for the same attempt (a retry after a crash) and differs for anything else', () => {
    const key = attemptIdempotencyKey('sto_1', 'R1', '订单-0001', 1);
    expect(attemptIdempotencyKey('sto_1', 'R1', '订单-0001', 1)).toBe(key);
    const others = [
      attemptIdempotencyKey('sto_1', 'R1', '订单-0001', 2),
      attemptIdempotencyKey('sto_2', 'R1', '订单-0001', 1),
      attemptIdempotencyKey('sto_1', 'R2', '订单-0001', 1),
      attemptIdempotencyKey('sto_1', 'R1', '订单-0002', 1),
      // no collision by moving characters between the parts
      attemptIdempotencyKey('sto_1R', '1', '订单-0001', 1),
    ];
    expect(new Set([key, ...others]).size).toBe(6);
  });
});
