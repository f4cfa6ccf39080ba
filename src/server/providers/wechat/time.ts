/**
 * WeChat Pay speaks China time (UTC+08:00, no daylight saving) whatever the machine's zone: v2 `time_end` /
 * `time_start` are `yyyyMMddHHmmss` in +08:00, v3 times are RFC 3339 with `+08:00`, bills print
 * `yyyy-MM-dd HH:mm:ss` in +08:00. Pure functions over epoch milliseconds.
 */
const CN_OFFSET_MS = 8 * 3600_000;

function parts(ms: number): string[] {
  const d = new Date(ms + CN_OFFSET_MS);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return [
    p(d.getUTCFullYear(), 4),
    p(d.getUTCMonth() + 1),
    p(d.getUTCDate()),
    p(d.getUTCHours()),
    p(d.getUTCMinutes()),
    p(d.getUTCSeconds()),
  ];
}

/** `yyyyMMddHHmmss` in China time (v2 time_start / time_end). */
export function v2Time(ms: number): string {
  return parts(ms).join('');
}

/** RFC 3339 in China time, e.g. `2026-11-29T14:33:45+08:00` (v3 success_time). */
export function isoChina(ms: number): string {
  const [y, mo, d, h, mi, s] = parts(ms);
  return `${y}-${mo}-${d}T${h}:${mi}:${s}+08:00`;
}

/** `yyyy-MM-dd` of the China day holding `ms`. */
export function chinaDate(ms: number): string {
  return isoChina(ms).slice(0, 10);
}

/** Reads a v2 `yyyyMMddHHmmss` China time; undefined when malformed. */
export function parseV2Time(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) - CN_OFFSET_MS;
  return isoChina(ms) === `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}+08:00` ? ms : undefined;
}
