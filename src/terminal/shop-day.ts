/**
 * The shop's day: when today began in the shop's time zone (the unit's --time-zone), so "today's history"
 * is the shop's today whatever zone the machine is set to. Pure; the zone's offset comes from Intl.
 */

/** The zone's offset from UTC at `at` (ms since the epoch), in ms: +8 h for Asia/Shanghai. */
export function zoneOffsetMs(timeZone: string, at: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(at));
  const n = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second'));
  return wall - Math.floor(at / 1000) * 1000;
}

/** The instant the shop's calendar day containing `at` began (its local midnight). */
export function startOfShopDay(timeZone: string, at: number): number {
  const offset = zoneOffsetMs(timeZone, at);
  const wall = new Date(at + offset);
  const midnightWall = Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate());
  // The offset at midnight itself can differ (a summer-time change that night): take that one.
  return midnightWall - zoneOffsetMs(timeZone, midnightWall - offset);
}
