/**
 * Receipt rendering: ESC/POS bytes for the printer, plain text for logs and the local API, and an SVG
 * preview for the status page, all from the one layout in layout.ts.
 *
 * How the ESC/POS bytes are made. @point-of-sale/receipt-printer-encoder builds the command stream
 * (initialize, bold, size, QR code, feed and cut), but its text path knows only single-byte code pages
 * (its codepage encoder has cp437, cp850, … and no GB18030 or GBK), and its line composer counts every
 * character as one column. So the text of each line, already laid out to the printer's columns, is
 * encoded here with iconv-lite (gb18030 or cp437; utf8 with Buffer) and handed to the encoder as raw
 * bytes, and the encoder's own wrapping and alignment are not used. The printer is put in the right mode
 * first, because the encoder's initialize() sends ESC @ and FS . (Chinese mode off):
 *
 * - gb18030: FS & (Chinese character mode on), so two-byte and four-byte GB18030 codes print as Hanzi;
 * - cp437: ESC t 0 (code page PC437);
 * - utf8: nothing; the printer must be set to UTF-8 itself.
 */
import ReceiptPrinterEncoder from '@point-of-sale/receipt-printer-encoder';
import { align, displayWidth, encodeText, layoutReceipt, ReceiptLine, wrap } from './layout';
import { ReceiptData, ReceiptLayout } from './receipt';

/** ESC/POS: FS & — Chinese character mode on. */
const FS_CHINESE_ON = [0x1c, 0x26];
/** ESC/POS: ESC t 0 — character code table PC437. */
const ESC_CODEPAGE_437 = [0x1b, 0x74, 0x00];
/** Blank lines fed before the cut, so the last line clears the cutter. */
const FEED_BEFORE_CUT = 4;
/** QR module size in dots: about 2.5 cm for a short payment id, fine on 58 mm paper. */
const QR_MODULE_SIZE = 6;

/** SVG preview geometry, in px. */
const SVG = { fontSize: 14, charWidth: 8.4, lineHeight: 20, margin: 12, qrSize: 120 } as const;

/** The receipt as ESC/POS bytes for a printer of `layout.width` columns in `layout.encoding`. */
export function renderReceipt(data: ReceiptData, layout: ReceiptLayout): Uint8Array {
  return renderLines(layoutReceipt(data, layout), layout);
}

/**
 * Laid-out lines (layout.ts) as ESC/POS bytes: initialize, the encoding's mode, each line, QR codes
 * centered, then a partial cut. Other short prints (printer-tap's paid footer) use it with lines of
 * their own.
 */
export function renderLines(
  lines: readonly ReceiptLine[],
  layout: ReceiptLayout,
  options: { cut?: boolean } = {},
): Uint8Array {
  const { width, encoding } = layout;
  const encoder = new ReceiptPrinterEncoder({
    language: 'esc-pos',
    columns: width,
    newline: '\n',
    feedBeforeCut: FEED_BEFORE_CUT,
  });
  encoder.initialize();
  if (encoding === 'gb18030') encoder.raw(FS_CHINESE_ON);
  if (encoding === 'cp437') encoder.raw(ESC_CODEPAGE_437);

  for (const line of lines) {
    if (line.kind === 'qr') {
      encoder
        .align('center')
        .qrcode(line.data, { model: 2, size: QR_MODULE_SIZE, errorlevel: 'm' })
        .align('left');
      continue;
    }
    // Trailing spaces only cost paper time; leading ones are the alignment.
    const text =
      line.kind === 'title' ? align(line.text, Math.floor(width / 2), 'center', encoding) : line.text;
    const bytes = encodeText(text.trimEnd(), encoding);
    if (line.kind === 'title') encoder.bold(true).size(2, 2);
    if (line.kind === 'text' && line.bold) encoder.bold(true);
    if (bytes.length > 0) encoder.raw(bytes);
    if (line.kind === 'title') encoder.bold(false).size(1, 1);
    if (line.kind === 'text' && line.bold) encoder.bold(false);
    encoder.newline();
  }
  if (options.cut !== false) encoder.cut('partial');
  return encoder.encode();
}

/** The words of the copy mark; the first line is the one a checker (and the chaos harness) looks for. */
export const COPY_MARK = {
  title: '** 补打 REPRINT **',
  titleAscii: '** REPRINT **',
  zh: '打印中断后补打，可能与上一张重复',
  en: 'Copy: printing was interrupted',
} as const;

