/**
 * WeChat Pay code payment (付款码支付) for one merchant account, API v2 (XML, API key) or v3 (JSON, RSA),
 * as the account says (research note §2). The WalletProvider contract (../wallet.ts) on top of:
 * - v2: /pay/micropay, /pay/orderquery, /secapi/pay/reverse and /secapi/pay/refund (mutual TLS with the
 *   merchant's API certificate), /pay/refundquery, /pay/downloadbill;
 * - v3: /v3/pay/transactions/codepay, …/out-trade-no/{no} (query), …/{no}/reverse, /v3/refund/domestic/refunds,
 *   /v3/bill/tradebill.
 *
 * Trust: a v2 reply is believed only when return_code=SUCCESS and its sign verifies with the API key (new
 * fields take part); a v3 reply only when Wechatpay-Signature verifies over `timestamp\nnonce\nbody\n` with
 * the platform certificate named by Wechatpay-Serial (or the WeChat Pay public key, `PUB_KEY_ID_…`) and its
 * timestamp is within 5 minutes. Anything else — an unsigned 2xx, a wrong signature, a reply about another
 * order or amount — is an unknown outcome (ProviderUnknownError): a forged answer can never make a payment
 * succeed, and never makes one fail for good either.
 *
 * Mapping (one table, v2 err_code and v3 code alike, compared without underscores): SUCCESS → succeeded;
 * USERPAYING → user_paying; SYSTEMERROR / BANKERROR / timeouts / broken connections / a return_code FAIL we
 * cannot place → unknown; ORDERPAID → the real state from a query; definite refusals → declined; a request
 * WeChat Pay refused as such (signature, account, parameters) → ProviderRejectedError in plain words.
 *
 * Nothing here logs or throws a key, a signature, the payment code or a whole reply body.
 */
import { X509Certificate, createHash, createPrivateKey, KeyObject } from 'node:crypto';
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
import { ProviderPolicy } from '../policy';
import { BillRow, ProbeResult, WalletProvider } from '../wallet';
import { parseBill } from './bill';
import { HttpReply, WechatTransportError, httpsCall } from './http';
import {
  V2SignType,
  buildAuthorization,
  nonce,
  publicKeyOf,
  sha256WithRsa,
  signV2,
  v3RequestMessage,
  v3ResponseMessage,
  verifySha256WithRsa,
  verifyV2,
} from './sign';
import { v2Time } from './time';
import { buildXml, parseXml } from './xml';
import { SCENARIO_HEADER } from '../../gateways/scenarios';

/**
 * WeChat Pay's timing rules for a code payment (research note §2.4; "note" = /work/shared/research/
 * wallet-providers.md).
 */
/** JSON from the wire: every field is checked where it is read. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type WireJson = Record<string, any>;

export const WECHAT_POLICY: ProviderPolicy = {
  // Note §2.4: after "系统错误" wait 5 s, then query; a USERPAYING answer is first re-asked within 5 s too
  // (older sequence diagram: query every 5 s).
  firstCheckMs: 5_000,
  // Note §2.4: "recommended query interval 3–5 s" (pay.weixin.qq.com/doc/global/v2/en/4013665306).
  checkEveryMs: [3_000, 5_000],
  // Note §2.4: WeChat Pay auto-revokes a code payment unpaid 45 s after creation; we stop waiting at 40 s so
  // the reverse is ours and lands before theirs ("stay within 45 s").
  deadlineMs: 40_000,
  // Note §2.4: reverse "not sooner than 15 s after the pay call".
  cancelNotBeforeMs: 15_000,
  // Note §2.4: reply `recall=Y` ⇒ call reverse again (no interval is documented; 5 s, the query cadence).
  cancelRetryMs: 5_000,
  // Note §2.4: reverse works "within 7 days".
  cancelWindowMs: 7 * 24 * 3600_000,
  // Note §2.4: an answer that does not come is "result unknown → query"; 10 s bounds one call (the official
  // v2 demo's micropay timeout; the clerk waits no longer).
  requestTimeoutMs: 10_000,
};

export interface WechatAccount {
  api: 'v2' | 'v3';
  appId: string;
  mchId: string;
  /** https://api.mch.weixin.qq.com, or a local gateway's url. */
  baseUrl: string;
  /** Trust for a local gateway's TLS (its CA); absent = the system's roots. */
  caPem?: string;
  merchantCertPem: string;
  merchantKeyPem: string;
  merchantCertSerial: string;
  v2?: { apiKey: string; signType: V2SignType };
  v3?: { apiV3Key: string; platformCertPem?: string; publicKeyPem?: string; publicKeyId?: string };
  /** Tests: sent as the payconnect-scenario header. */
  scenario?: string;
}

/** `timeoutMs` defaults to WECHAT_POLICY.requestTimeoutMs. */
export interface WechatProviderOptions extends WalletProviderOptions {
  /**
   * The provider's own guard against a reverse sooner than WeChat Pay allows after its charge; default
   * WECHAT_POLICY.cancelNotBeforeMs (15 s). A server whose wallet timing is sped up for local gateways
   * (PAYCONNECT_WALLET_SPEED) divides this by the same factor, or its early cancels would all be refused.
   */
  cancelNotBeforeMs?: number;
}

/** Why an outcome is unknown, for probe() and logs: never a key, a signature or a body. */
export class WechatUnknownError extends ProviderUnknownError {
  constructor(
    readonly reason: 'transport' | 'forged' | 'clock_skew' | 'provider_error' | 'recall' | 'too_early',
    message: string,
    cause?: unknown,
  ) {
    super(message, cause);
  }
}

