/**
 * The server's signature on a payment result (DESIGN.md "Payment results"): Ed25519 over the canonical
 * JSON of `{"v":2,"store":<storeId>,"payment":…}`, as UTF-8. The plugin marks an order paid only on a result
 * that verifies here against the public key it pinned at registration *and its own store id*, whatever path
 * the result came by, so a device on the LAN cannot fake "paid" to the register, and a genuine payment of
 * another store (whose order id, register and amount may well match one of ours) is not ours. The store is
 * part of the signed document, not of the payment, so the verifier supplies the store it believes in and a
 * foreign result simply does not verify. `v` versions the signed document (v1 named no store and is no
 * longer accepted), so that one format can never be mistaken for another.
 *
 * Keys travel as text: the public key is the raw 32-byte Ed25519 key in standard base64 (what
 * `/v1/devices/register` hands out as `serverPublicKey`), the private key is PKCS #8 DER in standard
 * base64, which the server can keep in its database or a file; signPaymentResult also takes a KeyObject.
 * Signatures are 64 bytes in standard base64. Base64 is read strictly (padding, no whitespace, no url-safe
 * alphabet): one signature has one spelling.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson } from './canonical-json';
import { ProtocolError } from './errors';
import { isPayment, type Payment } from './states';

/** What the server pushes and devices relay: `{type:"payment.updated", payment, signature}` carries this. */
export interface SignedPaymentResult {
  payment: Payment;
  signature: string;
}

export interface ServerKeyPair {
  /** Raw 32-byte Ed25519 public key, base64. */
  publicKey: string;
  /** PKCS #8 DER private key, base64. Secret. */
  privateKey: string;
}

const SIGNED_DOCUMENT_VERSION = 2;
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410); the raw key follows it. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * Encodings of the points of small order (libsodium's list; the sign bit is ignored when comparing). With
 * such a "public key" OpenSSL accepts forged signatures, e.g. the identity point with R = identity and
 * S = 0 verifies for every message, so these keys are refused outright.
 */
const SMALL_ORDER_KEYS: readonly Buffer[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Buffer.from(hex, 'hex'));

export function generateServerKeyPair(): ServerKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKey: rawPublicKey(publicKey).toString('base64'),
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
  };
}

/** The base64 raw public key that belongs to a private key, for a server that stores only the private key. */
export function publicKeyFromPrivateKey(privateKey: string | KeyObject): string {
  return rawPublicKey(createPublicKey(toPrivateKey(privateKey))).toString('base64');
}

/** The base64 Ed25519 signature of a payment result. Refuses a malformed payment or key with a ProtocolError. */
export function signPaymentResult(payment: Payment, storeId: string, privateKey: string | KeyObject): string {
  checkSignable(payment, storeId);
  return sign(null, signedBytes(payment, storeId), toPrivateKey(privateKey)).toString('base64');
}

/**
 * signPaymentResult, with the Ed25519 arithmetic on libuv's thread pool instead of the caller's thread: the
 * same signature (Ed25519 is deterministic), for a server whose event loop is its bottleneck.
 */
export function signPaymentResultAsync(
  payment: Payment,
  storeId: string,
  privateKey: string | KeyObject,
): Promise<string> {
  checkSignable(payment, storeId);
  const bytes = signedBytes(payment, storeId);
  const key = toPrivateKey(privateKey);
  return new Promise((resolve, reject) =>
    sign(null, bytes, key, (error, signature) =>
      error ? reject(error) : resolve(signature.toString('base64')),
    ),
  );
}

function checkSignable(payment: Payment, storeId: string): void {
  if (typeof storeId !== 'string' || storeId.length === 0) {
    throw new ProtocolError(
      'signature.bad_store',
      'Refusing to sign a payment result without its store id.',
      {
        subject: 'storeId',
      },
    );
  }
  if (!isPayment(payment)) {
    throw new ProtocolError(
      'signature.bad_payment',
      'Refusing to sign a payment result that is not a well-formed payment.',
      { subject: 'payment' },
    );
  }
}

/**
 * The key object of the last public key verified with: a device verifies every result with the one pinned
 * server key, and building the object was a fifth of the cost of each verification.
 */
let lastPublicKey: { base64: string; key: KeyObject } | undefined;
function publicKeyObject(base64: string, raw: Buffer): KeyObject {
  if (lastPublicKey?.base64 !== base64)
    lastPublicKey = {
      base64,
      key: createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' }),
    };
  return lastPublicKey.key;
}

/**
 * True only when `payment` is a well-formed payment and `signature` is the server's signature of it, for the
 * store `storeId`, under `publicKeyBase64`. Never throws: garbage of any kind (bad base64, wrong lengths, wrong types, values that
 * have no canonical JSON, a small-order key) gives false.
 */
export function verifyPaymentResult(
  payment: unknown,
  signature: unknown,
  publicKeyBase64: unknown,
  storeId: unknown,
): payment is Payment {
  try {
    if (!isPayment(payment) || typeof storeId !== 'string' || storeId.length === 0) return false;
    const sig = strictBase64(signature, SIGNATURE_BYTES);
    const raw = strictBase64(publicKeyBase64, PUBLIC_KEY_BYTES);
    if (sig === undefined || raw === undefined || hasSmallOrder(raw)) return false;
    return verify(null, signedBytes(payment, storeId), publicKeyObject(publicKeyBase64 as string, raw), sig);
  } catch {
    return false;
  }
}

function signedBytes(payment: Payment, storeId: string): Buffer {
  return Buffer.from(canonicalJson({ v: SIGNED_DOCUMENT_VERSION, store: storeId, payment }), 'utf8');
}

function toPrivateKey(privateKey: string | KeyObject): KeyObject {
  let key: KeyObject | undefined;
  if (privateKey instanceof KeyObject) {
    key = privateKey;
  } else {
    const der = strictBase64(privateKey);
    try {
      key = der === undefined ? undefined : createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } catch {
      key = undefined;
    }
  }
  if (key === undefined || key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
    throw new ProtocolError(
      'signature.bad_private_key',
      'The server signing key is not an Ed25519 private key (PKCS #8 DER in base64).',
      { subject: 'privateKey' },
    );
  }
  return key;
}

function rawPublicKey(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return spki.subarray(SPKI_ED25519_PREFIX.length);
}

/** Decodes canonical, padded, standard base64 (of `bytes` length when given); undefined for anything else. */
function strictBase64(text: unknown, bytes?: number): Buffer | undefined {
  if (typeof text !== 'string') return undefined;
  const decoded = Buffer.from(text, 'base64');
  // Buffer.from skips characters it does not know; encoding back exposes every such leniency.
  if (decoded.toString('base64') !== text) return undefined;
  if (bytes !== undefined && decoded.length !== bytes) return undefined;
  return decoded;
}

function hasSmallOrder(raw: Buffer): boolean {
  return SMALL_ORDER_KEYS.some((bad) => bad.every((byte, i) => (i === 31 ? raw[i] & 0x7f : raw[i]) === byte));
}
