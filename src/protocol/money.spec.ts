import { errorOf } from '../../test/support/errors';
import fc from 'fast-check';
import { ProtocolError } from './errors';
import {
  addMoney,
  compareMoney,
  currencyExponent,
  CURRENCIES,
  formatMoney,
  isMoney,
  money,
  parseAmount,
  type Money,
} from './money';

const MAX = Number.MAX_SAFE_INTEGER;

describe('currencyExponent', () => {
  test.each([
    ['CNY', 2],
    ['HKD', 2],
    ['TWD', 2],
    ['USD', 2],
    ['EUR', 2],
    ['GBP', 2],
    ['JPY', 0],
    ['KRW', 0],
    ['VND', 0],
    ['KWD', 3],
    ['BHD', 3],
    ['OMR', 3],
    ['JOD', 3],
    ['TND', 3],
    ['SGD', 2],
    ['AUD', 2],
    ['CAD', 2],
    ['CHF', 2],
    ['THB', 2],
    ['MYR', 2],
    ['INR', 2],
    ['IDR', 2],
    ['PHP', 2],
    ['MOP', 2],
    ['NZD', 2],
    ['SEK', 2],
    ['NOK', 2],
    ['DKK', 2],
    ['PLN', 2],
    ['CZK', 2],
    ['HUF', 2],
    ['RUB', 2],
    ['BRL', 2],
    ['MXN', 2],
    ['ZAR', 2],
    ['AED', 2],
    ['SAR', 2],
    ['ISK', 0],
    ['CLP', 0],
    ['UGX', 0],
    ['XOF', 0],
    ['XAF', 0],
  ])('%s has exponent %i', (code, exponent) => {
    expect(currencyExponent(code)).toBe(exponent);
  });

  test.each(['XYZ', 'cny', '', 'toString', '__proto__'])('refuses unknown currency %j', (code) => {
    const err = errorOf(() => currencyExponent(code));
    expect(err.code).toBe('money.unknown_currency');
    expect(err.message).toContain(JSON.stringify(code));
  });
});

