/**
 * A local WeChat Pay gateway (`payconnect gateway wechat`): a real HTTPS server with its own CA that answers
 * WeChat Pay's code-payment (付款码) API as the real one does (research note §2 and §5), for one merchant
 * account, on v2 and v3 paths over one ledger.
 *
 * v2 (XML): POST /pay/micropay, /pay/orderquery, /pay/refundquery, /pay/downloadbill, and behind mutual TLS
 * (the merchant's API certificate, CN = mch id) /secapi/pay/reverse and /secapi/pay/refund. Each request is
 * checked in WeChat Pay's order: POST (REQUIRE_POST_METHOD), UTF-8 (NOT_UTF8), XML (XML_FORMAT_ERROR), the
 * fields (LACK_PARAMS), the merchant (MCHID_NOT_EXIST), the signature (SIGNERROR) — those answer
 * return_code=FAIL, unsigned — then the app id (APPID_NOT_EXIST, signed) and the business rules. Replies are
 * signed with the API key in the request's sign_type.
 * v3 (JSON): POST /v3/pay/transactions/codepay, GET /v3/pay/transactions/out-trade-no/{no}, POST …/reverse,
 * POST /v3/refund/domestic/refunds, GET /v3/refund/domestic/refunds/{no}, GET /v3/bill/tradebill and its
 * download. The Authorization header is verified with the merchant certificate (HTTP 401 SIGN_ERROR for a
 * wrong byte, a wrong serial or a timestamp 5 min off); every reply is signed with the platform key (or with
 * the WeChat Pay public key's private half when the request said `Wechatpay-Serial: PUB_KEY_ID_…`) and
 * carries Wechatpay-Timestamp/-Nonce/-Serial/-Signature.
 *
 * Payment rules: a code is 18 digits starting 10–15 (AUTH_CODE_INVALID) and works once (AUTHCODEEXPIRE);
 * an out_trade_no already paid answers ORDERPAID, one used with another amount OUT_TRADE_NO_USED; a customer
 * asked for the password answers USERPAYING (result_code FAIL); over 1000 yuan always asks for it; a trade
 * still waiting 45 s after creation is revoked; reverse answers recall=Y while the customer is still paying
 * (and closes the trade), result_code SUCCESS once reversed. The scenarios of ../scenarios.ts select the rest
 * by amount or the `payconnect-scenario` header; every delay is divided by `speed`.
 *
 * Conventions of this gateway where WeChat Pay's documents say nothing definite (see docs/providers/wechat.md):
 * a REVOKED trade that had been paid keeps its time_end / success_time in queries; v3 USERPAYING is
 * `200 {"trade_state":"USERPAYING"}`; bills are served for any day, today included.
 *
 * Test-only options: `forged` signs every reply with a wrong key; `unsignedV3` leaves v3 replies unsigned.
 */
import { X509Certificate, createHash, createPrivateKey, randomBytes, KeyObject } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import * as https from 'node:https';
import { AddressInfo, Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { GATEWAY_CONFIRM_MS, SCENARIO_HEADER, scenarioFor } from '../scenarios';
import { buildXml, decodeUtf8, parseXml } from '../../providers/wechat/xml';
import {
  V2SignType,
  nonce,
  parseAuthorization,
  sha256WithRsa,
  signV2,
  v3RequestMessage,
  v3ResponseMessage,
  verifySha256WithRsa,
  verifyV2,
} from '../../providers/wechat/sign';
import { BillLine, formatBill } from '../../providers/wechat/bill';
import { chinaDate, isoChina, v2Time } from '../../providers/wechat/time';
import { WechatGatewayMaterial, generateMaterial, loadOrCreateMaterial } from './certs';
import { GatewayTrade, WechatLedger } from './ledger';

/** JSON from the wire: every field is checked where it is read. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type WireJson = Record<string, any>;

export interface WechatGatewayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) = any free port. */
  port?: number;
  /** Keys, certificates and the ledger live here and survive a restart; without it all is in memory. */
  dataDir?: string;
  /** Divides every delay (confirmation, auto-revoke). Default 1. */
  speed?: number;
  /** How long a waiting customer takes to confirm, at speed 1. Default GATEWAY_CONFIRM_MS (8 s). */
  confirmMs?: number;
  /** Tests: sign every reply with a wrong key. */
  forged?: boolean;
  /** Tests: leave v3 replies unsigned. */
  unsignedV3?: boolean;
  /** Tests: reuse key material (making it takes a second or two). */
  material?: WechatGatewayMaterial;
  /** Tests: the gateway's clock. */
  now?: () => number;
}

export interface WechatGatewayMerchant {
  appId: string;
  mchId: string;
  merchantCertPem: string;
  merchantKeyPem: string;
  merchantCertSerial: string;
  apiKey: string;
  apiV3Key: string;
  platformCertPem: string;
  publicKeyPem: string;
  publicKeyId: string;
}

export interface WechatGateway {
  /** https://127.0.0.1:<port> */
  url: string;
  port: number;
  caPem: string;
  merchant(): WechatGatewayMerchant;
  trades(): GatewayTrade[];
  /** Tests: switch the forged / unsigned modes while running. */
  testMode: { forged: boolean; unsignedV3: boolean };
  close(): Promise<void>;
}

