import { ProtocolError } from '../protocol/errors';
import { LAN_FIXED_HEADER, LanKey, openEnvelope, sealEnvelope } from '../protocol/lan-envelope';
import { encodeLanBody, LAN_MESSAGE_TYPES, LanMessageType } from '../protocol/lan-messages';
import { LanSealer, openDatagram } from './envelope-codec';
import { seededRandom } from '../../test/support/seeded-random';

const key: LanKey = { id: 0x01020304, version: 7, key: Buffer.alloc(32, 5) };
const other: LanKey = { id: 0x01020304, version: 8, key: Buffer.alloc(32, 6) };
const lookup = (id: number, version: number) =>
  id === key.id && version === key.version
    ? key
    : id === other.id && version === other.version
      ? other
      : undefined;

/** Mulberry32, so a failing case can be replayed from its seed. */

function bytes(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** The outcome of opening, reduced to what the endpoint acts on: the error code, or the header and body. */
function outcome(open: () => { header: object; plaintext: Buffer }) {
  try {
    const { header, plaintext } = open();
    const h = header as Record<string, unknown>;
    return {
      ok: {
        ...h,
        bootId: (h.bootId as Buffer).toString('hex'),
        messageId: (h.messageId as Buffer).toString('hex'),
        plaintext: plaintext.toString('hex'),
      },
    };
  } catch (e) {
    return { error: e instanceof ProtocolError ? e.code : `not a ProtocolError: ${String(e)}` };
  }
}

function sample(r: () => number) {
  const types = LAN_MESSAGE_TYPES;
  const type = types[Math.floor(r() * types.length)] as LanMessageType;
  return {
    type,
    bootId: bytes(r, 8),
    seq: Math.floor(r() * 2 ** 32),
    timestamp: 1_790_000_000_000 + Math.floor(r() * 1e9),
    messageId: bytes(r, 16),
    sender: ['P1', 'plugin-R1', 'T.1_a:b-c', 'x'.repeat(32)][Math.floor(r() * 4)],
    recipient: ['*', 'T1', 'U-2', 'y'.repeat(32)][Math.floor(r() * 4)],
    body: bytes(r, Math.floor(r() * 400)),
  };
}

describe(LanSealer.name, () => {
  it('writes exactly the bytes of the reference codec (sealEnvelope), for every type and 500 random headers', () => {
    const r = seededRandom(14);
    const sealers = new Map<string, LanSealer>();
    for (let i = 0; i < 500; i++) {
      const m = sample(r);
      const sealer = sealers.get(m.sender) ?? new LanSealer(m.sender);
      sealers.set(m.sender, sealer);
      const reference = sealEnvelope(m, m.body, key);
      expect(sealer.seal(m, m.body, key).equals(reference)).toBe(true);
    }
  });

  /** Keys at the edges of their fields, all sealed through the same per-recipient headers. */
  const keys: LanKey[] = [
    key,
    other,
    { id: 0xffffffff, version: 0xffff, key: Buffer.alloc(32, 0xff) },
    { id: 0, version: 0, key: Buffer.alloc(32, 0) },
  ];
  const edgeSeqs = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
  const edgeTimestamps = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER];

  /** The datagram as hex, or the code it was refused with. */
  function sealed(seal: () => Buffer): string {
    try {
      return seal().toString('hex');
    } catch (e) {
      return e instanceof ProtocolError ? e.code : `not a ProtocolError: ${String(e)}`;
    }
  }

  /** One seal through `sealWith`, its message id at `at` in a 64-byte pool (the ack pool path). */
  function edgeSample(r: () => number) {
    const m = sample(r);
    const at = Math.floor(r() * 49); // 0..48: the message id ends anywhere up to the pool's end
    const pool = bytes(r, 64);
    const pick = r();
    return {
      ...m,
      seq: pick < 0.5 ? edgeSeqs[Math.floor(r() * edgeSeqs.length)] : m.seq,
      timestamp: r() < 0.5 ? edgeTimestamps[Math.floor(r() * edgeTimestamps.length)] : m.timestamp,
      // Now and then a body that makes the datagram oversize (1200 bytes or more with its header).
      body: r() < 0.1 ? bytes(r, 1100 + Math.floor(r() * 200)) : m.body,
      pool,
      at,
      messageId: Buffer.from(pool.subarray(at, at + 16)),
      key: keys[Math.floor(r() * keys.length)],
    };
  }

  it('sealWith (seeded): message ids at pool offsets 0-48, four keys and edge sequences / timestamps through reused headers: the reference bytes, or its refusal', () => {
    const r = seededRandom(4848);
    const sealers = new Map<string, LanSealer>();
    const mismatches: object[] = [];
    const offsets = new Set<number>();
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      const m = edgeSample(r);
      const sealer = sealers.get(m.sender) ?? new LanSealer(m.sender);
      sealers.set(m.sender, sealer);
      const mine = sealed(() =>
        sealer.sealWith(m.type, m.bootId, m.seq, m.timestamp, m.pool, m.at, m.recipient, m.body, m.key),
      );
      const reference = sealed(() => sealEnvelope(m, m.body, m.key));
      if (mine !== reference) mismatches.push({ i, at: m.at, keyId: m.key.id, seq: m.seq, mine, reference });
      if (mismatches.length > 5) break;
      if (reference === 'lan.oversize') refused++;
      else offsets.add(m.at);
    }
    expect(mismatches).toEqual([]);
    // The run reached every offset, and refusals as well as datagrams.
    expect(offsets.size).toBe(49);
    expect(refused).toBeGreaterThan(0);
  });

  it('a datagram already returned is left unchanged by later seals through the same sealer and headers (seeded)', () => {
    const r = seededRandom(4747);
    const sealer = new LanSealer('P1');
    const kept: Array<{ datagram: Buffer; copy: Buffer; reference: Buffer }> = [];
    for (let i = 0; i < 600; i++) {
      const m = { ...edgeSample(r), sender: 'P1' };
      if (LAN_FIXED_HEADER + 4 + m.recipient.length + m.body.length + 16 > 1200) continue;
      const datagram = sealer.sealWith(
        m.type,
        m.bootId,
        m.seq,
        m.timestamp,
        m.pool,
        m.at,
        m.recipient,
        m.body,
        m.key,
      );
      // The inputs are scribbled over too: the datagram must not be a view of them either.
      const reference = sealEnvelope(m, m.body, m.key);
      m.pool.fill(0xaa);
      m.bootId.fill(0xbb);
      m.body.fill(0xcc);
      kept.push({ datagram, copy: Buffer.from(datagram), reference });
    }
    expect(kept.length).toBeGreaterThan(500);
    const changed = kept.flatMap(({ datagram, copy, reference }, i) =>
      datagram.equals(copy) && datagram.equals(reference) ? [] : [i],
    );
    expect(changed).toEqual([]);
  });

  it('a real offer: the same datagram as the reference codec, and it opens with either codec', () => {
    const body = encodeLanBody('offer', {
      orderId: 'A-1',
      registerId: 'R1',
      amount: { value: 1250, currency: 'CNY' },
      mode: 'unicast',
      expiresAt: 1_790_000_600_000,
    });
    const h = {
      type: 'offer' as const,
      bootId: Buffer.alloc(8, 1),
      seq: 41,
      timestamp: 1_790_000_000_123,
      messageId: Buffer.alloc(16, 2),
      sender: 'P1',
      recipient: 'T1',
    };
    const d = new LanSealer('P1').seal(h, body, key);
    expect(d.equals(sealEnvelope(h, body, key))).toBe(true);
    expect(openEnvelope(d, lookup).plaintext.equals(body)).toBe(true);
    expect(openDatagram(d, lookup).plaintext.equals(body)).toBe(true);
  });

  it('refuses what the reference codec refuses: a bad sender or recipient, an oversize body, a bad key', () => {
    const h = {
      type: 'offer' as const,
      bootId: Buffer.alloc(8),
      seq: 0,
      timestamp: 1_790_000_000_000,
      messageId: Buffer.alloc(16),
      recipient: 'T1',
    };
    expect(() => new LanSealer('bad id')).toThrow(/sender id/);
    expect(() => new LanSealer('P1').seal({ ...h, recipient: 'a/b' }, Buffer.alloc(1), key)).toThrow(
      /recipient/,
    );
    expect(() => new LanSealer('P1').seal(h, Buffer.alloc(1200), key)).toThrow(/under 1200/);
    expect(() => new LanSealer('P1').seal(h, Buffer.alloc(1), { ...key, key: Buffer.alloc(16) })).toThrow(
      /32 bytes/,
    );
    expect(() => new LanSealer('P1').seal({ ...h, seq: 2 ** 32 }, Buffer.alloc(1), key)).toThrow(/u32/);
  });
});

