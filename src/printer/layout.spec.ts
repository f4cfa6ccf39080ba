import fc from 'fast-check';
import { ProtocolError } from '../protocol/errors';
import { parseAmount } from '../protocol/money';
import {
  charWidth,
  displayWidth,
  formatTime,
  layoutReceipt,
  receiptMoney,
  RECEIPT_ENCODINGS,
  RECEIPT_WIDTHS,
  ReceiptEncoding,
  sanitize,
  twoColumns,
  wrap,
} from './layout';
import { ReceiptData, ReceiptLayout } from './receipt';

const receipt: ReceiptData = {
  storeName: '好又多咖啡 Good Coffee',
  registerId: 'R1',
  orderId: 'A-10023',
  amount: { value: 123450, currency: 'CNY' },
  method: 'Alipay',
  paymentId: 'pay_01JABCDEF0123',
  time: '2026-05-01T10:15:00.000+08:00',
  items: [{ name: '拿铁 Latte', quantity: 2, amount: { value: 3600, currency: 'CNY' } }],
  footer: '谢谢惠顾 Thank you',
};

describe('charWidth and displayWidth', () => {
  it('counts CJK and full-width characters as two columns in every encoding that prints them', () => {
    expect(displayWidth('拿铁', 'gb18030')).toBe(4);
    expect(displayWidth('拿铁', 'utf8')).toBe(4);
    expect(displayWidth('ＡＢ', 'utf8')).toBe(4);
    expect(displayWidth('Latte 12.50', 'utf8')).toBe(11);
    expect(displayWidth('한국', 'utf8')).toBe(4);
  });

  it('counts every non-ASCII character as two columns in gb18030, as a Chinese printer prints it', () => {
    expect(charWidth('é', 'gb18030')).toBe(2);
    expect(charWidth('￥', 'gb18030')).toBe(2);
    expect(charWidth('A', 'gb18030')).toBe(1);
    expect(charWidth('é', 'utf8')).toBe(1);
    expect(charWidth('é', 'cp437')).toBe(1);
  });
});

describe('sanitize', () => {
  it('turns controls and line breaks into spaces and drops zero-width characters', () => {
    expect(sanitize('a\tb\nc\r\u0000d\u2028e', 'utf8')).toBe('a b c  d e');
    expect(sanitize('x\u200dy\ufeffz', 'utf8')).toBe('xyz');
  });

  it('composes accents (NFC) so a letter and its accent are one column', () => {
    expect(sanitize('Cafe\u0301', 'cp437')).toBe('Café');
  });

  it('prints characters cp437 lacks as ?, and keeps everything in gb18030', () => {
    expect(sanitize('咖啡 ¥ €', 'cp437')).toBe('?? ¥ ?');
    expect(sanitize('咖啡 ¥ €', 'gb18030')).toBe('咖啡 ¥ €');
  });

  it('replaces lone surrogates', () => {
    expect(sanitize('a\ud800b', 'gb18030')).toBe('a?b');
  });
});

describe('wrap', () => {
  it('breaks Latin text at spaces', () => {
    expect(wrap('extra shot of espresso please', 12, 'utf8')).toEqual([
      'extra shot',
      'of espresso',
      'please',
    ]);
  });

  it('breaks Chinese text between characters and never splits one', () => {
    expect(wrap('好又多咖啡店', 5, 'gb18030')).toEqual(['好又', '多咖', '啡店']);
  });

  it('splits a word longer than the line', () => {
    expect(wrap('abcdefghij', 4, 'utf8')).toEqual(['abcd', 'efgh', 'ij']);
  });

  it('returns one empty line for empty text', () => {
    expect(wrap('', 10, 'utf8')).toEqual(['']);
  });
});

describe('twoColumns', () => {
  it('puts the amount at the right edge', () => {
    expect(twoColumns('拿铁', '12.50', 16, 'gb18030')).toEqual(['拿铁       12.50']);
  });

  it('wraps a long name beside its amount', () => {
    expect(twoColumns('Latte grande with oat milk', '12.50', 20, 'utf8')).toEqual([
      'Latte grande   12.50',
      'with oat milk       ',
    ]);
  });

  it('moves a value too long to sit beside its label to the lines below, right-aligned', () => {
    const lines = twoColumns('Payment', 'pay_0123456789012345678901234567', 32, 'utf8');
    expect(lines).toEqual(['Payment                         ', 'pay_0123456789012345678901234567']);
  });
});

