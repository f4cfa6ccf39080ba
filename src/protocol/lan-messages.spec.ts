import { errorOf } from '../../test/support/errors';
import * as fc from 'fast-check';
import { ProtocolError } from './errors';
import {
  decodeLanBody,
  encodeLanBody,
  LAN_MESSAGE_TYPES,
  lanMessageTypeCode,
  lanMessageTypeFromCode,
  lanTypeNeedsAck,
  validateLanBody,
} from './lan-messages';

describe('LAN messages', () => {
  it('gives every type a distinct wire code that maps back', () => {
    const codes = LAN_MESSAGE_TYPES.map(lanMessageTypeCode);
    expect(new Set(codes).size).toBe(LAN_MESSAGE_TYPES.length);
    for (const t of LAN_MESSAGE_TYPES) expect(lanMessageTypeFromCode(lanMessageTypeCode(t))).toBe(t);
    expect(lanMessageTypeFromCode(0)).toBeUndefined();
    expect(lanMessageTypeFromCode(255)).toBeUndefined();
  });

  it('acks everything but ack, beacon and pong', () => {
    expect(LAN_MESSAGE_TYPES.filter((t) => !lanTypeNeedsAck(t)).sort()).toEqual([
      'ack',
      'beacon',
      'pong',
      'unhandled',
    ]);
  });

  it('accepts a valid offer and names the bad field of an invalid one', () => {
    const offer = {
      orderId: 'A-1',
      registerId: 'R1',
      amount: { value: 1250, currency: 'CNY' },
      mode: 'unicast',
      expiresAt: 1,
    };
    expect(validateLanBody('offer', offer)).toEqual(offer);
    expect(
      errorOf(() => validateLanBody('offer', { ...offer, amount: { value: 12.5, currency: 'CNY' } })).message,
    ).toContain('amount.value');
    expect(
      errorOf(() => validateLanBody('offer', { ...offer, amount: { value: 0, currency: 'CNY' } })).subject,
    ).toBe('amount.value');
    expect(
      errorOf(() => validateLanBody('offer', { ...offer, amount: { value: 1, currency: 'cny' } })).subject,
    ).toBe('amount.currency');
    expect(errorOf(() => validateLanBody('offer', { ...offer, mode: 'shout' })).subject).toBe('mode');
    expect(errorOf(() => validateLanBody('offer', { ...offer, orderId: '' })).subject).toBe('orderId');
    expect(errorOf(() => validateLanBody('offer', { ...offer, orderId: 'x'.repeat(65) })).subject).toBe(
      'orderId',
    );
    expect(errorOf(() => validateLanBody('offer', { ...offer, extra: 1 })).subject).toBe('extra');
    expect(errorOf(() => validateLanBody('offer', { ...offer, orderId: 'a\nb' })).message).toContain(
      'control',
    );
  });

  it('checks ack ids and claim answers', () => {
    expect(validateLanBody('ack', { ids: ['0'.repeat(32)] })).toEqual({ ids: ['0'.repeat(32)] });
    expect(errorOf(() => validateLanBody('ack', { ids: [] })).subject).toBe('ids');
    expect(errorOf(() => validateLanBody('ack', { ids: ['xyz'] })).subject).toBe('ids');
    expect(
      errorOf(() => validateLanBody('claim.denied', { orderId: 'A', reason: 'taken', terminal: 'bad id' }))
        .subject,
    ).toBe('terminal');
  });

  it('rejects bodies that are not JSON objects', () => {
    expect(errorOf(() => decodeLanBody('claim', Buffer.from('not json'))).code).toBe('lan.malformed');
    expect(errorOf(() => decodeLanBody('claim', Buffer.from('[1,2]'))).code).toBe('lan.malformed');
    expect(errorOf(() => decodeLanBody('claim', Buffer.from('null'))).code).toBe('lan.malformed');
  });

  it('encode refuses an invalid body instead of sending it', () => {
    expect(() => encodeLanBody('claim', { orderId: '' })).toThrow(ProtocolError);
  });

  it('property: random JSON never crashes a body validator', () => {
    fc.assert(
      fc.property(fc.constantFrom(...LAN_MESSAGE_TYPES), fc.json(), (type, json) => {
        try {
          decodeLanBody(type, Buffer.from(json));
        } catch (e) {
          expect(e).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
