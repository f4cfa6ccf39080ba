/**
 * Alipay face-to-face bar-code payment (当面付 条码支付, `alipay.trade.pay`, scene `bar_code`) on the v2
 * gateway, for one merchant app: the WalletProvider contract (wallet.ts, provider.ts) and its timing rules
 * (ALIPAY_POLICY). The facts are in ../shared/research/wallet-providers.md §1; the wire codecs in sign.ts,
 * form.ts and format.ts.
 *
 * Every call is one signed POST: system parameters in the URL query, `biz_content` in the form body, RSA2
 * over the sorted parameters (§1.1, §1.2). Every answer must carry a signature that verifies with Alipay's
 * public key over the raw response text (§1.3); an answer that does not — a forged or corrupted one, or an
 * unsigned one — is never believed: for a call that may move money it is an unknown outcome (the server
 * queries, and a query's answer is held to the same rule), so a forger can at most delay a payment, never
 * mark it paid. Answers must also name the out_trade_no we asked about (a signed answer about another trade
 * replayed to us is not believed either).
 *
 * How answers map (§1.5):
 * - 10000 → succeeded; 10003 → user_paying (the server queries);
 * - 20000, 40004 ACQ.SYSTEM_ERROR, a timeout, a broken connection, an unreadable or unverified answer →
 *   ProviderUnknownError (query, never charge again);
 * - 40004 with a sub_code that is definite about the buyer or the code → declined, with our code
 *   (DECLINES); ACQ.TRADE_HAS_SUCCESS → the trade is asked about and its real state reported; a sub_code we
 *   do not know → unknown (safe: the server queries and, at the deadline, cancels);
 * - 40001 / 40002 / 40006 (the request itself refused: signature, app id, timestamp, parameters, permission)
 *   → ProviderRejectedError with a message saying what to fix.
 *
 * Never in an error or a log line: a key, a signature, the payment code, a whole body, or Alipay's
 * `sub_msg` (for a signature error it quotes the signed string, payment code included).
 */
import { KeyObject, randomBytes } from 'node:crypto';
import {
  CancelResult,
  ChargeRequest,
  ChargeResult,
  ProviderRejectedError,
  ProviderUnknownError,
  QueryResult,
  RefundQueryResult,
  RefundResult,
  WalletProviderOptions,
} from '../provider';
import { BillRow, ProbeResult, WalletProvider } from '../wallet';
import { ALIPAY_POLICY } from './alipay.policy';
import { BillError, readBill } from './bill';
import { encodeForm } from './form';
import { ALIPAY_MAX_FEN, ALIPAY_MIN_FEN, chinaTimestamp, fenToYuan } from './format';
import { AlipayTransportError, httpRequest } from './http';
import {
  AlipayFormatError,
  extractAnswer,
  loadPrivateKey,
  loadPublicKey,
  signRequest,
  verifyAnswer,
} from './sign';
import { ZipError } from './zip';

/** One merchant app at Alipay, with its keys as loaded text (PEM, bare base64, or a certificate for Alipay's key). */
export interface AlipayAccount {
  appId: string;
  appPrivateKeyPem: string;
  alipayPublicKeyPem: string;
  /** `https://openapi.alipay.com/gateway.do`, the sandbox's, or a local gateway's. */
  gatewayUrl: string;
  /** A CA certificate to trust for the gateway's TLS (a local gateway); the system's CAs otherwise. */
  caPem?: string;
  /** Tests only: sent as the `payconnect-scenario` header, which the local gateway plays. */
  scenario?: string;
}

/** `timeoutMs` defaults to ALIPAY_POLICY.requestTimeoutMs. */
export interface AlipayProviderOptions extends WalletProviderOptions {
  /** The pause between cancel attempts answered retry_flag=Y inside one cancel() call. Default 1000 ms. */
  cancelPauseMs?: number;
}

