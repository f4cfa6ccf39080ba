/**
 * A local stand-in for Alipay's v2 OpenAPI gateway (`payconnect gateway alipay`), faithful to what the
 * AlipayProvider relies on (../shared/research/wallet-providers.md §1, §5):
 *
 * - a real HTTP server; `POST /gateway.do` (GET too) with the system parameters in the query and
 *   `biz_content` in the form body, both read, decoded in the request's charset (utf-8, gbk, gb2312);
 * - the request's signature checked exactly as Alipay checks it (sign.ts: every parameter but `sign`,
 *   `sign_type` included, empties dropped, sorted, raw values) with the app's public key: a wrong byte is
 *   40002 isv.invalid-signature, answered under the method's key, signed, as Alipay does; missing system
 *   parameters 40001, bad ones 40002 (unknown app id, sign type, format, charset, a timestamp off by more
 *   than 15 minutes); an unknown or missing method under `error_response`;
 * - every answer signed with the gateway's own key over the exact text sent (slashes written `\/`, as
 *   Alipay writes them);
 * - a ledger per app (ledger.ts): amounts [0.01, 100000000] yuan with at most two decimals, payment codes
 *   25–30 + 16–24 digits (or a face code `fp` + 33), each usable once; one trade per out_trade_no (the same
 *   parameters again → that trade's state, other parameters → ACQ.CONTEXT_INCONSISTENT, already paid →
 *   ACQ.TRADE_HAS_SUCCESS, closed → ACQ.TRADE_HAS_CLOSE); an unpaid trade closes by itself after 3 min (or
 *   its timeout_express); cancel within 24 h (close, or refund a paid trade: action=refund); refunds
 *   idempotent per out_request_no, capped at the amount paid; the refund query; the day's bill as a zip of
 *   GBK CSV files (bill.ts) behind a download address valid 30 s;
 * - the scenarios of ../scenarios.ts, by amount or by the `payconnect-scenario` header.
 *
 * `speed` divides every scenario delay (the customer's confirmation, the auto-close). Test-only options:
 * `forge` signs every answer with a key that is not the gateway's (a forged gateway); `signUnescaped`
 * signs the text with `/` while sending `\/` (the answer the Java SDK's retry exists for).
 */
import { createPrivateKey, createPublicKey, KeyObject, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { BillLine, writeBill } from '../../providers/alipay/bill';
import { charsetOf, FormError, mergeParams, parseForm } from '../../providers/alipay/form';
import {
  ALIPAY_MAX_FEN,
  chinaDate,
  chinaTimestamp,
  fenToYuan,
  parseChinaTimestamp,
  yuanToFen,
} from '../../providers/alipay/format';
import {
  AlipaySignType,
  loadPublicKey,
  requestSignContent,
  responseKeyOf,
  signText,
  verifyText,
} from '../../providers/alipay/sign';
import { GATEWAY_CONFIRM_MS, GatewayScenario, scenarioFor, SCENARIO_HEADER } from '../scenarios';
import { loadOrCreateKeys, rsaPair, saveApps, digits } from './keys';
import { codeHash, GatewayLedger, GatewayTrade } from './ledger';

export interface AlipayGatewayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) = any free port. */
  port?: number;
  /** Where keys, the demo merchant and the ledger are kept; without it everything is in memory. */
  dataDir?: string;
  /** Divides every scenario delay. Default 1. */
  speed?: number;
  /** How long a waiting customer takes to confirm (wait_then_success), before `speed`. Default 8 s. */
  confirmMs?: number;
  /** Tests: sign answers with a wrong key (a forged gateway). */
  forge?: boolean;
  /** Tests: sign the answer's text with `/` but send it with `\/`. */
  signUnescaped?: boolean;
  /** Tests: allowed clock difference of a request's timestamp. Default 15 min. */
  maxSkewMs?: number;
  log?: (line: string) => void;
}

