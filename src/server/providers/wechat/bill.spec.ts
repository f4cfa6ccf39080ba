/**
 * The trade bill parser: the documented format (backtick-prefixed cells, summary lines, optional BOM),
 * exact yuan → fen, China time, and a fuzz test (seeded): random bytes and mutated bills give rows or a
 * ProtocolError, never another exception, and a line whose state is not exactly SUCCESS is never a payment.
 */
import { ProtocolError } from '../../../protocol/errors';
import { BillLine, fenToYuan, formatBill, parseBill, yuanToFen } from './bill';
import { mutateText, seededRandom } from '../../../../test/support/seeded-random';

// The shape of WeChat Pay's published sample (downloadbill, bill_type=ALL), with our own values.
const SAMPLE = [
  '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注',
  '`2026-11-29 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`4200000123202611290000000001,`pay_mifr2x0k0Vb3aaaaaaaaaaaaaa,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`MICROPAY,`SUCCESS,`CFT,`CNY,`91.01,`0.00,`0,`0,`0.00,`0.00,`,`,`被扫支付测试,`订单额外描述,`0.55000,`0.60%,`91.01,`0.00,`',
  '`2026-11-29 17:00:00,`wx2421b1c4370ec43b,`10000100,`0,`1000,`4200000123202611290000000001,`pay_mifr2x0k0Vb3aaaaaaaaaaaaaa,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`MICROPAY,`REFUND,`CFT,`CNY,`0.00,`0.00,`50300001,`ref_1,`1.10,`0.00,`ORIGINAL,`SUCCESS,`被扫支付测试,`订单额外描述,`-0.01000,`0.60%,`91.01,`1.10,`',
  '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额',
  '`2,`91.01,`1.10,`0.00,`0.54000,`91.01,`1.10',
  '',
].join('\r\n');

describe('parseBill', () => {
  it('reads the documented format: a payment and a refund, in fen, China time', () => {
    expect(parseBill(SAMPLE)).toEqual([
      {
        kind: 'payment',
        outTradeNo: 'pay_mifr2x0k0Vb3aaaaaaaaaaaaaa',
        tradeNo: '4200000123202611290000000001',
        amount: 9101,
        at: '2026-11-29T16:33:45+08:00',
      },
      {
        kind: 'refund',
        outTradeNo: 'pay_mifr2x0k0Vb3aaaaaaaaaaaaaa',
        tradeNo: '4200000123202611290000000001',
        refundNo: 'ref_1',
        amount: 110,
        at: '2026-11-29T17:00:00+08:00',
      },
    ]);
  });
  it('reads the v3 download (a BOM in front) and what formatBill writes', () => {
    const lines: BillLine[] = [
      {
        at: '2026-11-29 00:00:01',
        appId: 'wx1',
        mchId: '1900000001',
        transactionId: '4200',
        outTradeNo: 'pay_x0000000001',
        state: 'SUCCESS',
        amountFen: 1,
      },
      {
        at: '2026-11-29 23:59:59',
        appId: 'wx1',
        mchId: '1900000001',
        transactionId: '4200',
        outTradeNo: 'pay_x0000000001',
        state: 'REVOKED',
        amountFen: 1,
        refundFen: 1,
      },
    ];
    expect(parseBill(Buffer.from(formatBill(lines, true)))).toEqual([
      {
        kind: 'payment',
        outTradeNo: 'pay_x0000000001',
        tradeNo: '4200',
        amount: 1,
        at: '2026-11-29T00:00:01+08:00',
      },
      {
        kind: 'refund',
        outTradeNo: 'pay_x0000000001',
        tradeNo: '4200',
        amount: 1,
        at: '2026-11-29T23:59:59+08:00',
      },
    ]);
  });
  it('converts yuan exactly', () => {
    expect(yuanToFen('0.01')).toBe(1);
    expect(yuanToFen('1.1')).toBe(110);
    expect(yuanToFen('100000000')).toBe(10_000_000_000);
    expect(fenToYuan(9101)).toBe('91.01');
    for (const bad of ['1.001', '-1', '1e3', '', ' 1', '0x10', '1.'])
      expect(() => yuanToFen(bad)).toThrow(ProtocolError);
  });
  it.each([
    ['a missing column', SAMPLE.replace('交易状态,', '')],
    ['a summary count that does not match', SAMPLE.replace('`2,`91.01', '`3,`91.01')],
    ['a float-ish amount', SAMPLE.replace('`91.01,`0.00,`0,`0', '`91.011,`0.00,`0,`0')],
    ['an impossible date', SAMPLE.replace('2026-11-29 16:33:45', '2026-02-30 16:33:45')],
    [
      'a cell count that does not match',
      SAMPLE.replace('`订单额外描述,`0.55000', '`订单额外描述,`x,`0.55000'),
    ],
    ['no summary', SAMPLE.split('\r\n').slice(0, 3).join('\r\n')],
  ])('refuses %s', (_n, text) => {
    expect(() => parseBill(text)).toThrow(ProtocolError);
  });
});

describe('parseBill fuzz', () => {
  it('random bytes: rows or a ProtocolError, never another exception', () => {
    const r = seededRandom(42);
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(r() * 400);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(r() * 256);
      try {
        parseBill(buf);
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
      }
    }
  });
  it('mutated bills: never a crash, and only a line reading exactly SUCCESS is a payment', () => {
    const r = seededRandom(1129);
    const alphabet = '`,\r\n0123456789.-SUCESFRNDV总交易单数 ';
    for (let i = 0; i < 5000; i++) {
      const text = mutateText(SAMPLE, r, alphabet, 4);
      let rows;
      try {
        rows = parseBill(text);
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        continue;
      }
      const successLines = text.split(/\r?\n/).filter((l) => l.split(',`')[9] === 'SUCCESS').length;
      expect(rows.filter((x) => x.kind === 'payment').length).toBeLessThanOrEqual(successLines);
      for (const row of rows) expect(Number.isSafeInteger(row.amount) && row.amount >= 0).toBe(true);
    }
  });
});
