/**
 * The manifest schema of the printer-tap adapter: the register prints to the plugin (a raw TCP port, 9100
 * style; on Windows a Standard TCP/IP RAW port pointed at it), the plugin passes every byte on to the real
 * printer and reads the amount off each receipt. Defaults, all written here and nowhere else:
 *
 * - `options.listen`: `tcp://HOST:PORT` where the register prints (required). Serial listening is planned.
 * - `options.forward`: `tcp://HOST:PORT` of the real printer, or `none` (required, so that a missing
 *   printer is a decision, never an accident).
 * - `options.status`: what the tap answers to status queries (DLE EOT n, GS r n, ESC v) when `forward` is
 *   `none`: `online` (default) or `offline`. With a printer, the printer's own answers are relayed.
 * - `options.jobIdleMs`: a job without a cut ends after this much silence: 1500 (100 to 600000).
 * - `options.maxJobBytes`: bytes of one job kept for reading: 1 MiB (1024 to 64 MiB). A longer job is still
 *   forwarded in full, but not read, and reported as `printer_tap.job_too_large`.
 * - `parse.encoding`: the text encoding the printer is set to, as in escpos-decode: `gb18030` (Chinese
 *   printers, with or without FS &), `cp437` (code pages chosen by ESC t), `utf8`. Required.
 * - `parse.currency`: the ISO code this register charges in. Required.
 * - `parse.amount`: regexes, highest rank first; each is matched against every receipt line (letters in
 *   any case) and its first capture group is the amount text. The highest rank that matches a line wins;
 *   two lines of that rank with different amounts reject the receipt. Default: amount due (应收, 应付,
 *   AMOUNT DUE, BALANCE DUE) above the total (合计, 总计, TOTAL, but not SUBTOTAL / 小计).
 * - `parse.ignore`: regexes for lines that are never the amount, whatever rule they match: what the
 *   customer handed over and got back. Default: 实收, 实付, 找零, 收款, CHANGE, CASH, TENDER, PAID.
 * - `parse.orderId`: a regex whose first capture group is the order number, or `none`. Default: the word
 *   with a digit in it after 单号 / 订单 / 流水号 / ORDER / RECEIPT / INVOICE / NO. (so "Order total" is none); without a match the adapter names the order
 *   itself (`<register>-<yyyymmdd>-<hhmmss>-<n>`).
 * - `writeBack`: `{}`. A printer tap cannot tell the register anything; results show on the status page.
 */
import { isKnownCurrency } from '../../protocol/money';
import { FieldProblems, describeValue, integer, isFields, oneOf, record, text } from '../field-problems';

export const PRINTER_TAP_ENCODINGS = ['gb18030', 'cp437', 'utf8'] as const;
export type PrinterTapEncoding = (typeof PRINTER_TAP_ENCODINGS)[number];
export const PRINTER_TAP_STATUSES = ['online', 'offline'] as const;
export type PrinterTapStatus = (typeof PRINTER_TAP_STATUSES)[number];

export const DEFAULT_JOB_IDLE_MS = 1500;
export const DEFAULT_MAX_JOB_BYTES = 1024 * 1024;

/** The amount at the end of a line: an optional yuan/dollar sign, digits with separators, optional 元. */
const AMOUNT_TAIL = String.raw`[\s:：]*.*?([￥¥$]?\s*[0-9０-９][0-9０-９,.，．]*)\s*元?\s*$`;

export const DEFAULT_AMOUNT_RULES: readonly string[] = [
  String.raw`(?:应收|应付|AMOUNT\s+DUE|BALANCE\s+DUE)` + AMOUNT_TAIL,
  String.raw`(?:合计|总计|\bTOTAL\b)` + AMOUNT_TAIL,
];
export const DEFAULT_IGNORE_RULES: readonly string[] = [
  String.raw`实收|实付|找零|收款|\bCHANGE\b|\bCASH\b|\bTENDER(?:ED)?\b|\bPAID\b`,
];
export const DEFAULT_ORDER_ID_RULE = String.raw`(?:单号|订单号?|流水号|\bORDER\b|\bRECEIPT\b|\bINVOICE\b|\bNO\.)(?:\s*(?:NO\.?|#|号))?[\s:：#]*((?=[A-Za-z_-]*[0-9])[A-Za-z0-9][A-Za-z0-9_-]{0,63})`;

/** Where the tap listens or forwards: a host (name or IPv4) and a port. */
export interface TcpEndpoint {
  host: string;
  port: number;
}

export interface PrinterTapOptions {
  listen: TcpEndpoint;
  /** The real printer; undefined for `none`. */
  forward?: TcpEndpoint;
  status: PrinterTapStatus;
  jobIdleMs: number;
  maxJobBytes: number;
}

export interface PrinterTapParseRules {
  encoding: PrinterTapEncoding;
  currency: string;
  /** Highest rank first; each with one capture group, the amount text. */
  amount: readonly string[];
  ignore: readonly string[];
  /** A regex with one capture group, or undefined for none. */
  orderId?: string;
}

/** Nothing: the register cannot be told anything through its printer port. */
export type PrinterTapWriteBack = Record<string, never>;