export interface AlipayGateway {
  /** `http://host:port/gateway.do` */
  url: string;
  port: number;
  close(): Promise<void>;
  /** The demo merchant: its app id and private key, and the gateway's ("Alipay's") public key. */
  merchant(): { appId: string; appPrivateKeyPem: string; alipayPublicKeyPem: string };
  /** Lets another app call the gateway (its app public key, as uploaded on open.alipay.com). */
  addApp(appId: string, appPublicKeyPem: string): void;
  /** Every trade of the ledger (copies). */
  trades(): GatewayTrade[];
  /** Tests: the next `n` cancels answer ACQ.SYSTEM_ERROR with retry_flag=Y and change nothing. */
  setCancelRetries(n: number): void;
}

/** Alipay's default auto-close of an unpaid bar-code trade (§1.6). */
export const ALIPAY_AUTO_CLOSE_MS = 3 * 60_000;
/** How long a bill download address stays valid. */
const BILL_URL_TTL_MS = 30_000;
/** How long a `no_answer_then_success` pay request is held before the socket is dropped, before `speed`. */
const HOLD_MS = 10 * 60_000;
const CANCEL_WINDOW_MS = 24 * 3600_000;
const METHODS = new Set([
  'alipay.trade.pay',
  'alipay.trade.query',
  'alipay.trade.cancel',
  'alipay.trade.refund',
  'alipay.trade.fastpay.refund.query',
  'alipay.data.dataservice.bill.downloadurl.query',
]);

type Reply = Record<string, unknown>;

const MSG: Record<string, string> = {
  '10000': 'Success',
  '10003': 'order success pay inprocess',
  '20000': 'Service Currently Unavailable',
  '40001': 'Missing Required Arguments',
  '40002': 'Invalid Arguments',
  '40004': 'Business Failed',
};

function reply(code: string, fields: Reply = {}): Reply {
  return { code, msg: MSG[code], ...fields };
}

function fail(code: string, subCode: string, subMsg: string, fields: Reply = {}): Reply {
  return { code, msg: MSG[code], sub_code: subCode, sub_msg: subMsg, ...fields };
}

/** "90m", "2h", "1d", "1c" (till midnight) → ms; undefined for anything else. */
function timeoutExpress(text: string | undefined, now: number): number | undefined {
  const m = /^(\d{1,4})([mhd])$|^1c$/.exec(text ?? '');
  if (!m) return undefined;
  if (text === '1c') {
    const day = chinaDate(now);
    return (parseChinaTimestamp(`${day} 23:59:59`) ?? now) + 1000 - now;
  }
  const n = Number(m[1]);
  if (n < 1) return undefined;
  return n * (m[2] === 'm' ? 60_000 : m[2] === 'h' ? 3600_000 : 86_400_000);
}

const AUTH_CODE = /^(?:(?:2[5-9]|30)\d{14,22}|fp[0-9A-Za-z]{33})$/;
const OUT_NO = /^[A-Za-z0-9_]{1,64}$/;