describe('parseAmount', () => {
  test.each<[string, string, number]>([
    ['12.50', 'CNY', 1250],
    ['12,50', 'CNY', 1250],
    ['12.5', 'CNY', 1250],
    ['12,5', 'CNY', 1250],
    ['12', 'CNY', 1200],
    ['0.01', 'CNY', 1],
    ['000012.50', 'CNY', 1250],
    ['1,234.50', 'CNY', 123450],
    ['1.234,50', 'CNY', 123450],
    ['1 234,50', 'CNY', 123450],
    ['1 234.50', 'CNY', 123450],
    ['1 234', 'CNY', 123400],
    ['1,234,567', 'CNY', 123456700],
    ['1.234.567', 'CNY', 123456700],
    ['1,234,567.89', 'USD', 123456789],
    ['1.234.567,89', 'EUR', 123456789],
    ['1\u00a0234,50', 'EUR', 123450],
    ['1\u202f234,50 €', 'EUR', 123450],
    ["1'234.50", 'CHF', 123450],
    ['CHF 1\u2019234.50', 'CHF', 123450],
    ['1,23,456.50', 'INR', 12345650],
    ['12,34,567', 'INR', 123456700],
    ['¥12.50', 'CNY', 1250],
    ['￥12.50', 'CNY', 1250],
    ['¥ 12.50', 'CNY', 1250],
    ['12.50¥', 'CNY', 1250],
    ['RMB12.50', 'CNY', 1250],
    ['RMB 12.50', 'CNY', 1250],
    ['CNY 12.50', 'CNY', 1250],
    ['12.50 CNY', 'CNY', 1250],
    ['12.50cny', 'CNY', 1250],
    ['12.50元', 'CNY', 1250],
    ['¥12.50元', 'CNY', 1250],
    ['$12.50', 'USD', 1250],
    ['US$12.50', 'USD', 1250],
    ['HK$12.50', 'HKD', 1250],
    ['NT$120', 'TWD', 12000],
    ['€12,50', 'EUR', 1250],
    ['12,50 €', 'EUR', 1250],
    ['£12.50', 'GBP', 1250],
    ['12,50 kr', 'SEK', 1250],
    ['RM12.50', 'MYR', 1250],
    ['R$ 12,50', 'BRL', 1250],
    ['１２．５０', 'CNY', 1250],
    ['１２，５０', 'CNY', 1250],
    ['￥１，２３４．５０', 'CNY', 123450],
    ['ＣＮＹ１２．５０', 'CNY', 1250],
    ['\u3000１２．５０\u3000', 'CNY', 1250],
    ['  12.50\n', 'CNY', 1250],
    ['\t¥12.50 ', 'CNY', 1250],
    ['1,234', 'JPY', 1234],
    ['1234', 'JPY', 1234],
    ['¥1,234', 'JPY', 1234],
    ['￥１，２３４', 'JPY', 1234],
    ['1 234', 'JPY', 1234],
    ['1,234,567', 'JPY', 1234567],
    ['1.234.567', 'JPY', 1234567],
    ['12円', 'JPY', 12],
    ['₩1,234', 'KRW', 1234],
    ['1.250', 'KWD', 1250],
    ['1.25', 'KWD', 1250],
    ['0.005', 'KWD', 5],
    ['0,250', 'KWD', 250],
    ['1234,567', 'KWD', 1234567],
    ['1,234.500', 'KWD', 1234500],
    ['1.234,567', 'KWD', 1234567],
    ['KWD 1.250', 'KWD', 1250],
    ['90071992547409.91', 'CNY', MAX],
    ['9,007,199,254,740,991', 'JPY', MAX],
  ])('%j in %s is %i', (text, currency, value) => {
    expect(parseAmount(text, currency)).toEqual({ value, currency });
  });

  test.each<[string, string, string]>([
    ['', 'CNY', 'money.empty'],
    ['   ', 'CNY', 'money.empty'],
    ['\u3000', 'CNY', 'money.empty'],
    ['abc', 'CNY', 'money.not_a_number'],
    ['¥', 'CNY', 'money.not_a_number'],
    ['.', 'CNY', 'money.not_a_number'],
    ['NaN', 'CNY', 'money.not_a_number'],
    ['Infinity', 'CNY', 'money.not_a_number'],
    ['١٢', 'CNY', 'money.not_a_number'],
    ['12a50', 'CNY', 'money.bad_format'],
    ['1e3', 'CNY', 'money.bad_format'],
    ['0x10', 'CNY', 'money.bad_format'],
    ['12-50', 'CNY', 'money.bad_format'],
    ['12\t50', 'CNY', 'money.bad_format'],
    ['.50', 'CNY', 'money.bad_format'],
    [',50', 'CNY', 'money.bad_format'],
    ['12.', 'CNY', 'money.bad_format'],
    ['12.50.', 'CNY', 'money.bad_format'],
    ['1,,234', 'CNY', 'money.bad_format'],
    ['1. 234', 'CNY', 'money.bad_format'],
    ['(5.00', 'CNY', 'money.bad_format'],
    ['5.00)', 'CNY', 'money.bad_format'],
    ['+12.50', 'CNY', 'money.unknown_symbol'],
    ['12.50 x', 'CNY', 'money.unknown_symbol'],
    ['12.5O', 'CNY', 'money.unknown_symbol'],
    ['CNY¥12.50', 'CNY', 'money.unknown_symbol'],
    ['1,234', 'CNY', 'money.ambiguous'],
    ['1.234', 'CNY', 'money.ambiguous'],
    ['12.505', 'CNY', 'money.ambiguous'],
    ['999,999', 'CNY', 'money.ambiguous'],
    ['¥1,234', 'CNY', 'money.ambiguous'],
    ['1.234', 'JPY', 'money.ambiguous'],
    ['1,250', 'KWD', 'money.ambiguous'],
    ['1,234 567.50', 'CNY', 'money.mixed_separators'],
    ['1.234,567.89', 'CNY', 'money.mixed_separators'],
    ['1,234.567,89', 'CNY', 'money.mixed_separators'],
    ['1.234 567', 'CNY', 'money.mixed_separators'],
    ['1,23,456.50', 'CNY', 'money.bad_grouping'],
    ['123,45,678.00', 'INR', 'money.bad_grouping'],
    ['1234,567.00', 'CNY', 'money.bad_grouping'],
    ['0,123,456', 'CNY', 'money.bad_grouping'],
    ['1,2.50', 'CNY', 'money.bad_grouping'],
    ['12 50', 'CNY', 'money.bad_grouping'],
    ["12'5", 'CHF', 'money.bad_grouping'],
    ['12.5050', 'CNY', 'money.too_many_decimals'],
    ['0.125', 'CNY', 'money.too_many_decimals'],
    ['1234.500', 'CNY', 'money.too_many_decimals'],
    ['1,2345', 'CNY', 'money.too_many_decimals'],
    ['12.5', 'JPY', 'money.too_many_decimals'],
    ['1234.00', 'JPY', 'money.too_many_decimals'],
    ['1,234.50', 'JPY', 'money.too_many_decimals'],
    ['1.2345', 'KWD', 'money.too_many_decimals'],
    ['0', 'CNY', 'money.zero'],
    ['0.00', 'CNY', 'money.zero'],
    ['0,0', 'CNY', 'money.zero'],
    ['¥0', 'CNY', 'money.zero'],
    ['0.000', 'KWD', 'money.zero'],
    ['-5', 'CNY', 'money.negative'],
    ['5-', 'CNY', 'money.negative'],
    ['-0', 'CNY', 'money.negative'],
    ['(5.00)', 'CNY', 'money.negative'],
    ['( ¥5.00 )', 'CNY', 'money.negative'],
    ['¥-5', 'CNY', 'money.negative'],
    ['-¥5', 'CNY', 'money.negative'],
    ['\u22125', 'CNY', 'money.negative'],
    ['－５', 'CNY', 'money.negative'],
    ['€12.50', 'CNY', 'money.currency_mismatch'],
    ['$12', 'CNY', 'money.currency_mismatch'],
    ['¥12', 'USD', 'money.currency_mismatch'],
    ['12.50 USD', 'CNY', 'money.currency_mismatch'],
    ['RMB12', 'JPY', 'money.currency_mismatch'],
    ['HK$12', 'USD', 'money.currency_mismatch'],
    ['12円', 'CNY', 'money.currency_mismatch'],
    ['90071992547409.92', 'CNY', 'money.too_large'],
    ['9007199254740992', 'JPY', 'money.too_large'],
    ['99999999999999999999999999999', 'CNY', 'money.too_large'],
  ])('%j in %s is refused: %s', (text, currency, code) => {
    const err = errorOf(() => parseAmount(text, currency));
    expect(err.code).toBe(code);
    expect(err.subject).toBe('amount');
    expect(err.message).toContain(JSON.stringify(text));
  });

  test('an ambiguous amount is explained with both readings', () => {
    expect(errorOf(() => parseAmount('1,234', 'CNY')).message).toMatch(/1234 .*1\.234/);
  });

  test('refuses text longer than 64 characters, quoting its start', () => {
    const text = '1'.repeat(65);
    const err = errorOf(() => parseAmount(text, 'CNY'));
    expect(err.code).toBe('money.too_long');
    expect(err.message).toContain(`"${'1'.repeat(40)}`);
  });

  test('refuses an unknown currency before looking at the text', () => {
    expect(errorOf(() => parseAmount('12.50', 'XYZ')).code).toBe('money.unknown_currency');
    expect(errorOf(() => parseAmount('12.50', 'cny')).code).toBe('money.unknown_currency');
  });

  test.each([12.5, null, undefined, { value: 1250 }])('refuses non-text %p', (text) => {
    const err = errorOf(() => parseAmount(text as unknown as string, 'CNY'));
    expect(err.code).toBe('money.not_text');
  });
});

