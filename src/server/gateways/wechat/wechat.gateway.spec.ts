/**
 * The local WeChat Pay gateway on its own: mutual TLS on /secapi, WeChat Pay's request checks (a tampered
 * byte, bad XML, missing fields, not UTF-8, wrong method; v3 Authorization), replies that the test-only oracle
 * (wechatpay-axios-plugin) verifies, auto-revoke, and a restart that keeps keys and ledger (dataDir).
 */
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Test-only oracle.
import { Formatter, Hash, Rsa } from 'wechatpay-axios-plugin';
import { httpsCall, HttpReply, WechatTransportError } from '../../providers/wechat/http';
import {
  buildAuthorization,
  nonce,
  sha256WithRsa,
  signV2,
  v3RequestMessage,
} from '../../providers/wechat/sign';
import { buildXml, parseXml } from '../../providers/wechat/xml';
import { WechatProvider } from '../../providers/wechat/wechat.provider';
import { WechatGatewayMaterial, generateMaterial } from './certs';
import { WechatGateway, startWechatGateway } from './wechat.gateway';

jest.setTimeout(60_000);

let material: WechatGatewayMaterial;
let stranger: WechatGatewayMaterial;
let gw: WechatGateway;

beforeAll(async () => {
  [material, stranger] = await Promise.all([generateMaterial(), generateMaterial()]);
  gw = await startWechatGateway({ material, speed: 100 });
});
afterAll(async () => {
  await gw?.close();
});

const code = (): string => '10' + String(Math.floor(Math.random() * 1e16)).padStart(16, '0');
const payId = (): string => `pay_${randomBytes(16).toString('hex')}`.slice(0, 29);

function v2Body(fields: Record<string, string>, key = material.apiKey): string {
  const f = { appid: material.appId, mch_id: material.mchId, nonce_str: nonce(16), ...fields };
  return buildXml({ ...f, sign: signV2(f, key, 'MD5') });
}

async function post(
  path: string,
  body: string | Buffer,
  tls: { cert?: string; key?: string } = {},
  method: 'GET' | 'POST' = 'POST',
): Promise<HttpReply> {
  return httpsCall({
    url: new URL(path, gw.url),
    method,
    headers: { 'Content-Type': 'text/xml' },
    body: body.toString(),
    ca: gw.caPem,
    timeoutMs: 5000,
    ...tls,
  });
}

const mtls = () => ({ cert: material.merchantCertPem, key: material.merchantKeyPem });

async function micropay(amount = 100): Promise<string> {
  const id = payId();
  const r = parseXml(
    (
      await post(
        '/pay/micropay',
        v2Body({
          body: 'shop-item',
          out_trade_no: id,
          total_fee: String(amount),
          spbill_create_ip: '127.0.0.1',
          auth_code: code(),
        }),
      )
    ).body,
  );
  expect(r.return_code).toBe('SUCCESS');
  return id;
}

