import fc from 'fast-check';
import { ProtocolError } from '../../protocol/errors';
import { orderFileStem } from './file-names';

/** Order ids validateOrderId accepts: 1–64 printable characters, no space at either end. */
const orderId = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 64 })
  .filter((s) => [...s].length <= 64 && !/[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u.test(s) && !/^\s|\s$/u.test(s));

describe(orderFileStem.name, () => {
  it.each([
    ['A-1001', 'A-1001'],
    ['XS.2025_01', 'XS.2025_01'],
    ['../../etc/x', '%2E.%2F..%2Fetc%2Fx'],
    ['a\\b', 'a%5Cb'],
    ['.env', '%2Eenv'],
    ['100%', '100%25'],
    ['单号1', '%E5%8D%95%E5%8F%B71'],
    ['CON', '%43ON'],
    ['nul.txt', '%6Eul.txt'],
    ['a b', 'a%20b'],
  ])('%j → %j', (id, stem) => {
    expect(orderFileStem(id)).toBe(stem);
  });

  it('refuses what is not an order id', () => {
    expect(() => orderFileStem('')).toThrow(ProtocolError);
    expect(() => orderFileStem('a\nb')).toThrow(ProtocolError);
  });

  it('gives a safe, short, unique name for every order id', () => {
    const seen = new Map<string, string>();
    fc.assert(
      fc.property(orderId, (id) => {
        const stem = orderFileStem(id);
        expect(stem).toMatch(/^[A-Za-z0-9_%-][A-Za-z0-9._%~-]*$/);
        expect(stem.length).toBeLessThanOrEqual(150);
        const other = seen.get(stem);
        if (other !== undefined) expect(other).toBe(id);
        seen.set(stem, id);
        // Short names decode back to the id, which is how a host finds its file.
        if (!stem.includes('~')) expect(decodeURIComponent(stem)).toBe(id);
      }),
      { numRuns: 2000 },
    );
  });

  it('shortens a long id with a hash, still unique', () => {
    const a = orderFileStem('单'.repeat(64));
    const b = orderFileStem(`${'单'.repeat(63)}双`);
    expect(a).toMatch(/^(%E5%8D%95)+.*~[0-9a-f]{32}$/);
    expect(a.length).toBeLessThanOrEqual(150);
    expect(a).not.toBe(b);
  });
});