describe('money', () => {
  test('builds a Money from a positive safe integer and a known currency', () => {
    expect(money(1250, 'CNY')).toEqual({ value: 1250, currency: 'CNY' });
    expect(money(MAX, 'JPY')).toEqual({ value: MAX, currency: 'JPY' });
  });

  test.each<[unknown, string, string]>([
    [12.5, 'CNY', 'money.not_integer'],
    [NaN, 'CNY', 'money.not_integer'],
    [Infinity, 'CNY', 'money.not_integer'],
    ['1250', 'CNY', 'money.not_integer'],
    [0, 'CNY', 'money.zero'],
    [-0, 'CNY', 'money.zero'],
    [-1, 'CNY', 'money.negative'],
    [MAX + 1, 'CNY', 'money.too_large'],
    [1250, 'XYZ', 'money.unknown_currency'],
  ])('refuses %p %s with %s', (value, currency, code) => {
    expect(errorOf(() => money(value as number, currency)).code).toBe(code);
  });

  test('isMoney accepts only valid amounts', () => {
    expect(isMoney({ value: 1250, currency: 'CNY' })).toBe(true);
    expect(isMoney({ value: 0, currency: 'CNY' })).toBe(false);
    expect(isMoney({ value: 12.5, currency: 'CNY' })).toBe(false);
    expect(isMoney({ value: MAX + 1, currency: 'CNY' })).toBe(false);
    expect(isMoney({ value: '1250', currency: 'CNY' })).toBe(false);
    expect(isMoney({ value: 1250, currency: 'cny' })).toBe(false);
    expect(isMoney({ value: 1250 })).toBe(false);
    expect(isMoney(null)).toBe(false);
    expect(isMoney(1250)).toBe(false);
  });
});