/** Alipay sub_codes that end a charge for good, and what we call them. */
const DECLINES: Record<string, { code: string; message: string }> = {
  'ACQ.PAYMENT_AUTH_CODE_INVALID': {
    code: 'invalid_code',
    message: 'the payment code is invalid or expired: ask the customer to refresh it and scan again',
  },
  'ACQ.BUYER_BALANCE_NOT_ENOUGH': {
    code: 'insufficient_funds',
    message: "the customer's balance is not enough: ask for another payment method",
  },
  'ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH': {
    code: 'insufficient_funds',
    message: "the customer's bank card balance is not enough",
  },
  'ACQ.ERROR_BALANCE_PAYMENT_DISABLE': {
    code: 'insufficient_funds',
    message: "the customer's balance payment is disabled",
  },
  'ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR': {
    code: 'amount_limit',
    message: "the customer's daily payment limit is reached",
  },
  'ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR': {
    code: 'amount_limit',
    message: "the customer's monthly payment limit is reached",
  },
  'ACQ.TOTAL_FEE_EXCEED': {
    code: 'amount_limit',
    message: 'the amount exceeds what Alipay allows for this trade',
  },
  'ACQ.PRODUCT_AMOUNT_LIMIT_ERROR': {
    code: 'amount_limit',
    message: "the amount exceeds the limit of the merchant's product",
  },
  'ACQ.BUYER_ENABLE_STATUS_FORBID': {
    code: 'buyer_blocked',
    message: "the customer's Alipay account cannot pay",
  },
  'ACQ.BUYER_SELLER_EQUAL': {
    code: 'buyer_is_seller',
    message: 'the customer and the merchant are the same Alipay account',
  },
  'ACQ.TRADE_BUYER_NOT_MATCH': {
    code: 'buyer_mismatch',
    message: 'this order number was used by another customer',
  },
  'ACQ.CONTEXT_INCONSISTENT': {
    code: 'duplicate_order_no',
    message: 'Alipay already has a different trade under this order number',
  },
  'ACQ.TRADE_HAS_CLOSE': {
    code: 'trade_closed',
    message: 'the trade under this order number is closed: start a new payment',
  },
  'ACQ.PULL_MOBILE_CASHIER_FAIL': {
    code: 'declined',
    message: "the customer's phone could not confirm the payment",
  },
  'ACQ.PAYMENT_FAIL': { code: 'declined', message: 'Alipay declined the payment' },
  'ACQ.RISK_CONTROL_ERROR': { code: 'declined', message: "Alipay's risk control declined the payment" },
};

/** Request-level refusals (40001/40002/40006 sub_codes, and definite account problems under 40004). */
const REFUSALS: Record<string, { code: string; message: (appId: string) => string }> = {
  'isv.invalid-signature': {
    code: 'alipay_wrong_key',
    message: (a) =>
      `Alipay rejected the request's signature for app ${a}: the app private key does not match the app public key (应用公钥) set for this app on open.alipay.com; upload the matching public key there or configure the matching private key`,
  },
  'isv.invalid-app-id': {
    code: 'alipay_unknown_app',
    message: (a) =>
      `Alipay does not know app id ${a} at this gateway: check the app id, and that a sandbox app is not pointed at the production gateway (or the other way round)`,
  },
  'isv.invalid-timestamp': {
    code: 'alipay_clock_skew',
    message: () =>
      "Alipay refused the request's timestamp: this server's clock is wrong; synchronise it (NTP)",
  },
  'ACQ.ACCESS_FORBIDDEN': {
    code: 'alipay_no_permission',
    message: (a) =>
      `app ${a} has no contract for face-to-face payment (当面付); sign the product on open.alipay.com`,
  },
  'ACQ.PARTNER_ERROR': {
    code: 'alipay_no_permission',
    message: (a) => `app ${a} is not bound to a merchant who may take this payment (ACQ.PARTNER_ERROR)`,
  },
  'ACQ.INVALID_PARAMETER': {
    code: 'alipay_bad_request',
    message: () => 'Alipay refused a parameter of the request (ACQ.INVALID_PARAMETER)',
  },
  'ACQ.INVALID_STORE_ID': {
    code: 'alipay_bad_request',
    message: () => 'Alipay does not know the store id sent (ACQ.INVALID_STORE_ID)',
  },
  'ACQ.EXIST_FORBIDDEN_WORD': {
    code: 'alipay_bad_request',
    message: () => 'the order subject holds a word Alipay forbids',
  },
};

/** Refund refusals (40004 sub_codes of alipay.trade.refund). */
const REFUND_REFUSALS: Record<string, string> = {
  'ACQ.TRADE_NOT_EXIST': 'trade_not_found',
  'ACQ.TRADE_STATUS_ERROR': 'trade_not_refundable',
  'ACQ.TRADE_HAS_CLOSE': 'trade_not_refundable',
  'ACQ.TRADE_HAS_FINISHED': 'trade_not_refundable',
  'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL': 'refund_exceeds_paid',
  'ACQ.SELLER_BALANCE_NOT_ENOUGH': 'merchant_balance_not_enough',
  'ACQ.REASON_TRADE_BEEN_FREEZEN': 'trade_frozen',
  'ACQ.CONTEXT_INCONSISTENT': 'refund_no_reused',
  'ACQ.DISCORDANT_REPEAT_REQUEST': 'refund_no_reused',
};