export function validatePrinterTapOptions(raw: unknown, p: FieldProblems): PrinterTapOptions | undefined {
  const o = record(raw, p, {
    required: {
      listen: 'where the register prints, e.g. "tcp://127.0.0.1:9100"',
      forward: 'the real printer, e.g. "tcp://192.168.1.50:9100", or "none"',
    },
    optional: ['status', 'jobIdleMs', 'maxJobBytes'],
  });
  const f = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const listen = f.listen === undefined ? undefined : endpoint(f.listen, p.at('listen'), 'listen');
  let forward: TcpEndpoint | undefined;
  if (f.forward !== undefined && f.forward !== 'none') {
    forward = endpoint(f.forward, p.at('forward'), 'forward');
  }
  const status = f.status === undefined ? 'online' : oneOf(f.status, p.at('status'), PRINTER_TAP_STATUSES);
  const jobIdleMs =
    f.jobIdleMs === undefined ? DEFAULT_JOB_IDLE_MS : integer(f.jobIdleMs, p.at('jobIdleMs'), 100, 600_000);
  const maxJobBytes =
    f.maxJobBytes === undefined
      ? DEFAULT_MAX_JOB_BYTES
      : integer(f.maxJobBytes, p.at('maxJobBytes'), 1024, 64 * 1024 * 1024);
  if (listen && forward && listen.host === forward.host && listen.port === forward.port) {
    p.at('forward').add('must not be the address the tap listens on (the bytes would loop)');
  }
  if (!o || p.count > before || !listen || !status || jobIdleMs === undefined || maxJobBytes === undefined)
    return undefined;
  return { listen, ...(forward ? { forward } : {}), status, jobIdleMs, maxJobBytes };
}

function endpoint(raw: unknown, p: FieldProblems, field: 'listen' | 'forward'): TcpEndpoint | undefined {
  const s = text(raw, p, { max: 300 });
  if (s === undefined) return undefined;
  if (/^serial:/i.test(s)) {
    p.add(`serial ports are not supported by this version of printer-tap yet; use tcp://HOST:PORT`);
    return undefined;
  }
  const m = /^tcp:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < (field === 'listen' ? 0 : 1) || port > 65535) {
    p.add(
      `${JSON.stringify(s)} must be tcp://HOST:PORT, e.g. "tcp://127.0.0.1:9100"` +
        (field === 'forward' ? ', or "none"' : ''),
    );
    return undefined;
  }
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host, port };
}

export function validatePrinterTapParse(raw: unknown, p: FieldProblems): PrinterTapParseRules | undefined {
  const o = record(raw, p, {
    required: {
      encoding: `the printer's text encoding: ${PRINTER_TAP_ENCODINGS.join(', ')}`,
      currency: 'the ISO code this register charges in, e.g. CNY',
    },
    optional: ['amount', 'ignore', 'orderId'],
  });
  const f = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const encoding =
    f.encoding === undefined ? undefined : oneOf(f.encoding, p.at('encoding'), PRINTER_TAP_ENCODINGS);
  let currency: string | undefined;
  if (f.currency !== undefined) {
    if (isKnownCurrency(f.currency)) currency = f.currency;
    else
      p.at('currency').add(
        `${describeValue(f.currency)} is not a currency payconnect knows; use an ISO code in capitals such as CNY`,
      );
  }
  const amount = f.amount === undefined ? DEFAULT_AMOUNT_RULES : regexList(f.amount, p.at('amount'), true);
  const ignore = f.ignore === undefined ? DEFAULT_IGNORE_RULES : regexList(f.ignore, p.at('ignore'), false);
  let orderId: string | undefined = DEFAULT_ORDER_ID_RULE;
  if (f.orderId === 'none') orderId = undefined;
  else if (f.orderId !== undefined) orderId = regexRule(f.orderId, p.at('orderId'), true);
  if (!o || p.count > before || !encoding || !currency || !amount || !ignore) return undefined;
  return { encoding, currency, amount, ignore, ...(orderId !== undefined ? { orderId } : {}) };
}

function regexList(raw: unknown, p: FieldProblems, needsGroup: boolean): string[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 20) {
    p.add(`must be a list of 1 to 20 regular expressions, highest rank first; got ${describeValue(raw)}`);
    return undefined;
  }
  const out: string[] = [];
  raw.forEach((r, i) => {
    const rule = regexRule(r, p.at(i), needsGroup);
    if (rule !== undefined) out.push(rule);
  });
  return out.length === raw.length ? out : undefined;
}

function regexRule(raw: unknown, p: FieldProblems, needsGroup: boolean): string | undefined {
  const rule = text(raw, p, { max: 500 });
  if (rule === undefined) return undefined;
  let re: RegExp;
  try {
    re = new RegExp(rule, 'iu');
  } catch (e) {
    p.add(`${JSON.stringify(rule)} is not a regular expression: ${(e as Error).message}`);
    return undefined;
  }
  if (needsGroup && captureGroups(re) < 1) {
    p.add(`${JSON.stringify(rule)} needs a capture group (…) around the text to read`);
    return undefined;
  }
  return rule;
}

/** How many capture groups a regex has. */
function captureGroups(re: RegExp): number {
  return (new RegExp(`${re.source}|`, re.flags).exec('') as RegExpExecArray).length - 1;
}

export function validatePrinterTapWriteBack(raw: unknown, p: FieldProblems): PrinterTapWriteBack | undefined {
  if (isFields(raw) && Object.keys(raw).length > 0) {
    for (const key of Object.keys(raw)) {
      p.at(key).add(
        'a printer tap cannot tell the register anything (results show on the status page); write writeBack: {}',
      );
    }
    return undefined;
  }
  const o = record(raw, p, { required: {} });
  return o ? {} : undefined;
}
