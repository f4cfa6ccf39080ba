/**
 * WeChat Pay's trade bill (对账单), the same text for v2 `downloadbill` and v3 `tradebill`'s download:
 * an optional UTF-8 BOM, a header line of Chinese column names, one line per trade event whose every cell is
 * prefixed with a backtick (so spreadsheets keep long numbers as text: `` `2026-11-29 14:33:45,`wx…,`… ``),
 * then a summary caption line and one summary line. Amounts are yuan with up to two decimals; times are
 * China time. A line's 交易状态 is SUCCESS for a payment, REFUND for a refund, REVOKED for a reversal of a
 * paid trade.
 *
 * The parser is strict: a column it needs missing, a cell count that does not match the header, an amount
 * that is not a plain yuan number, a time that is not a China-time timestamp → ProtocolError naming the
 * line. It never guesses a row into a payment.
 */
import { ProtocolError } from '../../../protocol/errors';
import { BillRow } from '../wallet';

export const BILL_COLUMNS = [
  '交易时间',
  '公众账号ID',
  '商户号',
  '特约商户号',
  '设备号',
  '微信订单号',
  '商户订单号',
  '用户标识',
  '交易类型',
  '交易状态',
  '付款银行',
  '货币种类',
  '应结订单金额',
  '代金券金额',
  '微信退款单号',
  '商户退款单号',
  '退款金额',
  '充值券退款金额',
  '退款类型',
  '退款状态',
  '商品名称',
  '商户数据包',
  '手续费',
  '费率',
  '订单金额',
  '申请退款金额',
  '费率备注',
] as const;
export const BILL_SUMMARY_COLUMNS = [
  '总交易单数',
  '应结订单总金额',
  '退款总金额',
  '充值券退款总金额',
  '手续费总金额',
  '订单总金额',
  '申请退款总金额',
] as const;

function bad(what: string, line: number): never {
  throw new ProtocolError('wechat.bill_invalid', `WeChat Pay bill is not valid: ${what} (line ${line})`);
}

/** Yuan text (`12.30`, `0.01`, `5`) → fen, exactly, without a float. */
export function yuanToFen(text: string, line = 0): number {
  const m = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) bad('an amount that is not a yuan number', line);
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

