/**
 * China time (+08:00) whatever the machine's zone: the helpers work on epoch milliseconds through UTC
 * arithmetic only, so TZ never enters.
 */
import { chinaDate, isoChina, parseV2Time, v2Time } from './time';

describe('China time', () => {
  const ms = Date.UTC(2026, 10, 28, 16, 30, 5); // 2026-11-28 16:30:05 UTC = 2026-11-29 00:30:05 in China
  it('formats v2 and v3 times and the China day', () => {
    expect(v2Time(ms)).toBe('20261129003005');
    expect(isoChina(ms)).toBe('2026-11-29T00:30:05+08:00');
    expect(chinaDate(ms)).toBe('2026-11-29');
  });
  it('reads a v2 time back, and refuses an impossible one', () => {
    expect(parseV2Time('20261129003005')).toBe(ms);
    expect(parseV2Time('20260230120000')).toBeUndefined();
    expect(parseV2Time('2026112900300')).toBeUndefined();
  });
  it('does not depend on TZ', () => {
    const saved = process.env.TZ;
    try {
      for (const tz of ['UTC', 'America/Los_Angeles', 'Asia/Shanghai', 'Pacific/Kiritimati']) {
        process.env.TZ = tz;
        expect(v2Time(ms)).toBe('20261129003005');
      }
    } finally {
      process.env.TZ = saved;
    }
  });
});
