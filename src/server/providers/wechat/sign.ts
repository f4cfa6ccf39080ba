/**
 * WeChat Pay signatures, both API generations, with node:crypto only (research note §2.2, §2.6):
 *
 * v2: every field with a non-empty value except `sign`, sorted by key (ASCII), joined `k=v&k=v`, then
 *     `&key=<API key>`; MD5 → uppercase hex, or HMAC-SHA256 keyed with the API key over the same string →
 *     uppercase hex. `sign_type` takes part when present. Verifying = the same over the received fields.
 * v3: request string `METHOD\nPATH[?QUERY]\ntimestamp\nnonce\nbody\n`, SHA256withRSA with the merchant's API
 *     key, Base64, sent as `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",
 *     serial_no="…",signature="…"`; replies and callbacks signed over `timestamp\nnonce\nbody\n` with the
 *     platform key (or the WeChat Pay public key), checked here; callback resources are AES-GCM with the
 *     APIv3 key (32 bytes → AES-256; the published W4 vector uses a 16-byte key → AES-128).
 */
import {
  KeyLike,
  X509Certificate,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  randomBytes,
  sign as rsaSign,
  timingSafeEqual,
  verify as rsaVerify,
} from 'node:crypto';

export type V2SignType = 'MD5' | 'HMAC-SHA256';

/** The v2 string to sign, without `&key=` (exported for the known-answer tests). */
export function v2SignString(fields: Record<string, string | undefined>): string {
  return Object.keys(fields)
    .filter((k) => k !== 'sign' && fields[k] !== undefined && fields[k] !== '')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
}

export function signV2(fields: Record<string, string | undefined>, apiKey: string, type: V2SignType): string {
  const s = `${v2SignString(fields)}&key=${apiKey}`;
  const h =
    type === 'MD5' ? createHash('md5').update(s, 'utf8') : createHmac('sha256', apiKey).update(s, 'utf8');
  return h.digest('hex').toUpperCase();
}

/** True when `fields.sign` is the v2 signature of the other fields. Unknown new fields take part, as required. */
export function verifyV2(fields: Record<string, string>, apiKey: string, type: V2SignType): boolean {
  const got = fields.sign;
  if (typeof got !== 'string' || got.length === 0) return false;
  return safeEqual(signV2(fields, apiKey, type), got.toUpperCase());
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Base62 nonce, as the SDKs make them (32 characters by default). */
export function nonce(size = 32): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(size * 2);
  let out = '';
  for (let i = 0; i < bytes.length && out.length < size; i++) if (bytes[i] < 248) out += abc[bytes[i] % 62];
  while (out.length < size) out += 'A';
  return out;
}

export function v3RequestMessage(
  method: string,
  pathAndQuery: string,
  timestamp: string,
  nonceStr: string,
  body: string,
): string {
  return `${method.toUpperCase()}\n${pathAndQuery}\n${timestamp}\n${nonceStr}\n${body}\n`;
}

export function v3ResponseMessage(timestamp: string, nonceStr: string, body: string): string {
  return `${timestamp}\n${nonceStr}\n${body}\n`;
}

export function sha256WithRsa(message: string, privateKey: KeyLike): string {
  return rsaSign('sha256', Buffer.from(message, 'utf8'), privateKey).toString('base64');
}

export function verifySha256WithRsa(message: string, signatureB64: string, publicKey: KeyLike): boolean {
  try {
    return rsaVerify('sha256', Buffer.from(message, 'utf8'), publicKey, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

export interface V3Authorization {
  mchid: string;
  nonce_str: string;
  timestamp: string;
  serial_no: string;
  signature: string;
}

export function buildAuthorization(a: V3Authorization): string {
  return (
    `WECHATPAY2-SHA256-RSA2048 mchid="${a.mchid}",nonce_str="${a.nonce_str}",timestamp="${a.timestamp}",` +
    `serial_no="${a.serial_no}",signature="${a.signature}"`
  );
}

/** Reads an Authorization header (the gateway's side); undefined when it is not WECHATPAY2-SHA256-RSA2048. */
export function parseAuthorization(header: string | undefined): V3Authorization | undefined {
  if (!header) return undefined;
  const m = /^WECHATPAY2-SHA256-RSA2048\s+(.*)$/s.exec(header.trim());
  if (!m) return undefined;
  const out: Record<string, string> = {};
  const re = /\s*([a-z_]+)="([^"]*)"\s*(?:,|$)/gy;
  let hit: RegExpExecArray | null;
  let last = 0;
  while ((hit = re.exec(m[1])) !== null) {
    if (hit[1] in out) return undefined;
    out[hit[1]] = hit[2];
    last = re.lastIndex;
    if (last >= m[1].length) break;
  }
  if (last !== m[1].length) return undefined;
  for (const k of ['mchid', 'nonce_str', 'timestamp', 'serial_no', 'signature'])
    if (!out[k]) return undefined;
  return out as unknown as V3Authorization;
}

/** Upper-case hex serial of a certificate, without leading zero pairs stripped (as WeChat Pay prints it). */
export function certSerial(certPem: string): string {
  return new X509Certificate(certPem).serialNumber.toUpperCase();
}

export function publicKeyOf(pem: string): KeyLike {
  return pem.includes('CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
}

/** Decrypts a v3 callback/certificate `resource` (AEAD_AES_256_GCM; the key length picks AES-128/256). */
export function decryptResource(
  apiV3Key: string,
  nonceStr: string,
  associatedData: string,
  ciphertextB64: string,
): string {
  const key = Buffer.from(apiV3Key, 'utf8');
  const algo = key.length === 32 ? 'aes-256-gcm' : key.length === 16 ? 'aes-128-gcm' : undefined;
  if (!algo) throw new Error('the APIv3 key must be 32 bytes (16 for the published test vector)');
  const data = Buffer.from(ciphertextB64, 'base64');
  if (data.length < 16) throw new Error('the ciphertext is shorter than its tag');
  const d = createDecipheriv(algo, key, Buffer.from(nonceStr, 'utf8'));
  d.setAAD(Buffer.from(associatedData, 'utf8'));
  d.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString('utf8');
}