describe('formatMoney', () => {
  test.each<[Money, { symbol?: boolean; grouping?: boolean }, string]>([
    [{ value: 1250, currency: 'CNY' }, {}, '12.50'],
    [{ value: 1, currency: 'CNY' }, {}, '0.01'],
    [{ value: 123450, currency: 'CNY' }, {}, '1234.50'],
    [{ value: 123450, currency: 'CNY' }, { grouping: true }, '1,234.50'],
    [{ value: 12345, currency: 'CNY' }, { grouping: true }, '123.45'],
    [{ value: 1250, currency: 'CNY' }, { symbol: true }, '¥12.50'],
    [{ value: 123450, currency: 'CNY' }, { symbol: true, grouping: true }, '¥1,234.50'],
    [{ value: 1234, currency: 'JPY' }, {}, '1234'],
    [{ value: 1234, currency: 'JPY' }, { grouping: true }, '1,234'],
    [{ value: 1234, currency: 'JPY' }, { symbol: true, grouping: true }, '¥1,234'],
    [{ value: 1250, currency: 'KWD' }, {}, '1.250'],
    [{ value: 5, currency: 'KWD' }, {}, '0.005'],
    [{ value: 1250, currency: 'KWD' }, { symbol: true }, 'KWD 1.250'],
    [{ value: 1250, currency: 'HKD' }, { symbol: true }, 'HK$12.50'],
    [{ value: MAX, currency: 'JPY' }, { grouping: true }, '9,007,199,254,740,991'],
    [{ value: MAX, currency: 'CNY' }, {}, '90071992547409.91'],
  ])('%p with %p is %j', (m, opts, text) => {
    expect(formatMoney(m, opts)).toBe(text);
  });

  test('refuses an invalid Money', () => {
    expect(errorOf(() => formatMoney({ value: 12.5, currency: 'CNY' })).code).toBe('money.not_integer');
    expect(errorOf(() => formatMoney({ value: 1250, currency: 'XYZ' })).code).toBe('money.unknown_currency');
  });
});