/** WeChat Pay auto-revokes a code payment still unpaid this long after creation (research note §2.4). */
export const AUTO_REVOKE_MS = 45_000;
/** Reverse works within 7 days (research note §2.4). */
const REVERSE_WINDOW_MS = 7 * 24 * 3600_000;
/** Over 1000 yuan the customer must always enter the password (research note §2.1). */
const PASSWORD_OVER_FEN = 100_000;

type PayResult =
  | { kind: 'paid'; trade: GatewayTrade }
  | { kind: 'paying'; trade: GatewayTrade }
  | { kind: 'error'; code: string; desc: string }
  | { kind: 'hold' };

const ERR_DESC: Record<string, string> = {
  SYSTEMERROR: '系统超时，请查询订单',
  BANKERROR: '银行系统异常，请查询订单',
  USERPAYING: '需要用户输入支付密码',
  NOTENOUGH: '余额不足',
  AUTHCODEEXPIRE: '二维码已过期，请用户在微信上刷新后再试',
  AUTH_CODE_INVALID: '请扫描微信支付授权码(以10/11/12/13/14/15为前缀的18位数字)',
  ORDERPAID: '该订单已支付',
  OUT_TRADE_NO_USED: '商户订单号重复',
  ORDERCLOSED: '该订单已关闭',
  ORDERREVERSED: '该订单已撤销',
  PARAM_ERROR: '参数错误',
  APPID_NOT_EXIST: 'appid不存在',
  ORDERNOTEXIST: '此交易订单号不存在',
  REFUNDNOTEXIST: '退款订单查询失败',
  REVERSE_EXPIRE: '订单已超过可撤销时间',
  TRADE_STATE_ERROR: '订单状态错误',
  INVALID_REQUEST: '累计退款金额大于支付金额',
};

/** v2 err_code → v3 code and HTTP status. */
const V3_ERR: Record<string, [number, string]> = {
  SYSTEMERROR: [500, 'SYSTEM_ERROR'],
  BANKERROR: [500, 'BANK_ERROR'],
  NOTENOUGH: [403, 'NOT_ENOUGH'],
  AUTHCODEEXPIRE: [403, 'AUTH_CODE_EXPIRE'],
  AUTH_CODE_INVALID: [400, 'AUTH_CODE_INVALID'],
  ORDERPAID: [403, 'ORDER_PAID'],
  OUT_TRADE_NO_USED: [403, 'OUT_TRADE_NO_USED'],
  ORDERCLOSED: [403, 'ORDER_CLOSED'],
  ORDERREVERSED: [403, 'ORDER_REVERSED'],
  PARAM_ERROR: [400, 'PARAM_ERROR'],
  APPID_NOT_EXIST: [400, 'APPID_MCHID_NOT_MATCH'],
  ORDERNOTEXIST: [404, 'ORDER_NOT_EXIST'],
  REFUNDNOTEXIST: [404, 'RESOURCE_NOT_EXISTS'],
  TRADE_STATE_ERROR: [403, 'TRADE_ERROR'],
  INVALID_REQUEST: [400, 'INVALID_REQUEST'],
};

class V2Fail extends Error {
  constructor(readonly returnMsg: string) {
    super(returnMsg);
  }
}

