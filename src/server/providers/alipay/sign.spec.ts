/**
 * The signing rules proven against Alipay's own published vectors (test/fixtures/alipay/README.md, A1–A4)
 * and cross-checked with the official Node SDK (alipay-sdk, a test-only oracle).
 */
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AlipaySdk } from 'alipay-sdk';
import { parseForm } from './form';
import {
  AlipayFormatError,
  extractAnswer,
  loadPrivateKey,
  loadPublicKey,
  notifySignContent,
  requestSignContent,
  signAnswer,
  signRequest,
  signText,
  verifyAnswer,
  verifyText,
} from './sign';

const FIX = path.join(__dirname, '../../../../test/fixtures/alipay');
const fixture = <T>(name: string): T => JSON.parse(readFileSync(path.join(FIX, name), 'utf8')) as T;

interface A1 {
  privateKeyPkcs8Base64: string;
  publicKeyCert: string;
  cases: Array<{ name: string; params: Record<string, string>; signContent: string; sign: string }>;
}

describe('Alipay signing: published vectors', () => {
  const a1 = fixture<A1>('a1-request-sign.json');
  const key = loadPrivateKey(a1.privateKeyPkcs8Base64);
  const pub = loadPublicKey(readFileSync(path.join(FIX, a1.publicKeyCert), 'utf8'));

  it.each(a1.cases.map((c) => [c.name, c] as const))(
    'A1 %s: the sign content and the signature, byte for byte',
    (_n, c) => {
      expect(requestSignContent(c.params)).toBe(c.signContent);
      const signType = c.params.sign_type as 'RSA2' | 'RSA';
      expect(signText(c.signContent, key, signType)).toBe(c.sign);
      expect(signRequest(c.params, key, signType).sign).toBe(c.sign);
      expect(verifyText(c.signContent, c.sign, pub, signType)).toBe(true);
    },
  );

  it('A1: the vector does not verify without sign_type in the content (sign_type is signed)', () => {
    const c = a1.cases[0];
    const without = requestSignContent({ app_id: c.params.app_id, method: c.params.method });
    expect(verifyText(without, c.sign, pub, 'RSA2')).toBe(false);
  });

  it('A1: empty values and an empty key are left out of the content', () => {
    expect(
      requestSignContent({ method: 'm', app_id: '1', '': 'test', test: '', sign: 'x', sign_type: 'RSA2' }),
    ).toBe('app_id=1&method=m&sign_type=RSA2');
  });

  it('A2: a real alipay.open.file.upload answer verifies over its raw response text', () => {
    const a2 = fixture<{ method: string; signContent: string; body: string }>('a2-response.json');
    const alipayKey = loadPublicKey(readFileSync(path.join(FIX, 'a2-alipay-public-key.pem'), 'utf8'));
    const answer = extractAnswer(a2.body, a2.method);
    expect(answer.content).toBe(a2.signContent);
    expect(verifyAnswer(answer, alipayKey)).toBe(true);
    // One byte changed in the payload → not believed.
    const tampered = extractAnswer(a2.body.replace('"10000"', '"10001"'), a2.method);
    expect(verifyAnswer(tampered, alipayKey)).toBe(false);
  });

  it.each(
    fixture<Array<{ name: string; rootKey: string; body: string; signContent: string }>>(
      'a3-sign-content.json',
    ).map((c) => [c.name, c] as const),
  )('A3 %s: the signed substring is cut exactly', (_n, c) => {
    const method = c.rootKey.replace(/_response$/, '').replace(/_/g, '.');
    const a = extractAnswer(c.body, method);
    expect(a.rootKey).toBe(c.rootKey);
    expect(a.content).toBe(c.signContent);
    expect(a.sign).toMatch(/^P8xrBW/);
  });

  it('A4: a real notification verifies without sign_type (and not with it)', () => {
    const a4 = fixture<{ publicKeyBase64: string; params: Record<string, unknown> }>('a4-notify.json');
    const key4 = loadPublicKey(a4.publicKeyBase64);
    const sign = a4.params.sign as string;
    expect(verifyText(notifySignContent(a4.params), sign, key4, 'RSA2')).toBe(true);
    const withType = requestSignContent(
      Object.fromEntries(
        Object.entries(a4.params).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
      ),
    );
    expect(verifyText(withType, sign, key4, 'RSA2')).toBe(false);
  });

  it('loads the A1 public key from its certificate as X509Certificate does', () => {
    const pem = readFileSync(path.join(FIX, a1.publicKeyCert), 'utf8');
    expect(
      pub
        .export({ type: 'spki', format: 'der' })
        .equals(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })),
    ).toBe(true);
  });
});

