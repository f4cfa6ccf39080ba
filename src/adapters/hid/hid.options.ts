/**
 * The manifest schema of the hid adapter: which USB HID device to read (`options`), how its input reports
 * become an order (`parse`), and `writeBack` (an empty mapping: a scanner cannot be told anything).
 *
 *   options:
 *     device: {vendorId: "0x0c2e", productId: "0x0b61"}   # or {path: /dev/hidraw3}
 *     usagePage: "0x8c"          # optional: only the interface with this usage page (HID-POS scanner: 0x8C)
 *   parse:
 *     report: hid-pos            # hid-pos: [report id][length n][n data bytes]…  | ascii: every byte, NULs dropped
 *     endOfMessage: CR           # CR | LF | report (each report is one message) | quiet (no report for quietMs)
 *     quietMs: 150               # only with endOfMessage quiet; 20 to 5000, default 150
 *     amount: 'AMT:([0-9.,]+)'   # a regex over the message text; its first group (or group "amount") is the amount
 *     orderId: 'ORD:([A-Za-z0-9-]+)'   # likewise, first group (or group "orderId")
 *     currency: CNY
 *   writeBack: {}
 *
 * Ids and usage pages are hex text `"0x0c2e"` (as lsusb and Device Manager show them) or plain numbers
 * (`3118`). Regexes are JavaScript regexes, compiled with the `u` flag, at most 200 characters.
 */
import { isKnownCurrency } from '../../protocol/money';
import {
  FieldProblems,
  Fields,
  describeValue,
  integer,
  isFields,
  oneOf,
  record,
  text,
} from '../field-problems';

export const HID_REPORT_FORMATS = ['hid-pos', 'ascii'] as const;
export type HidReportFormat = (typeof HID_REPORT_FORMATS)[number];
export const HID_END_OF_MESSAGE = ['CR', 'LF', 'report', 'quiet'] as const;
export type HidEndOfMessage = (typeof HID_END_OF_MESSAGE)[number];

export const DEFAULT_QUIET_MS = 150;
/** The HID usage page of barcode scanners (HID POS Usage Tables). */
export const BARCODE_SCANNER_USAGE_PAGE = 0x8c;

export type HidDeviceSelector = { vendorId: number; productId: number } | { path: string };

export interface HidOptions {
  device: HidDeviceSelector;
  usagePage?: number;
}

export interface HidParseRules {
  report: HidReportFormat;
  endOfMessage: HidEndOfMessage;
  quietMs: number;
  /** Regex source; the amount is its group `amount`, else its first group. */
  amount: string;
  /** Regex source; the order id is its group `orderId`, else its first group. */
  orderId: string;
  currency: string;
}

/** Nothing to configure: a HID scanner or display cannot be told a payment result. */
export type HidWriteBack = Record<string, never>;

export function validateHidOptions(raw: unknown, p: FieldProblems): HidOptions | undefined {
  const o = record(raw, p, {
    required: { device: 'the device to read: {vendorId: "0x0c2e", productId: "0x0b61"} or {path: …}' },
    optional: ['usagePage'],
  });
  const fields = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const device = fields.device === undefined ? undefined : readDevice(fields.device, p.at('device'));
  const usagePage =
    fields.usagePage === undefined ? undefined : hidNumber(fields.usagePage, p.at('usagePage'));
  if (!o || p.count > before || !device) return undefined;
  return { device, ...(usagePage === undefined ? {} : { usagePage }) };
}

function readDevice(raw: unknown, p: FieldProblems): HidDeviceSelector | undefined {
  if (!isFields(raw)) {
    p.add(`must be {vendorId, productId} or {path}; got ${describeValue(raw)}`);
    return undefined;
  }
  if (raw.path !== undefined) {
    const extra = Object.keys(raw).filter((k) => k !== 'path');
    if (extra.length > 0) {
      p.add(`give either path or vendorId and productId, not both (also found: ${extra.join(', ')})`);
      return undefined;
    }
    const path = text(raw.path, p.at('path'), { max: 500 });
    return path === undefined ? undefined : { path };
  }
  const o = record(raw, p, {
    required: {
      vendorId: 'the USB vendor id, e.g. "0x0c2e" (or give path instead)',
      productId: 'the USB product id, e.g. "0x0b61"',
    },
  });
  if (!o) return undefined;
  const vendorId = hidNumber(o.vendorId, p.at('vendorId'));
  const productId = hidNumber(o.productId, p.at('productId'));
  return vendorId === undefined || productId === undefined ? undefined : { vendorId, productId };
}

