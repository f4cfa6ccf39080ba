/**
 * Alipay's v2 signatures (../shared/research/wallet-providers.md §1.2, §1.3), used by the provider to sign
 * requests and verify answers, and by the local gateway the other way round.
 *
 * Requests (§1.2): the sign content is every parameter (system parameters, `biz_content` and optional ones)
 * except `sign`, with `sign_type` INCLUDED, those whose key or value is empty dropped, sorted by key in
 * code-unit (ASCII) order, joined `key=value` with `&`, values raw (not URL-encoded). It is signed as bytes
 * of the request's charset. RSA2 = SHA256withRSA, RSA = SHA1withRSA (PKCS#1 v1.5), base64.
 *
 * Answers (§1.3): `{"<method with _>_response":{…},"sign":"…"}` (or `error_response`). The signed content is
 * the raw JSON text of the response object's value, cut from the body exactly as received — never
 * re-serialised. We find it by scanning the body's top level with a strict JSON scanner (so a `"sign"` inside
 * the payload and whitespace around keys cannot move the cut), and refuse a body in which the root key
 * appears twice (Alipay EasySDK's SignContentExtractor does the same). When the check fails and the content
 * holds `\/`, it is tried once more with `\/` read as `/` (the Java SDK's retry).
 *
 * Async notifications (§1.4) sign the same way as requests but without `sign_type`; arrays are signed as
 * their JSON text.
 */
import {
  createPrivateKey,
  createPublicKey,
  KeyObject,
  sign as rsaSign,
  verify as rsaVerify,
  X509Certificate,
} from 'node:crypto';
import * as iconv from 'iconv-lite';
import { AlipayCharset } from './form';

export type AlipaySignType = 'RSA2' | 'RSA';

/** A body the response extractor cannot read; the message never quotes the body. */
export class AlipayFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlipayFormatError';
  }
}

function hashOf(signType: AlipaySignType): 'sha256' | 'sha1' {
  return signType === 'RSA2' ? 'sha256' : 'sha1';
}

function bytesOf(text: string, charset: AlipayCharset): Buffer {
  return charset === 'utf-8' ? Buffer.from(text, 'utf8') : iconv.encode(text, charset);
}

/**
 * A key as Alipay's consoles hand it out: PEM, or the bare base64 body (PKCS#8 or PKCS#1 for a private key,
 * SPKI for a public key), or — for the Alipay public key in certificate mode — an X.509 certificate.
 */
export function loadPrivateKey(text: string): KeyObject {
  const t = text.trim();
  if (t.includes('-----BEGIN')) return createPrivateKey(t);
  const der = Buffer.from(t.replace(/\s+/g, ''), 'base64');
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs1' });
  }
}

export function loadPublicKey(text: string): KeyObject {
  const t = text.trim();
  if (t.includes('CERTIFICATE')) return new X509Certificate(t).publicKey;
  if (t.includes('-----BEGIN')) return createPublicKey(t);
  return createPublicKey({ key: Buffer.from(t.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'spki' });
}

/** The request sign content (§1.2). `sign` is always left out; `sign_type` stays. */
export function requestSignContent(params: Record<string, string | undefined>): string {
  return Object.keys(params)
    .filter((k) => k !== 'sign' && k !== '' && params[k] !== undefined && params[k] !== '')
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${k}=${params[k]}`)
    .join('&');
}

/** An async notification's sign content (§1.4): without `sign` and `sign_type`; non-strings as JSON text. */
export function notifySignContent(params: Record<string, unknown>): string {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) {
    if (k === 'sign_type' || v === undefined || v === null) continue;
    flat[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return requestSignContent(flat);
}

export function signText(
  content: string,
  key: KeyObject,
  signType: AlipaySignType,
  charset: AlipayCharset = 'utf-8',
): string {
  return rsaSign(hashOf(signType), bytesOf(content, charset), key).toString('base64');
}

export function verifyText(
  content: string,
  signature: string,
  key: KeyObject,
  signType: AlipaySignType,
  charset: AlipayCharset = 'utf-8',
): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  try {
    return rsaVerify(hashOf(signType), bytesOf(content, charset), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** Signs a request's parameters: returns them with `sign` added. */
export function signRequest(
  params: Record<string, string>,
  key: KeyObject,
  signType: AlipaySignType = 'RSA2',
  charset: AlipayCharset = 'utf-8',
): Record<string, string> {
  return { ...params, sign: signText(requestSignContent(params), key, signType, charset) };
}

// ---- the answer's raw text -------------------------------------------------------------------------

/** One top-level member of a JSON object body: its key and where its raw value text lies. */
interface Member {
  key: string;
  start: number;
  end: number;
}

const MAX_DEPTH = 64;

/**
 * Scans `body` as one JSON object and returns its top-level members with the spans of their raw values.
 * Strict JSON (RFC 8259): anything else is an AlipayFormatError saying where it went wrong.
 */
export function scanTopLevel(body: string): Member[] {
  let i = 0;
  const n = body.length;
  const fail = (what: string): never => {
    throw new AlipayFormatError(`the answer is not the JSON Alipay sends: ${what} at character ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = body.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    if (body[i] !== '"') fail('expected a string');
    const start = i;
    i++;
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = body.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('a control character in a string');
      if (c === 0x5c) {
        const e = body[i + 1];
        if (e === 'u') {
          if (!/^[0-9A-Fa-f]{4}$/.test(body.slice(i + 2, i + 6))) fail('a broken \\u escape');
          i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) fail('a broken escape');
        i += 2;
        continue;
      }
      i++;
    }
    i++;
    return JSON.parse(body.slice(start, i)) as string;
  };
  const value = (depth: number): void => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    ws();
    const c = body[i];
    if (c === '"') {
      str();
      return;
    }
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (body[i] === close) {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (c === '{') {
          str();
          ws();
          if (body[i] !== ':') fail('expected ":"');
          i++;
        }
        value(depth + 1);
        ws();
        if (body[i] === ',') {
          i++;
          continue;
        }
        if (body[i] === close) {
          i++;
          return;
        }
        fail(`expected "," or "${close}"`);
      }
    }
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(body.slice(i, i + 400));
    if (!m) fail('an unexpected character');
    i += m![0].length;
  };

  const members: Member[] = [];
  ws();
  if (body[i] !== '{') fail('expected an object');
  i++;
  ws();
  if (body[i] === '}') i++;
  else {
    for (;;) {
      ws();
      const key = str();
      ws();
      if (body[i] !== ':') fail('expected ":"');
      i++;
      ws();
      const start = i;
      value(1);
      members.push({ key, start, end: i });
      ws();
      if (body[i] === ',') {
        i++;
        continue;
      }
      if (body[i] === '}') {
        i++;
        break;
      }
      fail('expected "," or "}"');
    }
  }
  ws();
  if (i !== n) fail('text after the object');
  return members;
}

