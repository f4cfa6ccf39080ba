/**
 * Receipt layout: turns ReceiptData into lines of exactly `width` printer columns, once, for every output
 * (ESC/POS bytes, plain text, SVG preview), so what the status page shows is what the paper shows.
 *
 * Columns are counted the way the printer counts them, which depends on the encoding:
 *
 * - gb18030: a Chinese printer prints every multi-byte character (any non-ASCII one: 汉字, full-width
 *   forms, but also `é`, `·` and `¥`) from its 24×24 Hanzi font, two columns wide; ASCII is one column.
 * - cp437: one byte, one column. Characters cp437 does not have are printed as `?` and laid out as `?`.
 * - utf8: East Asian wide and full-width characters (CJK, kana, Hangul, full-width forms, emoji) are two
 *   columns, everything else one, as a UTF-8 capable printer or a terminal shows them.
 *
 * Text from the host is cleaned first: NFC, control characters and line breaks become spaces, combining
 * marks and format characters that NFC leaves alone are dropped (a printer would print them as boxes).
 */
import * as iconv from 'iconv-lite';
import { ProtocolError } from '../protocol/errors';
import { formatMoney, Money } from '../protocol/money';
import { ReceiptData, ReceiptLayout } from './receipt';

export type ReceiptEncoding = ReceiptLayout['encoding'];

/** One line of the laid-out receipt. */
export type ReceiptLine =
  /** The store name: bold, double width and height, centered by each renderer; at most width/2 columns. */
  | { kind: 'title'; text: string }
  /** A normal line, already padded to exactly `width` columns. */
  | { kind: 'text'; text: string; bold: boolean }
  /** A QR code of `data` (the payment id), centered. */
  | { kind: 'qr'; data: string };

export const RECEIPT_WIDTHS: readonly ReceiptLayout['width'][] = [32, 42, 48];
export const RECEIPT_ENCODINGS: readonly ReceiptEncoding[] = ['gb18030', 'cp437', 'utf8'];

/** Labels printed on the receipt; one place, so a translation later changes one table. */
const LABELS = {
  register: 'Register',
  order: 'Order',
  time: 'Time',
  total: 'TOTAL',
  method: 'Method',
  payment: 'Payment',
} as const;

/** A name needs this many columns beside its amount before the amount moves to a line of its own. */
const MIN_LEFT_COLUMNS = 8;

/** Checks a layout from a manifest or a caller: the encoder and the column math rely on it. */
export function checkLayout(layout: ReceiptLayout): void {
  if (!RECEIPT_WIDTHS.includes(layout?.width)) {
    throw new ProtocolError(
      'printer.bad_width',
      `A receipt is ${RECEIPT_WIDTHS.join(', ')} characters wide, not ${JSON.stringify(layout?.width)}: 32 for 58 mm paper, 42 or 48 for 80 mm.`,
      { subject: 'receipt.width' },
    );
  }
  if (!RECEIPT_ENCODINGS.includes(layout.encoding)) {
    throw new ProtocolError(
      'printer.bad_encoding',
      `The printer encoding must be one of ${RECEIPT_ENCODINGS.join(', ')}, not ${JSON.stringify(layout.encoding)}.`,
      { subject: 'receipt.encoding' },
    );
  }
}

/** Lays the receipt out; every `text` line is exactly `layout.width` columns (see charWidth). */
export function layoutReceipt(data: ReceiptData, layout: ReceiptLayout): ReceiptLine[] {
  checkLayout(layout);
  const { width, encoding } = layout;
  const clean = (s: string | undefined) => sanitize(s ?? '', encoding);
  const lines: ReceiptLine[] = [];
  const text = (s: string, bold = false) => lines.push({ kind: 'text', text: s, bold });
  const blank = () => text(' '.repeat(width));
  const rule = () => text('-'.repeat(width));

  // Printed double width: half the columns.
  for (const t of wrap(clean(data.storeName), Math.floor(width / 2), encoding)) {
    if (t !== '') lines.push({ kind: 'title', text: t });
  }
  blank();
  for (const l of twoColumns(LABELS.register, clean(data.registerId), width, encoding)) text(l);
  for (const l of twoColumns(LABELS.order, clean(data.orderId), width, encoding)) text(l);
  for (const l of twoColumns(LABELS.time, clean(formatTime(data.time)), width, encoding)) text(l);
  rule();
  if (data.items && data.items.length > 0) {
    for (const item of data.items) {
      const q = item.quantity;
      const name = q !== undefined && q !== 1 ? `${q} x ${item.name}` : item.name;
      const amount = item.amount ? receiptMoney(item.amount, encoding, false) : '';
      for (const l of twoColumns(clean(name), amount, width, encoding)) text(l);
    }
    rule();
  }
  for (const l of twoColumns(LABELS.total, receiptMoney(data.amount, encoding, true), width, encoding)) {
    text(l, true);
  }
  for (const l of twoColumns(LABELS.method, clean(data.method), width, encoding)) text(l);
  const paymentId = clean(data.paymentId);
  for (const l of twoColumns(LABELS.payment, paymentId, width, encoding)) text(l);
  if (paymentId.trim() !== '') {
    blank();
    lines.push({ kind: 'qr', data: data.paymentId });
  }
  const footer = clean(data.footer).trim();
  if (footer !== '') {
    blank();
    for (const l of wrap(footer, width, encoding)) text(align(l, width, 'center', encoding));
  }
  return lines;
}

