import { errorOf } from '../../test/support/errors';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { canonicalJson } from './canonical-json';
import { CURRENCIES } from './money';
import {
  generateServerKeyPair,
  publicKeyFromPrivateKey,
  signPaymentResult,
  signPaymentResultAsync,
  verifyPaymentResult,
  type SignedPaymentResult,
} from './payment-signature';
import { PAYMENT_STATUSES, type Payment } from './states';

const STORE = 'store_tea_house';
const server = generateServerKeyPair();
const otherServer = generateServerKeyPair();

const payment: Payment = {
  id: 'pay_01J2',
  orderId: 'A-1001',
  registerId: 'R1',
  amount: { value: 1250, currency: 'CNY' },
  status: 'succeeded',
  method: { type: 'wallet_code', code: '280000000000000000' },
  createdAt: '2025-01-31T09:15:00.000Z',
  updatedAt: '2025-01-31T09:15:01.000Z',
};

const signature = signPaymentResult(payment, STORE, server.privateKey);

function flipBit(base64: string, bit: number): string {
  const bytes = Buffer.from(base64, 'base64');
  bytes[bit >> 3] ^= 1 << (bit & 7);
  return bytes.toString('base64');
}

describe('generateServerKeyPair', () => {
  test('gives a raw 32-byte public key and a PKCS #8 Ed25519 private key, both base64', () => {
    expect(Buffer.from(server.publicKey, 'base64')).toHaveLength(32);
    const key = createPrivateKey({
      key: Buffer.from(server.privateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    expect(key.asymmetricKeyType).toBe('ed25519');
    expect(server.publicKey).not.toBe(otherServer.publicKey);
  });

  test('the public key can be derived again from the private key, as text or KeyObject', () => {
    expect(publicKeyFromPrivateKey(server.privateKey)).toBe(server.publicKey);
    const key = createPrivateKey({
      key: Buffer.from(server.privateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    expect(publicKeyFromPrivateKey(key)).toBe(server.publicKey);
  });
});

describe('signPaymentResult and verifyPaymentResult', () => {
  test('a signed result verifies with the signing server’s public key', () => {
    const result: SignedPaymentResult = { payment, signature };
    expect(Buffer.from(result.signature, 'base64')).toHaveLength(64);
    expect(verifyPaymentResult(result.payment, result.signature, server.publicKey, STORE)).toBe(true);
  });

  test('signs with a KeyObject as well, to the same signature (Ed25519 is deterministic)', () => {
    const key = createPrivateKey({
      key: Buffer.from(server.privateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    expect(signPaymentResult(payment, STORE, key)).toBe(signature);
  });

  test('the thread-pool variant gives the same signature, and refuses what the other refuses', async () => {
    const key = createPrivateKey({
      key: Buffer.from(server.privateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    await expect(signPaymentResultAsync(payment, STORE, key)).resolves.toBe(signature);
    await expect(signPaymentResultAsync(payment, STORE, server.privateKey)).resolves.toBe(signature);
    const other = {
      ...payment,
      amount: { value: payment.amount.value + 1, currency: payment.amount.currency },
    };
    const otherSignature = await signPaymentResultAsync(other, STORE, key);
    expect(verifyPaymentResult(other, otherSignature, server.publicKey, STORE)).toBe(true);
    expect(verifyPaymentResult(payment, otherSignature, server.publicKey, STORE)).toBe(false);
    expect(() => signPaymentResultAsync({ ...payment, status: 'paid' } as never, STORE, key)).toThrow(
      /well-formed payment/,
    );
  });

  test('signs the canonical JSON of {v:2, store, payment} in UTF-8, so any Ed25519 implementation can check it', () => {
    const jwk = {
      kty: 'OKP',
      crv: 'Ed25519',
      x: Buffer.from(server.publicKey, 'base64').toString('base64url'),
    };
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    const sig = Buffer.from(signature, 'base64');
    const document = Buffer.from(canonicalJson({ v: 2, store: STORE, payment }), 'utf8');
    expect(verify(null, document, key, sig)).toBe(true);
    // Neither the version-1 document (which named no store) nor another store's is what was signed.
    expect(verify(null, Buffer.from(canonicalJson({ v: 1, payment })), key, sig)).toBe(false);
    expect(
      verify(null, Buffer.from(canonicalJson({ v: 2, store: 'store_next_door', payment })), key, sig),
    ).toBe(false);
  });

  test("another store's genuine result does not verify for this store, though order, register and amount match", () => {
    const theirs = signPaymentResult(payment, 'store_next_door', server.privateKey);
    expect(verifyPaymentResult(payment, theirs, server.publicKey, 'store_next_door')).toBe(true);
    expect(verifyPaymentResult(payment, theirs, server.publicKey, STORE)).toBe(false);
    for (const store of ['', undefined, null, 7])
      expect(verifyPaymentResult(payment, signature, server.publicKey, store)).toBe(false);
    expect(() => signPaymentResult(payment, '', server.privateKey)).toThrow(/without its store id/);
  });

  test('verification does not depend on the order of the payment’s keys', () => {
    const reordered = Object.fromEntries(Object.entries(payment).reverse()) as unknown as Payment;
    expect(verifyPaymentResult(reordered, signature, server.publicKey, STORE)).toBe(true);
  });

  test.each<[string, (p: Payment) => unknown]>([
    ['amount value', (p) => ({ ...p, amount: { ...p.amount, value: p.amount.value + 1 } })],
    ['amount currency', (p) => ({ ...p, amount: { ...p.amount, currency: 'JPY' } })],
    ['status', (p) => ({ ...p, status: 'refunded' })],
    ['orderId', (p) => ({ ...p, orderId: 'A-1002' })],
    ['registerId', (p) => ({ ...p, registerId: 'R2' })],
    ['id', (p) => ({ ...p, id: 'pay_01J3' })],
    ['method code', (p) => ({ ...p, method: { ...p.method, code: '280000000000000001' } })],
    ['method type', (p) => ({ ...p, method: { ...p.method, type: 'card' } })],
    ['an added method field', (p) => ({ ...p, method: { ...p.method, extra: true } })],
    ['an added failure', (p) => ({ ...p, failure: { code: 'x', message: 'y' } })],
    ['an added top-level field', (p) => ({ ...p, note: 'paid' })],
    ['createdAt', (p) => ({ ...p, createdAt: '2025-01-31T09:15:00.001Z' })],
    ['updatedAt', (p) => ({ ...p, updatedAt: '2025-01-31T09:15:01.001Z' })],
  ])('changing the %s breaks the signature', (_field, change) => {
    expect(verifyPaymentResult(change(payment), signature, server.publicKey, STORE)).toBe(false);
  });

  test('a signature by another key does not verify', () => {
    const forged = signPaymentResult(payment, STORE, otherServer.privateKey);
    expect(verifyPaymentResult(payment, forged, server.publicKey, STORE)).toBe(false);
    expect(verifyPaymentResult(payment, signature, otherServer.publicKey, STORE)).toBe(false);
  });

  test.each<[string, unknown]>([
    ['empty', ''],
    ['not base64', 'not base64!'],
    ['missing padding', signature.replace(/=+$/, '')],
    ['with a newline', `${signature}\n`],
    ['url-safe alphabet', Buffer.from(signature, 'base64').toString('base64url')],
    ['63 bytes', Buffer.from(signature, 'base64').subarray(0, 63).toString('base64')],
    ['65 bytes', Buffer.concat([Buffer.from(signature, 'base64'), Buffer.alloc(1)]).toString('base64')],
    ['a Buffer', Buffer.from(signature, 'base64')],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', { signature }],
  ])('a garbage signature (%s) gives false', (_name, garbage) => {
    expect(verifyPaymentResult(payment, garbage, server.publicKey, STORE)).toBe(false);
  });

  test.each<[string, unknown]>([
    ['empty', ''],
    ['31 bytes', Buffer.from(server.publicKey, 'base64').subarray(0, 31).toString('base64')],
    [
      '33 bytes',
      Buffer.concat([Buffer.from(server.publicKey, 'base64'), Buffer.alloc(1)]).toString('base64'),
    ],
    ['the private key', server.privateKey],
    [
      'SPKI DER instead of raw',
      createPublicKey(
        createPrivateKey({ key: Buffer.from(server.privateKey, 'base64'), format: 'der', type: 'pkcs8' }),
      )
        .export({ format: 'der', type: 'spki' })
        .toString('base64'),
    ],
    ['not a point on the curve', Buffer.alloc(32, 0xff).toString('base64')],
    ['a number', 1],
    ['null', null],
  ])('a garbage public key (%s) gives false', (_name, garbage) => {
    expect(verifyPaymentResult(payment, signature, garbage, STORE)).toBe(false);
  });

  test('a small-order public key is refused, though OpenSSL would accept a forgery under it', () => {
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    const forged = Buffer.concat([identity, Buffer.alloc(32)]); // R = identity, S = 0
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), identity]);
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const document = Buffer.from(canonicalJson({ v: 1, payment }), 'utf8');
    expect(verify(null, document, key, forged)).toBe(true);
    expect(verifyPaymentResult(payment, forged.toString('base64'), identity.toString('base64'), STORE)).toBe(
      false,
    );
    // The same point with its sign bit set is the same small-order key.
    identity[31] |= 0x80;
    expect(verifyPaymentResult(payment, forged.toString('base64'), identity.toString('base64'), STORE)).toBe(
      false,
    );
  });

  test.each<[string, unknown]>([
    ['null', null],
    ['a string', 'payment'],
    ['an empty object', {}],
    ['an amount in floating point', { ...payment, amount: { value: 12.5, currency: 'CNY' } }],
    ['a function inside', { ...payment, method: { type: 'wallet_code', code: () => '1' } }],
    ['a BigInt inside', { ...payment, method: { type: 'wallet_code', n: 1n } }],
  ])('a garbage payment (%s) gives false', (_name, garbage) => {
    expect(verifyPaymentResult(garbage, signature, server.publicKey, STORE)).toBe(false);
  });

  test('a correctly signed document that is not a well-formed payment does not verify', () => {
    const bad = { ...payment, status: 'done' };
    const key = createPrivateKey({
      key: Buffer.from(server.privateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    const sig = sign(null, Buffer.from(canonicalJson({ v: 1, payment: bad })), key).toString('base64');
    expect(verifyPaymentResult(bad, sig, server.publicKey, STORE)).toBe(false);
  });

  test('refuses to sign a malformed payment', () => {
    const err = errorOf(() =>
      signPaymentResult({ ...payment, amount: { value: 0, currency: 'CNY' } }, STORE, server.privateKey),
    );
    expect(err.code).toBe('signature.bad_payment');
  });

  test.each<[string, unknown]>([
    ['empty', ''],
    ['garbage', 'not a key'],
    ['a raw public key', server.publicKey],
    [
      'an EC private key',
      generateKeyPairSync('ec', { namedCurve: 'P-256' })
        .privateKey.export({ format: 'der', type: 'pkcs8' })
        .toString('base64'),
    ],
    [
      'a public KeyObject',
      createPublicKey(
        createPrivateKey({ key: Buffer.from(server.privateKey, 'base64'), format: 'der', type: 'pkcs8' }),
      ),
    ],
  ])('refuses to sign with %s as the private key', (_name, key) => {
    const err = errorOf(() => signPaymentResult(payment, STORE, key as string));
    expect(err.code).toBe('signature.bad_private_key');
  });
});

describe('properties', () => {
  const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 });
  const time = fc
    .date({
      min: new Date('2000-01-01T00:00:00Z'),
      max: new Date('2100-01-01T00:00:00Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString());
  const anyPayment: fc.Arbitrary<Payment> = fc
    .record({
      id: text,
      orderId: text,
      registerId: text,
      amount: fc.record({
        value: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        currency: fc.constantFrom(...CURRENCIES),
      }),
      status: fc.constantFrom(...PAYMENT_STATUSES),
      method: fc.record({ type: text, code: fc.string() }),
      failure: fc.option(fc.record({ code: text, message: fc.string() }), { nil: undefined }),
      createdAt: time,
      updatedAt: time,
    })
    .map(({ failure, ...rest }) => (failure === undefined ? rest : { ...rest, failure }));

  test('any payment signed by the server verifies, and not under another key', () => {
    fc.assert(
      fc.property(anyPayment, (p) => {
        const sig = signPaymentResult(p, STORE, server.privateKey);
        expect(verifyPaymentResult(p, sig, server.publicKey, STORE)).toBe(true);
        expect(verifyPaymentResult(p, sig, otherServer.publicKey, STORE)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  test('flipping any single bit of a signature makes it fail', () => {
    fc.assert(
      fc.property(anyPayment, fc.integer({ min: 0, max: 511 }), (p, bit) => {
        const sig = signPaymentResult(p, STORE, server.privateKey);
        expect(verifyPaymentResult(p, flipBit(sig, bit), server.publicKey, STORE)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  test('every bit of the fixed signature matters', () => {
    for (let bit = 0; bit < 512; bit++) {
      expect(verifyPaymentResult(payment, flipBit(signature, bit), server.publicKey, STORE)).toBe(false);
    }
  });

  test('arbitrary values as payment, signature or key never throw', () => {
    fc.assert(
      fc.property(
        fc.anything(),
        fc.oneof(fc.string(), fc.anything()),
        fc.oneof(fc.base64String(), fc.anything()),
        (p, s, k) => {
          expect(typeof verifyPaymentResult(p, s, k, STORE)).toBe('boolean');
        },
      ),
    );
  });
});
