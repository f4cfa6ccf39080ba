import { errorOf } from '../../test/support/errors';
import * as fc from 'fast-check';
import { LAN_MAX_DATAGRAM, LanKey, LanHeader, openEnvelope, readHeader, sealEnvelope } from './lan-envelope';
import { decodeLanBody, encodeLanBody, LAN_MESSAGE_TYPES, LanMessageType } from './lan-messages';

const key: LanKey = { id: 7, version: 2, key: Buffer.alloc(32, 0x11) };
const otherKey: LanKey = { id: 7, version: 2, key: Buffer.alloc(32, 0x22) };
const lookup = (id: number, version: number) => (id === key.id && version === key.version ? key : undefined);

function header(
  over: Partial<LanHeader> = {},
): Omit<LanHeader, 'version' | 'flags' | 'keyId' | 'keyVersion'> {
  return {
    type: 'offer',
    bootId: Buffer.from('0102030405060708', 'hex'),
    seq: 42,
    timestamp: 1_790_000_000_000,
    messageId: Buffer.from('00112233445566778899aabbccddeeff', 'hex'),
    sender: 'plugin-R1',
    recipient: '*',
    ...over,
  };
}

const offerBody = encodeLanBody('offer', {
  orderId: 'A-1001',
  registerId: 'R1',
  amount: { value: 1250, currency: 'CNY' },
  mode: 'broadcast',
  expiresAt: 1_790_000_060_000,
});

function expectProtocolError(fn: () => unknown, code?: string): void {
  const e = errorOf(fn);
  if (code) expect(e.code).toBe(code);
}

describe('LAN envelope', () => {
  it('round-trips header and body', () => {
    const datagram = sealEnvelope(header(), offerBody, key);
    const opened = openEnvelope(datagram, lookup);
    expect(opened.header).toMatchObject({
      version: 1,
      type: 'offer',
      keyId: 7,
      keyVersion: 2,
      seq: 42,
      timestamp: 1_790_000_000_000,
      sender: 'plugin-R1',
      recipient: '*',
    });
    expect(opened.header.bootId.toString('hex')).toBe('0102030405060708');
    expect(opened.header.messageId.toString('hex')).toBe('00112233445566778899aabbccddeeff');
    expect(decodeLanBody('offer', opened.plaintext)).toEqual({
      orderId: 'A-1001',
      registerId: 'R1',
      amount: { value: 1250, currency: 'CNY' },
      mode: 'broadcast',
      expiresAt: 1_790_000_060_000,
    });
  });

  it('keeps the header readable in the clear and the body secret', () => {
    const datagram = sealEnvelope(header(), offerBody, key);
    expect(datagram.subarray(0, 2).toString('ascii')).toBe('PC');
    expect(datagram.includes(Buffer.from('plugin-R1'))).toBe(true);
    expect(datagram.includes(Buffer.from('A-1001'))).toBe(false);
    expect(datagram.includes(Buffer.from('1250'))).toBe(false);
  });

  it('names an unknown key and rejects a wrong key as a bad seal', () => {
    const datagram = sealEnvelope(header(), offerBody, key);
    expectProtocolError(() => openEnvelope(datagram, () => undefined), 'lan.unknown_key');
    expectProtocolError(() => openEnvelope(datagram, () => otherKey), 'lan.bad_seal');
  });

  it('refuses to seal a datagram over the size limit', () => {
    const big = Buffer.alloc(LAN_MAX_DATAGRAM, 0x61);
    expectProtocolError(() => sealEnvelope(header(), big, key), 'lan.oversize');
  });

  it('rejects oversize and undersize datagrams before any crypto', () => {
    expectProtocolError(() => readHeader(Buffer.alloc(LAN_MAX_DATAGRAM + 1)), 'lan.oversize');
    expectProtocolError(() => readHeader(Buffer.alloc(10)), 'lan.malformed');
  });

  it('rejects bad header fields when sealing', () => {
    expectProtocolError(
      () => sealEnvelope(header({ sender: 'has space' }), offerBody, key),
      'lan.bad_sender',
    );
    expectProtocolError(() => sealEnvelope(header({ recipient: '' }), offerBody, key), 'lan.bad_recipient');
    expectProtocolError(() => sealEnvelope(header({ seq: 2 ** 32 }), offerBody, key), 'lan.bad_seq');
    expectProtocolError(
      () => sealEnvelope(header({ bootId: Buffer.alloc(4) }), offerBody, key),
      'lan.bad_boot_id',
    );
  });

  it('rejects every single flipped bit of a sealed datagram', () => {
    const datagram = sealEnvelope(header(), offerBody, key);
    let rejected = 0;
    for (let byte = 0; byte < datagram.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(datagram);
        copy[byte] ^= 1 << bit;
        expectProtocolError(() => openEnvelope(copy, lookup));
        rejected++;
      }
    }
    expect(rejected).toBe(datagram.length * 8);
  });

  it('property: any header and body round-trip, and any flipped bit is rejected', () => {
    const deviceId = fc.stringMatching(/^[A-Za-z0-9._:-]{1,32}$/);
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constantFrom(...LAN_MESSAGE_TYPES),
          bootId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
          seq: fc.nat({ max: 0xffffffff }),
          timestamp: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
          messageId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
          sender: deviceId,
          recipient: fc.oneof(deviceId, fc.constant('*')),
        }),
        fc.uint8Array({ maxLength: 600 }),
        fc.nat(),
        (h, body, flipAt) => {
          const hdr = {
            ...h,
            type: h.type as LanMessageType,
            bootId: Buffer.from(h.bootId),
            messageId: Buffer.from(h.messageId),
          };
          const datagram = sealEnvelope(hdr, Buffer.from(body), key);
          const opened = openEnvelope(datagram, lookup);
          expect(opened.plaintext.equals(Buffer.from(body))).toBe(true);
          expect(opened.header.sender).toBe(h.sender);
          expect(opened.header.seq).toBe(h.seq);
          const bit = flipAt % (datagram.length * 8);
          const copy = Buffer.from(datagram);
          copy[bit >> 3] ^= 1 << (bit & 7);
          expectProtocolError(() => openEnvelope(copy, lookup));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: random bytes never crash the decoder, only ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1400 }), (bytes) => {
        expectProtocolError(() => openEnvelope(Buffer.from(bytes), lookup));
      }),
      { numRuns: 2000 },
    );
  });

  it('property: random bytes behind a valid-looking header never crash the decoder', () => {
    const prefix = sealEnvelope(header(), offerBody, key).subarray(0, 47);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1100 }), (tail) => {
        expectProtocolError(() => openEnvelope(Buffer.concat([prefix, Buffer.from(tail)]), lookup));
      }),
      { numRuns: 2000 },
    );
  });
});
