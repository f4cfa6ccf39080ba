import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { ProtocolError } from '../../protocol/errors';
import { readCsv, writeCsvRow } from './csv';
import { FileDropParseRules } from './file-drop.options';
import { compileJsonPath, lookup } from './json-path';
import { MAX_ORDER_FILE_BYTES, OrderFileConfig, parseOrderFile } from './parse';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/adapters');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

const jsonRules: FileDropParseRules = {
  orderId: '$.orderNo',
  amount: '$.total',
  currency: 'CNY',
  amountMinor: false,
  items: { name: '$.items[*].name', quantity: '$.items[*].qty', amount: '$.items[*].price' },
};
const json: OrderFileConfig = { format: 'json', encoding: 'utf8', rules: jsonRules, registerId: 'R1' };
const csvRules: FileDropParseRules = { orderId: '单号', amount: '金额', currency: 'CNY', amountMinor: false };
const csv: OrderFileConfig = { format: 'csv', encoding: 'utf8', rules: csvRules, registerId: 'R1' };

function errorOf(f: () => unknown): ProtocolError {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
  throw new Error('expected a ProtocolError');
}

describe(parseOrderFile.name, () => {
  it('reads the JSON fixture with its items, in exact minor units', () => {
    expect(parseOrderFile(fixture('order.json'), 'order.json', json)).toEqual({
      orderId: 'A-1001',
      registerId: 'R1',
      amount: { value: 1250, currency: 'CNY' },
      items: [
        { name: '拿铁 Latte', quantity: 1, amount: { value: 950, currency: 'CNY' } },
        { name: '可颂', quantity: 1, amount: { value: 300, currency: 'CNY' } },
      ],
      source: 'order.json',
    });
  });

  it('reads a Chinese CSV in GB18030, and the same in UTF-8 with a byte order mark', () => {
    const expected = {
      orderId: 'XS20250131-0001',
      registerId: 'R1',
      amount: { value: 123450, currency: 'CNY' },
      source: 'x.csv',
    };
    expect(parseOrderFile(fixture('order-gb18030.csv'), 'x.csv', { ...csv, encoding: 'gb18030' })).toEqual(
      expected,
    );
    expect(parseOrderFile(fixture('order-utf8-bom.csv'), 'x.csv', csv)).toEqual(expected);
  });

  it('tells the operator to set gb18030 when GB18030 bytes are read as UTF-8', () => {
    const e = errorOf(() => parseOrderFile(fixture('order-gb18030.csv'), 'x.csv', csv));
    expect(e.code).toBe('file_drop.bad_encoding');
    expect(e.message).toContain('x.csv: the file is not valid utf8 text');
    expect(e.message).toContain('options.encoding: gb18030');
  });

  it.each([
    ['"12.50"', 1250],
    ['"¥1,234.50"', 123450],
    ['12.5', 1250], // a JSON number: its shortest decimal "12.5"
    ['12', 1200],
    ['1234.56', 123456],
    ['"１２．５０"', 1250],
  ])('reads the amount %s as %i fen', (amount, fen) => {
    const order = parseOrderFile(utf8(`{"orderNo":"1","total":${amount}}`), 'o.json', json);
    expect(order.amount).toEqual({ value: fen, currency: 'CNY' });
  });

  it.each([
    ['"12.505"', 'money.ambiguous'],
    ['12.505', 'money.ambiguous'],
    ['"12.555"', 'money.ambiguous'],
    ['"12.5050"', 'money.too_many_decimals'],
    ['0.30000000000000004', 'money.too_many_decimals'],
    ['"abc"', 'money.not_a_number'],
    ['"-1"', 'money.negative'],
    ['-1', 'money.negative'],
    ['0', 'money.zero'],
    ['1e21', 'money.bad_format'],
    ['true', 'money.not_text'],
    ['null', 'file_drop.missing_field'],
    ['{"v":1}', 'money.not_text'],
    ['"$12.50"', 'money.currency_mismatch'],
  ])('refuses the amount %s (%s), naming file and field', (amount, code) => {
    const e = errorOf(() => parseOrderFile(utf8(`{"orderNo":"1","total":${amount}}`), 'o.json', json));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(/^o\.json: amount \(\$\.total\): /);
    expect(e.subject).toBe('amount ($.total)');
  });

  it('reads whole minor units when amountMinor is set, and nothing else', () => {
    const minor: OrderFileConfig = { ...json, rules: { ...jsonRules, amountMinor: true, items: undefined } };
    const read = (total: string) => parseOrderFile(utf8(`{"orderNo":"1","total":${total}}`), 'o.json', minor);
    expect(read('1250').amount).toEqual({ value: 1250, currency: 'CNY' });
    expect(read('"1250"').amount).toEqual({ value: 1250, currency: 'CNY' });
    expect(errorOf(() => read('12.5')).code).toBe('money.not_integer');
    expect(errorOf(() => read('"12.50"')).code).toBe('money.not_integer');
    expect(errorOf(() => read('"99999999999999999999"')).code).toBe('money.too_large');
    expect(errorOf(() => read('0')).code).toBe('money.zero');
  });

  it('reads the currency from a field when the rule says so, and checks it', () => {
    const rules = { ...jsonRules, currency: '$.cur', items: undefined };
    const read = (cur: string) =>
      parseOrderFile(utf8(`{"orderNo":"1","total":"1250","cur":${cur}}`), 'o.json', { ...json, rules });
    expect(read('"JPY"').amount).toEqual({ value: 1250, currency: 'JPY' });
    expect(errorOf(() => read('"RMB"')).message).toContain('currency ($.cur): "RMB" is not a currency');
    const csvCur = { ...csv, rules: { ...csvRules, currency: '$["币种"]' } };
    const order = parseOrderFile(utf8('单号,金额,币种\nA1,1250,JPY\n'), 'o.csv', csvCur);
    expect(order.amount).toEqual({ value: 1250, currency: 'JPY' });
  });

  it('takes a whole-number order id from JSON, and refuses bad ones', () => {
    const read = (id: string) => parseOrderFile(utf8(`{"orderNo":${id},"total":"1"}`), 'o.json', json);
    expect(read('10023').orderId).toBe('10023');
    expect(errorOf(() => read('1.5')).code).toBe('file_drop.bad_order_id');
    expect(errorOf(() => read('""')).message).toContain(
      'o.json: orderId ($.orderNo): The order id "" is empty',
    );
    expect(errorOf(() => read('"a\\u202eb"')).code).toBe('order.bad_id');
  });

  it.each([
    ['garbage.bin', 'file_drop.bad_encoding'],
    ['truncated-order.txt', 'file_drop.bad_json'],
  ])('refuses the fixture %s with %s', (name, code) => {
    const e = errorOf(() => parseOrderFile(fixture(name), name, json));
    expect(e.code).toBe(code);
    expect(e.message.startsWith(`${name}: `)).toBe(true);
  });

  it.each([
    ['', 'file_drop.empty'],
    ['[1,2]', 'file_drop.not_an_object'],
    ['{"total":"1"}', 'file_drop.missing_field'],
    ['{"orderNo":"1","total":"1","items":{}}', 'file_drop.bad_items'],
    ['{"orderNo":"1","total":"1","items":[{"qty":1}]}', 'file_drop.missing_field'],
    ['{"orderNo":"1","total":"1","items":[{"name":"a","qty":-1}]}', 'file_drop.bad_quantity'],
    ['{"orderNo":"1","total":"1","items":[{"name":"a","price":"1.005"}]}', 'money.ambiguous'],
  ])('refuses the JSON %s with %s', (text, code) => {
    expect(errorOf(() => parseOrderFile(utf8(text), 'o.json', json)).code).toBe(code);
  });

  it('names the item and its rule in item errors', () => {
    const e = errorOf(() =>
      parseOrderFile(
        utf8('{"orderNo":"1","total":"1","items":[{"name":"a"},{"name":"b","price":"x"}]}'),
        'o.json',
        json,
      ),
    );
    expect(e.message).toMatch(/^o\.json: items\[1\]\.amount \(\$\.items\[\*\]\.price\): /);
  });

  it('reads an order without an items array as an order without items', () => {
    expect(parseOrderFile(utf8('{"orderNo":"1","total":"1"}'), 'o.json', json).items).toBeUndefined();
  });

  it('refuses a file over 256 KiB without parsing it', () => {
    const big = Buffer.alloc(MAX_ORDER_FILE_BYTES + 1, 0x20);
    const e = errorOf(() => parseOrderFile(big, 'big.json', json));
    expect(e.code).toBe('file_drop.too_large');
    expect(e.message).toContain('at most 262144 bytes');
  });

  it.each([
    ['单号,金额\n', 'file_drop.no_order'],
    ['单号,金额\nA1,1\nA2,2\n', 'file_drop.several_orders'],
    ['单号,金额\nA1,1,234.50\n', 'file_drop.bad_row'],
    ['单号;金额\nA1;1\n', 'file_drop.missing_field'],
    ['单号,金额\nA1,"1\n', 'csv.unclosed_quote'],
    ['单号,金额\nA1,"1"x\n', 'csv.text_after_quote'],
    ['单号,金额,单号\nA1,1,A2\n', 'file_drop.duplicate_column'],
  ])('refuses the CSV %j with %s', (text, code) => {
    expect(errorOf(() => parseOrderFile(utf8(text), 'o.csv', csv)).code).toBe(code);
  });

  it('names the missing CSV column', () => {
    const e = errorOf(() => parseOrderFile(utf8('单号,总额\nA1,1\n'), 'o.csv', csv));
    expect(e.message).toBe('o.csv: amount (column "金额"): is missing from the file.');
  });

  describe('fuzz: only ProtocolError ever escapes', () => {
    const configs = [
      json,
      csv,
      { ...json, encoding: 'gb18030' as const },
      { ...csv, encoding: 'gb18030' as const },
    ];
    const onlyProtocolErrors = (bytes: Uint8Array, config: OrderFileConfig): void => {
      try {
        parseOrderFile(bytes, 'fuzz', config);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
      }
    };

    it('random bytes', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 512 }), fc.constantFrom(...configs), onlyProtocolErrors),
        { numRuns: 1000 },
      );
    });

    it('random JSON, and JSON shaped like an order', () => {
      const amount = fc.oneof(fc.string(), fc.double(), fc.integer(), fc.jsonValue());
      const orderish = fc.record({
        orderNo: fc.oneof(fc.string(), fc.integer(), fc.jsonValue()),
        total: amount,
        items: fc.oneof(
          fc.array(
            fc.record({ name: fc.jsonValue(), qty: fc.jsonValue(), price: amount }, { requiredKeys: [] }),
          ),
          fc.jsonValue(),
        ),
      });
      fc.assert(
        fc.property(fc.oneof(fc.jsonValue(), orderish), (doc) =>
          onlyProtocolErrors(utf8(JSON.stringify(doc) ?? 'null'), json),
        ),
        { numRuns: 1000 },
      );
    });

    it('random CSV', () => {
      const cell = fc.oneof(fc.string(), fc.constantFrom('单号', '金额', '"', ',', '\n', '12.50'));
      fc.assert(
        fc.property(fc.array(fc.array(cell, { maxLength: 4 }), { maxLength: 4 }), (rows) =>
          onlyProtocolErrors(utf8(rows.map((r) => r.join(',')).join('\n')), csv),
        ),
        { numRuns: 1000 },
      );
    });
  });
});

