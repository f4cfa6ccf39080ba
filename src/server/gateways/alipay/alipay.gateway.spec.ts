/**
 * AlipayProvider end to end against a real local Alipay gateway on 127.0.0.1: every scenario of
 * ../scenarios.ts, the gateway's own checks (signatures, app ids, amounts, codes, idempotency), a forged
 * gateway, cancels and refunds, the bill, the probe, and a restart that keeps the ledger. The official Node
 * SDK (alipay-sdk, test-only) talks to the same gateway as an oracle. No assertion depends on timing: waits
 * poll for a state with a bounded number of tries.
 */
import { generateKeyPairSync, randomInt } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AlipaySdk } from 'alipay-sdk';
import { AlipayAccount, AlipayProvider, AlipayProviderOptions } from '../../providers/alipay/alipay.provider';
import { encodeForm } from '../../providers/alipay/form';
import { chinaDate, chinaTimestamp } from '../../providers/alipay/format';
import {
  extractAnswer,
  loadPrivateKey,
  loadPublicKey,
  signRequest,
  verifyAnswer,
} from '../../providers/alipay/sign';
import { ProviderRejectedError, ProviderUnknownError } from '../../providers/provider';
import { SCENARIO_AMOUNTS } from '../scenarios';
import { AlipayGateway, startAlipayGateway } from './alipay.gateway';

jest.setTimeout(60_000);

