import { validTimeZone, zonedIso, zoneOffsetMs } from './local-time';

describe('the shop’s local time', () => {
  it('shows an instant as the shop’s wall clock with its offset', () => {
    expect(zonedIso('2026-11-28T21:39:05.123Z', 'Asia/Shanghai')).toBe('2026-11-29T05:39:05+08:00');
    expect(zonedIso('2026-11-28T21:39:05Z', 'UTC')).toBe('2026-11-28T21:39:05+00:00');
    // Summer and winter in one zone; a half-hour zone.
    expect(zonedIso('2026-07-01T12:00:00Z', 'Europe/Berlin')).toBe('2026-07-01T14:00:00+02:00');
    expect(zonedIso('2026-01-01T12:00:00Z', 'Europe/Berlin')).toBe('2026-01-01T13:00:00+01:00');
    expect(zonedIso('2026-01-01T12:00:00Z', 'Asia/Kolkata')).toBe('2026-01-01T17:30:00+05:30');
    expect(zonedIso('2026-01-01T12:00:00Z', 'America/St_Johns')).toBe('2026-01-01T08:30:00-03:30');
    expect(zonedIso('not a time', 'Asia/Shanghai')).toBe('not a time');
    expect(zoneOffsetMs('Asia/Shanghai', Date.parse('2026-11-28T21:39:05Z'))).toBe(8 * 3_600_000);
  });

  it('takes IANA zone names only, in their canonical spelling', () => {
    expect(validTimeZone('Asia/Shanghai')).toBe('Asia/Shanghai');
    expect(validTimeZone('UTC')).toBe('UTC');
    for (const bad of ['Mars/Olympus', 'Asia/Shanghai; rm -rf', '', '+08:00', 'Asia/../etc'])
      expect({ bad, zone: validTimeZone(bad) }).toEqual({ bad, zone: undefined });
  });
});