export async function startAlipayGateway(opts: AlipayGatewayOptions = {}): Promise<AlipayGateway> {
  const speed = opts.speed ?? 1;
  if (!Number.isFinite(speed) || speed <= 0)
    throw new Error(`the gateway speed must be a number above 0, not ${speed}`);
  const scaled = (ms: number) => Math.max(1, Math.round(ms / speed));
  const confirmMs = opts.confirmMs ?? GATEWAY_CONFIRM_MS;
  const maxSkew = opts.maxSkewMs ?? 15 * 60_000;
  const log = opts.log ?? (() => undefined);
  const keys = loadOrCreateKeys(opts.dataDir);
  const gatewayKey = createPrivateKey(keys.gatewayPrivateKeyPem);
  const signingKey: KeyObject = opts.forge ? createPrivateKey(rsaPair().privateKeyPem) : gatewayKey;
  const appKeys = new Map<string, KeyObject>();
  for (const [id, pem] of Object.entries(keys.apps)) appKeys.set(id, loadPublicKey(pem));
  const ledger = new GatewayLedger(opts.dataDir);
  const bills = new Map<string, { zip: Buffer; fileName: string; until: number }>();
  let cancelRetries = 0;
  const sockets = new Set<Socket>();
  const held = new Set<NodeJS.Timeout>();
  let base = '';

  // ---- answers -------------------------------------------------------------------------------

  function answer(res: http.ServerResponse, rootKey: string, r: Reply): void {
    const sent = JSON.stringify(r).replace(/\//g, '\\/');
    const signed = opts.signUnescaped ? JSON.stringify(r) : sent;
    const body = `{${JSON.stringify(rootKey)}:${sent},"sign":${JSON.stringify(signText(signed, signingKey, 'RSA2'))}}`;
    res.writeHead(200, { 'content-type': 'text/html;charset=utf-8' });
    res.end(body);
  }

  /** Settles a trade's clock-driven changes (the customer confirmed, the trade closed itself). */
  function settle(t: GatewayTrade, now = Date.now()): void {
    if (t.status !== 'WAIT_BUYER_PAY') return;
    if (t.confirmAt !== undefined && t.confirmAt <= now && t.confirmAt < t.closeAt) {
      t.status = 'TRADE_SUCCESS';
      t.paidAt = t.confirmAt;
      ledger.save(t);
    } else if (t.closeAt <= now) {
      t.status = 'TRADE_CLOSED';
      t.closedAt = t.closeAt;
      ledger.save(t);
    }
  }

  const refundedFen = (t: GatewayTrade) => t.refunds.reduce((a, r) => a + r.fen, 0);

  function tradeFields(t: GatewayTrade): Reply {
    const paid = t.paidAt !== undefined;
    return {
      trade_no: t.tradeNo,
      out_trade_no: t.outTradeNo,
      buyer_logon_id: t.buyerLogonId,
      total_amount: fenToYuan(t.totalFen),
      receipt_amount: paid ? fenToYuan(t.totalFen) : '0.00',
      buyer_pay_amount: paid ? fenToYuan(t.totalFen) : '0.00',
      point_amount: '0.00',
      invoice_amount: paid ? fenToYuan(t.totalFen) : '0.00',
      ...(paid
        ? {
            gmt_payment: chinaTimestamp(t.paidAt!),
            fund_bill_list: [{ fund_channel: 'ALIPAYACCOUNT', amount: fenToYuan(t.totalFen) }],
          }
        : {}),
      buyer_user_id: t.buyerUserId,
    };
  }

  const invalid = (what: string) => fail('40004', 'ACQ.INVALID_PARAMETER', `参数无效 (${what})`);

  // ---- methods -------------------------------------------------------------------------------

  function pay(appId: string, biz: Reply, scenarioHeader: string | string[] | undefined): Reply | 'hold' {
    const now = Date.now();
    const outTradeNo = typeof biz.out_trade_no === 'string' ? biz.out_trade_no : '';
    const code = typeof biz.auth_code === 'string' ? biz.auth_code : '';
    const subject = typeof biz.subject === 'string' ? biz.subject : '';
    const scene = typeof biz.scene === 'string' ? biz.scene : '';
    if (!OUT_NO.test(outTradeNo)) return invalid('out_trade_no');
    if (scene !== 'bar_code' && scene !== 'security_code') return invalid('scene');
    if (subject === '' || subject.length > 256 || /[/=&]/.test(subject)) return invalid('subject');
    if (code === '') return invalid('auth_code');
    const fen = typeof biz.total_amount === 'string' ? yuanToFen(biz.total_amount) : undefined;
    if (fen === undefined || fen < 1) return invalid('total_amount');
    if (fen > ALIPAY_MAX_FEN) return fail('40004', 'ACQ.TOTAL_FEE_EXCEED', '订单金额超过限额');
    const hash = codeHash(code);

    const existing = ledger.find(appId, { outTradeNo });
    if (existing) {
      settle(existing, now);
      if (existing.status === 'TRADE_SUCCESS' || existing.status === 'TRADE_FINISHED') {
        return fail('40004', 'ACQ.TRADE_HAS_SUCCESS', '交易已被支付', {
          out_trade_no: outTradeNo,
          trade_no: existing.tradeNo,
        });
      }
      if (existing.status === 'TRADE_CLOSED') return fail('40004', 'ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
      if (existing.totalFen !== fen || existing.codeHash !== hash || existing.subject !== subject) {
        return fail('40004', 'ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
      }
      return reply('10003', tradeFields(existing));
    }

    const scenario: GatewayScenario | undefined = scenarioFor(fen, scenarioHeader);
    if (scenario === 'duplicate_order_no') return fail('40004', 'ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
    if (!AUTH_CODE.test(code) || ledger.isSpent('*', hash)) {
      return fail(
        '40004',
        'ACQ.PAYMENT_AUTH_CODE_INVALID',
        '支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款',
      );
    }
    // §1.1: a code is spent once presented, even when the payment fails.
    ledger.spend('*', hash);
    if (scenario === 'code_invalid') {
      return fail(
        '40004',
        'ACQ.PAYMENT_AUTH_CODE_INVALID',
        '支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款',
      );
    }
    if (scenario === 'system_error_not_created') return fail('40004', 'ACQ.SYSTEM_ERROR', '系统错误');

    const autoClose =
      timeoutExpress(typeof biz.timeout_express === 'string' ? biz.timeout_express : undefined, now) ??
      ALIPAY_AUTO_CLOSE_MS;
    const t: GatewayTrade = {
      appId,
      outTradeNo,
      tradeNo: `${chinaDate(now).replace(/-/g, '')}22001${digits(15)}`,
      totalFen: fen,
      subject,
      codeHash: hash,
      scene,
      ...(typeof biz.store_id === 'string' ? { storeId: biz.store_id } : {}),
      ...(scenario ? { scenario } : {}),
      status: 'WAIT_BUYER_PAY',
      createdAt: now,
      closeAt: now + scaled(autoClose),
      refunds: [],
      buyerLogonId: `159******${hash.slice(0, 2).replace(/[a-f]/g, '7')}`,
      buyerUserId: `2088${digits(12)}`,
    };
    switch (scenario) {
      case 'insufficient_funds':
        t.status = 'TRADE_CLOSED';
        t.closedAt = now;
        ledger.save(t);
        return fail('40004', 'ACQ.BUYER_BALANCE_NOT_ENOUGH', '买家余额不足', tradeFields(t));
      case 'wait_then_success':
        t.confirmAt = now + scaled(confirmMs);
        ledger.save(t);
        return reply('10003', tradeFields(t));
      case 'wait_then_timeout':
      case 'cancel_race':
        ledger.save(t);
        return reply('10003', tradeFields(t));
      default:
        t.status = 'TRADE_SUCCESS';
        t.paidAt = now;
        ledger.save(t);
        if (scenario === 'system_error_then_success') return fail('20000', 'isp.unknow-error', '系统繁忙');
        if (scenario === 'no_answer_then_success') return 'hold';
        return reply('10000', tradeFields(t));
    }
  }

  function ref(biz: Reply): { outTradeNo?: string; tradeNo?: string } {
    return {
      outTradeNo: typeof biz.out_trade_no === 'string' ? biz.out_trade_no : undefined,
      tradeNo: typeof biz.trade_no === 'string' && biz.trade_no !== '' ? biz.trade_no : undefined,
    };
  }

  function query(appId: string, biz: Reply): Reply {
    const r = ref(biz);
    if (!r.outTradeNo && !r.tradeNo) return invalid('out_trade_no or trade_no');
    const t = ledger.find(appId, r);
    if (!t)
      return fail('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在', {
        out_trade_no: r.outTradeNo ?? '',
        buyer_pay_amount: '0.00',
        invoice_amount: '0.00',
        point_amount: '0.00',
        receipt_amount: '0.00',
      });
    settle(t);
    const f = tradeFields(t);
    delete f.gmt_payment;
    return reply('10000', {
      ...f,
      trade_status: t.status,
      ...(t.paidAt !== undefined ? { send_pay_date: chinaTimestamp(t.paidAt) } : {}),
      ...(t.storeId ? { store_id: t.storeId } : {}),
    });
  }

  function cancel(appId: string, biz: Reply): Reply {
    const now = Date.now();
    const r = ref(biz);
    if (!r.outTradeNo && !r.tradeNo) return invalid('out_trade_no or trade_no');
    if (cancelRetries > 0) {
      cancelRetries--;
      return fail('40004', 'ACQ.SYSTEM_ERROR', '系统错误', { retry_flag: 'Y' });
    }
    let t = ledger.find(appId, r);
    if (!t) {
      if (!r.outTradeNo || !OUT_NO.test(r.outTradeNo))
        return fail('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在', { retry_flag: 'N' });
      // A cancel that arrives before its pay (the pay's answer was lost, or it never arrived): the order
      // number is closed, so a late pay for it cannot succeed.
      t = {
        appId,
        outTradeNo: r.outTradeNo,
        tradeNo: `${chinaDate(now).replace(/-/g, '')}22001${digits(15)}`,
        totalFen: 0,
        subject: '',
        codeHash: '',
        scene: '',
        status: 'TRADE_CLOSED',
        createdAt: now,
        closedAt: now,
        closeAt: now,
        cancelAction: 'close',
        refunds: [],
        buyerLogonId: '',
        buyerUserId: '',
      };
      ledger.save(t);
      return reply('10000', {
        trade_no: t.tradeNo,
        out_trade_no: t.outTradeNo,
        retry_flag: 'N',
        action: 'close',
      });
    }
    if (now - t.createdAt > CANCEL_WINDOW_MS)
      return fail('40004', 'ACQ.TRADE_CANCEL_TIME_OUT', '超过撤销时间范围', { retry_flag: 'N' });
    settle(t, now);
    if (t.status === 'WAIT_BUYER_PAY' && t.scenario === 'cancel_race') {
      // The customer confirms exactly as the cancel lands: the trade is paid, and the cancel returns it.
      t.status = 'TRADE_SUCCESS';
      t.paidAt = now;
    }
    if (t.status === 'WAIT_BUYER_PAY') {
      t.status = 'TRADE_CLOSED';
      t.closedAt = now;
      t.cancelAction = 'close';
      ledger.save(t);
    } else if (t.status === 'TRADE_SUCCESS' || t.status === 'TRADE_FINISHED') {
      const rest = t.totalFen - refundedFen(t);
      if (rest > 0) t.refunds.push({ requestNo: '', fen: rest, at: now });
      t.status = 'TRADE_CLOSED';
      t.closedAt = now;
      t.cancelAction = 'refund';
      ledger.save(t);
    } else if (!t.cancelAction) {
      t.cancelAction = t.paidAt !== undefined ? 'refund' : 'close';
      ledger.save(t);
    }
    return reply('10000', {
      trade_no: t.tradeNo,
      out_trade_no: t.outTradeNo,
      retry_flag: 'N',
      action: t.cancelAction,
    });
  }

  function refund(appId: string, biz: Reply): Reply {
    const now = Date.now();
    const r = ref(biz);
    if (!r.outTradeNo && !r.tradeNo) return invalid('out_trade_no or trade_no');
    const fen = typeof biz.refund_amount === 'string' ? yuanToFen(biz.refund_amount) : undefined;
    if (fen === undefined || fen < 1) return invalid('refund_amount');
    const t = ledger.find(appId, r);
    if (!t) return fail('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在');
    settle(t, now);
    const requestNo =
      typeof biz.out_request_no === 'string' && biz.out_request_no !== '' ? biz.out_request_no : t.outTradeNo;
    if (!OUT_NO.test(requestNo)) return invalid('out_request_no');
    const done = {
      trade_no: t.tradeNo,
      out_trade_no: t.outTradeNo,
      buyer_logon_id: t.buyerLogonId,
      buyer_user_id: t.buyerUserId,
    };
    const same = t.refunds.find((x) => x.requestNo === requestNo);
    if (same) {
      if (same.fen !== fen) return fail('40004', 'ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
      return reply('10000', {
        ...done,
        fund_change: 'N',
        refund_fee: fenToYuan(refundedFen(t)),
        gmt_refund_pay: chinaTimestamp(same.at),
      });
    }
    if (t.paidAt === undefined) return fail('40004', 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
    if (refundedFen(t) + fen > t.totalFen)
      return fail('40004', 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限');
    if (t.status === 'TRADE_FINISHED') return fail('40004', 'ACQ.TRADE_HAS_FINISHED', '交易已完结');
    t.refunds.push({ requestNo, fen, at: now });
    if (refundedFen(t) === t.totalFen) {
      t.status = 'TRADE_CLOSED';
      t.closedAt = now;
    }
    ledger.save(t);
    return reply('10000', {
      ...done,
      fund_change: 'Y',
      refund_fee: fenToYuan(refundedFen(t)),
      gmt_refund_pay: chinaTimestamp(now),
    });
  }

  function refundQuery(appId: string, biz: Reply): Reply {
    const r = ref(biz);
    if (!r.outTradeNo && !r.tradeNo) return invalid('out_trade_no or trade_no');
    const t = ledger.find(appId, r);
    if (!t) return fail('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在');
    const requestNo =
      typeof biz.out_request_no === 'string' && biz.out_request_no !== '' ? biz.out_request_no : t.outTradeNo;
    const x = t.refunds.find((y) => y.requestNo === requestNo);
    if (!x) return reply('10000');
    return reply('10000', {
      trade_no: t.tradeNo,
      out_trade_no: t.outTradeNo,
      out_request_no: requestNo,
      total_amount: fenToYuan(t.totalFen),
      refund_amount: fenToYuan(x.fen),
      refund_status: 'REFUND_SUCCESS',
      gmt_refund_pay: chinaTimestamp(x.at),
    });
  }

  function billUrl(appId: string, biz: Reply): Reply {
    const now = Date.now();
    const type = biz.bill_type;
    const date = typeof biz.bill_date === 'string' ? biz.bill_date : '';
    if (type !== 'trade' && type !== 'signcustomer') return invalid('bill_type');
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || parseChinaTimestamp(`${date} 00:00:00`) === undefined)
      return invalid('bill_date');
    // Simplification: the real bill of a day is ready the next morning; this gateway serves any day up to today.
    if (date > chinaDate(now)) return fail('40004', 'isp.bill_not_exist', '账单不存在');
    const lines: BillLine[] = [];
    for (const t of ledger.live()) {
      if (t.appId !== appId) continue;
      settle(t, now);
      const base = {
        tradeNo: t.tradeNo,
        outTradeNo: t.outTradeNo,
        subject: t.subject,
        createdAt: chinaTimestamp(t.createdAt),
        buyer: t.buyerLogonId,
        totalFen: t.totalFen,
      };
      if (t.paidAt !== undefined && chinaDate(t.paidAt) === date) {
        lines.push({ ...base, kind: 'payment', doneAt: chinaTimestamp(t.paidAt), amountFen: t.totalFen });
      }
      for (const x of t.refunds) {
        if (chinaDate(x.at) === date)
          lines.push({
            ...base,
            kind: 'refund',
            doneAt: chinaTimestamp(x.at),
            amountFen: x.fen,
            refundNo: x.requestNo,
          });
      }
    }
    lines.sort((a, b) => (a.doneAt < b.doneAt ? -1 : a.doneAt > b.doneAt ? 1 : 0));
    const { fileName, zip } = writeBill(keys.merchant.pid, date, lines, chinaTimestamp(now));
    const token = randomBytes(16).toString('hex');
    bills.set(token, { zip, fileName, until: now + BILL_URL_TTL_MS });
    const day = date.replace(/-/g, '');
    const url = `${base}/downloadBillFile.resource?bizType=${type}&userId=${keys.merchant.pid}&fileType=csv.zip&bizDates=${day}&downloadFileName=${encodeURIComponent(fileName)}&fileId=${encodeURIComponent(`${type}/${keys.merchant.pid}/${day}`)}&timestamp=${now}&token=${token}`;
    return reply('10000', { bill_download_url: url });
  }

  // ---- the HTTP layer ------------------------------------------------------------------------

  function gateway(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    rawQuery: string,
    body: string,
  ): void {
    let params: Record<string, string>;
    let method = '';
    try {
      const cs = charsetOf(
        /(?:^|&)charset=([^&]*)/.exec(rawQuery)?.[1] ?? /(?:^|&)charset=([^&]*)/.exec(body)?.[1],
      );
      if (!cs) return answer(res, 'error_response', fail('40002', 'isv.invalid-charset', '字符集错误'));
      params = mergeParams(parseForm(rawQuery, cs), parseForm(body, cs));
    } catch (e) {
      if (e instanceof FormError)
        return answer(
          res,
          'error_response',
          fail('40002', 'isv.invalid-parameter', `参数无效: ${e.message}`),
        );
      throw e;
    }
    method = params.method ?? '';
    if (method === '')
      return answer(res, 'error_response', fail('40001', 'isv.missing-method', '缺少方法名参数'));
    if (!METHODS.has(method))
      return answer(res, 'error_response', fail('40002', 'isv.invalid-method', '不存在的方法名'));
    const key = responseKeyOf(method);
    const refuse = (code: string, sub: string, msg: string) => answer(res, key, fail(code, sub, msg));
    const appId = params.app_id ?? '';
    if (appId === '') return refuse('40001', 'isv.missing-app-id', '缺少AppID参数');
    if (!params.sign) return refuse('40001', 'isv.missing-signature', '缺少签名参数');
    if (!params.sign_type) return refuse('40001', 'isv.missing-signature-type', '缺少签名类型参数');
    if (params.sign_type !== 'RSA2' && params.sign_type !== 'RSA')
      return refuse('40002', 'isv.invalid-signature-type', '无效的签名类型参数');
    if (!params.timestamp) return refuse('40001', 'isv.missing-timestamp', '缺少时间戳参数');
    if (!params.version) return refuse('40001', 'isv.missing-version', '缺少版本参数');
    if (params.version !== '1.0') return refuse('40002', 'isv.invalid-version', '版本号错误');
    if (params.format !== undefined && params.format.toUpperCase() !== 'JSON')
      return refuse('40002', 'isv.invalid-format', '无效的数据格式参数');
    const ts = parseChinaTimestamp(params.timestamp);
    if (ts === undefined || Math.abs(ts - Date.now()) > maxSkew)
      return refuse('40002', 'isv.invalid-timestamp', '非法的时间戳参数');
    const appKey = appKeys.get(appId);
    if (!appKey) return refuse('40002', 'isv.invalid-app-id', '无效的AppID参数');
    const content = requestSignContent(params);
    const cs = charsetOf(params.charset) ?? 'utf-8';
    if (!verifyText(content, params.sign, appKey, params.sign_type as AlipaySignType, cs)) {
      // Alipay's own wording, which quotes the string it verified.
      return refuse(
        '40002',
        'isv.invalid-signature',
        `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content}`,
      );
    }
    let biz: Reply = {};
    if (params.biz_content !== undefined && params.biz_content !== '') {
      try {
        const parsed: unknown = JSON.parse(params.biz_content);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error('not an object');
        biz = parsed as Reply;
      } catch {
        return refuse('40002', 'isv.invalid-parameter', 'biz_content 不是合法的 JSON 对象');
      }
    }
    log(`alipay gateway ${method} app ${appId}`);
    let r: Reply | 'hold';
    switch (method) {
      case 'alipay.trade.pay':
        r = pay(appId, biz, req.headers[SCENARIO_HEADER]);
        break;
      case 'alipay.trade.query':
        r = query(appId, biz);
        break;
      case 'alipay.trade.cancel':
        r = cancel(appId, biz);
        break;
      case 'alipay.trade.refund':
        r = refund(appId, biz);
        break;
      case 'alipay.trade.fastpay.refund.query':
        r = refundQuery(appId, biz);
        break;
      default:
        r = billUrl(appId, biz);
    }
    if (r === 'hold') {
      // Charged, but the answer never comes: the client's timeout decides (unknown outcome → query).
      const timer = setTimeout(() => {
        held.delete(timer);
        req.socket.destroy();
      }, scaled(HOLD_MS));
      held.add(timer);
      return;
    }
    answer(res, key, r);
  }

  function download(res: http.ServerResponse, token: string | null): void {
    const b = token ? bills.get(token) : undefined;
    if (!b || b.until < Date.now()) {
      res.writeHead(404, { 'content-type': 'text/plain;charset=utf-8' });
      res.end('the bill address has expired or is unknown; ask for a new one');
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/oct-stream',
      'content-disposition': `attachment; filename="${encodeURIComponent(b.fileName)}"`,
    });
    res.end(b.zip);
  }

  const server = http.createServer((req, res) => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const pathname = q < 0 ? target : target.slice(0, q);
    const rawQuery = q < 0 ? '' : target.slice(q + 1);
    if (pathname === '/downloadBillFile.resource' && req.method === 'GET') {
      return download(res, new URLSearchParams(rawQuery).get('token'));
    }
    if (pathname !== '/gateway.do' || (req.method !== 'POST' && req.method !== 'GET')) {
      res.writeHead(404, { 'content-type': 'text/plain;charset=utf-8' });
      res.end('not found: the gateway is at /gateway.do');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      const bytes = Buffer.concat(chunks);
      // The body is form text: ASCII after percent-encoding. Anything else is refused by parseForm.
      const body = bytes.toString('latin1');
      try {
        gateway(req, res, rawQuery, body);
      } catch (e) {
        log(`alipay gateway: internal error ${(e as Error).message}`);
        if (!res.headersSent) answer(res, 'error_response', fail('20000', 'isp.unknow-error', '系统繁忙'));
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  base = `http://${host}:${addr.port}`;
  log(`alipay gateway listening on ${base}/gateway.do`);

  return {
    url: `${base}/gateway.do`,
    port: addr.port,
    async close() {
      for (const t of held) clearTimeout(t);
      held.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      ledger.close();
    },
    merchant: () => ({
      appId: keys.merchant.appId,
      appPrivateKeyPem: keys.merchant.appPrivateKeyPem,
      alipayPublicKeyPem: keys.gatewayPublicKeyPem,
    }),
    addApp(appId: string, appPublicKeyPem: string) {
      if (!/^\d{16}$/.test(appId)) throw new Error(`an Alipay app id is 16 digits, not "${appId}"`);
      appKeys.set(appId, createPublicKey(appPublicKeyPem));
      keys.apps[appId] = appPublicKeyPem;
      saveApps(opts.dataDir, keys.apps);
    },
    trades() {
      const now = Date.now();
      for (const t of ledger.live()) settle(t, now);
      return ledger.all();
    },
    setCancelRetries(n: number) {
      cancelRetries = n;
    },
  };
}