describe(compileJsonPath.name, () => {
  it.each([
    ['$.a', [{ key: 'a' }]],
    ['$.a.b[2]', [{ key: 'a' }, { key: 'b' }, { index: 2 }]],
    ['$["a.b"].单号', [{ key: 'a.b' }, { key: '单号' }]],
  ])('reads %s', (text, steps) => {
    expect(compileJsonPath(text)).toEqual({ text, steps });
  });

  it.each(['a', '$', '$.', '$..a', '$.a[', '$[?(@.x)]', '$["a"', '$.a b'])('refuses %s', (text) => {
    expect(typeof compileJsonPath(text)).toBe('string');
  });

  it('finds own properties only', () => {
    const path = compileJsonPath('$.constructor');
    if (typeof path === 'string') throw new Error(path);
    expect(lookup({}, path.steps)).toEqual({ found: false });
  });
});

describe(readCsv.name, () => {
  it('reads quotes, doubled quotes, commas and line breaks in fields, CRLF, and skips blank lines', () => {
    expect(readCsv('a,"b,c","say ""hi""","x\r\ny"\r\n\r\n1,,"",2\n', 't')).toEqual([
      ['a', 'b,c', 'say "hi"', 'x\r\ny'],
      ['1', '', '', '2'],
    ]);
  });

  it('writes what it reads', () => {
    const row = ['A-1', '1,234.50', 'say "hi"', ' padded', '单号'];
    expect(readCsv(writeCsvRow(row), 't')).toEqual([row]);
  });
});
