/**
 * Money: amounts as integers in minor units with an ISO 4217 currency, and the one place where host text
 * becomes an amount. No floating point is used anywhere in this file: text is taken apart as a string and
 * the integer is built with BigInt, then checked against Number.MAX_SAFE_INTEGER.
 *
 * `parseAmount(text, currency)` accepts, and only accepts:
 *
 * - digits with an optional decimal part: `12`, `12.50`, `12.5` (padded: 1250), `12,50` (decimal comma);
 *   no more decimals than the currency has (CNY 2, JPY 0, KWD 3), not even zeros;
 * - thousands grouping with `,` `.` a space or an apostrophe, in groups of three after a first group of one
 *   to three digits that does not start with 0 (INR also in lakh groups, `1,23,456.50`):
 *   `1,234.50`, `1.234,50`, `1 234,50`, `1'234.50`, `1,234,567`, `1.234.567`;
 * - surrounding whitespace, and spaces between a currency marker and the number;
 * - one currency marker before and/or one after the number, if it is one this currency is written with:
 *   `¥` (CNY, JPY), `元` (CNY, TWD, HKD, MOP), `円` (JPY), `RMB` (CNY), `$` (the dollars and pesos below),
 *   `US$` `HK$` `NT$` `S$` `A$` `AU$` `C$` `CA$` `NZ$` `MOP$` `MX$` `R$`, `€`, `£`, `₩`, `₫`, `₹`, `₱`,
 *   `฿`, `₽`, `RM`, `Rp`, `R` (ZAR), `kr`, `zł`, `Kč`, `Ft`, and every currency's own ISO code; letters in
 *   any case: `¥12.50`, `12.50 CNY`, `RMB 12.50`, `12.50元`;
 * - full-width forms of all of the above (`０`-`９`, `．`, `，`, `￥`, `＄`, `ＣＮＹ`, the ideographic space),
 *   no-break and thin spaces.
 *
 * Everything else is rejected with a ProtocolError whose message quotes the input. The reasoning, since a
 * cashier's typo or a misconfigured host must never become a wrong charge:
 *
 * - A single `.` or `,` followed by exactly three digits (`1,234`, `1.234`, `12.505`) reads two ways:
 *   thousands grouping, or a decimal separator with three decimals. It is accepted only where one reading
 *   is the way that currency is normally written: `,` as grouping for currencies without decimals (JPY
 *   `1,234` = 1234), `.` as the decimal point for three-decimal currencies (KWD `1.250` = 1250 fils, which
 *   is also what formatMoney prints). Everything else of that shape is `money.ambiguous`: for CNY, `1.234`
 *   may be a slip for `1.23` and `1,234` may be a decimal comma, and the grouping reading would charge a
 *   thousand times too much. `1,234.50`, `1,234,567` and `0.125` are not ambiguous and are not affected.
 * - Decimals beyond the currency's exponent are never rounded and never dropped, even zeros (`12.500`
 *   CNY, `1234.00` JPY): they mean the host and the register disagree about the currency.
 * - Zero, a minus sign anywhere around the number (`-5`, `5-`, `¥-5`) and accounting parentheses
 *   (`(5.00)`) are rejected: a refund is not a charge.
 * - A marker that is never used for the currency is `money.currency_mismatch`, whether it names one
 *   currency (`€12` for CNY) or several (`$12` for CNY: `$` is never a yuan sign, so the host prices in
 *   another currency and charging 12 yuan would be wrong). Unknown text around the number is rejected.
 * - A separator at either end (`.50`, `12.`), two separators in a row, separators mixed in impossible
 *   places, other digit scripts, `+`, exponents (`1e3`) and more than 64 characters are rejected.
 * - Amounts above Number.MAX_SAFE_INTEGER minor units are rejected, never approximated.
 */
import { ProtocolError } from './errors';

/** An amount in minor units (fen, cents; yen for JPY): a safe integer, > 0 for an amount to charge. */
export interface Money {
  value: number;
  currency: string;
}

