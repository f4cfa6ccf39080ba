/**
 * WechatProvider end to end against a real local WeChat Pay gateway on 127.0.0.1 (HTTPS, its own CA, mutual
 * TLS on /secapi), on API v2 (MD5 and HMAC-SHA256) and v3: every scenario of gateways/scenarios.ts, the
 * unknown-outcome cases, forged and unsigned answers, recall, a code used twice, refunds, bills and probe.
 * Waiting is done by polling the provider; no assertion depends on timing.
 */
import { randomBytes } from 'node:crypto';
import { ProviderRejectedError, ProviderUnknownError, QueryResult } from '../provider';
import { WechatGatewayMaterial, generateMaterial } from '../../gateways/wechat/certs';
import { WechatGateway, startWechatGateway } from '../../gateways/wechat/wechat.gateway';
import { WECHAT_POLICY, WechatAccount, WechatProvider, WechatUnknownError } from './wechat.provider';
import { chinaDate } from './time';

jest.setTimeout(60_000);

let material: WechatGatewayMaterial;
let gw: WechatGateway;

beforeAll(async () => {
  material = await generateMaterial();
  gw = await startWechatGateway({ material, speed: 40 });
});
afterAll(async () => {
  await gw?.close();
});

let seq = 0;
function payId(): string {
  return `pay_${randomBytes(12).toString('hex')}${String(++seq).padStart(1, '0')}`
    .slice(0, 29)
    .padEnd(29, '0');
}
function code(): string {
  return (
    '13' +
    String(Date.now() % 1e8).padStart(8, '0') +
    String(Math.floor(Math.random() * 1e8)).padStart(8, '0')
  );
}

type Variant = { label: string; account: (g: WechatGateway) => WechatAccount };
const v2 = (signType: 'MD5' | 'HMAC-SHA256'): Variant => ({
  label: `v2 ${signType}`,
  account: (g) => {
    const m = g.merchant();
    return {
      api: 'v2',
      appId: m.appId,
      mchId: m.mchId,
      baseUrl: g.url,
      caPem: g.caPem,
      merchantCertPem: m.merchantCertPem,
      merchantKeyPem: m.merchantKeyPem,
      merchantCertSerial: m.merchantCertSerial,
      v2: { apiKey: m.apiKey, signType },
    };
  },
});
const v3 = (withPublicKey: boolean): Variant => ({
  label: withPublicKey ? 'v3 (WeChat Pay public key)' : 'v3 (platform certificate)',
  account: (g) => {
    const m = g.merchant();
    return {
      api: 'v3',
      appId: m.appId,
      mchId: m.mchId,
      baseUrl: g.url,
      caPem: g.caPem,
      merchantCertPem: m.merchantCertPem,
      merchantKeyPem: m.merchantKeyPem,
      merchantCertSerial: m.merchantCertSerial,
      v3: withPublicKey
        ? { apiV3Key: m.apiV3Key, publicKeyPem: m.publicKeyPem, publicKeyId: m.publicKeyId }
        : { apiV3Key: m.apiV3Key, platformCertPem: m.platformCertPem },
    };
  },
});

async function until(
  p: WechatProvider,
  outTradeNo: string,
  want: QueryResult['state'],
): Promise<QueryResult> {
  for (let i = 0; i < 400; i++) {
    const q = await p.query(outTradeNo);
    if (q.state === want) return q;
    await new Promise((r) => setTimeout(r, 25));
  }
  return p.query(outTradeNo);
}

const cny = (value: number) => ({ value, currency: 'CNY' });

