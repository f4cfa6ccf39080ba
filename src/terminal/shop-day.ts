/**
 * The shop's day: when today began in the shop's time zone (the unit's --time-zone), so "today's history"
 * is the shop's today whatever zone the machine is set to. Pure; the zone's offset comes from Intl.
 */

import { zoneOffsetMs } from '../protocol/local-time';

export { zoneOffsetMs };

/** The instant the shop's calendar day containing `at` began (its local midnight). */
export function startOfShopDay(timeZone: string, at: number): number {
  const offset = zoneOffsetMs(timeZone, at);
  const wall = new Date(at + offset);
  const midnightWall = Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate());
  // The offset at midnight itself can differ (a summer-time change that night): take that one.
  return midnightWall - zoneOffsetMs(timeZone, midnightWall - offset);
}