describe('startWechatGateway: v2', () => {
  it('signs replies with the API key as the oracle computes it', async () => {
    const id = payId();
    const reply = parseXml(
      (
        await post(
          '/pay/micropay',
          v2Body({
            body: 'x',
            out_trade_no: id,
            total_fee: '100',
            spbill_create_ip: '127.0.0.1',
            auth_code: code(),
          }),
        )
      ).body,
    );
    expect(reply).toMatchObject({
      return_code: 'SUCCESS',
      result_code: 'SUCCESS',
      out_trade_no: id,
      total_fee: '100',
      trade_type: 'MICROPAY',
    });
    expect(reply.time_end).toMatch(/^\d{14}$/);
    const { sign, ...rest } = reply;
    expect(Hash.sign('MD5', rest, material.apiKey)).toBe(sign);
  });

  it('refuses a tampered request (one byte) with SIGNERROR in v2 shape, unsigned, and makes no trade', async () => {
    const id = payId();
    const body = v2Body({
      body: 'x',
      out_trade_no: id,
      total_fee: '100',
      spbill_create_ip: '127.0.0.1',
      auth_code: code(),
    });
    const tampered = body.replace('<total_fee><![CDATA[100]]>', '<total_fee><![CDATA[101]]>');
    expect(tampered).not.toBe(body);
    const reply = parseXml((await post('/pay/micropay', tampered)).body);
    expect(reply).toEqual({ return_code: 'FAIL', return_msg: '签名错误' });
    expect(gw.trades().some((t) => t.outTradeNo === id)).toBe(false);
  });

  it.each([
    ['XML_FORMAT_ERROR', () => '<xml><a>1</xml>', 'XML格式错误'],
    [
      'LACK_PARAMS',
      () => v2Body({ body: 'x', out_trade_no: payId(), total_fee: '1', spbill_create_ip: '127.0.0.1' }),
      '缺少参数auth_code',
    ],
    [
      'NOT_UTF8',
      () => Buffer.concat([Buffer.from('<xml><a>'), Buffer.from([0xc3, 0x28]), Buffer.from('</a></xml>')]),
      '编码格式错误',
    ],
  ])('answers %s with return_code FAIL', async (_name, body, msg) => {
    const b = body();
    const raw = await rawPost('/pay/micropay', Buffer.isBuffer(b) ? b : Buffer.from(b));
    expect(parseXml(raw)).toEqual({ return_code: 'FAIL', return_msg: msg });
  });

  it("reverse without the merchant certificate is refused at TLS; with a stranger CA's certificate too", async () => {
    const id = await micropay();
    const body = v2Body({ out_trade_no: id });
    const noCert = await post('/secapi/pay/reverse', body).catch((e: unknown) => e);
    expect(noCert).toBeInstanceOf(WechatTransportError);
    const strangerCert = await post('/secapi/pay/reverse', body, {
      cert: stranger.merchantCertPem,
      key: stranger.merchantKeyPem,
    }).catch((e: unknown) => e);
    expect(strangerCert).toBeInstanceOf(WechatTransportError);
    expect(gw.trades().find((t) => t.outTradeNo === id)?.state).toBe('SUCCESS');
    const ok = parseXml((await post('/secapi/pay/reverse', body, mtls())).body);
    expect(ok).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS', recall: 'N' });
    expect(gw.trades().find((t) => t.outTradeNo === id)?.state).toBe('REVOKED');
  });

  it('a reverse of an order never made leaves a tombstone: a late pay under that number cannot succeed', async () => {
    const id = payId();
    expect(
      parseXml((await post('/secapi/pay/reverse', v2Body({ out_trade_no: id }), mtls())).body),
    ).toMatchObject({ result_code: 'SUCCESS' });
    const late = parseXml(
      (
        await post(
          '/pay/micropay',
          v2Body({
            body: 'x',
            out_trade_no: id,
            total_fee: '100',
            spbill_create_ip: '127.0.0.1',
            auth_code: code(),
          }),
        )
      ).body,
    );
    expect(late).toMatchObject({ result_code: 'FAIL', err_code: 'ORDERREVERSED' });
    expect(parseXml((await post('/pay/orderquery', v2Body({ out_trade_no: id }))).body)).toMatchObject({
      err_code: 'ORDERNOTEXIST',
    });
  });

  it('revokes a trade still waiting 45 s (÷ speed) after creation', async () => {
    const id = payId();
    const r = parseXml(
      (
        await post(
          '/pay/micropay',
          v2Body({
            body: 'x',
            out_trade_no: id,
            total_fee: '9102',
            spbill_create_ip: '127.0.0.1',
            auth_code: code(),
          }),
        )
      ).body,
    );
    expect(r).toMatchObject({ result_code: 'FAIL', err_code: 'USERPAYING' });
    let state = '';
    for (let i = 0; i < 200 && state !== 'REVOKED'; i++) {
      state = parseXml((await post('/pay/orderquery', v2Body({ out_trade_no: id }))).body).trade_state;
      if (state !== 'REVOKED') await new Promise((res) => setTimeout(res, 20));
    }
    expect(state).toBe('REVOKED');
  });

  it('answers a GET with return_code FAIL', async () => {
    const reply = await post('/pay/orderquery', '', {}, 'GET');
    expect(parseXml(reply.body)).toEqual({ return_code: 'FAIL', return_msg: '请使用post方法' });
  });
});