/** Outcome codes a definite refusal maps to (ChargeResult declined.code). */
const DECLINES: Record<string, [string, string]> = {
  AUTHCODEEXPIRE: [
    'invalid_code',
    'the payment code has expired: ask the customer to refresh it in WeChat and scan again',
  ],
  AUTHCODEINVALID: ['invalid_code', 'not a WeChat Pay payment code: ask the customer to show the code again'],
  AUTHCODEERROR: [
    'invalid_code',
    'the payment code is not valid: ask the customer to refresh it and scan again',
  ],
  NOTENOUGH: ['insufficient_funds', "the customer's balance is not enough: ask for another card or payment"],
  NOTSUPORTCARD: ['card_not_supported', "the customer's card is not supported: ask for another card"],
  BUYERMISMATCH: ['buyer_mismatch', 'another WeChat user paid under this order before'],
  ORDERCLOSED: ['order_closed', 'WeChat Pay says this order is closed'],
  ORDERREVERSED: ['order_reversed', 'WeChat Pay says this order was reversed'],
  OUTTRADENOUSED: ['duplicate_order_no', 'WeChat Pay says this order number was used for another order'],
  TRADEERROR: ['trade_error', "WeChat Pay refused the payment (the customer's account is restricted)"],
  PAYERROR: ['payment_error', 'WeChat Pay says the payment failed'],
};

const REJECTS: Record<string, string> = {
  SIGNERROR:
    'WeChat Pay refused our signature: the API key (v2) or the merchant API certificate and key (v3) configured for this store are not the ones set in the merchant platform (商户平台 → 账户中心 → API安全). Copy them again.',
  APPIDNOTEXIST:
    'WeChat Pay does not know the app id configured for this store: check the app id (公众号/小程序 AppID bound to the merchant).',
  MCHIDNOTEXIST:
    'WeChat Pay does not know the merchant id (mch id) configured for this store: check it in the merchant platform.',
  APPIDMCHIDNOTMATCH:
    'the app id is not bound to this merchant id at WeChat Pay: bind it (商户平台 → 产品中心 → AppID账号管理) or fix the configuration.',
  NOAUTH:
    'this merchant has no permission for code payments (付款码支付): enable the product in the merchant platform.',
  PARAMERROR: 'WeChat Pay refused the request as malformed',
  INVALIDREQUEST: 'WeChat Pay refused the request',
  XMLFORMATERROR: 'WeChat Pay could not read our XML',
  LACKPARAMS: 'WeChat Pay says a required field is missing',
  NOTUTF8: 'WeChat Pay says our request is not UTF-8',
  REQUIREPOSTMETHOD: 'WeChat Pay wants POST',
  INVALIDTRANSACTIONID: 'WeChat Pay refused the transaction id',
};

/** return_code=FAIL return_msg texts WeChat Pay uses, mapped to the codes above. */
const RETURN_MSGS: Array<[RegExp, string]> = [
  [/签名错误|SIGNERROR|sign\s*error|签名类型/i, 'SIGNERROR'],
  [/appid.*(不存在|NOT_EXIST)|APPID_NOT_EXIST/i, 'APPIDNOTEXIST'],
  [/mch_?id.*(不存在|格式错误|NOT_EXIST)|MCHID_NOT_EXIST|商户号.*不存在/i, 'MCHIDNOTEXIST'],
  [/不匹配|NOT_MATCH/i, 'APPIDMCHIDNOTMATCH'],
  [/XML格式错误|XML_FORMAT_ERROR/i, 'XMLFORMATERROR'],
  [/缺少参数|LACK_PARAMS/i, 'LACKPARAMS'],
  [/编码格式错误|NOT_UTF8/i, 'NOTUTF8'],
  [/post方法|REQUIRE_POST_METHOD/i, 'REQUIREPOSTMETHOD'],
];

const norm = (code: string | undefined): string => (code ?? '').toUpperCase().replace(/_/g, '');

interface V3Reply {
  status: number;
  json: WireJson;
  raw: Buffer;
}

export class WechatProvider implements WalletProvider {
  readonly name = 'wechat';
  readonly policy = WECHAT_POLICY;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly cancelNotBeforeMs: number;
  private readonly log: (line: string) => void;
  private readonly merchantKey: KeyObject;
  private readonly platformKeys = new Map<string, KeyObject>();
  private readonly chargedAt = new Map<string, number>();
  private readonly base: URL;

  private readonly account: WechatAccount;

