import { chinaDate, chinaIso, chinaTimestamp, fenToYuan, parseChinaTimestamp, yuanToFen } from './format';
import { encodeForm, FormError, mergeParams, parseForm } from './form';
import { readBill, writeBill } from './bill';
import { readZip, writeZip, ZipError } from './zip';

describe('Alipay amounts (yuan strings from integer fen)', () => {
  it.each([
    [1, '0.01'],
    [10, '0.10'],
    [100, '1.00'],
    [9101, '91.01'],
    [123456789, '1234567.89'],
    [10_000_000_000, '100000000.00'],
  ])('%d fen → "%s" and back', (fen, yuan) => {
    expect(fenToYuan(fen)).toBe(yuan);
    expect(yuanToFen(yuan)).toBe(fen);
  });

  it('formats any safe integer exactly; reads at most 12 integer digits back', () => {
    expect(fenToYuan(Number.MAX_SAFE_INTEGER)).toBe('90071992547409.91');
    expect(yuanToFen('90071992547409.91')).toBeUndefined();
  });

  it('refuses what is not whole fen', () => {
    for (const bad of [0.5, -1, NaN, Infinity, 1e20]) expect(() => fenToYuan(bad)).toThrow(RangeError);
  });

  it('reads only what Alipay writes', () => {
    expect(yuanToFen('1')).toBe(100);
    expect(yuanToFen('1.5')).toBe(150);
    for (const bad of ['', '1.', '.5', '01.00', '1.001', '-1.00', '+1', '1e2', ' 1.00', '1,00', '0x10'])
      expect(yuanToFen(bad)).toBeUndefined();
  });
});

describe('China time, whatever the machine zone', () => {
  it('formats an instant at +08:00', () => {
    const ms = Date.UTC(2026, 10, 28, 16, 30, 5); // 2026-11-29 00:30:05 in China
    expect(chinaTimestamp(ms)).toBe('2026-11-29 00:30:05');
    expect(chinaDate(ms)).toBe('2026-11-29');
    expect(parseChinaTimestamp('2026-11-29 00:30:05')).toBe(ms);
    expect(chinaIso('2026-11-29 00:30:05')).toBe('2026-11-29T00:30:05+08:00');
  });

  it('does not depend on process.env.TZ', () => {
    const before = process.env.TZ;
    try {
      const ms = Date.UTC(2026, 0, 1, 0, 0, 0);
      const seen = ['UTC', 'America/New_York', 'Asia/Shanghai', 'Pacific/Kiritimati'].map((tz) => {
        process.env.TZ = tz;
        return chinaTimestamp(ms);
      });
      expect(new Set(seen)).toEqual(new Set(['2026-01-01 08:00:00']));
    } finally {
      if (before === undefined) delete process.env.TZ;
      else process.env.TZ = before;
    }
  });

  it('refuses an impossible time', () => {
    for (const bad of [
      '2026-02-30 00:00:00',
      '2026-11-29 24:00:00',
      '2026-11-29T00:00:00',
      '2026-11-29 0:00:00',
    ]) {
      expect(parseChinaTimestamp(bad)).toBeUndefined();
    }
  });
});

describe('the form codec', () => {
  it('round-trips UTF-8 and GBK', () => {
    const params = { biz_content: '{"subject":"测试 ¥1 & = /"}', a: 'b c+d' };
    expect(parseForm(encodeForm(params))).toEqual(params);
    const gbk = { subject: '中文测试' };
    expect(encodeForm(gbk, 'gbk')).toBe('subject=%D6%D0%CE%C4%B2%E2%CA%D4');
    expect(parseForm('subject=%D6%D0%CE%C4%B2%E2%CA%D4', 'gbk')).toEqual(gbk);
  });

  it('reads + as a space and keeps a value with = inside', () => {
    expect(parseForm('a=1+2&b=x%3Dy=z')).toEqual({ a: '1 2', b: 'x=y=z' });
  });

  it('refuses broken escapes, invalid text, twice-given names and raw non-ASCII', () => {
    for (const bad of ['a=%4', 'a=%zz', 'a=%FF', 'a=1&a=2', '=1', 'a=中'])
      expect(() => parseForm(bad)).toThrow(FormError);
    expect(() => mergeParams({ sign: 'x' }, { sign: 'y' })).toThrow(/twice/);
  });
});

describe('the bill zip', () => {
  it('writes and reads back the payments and refunds of a day (GBK names and text)', () => {
    const lines = [
      {
        kind: 'payment' as const,
        tradeNo: '2026112922001400000000000001',
        outTradeNo: 'pay_a',
        subject: 'payconnect demo, "x"',
        createdAt: '2026-11-29 10:00:00',
        doneAt: '2026-11-29 10:00:01',
        buyer: '159******77',
        totalFen: 9101,
        amountFen: 9101,
      },
      {
        kind: 'refund' as const,
        tradeNo: '2026112922001400000000000001',
        outTradeNo: 'pay_a',
        subject: 's',
        createdAt: '2026-11-29 10:00:00',
        doneAt: '2026-11-29 11:00:00',
        buyer: '',
        totalFen: 9101,
        amountFen: 1,
        refundNo: 'ref_1',
      },
    ];
    const { fileName, zip } = writeBill('2088000000000001', '2026-11-29', lines, '2026-11-30 10:00:00');
    expect(fileName).toBe('2088000000000001_20261129.csv.zip');
    expect(readZip(zip).map((e) => e.name)).toEqual([
      '2088000000000001_20261129_业务明细.csv',
      '2088000000000001_20261129_业务明细(汇总).csv',
    ]);
    expect(readBill(zip)).toEqual([
      {
        kind: 'payment',
        outTradeNo: 'pay_a',
        tradeNo: '2026112922001400000000000001',
        amount: 9101,
        at: '2026-11-29T10:00:01+08:00',
      },
      {
        kind: 'refund',
        outTradeNo: 'pay_a',
        tradeNo: '2026112922001400000000000001',
        amount: 1,
        at: '2026-11-29T11:00:00+08:00',
        refundNo: 'ref_1',
      },
    ]);
  });

  it('refuses a damaged archive with a ZipError', () => {
    const zip = writeZip([{ name: 'a.csv', data: Buffer.from('hello') }]);
    const bad = Buffer.from(zip);
    bad[40] ^= 0xff; // inside the deflated data
    expect(() => readZip(bad)).toThrow(ZipError);
    expect(() => readZip(Buffer.from('not a zip'))).toThrow(ZipError);
  });
});
