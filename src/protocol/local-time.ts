/**
 * The shop's local time. Shops read times on receipts, the status page and the unit's history in their own
 * zone (Asia/Shanghai for most of ours), whatever zone the machine happens to be set to: each device app
 * takes `--time-zone AREA/CITY` and defaults to the machine's. Pure; offsets come from Intl.
 */

/** The machine's IANA time zone, or UTC when the runtime does not say. */
export function machineTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** An IANA zone name this runtime knows (`Asia/Shanghai`, `UTC`), in its canonical spelling; else undefined. */
export function validTimeZone(name: string): string | undefined {
  if (!/^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+){0,2}$/.test(name)) return undefined;
  try {
    return new Intl.DateTimeFormat('en', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

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

/**
 * An instant (ISO 8601, any offset) as the shop's wall-clock time with its offset:
 * `2026-11-28T21:39:05.000Z` in Asia/Shanghai is `2026-11-29T05:39:05+08:00`. Text that is not a time is
 * returned as given.
 */
export function zonedIso(instant: string, timeZone: string): string {
  const at = Date.parse(instant);
  if (Number.isNaN(at)) return instant;
  const offset = zoneOffsetMs(timeZone, at);
  const wall = new Date(Math.floor(at / 1000) * 1000 + offset).toISOString().slice(0, 19);
  const minutes = Math.round(offset / 60_000);
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${wall}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}