describe('Alipay answers: the extractor', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const body = (inner: string) => signAnswer('alipay_trade_pay_response', inner, privateKey);

  it('refuses a body whose root key appears twice', () => {
    const good = body('{"code":"10000","msg":"Success"}');
    const twice = `{"alipay_trade_pay_response":{"code":"40004"},${good.slice(1)}`;
    expect(() => extractAnswer(twice, 'alipay.trade.pay')).toThrow(AlipayFormatError);
    expect(() => extractAnswer(twice, 'alipay.trade.pay')).toThrow(/twice/);
  });

  it('takes error_response when the method key is absent', () => {
    const a = extractAnswer(
      signAnswer('error_response', '{"code":"40002","msg":"Invalid Arguments"}', privateKey),
      'alipay.trade.pay',
    );
    expect(a.rootKey).toBe('error_response');
    expect(verifyAnswer(a, publicKey)).toBe(true);
  });

  it('retries once with \\/ read as / (the Java SDK quirk), and only then', () => {
    const inner = '{"url":"http:\\/\\/x\\/y"}';
    const signedUnescaped = `{"alipay_trade_pay_response":${inner},"sign":"${signText('{"url":"http://x/y"}', privateKey, 'RSA2')}"}`;
    expect(verifyAnswer(extractAnswer(signedUnescaped, 'alipay.trade.pay'), publicKey)).toBe(true);
    expect(verifyAnswer(extractAnswer(body(inner), 'alipay.trade.pay'), publicKey)).toBe(true);
  });

  it('an unsigned answer is never verified', () => {
    expect(
      verifyAnswer(
        extractAnswer('{"alipay_trade_pay_response":{"code":"10000"}}', 'alipay.trade.pay'),
        publicKey,
      ),
    ).toBe(false);
  });

  it('never re-serialises: whitespace and key order inside the response stay as sent', () => {
    const inner = '{ "msg" : "Success",\n "code":"10000" }';
    const a = extractAnswer(body(inner), 'alipay.trade.pay');
    expect(a.content).toBe(inner);
    expect(verifyAnswer(a, publicKey)).toBe(true);
  });
});

describe('Alipay signing: the official Node SDK as oracle', () => {
  const app = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const gw = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const appPem = app.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const gwPubPem = gw.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const sdk = new AlipaySdk({
    appId: '2021000000000001',
    privateKey: appPem,
    keyType: 'PKCS8',
    alipayPublicKey: gwPubPem,
    gateway: 'http://127.0.0.1:9/gateway.do',
    signType: 'RSA2',
    camelcase: false,
  });

  it("the SDK's signed request verifies with our verifier, and our signature of it is the SDK's", () => {
    const signed = sdk.sdkExecute('alipay.trade.pay', {
      bizContent: {
        out_trade_no: 'pay_abc',
        scene: 'bar_code',
        auth_code: '281234567890123456',
        subject: '测试 ¥',
        total_amount: '0.01',
      },
    });
    const params = parseForm(signed);
    const content = requestSignContent(params);
    expect(content).toContain('sign_type=RSA2');
    expect(verifyText(content, params.sign, createPublicKey(app.privateKey), 'RSA2')).toBe(true);
    expect(signText(content, loadPrivateKey(appPem), 'RSA2')).toBe(params.sign);
  });

  it("our signed answer passes the SDK's checkResponseSign; a forged one does not", () => {
    const inner =
      '{"code":"10000","msg":"Success","trade_no":"2026112922001400000000000001","url":"http:\\/\\/a\\/b"}';
    const raw = signAnswer('alipay_trade_pay_response', inner, gw.privateKey);
    const sign = JSON.parse(raw).sign as string;
    expect(sdk.getSignStr(raw, 'alipay_trade_pay_response')).toBe(
      extractAnswer(raw, 'alipay.trade.pay').content,
    );
    expect(() => sdk.checkResponseSign(raw, 'alipay_trade_pay_response', sign, 'trace')).not.toThrow();
    const forged = signAnswer('alipay_trade_pay_response', inner, app.privateKey);
    expect(() =>
      sdk.checkResponseSign(forged, 'alipay_trade_pay_response', JSON.parse(forged).sign, 'trace'),
    ).toThrow();
    expect(verifyAnswer(extractAnswer(forged, 'alipay.trade.pay'), gw.publicKey)).toBe(false);
  });
});