describe('addMoney and compareMoney', () => {
  const cny = (value: number) => money(value, 'CNY');

  test('add amounts of one currency', () => {
    expect(addMoney(cny(1250), cny(1))).toEqual({ value: 1251, currency: 'CNY' });
  });

  test('compare amounts of one currency', () => {
    expect(compareMoney(cny(1), cny(2))).toBe(-1);
    expect(compareMoney(cny(2), cny(2))).toBe(0);
    expect(compareMoney(cny(3), cny(2))).toBe(1);
  });

  test('refuse mixed currencies', () => {
    const err = errorOf(() => addMoney(cny(1), money(1, 'JPY')));
    expect(err.code).toBe('money.mixed_currencies');
    expect(err.message).toContain('CNY');
    expect(err.message).toContain('JPY');
    expect(errorOf(() => compareMoney(cny(1), money(1, 'USD'))).code).toBe('money.mixed_currencies');
  });

  test('refuse a sum beyond the safe integer range', () => {
    expect(errorOf(() => addMoney(cny(MAX), cny(1))).code).toBe('money.too_large');
  });

  test('refuse invalid operands', () => {
    expect(errorOf(() => addMoney(cny(1), { value: -1, currency: 'CNY' })).code).toBe('money.negative');
    expect(errorOf(() => compareMoney({ value: 0.5, currency: 'CNY' }, cny(1))).code).toBe(
      'money.not_integer',
    );
  });
});

describe('properties', () => {
  const value = fc.oneof(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: MAX }));
  const currency = fc.constantFrom(...CURRENCIES);

  test('formatMoney then parseAmount gives the same Money, with and without symbol and grouping', () => {
    fc.assert(
      fc.property(value, currency, fc.boolean(), fc.boolean(), (v, c, symbol, grouping) => {
        const m = money(v, c);
        expect(parseAmount(formatMoney(m, { symbol, grouping }), c)).toEqual(m);
      }),
      { numRuns: 2000 },
    );
  });

  test('full-width forms of formatted amounts read the same', () => {
    const fullWidth = (s: string) =>
      s.replace(/[0-9.,]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) + 0xfee0));
    fc.assert(
      fc.property(value, currency, fc.boolean(), (v, c, grouping) => {
        const m = money(v, c);
        expect(parseAmount(fullWidth(formatMoney(m, { grouping })), c)).toEqual(m);
      }),
    );
  });

  test('European forms (decimal comma, dot or space grouping) read the same for two-decimal currencies', () => {
    const twoDecimals = CURRENCIES.filter((c) => currencyExponent(c) === 2);
    fc.assert(
      fc.property(
        value,
        fc.constantFrom(...twoDecimals),
        fc.constantFrom('.', ' ', '\u00a0'),
        (v, c, group) => {
          const m = money(v, c);
          const european = formatMoney(m, { grouping: true }).replace(/[.,]/g, (ch) =>
            ch === '.' ? ',' : group,
          );
          expect(parseAmount(european, c)).toEqual(m);
        },
      ),
    );
  });

  const answersSafely = (text: string, c: string) => {
    try {
      expect(isMoney(parseAmount(text, c))).toBe(true);
    } catch (e) {
      expect(e).toBeInstanceOf(ProtocolError);
    }
  };

  test('any string either parses to a valid Money or is refused with a ProtocolError', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 80 }), currency, answersSafely), {
      numRuns: 2000,
    });
  });

  test('strings made of amount-like characters either parse to a valid Money or are refused with a ProtocolError', () => {
    const unit = fc.constantFrom(
      ..."0123456789.,  '-()+¥$€£元RMBCNYkr０１９．，￥\u3000\u00a0\u2212e".split(''),
    );
    fc.assert(fc.property(fc.string({ unit, maxLength: 16 }), currency, answersSafely), { numRuns: 5000 });
  });

  test('an accepted amount never depends on the marker around it', () => {
    fc.assert(
      fc.property(
        value,
        fc.constantFrom('¥', 'RMB', 'CNY', '元'),
        fc.boolean(),
        fc.boolean(),
        (v, marker, before, grouping) => {
          const m = money(v, 'CNY');
          const plain = formatMoney(m, { grouping });
          const marked = before ? `${marker} ${plain}` : `${plain}${marker}`;
          expect(parseAmount(marked, 'CNY')).toEqual(parseAmount(plain, 'CNY'));
        },
      ),
    );
  });
});
