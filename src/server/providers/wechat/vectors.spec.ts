/**
 * Known-answer tests: WeChat Pay's published vectors (test/fixtures/wechat, sources in its README) reproduced
 * byte for byte by our signing code, and cross-checks against the wechatpay-axios-plugin oracle (test-only).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
// Test-only oracle (never imported by non-spec code).
import { Formatter, Hash, Rsa, Transformer } from 'wechatpay-axios-plugin';
import {
  buildAuthorization,
  certSerial,
  decryptResource,
  parseAuthorization,
  sha256WithRsa,
  signV2,
  v2SignString,
  v3RequestMessage,
  v3ResponseMessage,
  verifySha256WithRsa,
  verifyV2,
} from './sign';
import { buildXml, parseXml } from './xml';

const dir = join(__dirname, '../../../../test/fixtures/wechat');
const json = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
const text = (f: string) => readFileSync(join(dir, f), 'utf8');

describe('W1: v2 signature, official 安全规范 example', () => {
  const w1 = json('w1-v2-sign.json');
  it('builds the string to sign', () => {
    expect(v2SignString(w1.params)).toBe(w1.stringA);
  });
  it('MD5 and HMAC-SHA256 byte for byte', () => {
    expect(signV2(w1.params, w1.key, 'MD5')).toBe(w1.md5);
    expect(signV2(w1.params, w1.key, 'HMAC-SHA256')).toBe(w1.hmacSha256);
  });
  it('verifies, ignores sign itself and empty values, and fails on one changed byte', () => {
    const withSign = { ...w1.params, sign: w1.md5, empty: '' };
    expect(verifyV2(withSign, w1.key, 'MD5')).toBe(true);
    expect(verifyV2({ ...withSign, body: 'tesT' }, w1.key, 'MD5')).toBe(false);
    expect(verifyV2({ ...withSign, new_field: 'x' }, w1.key, 'MD5')).toBe(false); // a new field takes part
  });
  it('agrees with the oracle', () => {
    expect(Hash.sign('MD5', w1.params, w1.key)).toBe(w1.md5);
    expect(Hash.sign('HMAC-SHA256', w1.params, w1.key)).toBe(w1.hmacSha256);
  });
});

describe('W2/W3: v3 SHA256withRSA (wechatpay-go)', () => {
  const w = json('w2-w3-sha256rsa.json');
  const key = text(w.keyFile);
  const cert = text(w.platformCertFile);
  it('reproduces the published signature of "source"', () => {
    expect(sha256WithRsa(w.message, key)).toBe(w.signature);
    expect(Rsa.sign(w.message, Rsa.from(createPrivateKey(key), 'private'))).toBe(w.signature);
  });
  it('verifies with the test platform certificate, by its serial', () => {
    expect(certSerial(cert)).toBe(w.platformSerial);
    expect(verifySha256WithRsa(w.message, w.signature, new X509Certificate(cert).publicKey)).toBe(true);
    expect(verifySha256WithRsa('wrong source', w.signature, new X509Certificate(cert).publicKey)).toBe(false);
  });
});

describe('W4: a complete v3 callback (wechatpay-go notify_test)', () => {
  const w = json('w4-v3-callback.json');
  const h = w.headers;
  const cert = new X509Certificate(text(w.platformCertFile));
  it('its signature verifies over timestamp\\nnonce\\nbody\\n with the certificate its serial names', () => {
    expect(cert.serialNumber.toUpperCase()).toBe(h['Wechatpay-Serial']);
    const msg = v3ResponseMessage(h['Wechatpay-Timestamp'], h['Wechatpay-Nonce'], w.body);
    expect(msg).toBe(Formatter.response(h['Wechatpay-Timestamp'], h['Wechatpay-Nonce'], w.body));
    expect(verifySha256WithRsa(msg, h['Wechatpay-Signature'], cert.publicKey)).toBe(true);
    expect(
      verifySha256WithRsa(msg.replace('签约成功', '签约失败'), h['Wechatpay-Signature'], cert.publicKey),
    ).toBe(false);
  });
  it('its resource decrypts with the 16-byte key (AES-128-GCM) to the published plaintext', () => {
    const r = JSON.parse(w.body).resource;
    expect(Buffer.byteLength(w.apiV3Key)).toBe(16);
    expect(decryptResource(w.apiV3Key, r.nonce, r.associated_data, r.ciphertext)).toBe(w.plaintext);
    expect(() => decryptResource(w.apiV3Key, r.nonce, 'other', r.ciphertext)).toThrow();
  });
});

describe('v3 request signing agrees with the oracle', () => {
  const key = text('w2-test-key.pem');
  it('builds the same message and Authorization', () => {
    const body = '{"appid":"wx1","amount":{"total":100,"currency":"CNY"}}';
    const msg = v3RequestMessage('POST', '/v3/pay/transactions/codepay', '1624523846', 'NONCE', body);
    expect(msg).toBe(Formatter.request('POST', '/v3/pay/transactions/codepay', '1624523846', 'NONCE', body));
    const sig = sha256WithRsa(msg, key);
    const ours = buildAuthorization({
      mchid: '1900000001',
      nonce_str: 'NONCE',
      timestamp: '1624523846',
      serial_no: 'F5765756002FDD77',
      signature: sig,
    });
    // Field order is free; the oracle orders them differently, so compare what each says.
    expect(
      parseAuthorization(
        Formatter.authorization('1900000001', 'NONCE', sig, '1624523846', 'F5765756002FDD77'),
      ),
    ).toEqual(parseAuthorization(ours));
    expect(parseAuthorization(ours)).toEqual({
      mchid: '1900000001',
      nonce_str: 'NONCE',
      timestamp: '1624523846',
      serial_no: 'F5765756002FDD77',
      signature: sig,
    });
    expect(parseAuthorization(ours + ',mchid="2"')).toBeUndefined();
    expect(parseAuthorization('Bearer x')).toBeUndefined();
  });
});

describe('v2 XML agrees with the oracle', () => {
  it('the oracle reads what we build, and we read what it builds', () => {
    const fields = { appid: 'wx1', body: 'a<b>&"c"]]>d', total_fee: '100', mch_id: '1900000001' };
    expect(Transformer.toObject(buildXml(fields))).toEqual(fields);
    // (The oracle writes a value holding "]]>" as invalid CDATA, so the reverse direction uses one without.)
    const plain = { ...fields, body: 'a<b>&"c"d 中文' };
    expect(parseXml(Transformer.toXml(plain))).toEqual(plain);
  });
});