/**
 * An amount as the receipt prints it: `¥1,234.50`. With gb18030 the yuan sign is the full-width `￥`
 * (GB2312 A3A4), which every Chinese printer font has, rather than U+00A5, a four-byte GB18030 code many
 * do not. When the encoding has no sign for the currency the ISO code is printed (`EUR 12.50` in cp437).
 * Both forms parse back with parseAmount.
 */
export function receiptMoney(m: Money, encoding: ReceiptEncoding, symbol: boolean): string {
  const number = formatMoney(m, { grouping: true });
  if (!symbol) return number;
  let withSymbol = formatMoney(m, { symbol: true, grouping: true });
  if (encoding === 'gb18030') withSymbol = withSymbol.replace('¥', '￥');
  return canEncode(withSymbol, encoding) ? withSymbol : `${m.currency} ${number}`;
}

/** `2026-05-01T10:15:00.000+08:00` → `2026-05-01 10:15:00 +08:00`; anything else is printed as given. */
export function formatTime(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2})?)(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(iso ?? '');
  if (!m) return iso ?? '';
  const zone = m[3] === undefined ? '' : m[3] === 'Z' ? ' UTC' : ` ${m[3]}`;
  return `${m[1]} ${m[2]}${zone}`;
}

/** Printer columns one character takes; see the top of this file. */
export function charWidth(ch: string, encoding: ReceiptEncoding): 1 | 2 {
  const cp = ch.codePointAt(0) ?? 0;
  if (encoding === 'gb18030') return cp < 0x80 ? 1 : 2;
  if (encoding === 'cp437') return 1;
  return isWide(cp) ? 2 : 1;
}

/** Printer columns a (sanitized) string takes. */
export function displayWidth(text: string, encoding: ReceiptEncoding): number {
  let w = 0;
  for (const ch of text) w += charWidth(ch, encoding);
  return w;
}

/** Pads `text` (at most `width` columns) with spaces to exactly `width` columns. */
export function align(
  text: string,
  width: number,
  how: 'left' | 'center' | 'right',
  encoding: ReceiptEncoding,
): string {
  const room = Math.max(0, width - displayWidth(text, encoding));
  const left = how === 'left' ? 0 : how === 'right' ? room : Math.floor(room / 2);
  return ' '.repeat(left) + text + ' '.repeat(room - left);
}

/**
 * Word-wraps `text` to lines of at most `columns` columns (columns >= 2, so a wide character always
 * fits). Breaks at spaces, between two wide characters (Chinese has no spaces), and inside a word only
 * when the word is longer than a line. Runs of spaces collapse to one. Always returns at least one line.
 */
export function wrap(text: string, columns: number, encoding: ReceiptEncoding): string[] {
  const lines: string[] = [];
  let current = '';
  let used = 0;
  let space = false;
  const breakLine = () => {
    lines.push(current);
    current = '';
    used = 0;
  };
  for (const token of tokens(text, encoding)) {
    if (token.space) {
      space = used > 0;
      continue;
    }
    const gap = space ? 1 : 0;
    space = false;
    if (used + gap + token.width <= columns) {
      current += (gap ? ' ' : '') + token.text;
      used += gap + token.width;
    } else if (token.width <= columns) {
      breakLine();
      current = token.text;
      used = token.width;
    } else {
      // A word longer than a line: split it where the line is full.
      if (gap && used + 1 < columns) {
        current += ' ';
        used += 1;
      }
      for (const ch of token.text) {
        const w = charWidth(ch, encoding);
        if (used + w > columns) breakLine();
        current += ch;
        used += w;
      }
    }
  }
  if (current !== '' || lines.length === 0) lines.push(current);
  return lines;
}

/**
 * `left` and `right` on one line of `width` columns when they fit; otherwise `left` wraps beside `right`
 * (an item name beside its amount), or, when `right` is too long for that, `left` goes above and `right`
 * follows right-aligned. Every line returned is exactly `width` columns.
 */
