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
    const earlyMs = parseInt(early.slice(4, 13), 36);
    expect(earlyMs).toBeGreaterThanOrEqual(t0);
    // The next millisecond after the one `early` was made in (not after t0: the clock may have ticked
    // between reading t0 and making `early`, and two ids of one millisecond order by their random part).
    while (Date.now() <= earlyMs) {
      // wait
    }
    const later = newId('pay');
    expect(early < later).toBe(true);
  });

  it('never repeats (200,000 ids drawn from the pooled random bytes)', () => {
    const ids = new Set(Array.from({ length: 200_000 }, () => newId('pay')));
    expect(ids.size).toBe(200_000);
  });
});
