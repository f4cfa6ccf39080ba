import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as fc from 'fast-check';
import * as iconv from 'iconv-lite';
import { fromHex } from '../../printer/hex';
import { ProtocolError } from '../../protocol/errors';
import { FieldProblems } from '../field-problems';
import { decodeJob, isEmptyJob, readReceipt } from './parse';
import { PrinterTapParseRules, validatePrinterTapParse } from './printer-tap.options';

const FIXTURES = path.join(__dirname, '../../../test/fixtures/printer-tap');
function fixture(name: string): Uint8Array {
  return fromHex(readFileSync(path.join(FIXTURES, name), 'utf8'));
}

function rules(raw: Record<string, unknown>): PrinterTapParseRules {
  const p = FieldProblems.root();
  const r = validatePrinterTapParse(raw, p);
  expect(p.all).toEqual([]);
  return r as PrinterTapParseRules;
}
const CN = rules({ encoding: 'gb18030', currency: 'CNY' });
const US = rules({ encoding: 'cp437', currency: 'USD' });

function gb(text: string): Uint8Array {
  return Uint8Array.from([0x1b, 0x40, ...iconv.encode(text, 'gb18030'), 0x1d, 0x56, 0x00]);
}

function rejection(f: () => unknown): ProtocolError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error('expected a rejection');
}

describe('printer-tap parse', () => {
  it('reads 应收 (not 合计, 实收 or 找零) off a Chinese GB18030 receipt with FS &', () => {
    const r = readReceipt(fixture('chinese-80mm.hex'), CN, 'job 1');
    expect(r.amount).toEqual({ value: 8650, currency: 'CNY' });
    expect(r.orderId).toBe('20261129-0042');
    expect(r.amountLine).toMatch(/^应收/);
  });

  it('reads TOTAL (not SUBTOTAL, CASH or CHANGE) off an English Epson receipt', () => {
    const r = readReceipt(fixture('english-epson.hex'), US, 'job 1');
    expect(r.amount).toEqual({ value: 1284, currency: 'USD' });
    expect(r.orderId).toBe('10457');
  });

  it('reports a raster job as having no text to read', () => {
    const e = rejection(() => readReceipt(fixture('raster-job.hex'), CN, 'tcp client 127.0.0.1:1 job 1'));
    expect(e.code).toBe('printer_tap.raster_job');
    expect(e.message).toContain('raster job: no text to read');
    expect(e.message).toContain('tcp client 127.0.0.1:1 job 1');
  });

  it('reads GBK bytes without FS & and the full-width ￥ and digits', () => {
    const r = readReceipt(gb('订单号：A-88\n合计      ￥３６．００\n'), CN, 'j');
    expect(r.amount).toEqual({ value: 3600, currency: 'CNY' });
    expect(r.orderId).toBe('A-88');
  });

  it('falls back to 合计 / 总计 when there is no amount-due line, and reads 元', () => {
    expect(readReceipt(gb('总计: 12.50元\n实收: 20.00\n'), CN, 'j').amount.value).toBe(1250);
  });

  it('never takes 实收 / 找零 / 小计 / SUBTOTAL as the amount', () => {
    const e = rejection(() => readReceipt(gb('小计: 5.00\n实收 10.00\n找零 5.00\n'), CN, 'job 7'));
    expect(e.code).toBe('printer_tap.no_amount');
    expect(e.message).toContain('job 7');
  });

  it('rejects two equally ranked lines with different amounts, accepts a repeated one', () => {
    expect(rejection(() => readReceipt(gb('合计 5.00\n合计 6.00\n'), CN, 'j')).code).toBe(
      'printer_tap.ambiguous_amount',
    );
    expect(readReceipt(gb('合计 5.00\n合计 ￥5.00\n'), CN, 'j').amount.value).toBe(500);
  });

  it('rejects an amount line it cannot read, quoting it', () => {
    const e = rejection(() => readReceipt(gb('应收: 1.234\n'), CN, 'j'));
    expect(e.code).toBe('printer_tap.bad_amount');
    expect(e.message).toContain('应收: 1.234');
  });

  it('does not take a word without digits as the order id', () => {
    const bytes = new TextEncoder().encode('Order total: $5.00\nTOTAL $5.00\n');
    expect(readReceipt(bytes, rules({ encoding: 'utf8', currency: 'USD' }), 'j').orderId).toBeUndefined();
    const no = new TextEncoder().encode('RECEIPT NO. A12\nTOTAL $5.00\n');
    expect(readReceipt(no, rules({ encoding: 'utf8', currency: 'USD' }), 'j').orderId).toBe('A12');
  });

  it('uses manifest rules in rank order and orderId none', () => {
    const r = rules({
      encoding: 'utf8',
      currency: 'CNY',
      amount: ['^PAY NOW (\\S+)$', '^SUM (\\S+)$'],
      orderId: 'none',
    });
    const bytes = new TextEncoder().encode('ORDER 55\nSUM 3.00\nPAY NOW 2.50\n');
    const out = readReceipt(bytes, r, 'j');
    expect(out.amount.value).toBe(250);
    expect(out.orderId).toBeUndefined();
  });

  it('tells empty jobs (status polls only) apart', () => {
    expect(isEmptyJob(decodeJob(Uint8Array.from([0x10, 0x04, 0x01, 0x1b, 0x40]), 'gb18030'))).toBe(true);
    expect(isEmptyJob(decodeJob(fixture('raster-job.hex'), 'gb18030'))).toBe(false);
  });

  it('never throws anything but a ProtocolError (fuzz)', () => {
    const parts = [
      fc.uint8Array({ maxLength: 64 }),
      fc.constant(iconv.encode('合计 ￥12.50\n', 'gb18030')),
      fc.constant(iconv.encode('应收：', 'gb18030')),
      fc.constant(Uint8Array.from([0x1d, 0x76, 0x30, 0x00])),
      fc.constant(Uint8Array.from([0x1c, 0x26])),
      fc.constant(Buffer.from('TOTAL $1,234.50\n')),
    ];
    fc.assert(
      fc.property(fc.array(fc.oneof(...parts), { maxLength: 12 }), (chunks) => {
        const bytes = Buffer.concat(chunks.map((c) => Buffer.from(c)));
        for (const r of [CN, US]) {
          try {
            const out = readReceipt(bytes, r, 'fuzz');
            expect(Number.isSafeInteger(out.amount.value) && out.amount.value > 0).toBe(true);
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
