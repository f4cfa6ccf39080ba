/**
 * Alipay's wire formats for money and time, from our integer fen and epoch milliseconds
 * (../shared/research/wallet-providers.md §1.1):
 *
 * - `total_amount` / `refund_amount` are strings in yuan with 0 or 2 decimals, range [0.01, 100000000].
 *   We always send two decimals, computed with integer arithmetic (never a float): 1 fen → "0.01",
 *   10000000000 fen → "100000000.00". An amount outside the range is refused before anything is sent.
 * - Reading an amount back accepts what Alipay writes: digits, optionally "." and 1 or 2 digits.
 * - `timestamp` is "yyyy-MM-dd HH:mm:ss" in China time (UTC+8, no daylight saving), whatever the machine's
 *   zone: we shift the instant by 8 h and read its UTC fields.
 */

/** Alipay's limits on one trade, in fen. */
export const ALIPAY_MIN_FEN = 1;
export const ALIPAY_MAX_FEN = 100_000_000 * 100;

const CHINA_OFFSET_MS = 8 * 3600_000;

/** Fen → "Y.FF" (two decimals). Throws RangeError on a non-integer or a negative value. */
export function fenToYuan(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0)
    throw new RangeError(`not a whole, non-negative number of fen: ${fen}`);
  const yuan = Math.trunc(fen / 100);
  const rest = fen - yuan * 100;
  return `${yuan}.${rest < 10 ? '0' : ''}${rest}`;
}

/** "Y", "Y.F" or "Y.FF" → fen; undefined for anything else (no sign, exponent, spaces or third decimal). */
export function yuanToFen(text: string): number | undefined {
  const m = /^(0|[1-9]\d{0,11})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) return undefined;
  const frac = m[2] === undefined ? 0 : Number(m[2].padEnd(2, '0'));
  return Number(m[1]) * 100 + frac;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Epoch ms → "yyyy-MM-dd HH:mm:ss" in China time. */
export function chinaTimestamp(ms: number): string {
  const d = new Date(ms + CHINA_OFFSET_MS);
  return (
    `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`
  );
}

/** "yyyy-MM-dd HH:mm:ss" (China time) → epoch ms; undefined when it is not that shape or not a real time. */
export function parseChinaTimestamp(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59)
    return undefined;
  return ms - CHINA_OFFSET_MS;
}

/** "yyyy-MM-dd HH:mm:ss" (China time) → ISO 8601 with +08:00; undefined when malformed. */
export function chinaIso(text: string): string | undefined {
  return parseChinaTimestamp(text) === undefined ? undefined : `${text.replace(' ', 'T')}+08:00`;
}

/** The China-time calendar date (YYYY-MM-DD) of an instant. */
export function chinaDate(ms: number): string {
  return chinaTimestamp(ms).slice(0, 10);
}
