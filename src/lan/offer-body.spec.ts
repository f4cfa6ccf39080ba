import { ProtocolError } from '../protocol/errors';
import { decodeLanBody, encodeLanBody, LanBody } from '../protocol/lan-messages';
import { encodeOfferBody, OfferBodyWriter, readOfferBody } from './offer-body';

type Offer = LanBody<'offer'>;

const offer = (over: Partial<Offer> = {}): Offer => ({
  orderId: '收银-0042',
  registerId: 'R1',
  amount: { value: 4200, currency: 'CNY' },
  mode: 'unicast',
  expiresAt: 1_795_000_000_000,
  ...over,
});

/** What a function returns, or the code and message of the ProtocolError it throws. */
function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return { error: e.code, message: e.message };
  }
}

/** Reads `text` by position and through the full parser; expects the same outcome and returns it. */
function readBothWays(text: string): unknown {
  const b = Buffer.from(text, 'utf8');
  const reference = outcome(() => decodeLanBody('offer', b));
  expect([text, outcome(() => readOfferBody(b))]).toEqual([text, reference]);
  return reference;
}

/** A seeded generator (an LCG's high bits: its low bits repeat with short periods), so a failure replays. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 8;
  };
}

describe('offer body', () => {
  const bodies: Offer[] = [
    offer(),
    offer({ orderId: 'S-00000001', registerId: 'POS-2', amount: { value: 1, currency: 'EUR' } }),
    offer({ orderId: '外卖#7 🍜 取餐', mode: 'broadcast', collect: true }),
    offer({ mode: 'multicast', collect: false, expiresAt: 0 }),
    offer({
      amount: { value: Number.MAX_SAFE_INTEGER, currency: 'JPY' },
      expiresAt: Number.MAX_SAFE_INTEGER,
    }),
    offer({ amount: { value: 100_000_000_000_000, currency: 'CNY' } }),
    offer({ orderId: 'x'.repeat(64) }),
    offer({ orderId: '单'.repeat(64) }),
  ];

  it('is written byte for byte as JSON.stringify writes it, Chinese, emoji and collect included', () => {
    const writer = new OfferBodyWriter();
    for (const body of bodies) {
      const reference = encodeLanBody('offer', body);
      expect(encodeOfferBody(body).equals(reference)).toBe(true);
      expect(writer.encode(body).equals(reference)).toBe(true);
    }
  });

  it('gives each body its own buffer: an earlier one is unchanged by the next (kept for retransmission)', () => {
    const writer = new OfferBodyWriter();
    const first = writer.encode(offer({ orderId: 'A-1' }));
    writer.encode(offer({ orderId: 'B-2222222', amount: { value: 99, currency: 'USD' } }));
    expect(JSON.parse(first.toString('utf8'))).toEqual(offer({ orderId: 'A-1' }));
  });

  it('writes strings JSON must escape (a quote, a backslash, a lone surrogate) as JSON.stringify does', () => {
    for (const orderId of ['A"1', 'C:\\orders\\7', 'half \ud83c', '\udf5c first', 'pair 🍜 then \ud800'])
      expect(encodeOfferBody(offer({ orderId })).equals(encodeLanBody('offer', offer({ orderId })))).toBe(
        true,
      );
  });

  it('refuses what encodeLanBody refuses, with the same error naming the field', () => {
    const bad: unknown[] = [
      offer({ orderId: '' }),
      offer({ orderId: 'x'.repeat(65) }),
      offer({ orderId: 'tab\there' }),
      offer({ amount: { value: 0, currency: 'CNY' } }),
      offer({ amount: { value: 12.5, currency: 'CNY' } }),
      offer({ amount: { value: 100, currency: 'rmb' } }),
      offer({ mode: 'anycast' as Offer['mode'] }),
      offer({ expiresAt: -1 }),
      { ...offer(), extra: 1 },
    ];
    for (const body of bad) {
      const reference = outcome(() => encodeLanBody('offer', body as Offer));
      expect(reference).toMatchObject({ error: 'lan.malformed' });
      expect(outcome(() => encodeOfferBody(body as Offer))).toEqual(reference);
    }
  });

  it('is read by position into the same body as the full parser reads', () => {
    for (const body of bodies) {
      const bytes = encodeOfferBody(body);
      expect(readOfferBody(bytes)).toEqual(body);
      expect(readOfferBody(bytes)).toEqual(decodeLanBody('offer', bytes));
    }
  });

  it('reads every other valid JSON form through the full parser: spacing, key order, escapes, numbers', () => {
    const texts = [
      JSON.stringify(offer(), null, 1),
      JSON.stringify(Object.fromEntries(Object.entries(offer()).reverse())),
      '{"orderId":"\\u6536\\u94f6-0042","registerId":"R1","amount":{"value":4200,"currency":"CNY"},"mode":"unicast","expiresAt":1795000000000}',
      '{"orderId":"A\\"1","registerId":"R1","amount":{"value":4200,"currency":"CNY"},"mode":"unicast","expiresAt":1795000000000}',
      '{"orderId":"A1","registerId":"R1","amount":{"value":4.2e3,"currency":"CNY"},"mode":"unicast","expiresAt":1795000000000}',
      '{"orderId":"A1","registerId":"R1","amount":{"value":4200.0,"currency":"CNY"},"mode":"unicast","expiresAt":1795000000000}',
      '{"orderId":"A1","registerId":"R1","amount":{"value":4200,"currency":"CNY"},"mode":"unicast","expiresAt":1795000000000,"collect":true }',
    ];
    for (const text of texts) expect(readBothWays(text)).toHaveProperty('ok');
  });

  it('refuses what decodeLanBody refuses, with the same error naming the field', () => {
    const good = encodeOfferBody(offer()).toString('utf8');
    const texts = [
      good.replace('4200', '0'),
      good.replace('4200', '-5'),
      good.replace('4200', '042'),
      good.replace('4200', '42.5'),
      good.replace('4200', '12345678901234567'),
      good.replace('CNY', 'cny'),
      good.replace('"unicast"', '"anycast"'),
      good.replace('"R1"', '"R 1"'),
      good.replace('收银-0042', ''),
      good.replace('收银-0042', 'a\u0001b'),
      good.replace('}', ',"tip":1}'),
      good.slice(0, -1) + ',"collect":"yes"}',
      good.slice(0, -1) + ',"collect":true,"x":1}',
      good.slice(0, -1),
      good + ' x',
      good + '}',
      '{}',
      'null',
      '',
    ];
    for (const text of texts)
      expect([text, readBothWays(text)]).toEqual([text, expect.objectContaining({ error: 'lan.malformed' })]);
  });

  it('fuzz (seeded): a canonical body with one to three bytes changed is read as the full parser reads it', () => {
    const next = seeded(20261129);
    const bases = bodies.slice(0, 4).map((b) => encodeOfferBody(b));
    // Bytes that matter to the reader's steps, besides any byte at all.
    const telling = [
      0x22, 0x5c, 0x7d, 0x2c, 0x30, 0x31, 0x39, 0x2d, 0x2e, 0x65, 0x20, 0x01, 0xe6, 0x80, 0xff,
    ];
    for (let i = 0; i < 6000; i++) {
      const b = Buffer.from(bases[i % bases.length]);
      for (let k = 1 + (next() % 3); k > 0; k--)
        b[next() % b.length] = next() % 2 ? telling[next() % telling.length] : next() & 0xff;
      const cut = next() % 8 === 0 ? b.subarray(0, next() % b.length) : b;
      expect(outcome(() => readOfferBody(cut))).toEqual(outcome(() => decodeLanBody('offer', cut)));
    }
  });

  it('fuzz (seeded): random valid bodies are written as JSON.stringify writes them and read back whole', () => {
    const next = seeded(42);
    const alphabet = ['A', '7', '-', '#', ' ', '收', '银', '单', '号', 'é', '🍜', '"', '\\', '/'];
    for (let i = 0; i < 3000; i++) {
      const length = 1 + (next() % 20);
      let orderId = '';
      while (orderId.length < length) orderId += alphabet[next() % alphabet.length];
      const body = offer({
        orderId: orderId.slice(0, 64),
        amount: {
          value: 1 + (next() % 10 ** (1 + (next() % 9))),
          currency: ['CNY', 'EUR', 'HKD'][next() % 3],
        },
        mode: (['unicast', 'broadcast', 'multicast'] as const)[next() % 3],
        expiresAt: next() * 1000 + (next() % 1000),
        ...(next() % 3 === 0 ? { collect: next() % 2 === 0 } : {}),
      });
      const bytes = encodeOfferBody(body);
      expect(bytes.equals(encodeLanBody('offer', body))).toBe(true);
      expect(readOfferBody(bytes)).toEqual(body);
    }
  });
});