  constructor(account: WechatAccount, options: WechatProviderOptions = {}) {
    // Keys read from files often end in a newline; a key never holds whitespace, and one stray byte would
    // read as a wrong key (SIGNERROR).
    this.account = {
      ...account,
      ...(account.v2 ? { v2: { ...account.v2, apiKey: account.v2.apiKey.trim() } } : {}),
      ...(account.v3
        ? {
            v3: {
              ...account.v3,
              apiV3Key: account.v3.apiV3Key.trim(),
              publicKeyId: account.v3.publicKeyId?.trim(),
            },
          }
        : {}),
      merchantCertSerial: account.merchantCertSerial.trim(),
    };
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? WECHAT_POLICY.requestTimeoutMs;
    this.cancelNotBeforeMs = options.cancelNotBeforeMs ?? WECHAT_POLICY.cancelNotBeforeMs;
    this.log = options.log ?? (() => undefined);
    this.base = new URL(account.baseUrl);
    if (this.base.protocol !== 'https:')
      throw new ProviderRejectedError('provider.wechat.config', 'the WeChat Pay base URL must be https');
    if (!/^\d{6,32}$/.test(account.mchId))
      throw new ProviderRejectedError(
        'provider.wechat.config',
        'the WeChat Pay merchant id (mch id) must be digits',
      );
    if (!account.appId)
      throw new ProviderRejectedError('provider.wechat.config', 'the WeChat Pay app id is missing');
    try {
      this.merchantKey = createPrivateKey(account.merchantKeyPem);
    } catch {
      throw new ProviderRejectedError(
        'provider.wechat.config',
        'the merchant API private key (apiclient_key.pem) cannot be read',
      );
    }
    if (account.api === 'v2' && !account.v2?.apiKey) {
      throw new ProviderRejectedError(
        'provider.wechat.config',
        'a v2 account needs its API key (商户平台 → API安全 → API密钥)',
      );
    }
    if (account.api === 'v3') {
      const v3 = account.v3;
      if (!v3?.platformCertPem && !(v3?.publicKeyPem && v3.publicKeyId)) {
        throw new ProviderRejectedError(
          'provider.wechat.config',
          'a v3 account needs the WeChat Pay platform certificate or the WeChat Pay public key and its id (PUB_KEY_ID_…)',
        );
      }
      try {
        if (v3.platformCertPem)
          this.platformKeys.set(
            new X509Certificate(v3.platformCertPem).serialNumber.toUpperCase(),
            new X509Certificate(v3.platformCertPem).publicKey,
          );
        if (v3.publicKeyPem && v3.publicKeyId)
          this.platformKeys.set(v3.publicKeyId, publicKeyOf(v3.publicKeyPem) as KeyObject);
      } catch {
        throw new ProviderRejectedError(
          'provider.wechat.config',
          'the WeChat Pay platform certificate or public key cannot be read',
        );
      }
    }
  }