async function rawPost(path: string, body: Buffer): Promise<Buffer> {
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(path, gw.url),
      { method: 'POST', ca: gw.caPem, agent: false, headers: { 'Content-Length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('startWechatGateway: v3', () => {
  function signed(
    method: 'GET' | 'POST',
    path: string,
    body: string,
    over: { serial?: string; ts?: number; tamper?: boolean } = {},
  ) {
    const ts = String(over.ts ?? Math.floor(Date.now() / 1000));
    const n = nonce();
    const sig = sha256WithRsa(
      v3RequestMessage(method, path, ts, n, body),
      createPrivateKey(material.merchantKeyPem),
    );
    return httpsCall({
      url: new URL(path, gw.url),
      method,
      ca: gw.caPem,
      timeoutMs: 5000,
      body: method === 'POST' ? (over.tamper ? body.replace('"total":100', '"total":101') : body) : undefined,
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        Authorization: buildAuthorization({
          mchid: material.mchId,
          nonce_str: n,
          timestamp: ts,
          serial_no: over.serial ?? material.merchantCertSerial,
          signature: sig,
        }),
      },
    });
  }
  const codepay = (id: string) =>
    JSON.stringify({
      appid: material.appId,
      mchid: material.mchId,
      description: 'x',
      out_trade_no: id,
      payer: { auth_code: code() },
      amount: { total: 100, currency: 'CNY' },
      scene_info: { device_ip: '127.0.0.1' },
    });

  it('pays, and signs the reply with the platform key as the oracle verifies it', async () => {
    const id = payId();
    const r = await signed('POST', '/v3/pay/transactions/codepay', codepay(id));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toMatchObject({
      trade_state: 'SUCCESS',
      out_trade_no: id,
      amount: { total: 100 },
    });
    expect(r.headers['wechatpay-serial']).toBe(material.platformSerial);
    const msg = Formatter.response(
      String(r.headers['wechatpay-timestamp']),
      String(r.headers['wechatpay-nonce']),
      r.body.toString(),
    );
    expect(
      Rsa.verify(
        msg,
        String(r.headers['wechatpay-signature']),
        new X509Certificate(material.platformCertPem).publicKey,
      ),
    ).toBe(true);
  });

  it('refuses a tampered body, a wrong serial and a stale timestamp with HTTP 401 SIGN_ERROR', async () => {
    const id = payId();
    for (const over of [
      { tamper: true },
      { serial: 'ABCDEF' },
      { ts: Math.floor(Date.now() / 1000) - 301 },
    ]) {
      const r = await signed('POST', '/v3/pay/transactions/codepay', codepay(id), over);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body.toString()).code).toBe('SIGN_ERROR');
    }
    expect(gw.trades().some((t) => t.outTradeNo === id)).toBe(false);
  });

  it('a code used twice: the second codepay is refused', async () => {
    const c = code();
    const body = (id: string) => codepay(id).replace(/"auth_code":"\d+"/, `"auth_code":"${c}"`);
    expect((await signed('POST', '/v3/pay/transactions/codepay', body(payId()))).status).toBe(200);
    const again = await signed('POST', '/v3/pay/transactions/codepay', body(payId()));
    expect(again.status).toBe(403);
    expect(JSON.parse(again.body.toString()).code).toBe('AUTH_CODE_EXPIRE');
  });
});

describe('startWechatGateway with a data directory', () => {
  it('keeps keys (0600) and every trade across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wechat-gw-'));
    try {
      const first = await startWechatGateway({ dataDir: join(dir, 'gw') });
      const m = first.merchant();
      const account = {
        api: 'v2' as const,
        appId: m.appId,
        mchId: m.mchId,
        baseUrl: first.url,
        caPem: first.caPem,
        merchantCertPem: m.merchantCertPem,
        merchantKeyPem: m.merchantKeyPem,
        merchantCertSerial: m.merchantCertSerial,
        v2: { apiKey: m.apiKey, signType: 'HMAC-SHA256' as const },
      };
      const id = payId();
      const paid = await new WechatProvider(account).charge({
        outTradeNo: id,
        amount: { value: 4321, currency: 'CNY' },
        code: code(),
        storeId: 's',
      });
      expect(paid.outcome).toBe('succeeded');
      await first.close();
      const secrets = [
        'api-key.txt',
        'api-v3-key.txt',
        'ca-key.pem',
        'server-key.pem',
        'merchant-key.pem',
        'platform-key.pem',
        'public-key-private.pem',
        'ledger.jsonl',
      ];
      expect(readdirSync(join(dir, 'gw'))).toEqual(expect.arrayContaining(secrets));
      for (const f of secrets) expect(statSync(join(dir, 'gw', f)).mode & 0o777).toBe(0o600);
      const second = await startWechatGateway({ dataDir: join(dir, 'gw'), port: 0 });
      try {
        expect(second.merchant()).toEqual(m);
        expect(second.trades().find((t) => t.outTradeNo === id)).toMatchObject({
          state: 'SUCCESS',
          amount: 4321,
        });
        expect(await new WechatProvider({ ...account, baseUrl: second.url }).query(id)).toMatchObject({
          state: 'succeeded',
        });
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