export interface SignedAnswer {
  /** The key the response sits under: `<method>_response` or `error_response`. */
  rootKey: string;
  /** The raw signed text (the response object's value, as received). */
  content: string;
  /** The `sign` member, when there is one. */
  sign?: string;
  /** The response object, parsed from `content`. */
  response: Record<string, unknown>;
}

/** `alipay.trade.pay` → `alipay_trade_pay_response`. */
export function responseKeyOf(method: string): string {
  return `${method.replace(/\./g, '_')}_response`;
}

/**
 * Cuts the response out of an answer's body (§1.3). Throws AlipayFormatError when the body is not one JSON
 * object, holds neither the method's key nor `error_response`, holds its root key twice, or the response is
 * not an object.
 */
export function extractAnswer(body: string, method: string): SignedAnswer {
  const members = scanTopLevel(body);
  const want = responseKeyOf(method);
  const root = members.some((m) => m.key === want) ? want : 'error_response';
  const hits = members.filter((m) => m.key === root);
  if (hits.length === 0) throw new AlipayFormatError(`the answer holds neither ${want} nor error_response`);
  if (hits.length > 1) throw new AlipayFormatError(`the answer holds ${root} twice`);
  const signs = members.filter((m) => m.key === 'sign');
  if (signs.length > 1) throw new AlipayFormatError('the answer holds sign twice');
  const content = body.slice(hits[0].start, hits[0].end);
  if (!content.startsWith('{')) throw new AlipayFormatError(`${root} is not an object`);
  let sign: string | undefined;
  if (signs.length === 1) {
    const raw: unknown = JSON.parse(body.slice(signs[0].start, signs[0].end));
    if (typeof raw !== 'string') throw new AlipayFormatError('sign is not a string');
    sign = raw;
  }
  return { rootKey: root, content, sign, response: JSON.parse(content) as Record<string, unknown> };
}

/** True when `answer.sign` verifies over its content, or over it with `\/` read as `/` (§1.3, Java SDK). */
export function verifyAnswer(
  answer: SignedAnswer,
  alipayPublicKey: KeyObject,
  signType: AlipaySignType = 'RSA2',
): boolean {
  if (!answer.sign) return false;
  if (verifyText(answer.content, answer.sign, alipayPublicKey, signType)) return true;
  return (
    answer.content.includes('\\/') &&
    verifyText(answer.content.replace(/\\\//g, '/'), answer.sign, alipayPublicKey, signType)
  );
}

/** Builds a signed answer body as Alipay writes it: `{"<rootKey>":<content>,"sign":"…"}`. */
export function signAnswer(
  rootKey: string,
  content: string,
  key: KeyObject,
  signType: AlipaySignType = 'RSA2',
): string {
  return `{${JSON.stringify(rootKey)}:${content},"sign":${JSON.stringify(signText(content, key, signType))}}`;
}