describe('receiptMoney', () => {
  it('prints the full-width yuan sign for gb18030 and the ISO code where the code page lacks the sign', () => {
    expect(receiptMoney({ value: 123450, currency: 'CNY' }, 'gb18030', true)).toBe('￥1,234.50');
    expect(receiptMoney({ value: 123450, currency: 'CNY' }, 'cp437', true)).toBe('¥1,234.50');
    expect(receiptMoney({ value: 1250, currency: 'EUR' }, 'cp437', true)).toBe('EUR 12.50');
    expect(receiptMoney({ value: 1250, currency: 'EUR' }, 'utf8', true)).toBe('€12.50');
    expect(receiptMoney({ value: 1250, currency: 'EUR' }, 'utf8', false)).toBe('12.50');
  });

  it('prints what parseAmount reads back', () => {
    for (const encoding of RECEIPT_ENCODINGS) {
      for (const currency of ['CNY', 'EUR', 'JPY', 'KWD']) {
        const m = { value: 1234567, currency };
        expect(parseAmount(receiptMoney(m, encoding, true), currency)).toEqual(m);
      }
    }
  });
});

describe('formatTime', () => {
  it('shows an ISO time without the T and the fraction, keeping the zone', () => {
    expect(formatTime('2026-05-01T10:15:00.000+08:00')).toBe('2026-05-01 10:15:00 +08:00');
    expect(formatTime('2026-05-01T02:15:00Z')).toBe('2026-05-01 02:15:00 UTC');
    expect(formatTime('yesterday')).toBe('yesterday');
  });
});

describe(layoutReceipt.name, () => {
  it('rejects a width or an encoding the printer cannot have', () => {
    expect(() => layoutReceipt(receipt, { width: 40 as 42, encoding: 'utf8' })).toThrow(ProtocolError);
    expect(() => layoutReceipt(receipt, { width: 42, encoding: 'latin1' as 'utf8' })).toThrow(/encoding/);
  });

  it('rejects an invalid amount with the money error', () => {
    expect(() =>
      layoutReceipt({ ...receipt, amount: { value: 0, currency: 'CNY' } }, { width: 32, encoding: 'utf8' }),
    ).toThrow(expect.objectContaining({ code: 'money.zero' }));
  });

  it('has the store name as title lines of at most half the width, and a QR line of the payment id', () => {
    const lines = layoutReceipt(receipt, { width: 32, encoding: 'gb18030' });
    const titles = lines.filter((l) => l.kind === 'title');
    expect(titles.map((t) => t.text)).toEqual(['好又多咖啡 Good', 'Coffee']);
    expect(lines).toContainEqual({ kind: 'qr', data: 'pay_01JABCDEF0123' });
  });

  it('leaves out the QR code when there is no payment id', () => {
    const lines = layoutReceipt({ ...receipt, paymentId: '' }, { width: 32, encoding: 'utf8' });
    expect(lines.some((l) => l.kind === 'qr')).toBe(false);
  });

  // Names that mix Chinese, Latin words, long words, spaces and odd characters.
  const name = fc
    .array(
      fc.oneof(
        fc.constantFrom('拿铁', '咖啡', '蛋糕', '好又多', 'ＡＢＣ', '한국어', '😀', 'é', '¥', '·', ' ', '  '),
        fc.string({ unit: fc.constantFrom('a', 'b', 'W', '1', '.', '-'), minLength: 1, maxLength: 60 }),
        fc.string({ maxLength: 5 }),
      ),
      { maxLength: 12 },
    )
    .map((parts) => parts.join(''));
  const money = fc.record({
    value: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    currency: fc.constantFrom('CNY', 'JPY', 'KWD', 'EUR', 'USD'),
  });

  it('makes every text line exactly the width, for any item names, widths and encodings', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...RECEIPT_WIDTHS),
        fc.constantFrom(...RECEIPT_ENCODINGS),
        name,
        fc.array(
          fc.record({
            name,
            quantity: fc.option(fc.integer({ min: 1, max: 999 }), { nil: undefined }),
            amount: fc.option(money, { nil: undefined }),
          }),
          {
            maxLength: 5,
          },
        ),
        money,
        name,
        (width, encoding: ReceiptEncoding, storeName, items, amount, footer) => {
          const layout: ReceiptLayout = { width, encoding };
          const lines = layoutReceipt(
            { ...receipt, storeName, items, amount, footer, method: footer },
            layout,
          );
          for (const line of lines) {
            if (line.kind === 'text') expect(displayWidth(line.text, encoding)).toBe(width);
            if (line.kind === 'title')
              expect(displayWidth(line.text, encoding)).toBeLessThanOrEqual(width / 2);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