  // ---- the contract ---------------------------------------------------------------------------------

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    this.checkAmount(req.amount);
    this.chargedAt.set(req.outTradeNo, this.now());
    if (this.account.api === 'v2') {
      const f = await this.v2(
        '/pay/micropay',
        {
          device_info: deviceInfo(req.storeId),
          body: `${deviceInfo(req.storeId) || 'payconnect'}-payment`.slice(0, 127),
          out_trade_no: req.outTradeNo,
          total_fee: String(req.amount.value),
          fee_type: 'CNY',
          spbill_create_ip: '127.0.0.1',
          time_start: v2Time(this.now()),
          auth_code: req.code,
        },
        false,
        true,
      );
      if (f.result_code === 'SUCCESS')
        return this.paid(req, f.out_trade_no, Number(f.total_fee), f.transaction_id);
      return this.failedCharge(req, f.err_code, f.err_code_des);
    }
    const r = await this.v3(
      'POST',
      '/v3/pay/transactions/codepay',
      {
        appid: this.account.appId,
        mchid: this.account.mchId,
        description: `${deviceInfo(req.storeId) || 'payconnect'}-payment`.slice(0, 127),
        out_trade_no: req.outTradeNo,
        payer: { auth_code: req.code },
        amount: { total: req.amount.value, currency: 'CNY' },
        scene_info: { device_ip: '127.0.0.1', store_info: { out_id: deviceInfo(req.storeId) || 'store' } },
      },
      true,
    );
    if (r.status >= 200 && r.status < 300) {
      if (r.json.trade_state === 'SUCCESS')
        return this.paid(req, r.json.out_trade_no, r.json.amount?.total, r.json.transaction_id);
      if (r.json.trade_state === 'USERPAYING')
        return { outcome: 'user_paying', tradeNo: String(r.json.transaction_id ?? ''), brand: 'wechat' };
      throw new WechatUnknownError(
        'provider_error',
        `WeChat Pay answered the payment with state ${safe(r.json.trade_state)}: query it`,
      );
    }
    return this.failedCharge(req, r.json.code, r.json.message);
  }

  async query(outTradeNo: string): Promise<QueryResult> {
    if (this.account.api === 'v2') {
      const f = await this.v2('/pay/orderquery', { out_trade_no: outTradeNo });
      if (f.result_code !== 'SUCCESS') {
        if (norm(f.err_code) === 'ORDERNOTEXIST') return { state: 'not_found' };
        return this.placeError(f.err_code, f.err_code_des);
      }
      if (f.out_trade_no !== outTradeNo)
        throw new WechatUnknownError('forged', 'WeChat Pay answered about another order: query again');
      return this.tradeState(f.trade_state, f.transaction_id, f.trade_state_desc);
    }
    const r = await this.v3(
      'GET',
      `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}?mchid=${this.account.mchId}`,
    );
    if (r.status === 404 || norm(r.json.code) === 'ORDERNOTEXIST') return { state: 'not_found' };
    if (r.status >= 300) return this.placeError(r.json.code, r.json.message);
    if (r.json.out_trade_no !== outTradeNo)
      throw new WechatUnknownError('forged', 'WeChat Pay answered about another order: query again');
    return this.tradeState(r.json.trade_state, r.json.transaction_id, r.json.trade_state_desc);
  }

  /**
   * Reverses (撤销) the trade: closes it when unpaid, returns the money when paid. Refused locally sooner than
   * 15 s after our charge (WeChat Pay's rule; the server retries). `reversed` is true when the trade had been
   * paid: a query before the reverse said so, or the one after shows it paid (a pay time on the revoked trade).
   */
  async cancel(outTradeNo: string): Promise<CancelResult> {
    const charged = this.chargedAt.get(outTradeNo);
    if (charged !== undefined && this.now() - charged < this.cancelNotBeforeMs) {
      throw new WechatUnknownError(
        'too_early',
        'WeChat Pay refuses a reverse sooner than 15 s after the payment: try again later',
      );
    }
    const before = await this.query(outTradeNo);
    let paid = before.state === 'succeeded';
    if (this.account.api === 'v2') {
      const f = await this.v2('/secapi/pay/reverse', { out_trade_no: outTradeNo }, true);
      // recall=Y means "call reverse again", whatever result_code says; result_code=SUCCESS alone means
      // reversed. (The official PHP demo reads `result_code != SUCCESS && recall == N` as success: inverted.)
      if (f.recall === 'Y')
        throw new WechatUnknownError('recall', 'WeChat Pay asks to call reverse again (recall=Y)');
      if (f.result_code !== 'SUCCESS') {
        const code = norm(f.err_code);
        if (code === 'ORDERNOTEXIST') return { reversed: false };
        if (code === 'SYSTEMERROR' || code === 'BANKERROR')
          throw new WechatUnknownError(
            'provider_error',
            'WeChat Pay could not reverse now (system error): call again',
          );
        throw new ProviderRejectedError(
          'provider.wechat.reverse_failed',
          `WeChat Pay refused to reverse the order (${safe(f.err_code)}: ${safe(f.err_code_des)})`,
        );
      }
    } else {
      const r = await this.v3(
        'POST',
        `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}/reverse`,
        {
          appid: this.account.appId,
          mchid: this.account.mchId,
        },
      );
      if (r.status >= 500 || ['SYSTEMERROR', 'BANKERROR', 'USERPAYING'].includes(norm(r.json.code))) {
        throw new WechatUnknownError('recall', 'WeChat Pay could not reverse now: call again');
      }
      if (r.status === 404) return { reversed: false };
      if (r.status >= 300) {
        throw new ProviderRejectedError(
          'provider.wechat.reverse_failed',
          `WeChat Pay refused to reverse the order (${safe(r.json.code)}: ${safe(r.json.message)})`,
        );
      }
    }
    if (!paid) paid = await this.wasPaid(outTradeNo);
    this.log(`wechat: reversed ${outTradeNo}${paid ? ' (it had been paid: money returned)' : ''}`);
    return { reversed: paid };
  }

  async refund(
    outTradeNo: string,
    refundNo: string,
    amount: { value: number; currency: string },
  ): Promise<RefundResult> {
    this.checkAmount(amount);
    const total = await this.paidTotal(outTradeNo);
    if (this.account.api === 'v2') {
      const f = await this.v2(
        '/secapi/pay/refund',
        {
          out_trade_no: outTradeNo,
          out_refund_no: refundNo,
          total_fee: String(total),
          refund_fee: String(amount.value),
          refund_fee_type: 'CNY',
        },
        true,
      );
      if (f.result_code === 'SUCCESS') {
        if (f.out_refund_no !== refundNo || Number(f.refund_fee) !== amount.value)
          throw new WechatUnknownError('forged', 'WeChat Pay answered about another refund: ask about it');
        return { refundNo };
      }
      return this.refundError(f.err_code, f.err_code_des);
    }
    const r = await this.v3('POST', '/v3/refund/domestic/refunds', {
      out_trade_no: outTradeNo,
      out_refund_no: refundNo,
      amount: { refund: amount.value, total, currency: 'CNY' },
    });
    if (r.status >= 200 && r.status < 300) {
      if (r.json.out_refund_no !== refundNo || r.json.amount?.refund !== amount.value)
        throw new WechatUnknownError('forged', 'WeChat Pay answered about another refund: ask about it');
      if (r.json.status === 'SUCCESS' || r.json.status === 'PROCESSING') return { refundNo };
      throw new ProviderRejectedError(
        'provider.wechat.refund_failed',
        `WeChat Pay did not pay the refund out (${safe(r.json.status)})`,
      );
    }
    return this.refundError(r.json.code, r.json.message, r.status);
  }

  async queryRefund(outTradeNo: string, refundNo: string): Promise<RefundQueryResult> {
    if (this.account.api === 'v2') {
      const f = await this.v2('/pay/refundquery', { out_refund_no: refundNo });
      if (f.result_code !== 'SUCCESS') {
        if (norm(f.err_code) === 'REFUNDNOTEXIST') return { state: 'not_found' };
        return this.placeError(f.err_code, f.err_code_des);
      }
      if (f.out_trade_no !== outTradeNo || f.out_refund_no_0 !== refundNo)
        throw new WechatUnknownError('forged', 'WeChat Pay answered about another refund: ask again');
      return this.refundState(f.refund_status_0);
    }
    const r = await this.v3('GET', `/v3/refund/domestic/refunds/${encodeURIComponent(refundNo)}`);
    if (r.status === 404) return { state: 'not_found' };
    if (r.status >= 300) return this.placeError(r.json.code, r.json.message);
    if (r.json.out_refund_no !== refundNo || r.json.out_trade_no !== outTradeNo)
      throw new WechatUnknownError('forged', 'WeChat Pay answered about another refund: ask again');
    return this.refundState(r.json.status);
  }

  async bill(date: string): Promise<BillRow[]> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date))
      throw new ProviderRejectedError('provider.wechat.bill_date', 'a bill date is YYYY-MM-DD (China time)');
    if (this.account.api === 'v2') {
      const fields = this.v2Fields({ bill_date: date.replace(/-/g, ''), bill_type: 'ALL' });
      const reply = await this.send('/pay/downloadbill', buildXml(fields), false);
      const text = reply.body.toString('utf8');
      if (text.trimStart().startsWith('<xml>')) {
        const f = parseXml(text);
        if (/No Bill Exist/i.test(f.return_msg ?? '')) return [];
        this.returnFail(f.return_msg);
      }
      return parseBill(reply.body);
    }
    const r = await this.v3('GET', `/v3/bill/tradebill?bill_date=${date}&bill_type=ALL`);
    if (norm(r.json.code) === 'NOSTATEMENTEXIST') return [];
    if (r.status >= 300) return this.placeError(r.json.code, r.json.message);
    const url = new URL(String(r.json.download_url ?? ''), this.base);
    if (url.origin !== this.base.origin)
      throw new WechatUnknownError('forged', 'WeChat Pay named a bill download on another host: refused');
    const file = await this.send(url.pathname + url.search, undefined, false, 'GET', true);
    if (file.status !== 200)
      throw new WechatUnknownError(
        'provider_error',
        `WeChat Pay did not give the bill file (HTTP ${file.status})`,
      );
    const hash = createHash(String(r.json.hash_type ?? 'SHA1').toUpperCase() === 'SHA1' ? 'sha1' : 'sha256')
      .update(file.body)
      .digest('hex');
    if (hash.toLowerCase() !== String(r.json.hash_value ?? '').toLowerCase()) {
      throw new WechatUnknownError(
        'forged',
        'the bill file does not match the hash WeChat Pay signed: download it again',
      );
    }
    return parseBill(file.body);
  }

  async probe(): Promise<ProbeResult> {
    const probeNo = `probe${nonce(20)}`;
    try {
      const q = await this.query(probeNo);
      if (q.state === 'not_found') {
        return {
          ok: true,
          message: `WeChat Pay (${this.account.api}) accepted our signed request for merchant ${this.account.mchId} and its answer verified: the credentials work.`,
        };
      }
      return { ok: true, message: 'WeChat Pay answered a signed query: the credentials work.' };
    } catch (e) {
      return probeProblem(e, this.account);
    }
  }

  // ---- mapping --------------------------------------------------------------------------------------

  private checkAmount(amount: { value: number; currency: string }): void {
    if (amount.currency !== 'CNY') {
      throw new ProviderRejectedError(
        'provider.wechat.currency',
        `WeChat Pay code payments are in CNY; ${safe(amount.currency)} is not accepted`,
      );
    }
    if (!Number.isSafeInteger(amount.value) || amount.value <= 0) {
      throw new ProviderRejectedError(
        'provider.wechat.amount',
        'the amount must be a positive whole number of fen',
      );
    }
  }

  private paid(req: ChargeRequest, outTradeNo: unknown, total: unknown, tradeNo: unknown): ChargeResult {
    if (outTradeNo !== req.outTradeNo || Number(total) !== req.amount.value || !tradeNo) {
      throw new WechatUnknownError(
        'forged',
        'WeChat Pay said paid, but for another order or amount: query it',
      );
    }
    return { outcome: 'succeeded', tradeNo: String(tradeNo), brand: 'wechat' };
  }

  private async failedCharge(req: ChargeRequest, rawCode: unknown, desc: unknown): Promise<ChargeResult> {
    const code = norm(String(rawCode ?? ''));
    if (code === 'USERPAYING') return { outcome: 'user_paying', tradeNo: '', brand: 'wechat' };
    if (code === 'ORDERPAID' || code === 'OUTTRADENOUSED') {
      // ORDERPAID: paid before under this out_trade_no (our own earlier call). OUT_TRADE_NO_USED: the number
      // is taken — possibly by our own earlier call sent with other details (a retry after a crash), which
      // may have been paid. Either way the query says what is true now; only when nothing under the number
      // can hold money is the charge declined.
      const q = await this.query(req.outTradeNo);
      if (q.state === 'succeeded' && (await this.paidTotal(req.outTradeNo)) !== req.amount.value) {
        // Never report another amount as this payment: a person must look at this order.
        throw new WechatUnknownError(
          'provider_error',
          `WeChat Pay holds order ${req.outTradeNo} paid with another amount: check it in the merchant platform`,
        );
      }
      if (q.state === 'succeeded') return { outcome: 'succeeded', tradeNo: q.tradeNo, brand: 'wechat' };
      if (q.state === 'user_paying') return { outcome: 'user_paying', tradeNo: '', brand: 'wechat' };
      if (code === 'ORDERPAID') {
        throw new WechatUnknownError(
          'provider_error',
          `WeChat Pay said ORDERPAID, then the order reads ${q.state}: query again`,
        );
      }
    }
    const decline = DECLINES[code];
    if (decline)
      return {
        outcome: 'declined',
        code: decline[0],
        message: `${decline[1]} (${safe(rawCode)})`,
        brand: 'wechat',
      };
    return this.placeError(rawCode, desc);
  }

  /** A refusal we can name → ProviderRejectedError; anything else (system error, unknown code) → unknown. */
  private placeError(rawCode: unknown, desc: unknown): never {
    const code = norm(String(rawCode ?? ''));
    if (REJECTS[code])
      throw new ProviderRejectedError(
        `provider.wechat.${code.toLowerCase()}`,
        `${REJECTS[code]} (${safe(rawCode)}: ${safe(desc)})`,
      );
    throw new WechatUnknownError(
      'provider_error',
      `WeChat Pay answered ${safe(rawCode) || 'an error'} (${safe(desc)}): the outcome is unknown, query it`,
    );
  }

  private refundError(rawCode: unknown, desc: unknown, status = 200): never {
    const code = norm(String(rawCode ?? ''));
    if (
      status >= 500 ||
      code === 'SYSTEMERROR' ||
      code === 'BIZERRNEEDRETRY' ||
      code === 'FREQUENCYLIMITED' ||
      !code
    ) {
      throw new WechatUnknownError(
        'provider_error',
        `WeChat Pay could not take the refund now (${safe(rawCode)}): ask about it, then send it again under the same refund number`,
      );
    }
    if (REJECTS[code]) this.placeError(rawCode, desc);
    throw new ProviderRejectedError(
      `provider.wechat.refund_${code.toLowerCase() || 'failed'}`,
      `WeChat Pay refused the refund (${safe(rawCode)}: ${safe(desc)})`,
    );
  }

  private tradeState(state: unknown, tradeNo: unknown, desc: unknown): QueryResult {
    switch (state) {
      case 'SUCCESS':
      case 'REFUND':
        if (!tradeNo)
          throw new WechatUnknownError(
            'forged',
            'WeChat Pay said paid without a transaction id: query again',
          );
        return { state: 'succeeded', tradeNo: String(tradeNo) };
      case 'USERPAYING':
      case 'NOTPAY':
      case 'ACCEPT':
        return { state: 'user_paying' };
      case 'CLOSED':
      case 'REVOKED':
        return { state: 'closed' };
      case 'PAYERROR':
        return {
          state: 'failed',
          code: 'payment_error',
          message: `WeChat Pay says the payment failed (${safe(desc)})`,
        };
      default:
        throw new WechatUnknownError(
          'provider_error',
          `WeChat Pay reported the unknown trade state ${safe(state)}: query again`,
        );
    }
  }

  private refundState(status: unknown): RefundQueryResult {
    if (status === 'SUCCESS') return { state: 'succeeded' };
    if (status === 'PROCESSING')
      throw new WechatUnknownError(
        'provider_error',
        'WeChat Pay is still paying the refund out: ask again later',
      );
    return {
      state: 'failed',
      code: `refund_${String(status ?? 'failed').toLowerCase()}`,
      message: `WeChat Pay says the refund ${safe(status)}`,
    };
  }

  private async wasPaid(outTradeNo: string): Promise<boolean> {
    if (this.account.api === 'v2') {
      const f = await this.v2('/pay/orderquery', { out_trade_no: outTradeNo });
      return f.result_code === 'SUCCESS' && f.out_trade_no === outTradeNo && !!f.time_end;
    }
    const r = await this.v3(
      'GET',
      `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}?mchid=${this.account.mchId}`,
    );
    return r.status === 200 && r.json.out_trade_no === outTradeNo && !!r.json.success_time;
  }

  private async paidTotal(outTradeNo: string): Promise<number> {
    if (this.account.api === 'v2') {
      const f = await this.v2('/pay/orderquery', { out_trade_no: outTradeNo });
      if (f.result_code !== 'SUCCESS' || (f.trade_state !== 'SUCCESS' && f.trade_state !== 'REFUND')) {
        throw new ProviderRejectedError(
          'provider.wechat.refund_not_paid',
          'WeChat Pay has no paid order under this payment id: nothing to refund',
        );
      }
      return Number(f.total_fee);
    }
    const r = await this.v3(
      'GET',
      `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}?mchid=${this.account.mchId}`,
    );
    if (r.status !== 200 || (r.json.trade_state !== 'SUCCESS' && r.json.trade_state !== 'REFUND')) {
      throw new ProviderRejectedError(
        'provider.wechat.refund_not_paid',
        'WeChat Pay has no paid order under this payment id: nothing to refund',
      );
    }
    return Number(r.json.amount?.total);
  }

  private returnFail(msg: unknown): never {
    const text = String(msg ?? '');
    for (const [re, code] of RETURN_MSGS) if (re.test(text)) this.placeError(code, text);
    throw new WechatUnknownError(
      'provider_error',
      `WeChat Pay answered return_code=FAIL (${safe(text)}): the outcome is unknown`,
    );
  }

  // ---- v2 transport ---------------------------------------------------------------------------------

  private v2Fields(extra: Record<string, string | undefined>): Record<string, string | undefined> {
    const v2 = this.account.v2!;
    const f: Record<string, string | undefined> = {
      appid: this.account.appId,
      mch_id: this.account.mchId,
      nonce_str: nonce(32),
      sign_type: v2.signType,
      ...extra,
    };
    f.sign = signV2(f, v2.apiKey, v2.signType);
    return f;
  }

  /** One signed v2 call; returns the verified reply fields (return_code=SUCCESS), or throws. */
  private async v2(
    path: string,
    extra: Record<string, string | undefined>,
    mtls = false,
    scenario = false,
  ): Promise<Record<string, string>> {
    if (this.account.api !== 'v2' || !this.account.v2)
      throw new ProviderRejectedError('provider.wechat.config', 'this account is not set up for API v2');
    const reply = await this.send(path, buildXml(this.v2Fields(extra)), mtls, 'POST', false, scenario);
    let f: Record<string, string>;
    try {
      f = parseXml(reply.body);
    } catch (e) {
      throw new WechatUnknownError(
        'provider_error',
        `WeChat Pay's answer to ${path} could not be read (HTTP ${reply.status}): the outcome is unknown`,
        e,
      );
    }
    if (f.return_code !== 'SUCCESS') this.returnFail(f.return_msg);
    if (!verifyV2(f, this.account.v2.apiKey, this.account.v2.signType)) {
      this.log(
        `wechat: ${path}: reply signature does not verify (forged or wrong API key); treated as unknown`,
      );
      throw new WechatUnknownError(
        'forged',
        `WeChat Pay's answer to ${path} is not signed with our API key: not believed, the outcome is unknown`,
      );
    }
    if ((f.appid && f.appid !== this.account.appId) || (f.mch_id && f.mch_id !== this.account.mchId)) {
      throw new WechatUnknownError(
        'forged',
        `WeChat Pay's answer to ${path} is for another merchant: not believed`,
      );
    }
    return f;
  }

  // ---- v3 transport ---------------------------------------------------------------------------------

  private async v3(
    method: 'GET' | 'POST',
    pathAndQuery: string,
    body?: unknown,
    scenario = false,
  ): Promise<V3Reply> {
    if (this.account.api !== 'v3')
      throw new ProviderRejectedError('provider.wechat.config', 'this account is not set up for API v3');
    const text = body === undefined ? undefined : JSON.stringify(body);
    const reply = await this.send(pathAndQuery, text, false, method, true, scenario);
    const raw = reply.body.toString('utf8');
    const h = (n: string): string | undefined => {
      const v = reply.headers[n];
      return Array.isArray(v) ? v[0] : v;
    };
    const signature = h('wechatpay-signature');
    const ok2xx = reply.status >= 200 && reply.status < 300;
    if (!signature) {
      if (ok2xx)
        throw new WechatUnknownError(
          'forged',
          `WeChat Pay's ${reply.status} answer to ${pathOnly(pathAndQuery)} carries no signature: not believed, the outcome is unknown`,
        );
      // Unsigned errors: a 401 (signature refused) is taken as said; anything else stays unknown.
      if (reply.status !== 401)
        throw new WechatUnknownError(
          'provider_error',
          `WeChat Pay answered HTTP ${reply.status} unsigned: the outcome is unknown`,
        );
    } else {
      const ts = h('wechatpay-timestamp') ?? '';
      const n = h('wechatpay-nonce') ?? '';
      const serial = h('wechatpay-serial') ?? '';
      const key = this.platformKeys.get(serial) ?? this.platformKeys.get(serial.toUpperCase());
      if (!key)
        throw new WechatUnknownError(
          'forged',
          `WeChat Pay signed with a key we do not hold (serial ${safe(h('wechatpay-serial'))}): update the platform certificate or public key`,
        );
      if (!verifySha256WithRsa(v3ResponseMessage(ts, n, raw), signature, key)) {
        this.log(`wechat: ${pathOnly(pathAndQuery)}: reply signature does not verify; treated as unknown`);
        throw new WechatUnknownError(
          'forged',
          `WeChat Pay's answer to ${pathOnly(pathAndQuery)} does not verify: not believed, the outcome is unknown`,
        );
      }
      if (!/^\d{1,12}$/.test(ts) || Math.abs(this.now() / 1000 - Number(ts)) >= 300) {
        throw new WechatUnknownError(
          'clock_skew',
          "WeChat Pay's answer is timestamped 5 minutes or more away from this machine's clock: not believed; check the clock (NTP)",
        );
      }
    }
    let json: WireJson = {};
    if (raw.length > 0) {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
          json = parsed as WireJson;
        else throw new Error('not an object');
      } catch (e) {
        throw new WechatUnknownError(
          'provider_error',
          `WeChat Pay's answer (HTTP ${reply.status}) is not a JSON object: the outcome is unknown`,
          e,
        );
      }
    }
    if (reply.status === 401) {
      const msg = String(json.message ?? '');
      if (/timestamp|时间戳|expired|过期/i.test(msg)) {
        throw new ProviderRejectedError(
          'provider.wechat.clock_skew',
          `WeChat Pay refused our request's timestamp: this machine's clock is off by 5 minutes or more. Set the clock (NTP). (${safe(msg)})`,
        );
      }
      throw new ProviderRejectedError(
        'provider.wechat.signerror',
        `${REJECTS.SIGNERROR} (${safe(json.code)}: ${safe(msg)})`,
      );
    }
    if (['MCHIDNOTEXIST', 'APPIDMCHIDNOTMATCH', 'APPIDNOTEXIST'].includes(norm(json.code)))
      this.placeError(json.code, json.message);
    return { status: reply.status, json, raw: reply.body };
  }

  private async send(
    pathAndQuery: string,
    body: string | undefined,
    mtls: boolean,
    method: 'GET' | 'POST' = 'POST',
    v3 = false,
    scenario = false,
  ): Promise<HttpReply> {
    const url = new URL(pathAndQuery, this.base);
    const headers: Record<string, string> = {
      'User-Agent': 'payconnect-wechat/1',
      Accept: v3 ? 'application/json' : 'text/xml',
    };
    if (body !== undefined) headers['Content-Type'] = v3 ? 'application/json' : 'text/xml';
    if (scenario && this.account.scenario) headers[SCENARIO_HEADER] = this.account.scenario;
    if (v3) {
      const ts = String(Math.floor(this.now() / 1000));
      const n = nonce(32);
      const sig = sha256WithRsa(
        v3RequestMessage(method, url.pathname + url.search, ts, n, body ?? ''),
        this.merchantKey,
      );
      headers.Authorization = buildAuthorization({
        mchid: this.account.mchId,
        nonce_str: n,
        timestamp: ts,
        serial_no: this.account.merchantCertSerial,
        signature: sig,
      });
      if (this.account.v3?.publicKeyId && !this.account.v3.platformCertPem)
        headers['Wechatpay-Serial'] = this.account.v3.publicKeyId;
    }
    try {
      return await httpsCall({
        url,
        method,
        headers,
        body,
        ca: this.account.caPem,
        timeoutMs: this.timeoutMs,
        cert: mtls ? this.account.merchantCertPem : undefined,
        key: mtls ? this.account.merchantKeyPem : undefined,
      });
    } catch (e) {
      const kind = e instanceof WechatTransportError ? e.kind : 'reset';
      this.log(`wechat: ${url.pathname}: ${kind}: ${e instanceof Error ? e.message : 'error'}`);
      throw new WechatUnknownError(
        'transport',
        `no usable answer from WeChat Pay for ${url.pathname} (${e instanceof Error ? e.message : 'error'}): the outcome is unknown, query it`,
        e,
      );
    }
  }
}

