import { errorOf } from '../../test/support/errors';
import fc from 'fast-check';
import { ProtocolError } from './errors';
import {
  isMessageId,
  messageIdFromHex,
  messageIdToHex,
  newMessageId,
  validateDeviceId,
  validateOrderId,
} from './ids';

describe('message ids', () => {
  test('are 16 random bytes, different each time', () => {
    const ids = Array.from({ length: 100 }, () => newMessageId());
    for (const id of ids) expect(isMessageId(id)).toBe(true);
    expect(new Set(ids.map(messageIdToHex)).size).toBe(100);
  });

  test('come from the given random source', () => {
    const sizes: number[] = [];
    const id = newMessageId((size) => {
      sizes.push(size);
      return Buffer.alloc(size, 0xab);
    });
    expect(sizes).toEqual([16]);
    expect(messageIdToHex(id)).toBe('ab'.repeat(16));
  });

  test('refuse a random source that gives the wrong length', () => {
    expect(errorOf(() => newMessageId(() => Buffer.alloc(15))).code).toBe('message_id.bad_random');
  });

  test('round-trip through hex', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const id = Buffer.from(bytes);
        const hex = messageIdToHex(id);
        expect(hex).toMatch(/^[0-9a-f]{32}$/);
        expect(messageIdFromHex(hex).equals(id)).toBe(true);
        expect(messageIdFromHex(hex.toUpperCase()).equals(id)).toBe(true);
      }),
    );
  });

  test.each<[string, unknown]>([
    ['too short', 'ab'.repeat(15)],
    ['too long', 'ab'.repeat(17)],
    ['an odd digit count', `${'ab'.repeat(15)}abc`],
    ['not hex', 'zz'.repeat(16)],
    ['with spaces', ` ${'ab'.repeat(16)}`],
    ['not text', 42],
  ])('refuse hex that is %s', (_name, hex) => {
    const err = errorOf(() => messageIdFromHex(hex as string));
    expect(err.code).toBe('message_id.bad_hex');
    expect(err.message).toContain(typeof hex === 'string' ? JSON.stringify(hex) : String(hex));
  });

  test('refuse to write a buffer of the wrong length as a message id', () => {
    expect(errorOf(() => messageIdToHex(Buffer.alloc(8))).code).toBe('message_id.bad_length');
    expect(isMessageId(new Uint8Array(16))).toBe(false);
  });
});

describe('validateOrderId', () => {
  test.each(['1', 'A-1001', '订单 2025-0001', 'x'.repeat(64), '😀'.repeat(64), "O'Brien #3 (table 4)"])(
    'accepts %j',
    (id) => {
      expect(validateOrderId(id)).toBe(id);
    },
  );

  test.each<[string, unknown, RegExp]>([
    ['empty', '', /is empty/],
    ['too long', 'x'.repeat(65), /65 characters long/],
    ['too long in code points', '😀'.repeat(65), /65 characters long/],
    ['with a newline', 'A\n1', /U\+000A at position 2/],
    ['with a NUL', 'A\u00001', /U\+0000/],
    ['with DEL', 'A\u007f', /U\+007F/],
    ['with a C1 control', 'A\u0085', /U\+0085/],
    ['with a bidi override', 'A\u202e1', /U\+202E/],
    ['with a zero-width space', 'A\u200b1', /U\+200B/],
    ['with a lone surrogate', 'A\ud800', /U\+D800/],
    ['with a line separator', 'A\u20281', /U\+2028/],
    ['with a leading space', ' 42', /starts or ends with a space/],
    ['with a trailing ideographic space', '42\u3000', /starts or ends with a space/],
    ['only spaces', '   ', /starts or ends with a space/],
    ['a number', 42, /is not text/],
    ['null', null, /is not text/],
    ['undefined', undefined, /is not text/],
  ])('refuses an id %s, saying why', (_name, id, why) => {
    const err = errorOf(() => validateOrderId(id));
    expect(err.code).toBe('order.bad_id');
    expect(err.subject).toBe('orderId');
    expect(err.message).toMatch(why);
    if (typeof id === 'string' && id.length < 20) expect(err.message).toContain(JSON.stringify(id));
  });

  test('never throws anything but a ProtocolError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.anything()), (id) => {
        try {
          expect(validateOrderId(id)).toBe(id);
        } catch (e) {
          expect(e).toBeInstanceOf(ProtocolError);
        }
      }),
    );
  });
});

describe('validateDeviceId', () => {
  test.each(['T1', 'plugin-R1', 'a.b_c:d-e', 'x'.repeat(32)])('accepts %j', (id) => {
    expect(validateDeviceId(id)).toBe(id);
  });

  test.each<unknown>(['', 'x'.repeat(33), 'T 1', 'T1\n', 'T/1', 'Tü', 'T1;', 42, null, Object.create(null)])(
    'refuses %p',
    (id) => {
      const err = errorOf(() => validateDeviceId(id));
      expect(err.code).toBe('device.bad_id');
      expect(err.subject).toBe('deviceId');
      if (typeof id === 'string') expect(err.message).toContain(JSON.stringify(id));
    },
  );
});