describe(openDatagram.name, () => {
  const r = seededRandom(1414);
  const sealed = Array.from({ length: 40 }, () => {
    const m = sample(r);
    return sealEnvelope(m, m.body, r() < 0.2 ? other : key);
  });

  it('agrees with the reference codec on valid datagrams, under the right and a missing key', () => {
    for (const d of sealed) {
      expect(outcome(() => openDatagram(d, lookup))).toEqual(outcome(() => openEnvelope(d, lookup)));
      expect(outcome(() => openDatagram(d, () => undefined))).toEqual({ error: 'lan.unknown_key' });
    }
  });

  it('fuzz (seeded): flipped bits, cut and grown datagrams, junk: refused with the same error code as the reference codec', () => {
    const f = seededRandom(2026);
    const codes = new Map<string, number>();
    const mismatches: object[] = [];
    for (let i = 0; i < 3000; i++) {
      const base = sealed[i % sealed.length];
      let d: Buffer;
      const kind = Math.floor(f() * 5);
      if (kind === 0) {
        d = Buffer.from(base);
        d[Math.floor(f() * d.length)] ^= 1 << Math.floor(f() * 8);
      } else if (kind === 1) d = base.subarray(0, Math.floor(f() * base.length));
      else if (kind === 2) d = Buffer.concat([base, bytes(f, 1 + Math.floor(f() * 1300))]);
      else if (kind === 3) d = bytes(f, Math.floor(f() * 1300));
      else {
        // A plausible header over junk: gets as far as the key lookup or the seal.
        d = Buffer.from(base);
        bytes(f, d.length - 47).copy(d, 47);
      }
      const mine = JSON.stringify(outcome(() => openDatagram(d, lookup)));
      const reference = JSON.stringify(outcome(() => openEnvelope(d, lookup)));
      if (mine !== reference) mismatches.push({ i, kind, mine, reference });
      const code = (JSON.parse(mine) as { error?: string }).error;
      if (code) codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    expect(mismatches).toEqual([]);
    // The fuzz reached every kind of refusal, not only the first check.
    expect([...codes.keys()].sort()).toEqual(
      expect.arrayContaining(['lan.bad_seal', 'lan.bad_version', 'lan.malformed', 'lan.oversize']),
    );
  });

  it('hands out views of the datagram it was given, never of a buffer it reuses', () => {
    const a = openDatagram(sealed[0], lookup);
    const b = openDatagram(sealed[1], lookup);
    expect(a.header.messageId.buffer).toBe(sealed[0].buffer);
    expect(b.header.messageId.buffer).toBe(sealed[1].buffer);
    expect(a.header.messageId.equals(sealed[0].subarray(31, 47))).toBe(true);
  });
});
