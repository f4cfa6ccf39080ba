/**
 * WechatProvider against a hostile server on 127.0.0.1 that answers with random bytes or mutated copies of a
 * correctly signed "paid" answer (seeded, reproducible): the provider never crashes, never throws anything but
 * a ProviderError, and says "succeeded" only for an answer that reads exactly as the signed one did.
 * Also: the reverse answers read right (recall=Y → call again; result_code FAIL with recall=N is a refusal,
 * never "reversed" — the official PHP demo's inverted reading).
 */
import * as https from 'node:https';
import { AddressInfo } from 'node:net';
import { ProviderError } from '../../../protocol/errors';
import { WechatGatewayMaterial, generateMaterial } from '../../gateways/wechat/certs';
import { ProviderRejectedError } from '../provider';
import { signV2, sha256WithRsa, v3ResponseMessage } from './sign';
import { buildXml, parseXml } from './xml';
import { WechatProvider, WechatUnknownError } from './wechat.provider';
import { mutateText, seededRandom } from '../../../../test/support/seeded-random';

jest.setTimeout(120_000);

let material: WechatGatewayMaterial;
let server: https.Server;
let url: string;
let answer: (path: string) => { status: number; headers?: Record<string, string>; body: Buffer | string };

beforeAll(async () => {
  material = await generateMaterial();
  server = https.createServer({ key: material.serverKeyPem, cert: material.serverCertPem }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const a = answer(req.url ?? '/');
      res.writeHead(a.status, a.headers ?? {});
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const ID = 'pay_mifr2x0k0Vb3aaaaaaaaaaaaa';
const req = {
  outTradeNo: ID,
  amount: { value: 100, currency: 'CNY' },
  code: '134567890123456789',
  storeId: 's',
};

function v2Provider(): WechatProvider {
  return new WechatProvider(
    {
      api: 'v2',
      appId: material.appId,
      mchId: material.mchId,
      baseUrl: url,
      caPem: material.caPem,
      merchantCertPem: material.merchantCertPem,
      merchantKeyPem: material.merchantKeyPem,
      merchantCertSerial: material.merchantCertSerial,
      v2: { apiKey: material.apiKey, signType: 'MD5' },
    },
    { timeoutMs: 3000 },
  );
}

function v3Provider(): WechatProvider {
  return new WechatProvider(
    {
      api: 'v3',
      appId: material.appId,
      mchId: material.mchId,
      baseUrl: url,
      caPem: material.caPem,
      merchantCertPem: material.merchantCertPem,
      merchantKeyPem: material.merchantKeyPem,
      merchantCertSerial: material.merchantCertSerial,
      v3: { apiV3Key: material.apiV3Key, platformCertPem: material.platformCertPem },
    },
    { timeoutMs: 3000 },
  );
}

describe('WechatProvider v2 against a hostile server', () => {
  const paid = {
    return_code: 'SUCCESS',
    return_msg: 'OK',
    appid: '',
    mch_id: '',
    nonce_str: 'abc',
    result_code: 'SUCCESS',
    out_trade_no: ID,
    total_fee: '100',
    transaction_id: '4200000001',
    time_end: '20261129120000',
  };
  const signedPaid = (): string => {
    const f = { ...paid, appid: material.appId, mch_id: material.mchId };
    return buildXml({ ...f, sign: signV2(f, material.apiKey, 'MD5') });
  };

  it('believes the correctly signed answer (control)', async () => {
    answer = () => ({ status: 200, body: signedPaid() });
    expect(await v2Provider().charge(req)).toMatchObject({ outcome: 'succeeded', tradeNo: '4200000001' });
  });

  it('random bytes and mutated answers: a ProviderError, or succeeded only when the answer reads the same', async () => {
    const r = seededRandom(99);
    const p = v2Provider();
    const original = parseXml(signedPaid());
    for (let i = 0; i < 300; i++) {
      let body: Buffer | string;
      if (i % 3 === 0) {
        body = Buffer.from(Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256)));
      } else body = mutateText(signedPaid(), r, '<>/![]CDATA&;#0123456789SUCCESSFAILY_ ', 3);
      answer = () => ({ status: i % 7 === 0 ? 500 : 200, body });
      try {
        const out = await p.charge(req);
        if (out.outcome === 'succeeded') expect(parseXml(body)).toEqual(original);
      } catch (e) {
        expect(e).toBeInstanceOf(ProviderError);
      }
    }
  });

  it('reverse: recall=Y is "call again"; result_code FAIL with recall=N is a refusal, never reversed', async () => {
    const sign = (f: Record<string, string>) => buildXml({ ...f, sign: signV2(f, material.apiKey, 'MD5') });
    const base = { return_code: 'SUCCESS', appid: material.appId, mch_id: material.mchId, nonce_str: 'n' };
    const query = sign({
      ...base,
      result_code: 'SUCCESS',
      out_trade_no: ID,
      trade_state: 'USERPAYING',
      total_fee: '100',
    });
    let reverse = '';
    answer = (path) => ({ status: 200, body: path.includes('reverse') ? reverse : query });
    const p = v2Provider();
    reverse = sign({
      ...base,
      result_code: 'FAIL',
      err_code: 'SYSTEMERROR',
      err_code_des: '系统错误',
      recall: 'Y',
    });
    const again = await p.cancel(ID).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(WechatUnknownError);
    expect((again as WechatUnknownError).reason).toBe('recall');
    reverse = sign({
      ...base,
      result_code: 'FAIL',
      err_code: 'REVERSE_EXPIRE',
      err_code_des: '订单已超过可撤销时间',
      recall: 'N',
    });
    await expect(p.cancel(ID)).rejects.toBeInstanceOf(ProviderRejectedError);
    reverse = sign({ ...base, result_code: 'SUCCESS', recall: 'N' });
    expect(await p.cancel(ID)).toEqual({ reversed: false });
  });
});

describe('WechatProvider v3 against a hostile server', () => {
  const paidJson = JSON.stringify({
    appid: 'A',
    mchid: 'M',
    out_trade_no: ID,
    transaction_id: '4200000001',
    trade_type: 'MICROPAY',
    trade_state: 'SUCCESS',
    success_time: '2026-11-29T12:00:00+08:00',
    amount: { total: 100, currency: 'CNY' },
  });
  const signedHeaders = (body: string, ts = String(Math.floor(Date.now() / 1000))) => ({
    'Wechatpay-Timestamp': ts,
    'Wechatpay-Nonce': 'n0nce',
    'Wechatpay-Serial': material.platformSerial,
    'Wechatpay-Signature': sha256WithRsa(v3ResponseMessage(ts, 'n0nce', body), material.platformKeyPem),
  });

  it('believes the correctly signed answer (control), and not one timestamped 5 minutes away', async () => {
    answer = () => ({ status: 200, headers: signedHeaders(paidJson), body: paidJson });
    expect(await v3Provider().charge(req)).toMatchObject({ outcome: 'succeeded' });
    answer = () => ({
      status: 200,
      headers: signedHeaders(paidJson, String(Math.floor(Date.now() / 1000) - 301)),
      body: paidJson,
    });
    const e = await v3Provider()
      .charge(req)
      .catch((x: unknown) => x);
    expect((e as WechatUnknownError).reason).toBe('clock_skew');
  });

  it('mutated bodies under the original signature, and random bytes: never succeeded unless identical', async () => {
    const r = seededRandom(2026);
    const p = v3Provider();
    for (let i = 0; i < 300; i++) {
      const body =
        i % 3 === 0
          ? Buffer.from(Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256))).toString(
              'latin1',
            )
          : mutateText(paidJson, r, '{}[]":,0123456789SUCCESStrue ', 3);
      const headers = i % 5 === 0 ? {} : signedHeaders(paidJson);
      answer = () => ({ status: 200, headers, body });
      try {
        const out = await p.charge(req);
        if (out.outcome === 'succeeded') expect(body).toBe(paidJson);
      } catch (err) {
        expect(err).toBeInstanceOf(ProviderError);
      }
    }
  });
});