describe.each([v2('MD5'), v2('HMAC-SHA256'), v3(false), v3(true)])('WechatProvider $label', (variant) => {
  let sut: WechatProvider;
  const fresh = (over: Partial<WechatAccount> = {}, opts = {}) =>
    new WechatProvider({ ...variant.account(gw), ...over }, opts);
  beforeEach(() => {
    gw.testMode.forged = false;
    gw.testMode.unsignedV3 = false;
    sut = fresh();
  });

  it('charges, queries, refunds (idempotently) and bills a plain payment', async () => {
    const id = payId();
    const r = await sut.charge({ outTradeNo: id, amount: cny(1234), code: code(), storeId: 'store-1' });
    expect(r).toEqual({ outcome: 'succeeded', tradeNo: expect.stringMatching(/^4200\d+/), brand: 'wechat' });
    expect(await sut.query(id)).toEqual({ state: 'succeeded', tradeNo: (r as { tradeNo: string }).tradeNo });
    const refundNo = `ref_${id.slice(4)}`;
    expect(await sut.refund(id, refundNo, cny(234))).toEqual({ refundNo });
    expect(await sut.refund(id, refundNo, cny(234))).toEqual({ refundNo });
    expect(await sut.queryRefund(id, refundNo)).toEqual({ state: 'succeeded' });
    expect(await sut.queryRefund(id, `ref_${payId().slice(4)}`)).toEqual({ state: 'not_found' });
    expect(gw.trades().find((t) => t.outTradeNo === id)?.refunds).toHaveLength(1);
    const rows = await sut.bill(chinaDate(Date.now()));
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'payment',
          outTradeNo: id,
          amount: 1234,
          at: expect.stringMatching(/\+08:00$/),
        }),
        expect.objectContaining({ kind: 'refund', outTradeNo: id, refundNo, amount: 234 }),
      ]),
    );
    expect(await sut.bill('2001-01-01')).toEqual([]);
  });

  it('wait_then_success (9101): user_paying, then a query says paid', async () => {
    const id = payId();
    expect(await sut.charge({ outTradeNo: id, amount: cny(9101), code: code(), storeId: 's' })).toMatchObject(
      { outcome: 'user_paying' },
    );
    expect(await until(sut, id, 'succeeded')).toMatchObject({ state: 'succeeded' });
  });

  it('over 1000 yuan asks for the password: user_paying, then paid', async () => {
    const id = payId();
    expect(
      await sut.charge({ outTradeNo: id, amount: cny(100_001), code: code(), storeId: 's' }),
    ).toMatchObject({ outcome: 'user_paying' });
    expect(await until(sut, id, 'succeeded')).toMatchObject({ state: 'succeeded' });
  });

  it('wait_then_timeout (9102): the reverse answers "call again" (recall=Y) first, then closes the trade', async () => {
    const id = payId();
    expect(await sut.charge({ outTradeNo: id, amount: cny(9102), code: code(), storeId: 's' })).toMatchObject(
      { outcome: 'user_paying' },
    );
    const later = fresh(); // the server after the 15 s wait: no memory of the charge time
    const first = await later.cancel(id).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(WechatUnknownError);
    expect((first as WechatUnknownError).reason).toBe('recall');
    expect(await later.cancel(id)).toEqual({ reversed: false });
    expect(await sut.query(id)).toEqual({ state: 'closed' });
  });

  it('refuses a reverse sooner than 15 s after its own charge (the server retries)', async () => {
    const id = payId();
    await sut.charge({ outTradeNo: id, amount: cny(9102), code: code(), storeId: 's' });
    const e = await sut.cancel(id).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ProviderUnknownError);
    expect((e as WechatUnknownError).reason).toBe('too_early');
    expect(WECHAT_POLICY.cancelNotBeforeMs).toBe(15_000);
    // A server sped up for local gateways shortens the guard by the same factor.
    const sped = fresh({}, { cancelNotBeforeMs: 0 });
    const id2 = payId();
    await sped.charge({ outTradeNo: id2, amount: cny(9108), code: code(), storeId: 's' });
    expect(await sped.cancel(id2)).toEqual({ reversed: true });
  });

  it('insufficient_funds (9103) and code_invalid (9104) are declined for good', async () => {
    expect(
      await sut.charge({ outTradeNo: payId(), amount: cny(9103), code: code(), storeId: 's' }),
    ).toMatchObject({ outcome: 'declined', code: 'insufficient_funds' });
    const id = payId();
    expect(await sut.charge({ outTradeNo: id, amount: cny(9104), code: code(), storeId: 's' })).toMatchObject(
      { outcome: 'declined', code: 'invalid_code' },
    );
  });

  it('system_error_then_success (9105): unknown, and a query says paid', async () => {
    const id = payId();
    await expect(
      sut.charge({ outTradeNo: id, amount: cny(9105), code: code(), storeId: 's' }),
    ).rejects.toBeInstanceOf(ProviderUnknownError);
    expect(await sut.query(id)).toMatchObject({ state: 'succeeded' });
  });

  it('system_error_not_created (9106): unknown, and a query says not found', async () => {
    const id = payId();
    await expect(
      sut.charge({ outTradeNo: id, amount: cny(9106), code: code(), storeId: 's' }),
    ).rejects.toBeInstanceOf(ProviderUnknownError);
    expect(await sut.query(id)).toEqual({ state: 'not_found' });
  });

  it('duplicate_order_no (9107) is declined', async () => {
    expect(
      await sut.charge({ outTradeNo: payId(), amount: cny(9107), code: code(), storeId: 's' }),
    ).toMatchObject({ outcome: 'declined', code: 'duplicate_order_no' });
  });

  it('cancel_race (9108): the customer confirms as the reverse lands; the reverse returns the money', async () => {
    const id = payId();
    expect(await sut.charge({ outTradeNo: id, amount: cny(9108), code: code(), storeId: 's' })).toMatchObject(
      { outcome: 'user_paying' },
    );
    expect(await fresh().cancel(id)).toEqual({ reversed: true });
    expect(await sut.query(id)).toEqual({ state: 'closed' });
  });

  it('no_answer_then_success (9109): the call times out (unknown), a query says paid', async () => {
    const id = payId();
    const impatient = fresh({}, { timeoutMs: 400 });
    await expect(
      impatient.charge({ outTradeNo: id, amount: cny(9109), code: code(), storeId: 's' }),
    ).rejects.toBeInstanceOf(ProviderUnknownError);
    expect(await sut.query(id)).toMatchObject({ state: 'succeeded' });
  });

  it('the scenario header overrides the amount', async () => {
    const p = fresh({ scenario: 'insufficient_funds' });
    expect(
      await p.charge({ outTradeNo: payId(), amount: cny(500), code: code(), storeId: 's' }),
    ).toMatchObject({ outcome: 'declined', code: 'insufficient_funds' });
  });

  it('a code works once; a malformed code is declined', async () => {
    const c = code();
    expect(await sut.charge({ outTradeNo: payId(), amount: cny(100), code: c, storeId: 's' })).toMatchObject({
      outcome: 'succeeded',
    });
    expect(await sut.charge({ outTradeNo: payId(), amount: cny(100), code: c, storeId: 's' })).toMatchObject({
      outcome: 'declined',
      code: 'invalid_code',
    });
    expect(
      await sut.charge({ outTradeNo: payId(), amount: cny(100), code: '281234567890123456', storeId: 's' }),
    ).toMatchObject({ outcome: 'declined', code: 'invalid_code' });
  });

  it('the same order charged again (ORDERPAID) reports the real state: paid, one trade', async () => {
    const id = payId();
    const c = code();
    const first = await sut.charge({ outTradeNo: id, amount: cny(321), code: c, storeId: 's' });
    expect(await sut.charge({ outTradeNo: id, amount: cny(321), code: c, storeId: 's' })).toEqual(first);
    expect(gw.trades().filter((t) => t.outTradeNo === id)).toHaveLength(1);
  });

  it('the same order number with another amount (OUT_TRADE_NO_USED) never reports the other payment as this one', async () => {
    const id = payId();
    expect(await sut.charge({ outTradeNo: id, amount: cny(555), code: code(), storeId: 's' })).toMatchObject({
      outcome: 'succeeded',
    });
    await expect(
      sut.charge({ outTradeNo: id, amount: cny(556), code: code(), storeId: 's' }),
    ).rejects.toBeInstanceOf(ProviderUnknownError);
  });

  it('refuses another currency and a fractional amount without calling', async () => {
    await expect(
      sut.charge({
        outTradeNo: payId(),
        amount: { value: 100, currency: 'USD' },
        code: code(),
        storeId: 's',
      }),
    ).rejects.toBeInstanceOf(ProviderRejectedError);
    await expect(
      sut.charge({ outTradeNo: payId(), amount: cny(1.5), code: code(), storeId: 's' }),
    ).rejects.toBeInstanceOf(ProviderRejectedError);
  });

  it('a forged gateway (replies signed with a wrong key) never yields succeeded', async () => {
    gw.testMode.forged = true;
    const id = payId();
    const r = await sut
      .charge({ outTradeNo: id, amount: cny(700), code: code(), storeId: 's' })
      .catch((e: unknown) => e);
    expect(r).toBeInstanceOf(ProviderUnknownError);
    await expect(sut.query(id)).rejects.toBeInstanceOf(ProviderUnknownError);
    gw.testMode.forged = false;
    expect(await sut.query(id)).toMatchObject({ state: 'succeeded' }); // the truth, once answers verify again
  });

  it('probe: works; wrong key; unknown account; unreachable; TLS', async () => {
    expect(await sut.probe()).toMatchObject({ ok: true });
    const acct = variant.account(gw);
    const wrong =
      acct.api === 'v2'
        ? fresh({ v2: { ...acct.v2!, apiKey: 'x'.repeat(32) } })
        : fresh({ merchantKeyPem: material.platformKeyPem });
    expect(await wrong.probe()).toMatchObject({
      ok: false,
      problem: 'wrong_key',
      message: expect.stringMatching(/key|certificate/),
    });
    expect(await fresh({ mchId: '1900000001' }).probe()).toMatchObject({
      ok: false,
      problem: 'unknown_account',
    });
    expect(await fresh({ baseUrl: 'https://127.0.0.1:1' }).probe()).toMatchObject({
      ok: false,
      problem: 'unreachable',
    });
    expect(await fresh({ caPem: undefined }).probe()).toMatchObject({ ok: false, problem: 'tls' });
    if (acct.api === 'v3') {
      const skewed = fresh({}, { now: () => Date.now() + 10 * 60_000 });
      expect(await skewed.probe()).toMatchObject({
        ok: false,
        problem: 'clock_skew',
        message: expect.stringMatching(/clock/),
      });
    }
  });

  it('no error message holds the payment code or a key', async () => {
    const c = code();
    gw.testMode.forged = true;
    const e = (await sut
      .charge({ outTradeNo: payId(), amount: cny(700), code: c, storeId: 's' })
      .catch((x: unknown) => x)) as Error;
    const m = gw.merchant();
    for (const secret of [c, m.apiKey, m.apiV3Key]) expect(e.message).not.toContain(secret);
  });
});

describe('WechatProvider v3 without a reply signature', () => {
  it('an unsigned 2xx is never believed', async () => {
    const m = gw.merchant();
    const p = new WechatProvider({
      api: 'v3',
      appId: m.appId,
      mchId: m.mchId,
      baseUrl: gw.url,
      caPem: gw.caPem,
      merchantCertPem: m.merchantCertPem,
      merchantKeyPem: m.merchantKeyPem,
      merchantCertSerial: m.merchantCertSerial,
      v3: { apiV3Key: m.apiV3Key, platformCertPem: m.platformCertPem },
    });
    gw.testMode.unsignedV3 = true;
    try {
      const id = payId();
      const e = await p
        .charge({ outTradeNo: id, amount: cny(800), code: code(), storeId: 's' })
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(WechatUnknownError);
      expect((e as WechatUnknownError).reason).toBe('forged');
      await expect(p.query(id)).rejects.toBeInstanceOf(ProviderUnknownError);
    } finally {
      gw.testMode.unsignedV3 = false;
    }
  });
});