/** fen → yuan text with two decimals (`9101` → `91.01`). */
export function fenToYuan(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError('fen must be a non-negative integer');
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

function cells(line: string, n: number): string[] {
  if (!line.startsWith('`')) bad('a data line that does not start with a backtick', n);
  return line.slice(1).split(',`');
}

function at(text: string, line: number): string {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) bad('a time that is not yyyy-MM-dd HH:mm:ss', line);
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  if (d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3] || +m[4] > 23 || +m[5] > 59 || +m[6] > 59)
    bad('an impossible date', line);
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}+08:00`;
}

/** Parses a bill into rows; lines whose state is neither a payment, a refund nor a reversal are skipped. */
export function parseBill(input: string | Buffer): BillRow[] {
  let text: string;
  if (Buffer.isBuffer(input)) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      bad('not UTF-8', 1);
    }
  } else text = input;
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length < 3) bad('fewer than three lines (header, summary caption, summary)', lines.length);
  const head = lines[0].split(',');
  // Only column names WeChat Pay prints, each once: a damaged header (two names run together) would shift
  // every cell into the wrong column.
  const known = new Set<string>(BILL_COLUMNS);
  for (const name of head) if (!known.has(name)) bad(`an unknown column "${name.slice(0, 20)}"`, 1);
  if (new Set(head).size !== head.length) bad('a column named twice', 1);
  const freeText = new Set([head.indexOf('商品名称'), head.indexOf('商户数据包'), head.indexOf('费率备注')]);
  const col = (name: string): number => {
    const i = head.indexOf(name);
    if (i < 0) bad(`no column ${name}`, 1);
    return i;
  };
  const c = {
    time: col('交易时间'),
    tx: col('微信订单号'),
    out: col('商户订单号'),
    state: col('交易状态'),
    type: head.indexOf('交易类型'),
    settle: col('应结订单金额'),
    refundId: col('微信退款单号'),
    refundNo: col('商户退款单号'),
    refund: col('退款金额'),
  };
  const captionAt = lines.length - 2;
  if (!lines[captionAt].startsWith('总交易单数'))
    bad('no summary caption (总交易单数) before the last line', captionAt + 1);
  const rows: BillRow[] = [];
  for (let i = 1; i < captionAt; i++) {
    const n = i + 1;
    const v = cells(lines[i], n);
    if (v.length !== head.length) bad(`${v.length} cells where the header has ${head.length}`, n);
    // A comma inside a fixed-format cell is a lost backtick: two cells run together, the rest shifted.
    v.forEach((cell, i) => {
      if (!freeText.has(i) && cell.includes(','))
        bad(`a comma inside the ${head[i]} cell (a missing backtick)`, n);
    });
    if (!/^[A-Z_]{2,32}$/.test(v[c.state])) bad('a 交易状态 that is not a state', n);
    if (c.type >= 0 && !/^[A-Z_]{2,32}$/.test(v[c.type])) bad('a 交易类型 that is not a trade type', n);
    if (!/^\d{1,64}$/.test(v[c.tx])) bad('a 微信订单号 that is not a number', n);
    const state = v[c.state];
    if (!/^[A-Za-z0-9_]{6,32}$/.test(v[c.out])) bad('a 商户订单号 that is not an order number', n);
    if (state === 'SUCCESS') {
      rows.push({
        kind: 'payment',
        outTradeNo: v[c.out],
        tradeNo: v[c.tx],
        amount: yuanToFen(v[c.settle], n),
        at: at(v[c.time], n),
      });
    } else if (state === 'REFUND' || state === 'REVOKED') {
      const row: BillRow = {
        kind: 'refund',
        outTradeNo: v[c.out],
        tradeNo: v[c.tx],
        amount: yuanToFen(v[c.refund], n),
        at: at(v[c.time], n),
      };
      if (state === 'REFUND') {
        if (!v[c.refundNo]) bad('a refund without 商户退款单号', n);
        row.refundNo = v[c.refundNo];
      }
      rows.push(row);
    }
  }
  const summary = cells(lines[lines.length - 1], lines.length);
  if (!/^\d+$/.test(summary[0] ?? '')) bad('a summary whose 总交易单数 is not a number', lines.length);
  if (Number(summary[0]) !== captionAt - 1)
    bad(`a summary counting ${summary[0]} lines where there are ${captionAt - 1}`, lines.length);
  return rows;
}

export interface BillLine {
  at: string; // yyyy-MM-dd HH:mm:ss China time
  appId: string;
  mchId: string;
  transactionId: string;
  outTradeNo: string;
  state: 'SUCCESS' | 'REFUND' | 'REVOKED';
  amountFen: number;
  refundId?: string;
  outRefundNo?: string;
  refundFen?: number;
}

/** Writes a bill in WeChat Pay's format (the gateway's side; also handy in tests). */
export function formatBill(lines: BillLine[], bom = false): string {
  const y = fenToYuan;
  const out = [BILL_COLUMNS.join(',')];
  let settle = 0;
  let refunds = 0;
  for (const l of lines) {
    const refund = l.state === 'SUCCESS' ? 0 : (l.refundFen ?? 0);
    if (l.state === 'SUCCESS') settle += l.amountFen;
    else refunds += refund;
    const row = [
      l.at,
      l.appId,
      l.mchId,
      '0',
      '',
      l.transactionId,
      l.outTradeNo,
      'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
      'MICROPAY',
      l.state,
      'OTHERS',
      'CNY',
      l.state === 'SUCCESS' ? y(l.amountFen) : '0.00',
      '0.00',
      l.refundId ?? '0',
      l.outRefundNo ?? '0',
      y(refund),
      '0.00',
      l.state === 'SUCCESS' ? '' : 'ORIGINAL',
      l.state === 'SUCCESS' ? '' : 'SUCCESS',
      'payconnect',
      '',
      '0.00000',
      '0.60%',
      y(l.amountFen),
      y(refund),
      '',
    ];
    out.push('`' + row.join(',`'));
  }
  out.push(BILL_SUMMARY_COLUMNS.join(','));
  out.push(
    '`' + [String(lines.length), y(settle), y(refunds), '0.00', '0.00000', y(settle), y(refunds)].join(',`'),
  );
  return (bom ? '\ufeff' : '') + out.join('\r\n') + '\r\n';
}