/**
 * What prints before a receipt that may be on paper already (the print queue's `copy`): a bold, centered
 * "补打 REPRINT" and one line saying why, in the printer's encoding, no cut (the receipt follows). The
 * receipt's own ESC @ resets the printer after it.
 */
export function renderCopyMark(layout: ReceiptLayout): Uint8Array {
  const { width, encoding } = layout;
  const chinese = encoding !== 'cp437';
  const lines: ReceiptLine[] = [
    {
      kind: 'text',
      text: align(chinese ? COPY_MARK.title : COPY_MARK.titleAscii, width, 'center', encoding),
      bold: true,
    },
  ];
  const why = chinese ? [COPY_MARK.zh, COPY_MARK.en] : [COPY_MARK.en];
  for (const l of why)
    for (const w of wrap(l, width, encoding))
      lines.push({ kind: 'text', text: align(w, width, 'center', encoding), bold: false });
  return renderLines(lines, layout, { cut: false });
}

/** The receipt as plain text: one line per printed line, each exactly `layout.width` columns, `\n` after each. */
export function renderReceiptText(data: ReceiptData, layout: ReceiptLayout): string {
  return textLines(layoutReceipt(data, layout), layout)
    .map((l) => `${l.text}\n`)
    .join('');
}

/**
 * A preview of the receipt as an SVG image: the text lines in a monospace font (each line stretched to
 * its column count, so wide characters line up whatever font the browser picks), the store name large and
 * bold, and a dashed box where the QR code prints.
 */
export function renderReceiptSvg(data: ReceiptData, layout: ReceiptLayout): string {
  const { width, encoding } = layout;
  const lines = layoutReceipt(data, layout);
  const inner = width * SVG.charWidth;
  const svgWidth = inner + 2 * SVG.margin;
  const parts: string[] = [];
  let y = SVG.margin;
  for (const line of lines) {
    if (line.kind === 'qr') {
      const x = SVG.margin + (inner - SVG.qrSize) / 2;
      parts.push(
        `<rect class="qr" x="${fmt(x)}" y="${fmt(y)}" width="${SVG.qrSize}" height="${SVG.qrSize}" fill="none" stroke="#000" stroke-dasharray="6 4"/>`,
        `<text x="${fmt(x + SVG.qrSize / 2)}" y="${fmt(y + SVG.qrSize / 2)}" text-anchor="middle" dominant-baseline="middle">QR</text>`,
      );
      y += SVG.qrSize + SVG.lineHeight / 2;
      continue;
    }
    if (line.kind === 'title') {
      const h = 2 * SVG.lineHeight;
      const length = displayWidth(line.text, encoding) * 2 * SVG.charWidth;
      parts.push(
        `<text xml:space="preserve" x="${fmt(SVG.margin + inner / 2)}" y="${fmt(y + h * 0.75)}" text-anchor="middle" font-size="${2 * SVG.fontSize}" font-weight="bold" textLength="${fmt(length)}" lengthAdjust="spacingAndGlyphs">${escapeXml(line.text)}</text>`,
      );
      y += h;
      continue;
    }
    const shown = line.text.trimEnd();
    if (shown.trim() !== '') {
      const length = displayWidth(shown, encoding) * SVG.charWidth;
      const bold = line.bold ? ' font-weight="bold"' : '';
      parts.push(
        `<text xml:space="preserve" x="${SVG.margin}" y="${fmt(y + SVG.lineHeight * 0.75)}"${bold} textLength="${fmt(length)}" lengthAdjust="spacingAndGlyphs">${escapeXml(shown)}</text>`,
      );
    }
    y += SVG.lineHeight;
  }
  const height = y + SVG.margin;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${fmt(svgWidth)}" height="${fmt(height)}" viewBox="0 0 ${fmt(svgWidth)} ${fmt(height)}">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<g font-family="'DejaVu Sans Mono', 'Noto Sans Mono CJK SC', ui-monospace, monospace" font-size="${SVG.fontSize}" fill="#000">`,
    ...parts,
    `</g>`,
    `</svg>`,
    '',
  ].join('\n');
}

/** The layout as plain lines of exactly `width` columns; the title is centered at single size. */
function textLines(lines: ReceiptLine[], layout: ReceiptLayout): { text: string }[] {
  const { width, encoding } = layout;
  return lines.map((line) => {
    if (line.kind === 'qr') return { text: align('[QR]', width, 'center', encoding) };
    if (line.kind === 'title') return { text: align(line.text, width, 'center', encoding) };
    return { text: line.text };
  });
}

/** Escapes text for SVG/XML content and attributes, and drops what XML 1.0 cannot hold at all. */
export function escapeXml(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}