type Answer = { response: Record<string, unknown>; rootKey: string };

/** Why a call produced no believable answer (the caller decides what that means). */
class NoAnswer extends Error {
  constructor(
    readonly kind: 'transport' | 'format' | 'forged',
    readonly transport: AlipayTransportError | undefined,
    message: string,
  ) {
    super(message);
  }
}

const s = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);

export class AlipayProvider implements WalletProvider {
  readonly name = 'alipay';
  readonly policy = ALIPAY_POLICY;
  private readonly appKey: KeyObject;
  private readonly alipayKey: KeyObject;
  private readonly gateway: URL;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly cancelPauseMs: number;

  constructor(
    private readonly account: AlipayAccount,
    opts: AlipayProviderOptions = {},
  ) {
    if (!/^\d{16}$/.test(account.appId))
      throw new Error(
        `the Alipay app id must be 16 digits (APPID on open.alipay.com), got "${account.appId}"`,
      );
    try {
      this.appKey = loadPrivateKey(account.appPrivateKeyPem);
    } catch {
      throw new Error(
        'the Alipay app private key cannot be read: give the PEM (or bare base64) of the RSA2 app private key',
      );
    }
    try {
      this.alipayKey = loadPublicKey(account.alipayPublicKeyPem);
    } catch {
      throw new Error(
        "Alipay's public key cannot be read: give the PEM (or bare base64) of 支付宝公钥, or Alipay's public key certificate",
      );
    }
    let url: URL;
    try {
      url = new URL(account.gatewayUrl);
    } catch {
      throw new Error(`the Alipay gateway URL "${account.gatewayUrl}" is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new Error('the Alipay gateway URL must be https:// (or http:// for a local gateway)');
    this.gateway = url;
    this.timeoutMs = opts.timeoutMs ?? ALIPAY_POLICY.requestTimeoutMs;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => undefined);
    this.cancelPauseMs = opts.cancelPauseMs ?? 1_000;
  }

  // ---- one signed call -----------------------------------------------------------------------------

  private async call(method: string, biz: Record<string, string>, subject: string): Promise<Answer> {
    const system: Record<string, string> = {
      app_id: this.account.appId,
      method,
      format: 'JSON',
      charset: 'utf-8',
      sign_type: 'RSA2',
      timestamp: chinaTimestamp(this.now()),
      version: '1.0',
    };
    const bizContent = JSON.stringify(biz);
    const signed = signRequest({ ...system, biz_content: bizContent }, this.appKey);
    const url = new URL(this.gateway.href);
    url.search = encodeForm({ ...system, sign: signed.sign });
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded;charset=utf-8',
      accept: 'application/json',
    };
    if (this.account.scenario) headers['payconnect-scenario'] = this.account.scenario;
    let raw;
    try {
      raw = await httpRequest(url, {
        method: 'POST',
        body: encodeForm({ biz_content: bizContent }),
        headers,
        timeoutMs: this.timeoutMs,
        caPem: this.account.caPem,
        maxBytes: 1 << 20,
      });
    } catch (e) {
      const t =
        e instanceof AlipayTransportError ? e : new AlipayTransportError('reset', (e as Error).message);
      this.log(`alipay ${method} ${subject}: ${t.message}`);
      throw new NoAnswer('transport', t, `${method} for ${subject}: ${t.message}`);
    }
    if (raw.status !== 200) {
      this.log(`alipay ${method} ${subject}: HTTP ${raw.status}`);
      throw new NoAnswer(
        'transport',
        new AlipayTransportError('http', `HTTP ${raw.status}`),
        `${method} for ${subject}: the gateway answered HTTP ${raw.status}`,
      );
    }
    let answer;
    try {
      answer = extractAnswer(raw.body.toString('utf8'), method);
    } catch (e) {
      const why = e instanceof AlipayFormatError ? e.message : 'unreadable answer';
      this.log(`alipay ${method} ${subject}: ${why}`);
      throw new NoAnswer('format', undefined, `${method} for ${subject}: ${why}`);
    }
    if (!verifyAnswer(answer, this.alipayKey)) {
      const why = answer.sign
        ? "its signature does not verify with Alipay's public key"
        : 'it carries no signature';
      this.log(`alipay ${method} ${subject}: answer not believed: ${why}`);
      throw new NoAnswer(
        'forged',
        undefined,
        `${method} for ${subject}: the answer is not believed (${why}); it may be forged or Alipay's public key may be wrong`,
      );
    }
    const r = answer.response;
    this.log(`alipay ${method} ${subject}: ${s(r.code)}${r.sub_code ? ` ${s(r.sub_code)}` : ''}`);
    return { response: r, rootKey: answer.rootKey };
  }

