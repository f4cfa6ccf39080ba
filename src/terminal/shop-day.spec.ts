import { startOfShopDay, zoneOffsetMs } from './shop-day';

describe('the shop day', () => {
  const at = Date.parse('2026-11-28T21:32:00Z'); // 05:32 on 29 November in Shanghai

  it('knows the offset of a zone', () => {
    expect(zoneOffsetMs('Asia/Shanghai', at)).toBe(8 * 3600_000);
    expect(zoneOffsetMs('UTC', at)).toBe(0);
    expect(zoneOffsetMs('America/New_York', at)).toBe(-5 * 3600_000);
  });

  it("starts at the shop's midnight, not the machine's", () => {
    expect(new Date(startOfShopDay('Asia/Shanghai', at)).toISOString()).toBe('2026-11-28T16:00:00.000Z');
    expect(new Date(startOfShopDay('UTC', at)).toISOString()).toBe('2026-11-28T00:00:00.000Z');
    expect(new Date(startOfShopDay('America/New_York', at)).toISOString()).toBe('2026-11-28T05:00:00.000Z');
  });

  it('takes the offset of midnight on a summer-time day', () => {
    // Berlin moves to summer time at 02:00 on 29 March 2026: midnight is still UTC+1.
    const noon = Date.parse('2026-03-29T10:00:00Z');
    expect(new Date(startOfShopDay('Europe/Berlin', noon)).toISOString()).toBe('2026-03-28T23:00:00.000Z');
  });
});
