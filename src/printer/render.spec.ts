import fc from 'fast-check';
import { parseAmount } from '../protocol/money';
import { decodeEscPos } from './escpos-decode';
import { displayWidth, RECEIPT_ENCODINGS, RECEIPT_WIDTHS, receiptMoney } from './layout';
import { ReceiptData, ReceiptLayout } from './receipt';
import { escapeXml, renderReceipt, renderReceiptSvg, renderReceiptText } from './render';

const chinese: ReceiptData = {
  storeName: '好又多咖啡',
  registerId: 'R1',
  orderId: 'A-10023',
  amount: { value: 123450, currency: 'CNY' },
  method: '支付宝 Alipay',
  paymentId: 'pay_01JABCDEF0123',
  time: '2026-05-01T10:15:00.000+08:00',
  items: [
    { name: '拿铁 Latte grande with oat milk', quantity: 2, amount: { value: 3600, currency: 'CNY' } },
    { name: '蛋糕', amount: { value: 118650, currency: 'CNY' } },
  ],
  footer: '谢谢惠顾 Thank you',
};

const latin: ReceiptData = {
  storeName: 'Café Luna',
  registerId: 'R2',
  orderId: '10023',
  amount: { value: 1250, currency: 'EUR' },
  method: 'wallet',
  paymentId: 'pay_7',
  time: '2026-05-01T08:00:00Z',
  items: [{ name: 'Café au lait', amount: { value: 1250, currency: 'EUR' } }],
};

const layouts: ReceiptLayout[] = RECEIPT_WIDTHS.flatMap((width) =>
  RECEIPT_ENCODINGS.map((encoding) => ({ width, encoding })),
);