/** ISO 4217 codes payconnect accepts, with their exponent (decimals in the minor unit). */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = Object.freeze({
  CNY: 2,
  HKD: 2,
  TWD: 2,
  MOP: 2,
  USD: 2,
  EUR: 2,
  GBP: 2,
  JPY: 0,
  KRW: 0,
  VND: 0,
  KWD: 3,
  BHD: 3,
  OMR: 3,
  JOD: 3,
  TND: 3,
  SGD: 2,
  AUD: 2,
  CAD: 2,
  NZD: 2,
  CHF: 2,
  THB: 2,
  MYR: 2,
  INR: 2,
  IDR: 2,
  PHP: 2,
  SEK: 2,
  NOK: 2,
  DKK: 2,
  PLN: 2,
  CZK: 2,
  HUF: 2,
  RUB: 2,
  BRL: 2,
  MXN: 2,
  ZAR: 2,
  AED: 2,
  SAR: 2,
  ISK: 0,
  CLP: 0,
  UGX: 0,
  XOF: 0,
  XAF: 0,
});

export const CURRENCIES: readonly string[] = Object.freeze(Object.keys(CURRENCY_EXPONENTS));

const DOLLARS = ['USD', 'HKD', 'TWD', 'SGD', 'AUD', 'CAD', 'NZD', 'MOP', 'MXN', 'CLP'];

/** Currency markers (upper-cased) and the currencies each may stand for. ISO codes are added below. */
const MARKERS: ReadonlyMap<string, readonly string[]> = new Map<string, readonly string[]>([
  ...CURRENCIES.map((code): [string, string[]] => [code, [code]]),
  ['¥', ['CNY', 'JPY']],
  ['元', ['CNY', 'TWD', 'HKD', 'MOP']],
  ['円', ['JPY']],
  ['RMB', ['CNY']],
  ['$', DOLLARS],
  ['US$', ['USD']],
  ['HK$', ['HKD']],
  ['NT$', ['TWD']],
  ['S$', ['SGD']],
  ['A$', ['AUD']],
  ['AU$', ['AUD']],
  ['C$', ['CAD']],
  ['CA$', ['CAD']],
  ['NZ$', ['NZD']],
  ['MOP$', ['MOP']],
  ['MX$', ['MXN']],
  ['R$', ['BRL']],
  ['€', ['EUR']],
  ['£', ['GBP']],
  ['₩', ['KRW']],
  ['₫', ['VND']],
  ['₹', ['INR']],
  ['₱', ['PHP']],
  ['฿', ['THB']],
  ['₽', ['RUB']],
  ['RM', ['MYR']],
  ['RP', ['IDR']],
  ['R', ['ZAR']],
  ['KR', ['SEK', 'NOK', 'DKK', 'ISK']],
  ['ZŁ', ['PLN']],
  ['KČ', ['CZK']],
  ['FT', ['HUF']],
]);

/** What formatMoney puts before the number; currencies not listed get their ISO code and a space. */
const DISPLAY_SYMBOLS: Readonly<Record<string, string>> = {
  CNY: '¥',
  JPY: '¥',
  USD: '$',
  EUR: '€',
  GBP: '£',
  KRW: '₩',
  HKD: 'HK$',
  TWD: 'NT$',
  SGD: 'S$',
  AUD: 'A$',
  CAD: 'C$',
  NZD: 'NZ$',
  MOP: 'MOP$',
  MXN: 'MX$',
  BRL: 'R$',
  INR: '₹',
  PHP: '₱',
  THB: '฿',
  VND: '₫',
  RUB: '₽',
};

/** Longest amount text (after trimming) worth reading; anything longer is not an amount a host prints. */
const MAX_AMOUNT_TEXT = 64;

/** Single characters folded before parsing; the full-width ASCII block U+FF01–U+FF5E is folded by offset. */
const FOLD: ReadonlyMap<string, string> = new Map([
  ['\u3000', ' '], // ideographic space
  ['\u00a0', ' '], // no-break space
  ['\u202f', ' '], // narrow no-break space (French grouping)
  ['\u2009', ' '], // thin space
  ['\uffe5', '¥'], // full-width yen/yuan sign
  ['\uffe1', '£'],
  ['\uffe6', '₩'],
  ['\u2212', '-'], // minus sign: folded so that it is reported as negative, not as garbage
  ['\u2013', '-'], // en dash, likewise
  ['\u2019', "'"], // right single quotation mark used as a Swiss grouping apostrophe
]);