const code = () => `28${String(randomInt(1e8)).padStart(8, '0')}${String(randomInt(1e8)).padStart(8, '0')}`;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const payId = () => `pay_${Array.from({ length: 25 }, () => ALNUM[randomInt(ALNUM.length)]).join('')}`;
const cny = (value: number) => ({ value, currency: 'CNY' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything a provider logged or threw, to prove no secret ever leaves it. */
const said: string[] = [];
const codesUsed: string[] = [];

async function until<T>(f: () => Promise<T>, ok: (t: T) => boolean, tries = 200): Promise<T> {
  let last = await f();
  for (let k = 0; k < tries && !ok(last); k++) {
    await sleep(20);
    last = await f();
  }
  return last;
}

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    said.push((e as Error).message);
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('AlipayProvider against the local Alipay gateway', () => {
  let gw: AlipayGateway;
  let account: AlipayAccount;
  const provider = (extra: Partial<AlipayAccount> = {}, opts: AlipayProviderOptions = {}) =>
    new AlipayProvider(
      { ...account, ...extra },
      { timeoutMs: 3_000, cancelPauseMs: 5, log: (l) => said.push(l), ...opts },
    );
  const charge = (p: AlipayProvider, value: number, outTradeNo = payId(), c = code()) => {
    codesUsed.push(c);
    return p.charge({ outTradeNo, amount: cny(value), code: c, storeId: 'demo' });
  };

  beforeAll(async () => {
    gw = await startAlipayGateway({ speed: 100 });
    account = { ...gw.merchant(), gatewayUrl: gw.url };
  });
  afterAll(async () => {
    await gw.close();
  });

  describe('every scenario', () => {
    it('an amount not in the table succeeds at once, and the query agrees', async () => {
      const p = provider();
      const id = payId();
      const r = await charge(p, 1234, id);
      expect(r).toEqual({
        outcome: 'succeeded',
        tradeNo: expect.stringMatching(/^\d{8}22001\d{15}$/),
        brand: 'alipay',
      });
      expect(await p.query(id)).toEqual({ state: 'succeeded', tradeNo: (r as { tradeNo: string }).tradeNo });
    });

    it(`wait_then_success (${fen('wait_then_success')}): user_paying, then the query says paid`, async () => {
      const p = provider();
      const id = payId();
      expect(await charge(p, fen('wait_then_success'), id)).toMatchObject({ outcome: 'user_paying' });
      const q = await until(
        () => p.query(id),
        (s) => s.state === 'succeeded',
      );
      expect(q.state).toBe('succeeded');
    });

    it(`wait_then_timeout (${fen('wait_then_timeout')}): waits until our cancel closes it`, async () => {
      const p = provider();
      const id = payId();
      expect(await charge(p, fen('wait_then_timeout'), id)).toMatchObject({ outcome: 'user_paying' });
      expect(await p.query(id)).toEqual({ state: 'user_paying' });
      expect(await p.cancel(id)).toEqual({ reversed: false });
      expect(await p.query(id)).toEqual({ state: 'closed' });
    });

    it('wait_then_timeout: without a cancel the gateway closes the trade itself (3 min / speed)', async () => {
      const fast = await startAlipayGateway({ speed: 3_000 });
      try {
        const p = new AlipayProvider({ ...fast.merchant(), gatewayUrl: fast.url });
        const id = payId();
        expect(
          await p.charge({
            outTradeNo: id,
            amount: cny(fen('wait_then_timeout')),
            code: code(),
            storeId: 's',
          }),
        ).toMatchObject({ outcome: 'user_paying' });
        expect(
          (
            await until(
              () => p.query(id),
              (s) => s.state === 'closed',
            )
          ).state,
        ).toBe('closed');
      } finally {
        await fast.close();
      }
    });

    it(`insufficient_funds (${fen('insufficient_funds')}) is declined for good`, async () => {
      expect(await charge(provider(), fen('insufficient_funds'))).toMatchObject({
        outcome: 'declined',
        code: 'insufficient_funds',
      });
    });

    it(`code_invalid (${fen('code_invalid')}) is declined as invalid_code`, async () => {
      expect(await charge(provider(), fen('code_invalid'))).toMatchObject({
        outcome: 'declined',
        code: 'invalid_code',
      });
    });

    it(`system_error_then_success (${fen('system_error_then_success')}): unknown, and the query says paid`, async () => {
      const p = provider();
      const id = payId();
      expect(await caught(charge(p, fen('system_error_then_success'), id))).toBeInstanceOf(
        ProviderUnknownError,
      );
      expect((await p.query(id)).state).toBe('succeeded');
    });

    it(`system_error_not_created (${fen('system_error_not_created')}): unknown, and the query finds nothing`, async () => {
      const p = provider();
      const id = payId();
      expect(await caught(charge(p, fen('system_error_not_created'), id))).toBeInstanceOf(
        ProviderUnknownError,
      );
      expect(await p.query(id)).toEqual({ state: 'not_found' });
    });

    it(`duplicate_order_no (${fen('duplicate_order_no')}) is declined`, async () => {
      expect(await charge(provider(), fen('duplicate_order_no'))).toMatchObject({
        outcome: 'declined',
        code: 'duplicate_order_no',
      });
    });

    it(`cancel_race (${fen('cancel_race')}): the cancel lands as the customer pays and refunds it`, async () => {
      const p = provider();
      const id = payId();
      expect(await charge(p, fen('cancel_race'), id)).toMatchObject({ outcome: 'user_paying' });
      expect(await p.cancel(id)).toEqual({ reversed: true });
      expect(await p.query(id)).toEqual({ state: 'closed' });
      expect(await p.cancel(id)).toEqual({ reversed: true });
    });

    it(`no_answer_then_success (${fen('no_answer_then_success')}): the call times out, the query says paid`, async () => {
      const p = provider({}, { timeoutMs: 300 });
      const id = payId();
      const e = await caught(charge(p, fen('no_answer_then_success'), id));
      expect(e).toBeInstanceOf(ProviderUnknownError);
      expect((await provider().query(id)).state).toBe('succeeded');
    });

    it('the payconnect-scenario header overrides the amount', async () => {
      expect(await charge(provider({ scenario: 'insufficient_funds' }), 500)).toMatchObject({
        outcome: 'declined',
        code: 'insufficient_funds',
      });
    });
  });

  describe('codes, amounts and order numbers', () => {
    it('a payment code works once: the second trade with it is declined', async () => {
      const p = provider();
      const c = code();
      expect((await charge(p, 100, payId(), c)).outcome).toBe('succeeded');
      expect(await charge(p, 100, payId(), c)).toMatchObject({ outcome: 'declined', code: 'invalid_code' });
    });

    it('a code that is not an Alipay code (prefix 25-30, 16-24 digits) is declined', async () => {
      const p = provider();
      for (const bad of [
        '131234567890123456',
        '28123456789012',
        '2812345678901234567890123',
        '28abc45678901234567',
      ]) {
        expect(await charge(p, 100, payId(), bad)).toMatchObject({
          outcome: 'declined',
          code: 'invalid_code',
        });
      }
      expect((await charge(p, 100, payId(), `25${'1'.repeat(14)}`)).outcome).toBe('succeeded');
      expect((await charge(p, 100, payId(), `30${'7'.repeat(22)}`)).outcome).toBe('succeeded');
    });

    it('the same order number and parameters again: the real state (paid → asked and reported paid)', async () => {
      const p = provider();
      const id = payId();
      const c = code();
      const first = await charge(p, 777, id, c);
      expect(await charge(p, 777, id, c)).toEqual(first);
      expect(gw.trades().filter((t) => t.outTradeNo === id)).toHaveLength(1);
    });

    it('the same order number with other parameters is refused (ACQ.CONTEXT_INCONSISTENT)', async () => {
      const p = provider();
      const id = payId();
      const c = code();
      expect((await charge(p, fen('wait_then_timeout'), id, c)).outcome).toBe('user_paying');
      expect(await charge(p, 5000, id, c)).toMatchObject({ outcome: 'declined', code: 'duplicate_order_no' });
      expect(await charge(p, fen('wait_then_timeout'), id, c)).toMatchObject({ outcome: 'user_paying' });
    });

    it('amounts: 1 fen and 100000000.00 yuan pass, one fen more and other currencies are refused before sending', async () => {
      const p = provider();
      const small = payId();
      const big = payId();
      expect((await charge(p, 1, small)).outcome).toBe('succeeded');
      expect((await charge(p, 10_000_000_000, big)).outcome).toBe('succeeded');
      const rows = gw.trades();
      expect(rows.find((t) => t.outTradeNo === small)?.totalFen).toBe(1);
      expect(rows.find((t) => t.outTradeNo === big)?.totalFen).toBe(10_000_000_000);
      const before = gw.trades().length;
      expect(await caught(charge(p, 10_000_000_001))).toMatchObject({ code: 'invalid_amount' });
      expect(await caught(charge(p, 0))).toBeInstanceOf(ProviderRejectedError);
      expect(
        await caught(
          p.charge({
            outTradeNo: payId(),
            amount: { value: 100, currency: 'USD' },
            code: code(),
            storeId: 's',
          }),
        ),
      ).toMatchObject({ code: 'unsupported_currency' });
      expect(gw.trades().length).toBe(before);
    });
  });

  describe("the gateway's own checks, on hand-made requests", () => {
    const send = async (
      params: Record<string, string>,
      signWith?: string,
      tamper?: (q: Record<string, string>) => void,
    ) => {
      const { biz_content, ...system } = params;
      let all = { ...params };
      if (signWith) all = signRequest(all, loadPrivateKey(signWith));
      const q = { ...system, ...(all.sign ? { sign: all.sign } : {}) };
      const body: Record<string, string> = biz_content !== undefined ? { biz_content } : {};
      tamper?.(body);
      const res = await fetch(`${gw.url}?${encodeForm(q)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' },
        body: encodeForm(body),
      });
      const text = await res.text();
      const method = params.method ?? 'none';
      const a = extractAnswer(text, method);
      expect(verifyAnswer(a, loadPublicKey(account.alipayPublicKeyPem))).toBe(true);
      return a;
    };
    const base = (method: string, biz: object) => ({
      app_id: account.appId,
      method,
      format: 'JSON',
      charset: 'utf-8',
      sign_type: 'RSA2',
      timestamp: chinaTimestamp(Date.now()),
      version: '1.0',
      biz_content: JSON.stringify(biz),
    });
    const payBiz = (amount: string) => ({
      out_trade_no: payId(),
      scene: 'bar_code',
      auth_code: code(),
      subject: 'x',
      total_amount: amount,
    });

    it('one changed byte in biz_content → 40002 isv.invalid-signature, under the method key, signed', async () => {
      const a = await send(base('alipay.trade.pay', payBiz('1.00')), account.appPrivateKeyPem, (b) => {
        b.biz_content = b.biz_content.replace('"1.00"', '"2.00"');
      });
      expect(a.rootKey).toBe('alipay_trade_pay_response');
      expect(a.response).toMatchObject({ code: '40002', sub_code: 'isv.invalid-signature' });
      expect(gw.trades().some((t) => t.totalFen === 200 && t.subject === 'x')).toBe(false);
    });

    it('a key that is not the app key, an unknown app id, a missing sign, an unknown method', async () => {
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString();
      expect((await send(base('alipay.trade.query', { out_trade_no: 'x' }), other)).response).toMatchObject({
        code: '40002',
        sub_code: 'isv.invalid-signature',
      });
      expect(
        (
          await send(
            { ...base('alipay.trade.query', { out_trade_no: 'x' }), app_id: '2021999999999999' },
            account.appPrivateKeyPem,
          )
        ).response,
      ).toMatchObject({ code: '40002', sub_code: 'isv.invalid-app-id' });
      expect((await send(base('alipay.trade.query', { out_trade_no: 'x' }))).response).toMatchObject({
        code: '40001',
        sub_code: 'isv.missing-signature',
      });
      const unknown = await send({ ...base('alipay.trade.nope', {}) }, account.appPrivateKeyPem);
      expect(unknown.rootKey).toBe('error_response');
      expect(unknown.response).toMatchObject({ code: '40002', sub_code: 'isv.invalid-method' });
    });

    it('amount limits in yuan: over 100000000 → ACQ.TOTAL_FEE_EXCEED; three decimals or 0 → ACQ.INVALID_PARAMETER', async () => {
      expect(
        (await send(base('alipay.trade.pay', payBiz('100000000.01')), account.appPrivateKeyPem)).response,
      ).toMatchObject({ sub_code: 'ACQ.TOTAL_FEE_EXCEED' });
      expect(
        (await send(base('alipay.trade.pay', payBiz('0.001')), account.appPrivateKeyPem)).response,
      ).toMatchObject({ sub_code: 'ACQ.INVALID_PARAMETER' });
      expect(
        (await send(base('alipay.trade.pay', payBiz('0.00')), account.appPrivateKeyPem)).response,
      ).toMatchObject({ sub_code: 'ACQ.INVALID_PARAMETER' });
      expect(
        (await send(base('alipay.trade.pay', payBiz('100000000')), account.appPrivateKeyPem)).response,
      ).toMatchObject({ code: '10000', total_amount: '100000000.00' });
    });

    it('a timestamp from a skewed clock → 40002 isv.invalid-timestamp', async () => {
      const a = await send(
        {
          ...base('alipay.trade.query', { out_trade_no: 'x' }),
          timestamp: chinaTimestamp(Date.now() - 3600_000),
        },
        account.appPrivateKeyPem,
      );
      expect(a.response).toMatchObject({ code: '40002', sub_code: 'isv.invalid-timestamp' });
    });
  });

  describe('a forged gateway (answers signed with a wrong key)', () => {
    it('never yields succeeded, for any scenario, through charge or query', async () => {
      const forged = await startAlipayGateway({ speed: 100, forge: true });
      try {
        const p = new AlipayProvider(
          { ...forged.merchant(), gatewayUrl: forged.url },
          { timeoutMs: 300, log: (l) => said.push(l) },
        );
        for (const value of [100, ...Object.keys(SCENARIO_AMOUNTS).map(Number)]) {
          const id = payId();
          const c = code();
          codesUsed.push(c);
          const r = await p
            .charge({ outTradeNo: id, amount: cny(value), code: c, storeId: 's' })
            .catch((e: Error) => e);
          expect(r).toBeInstanceOf(ProviderUnknownError);
          const q = await p.query(id).catch((e: Error) => e);
          expect(q).toBeInstanceOf(ProviderUnknownError);
        }
        // The forged gateway really charged them: only its signature gives it away.
        expect(forged.trades().some((t) => t.status === 'TRADE_SUCCESS')).toBe(true);
        expect(await p.probe()).toMatchObject({ ok: false, problem: 'wrong_key' });
      } finally {
        await forged.close();
      }
    });

    it('an answer signed over / but sent with \\/ still verifies (the Java SDK retry)', async () => {
      const quirky = await startAlipayGateway({ signUnescaped: true });
      try {
        const p = new AlipayProvider({ ...quirky.merchant(), gatewayUrl: quirky.url });
        const bill = await p.bill(chinaDate(Date.now()));
        expect(bill).toEqual([]);
      } finally {
        await quirky.close();
      }
    });
  });

  describe('cancel, refunds and the bill', () => {
    it('cancel honours retry_flag=Y: retried inside the call, and unknown when it persists', async () => {
      const p = provider();
      const id = payId();
      await charge(p, fen('wait_then_timeout'), id);
      gw.setCancelRetries(2);
      expect(await p.cancel(id)).toEqual({ reversed: false });
      const id2 = payId();
      await charge(p, fen('wait_then_timeout'), id2);
      gw.setCancelRetries(3);
      expect(await caught(p.cancel(id2))).toBeInstanceOf(ProviderUnknownError);
      gw.setCancelRetries(0);
      expect(await p.cancel(id2)).toEqual({ reversed: false });
    });

    it('a cancel of a paid trade reverses it; a cancel before any pay closes the order number', async () => {
      const p = provider();
      const id = payId();
      await charge(p, 300, id);
      expect(await p.cancel(id)).toEqual({ reversed: true });
      const never = payId();
      expect(await p.cancel(never)).toEqual({ reversed: false });
      expect(await charge(p, 300, never)).toMatchObject({ outcome: 'declined', code: 'trade_closed' });
    });

    it('refunds are idempotent per refundNo, capped at the amount paid, and queryable', async () => {
      const p = provider();
      const id = payId();
      await charge(p, 1000, id);
      expect(await p.refund(id, 'ref_1', cny(400))).toEqual({ refundNo: 'ref_1' });
      expect(await p.refund(id, 'ref_1', cny(400))).toEqual({ refundNo: 'ref_1' });
      expect(gw.trades().find((t) => t.outTradeNo === id)?.refunds).toHaveLength(1);
      expect(await p.queryRefund(id, 'ref_1')).toEqual({ state: 'succeeded' });
      expect(await p.queryRefund(id, 'ref_2')).toEqual({ state: 'not_found' });
      expect(await p.queryRefund(payId(), 'ref_1')).toEqual({ state: 'not_found' });
      expect(await caught(p.refund(id, 'ref_2', cny(601)))).toMatchObject({ code: 'refund_exceeds_paid' });
      expect(await p.refund(id, 'ref_2', cny(600))).toEqual({ refundNo: 'ref_2' });
      expect(await p.query(id)).toEqual({ state: 'closed' });
    });

    it("the day's bill lists our payments and refunds with their amounts", async () => {
      const p = provider();
      const id = payId();
      await charge(p, 2500, id);
      await p.refund(id, 'bill_ref', cny(100));
      const rows = await p.bill(chinaDate(Date.now()));
      const mine = rows.filter((r) => r.outTradeNo === id);
      expect(mine).toEqual([
        expect.objectContaining({ kind: 'payment', amount: 2500, at: expect.stringMatching(/\+08:00$/) }),
        expect.objectContaining({ kind: 'refund', amount: 100, refundNo: 'bill_ref' }),
      ]);
      const paid = gw
        .trades()
        .filter((t) => t.paidAt !== undefined && chinaDate(t.paidAt) === chinaDate(Date.now()));
      expect(rows.filter((r) => r.kind === 'payment')).toHaveLength(paid.length);
      expect(await caught(p.bill('2999-01-01'))).toMatchObject({ code: 'bill_not_ready' });
    });
  });

  describe('probe', () => {
    it('good credentials: ok', async () => {
      expect(await provider().probe()).toMatchObject({ ok: true });
    });
    it('a wrong app private key: wrong_key, saying which key to fix', async () => {
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString();
      const r = await provider({ appPrivateKeyPem: other }).probe();
      expect(r).toMatchObject({ ok: false, problem: 'wrong_key' });
      expect(r.message).toMatch(/app private key/);
      expect(await caught(charge(provider({ appPrivateKeyPem: other }), 100))).toMatchObject({
        code: 'alipay_wrong_key',
      });
    });
    it("a wrong Alipay public key: wrong_key, naming Alipay's public key", async () => {
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
        .publicKey.export({ type: 'spki', format: 'pem' })
        .toString();
      const r = await provider({ alipayPublicKeyPem: other }).probe();
      expect(r).toMatchObject({ ok: false, problem: 'wrong_key' });
      expect(r.message).toMatch(/Alipay public key/);
    });
    it('an unknown app id: unknown_account', async () => {
      expect(await provider({ appId: '2021000000000000' }).probe()).toMatchObject({
        ok: false,
        problem: 'unknown_account',
      });
    });
    it('a clock an hour off: clock_skew', async () => {
      expect(await provider({}, { now: () => Date.now() - 3600_000 }).probe()).toMatchObject({
        ok: false,
        problem: 'clock_skew',
      });
    });
    it('nobody listening: unreachable', async () => {
      const gone = await startAlipayGateway();
      const url = gone.url;
      await gone.close();
      const r = await provider({ gatewayUrl: url }).probe();
      expect(r).toMatchObject({ ok: false, problem: 'unreachable' });
      expect(await caught(charge(provider({ gatewayUrl: url }), 100))).toBeInstanceOf(ProviderUnknownError);
    });
  });

  describe('the official Node SDK (oracle) against the gateway', () => {
    it('its signed pay is accepted and our signed answer passes its verification', async () => {
      const sdk = new AlipaySdk({
        appId: account.appId,
        privateKey: account.appPrivateKeyPem,
        keyType: 'PKCS8',
        alipayPublicKey: account.alipayPublicKeyPem,
        gateway: gw.url,
        signType: 'RSA2',
        camelcase: false,
      });
      const id = payId();
      // The SDK writes the timestamp in the machine's zone; allow for a machine that is not in China time.
      const lenient = await startAlipayGateway({ maxSkewMs: 24 * 3600_000 });
      try {
        const s2 = new AlipaySdk({
          ...sdk.config,
          gateway: lenient.url,
          appId: lenient.merchant().appId,
          privateKey: lenient.merchant().appPrivateKeyPem,
          alipayPublicKey: lenient.merchant().alipayPublicKeyPem,
        });
        const r = await s2.exec('alipay.trade.pay', {
          bizContent: {
            out_trade_no: id,
            scene: 'bar_code',
            auth_code: code(),
            subject: '测试',
            total_amount: '0.01',
          },
        });
        expect(r).toMatchObject({ code: '10000', out_trade_no: id, total_amount: '0.01' });
        const q = await s2.exec('alipay.trade.query', { bizContent: { out_trade_no: id } });
        expect(q).toMatchObject({ code: '10000', trade_status: 'TRADE_SUCCESS' });
      } finally {
        await lenient.close();
      }
    });
  });

  it('no log line or error message holds a payment code, a key or a signature', () => {
    expect(said.length).toBeGreaterThan(20);
    const all = said.join('\n');
    for (const c of codesUsed) expect(all).not.toContain(c);
    expect(all).not.toMatch(/BEGIN|PRIVATE|sign=|"sign"/);
  });
});

describe('the gateway under fuzz', () => {
  it('random query and body bytes: always a signed refusal, never a trade, never a crash', async () => {
    const gw = await startAlipayGateway();
    try {
      const key = loadPublicKey(gw.merchant().alipayPublicKeyPem);
      const seed = Date.now() % 100_000;
      let s = seed || 1;
      const r = () => (s = (s * 48271) % 2147483647) / 2147483647;
      const pieces = [
        'method=alipay.trade.pay',
        'app_id=' + gw.merchant().appId,
        'sign=',
        'sign_type=RSA2',
        'charset=gbk',
        'biz_content=%7B',
        '%',
        '&',
        '=',
        '+',
        '%E4%B8',
        'timestamp=2026-01-01+00:00:00',
        'version=1.0',
      ];
      for (let k = 0; k < 150; k++) {
        const part = () =>
          Array.from({ length: Math.floor(r() * 6) }, () =>
            r() < 0.7
              ? pieces[Math.floor(r() * pieces.length)]
              : String.fromCharCode(33 + Math.floor(r() * 94)),
          ).join('');
        const res = await fetch(`${gw.url}?${encodeURI(part())}`, { method: 'POST', body: part() });
        const text = await res.text();
        expect(res.status).toBe(200);
        const a = extractAnswer(text, 'alipay.trade.pay');
        expect(verifyAnswer(a, key)).toBe(true);
        expect(a.response.code).not.toBe('10000');
      }
      expect(gw.trades()).toEqual([]);
    } finally {
      await gw.close();
    }
  });
});

describe('the gateway with a data directory', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'alipay-gw-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const app = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = () => ({
    appId: '2021000000000077',
    appPrivateKeyPem: app.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    alipayPublicKeyPem: readFileSync(path.join(dir, 'gateway-public-key.pem'), 'utf8'),
  });

  let later = '';
  it('keeps its keys, its demo merchant, added apps and every trade across a restart', async () => {
    const first = await startAlipayGateway({ dataDir: dir, speed: 100 });
    const m = first.merchant();
    const p1 = new AlipayProvider({ ...m, gatewayUrl: first.url });
    const paid = payId();
    const waiting = payId();
    const c = code();
    await p1.charge({ outTradeNo: paid, amount: cny(4200), code: c, storeId: 's' });
    await p1.charge({
      outTradeNo: waiting,
      amount: cny(fen('wait_then_timeout')),
      code: code(),
      storeId: 's',
    });
    await p1.refund(paid, 'r1', cny(200));
    await first.close();
    for (const f of ['gateway-private-key.pem', 'merchant-app-private-key.pem']) {
      expect(statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    }

    // A crash mid-write leaves a torn last line: it was never answered, so it is dropped.
    appendFileSync(path.join(dir, 'ledger.jsonl'), '{"t":"trade","trade":{"appId":"20');
    const second = await startAlipayGateway({ dataDir: dir, speed: 100 });
    try {
      expect(second.merchant()).toEqual(m);
      const p2 = new AlipayProvider({ ...second.merchant(), gatewayUrl: second.url });
      expect((await p2.query(paid)).state).toBe('succeeded');
      expect(await p2.query(waiting)).toEqual({ state: 'user_paying' });
      expect(await p2.queryRefund(paid, 'r1')).toEqual({ state: 'succeeded' });
      // The code stays spent.
      expect(await p2.charge({ outTradeNo: payId(), amount: cny(100), code: c, storeId: 's' })).toMatchObject(
        { outcome: 'declined', code: 'invalid_code' },
      );
      expect(
        second
          .trades()
          .map((t) => t.outTradeNo)
          .sort(),
      ).toEqual([paid, waiting].sort());
      // A trade made after the torn line survives the next restart.
      later = payId();
      await p2.charge({ outTradeNo: later, amount: cny(300), code: code(), storeId: 's' });
      second.addApp('2021000000000077', app.publicKey.export({ type: 'spki', format: 'pem' }).toString());
      expect(await new AlipayProvider({ ...other(), gatewayUrl: second.url }).probe()).toMatchObject({
        ok: true,
      });
    } finally {
      await second.close();
    }
    // The added app is kept too; order numbers are per app.
    const third = await startAlipayGateway({ dataDir: dir });
    try {
      const p3 = new AlipayProvider({ ...other(), gatewayUrl: third.url });
      expect(await p3.probe()).toMatchObject({ ok: true });
      expect(await p3.query(paid)).toEqual({ state: 'not_found' });
      expect(
        third
          .trades()
          .map((t) => t.outTradeNo)
          .sort(),
      ).toEqual([paid, waiting, later].sort());
    } finally {
      await third.close();
    }
  });
});

function fen(name: string): number {
  return Number(Object.entries(SCENARIO_AMOUNTS).find(([, s]) => s === name)![0]);
}

describe('the gateway: timeout_express', () => {
  it('an unpaid trade closes after its timeout_express (divided by speed)', async () => {
    const gw = await startAlipayGateway({ speed: 600 });
    try {
      const m = gw.merchant();
      const id = payId();
      const biz = JSON.stringify({
        out_trade_no: id,
        scene: 'bar_code',
        auth_code: code(),
        subject: 's',
        total_amount: '91.02',
        timeout_express: '1m',
      });
      const system = {
        app_id: m.appId,
        method: 'alipay.trade.pay',
        format: 'JSON',
        charset: 'utf-8',
        sign_type: 'RSA2',
        timestamp: chinaTimestamp(Date.now()),
        version: '1.0',
      };
      const signed = signRequest({ ...system, biz_content: biz }, loadPrivateKey(m.appPrivateKeyPem));
      const res = await fetch(`${gw.url}?${encodeForm({ ...system, sign: signed.sign })}`, {
        method: 'POST',
        body: encodeForm({ biz_content: biz }),
      });
      expect(extractAnswer(await res.text(), 'alipay.trade.pay').response).toMatchObject({ code: '10003' });
      const t = gw.trades().find((x) => x.outTradeNo === id)!;
      expect(t.closeAt - t.createdAt).toBe(100); // 60 s / 600
      const p = new AlipayProvider({ ...m, gatewayUrl: gw.url });
      expect(
        (
          await until(
            () => p.query(id),
            (q) => q.state === 'closed',
          )
        ).state,
      ).toBe('closed');
    } finally {
      await gw.close();
    }
  });
});

describe('the gateway and the GBK charset', () => {
  it('verifies a request signed over GBK bytes and reads its Chinese subject', async () => {
    const gw = await startAlipayGateway();
    try {
      const m = gw.merchant();
      const biz = JSON.stringify({
        out_trade_no: payId(),
        scene: 'bar_code',
        auth_code: code(),
        subject: '中文测试',
        total_amount: '1.00',
      });
      const system = {
        app_id: m.appId,
        method: 'alipay.trade.pay',
        format: 'JSON',
        charset: 'gbk',
        sign_type: 'RSA2',
        timestamp: chinaTimestamp(Date.now()),
        version: '1.0',
      };
      const signed = signRequest(
        { ...system, biz_content: biz },
        loadPrivateKey(m.appPrivateKeyPem),
        'RSA2',
        'gbk',
      );
      const post = (sign: string) =>
        fetch(`${gw.url}?${encodeForm({ ...system, sign }, 'gbk')}`, {
          method: 'POST',
          body: encodeForm({ biz_content: biz }, 'gbk'),
        }).then((r) => r.text());
      const good = extractAnswer(await post(signed.sign), 'alipay.trade.pay');
      expect(good.response).toMatchObject({ code: '10000', total_amount: '1.00' });
      expect(gw.trades()[0].subject).toBe('中文测试');
      // The same request signed over its UTF-8 bytes does not verify as GBK.
      const utf8 = signRequest({ ...system, biz_content: biz }, loadPrivateKey(m.appPrivateKeyPem));
      expect(extractAnswer(await post(utf8.sign), 'alipay.trade.pay').response).toMatchObject({
        sub_code: 'isv.invalid-signature',
      });
    } finally {
      await gw.close();
    }
  });
});