export async function startWechatGateway(opts: WechatGatewayOptions = {}): Promise<WechatGateway> {
  const material =
    opts.material ?? (opts.dataDir ? await loadOrCreateMaterial(opts.dataDir) : await generateMaterial());
  const speed = opts.speed && opts.speed > 0 ? opts.speed : 1;
  const confirmMs = (opts.confirmMs ?? GATEWAY_CONFIRM_MS) / speed;
  const revokeMs = AUTO_REVOKE_MS / speed;
  const now = opts.now ?? Date.now;
  const ledger = new WechatLedger(opts.dataDir ? join(opts.dataDir, 'ledger.jsonl') : undefined);
  const testMode = { forged: opts.forged ?? false, unsignedV3: opts.unsignedV3 ?? false };
  const merchantCert = new X509Certificate(material.merchantCertPem);
  const platformKey = createPrivateKey(material.platformKeyPem);
  const pubKeyPrivate = createPrivateKey(material.publicKeyPrivatePem);
  const forgedRsa = createPrivateKey(material.caKeyPem);
  const forgedApiKey = randomBytes(16).toString('hex');
  const billTokens = new Map<string, string>();
  const held = new Set<ServerResponse>();
  let txSeq = Number(String(now()).slice(-6));

  const newTransactionId = (): string =>
    `4200${v2Time(now()).slice(0, 8)}${String(++txSeq % 1e10).padStart(10, '0')}`.slice(0, 28);
  const newRefundId = (): string =>
    `5030${v2Time(now()).slice(0, 8)}${String(++txSeq % 1e10).padStart(10, '0')}`;

  /** Brings a trade's time-driven state up to date (confirmation, auto-revoke) and stores any change. */
  function settle(t: GatewayTrade): GatewayTrade {
    if (t.state !== 'USERPAYING') return t;
    const at = now();
    if (t.confirmAt !== undefined && at >= t.confirmAt && t.confirmAt < t.createdAt + revokeMs) {
      t.state = 'SUCCESS';
      t.paidAt = t.confirmAt;
      ledger.put(t);
    } else if (at >= t.createdAt + revokeMs) {
      t.state = 'REVOKED';
      t.revokedAt = t.createdAt + revokeMs;
      ledger.put(t);
    }
    return t;
  }

  function find(outTradeNo: string): GatewayTrade | undefined {
    const t = ledger.get(material.mchId, outTradeNo);
    return t && settle(t);
  }

  /** The one payment logic behind micropay and codepay. */
  function pay(
    api: 'v2' | 'v3',
    outTradeNo: string,
    amount: number,
    code: string,
    header: string | string[] | undefined,
  ): PayResult {
    if (!/^[A-Za-z0-9_\-|*@]{1,32}$/.test(outTradeNo) || !Number.isSafeInteger(amount) || amount <= 0) {
      return { kind: 'error', code: 'PARAM_ERROR', desc: '参数错误: out_trade_no 或 total_fee' };
    }
    const existing = find(outTradeNo);
    if (existing) {
      // A tombstone: this order number was reversed before any pay reached us.
      if (existing.amount === 0)
        return { kind: 'error', code: 'ORDERREVERSED', desc: ERR_DESC.ORDERREVERSED };
      if (existing.amount !== amount)
        return { kind: 'error', code: 'OUT_TRADE_NO_USED', desc: ERR_DESC.OUT_TRADE_NO_USED };
      switch (existing.state) {
        case 'SUCCESS':
        case 'REFUND':
          return { kind: 'error', code: 'ORDERPAID', desc: ERR_DESC.ORDERPAID };
        case 'USERPAYING':
          return { kind: 'paying', trade: existing };
        case 'REVOKED':
          return { kind: 'error', code: 'ORDERREVERSED', desc: ERR_DESC.ORDERREVERSED };
        case 'CLOSED':
          return { kind: 'error', code: 'ORDERCLOSED', desc: ERR_DESC.ORDERCLOSED };
        case 'PAYERROR':
          return {
            kind: 'error',
            code: existing.errCode ?? 'ORDERCLOSED',
            desc: ERR_DESC[existing.errCode ?? 'ORDERCLOSED'] ?? '',
          };
      }
    }
    const scenario = scenarioFor(amount, header);
    if (scenario === 'duplicate_order_no')
      return { kind: 'error', code: 'OUT_TRADE_NO_USED', desc: ERR_DESC.OUT_TRADE_NO_USED };
    if (!/^1[0-5]\d{16}$/.test(code))
      return { kind: 'error', code: 'AUTH_CODE_INVALID', desc: ERR_DESC.AUTH_CODE_INVALID };
    const digest = createHash('sha256').update(code).digest('hex');
    if (ledger.codeSeen(digest))
      return { kind: 'error', code: 'AUTHCODEEXPIRE', desc: ERR_DESC.AUTHCODEEXPIRE };
    if (scenario === 'system_error_not_created')
      return { kind: 'error', code: 'SYSTEMERROR', desc: ERR_DESC.SYSTEMERROR };
    ledger.useCode(digest);
    if (scenario === 'code_invalid')
      return { kind: 'error', code: 'AUTHCODEEXPIRE', desc: ERR_DESC.AUTHCODEEXPIRE };
    const at = now();
    const t: GatewayTrade = {
      mchId: material.mchId,
      appId: material.appId,
      outTradeNo,
      transactionId: newTransactionId(),
      amount,
      state: 'SUCCESS',
      api,
      scenario,
      createdAt: at,
      refunds: [],
    };
    switch (scenario) {
      case 'insufficient_funds':
        t.state = 'PAYERROR';
        t.errCode = 'NOTENOUGH';
        ledger.put(t);
        return { kind: 'error', code: 'NOTENOUGH', desc: ERR_DESC.NOTENOUGH };
      case 'system_error_then_success':
        t.paidAt = at;
        ledger.put(t);
        return { kind: 'error', code: 'SYSTEMERROR', desc: ERR_DESC.SYSTEMERROR };
      case 'no_answer_then_success':
        t.paidAt = at;
        ledger.put(t);
        return { kind: 'hold' };
      case 'wait_then_success':
        t.state = 'USERPAYING';
        t.confirmAt = at + confirmMs;
        break;
      case 'wait_then_timeout':
        t.state = 'USERPAYING';
        break;
      case 'cancel_race':
        t.state = 'USERPAYING';
        t.confirmOnReverse = true;
        break;
      default:
        if (amount > PASSWORD_OVER_FEN) {
          t.state = 'USERPAYING';
          t.confirmAt = at + confirmMs;
        } else t.paidAt = at;
    }
    ledger.put(t);
    return t.state === 'SUCCESS' ? { kind: 'paid', trade: t } : { kind: 'paying', trade: t };
  }

  type ReverseResult = { ok: true } | { ok: false; recall: boolean; code: string; desc: string };

  function reverse(outTradeNo: string): ReverseResult {
    const t = find(outTradeNo);
    const at = now();
    if (!t) {
      // A tombstone: a pay that arrives after its reverse must not succeed.
      ledger.put({
        mchId: material.mchId,
        appId: material.appId,
        outTradeNo,
        transactionId: '',
        amount: 0,
        state: 'REVOKED',
        api: 'v2',
        createdAt: at,
        revokedAt: at,
        refunds: [],
      });
      return { ok: true };
    }
    if (at - t.createdAt > REVERSE_WINDOW_MS)
      return { ok: false, recall: false, code: 'REVERSE_EXPIRE', desc: ERR_DESC.REVERSE_EXPIRE };
    switch (t.state) {
      case 'REVOKED':
      case 'CLOSED':
        return { ok: true };
      case 'PAYERROR':
        t.state = 'CLOSED';
        t.revokedAt = at;
        ledger.put(t);
        return { ok: true };
      case 'REFUND':
        return { ok: false, recall: false, code: 'TRADE_STATE_ERROR', desc: '订单已发生退款，不能撤销' };
      case 'SUCCESS':
        t.state = 'REVOKED';
        t.revokedAt = at;
        ledger.put(t);
        return { ok: true };
      case 'USERPAYING':
        if (t.confirmOnReverse) {
          // The customer confirms exactly now: the trade is paid, and the reverse returns the money.
          t.paidAt = at;
          t.state = 'REVOKED';
          t.revokedAt = at;
          ledger.put(t);
          return { ok: true };
        }
        // "正在支付中不能发起撤销": the gateway answers recall=Y and closes the trade, so the next call reverses it.
        t.state = 'REVOKED';
        t.revokedAt = at;
        t.reverseAsked = true;
        ledger.put(t);
        return { ok: false, recall: true, code: 'USERPAYING', desc: '用户正在支付中，请稍后重新发起撤销' };
    }
  }

  type RefundOutcome =
    | { ok: true; trade: GatewayTrade; refundId: string; at: number }
    | { ok: false; code: string; desc: string };

  function refund(outTradeNo: string, outRefundNo: string, total: number, amount: number): RefundOutcome {
    if (!/^[A-Za-z0-9_\-|*@]{1,64}$/.test(outRefundNo) || !Number.isSafeInteger(amount) || amount <= 0) {
      return { ok: false, code: 'PARAM_ERROR', desc: '参数错误: out_refund_no 或 refund_fee' };
    }
    const prior = ledger.byRefundNo(material.mchId, outRefundNo);
    if (prior) {
      if (prior.trade.outTradeNo !== outTradeNo || prior.refund.amount !== amount) {
        return { ok: false, code: 'PARAM_ERROR', desc: '退款单号已用于其他退款' };
      }
      return { ok: true, trade: prior.trade, refundId: prior.refund.refundId, at: prior.refund.at };
    }
    const t = find(outTradeNo);
    if (!t || t.amount === 0) return { ok: false, code: 'ORDERNOTEXIST', desc: ERR_DESC.ORDERNOTEXIST };
    if (t.state !== 'SUCCESS' && t.state !== 'REFUND')
      return { ok: false, code: 'TRADE_STATE_ERROR', desc: ERR_DESC.TRADE_STATE_ERROR };
    if (total !== t.amount) return { ok: false, code: 'PARAM_ERROR', desc: '订单金额与原订单不一致' };
    const done = t.refunds.reduce((s, r) => s + r.amount, 0);
    if (done + amount > t.amount)
      return { ok: false, code: 'INVALID_REQUEST', desc: ERR_DESC.INVALID_REQUEST };
    const r = { outRefundNo, refundId: newRefundId(), amount, at: now() };
    t.refunds.push(r);
    t.state = 'REFUND';
    ledger.put(t);
    return { ok: true, trade: t, refundId: r.refundId, at: r.at };
  }

  function billLines(date: string): BillLine[] {
    const lines: Array<BillLine & { ms: number }> = [];
    for (const t of ledger.all().map(settle)) {
      const fmt = (ms: number): string => isoChina(ms).slice(0, 19).replace('T', ' ');
      const base = {
        appId: t.appId,
        mchId: t.mchId,
        transactionId: t.transactionId,
        outTradeNo: t.outTradeNo,
        amountFen: t.amount,
      };
      if (t.paidAt !== undefined && chinaDate(t.paidAt) === date)
        lines.push({ ...base, at: fmt(t.paidAt), state: 'SUCCESS', ms: t.paidAt });
      if (
        t.paidAt !== undefined &&
        t.state === 'REVOKED' &&
        t.revokedAt !== undefined &&
        chinaDate(t.revokedAt) === date
      ) {
        lines.push({
          ...base,
          at: fmt(t.revokedAt),
          state: 'REVOKED',
          refundFen: t.amount,
          refundId: t.transactionId,
          ms: t.revokedAt,
        });
      }
      for (const r of t.refunds) {
        if (chinaDate(r.at) === date) {
          lines.push({
            ...base,
            at: fmt(r.at),
            state: 'REFUND',
            refundFen: r.amount,
            refundId: r.refundId,
            outRefundNo: r.outRefundNo,
            ms: r.at,
          });
        }
      }
    }
    return lines.sort((a, b) => a.ms - b.ms).map(({ ms: _ms, ...l }) => l);
  }

  // ---- v2 -------------------------------------------------------------------------------------------

  function v2Reply(
    res: ServerResponse,
    fields: Record<string, string | undefined>,
    signType: V2SignType,
  ): void {
    const out: Record<string, string | undefined> = {
      return_code: 'SUCCESS',
      return_msg: 'OK',
      appid: material.appId,
      mch_id: material.mchId,
      nonce_str: nonce(16),
      ...fields,
    };
    out.sign = signV2(out, testMode.forged ? forgedApiKey : material.apiKey, signType);
    send(res, 200, 'text/xml', buildXml(out));
  }

  function v2Fail(res: ServerResponse, msg: string): void {
    send(res, 200, 'text/xml', buildXml({ return_code: 'FAIL', return_msg: msg }));
  }

  const V2_REQUIRED: Record<string, string[]> = {
    '/pay/micropay': ['body', 'out_trade_no', 'total_fee', 'spbill_create_ip', 'auth_code'],
    '/pay/orderquery': [],
    '/secapi/pay/reverse': [],
    '/secapi/pay/refund': ['out_refund_no', 'total_fee', 'refund_fee'],
    '/pay/refundquery': [],
    '/pay/downloadbill': ['bill_date'],
  };

  function v2Fields(
    path: string,
    req: IncomingMessage,
    body: Buffer,
  ): { f: Record<string, string>; signType: V2SignType } {
    if (req.method !== 'POST') throw new V2Fail('请使用post方法');
    let text: string;
    try {
      text = decodeUtf8(body);
    } catch {
      throw new V2Fail('编码格式错误');
    }
    let f: Record<string, string>;
    try {
      f = parseXml(text);
    } catch {
      throw new V2Fail('XML格式错误');
    }
    for (const k of ['appid', 'mch_id', 'nonce_str', 'sign', ...V2_REQUIRED[path]])
      if (!f[k]) throw new V2Fail(`缺少参数${k}`);
    if (
      ['/pay/orderquery', '/secapi/pay/reverse', '/secapi/pay/refund'].includes(path) &&
      !f.out_trade_no &&
      !f.transaction_id
    ) {
      throw new V2Fail('缺少参数out_trade_no');
    }
    if (path === '/pay/refundquery' && !f.out_refund_no) throw new V2Fail('缺少参数out_refund_no');
    if (f.mch_id !== material.mchId) throw new V2Fail('商户号mch_id不存在');
    const signType = (f.sign_type ?? 'MD5') as V2SignType;
    if (signType !== 'MD5' && signType !== 'HMAC-SHA256') throw new V2Fail('签名类型错误');
    if (!verifyV2(f, material.apiKey, signType)) throw new V2Fail('签名错误');
    return { f, signType };
  }

  function tradeFields(t: GatewayTrade): Record<string, string | undefined> {
    const paid = t.paidAt !== undefined;
    return {
      out_trade_no: t.outTradeNo,
      transaction_id: t.transactionId || undefined,
      total_fee: String(t.amount),
      fee_type: 'CNY',
      trade_type: 'MICROPAY',
      openid: paid ? 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' : undefined,
      is_subscribe: paid ? 'N' : undefined,
      bank_type: paid ? 'OTHERS' : undefined,
      cash_fee: paid ? String(t.amount) : undefined,
      cash_fee_type: paid ? 'CNY' : undefined,
      time_end: paid ? v2Time(t.paidAt!) : undefined,
    };
  }

  function handleV2(path: string, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    let parsed;
    try {
      parsed = v2Fields(path, req, body);
    } catch (e) {
      if (e instanceof V2Fail) return v2Fail(res, e.returnMsg);
      throw e;
    }
    const { f, signType } = parsed;
    const err = (code: string, desc = ERR_DESC[code] ?? code, extra: Record<string, string> = {}): void =>
      v2Reply(res, { result_code: 'FAIL', err_code: code, err_code_des: desc, ...extra }, signType);
    if (f.appid !== material.appId) return err('APPID_NOT_EXIST');
    const byTx = (): GatewayTrade | undefined => {
      if (f.out_trade_no) return find(f.out_trade_no);
      return ledger.all().find((t) => t.transactionId === f.transaction_id);
    };
    switch (path) {
      case '/pay/micropay': {
        if (!/^[1-9]\d{0,9}$/.test(f.total_fee)) return err('PARAM_ERROR', 'total_fee 必须为正整数(分)');
        if (f.fee_type && f.fee_type !== 'CNY') return err('PARAM_ERROR', '币种不支持');
        const r = pay('v2', f.out_trade_no, Number(f.total_fee), f.auth_code, req.headers[SCENARIO_HEADER]);
        if (r.kind === 'hold') return hold(res);
        if (r.kind === 'error') return err(r.code, r.desc);
        if (r.kind === 'paying') return err('USERPAYING');
        return v2Reply(
          res,
          { result_code: 'SUCCESS', device_info: f.device_info, ...tradeFields(r.trade) },
          signType,
        );
      }
      case '/pay/orderquery': {
        const t = byTx();
        if (!t || t.amount === 0) return err('ORDERNOTEXIST');
        const desc: Record<string, string> = {
          SUCCESS: '支付成功',
          REFUND: '转入退款',
          USERPAYING: '用户支付中',
          PAYERROR: ERR_DESC[t.errCode ?? ''] ?? '支付失败',
          REVOKED: '已撤销',
          CLOSED: '已关闭',
        };
        return v2Reply(
          res,
          {
            result_code: 'SUCCESS',
            trade_state: t.state,
            trade_state_desc: desc[t.state],
            ...tradeFields(t),
          },
          signType,
        );
      }
      case '/secapi/pay/reverse': {
        const no = f.out_trade_no || byTx()?.outTradeNo;
        if (!no) return err('ORDERNOTEXIST', ERR_DESC.ORDERNOTEXIST, { recall: 'N' });
        const r = reverse(no);
        if (r.ok) return v2Reply(res, { result_code: 'SUCCESS', recall: 'N' }, signType);
        return err(r.code, r.desc, { recall: r.recall ? 'Y' : 'N' });
      }
      case '/secapi/pay/refund': {
        const no = f.out_trade_no || byTx()?.outTradeNo || '';
        if (!/^\d+$/.test(f.total_fee) || !/^\d+$/.test(f.refund_fee)) return err('PARAM_ERROR');
        if (f.refund_fee_type && f.refund_fee_type !== 'CNY') return err('PARAM_ERROR', '币种不支持');
        const r = refund(no, f.out_refund_no, Number(f.total_fee), Number(f.refund_fee));
        if (!r.ok) return err(r.code, r.desc);
        const amount = r.trade.refunds.find((x) => x.outRefundNo === f.out_refund_no)!.amount;
        return v2Reply(
          res,
          {
            result_code: 'SUCCESS',
            transaction_id: r.trade.transactionId,
            out_trade_no: r.trade.outTradeNo,
            out_refund_no: f.out_refund_no,
            refund_id: r.refundId,
            refund_fee: String(amount),
            total_fee: String(r.trade.amount),
            cash_fee: String(r.trade.amount),
            refund_channel: 'ORIGINAL',
          },
          signType,
        );
      }
      case '/pay/refundquery': {
        const hit = ledger.byRefundNo(material.mchId, f.out_refund_no);
        if (!hit) return err('REFUNDNOTEXIST');
        const when = isoChina(hit.refund.at).slice(0, 19).replace('T', ' ');
        return v2Reply(
          res,
          {
            result_code: 'SUCCESS',
            transaction_id: hit.trade.transactionId,
            out_trade_no: hit.trade.outTradeNo,
            total_fee: String(hit.trade.amount),
            cash_fee: String(hit.trade.amount),
            refund_count: '1',
            out_refund_no_0: hit.refund.outRefundNo,
            refund_id_0: hit.refund.refundId,
            refund_fee_0: String(hit.refund.amount),
            refund_status_0: 'SUCCESS',
            refund_success_time_0: when,
            refund_channel_0: 'ORIGINAL',
          },
          signType,
        );
      }
      case '/pay/downloadbill': {
        const m = /^(\d{4})(\d{2})(\d{2})$/.exec(f.bill_date);
        if (!m) return v2Fail(res, 'invalid bill_date');
        if (f.bill_type && f.bill_type !== 'ALL') return v2Fail(res, 'invalid bill_type');
        const lines = billLines(`${m[1]}-${m[2]}-${m[3]}`);
        if (lines.length === 0) return v2Fail(res, 'No Bill Exist');
        return send(res, 200, 'text/plain;charset=utf-8', formatBill(lines));
      }
    }
  }

  // ---- v3 -------------------------------------------------------------------------------------------

  function v3Send(req: IncomingMessage, res: ServerResponse, status: number, json: unknown): void {
    const body = json === undefined ? '' : JSON.stringify(json);
    const headers: Record<string, string> = { 'Request-ID': randomBytes(16).toString('hex') };
    if (!testMode.unsignedV3) {
      const ts = String(Math.floor(now() / 1000));
      const n = nonce(32);
      const usePub = String(req.headers['wechatpay-serial'] ?? '').startsWith('PUB_KEY_ID_');
      const key: KeyObject = testMode.forged ? forgedRsa : usePub ? pubKeyPrivate : platformKey;
      headers['Wechatpay-Timestamp'] = ts;
      headers['Wechatpay-Nonce'] = n;
      headers['Wechatpay-Serial'] = usePub ? material.publicKeyId : material.platformSerial;
      headers['Wechatpay-Signature'] = sha256WithRsa(v3ResponseMessage(ts, n, body), key);
      headers['Wechatpay-Signature-Type'] = 'WECHATPAY2-SHA256-RSA2048';
    }
    send(res, status, 'application/json', body, headers);
  }

  function v3Err(req: IncomingMessage, res: ServerResponse, v2code: string, desc?: string): void {
    const [status, code] = V3_ERR[v2code] ?? [400, v2code];
    v3Send(req, res, status, { code, message: desc ?? ERR_DESC[v2code] ?? code });
  }

  function v3Trade(t: GatewayTrade): Record<string, unknown> {
    const paid = t.paidAt !== undefined;
    return {
      appid: t.appId,
      mchid: t.mchId,
      out_trade_no: t.outTradeNo,
      transaction_id: t.transactionId || undefined,
      trade_type: 'MICROPAY',
      trade_state: t.state,
      trade_state_desc: t.state === 'SUCCESS' ? '支付成功' : t.state,
      bank_type: paid ? 'OTHERS' : undefined,
      success_time: paid ? isoChina(t.paidAt!) : undefined,
      payer: paid ? { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' } : undefined,
      amount: {
        total: t.amount,
        payer_total: paid ? t.amount : undefined,
        currency: 'CNY',
        payer_currency: 'CNY',
      },
    };
  }

  function v3Refund(
    t: GatewayTrade,
    r: { outRefundNo: string; refundId: string; amount: number; at: number },
  ): Record<string, unknown> {
    return {
      refund_id: r.refundId,
      out_refund_no: r.outRefundNo,
      transaction_id: t.transactionId,
      out_trade_no: t.outTradeNo,
      channel: 'ORIGINAL',
      user_received_account: '支付用户零钱',
      success_time: isoChina(r.at),
      create_time: isoChina(r.at),
      status: 'SUCCESS',
      funds_account: 'AVAILABLE',
      amount: {
        total: t.amount,
        refund: r.amount,
        payer_total: t.amount,
        payer_refund: r.amount,
        settlement_refund: r.amount,
        settlement_total: t.amount,
        discount_refund: 0,
        currency: 'CNY',
      },
    };
  }

  function handleV3(url: URL, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const auth = parseAuthorization(req.headers.authorization);
    if (!auth) return v3Send(req, res, 401, { code: 'SIGN_ERROR', message: 'Authorization 缺失或格式错误' });
    if (auth.mchid !== material.mchId)
      return v3Send(req, res, 400, { code: 'MCHID_NOT_EXIST', message: '商户号不存在' });
    if (auth.serial_no.toUpperCase() !== material.merchantCertSerial.toUpperCase()) {
      return v3Send(req, res, 401, { code: 'SIGN_ERROR', message: '商户证书序列号有误' });
    }
    const ts = Number(auth.timestamp);
    if (!/^\d{1,12}$/.test(auth.timestamp) || Math.abs(now() / 1000 - ts) >= 300) {
      return v3Send(req, res, 401, {
        code: 'SIGN_ERROR',
        message: '请求的时间戳与当前时间相差过大(timestamp expired)',
      });
    }
    let text: string;
    try {
      text = decodeUtf8(body);
    } catch {
      return v3Send(req, res, 400, { code: 'PARAM_ERROR', message: '请求体不是UTF-8' });
    }
    const msg = v3RequestMessage(
      req.method ?? '',
      url.pathname + url.search,
      auth.timestamp,
      auth.nonce_str,
      text,
    );
    if (!verifySha256WithRsa(msg, auth.signature, merchantCert.publicKey)) {
      return v3Send(req, res, 401, { code: 'SIGN_ERROR', message: '签名错误' });
    }
    let json: WireJson = {};
    if (req.method === 'POST') {
      try {
        json = JSON.parse(text) as WireJson;
        if (typeof json !== 'object' || json === null || Array.isArray(json))
          throw new Error('not an object');
      } catch {
        return v3Send(req, res, 400, { code: 'PARAM_ERROR', message: '请求体不是JSON对象' });
      }
    }
    const path = url.pathname;
    let m: RegExpExecArray | null;
    if (req.method === 'POST' && path === '/v3/pay/transactions/codepay') {
      const total = json.amount?.total;
      if (
        !json.appid ||
        !json.mchid ||
        !json.description ||
        !json.out_trade_no ||
        !json.payer?.auth_code ||
        typeof total !== 'number' ||
        !json.scene_info?.device_ip
      ) {
        return v3Send(req, res, 400, { code: 'PARAM_ERROR', message: '缺少参数' });
      }
      if (json.mchid !== material.mchId)
        return v3Send(req, res, 400, { code: 'MCHID_NOT_EXIST', message: '商户号不存在' });
      if (json.appid !== material.appId) return v3Err(req, res, 'APPID_NOT_EXIST');
      if (json.amount.currency && json.amount.currency !== 'CNY')
        return v3Send(req, res, 400, { code: 'PARAM_ERROR', message: '币种不支持' });
      const r = pay(
        'v3',
        String(json.out_trade_no),
        total,
        String(json.payer.auth_code),
        req.headers[SCENARIO_HEADER],
      );
      if (r.kind === 'hold') return hold(res);
      if (r.kind === 'error') return v3Err(req, res, r.code, r.desc);
      if (r.kind === 'paying') return v3Send(req, res, 200, { trade_state: 'USERPAYING' });
      return v3Send(req, res, 200, v3Trade(r.trade));
    }
    if (req.method === 'GET' && (m = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)$/.exec(path))) {
      if (url.searchParams.get('mchid') !== material.mchId)
        return v3Send(req, res, 400, { code: 'PARAM_ERROR', message: 'mchid 有误' });
      const t = find(decodeURIComponent(m[1]));
      if (!t || t.amount === 0) return v3Err(req, res, 'ORDERNOTEXIST');
      return v3Send(req, res, 200, v3Trade(t));
    }
    if (
      req.method === 'POST' &&
      (m = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)\/reverse$/.exec(path))
    ) {
      if (json.mchid !== material.mchId || json.appid !== material.appId)
        return v3Send(req, res, 400, { code: 'PARAM_ERROR', message: 'appid 或 mchid 有误' });
      const no = decodeURIComponent(m[1]);
      const r = reverse(no);
      if (r.ok)
        return v3Send(req, res, 200, {
          appid: material.appId,
          mchid: material.mchId,
          out_trade_no: no,
          transaction_id: find(no)?.transactionId || undefined,
        });
      // v3 has no recall field: "call again" is a 5xx SYSTEM_ERROR, as for any unclear answer.
      if (r.recall) return v3Send(req, res, 500, { code: 'SYSTEM_ERROR', message: r.desc });
      return v3Err(req, res, r.code, r.desc);
    }
    if (req.method === 'POST' && path === '/v3/refund/domestic/refunds') {
      const a = json.amount ?? {};
      if (
        !json.out_trade_no ||
        !json.out_refund_no ||
        typeof a.refund !== 'number' ||
        typeof a.total !== 'number' ||
        a.currency !== 'CNY'
      ) {
        return v3Send(req, res, 400, { code: 'PARAM_ERROR', message: '缺少参数' });
      }
      const r = refund(String(json.out_trade_no), String(json.out_refund_no), a.total, a.refund);
      if (!r.ok)
        return r.code === 'ORDERNOTEXIST'
          ? v3Send(req, res, 404, { code: 'RESOURCE_NOT_EXISTS', message: ERR_DESC.ORDERNOTEXIST })
          : v3Err(req, res, r.code, r.desc);
      return v3Send(
        req,
        res,
        200,
        v3Refund(
          r.trade,
          r.trade.refunds.find((x) => x.outRefundNo === json.out_refund_no)!,
        ),
      );
    }
    if (req.method === 'GET' && (m = /^\/v3\/refund\/domestic\/refunds\/([^/]+)$/.exec(path))) {
      const hit = ledger.byRefundNo(material.mchId, decodeURIComponent(m[1]));
      if (!hit) return v3Send(req, res, 404, { code: 'RESOURCE_NOT_EXISTS', message: '退款单不存在' });
      return v3Send(req, res, 200, v3Refund(hit.trade, hit.refund));
    }
    if (req.method === 'GET' && path === '/v3/bill/tradebill') {
      const date = url.searchParams.get('bill_date') ?? '';
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date))
        return v3Send(req, res, 400, { code: 'PARAM_ERROR', message: 'bill_date 格式错误' });
      const lines = billLines(date);
      if (lines.length === 0)
        return v3Send(req, res, 400, { code: 'NO_STATEMENT_EXIST', message: '账单文件不存在' });
      const text = formatBill(lines, true);
      const token = randomBytes(12).toString('hex');
      billTokens.set(token, text);
      return v3Send(req, res, 200, {
        hash_type: 'SHA1',
        hash_value: createHash('sha1').update(text).digest('hex'),
        download_url: `${baseUrl}/v3/billdownload/file?token=${token}`,
      });
    }
    if (req.method === 'GET' && path === '/v3/billdownload/file') {
      const text = billTokens.get(url.searchParams.get('token') ?? '');
      if (text === undefined)
        return v3Send(req, res, 404, { code: 'RESOURCE_NOT_EXISTS', message: '账单不存在' });
      // The bill file itself is not signed: the client checks it against the hash of the signed answer above.
      return send(res, 200, 'application/octet-stream', text);
    }
    return v3Send(req, res, 404, { code: 'NOT_FOUND', message: '接口不存在' });
  }

  // ---- server ---------------------------------------------------------------------------------------

  function send(
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    headers: Record<string, string> = {},
  ): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  function hold(res: ServerResponse): void {
    held.add(res);
    res.on('close', () => held.delete(res));
  }

  const server = https.createServer(
    {
      key: material.serverKeyPem,
      cert: material.serverCertPem,
      ca: material.caPem,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 1024 * 1024) req.destroy();
        else chunks.push(c);
      });
      req.on('end', () => {
        try {
          const url = new URL(req.url ?? '/', baseUrl);
          const body = Buffer.concat(chunks);
          if (url.pathname.startsWith('/secapi/')) {
            // Mutual TLS: without the merchant's certificate (issued by our CA, CN = mch id) the connection is
            // dropped before any HTTP answer, as WeChat Pay's /secapi does.
            const sock = req.socket as TLSSocket;
            const peer = sock.authorized ? sock.getPeerCertificate() : undefined;
            if (!peer || peer.subject?.CN !== material.mchId) {
              sock.destroy();
              return;
            }
          }
          if (url.pathname.startsWith('/v3/')) return handleV3(url, req, body, res);
          if (url.pathname in V2_REQUIRED) return handleV2(url.pathname, req, body, res);
          send(res, 404, 'text/plain', 'not found');
        } catch {
          send(res, 500, 'text/plain', 'internal error');
        }
      });
    },
  );
  const sockets = new Set<Socket>();
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  const baseUrl = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url: baseUrl,
    port,
    caPem: material.caPem,
    testMode,
    merchant: () => ({
      appId: material.appId,
      mchId: material.mchId,
      merchantCertPem: material.merchantCertPem,
      merchantKeyPem: material.merchantKeyPem,
      merchantCertSerial: material.merchantCertSerial,
      apiKey: material.apiKey,
      apiV3Key: material.apiV3Key,
      platformCertPem: material.platformCertPem,
      publicKeyPem: material.publicKeyPem,
      publicKeyId: material.publicKeyId,
    }),
    trades: () => ledger.all().map((t) => settle(t)),
    close: async () => {
      for (const r of held) r.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      ledger.close();
    },
  };
}