/** A store id as WeChat Pay's device_info / store out_id: letters, digits, `_-`, ≤ 32. */
function deviceInfo(storeId: string): string {
  return storeId.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32);
}

function pathOnly(p: string): string {
  return p.split('?')[0];
}

/** A vendor string fit for an error message: short, one line, no markup. */
function safe(v: unknown): string {
  return String(v ?? '')
    .replace(/[\r\n<>]/g, ' ')
    .slice(0, 80);
}

function probeProblem(e: unknown, account: WechatAccount): ProbeResult {
  const where = `${account.baseUrl} (merchant ${account.mchId}, API ${account.api})`;
  if (e instanceof ProviderRejectedError) {
    if (e.code === 'provider.wechat.signerror') {
      return {
        ok: false,
        problem: 'wrong_key',
        message: `WeChat Pay refused our signature at ${where}. ${account.api === 'v2' ? 'The API key does not match the one set in 商户平台 → API安全 → API密钥: paste it again (32 characters).' : 'The merchant API certificate, its serial or its private key do not match what WeChat Pay holds: download the API certificate (apiclient_cert.pem, apiclient_key.pem) again and set its serial number.'}`,
      };
    }
    if (e.code === 'provider.wechat.clock_skew') {
      return {
        ok: false,
        problem: 'clock_skew',
        message: `WeChat Pay refused our request's time at ${where}: this machine's clock is 5 minutes or more off. Turn on time synchronisation (NTP) and try again.`,
      };
    }
    if (/appid|mchid/.test(e.code)) {
      return {
        ok: false,
        problem: 'unknown_account',
        message: `WeChat Pay does not know this account at ${where}: ${e.message}`,
      };
    }
    return { ok: false, problem: 'other', message: `WeChat Pay refused the check at ${where}: ${e.message}` };
  }
  if (e instanceof WechatUnknownError) {
    const cause = e.cause;
    if (e.reason === 'transport' && cause instanceof WechatTransportError) {
      if (cause.kind === 'unreachable' || cause.kind === 'timeout') {
        return {
          ok: false,
          problem: 'unreachable',
          message: `Cannot reach WeChat Pay at ${account.baseUrl} (${cause.message}). Check the address, the network and any firewall or proxy between this server and WeChat Pay.`,
        };
      }
      if (cause.kind === 'tls') {
        return {
          ok: false,
          problem: 'tls',
          message: `The secure connection to WeChat Pay at ${account.baseUrl} failed (${cause.message}). Check the server's trusted certificates (for a local gateway: its CA file), and the system clock.`,
        };
      }
    }
    if (e.reason === 'clock_skew') {
      return {
        ok: false,
        problem: 'clock_skew',
        message: `WeChat Pay's answer is timestamped 5 minutes or more away from this machine's clock. Turn on time synchronisation (NTP).`,
      };
    }
    if (e.reason === 'forged') {
      return {
        ok: false,
        problem: account.api === 'v3' ? 'wrong_key' : 'other',
        message: `WeChat Pay's answer at ${where} does not verify: ${account.api === 'v3' ? 'the platform certificate or WeChat Pay public key configured is not the one WeChat Pay signs with — download it again (商户平台 → API安全).' : 'the reply is not signed with our API key — someone between us and WeChat Pay, or a wrong API key; check the network path and the key.'}`,
      };
    }
    return {
      ok: false,
      problem: 'other',
      message: `WeChat Pay's answer at ${where} was unclear: ${e.message}`,
    };
  }
  return {
    ok: false,
    problem: 'other',
    message: `The check against WeChat Pay at ${where} failed: ${e instanceof Error ? e.message : 'unknown error'}`,
  };
}