  /** A call whose failure to answer is an unknown outcome (everything except probe and bill). */
  private async callOrUnknown(method: string, biz: Record<string, string>, subject: string): Promise<Answer> {
    try {
      return await this.call(method, biz, subject);
    } catch (e) {
      if (e instanceof NoAnswer) throw new ProviderUnknownError(`alipay ${e.message}`);
      throw e;
    }
  }

  /** The request-level refusals (40001/40002/40006 and a few 40004 account sub_codes) as a ProviderRejectedError. */
  private refusal(r: Record<string, unknown>, method: string): ProviderRejectedError | undefined {
    const code = s(r.code);
    const sub = s(r.sub_code);
    const known = REFUSALS[sub];
    if (known) return new ProviderRejectedError(known.code, known.message(this.account.appId));
    if (code === '40001')
      return new ProviderRejectedError(
        'alipay_bad_request',
        `Alipay says the ${method} request misses a parameter (${sub || code})`,
      );
    if (code === '40002')
      return new ProviderRejectedError(
        'alipay_bad_request',
        `Alipay refused a parameter of the ${method} request (${sub || code})`,
      );
    if (code === '40006')
      return new ProviderRejectedError(
        'alipay_no_permission',
        `app ${this.account.appId} may not call ${method} (${sub || code}); add the product to the app on open.alipay.com`,
      );
    if (code === '20001')
      return new ProviderRejectedError(
        'alipay_bad_request',
        `Alipay refused the authorisation token (${sub || code})`,
      );
    return undefined;
  }

  private sameTrade(r: Record<string, unknown>, outTradeNo: string, method: string): void {
    if (r.out_trade_no !== undefined && s(r.out_trade_no) !== outTradeNo) {
      throw new ProviderUnknownError(
        `alipay ${method} for ${outTradeNo}: the answer is about another trade; not believed`,
      );
    }
  }

  private checkAmount(amount: { value: number; currency: string }, what: string): string {
    if (amount.currency !== 'CNY')
      throw new ProviderRejectedError(
        'unsupported_currency',
        `Alipay face-to-face payment takes CNY only, not ${amount.currency} (${what})`,
      );
    if (
      !Number.isSafeInteger(amount.value) ||
      amount.value < ALIPAY_MIN_FEN ||
      amount.value > ALIPAY_MAX_FEN
    ) {
      throw new ProviderRejectedError(
        'invalid_amount',
        `Alipay takes 0.01 to 100000000.00 yuan in whole fen (${what})`,
      );
    }
    return fenToYuan(amount.value);
  }

