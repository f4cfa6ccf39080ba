/**
 * Alipay's trade bill (对账单, `bill_type=trade`) for one day: a zip holding two GBK-encoded CSV files,
 * `<pid>_<yyyyMMdd>_业务明细.csv` (one line per payment and per refund) and `…_业务明细(汇总).csv` (totals).
 * The gateway writes it, the provider reads it (WalletProvider.bill).
 *
 * The layout follows the public samples of the real file as far as we know them (docs/providers/alipay.md,
 * "The bill"): `#` comment lines above and below, one header line naming the columns, values followed by a
 * tab (so spreadsheet programs keep the long trade numbers as text), `交易` and `退款` as the business type,
 * amounts in yuan with two decimals, a refund's 商家实收 negative and its out_request_no in
 * `退款批次号/请求号`. The reader finds columns by their header names, so an added or moved column does not
 * break it; a missing needed column or an unreadable amount is a BillError.
 */
import * as iconv from 'iconv-lite';
import { BillRow } from '../wallet';
import { chinaIso, fenToYuan, yuanToFen } from './format';
import { readZip, writeZip } from './zip';

export class BillError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BillError';
  }
}

export const BILL_COLUMNS = [
  '支付宝交易号',
  '商户订单号',
  '业务类型',
  '商品名称',
  '创建时间',
  '完成时间',
  '门店编号',
  '门店名称',
  '操作员',
  '终端号',
  '对方账户',
  '订单金额（元）',
  '商家实收（元）',
  '支付宝红包（元）',
  '集分宝（元）',
  '支付宝优惠（元）',
  '商家优惠（元）',
  '券核销金额（元）',
  '券名称',
  '商家红包消费金额（元）',
  '卡消费金额（元）',
  '退款批次号/请求号',
  '服务费（元）',
  '分润（元）',
  '备注',
] as const;

/** One line as the gateway books it. Times are "yyyy-MM-dd HH:mm:ss" China time. */
export interface BillLine {
  kind: 'payment' | 'refund';
  tradeNo: string;
  outTradeNo: string;
  subject: string;
  createdAt: string;
  doneAt: string;
  buyer: string;
  /** The trade's total, fen. */
  totalFen: number;
  /** Fen moved by this line (a payment's amount, or a refund's), positive. */
  amountFen: number;
  refundNo?: string;
}

function cnDate(d: string): string {
  return `${d.slice(0, 4)}年${d.slice(5, 7)}月${d.slice(8, 10)}日`;
}

function csvCell(v: string): string {
  const t = /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
  return `${t}\t`;
}