const GROUPING_ONLY = new Set([' ', "'"]);
const SEPARATORS = new Set(['.', ',', ' ', "'"]);

export function isKnownCurrency(code: unknown): code is string {
  return typeof code === 'string' && Object.hasOwn(CURRENCY_EXPONENTS, code);
}

/** Decimals in the currency's minor unit: CNY 2, JPY 0, KWD 3. */
export function currencyExponent(code: string): number {
  if (!isKnownCurrency(code)) {
    throw new ProtocolError(
      'money.unknown_currency',
      `${quote(code)} is not a currency payconnect knows; use an ISO 4217 code in capitals such as CNY, USD or JPY.`,
      { subject: 'currency' },
    );
  }
  return CURRENCY_EXPONENTS[code];
}

/** Validates and builds a Money: `value` a safe integer of minor units > 0, `currency` a known code. */
export function money(value: number, currency: string): Money {
  currencyExponent(currency);
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ProtocolError(
      'money.not_integer',
      `An amount must be a whole number of minor units (fen, cents), got ${quote(value)}.`,
      { subject: 'amount' },
    );
  }
  if (value > Number.MAX_SAFE_INTEGER) {
    throw new ProtocolError(
      'money.too_large',
      `The amount ${value} minor units is too large to handle exactly.`,
      {
        subject: 'amount',
      },
    );
  }
  if (value < 0) {
    throw new ProtocolError(
      'money.negative',
      `The amount ${value} is negative; only positive amounts can be charged.`,
      {
        subject: 'amount',
      },
    );
  }
  if (value === 0) {
    throw new ProtocolError('money.zero', 'The amount is zero; there is nothing to charge.', {
      subject: 'amount',
    });
  }
  return { value, currency };
}

/** True for an object with a valid `value` and `currency` (other properties are not looked at). */
export function isMoney(x: unknown): x is Money {
  if (typeof x !== 'object' || x === null) return false;
  const { value, currency } = x as Record<string, unknown>;
  return isKnownCurrency(currency) && Number.isSafeInteger(value) && (value as number) > 0;
}

/**
 * Prints an amount with a `.` decimal point: `12.50`, JPY `1234`, KWD `1.250`. `grouping` adds `,` every
 * three digits (`1,234.50`); `symbol` puts the currency's sign or ISO code in front (`¥12.50`, `KWD 1.250`).
 * Both default to off, the form a machine reads best. The output always parses back with parseAmount.
 */
export function formatMoney(m: Money, opts: { symbol?: boolean; grouping?: boolean } = {}): string {
  const { value, currency } = money(m.value, m.currency);
  const exponent = CURRENCY_EXPONENTS[currency];
  const digits = String(value).padStart(exponent + 1, '0');
  const integer = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent);
  const shown = opts.grouping ? groupThousands(integer) : integer;
  const number = exponent > 0 ? `${shown}.${fraction}` : shown;
  if (!opts.symbol) return number;
  return (DISPLAY_SYMBOLS[currency] ?? `${currency} `) + number;
}

export function addMoney(a: Money, b: Money): Money {
  sameCurrency(a, b, 'add');
  // Both are safe integers, so their sum is exact unless it passes 2^53, which money() then refuses.
  return money(a.value + b.value, a.currency);
}

