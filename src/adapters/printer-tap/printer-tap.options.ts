/**
 * The manifest schema of the printer-tap adapter: the register prints to the plugin (a raw TCP port, 9100
 * style, or one end of a serial line), the plugin passes every byte on to the real printer and reads the
 * amount off each receipt. Defaults, all written here and nowhere else:
 *
 * - `options.listen`: where the register prints (required):
 *   - `tcp://HOST:PORT`: on Windows a Standard TCP/IP RAW port pointed at it;
 *   - `serial:PATH?baud=9600&dataBits=8&parity=none&stopBits=1&flow=none`: the plugin's end of a serial
 *     line, on Windows one end of a virtual COM pair (com0com) whose other end the register prints to
 *     (`serial:COM4`), on Linux a tty (`serial:/dev/ttyS0`). Line settings as in a printer target
 *     (src/printer/serial-settings.ts): `baud` or `baudRate` 2400–115200 (default 9600), `dataBits` 7 or
 *     8 (8), `parity` none, even, odd (none), `stopBits` 1 or 2 (1), `flow` or `flowControl` none,
 *     rtscts, xonxoff (none). A bad one is named.
 * - `options.forward`: the real printer (required, so that a missing printer is a decision, never an
 *   accident): `tcp://HOST:PORT`; `serial:PATH?…` (its own line settings, as above); `file:PATH` (bytes
 *   appended: a USB printer-class device such as `/dev/usb/lp0`, or a capture file); or `none`.
 * - `options.status`: what the tap answers to status queries (DLE EOT n, GS r n, ESC v) when nothing
 *   behind it answers (`forward` `none` or `file:`): `online` (default) or `offline`. A printer on
 *   tcp or serial answers itself, and its answers are relayed.
 * - `options.jobIdleMs`: a job without a cut ends after this much silence: 1500 (100 to 600000). On a
 *   serial line, which has no connections, this and the cuts are the only job ends.
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
 * - `writeBack`: `{}` (a printer tap cannot tell the register anything; results show on the status page),
 *   or `{ footer: {…} }`: when an order is paid, a short footer is printed on the tapped printer, after
 *   the register's job in progress: 已支付 ￥12.34 (PAID in cp437), the provider and payment id, the local
 *   time, a QR code of the payment id, then a cut. Needs a printer (`forward` not `none`).
 *   - `footer.qr`: `payment` (default) prints the QR code of the payment id; `none` leaves it out.
 *   - `footer.lines`: up to 5 lines printed at the end (each at most 64 characters), e.g. 谢谢惠顾.
 *   - `footer.width`: the paper's columns: 32 (58 mm, default), 42 or 48 (80 mm).
 *   - `footer.timeZone`: the shop's IANA zone for the time (default: the machine's).
 */
import { validTimeZone } from '../../protocol/local-time';
import { isKnownCurrency } from '../../protocol/money';
import { RECEIPT_WIDTHS } from '../../printer/layout';
import { SerialLineSettings, isSerialDevicePath, parseSerialUri } from '../../printer/serial-settings';
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

/** A serial line: the device (`/dev/ttyS0`, `COM3`) and its settings. */
export interface SerialEndpoint {
  serial: string;
  line: SerialLineSettings;
}

/** A file or printer-class device the bytes are appended to. */
export interface FileEndpoint {
  file: string;
}

export type ListenEndpoint = TcpEndpoint | SerialEndpoint;
export type ForwardEndpoint = TcpEndpoint | SerialEndpoint | FileEndpoint;

export function isSerial(e: ForwardEndpoint | undefined): e is SerialEndpoint {
  return e !== undefined && 'serial' in e;
}

export function isFile(e: ForwardEndpoint | undefined): e is FileEndpoint {
  return e !== undefined && 'file' in e;
}

export function isTcp(e: ForwardEndpoint | undefined): e is TcpEndpoint {
  return e !== undefined && 'port' in e;
}