/** The bill zip for `date` (YYYY-MM-DD) of merchant `pid`; `exportedAt` is a China-time timestamp. */
export function writeBill(
  pid: string,
  date: string,
  lines: BillLine[],
  exportedAt: string,
): { fileName: string; zip: Buffer } {
  const day = date.replace(/-/g, '');
  const next = new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  const exp = `${cnDate(exportedAt)} ${exportedAt.slice(11)}`;
  const head = [
    '#支付宝业务明细查询',
    `#账号：[${pid}0156]`,
    `#起始日期：[${cnDate(date)} 00:00:00]   终止日期：[${cnDate(next)} 00:00:00]`,
    '#-----------------------------------------业务明细列表----------------------------------------',
    BILL_COLUMNS.join(','),
  ];
  let payN = 0,
    payFen = 0,
    refN = 0,
    refFen = 0;
  const body = lines.map((l) => {
    const refund = l.kind === 'refund';
    if (refund) {
      refN++;
      refFen += l.amountFen;
    } else {
      payN++;
      payFen += l.amountFen;
    }
    const net = refund ? `-${fenToYuan(l.amountFen)}` : fenToYuan(l.amountFen);
    const cells = [
      l.tradeNo,
      l.outTradeNo,
      refund ? '退款' : '交易',
      l.subject,
      l.createdAt,
      l.doneAt,
      '',
      '',
      '',
      '',
      l.buyer,
      fenToYuan(l.totalFen),
      net,
      '0.00',
      '0.00',
      '0.00',
      '0.00',
      '0.00',
      '',
      '0.00',
      '0.00',
      l.refundNo ?? '',
      '0.00',
      '0.00',
      '',
    ];
    return cells.map(csvCell).join(',');
  });
  const tail = [
    '#-----------------------------------------业务明细列表结束------------------------------------',
    `#交易合计：${payN}笔，商家实收共${fenToYuan(payFen)}元，商家优惠共0.00元`,
    `#退款合计：${refN}笔，商家实收共-${fenToYuan(refFen)}元，商家优惠共0.00元`,
    `#导出时间：[${exp}]`,
  ];
  const detail = [...head, ...body, ...tail].join('\r\n') + '\r\n';
  const summary =
    [
      '#支付宝业务汇总查询',
      `#账号：[${pid}0156]`,
      `#起始日期：[${cnDate(date)} 00:00:00]   终止日期：[${cnDate(next)} 00:00:00]`,
      '#-----------------------------------------业务汇总列表----------------------------------------',
      '门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）',
      [
        '',
        '',
        String(payN),
        String(refN),
        fenToYuan(payFen),
        fenToYuan(Math.max(0, payFen - refFen)),
        '0.00',
        '0.00',
        '0.00',
        '0.00',
        '0.00',
        fenToYuan(Math.max(0, payFen - refFen)),
      ]
        .map(csvCell)
        .join(','),
      '#-----------------------------------------业务汇总列表结束------------------------------------',
      `#导出时间：[${exp}]`,
    ].join('\r\n') + '\r\n';
  const zip = writeZip([
    { name: `${pid}_${day}_业务明细.csv`, data: iconv.encode(detail, 'gbk') },
    { name: `${pid}_${day}_业务明细(汇总).csv`, data: iconv.encode(summary, 'gbk') },
  ]);
  return { fileName: `${pid}_${day}.csv.zip`, zip };
}

/** Splits one CSV line (RFC 4180 quotes), trimming the tab after each value. */
function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((v) => v.replace(/^[\s\t]+|[\s\t]+$/g, ''));
}

/** Reads the detail CSV of a bill zip into BillRows. */
export function readBill(zip: Buffer): BillRow[] {
  const entries = readZip(zip);
  const detail = entries.find(
    (e) => /业务明细\.csv$/.test(e.name) || (e.name.endsWith('.csv') && !e.name.includes('汇总')),
  );
  if (!detail) throw new BillError('the bill archive holds no detail file (业务明细.csv)');
  const text = iconv.decode(detail.data, 'gbk');
  const lines = text.split(/\r?\n/).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new BillError('the bill has no header line');
  const header = splitCsv(lines[0]);
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new BillError(`the bill has no column ${name}`);
    return i;
  };
  const c = {
    tradeNo: col('支付宝交易号'),
    outTradeNo: col('商户订单号'),
    kind: col('业务类型'),
    done: col('完成时间'),
    net: col('商家实收（元）'),
    refundNo: col('退款批次号/请求号'),
  };
  return lines.slice(1).map((line, k) => {
    const v = splitCsv(line);
    const where = `line ${k + 1} of the bill`;
    const kindText = v[c.kind];
    if (kindText !== '交易' && kindText !== '退款') throw new BillError(`${where}: unknown business type`);
    const kind = kindText === '退款' ? 'refund' : 'payment';
    const net = v[c.net] ?? '';
    const fen = yuanToFen(net.startsWith('-') ? net.slice(1) : net);
    if (fen === undefined) throw new BillError(`${where}: unreadable amount`);
    const at = chinaIso(v[c.done] ?? '');
    if (!at) throw new BillError(`${where}: unreadable time`);
    const row: BillRow = { kind, outTradeNo: v[c.outTradeNo], tradeNo: v[c.tradeNo], amount: fen, at };
    if (kind === 'refund') row.refundNo = v[c.refundNo];
    return row;
  });
}