/** -1, 0 or 1 as `a` is less than, equal to or greater than `b`; refuses different currencies. */
export function compareMoney(a: Money, b: Money): -1 | 0 | 1 {
  sameCurrency(a, b, 'compare');
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

function sameCurrency(a: Money, b: Money, verb: string): void {
  money(a.value, a.currency);
  money(b.value, b.currency);
  if (a.currency !== b.currency) {
    throw new ProtocolError(
      'money.mixed_currencies',
      `Cannot ${verb} ${a.currency} and ${b.currency} amounts: they are different currencies.`,
      { subject: 'currency' },
    );
  }
}

/** Parses host text into Money; see the top of this file for every accepted form and why. */
export function parseAmount(text: string, currency: string): Money {
  const exponent = currencyExponent(currency);
  if (typeof text !== 'string') {
    throw amountError('money.not_text', `The amount must be text, got ${quote(text)}.`);
  }
  const normalized = fold(text).trim();
  if (normalized === '') {
    throw amountError('money.empty', `The amount ${quote(text)} is empty.`);
  }
  if (normalized.length > MAX_AMOUNT_TEXT) {
    throw amountError(
      'money.too_long',
      `The amount ${quote(text)} is longer than ${MAX_AMOUNT_TEXT} characters.`,
    );
  }

  // The number runs from the first to the last digit or separator; around it only signs and markers.
  const first = normalized.search(/[0-9.,]/);
  const last = lastIndexOfNumberChar(normalized);
  const body = first < 0 ? '' : normalized.slice(first, last + 1);
  if (!/[0-9]/.test(body)) {
    throw amountError('money.not_a_number', `The amount ${quote(text)} has no digits.`);
  }
  const before = readAffix(normalized.slice(0, first));
  const after = readAffix(normalized.slice(last + 1));
  if (before.minus || after.minus || (before.open && after.close)) {
    throw amountError(
      'money.negative',
      `The amount ${quote(text)} is negative; only positive amounts can be charged.`,
    );
  }
  if (before.open || before.close || after.open || after.close) {
    throw amountError('money.bad_format', `The amount ${quote(text)} has a stray parenthesis.`);
  }
  checkMarker(before.marker, text, currency);
  checkMarker(after.marker, text, currency);

  const { integer, fraction } = readNumber(body, text, currency, exponent);
  if (fraction.length > exponent) {
    const has = exponent === 0 ? 'has no decimals' : `has only ${exponent}`;
    throw amountError(
      'money.too_many_decimals',
      `The amount ${quote(text)} has ${fraction.length} decimal${fraction.length === 1 ? '' : 's'}, but ${currency} ${has}; it is never rounded.`,
    );
  }
  const minor = BigInt(integer + fraction.padEnd(exponent, '0'));
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw amountError('money.too_large', `The amount ${quote(text)} is too large to handle exactly.`);
  }
  if (minor === 0n) {
    throw amountError('money.zero', `The amount ${quote(text)} is zero; there is nothing to charge.`);
  }
  return { value: Number(minor), currency };
}

/**
 * Splits the number into its digit groups and decides which separator, if any, is the decimal one.
 * Returns the integer digits (grouping removed) and the decimal digits.
 */
function readNumber(
  body: string,
  text: string,
  currency: string,
  exponent: number,
): { integer: string; fraction: string } {
  const groups: string[] = [''];
  const seps: string[] = [];
  for (const ch of body) {
    if (ch >= '0' && ch <= '9') {
      groups[groups.length - 1] += ch;
    } else if (SEPARATORS.has(ch)) {
      seps.push(ch);
      groups.push('');
    } else {
      throw amountError(
        'money.bad_format',
        `The amount ${quote(text)} contains ${quote(ch)}, which is not part of a number.`,
      );
    }
  }
  if (groups[0] === '') {
    throw amountError(
      'money.bad_format',
      `The amount ${quote(text)} starts with ${quote(seps[0])}; write a digit before it (0.50, not .50).`,
    );
  }
  if (groups[groups.length - 1] === '') {
    throw amountError(
      'money.bad_format',
      `The amount ${quote(text)} ends with ${quote(seps[seps.length - 1])}; digits are missing after it.`,
    );
  }
  if (groups.includes('')) {
    throw amountError('money.bad_format', `The amount ${quote(text)} has two separators in a row.`);
  }
  if (seps.length === 0) return { integer: groups[0], fraction: '' };

  const kinds = new Set(seps);
  if (kinds.size === 1) {
    const sep = seps[0];
    // A space or apostrophe is never a decimal separator, and neither is a separator that appears twice.
    if (GROUPING_ONLY.has(sep) || seps.length > 1) {
      checkGrouping(groups, text, currency);
      return { integer: groups.join(''), fraction: '' };
    }
    const [integer, tail] = groups;
    if (tail.length !== 3 || !isFirstGroup(integer)) return { integer, fraction: tail };
    // One `.` or `,` and three digits: grouping or three decimals. See the top of this file.
    if (exponent === 0 && sep === ',') return { integer: integer + tail, fraction: '' };
    if (exponent === 3 && sep === '.') return { integer, fraction: tail };
    const alternative =
      exponent === 3
        ? `${integer}.${tail} ${currency}`
        : `${integer}.${tail}, which has more decimals than ${currency}`;
    throw amountError(
      'money.ambiguous',
      `The amount ${quote(text)} is ambiguous: it could be ${integer}${tail} (with ${quote(sep)} separating thousands) or ${alternative}. ` +
        `Enter it without that separator, or with all of its decimals.`,
    );
  }

  // Two kinds of separator: the last one is the decimal separator and appears once; the others group.
  const decimal = seps[seps.length - 1];
  const grouping = seps.slice(0, -1);
  if (GROUPING_ONLY.has(decimal) || grouping.includes(decimal) || new Set(grouping).size !== 1) {
    throw amountError(
      'money.mixed_separators',
      `The amount ${quote(text)} mixes separators (${[...kinds].map(quote).join(', ')}) in a way no number is written.`,
    );
  }
  const integerGroups = groups.slice(0, -1);
  checkGrouping(integerGroups, text, currency);
  return { integer: integerGroups.join(''), fraction: groups[groups.length - 1] };
}