export interface PrinterTapOptions {
  listen: ListenEndpoint;
  /** The real printer; undefined for `none`. */
  forward?: ForwardEndpoint;
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

export const FOOTER_QR = ['payment', 'none'] as const;

/** What is printed on the tapped printer when an order is paid (see the top of this file). */
export interface PrinterTapFooter {
  qr: (typeof FOOTER_QR)[number];
  lines: string[];
  width: 32 | 42 | 48;
  /** Undefined: the machine's zone. */
  timeZone?: string;
}

/** `{}`, or a footer printed on payment. */
export interface PrinterTapWriteBack {
  footer?: PrinterTapFooter;
}

export function validatePrinterTapOptions(raw: unknown, p: FieldProblems): PrinterTapOptions | undefined {
  const o = record(raw, p, {
    required: {
      listen: 'where the register prints, e.g. "tcp://127.0.0.1:9100" or "serial:COM4?baud=9600"',
      forward:
        'the real printer, e.g. "tcp://192.168.1.50:9100", "serial:COM3?baud=9600", "file:/dev/usb/lp0", or "none"',
    },
    optional: ['status', 'jobIdleMs', 'maxJobBytes'],
  });
  const f = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const listen = f.listen === undefined ? undefined : endpoint(f.listen, p.at('listen'), 'listen');
  let forward: ForwardEndpoint | undefined;
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
  if (listen && forward && sameEndpoint(listen, forward)) {
    p.at('forward').add('must not be the address the tap listens on (the bytes would loop)');
  }
  if (!o || p.count > before || !listen || !status || jobIdleMs === undefined || maxJobBytes === undefined)
    return undefined;
  return { listen, ...(forward ? { forward } : {}), status, jobIdleMs, maxJobBytes };
}

function sameEndpoint(a: ListenEndpoint, b: ForwardEndpoint): boolean {
  if (isTcp(a) && isTcp(b)) return a.host === b.host && a.port === b.port;
  // Windows port names are case-insensitive; a Linux path differing only in case is a mistake anyway.
  return isSerial(a) && isSerial(b) && a.serial.toLowerCase() === b.serial.toLowerCase();
}

/** The form each field takes, for messages. */
const FORMS = {
  listen: 'tcp://HOST:PORT (e.g. "tcp://127.0.0.1:9100") or serial:PATH?baud=9600 (e.g. "serial:COM4")',
  forward: 'tcp://HOST:PORT, serial:PATH?baud=9600, file:PATH (e.g. "file:/dev/usb/lp0"), or "none"',
} as const;

function endpoint<F extends 'listen' | 'forward'>(
  raw: unknown,
  p: FieldProblems,
  field: F,
): (F extends 'listen' ? ListenEndpoint : ForwardEndpoint) | undefined {
  type Out = F extends 'listen' ? ListenEndpoint : ForwardEndpoint;
  const s = text(raw, p, { max: 300 });
  if (s === undefined) return undefined;
  if (/^serial:/i.test(s)) return serialEndpoint(s, p) as Out | undefined;
  if (field === 'forward' && /^file:/i.test(s)) {
    const file = s.slice('file:'.length);
    if (file === '' || file.includes('\0')) {
      p.add(`${JSON.stringify(s)} must name a file or device, e.g. "file:/dev/usb/lp0"`);
      return undefined;
    }
    return { file } as Out;
  }
  const m = /^tcp:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < (field === 'listen' ? 0 : 1) || port > 65535) {
    p.add(`${JSON.stringify(s)} must be ${FORMS[field]}`);
    return undefined;
  }
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host, port } as Out;
}

/** `serial:PATH?…` through the one serial URI reader (serial-settings.ts), short names allowed. */
export function serialEndpoint(uri: string, p: FieldProblems): SerialEndpoint | undefined {
  const parsed = parseSerialUri(uri, { shortNames: true });
  if ('problem' in parsed) {
    p.add(`${JSON.stringify(uri)}: ${parsed.problem}`);
    return undefined;
  }
  if (!isSerialDevicePath(parsed.path)) {
    p.add(`${JSON.stringify(uri)}: the port must be a device path (/dev/ttyS0) or a Windows COM port (COM3)`);
    return undefined;
  }
  return { serial: parsed.path, line: parsed.settings };
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

/**
 * `{}` or `{ footer: {…} }`. Any other field is refused, saying why; a footer needs a printer to print on
 * (`options` is what validatePrinterTapOptions returned, undefined when bad or not checked).
 */
export function validatePrinterTapWriteBack(
  raw: unknown,
  p: FieldProblems,
  options?: PrinterTapOptions,
): PrinterTapWriteBack | undefined {
  if (isFields(raw)) {
    const unknown = Object.keys(raw).filter((k) => k !== 'footer');
    for (const key of unknown) {
      p.at(key).add(
        'a printer tap cannot tell the register anything (results show on the status page); write writeBack: {}, ' +
          'or writeBack: { footer: { qr: payment } } to print a paid footer on the receipt printer',
      );
    }
    if (unknown.length > 0) return undefined;
  }
  const o = record(raw, p, { required: {}, optional: ['footer'] });
  if (!o) return undefined;
  if (o.footer === undefined) return {};
  const before = p.count;
  const footer = validateFooter(o.footer, p.at('footer'));
  if (footer && options && options.forward === undefined) {
    p.at('footer').add(
      'needs a printer to print on: set options.forward to the real printer, or remove the footer',
    );
  }
  return footer && p.count === before ? { footer } : undefined;
}

function validateFooter(raw: unknown, p: FieldProblems): PrinterTapFooter | undefined {
  const o = record(raw, p, { required: {}, optional: ['qr', 'lines', 'width', 'timeZone'] });
  if (!o) return undefined;
  const before = p.count;
  const qr = o.qr === undefined ? 'payment' : oneOf(o.qr, p.at('qr'), FOOTER_QR);
  const lines: string[] = [];
  if (o.lines !== undefined) {
    if (!Array.isArray(o.lines) || o.lines.length > 5) {
      p.at('lines').add(`must be a list of at most 5 lines; got ${describeValue(o.lines)}`);
    } else {
      o.lines.forEach((l, i) => {
        const line = text(l, p.at('lines').at(i), { max: 64 });
        if (line !== undefined) lines.push(line);
      });
    }
  }
  const width = o.width === undefined ? 32 : oneOf(o.width, p.at('width'), RECEIPT_WIDTHS);
  let timeZone: string | undefined;
  if (o.timeZone !== undefined) {
    const name = text(o.timeZone, p.at('timeZone'), { max: 64 });
    timeZone = name === undefined ? undefined : validTimeZone(name);
    if (name !== undefined && timeZone === undefined) {
      p.at('timeZone').add(
        `${JSON.stringify(name)} is not a time zone; use an IANA name such as Asia/Shanghai`,
      );
    }
  }
  if (p.count > before || !qr || !width) return undefined;
  return { qr, lines, width, ...(timeZone !== undefined ? { timeZone } : {}) };
}
