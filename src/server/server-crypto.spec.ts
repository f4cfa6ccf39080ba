import { newId } from './server-crypto';

describe('newId', () => {
  it('is the prefix, 9 characters of time and 16 of randomness, in letters and digits only (an Alipay and WeChat Pay out_trade_no as it is)', () => {
    const id = newId('pay');
    expect(id.length).toBeLessThanOrEqual(32);
    expect(id).toMatch(/^pay_[0-9a-z]{9}[A-Za-z0-9]{16}$/);
  });

  it('sorts by creation time, so ids made together sit together in an index', () => {
    const t0 = Date.now();
    const early = newId('pay');
    while (Date.now() === t0) {
      // wait for the next millisecond
    }
    const later = newId('pay');
    expect(early < later).toBe(true);
    expect(parseInt(early.slice(4, 13), 36)).toBeGreaterThanOrEqual(t0);
  });

  it('never repeats (200,000 ids drawn from the pooled random bytes)', () => {
    const ids = new Set(Array.from({ length: 200_000 }, () => newId('pay')));
    expect(ids.size).toBe(200_000);
  });
});