describe(renderReceipt.name, () => {
  describe.each(layouts)('width $width, $encoding', (layout) => {
    const decoded = decodeEscPos(renderReceipt(chinese, layout), { encoding: layout.encoding });

    it('decodes back to the order id, the total, the payment id and one cut', () => {
      expect(decoded.text).toContain('A-10023');
      expect(decoded.lines.find((l) => l.startsWith('TOTAL'))).toMatch(
        new RegExp(`${escapeRegExp(receiptMoney(chinese.amount, layout.encoding, true))}$`),
      );
      expect(decoded.text).toContain('pay_01JABCDEF0123');
      expect(decoded.qr).toEqual(['pay_01JABCDEF0123']);
      expect(decoded.cuts).toBe(1);
      expect(decoded.truncatedAt).toBeUndefined();
    });

    it('prints what renderReceiptText shows, line for line (trailing spaces aside)', () => {
      const text = renderReceiptText(chinese, layout).split('\n');
      const printed = decoded.lines.filter((l) => l.trim() !== '').map((l) => l.trim());
      const shown = text.filter((l) => l.trim() !== '' && l.trim() !== '[QR]').map((l) => l.trim());
      expect(printed).toEqual(shown);
    });

    it('keeps every printed line within the width (the store name counted at double width)', () => {
      const title = new Set(decoded.lines.slice(0, 2));
      for (const line of decoded.lines) {
        const columns = displayWidth(line, layout.encoding) * (title.has(line) ? 2 : 1);
        expect(columns).toBeLessThanOrEqual(layout.width);
      }
    });
  });

  it('sends the Chinese store name, items and footer as GB18030 in Chinese mode', () => {
    const bytes = renderReceipt(chinese, { width: 32, encoding: 'gb18030' });
    // ESC @ and FS . come from the encoder's initialize(); FS & turns Chinese mode back on.
    expect(Array.from(bytes.subarray(0, 9))).toEqual([0x1b, 0x40, 0x1c, 0x2e, 0x1b, 0x4d, 0x00, 0x1c, 0x26]);
    const gb = Buffer.from([0xba, 0xc3, 0xd3, 0xd6, 0xb6, 0xe0, 0xbf, 0xa7, 0xb7, 0xc8]); // 好又多咖啡
    expect(Buffer.from(bytes).includes(gb)).toBe(true);
    const out = decodeEscPos(bytes, { encoding: 'gb18030' });
    expect(out.lines[0].trim()).toBe('好又多咖啡');
    expect(out.text).toContain('蛋糕');
    expect(out.text).toContain('谢谢惠顾 Thank you');
    expect(out.text).toContain('￥1,234.50');
  });

  it('prints the store name bold at double size and the total bold', () => {
    const out = decodeEscPos(renderReceipt(chinese, { width: 42, encoding: 'gb18030' }), {
      encoding: 'gb18030',
    });
    const names = out.commands.map((c) => c.name);
    expect(names).toContain('GS !');
    expect(names.filter((n) => n === 'ESC E').length).toBeGreaterThanOrEqual(4);
  });

  it('selects code page 437 for a cp437 printer and prints the amount so parseAmount reads it', () => {
    const bytes = renderReceipt(latin, { width: 42, encoding: 'cp437' });
    const out = decodeEscPos(bytes, { encoding: 'cp437' });
    expect(out.commands.map((c) => c.name)).toContain('ESC t');
    expect(out.lines[0].trim()).toBe('Café Luna');
    const total = out.lines.find((l) => l.startsWith('TOTAL')) as string;
    expect(total).toBe(`TOTAL${' '.repeat(42 - 5 - 9)}EUR 12.50`);
    expect(parseAmount(total.replace('TOTAL', ''), 'EUR')).toEqual(latin.amount);
  });

  it('prints Chinese as ? on a cp437 printer rather than as garbage', () => {
    const out = decodeEscPos(renderReceipt(chinese, { width: 32, encoding: 'cp437' }), { encoding: 'cp437' });
    expect(out.lines[0].trim()).toBe('?????');
  });

  it('renders a receipt without items, footer or payment id', () => {
    const bare = { ...latin, items: undefined, footer: undefined, paymentId: '' };
    const out = decodeEscPos(renderReceipt(bare, { width: 32, encoding: 'utf8' }), { encoding: 'utf8' });
    expect(out.qr).toEqual([]);
    expect(out.text).toContain('€12.50');
  });

  it('round-trips any order id, amount and payment id', () => {
    const id = fc.string({ unit: fc.constantFrom(...'ABCXYZ0123456789-_/.'), minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(
        fc.constantFrom(...layouts),
        id,
        id,
        fc.integer({ min: 1, max: 10 ** 12 }),
        (layout, orderId, paymentId, value) => {
          const data = { ...chinese, orderId, paymentId, amount: { value, currency: 'CNY' } };
          const out = decodeEscPos(renderReceipt(data, layout), { encoding: layout.encoding });
          expect(out.text.replace(/\s+/g, '')).toContain(orderId);
          expect(out.qr).toEqual([paymentId]);
          const total = out.lines.find((l) => l.startsWith('TOTAL')) as string;
          expect(parseAmount(total.replace('TOTAL', ''), 'CNY')).toEqual(data.amount);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe(renderReceiptText.name, () => {
  it('lays a 32-column Chinese receipt out exactly', () => {
    expect(renderReceiptText(chinese, { width: 32, encoding: 'gb18030' })).toBe(
      [
        '           好又多咖啡           ',
        '                                ',
        'Register                      R1',
        'Order                    A-10023',
        'Time  2026-05-01 10:15:00 +08:00',
        '--------------------------------',
        '2 x 拿铁 Latte grande with 36.00',
        'oat milk                        ',
        '蛋糕                    1,186.50',
        '--------------------------------',
        'TOTAL                 ￥1,234.50',
        'Method             支付宝 Alipay',
        'Payment        pay_01JABCDEF0123',
        '                                ',
        '              [QR]              ',
        '                                ',
        '       谢谢惠顾 Thank you       ',
        '',
      ].join('\n'),
    );
  });

  it('makes every line exactly the width, CJK counted as two columns', () => {
    for (const layout of layouts) {
      const lines = renderReceiptText(chinese, layout).split('\n').slice(0, -1);
      for (const line of lines) expect(displayWidth(line, layout.encoding)).toBe(layout.width);
    }
  });
});

describe(renderReceiptSvg.name, () => {
  it('is an SVG with the text lines, the title in bold and a box for the QR code', () => {
    const svg = renderReceiptSvg(chinese, { width: 32, encoding: 'gb18030' });
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="[\d.]+" height="[\d.]+"/);
    // Ten columns at double size, 8.4 px a column.
    expect(svg).toContain(
      'font-weight="bold" textLength="168" lengthAdjust="spacingAndGlyphs">好又多咖啡</text>',
    );
    expect(svg).toContain('<rect class="qr"');
    expect(svg).toContain('>TOTAL                 ￥1,234.50</text>');
    expect(svg.trim().endsWith('</svg>')).toBe(true);
  });

  it('escapes what the host sent, so a store name cannot inject markup', () => {
    const svg = renderReceiptSvg(
      { ...latin, storeName: '<script>alert("x")</script>', items: [{ name: `Tom & Jerry's <b>` }] },
      { width: 42, encoding: 'utf8' },
    );
    expect(svg).not.toContain('<script>');
    expect(svg).not.toContain('<b>');
    expect(svg).toContain('&lt;script&gt;alert(&quot;x&quot;)');
    expect(svg).toContain('Tom &amp; Jerry&apos;s &lt;b&gt;');
  });

  it('drops characters XML cannot hold', () => {
    expect(escapeXml('a\u0001b\ud800c\uffffd')).toBe('abcd');
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