  // ---- PaymentProvider ---------------------------------------------------------------------------

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    const yuan = this.checkAmount(req.amount, `payment ${req.outTradeNo}`);
    const biz: Record<string, string> = {
      out_trade_no: req.outTradeNo,
      scene: 'bar_code',
      auth_code: req.code,
      product_code: 'FACE_TO_FACE_PAYMENT',
      // §1.1: at most 256 characters, none of / = &.
      subject: `payconnect ${req.storeId}`.replace(/[/=&]/g, ' ').slice(0, 256),
      total_amount: yuan,
    };
    if (/^[A-Za-z0-9_-]{1,32}$/.test(req.storeId)) biz.store_id = req.storeId;
    const { response: r } = await this.callOrUnknown('alipay.trade.pay', biz, req.outTradeNo);
    const code = s(r.code);
    const sub = s(r.sub_code);
    if (code === '10000' || code === '10003') {
      this.sameTrade(r, req.outTradeNo, 'alipay.trade.pay');
      if (r.total_amount !== undefined && s(r.total_amount) !== yuan) {
        throw new ProviderUnknownError(
          `alipay alipay.trade.pay for ${req.outTradeNo}: the answer names another amount; not believed`,
        );
      }
      const tradeNo = s(r.trade_no);
      return code === '10000'
        ? { outcome: 'succeeded', tradeNo, brand: 'alipay' }
        : { outcome: 'user_paying', tradeNo, brand: 'alipay' };
    }
    if (code === '40004') {
      if (sub === 'ACQ.TRADE_HAS_SUCCESS') {
        // §1.5: already paid under this out_trade_no. Report what the trade really is — and only if it is
        // this payment's amount (our out_trade_no is unique, so another amount means something is wrong).
        const { response: q } = await this.callOrUnknown(
          'alipay.trade.query',
          { out_trade_no: req.outTradeNo },
          req.outTradeNo,
        );
        this.sameTrade(q, req.outTradeNo, 'alipay.trade.query');
        const status = s(q.trade_status);
        if (s(q.code) === '10000' && (status === 'TRADE_SUCCESS' || status === 'TRADE_FINISHED')) {
          if (s(q.total_amount) !== yuan) {
            throw new ProviderUnknownError(
              `alipay alipay.trade.pay for ${req.outTradeNo}: a paid trade under this number has another amount; check it at Alipay`,
            );
          }
          return { outcome: 'succeeded', tradeNo: s(q.trade_no), brand: 'alipay' };
        }
        throw new ProviderUnknownError(
          `alipay alipay.trade.pay for ${req.outTradeNo}: Alipay says it is paid but the query says ${status || s(q.code)}`,
        );
      }
      const d = DECLINES[sub];
      if (d) return { outcome: 'declined', code: d.code, message: `${d.message} (${sub})`, brand: 'alipay' };
    }
    const refused = this.refusal(r, 'alipay.trade.pay');
    if (refused) throw refused;
    // 20000, ACQ.SYSTEM_ERROR, and any code we do not know: Alipay may have charged.
    throw new ProviderUnknownError(
      `alipay alipay.trade.pay for ${req.outTradeNo}: outcome unknown (${code}${sub ? ` ${sub}` : ''}); query it`,
    );
  }

  async query(outTradeNo: string): Promise<QueryResult> {
    const { response: r } = await this.callOrUnknown(
      'alipay.trade.query',
      { out_trade_no: outTradeNo },
      outTradeNo,
    );
    const code = s(r.code);
    const sub = s(r.sub_code);
    if (code === '10000') {
      this.sameTrade(r, outTradeNo, 'alipay.trade.query');
      switch (s(r.trade_status)) {
        case 'TRADE_SUCCESS':
        case 'TRADE_FINISHED':
          return { state: 'succeeded', tradeNo: s(r.trade_no) };
        case 'WAIT_BUYER_PAY':
          return { state: 'user_paying' };
        case 'TRADE_CLOSED':
          return { state: 'closed' };
        default:
          throw new ProviderUnknownError(`alipay alipay.trade.query for ${outTradeNo}: unknown trade_status`);
      }
    }
    if (code === '40004' && sub === 'ACQ.TRADE_NOT_EXIST') return { state: 'not_found' };
    const refused = this.refusal(r, 'alipay.trade.query');
    if (refused) throw refused;
    throw new ProviderUnknownError(
      `alipay alipay.trade.query for ${outTradeNo}: no answer about the trade (${code}${sub ? ` ${sub}` : ''})`,
    );
  }

  /**
   * alipay.trade.cancel: closes an unpaid trade, reverses a paid one (action=refund). An answer with
   * retry_flag=Y is called again after a short pause, twice at most; still Y → unknown, and the server
   * cancels again later (ALIPAY_POLICY.cancelRetryMs, within cancelWindowMs).
   */
  async cancel(outTradeNo: string): Promise<CancelResult> {
    const attempts = 3;
    for (let k = 1; ; k++) {
      const { response: r } = await this.callOrUnknown(
        'alipay.trade.cancel',
        { out_trade_no: outTradeNo },
        outTradeNo,
      );
      const code = s(r.code);
      const sub = s(r.sub_code);
      if (s(r.retry_flag) === 'Y' && code !== '40001' && code !== '40002') {
        if (k >= attempts)
          throw new ProviderUnknownError(
            `alipay alipay.trade.cancel for ${outTradeNo}: Alipay asks to cancel again (retry_flag=Y)`,
          );
        await new Promise((resolve) => setTimeout(resolve, this.cancelPauseMs));
        continue;
      }
      if (code === '10000') {
        this.sameTrade(r, outTradeNo, 'alipay.trade.cancel');
        return { reversed: s(r.action) === 'refund' };
      }
      if (code === '40004' && sub === 'ACQ.TRADE_NOT_EXIST') return { reversed: false };
      if (
        code === '40004' &&
        (sub === 'ACQ.TRADE_CANCEL_TIME_OUT' ||
          sub === 'ACQ.SELLER_BALANCE_NOT_ENOUGH' ||
          sub === 'ACQ.REASON_TRADE_BEEN_FREEZEN')
      ) {
        throw new ProviderRejectedError(
          'cancel_refused',
          `Alipay refuses to cancel trade ${outTradeNo} (${sub}); refund it instead`,
        );
      }
      const refused = this.refusal(r, 'alipay.trade.cancel');
      if (refused) throw refused;
      throw new ProviderUnknownError(
        `alipay alipay.trade.cancel for ${outTradeNo}: not cancelled yet (${code}${sub ? ` ${sub}` : ''})`,
      );
    }
  }

  async refund(
    outTradeNo: string,
    refundNo: string,
    amount: { value: number; currency: string },
  ): Promise<RefundResult> {
    const yuan = this.checkAmount(amount, `refund ${refundNo}`);
    const { response: r } = await this.callOrUnknown(
      'alipay.trade.refund',
      { out_trade_no: outTradeNo, refund_amount: yuan, out_request_no: refundNo },
      `${outTradeNo}/${refundNo}`,
    );
    const code = s(r.code);
    const sub = s(r.sub_code);
    if (code === '10000') {
      this.sameTrade(r, outTradeNo, 'alipay.trade.refund');
      return { refundNo };
    }
    if (code === '40004' && REFUND_REFUSALS[sub]) {
      throw new ProviderRejectedError(
        REFUND_REFUSALS[sub],
        `Alipay refuses refund ${refundNo} of trade ${outTradeNo} (${sub})`,
      );
    }
    const refused = this.refusal(r, 'alipay.trade.refund');
    if (refused) throw refused;
    throw new ProviderUnknownError(
      `alipay alipay.trade.refund ${refundNo} of ${outTradeNo}: outcome unknown (${code}${sub ? ` ${sub}` : ''}); ask with queryRefund`,
    );
  }

  /** alipay.trade.fastpay.refund.query: an answer naming the refund (refund_status absent or REFUND_SUCCESS) means paid out; no refund data means never received. */
  async queryRefund(outTradeNo: string, refundNo: string): Promise<RefundQueryResult> {
    const { response: r } = await this.callOrUnknown(
      'alipay.trade.fastpay.refund.query',
      { out_trade_no: outTradeNo, out_request_no: refundNo },
      `${outTradeNo}/${refundNo}`,
    );
    const code = s(r.code);
    const sub = s(r.sub_code);
    if (code === '10000') {
      this.sameTrade(r, outTradeNo, 'alipay.trade.fastpay.refund.query');
      if (r.out_request_no === undefined || r.refund_amount === undefined) return { state: 'not_found' };
      if (s(r.out_request_no) !== refundNo)
        throw new ProviderUnknownError(
          `alipay refund query for ${refundNo}: the answer is about another refund; not believed`,
        );
      const status = s(r.refund_status);
      if (status === '' || status === 'REFUND_SUCCESS') return { state: 'succeeded' };
      throw new ProviderUnknownError(`alipay refund query for ${refundNo}: refund_status ${status}`);
    }
    if (code === '40004' && sub === 'ACQ.TRADE_NOT_EXIST') return { state: 'not_found' };
    const refused = this.refusal(r, 'alipay.trade.fastpay.refund.query');
    if (refused) throw refused;
    throw new ProviderUnknownError(
      `alipay refund query for ${refundNo}: no answer (${code}${sub ? ` ${sub}` : ''})`,
    );
  }

  // ---- WalletProvider ----------------------------------------------------------------------------

  /** The day's trade bill: alipay.data.dataservice.bill.downloadurl.query, then the zip it points at. */
  async bill(date: string): Promise<BillRow[]> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
      throw new ProviderRejectedError('invalid_date', `a bill date is YYYY-MM-DD, not "${date}"`);
    }
    const { response: r } = await this.callOrUnknown(
      'alipay.data.dataservice.bill.downloadurl.query',
      { bill_type: 'trade', bill_date: date },
      `bill ${date}`,
    );
    const code = s(r.code);
    const sub = s(r.sub_code);
    if (code !== '10000') {
      if (sub === 'isp.bill_not_exist') {
        throw new ProviderRejectedError(
          'bill_not_ready',
          `Alipay has no bill for ${date} yet; a day's bill is ready from about 10:00 China time the next day`,
        );
      }
      throw (
        this.refusal(r, 'alipay.data.dataservice.bill.downloadurl.query') ??
        new ProviderUnknownError(
          `alipay bill ${date}: Alipay answered ${code}${sub ? ` ${sub}` : ''}; try again later`,
        )
      );
    }
    let url: URL;
    try {
      url = new URL(s(r.bill_download_url));
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error();
    } catch {
      throw new ProviderUnknownError(`alipay bill ${date}: the download address is not an http(s) URL`);
    }
    let file;
    try {
      file = await httpRequest(url, {
        method: 'GET',
        timeoutMs: Math.max(this.timeoutMs, 30_000),
        caPem: this.account.caPem,
        maxBytes: 64 << 20,
      });
    } catch (e) {
      throw new ProviderUnknownError(`alipay bill ${date}: download failed: ${(e as Error).message}`);
    }
    if (file.status !== 200)
      throw new ProviderUnknownError(
        `alipay bill ${date}: download answered HTTP ${file.status} (the address is valid for a short time only); try again`,
      );
    try {
      return readBill(file.body);
    } catch (e) {
      if (e instanceof BillError || e instanceof ZipError)
        throw new ProviderUnknownError(`alipay bill ${date}: ${e.message}`);
      throw e;
    }
  }

  /** One signed query of a trade that does not exist: ACQ.TRADE_NOT_EXIST means the app id and both keys work. */
  async probe(): Promise<ProbeResult> {
    const app = this.account.appId;
    const probeNo = `payconnect_probe_${randomBytes(6).toString('hex')}`;
    let r: Record<string, unknown>;
    try {
      r = (await this.call('alipay.trade.query', { out_trade_no: probeNo }, 'probe')).response;
    } catch (e) {
      if (!(e instanceof NoAnswer)) throw e;
      if (e.kind === 'forged') {
        return {
          ok: false,
          problem: 'wrong_key',
          message: `Alipay's answer does not verify with the configured Alipay public key (alipayPublicKeyFile). Copy 支付宝公钥 of app ${app} from open.alipay.com again — Alipay's public key, not the app public key`,
        };
      }
      if (e.kind === 'format')
        return {
          ok: false,
          problem: 'other',
          message: `the gateway at ${this.gateway.host} does not answer like Alipay: check gatewayUrl (…/gateway.do)`,
        };
      const t = e.transport!;
      if (t.kind === 'tls')
        return {
          ok: false,
          problem: 'tls',
          message: `TLS with ${this.gateway.host} failed: check the system's CA certificates (or caFile for a local gateway) and the server's clock`,
        };
      if (t.kind === 'http')
        return {
          ok: false,
          problem: 'other',
          message: `${this.gateway.host} answered ${t.message}: check gatewayUrl (…/gateway.do)`,
        };
      return {
        ok: false,
        problem: 'unreachable',
        message: `cannot reach Alipay at ${this.gateway.host} (${t.message}): check gatewayUrl, the network and any firewall or proxy`,
      };
    }
    const code = s(r.code);
    const sub = s(r.sub_code);
    if (code === '10000' || (code === '40004' && sub === 'ACQ.TRADE_NOT_EXIST')) {
      return {
        ok: true,
        message: `Alipay app ${app} works: our signature was accepted and Alipay's answer verified`,
      };
    }
    if (sub === 'isv.invalid-signature')
      return { ok: false, problem: 'wrong_key', message: REFUSALS[sub].message(app) };
    if (sub === 'isv.invalid-app-id')
      return { ok: false, problem: 'unknown_account', message: REFUSALS[sub].message(app) };
    if (sub === 'isv.invalid-timestamp')
      return { ok: false, problem: 'clock_skew', message: REFUSALS[sub].message(app) };
    return {
      ok: false,
      problem: 'other',
      message: `Alipay answered the probe with ${code}${sub ? ` ${sub}` : ''}: ${this.refusal(r, 'alipay.trade.query')?.message ?? 'see docs/providers/alipay.md'}`,
    };
  }
}