export function twoColumns(left: string, right: string, width: number, encoding: ReceiptEncoding): string[] {
  const lw = displayWidth(left, encoding);
  const rw = displayWidth(right, encoding);
  if (rw === 0) return wrap(left, width, encoding).map((l) => align(l, width, 'left', encoding));
  if (lw + 1 + rw <= width) return [left + ' '.repeat(width - lw - rw) + right];
  const beside = width - rw - 1;
  if (beside >= MIN_LEFT_COLUMNS) {
    const [first, ...rest] = wrap(left, beside, encoding);
    return [
      align(first, beside, 'left', encoding) + ' ' + right,
      ...rest.map((l) => align(l, width, 'left', encoding)),
    ];
  }
  return [
    ...(left.trim() === '' ? [] : wrap(left, width, encoding)).map((l) => align(l, width, 'left', encoding)),
    ...wrap(right, width, encoding).map((l) => align(l, width, 'right', encoding)),
  ];
}

/**
 * Text from the host made printable: NFC; controls, line and paragraph separators become spaces;
 * combining marks and format characters left after NFC (zero-width joiners, BOMs) are dropped; lone
 * surrogates and, for cp437, characters the code page lacks become `?`.
 */
export function sanitize(text: string, encoding: ReceiptEncoding): string {
  let out = '';
  for (const ch of String(text).normalize('NFC')) {
    if (/[\p{Cc}\u2028\u2029]/u.test(ch)) out += ' ';
    else if (/[\p{Mn}\p{Me}\p{Cf}]/u.test(ch)) continue;
    else if (/\p{Cs}/u.test(ch) || !canEncode(ch, encoding)) out += '?';
    else out += ch;
  }
  return out;
}

const encodable = new Map<string, boolean>();

/** True when every character of `text` survives encoding to `encoding` and back. */
export function canEncode(text: string, encoding: ReceiptEncoding): boolean {
  if (encoding !== 'cp437') return !/\p{Cs}/u.test(text);
  for (const ch of text) {
    let ok = encodable.get(ch);
    if (ok === undefined) {
      ok = iconv.decode(iconv.encode(ch, 'cp437'), 'cp437') === ch;
      encodable.set(ch, ok);
    }
    if (!ok) return false;
  }
  return true;
}

/** Text bytes for the printer in `encoding`. */
export function encodeText(text: string, encoding: ReceiptEncoding): Uint8Array {
  return new Uint8Array(encoding === 'utf8' ? Buffer.from(text, 'utf8') : iconv.encode(text, encoding));
}

function* tokens(
  text: string,
  encoding: ReceiptEncoding,
): Generator<{ text: string; width: number; space: boolean }> {
  let word = '';
  for (const ch of text) {
    if (ch === ' ') {
      if (word) yield { text: word, width: displayWidth(word, encoding), space: false };
      word = '';
      yield { text: ' ', width: 1, space: true };
    } else if (charWidth(ch, encoding) === 2 && isWide(ch.codePointAt(0) ?? 0)) {
      // A Han character, kana or Hangul may be broken before or after; a two-column `é` in gb18030 may not.
      if (word) yield { text: word, width: displayWidth(word, encoding), space: false };
      word = '';
      yield { text: ch, width: 2, space: false };
    } else {
      word += ch;
    }
  }
  if (word) yield { text: word, width: displayWidth(word, encoding), space: false };
}

/** East Asian Wide and Fullwidth code points (Unicode UAX #11), the blocks a receipt meets. */
const WIDE_RANGES: readonly [number, number][] = [
  [0x1100, 0x115f], // Hangul Jamo
  [0x2e80, 0x303e], // CJK radicals, Kangxi, CJK symbols and punctuation
  [0x3041, 0x33ff], // kana, bopomofo, CJK compatibility
  [0x3400, 0x4dbf], // CJK extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi
  [0xa960, 0xa97f], // Hangul Jamo extended A
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19], // vertical forms
  [0xfe30, 0xfe6f], // CJK compatibility forms, small forms
  [0xff00, 0xff60], // full-width forms
  [0xffe0, 0xffe6], // full-width signs (￥)
  [0x1f300, 0x1f64f], // pictographs, emoticons
  [0x1f900, 0x1f9ff], // supplemental pictographs
  [0x20000, 0x3fffd], // CJK extensions B and later
];

function isWide(cp: number): boolean {
  if (cp < 0x1100) return false;
  for (const [lo, hi] of WIDE_RANGES) {
    if (cp < lo) return false;
    if (cp <= hi) return true;
  }
  return false;
}