/** A leading thousands group: 1 to 3 digits, not starting with 0. */
function isFirstGroup(group: string): boolean {
  return group.length >= 1 && group.length <= 3 && group[0] !== '0';
}

/** Grouping only checks for typos (the digits are the same either way), so Indian lakh grouping is fine for INR. */
function checkGrouping(groups: string[], text: string, currency: string): void {
  const rest = groups.slice(1);
  const thousands = isFirstGroup(groups[0]) && rest.every((g) => g.length === 3);
  const lakhs =
    currency === 'INR' &&
    groups[0].length <= 2 &&
    groups[0][0] !== '0' &&
    rest.slice(0, -1).every((g) => g.length === 2) &&
    rest[rest.length - 1].length === 3;
  if (!thousands && !lakhs) {
    throw amountError(
      'money.bad_grouping',
      `The amount ${quote(text)} has digits grouped wrongly: thousands groups have three digits (1,234,567.50).`,
    );
  }
}

function checkMarker(marker: string, text: string, currency: string): void {
  if (marker === '') return;
  const currencies = MARKERS.get(marker.toUpperCase());
  if (currencies === undefined) {
    throw amountError(
      'money.unknown_symbol',
      `The amount ${quote(text)} has ${quote(marker)} beside the number, which is not a currency sign or code payconnect accepts.`,
    );
  }
  if (!currencies.includes(currency)) {
    throw amountError(
      'money.currency_mismatch',
      `The amount ${quote(text)} is marked ${quote(marker)} (${currencies.join(', ')}), but this register charges ${currency}.`,
    );
  }
}

/** The text on one side of the number: signs and parentheses noted, the rest is the currency marker. */
function readAffix(affix: string): { minus: boolean; open: boolean; close: boolean; marker: string } {
  return {
    minus: affix.includes('-'),
    open: affix.includes('('),
    close: affix.includes(')'),
    marker: affix.replace(/[-()]/g, '').trim(),
  };
}

function lastIndexOfNumberChar(s: string): number {
  for (let i = s.length - 1; i >= 0; i--) {
    if (/[0-9.,]/.test(s[i])) return i;
  }
  return -1;
}

function fold(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    out += cp >= 0xff01 && cp <= 0xff5e ? String.fromCharCode(cp - 0xfee0) : (FOLD.get(ch) ?? ch);
  }
  return out;
}

function groupThousands(digits: string): string {
  let out = '';
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ',';
    out += digits[i];
  }
  return out;
}

function amountError(code: string, message: string): ProtocolError {
  return new ProtocolError(code, message, { subject: 'amount' });
}

/** The input as a support engineer would want to see it: quoted, escapes visible, cut when long. */
function quote(x: unknown): string {
  let shown: string;
  try {
    shown = typeof x === 'string' ? JSON.stringify(x) : typeof x === 'bigint' ? `${x}n` : String(x);
  } catch {
    shown = Object.prototype.toString.call(x);
  }
  return shown.length > 80 ? `${shown.slice(0, 77)}…` : shown;
}