/** A 16-bit id: `"0x0c2e"` (1 to 4 hex digits after 0x) or a whole number 0 to 65535. */
export function hidNumber(raw: unknown, p: FieldProblems): number | undefined {
  if (typeof raw === 'number') return integer(raw, p, 0, 0xffff);
  if (typeof raw === 'string') {
    const m = /^0x([0-9a-f]{1,4})$/i.exec(raw);
    if (m) return parseInt(m[1], 16);
    if (/^[0-9a-f]{1,4}$/i.test(raw)) {
      p.add(`${JSON.stringify(raw)}: write hex ids with 0x in front, e.g. "0x${raw.toLowerCase()}"`);
      return undefined;
    }
  }
  p.add(`must be a hex id like "0x0c2e" or a whole number from 0 to 65535; got ${describeValue(raw)}`);
  return undefined;
}

export function validateHidParse(raw: unknown, p: FieldProblems): HidParseRules | undefined {
  const o = record(raw, p, {
    required: {
      report: 'how a report becomes text: hid-pos or ascii',
      amount: 'a regex whose first group is the amount, e.g. "AMT:([0-9.,]+)"',
      orderId: 'a regex whose first group is the order number, e.g. "ORD:([A-Za-z0-9-]+)"',
      currency: 'the ISO code of the amounts, e.g. CNY',
    },
    optional: ['endOfMessage', 'quietMs'],
  });
  const fields: Fields = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const report =
    fields.report === undefined ? undefined : oneOf(fields.report, p.at('report'), HID_REPORT_FORMATS);
  const endOfMessage =
    fields.endOfMessage === undefined
      ? 'CR'
      : oneOf(fields.endOfMessage, p.at('endOfMessage'), HID_END_OF_MESSAGE);
  let quietMs: number | undefined = DEFAULT_QUIET_MS;
  if (fields.quietMs !== undefined) {
    quietMs = integer(fields.quietMs, p.at('quietMs'), 20, 5000);
    if (endOfMessage !== undefined && endOfMessage !== 'quiet' && quietMs !== undefined) {
      p.at('quietMs').add(`is only used with endOfMessage: quiet (endOfMessage is ${endOfMessage})`);
    }
  }
  const amount = fields.amount === undefined ? undefined : regexRule(fields.amount, p.at('amount'), 'amount');
  const orderId =
    fields.orderId === undefined ? undefined : regexRule(fields.orderId, p.at('orderId'), 'orderId');
  let currency: string | undefined;
  if (fields.currency !== undefined) {
    currency = text(fields.currency, p.at('currency'), { max: 3 });
    if (currency !== undefined && !isKnownCurrency(currency)) {
      p.at('currency').add(
        `${JSON.stringify(currency)} is not a currency payconnect knows; use an ISO code in capitals such as CNY`,
      );
      currency = undefined;
    }
  }
  if (!o || p.count > before || !report || !endOfMessage || quietMs === undefined) return undefined;
  if (!amount || !orderId || !currency) return undefined;
  return { report, endOfMessage, quietMs, amount, orderId, currency };
}

/** A regex source that compiles with the `u` flag and has a group to take the value from. */
function regexRule(raw: unknown, p: FieldProblems, group: 'amount' | 'orderId'): string | undefined {
  const source = text(raw, p, { max: 200 });
  if (source === undefined) return undefined;
  let re: RegExp;
  try {
    re = new RegExp(source, 'u');
  } catch (e) {
    p.add(`${JSON.stringify(source)} is not a valid regex: ${(e as Error).message}`);
    return undefined;
  }
  // A regex with n groups matches the empty alternative with n + 1 entries.
  const groups = new RegExp(`${re.source}|`, 'u').exec('')?.length ?? 1;
  if (groups < 2) {
    p.add(
      `${JSON.stringify(source)} has no group; put the ${group === 'amount' ? 'amount' : 'order number'} ` +
        `in parentheses, e.g. "${group === 'amount' ? 'AMT:([0-9.,]+)' : 'ORD:([A-Za-z0-9-]+)'}"`,
    );
    return undefined;
  }
  return source;
}

export function validateHidWriteBack(raw: unknown, p: FieldProblems): HidWriteBack | undefined {
  if (raw === undefined || raw === null) return {};
  if (!isFields(raw)) {
    p.add(`must be an empty mapping {} (a HID device cannot be told results); got ${describeValue(raw)}`);
    return undefined;
  }
  const keys = Object.keys(raw);
  if (keys.length > 0) {
    for (const k of keys) {
      p.at(k).add('unknown field: the hid adapter writes nothing back (a scanner cannot be told a result)');
    }
    return undefined;
  }
  return {};
}
