import { ProtocolError } from '../protocol/errors';
import { decodeLanBody, encodeLanBody } from '../protocol/lan-messages';
import { AckBodyWriter, decodeAckBody, encodeAckBody, readAckIds } from './ack-body';

const id = (n: number) => n.toString(16).padStart(32, '0');

describe('ack body', () => {
  it('is written byte for byte as the JSON the protocol specifies, for 1 to 16 ids', () => {
    for (let n = 1; n <= 16; n++) {
      const ids = Array.from({ length: n }, (_, i) => id(0xabc0 + i));
      expect(encodeAckBody(ids).equals(encodeLanBody('ack', { ids }))).toBe(true);
      expect(decodeAckBody(encodeAckBody(ids))).toEqual({ ids });
    }
  });

  it('is written by AckBodyWriter into its own buffer with the same bytes, whatever was written before', () => {
    const writer = new AckBodyWriter();
    for (const n of [16, 1, 7, 16, 2, 1, 9]) {
      const ids = Array.from({ length: n }, (_, i) => id(0xfe00 + n * 31 + i));
      expect(Buffer.from(writer.write(ids)).equals(encodeAckBody(ids))).toBe(true);
    }
    // The first `count` ids of a longer list (LanEndpoint's batch, counted rather than emptied).
    const batch = Array.from({ length: 16 }, (_, i) => id(0xbe00 + i));
    for (const count of [3, 1, 16])
      expect(Buffer.from(writer.write(batch, count)).equals(encodeAckBody(batch.slice(0, count)))).toBe(true);
    // Ids it does not make (never 32 characters from LanEndpoint) and 17 ids: the plain encoder's bytes.
    expect(writer.write(['abc']).equals(encodeAckBody(['abc']))).toBe(true);
    const many = Array.from({ length: 17 }, (_, i) => id(i));
    expect(writer.write(many).equals(encodeAckBody(many))).toBe(true);
  });

  it('is read into a reused list by readAckIds, which then holds exactly the ack’s ids', () => {
    const list = ['left over'];
    for (const n of [3, 1, 16, 2, 16]) {
      const ids = Array.from({ length: n }, (_, i) => id(0x77 + i));
      readAckIds(encodeAckBody(ids), list);
      expect(list).toEqual(ids);
    }
    readAckIds(Buffer.from(`{ "ids": ["${id(5)}"] }`), list);
    expect(list).toEqual([id(5)]);
    expect(() => readAckIds(Buffer.from('{"ids":[]}'), list)).toThrow(ProtocolError);
  });

  it('reads any other valid JSON form through the full parser (spacing, escapes, key order)', () => {
    const ids = [id(1), id(2)];
    for (const text of [
      `{ "ids": ["${ids[0]}", "${ids[1]}"] }`,
      `{"ids":["\\u0030${ids[0].slice(1)}","${ids[1]}"]}`,
      `\n{"ids":["${ids[0]}","${ids[1]}"]}`,
    ])
      expect(decodeAckBody(Buffer.from(text))).toEqual(decodeLanBody('ack', Buffer.from(text)));
  });

  it('refuses what the validator refuses, with the same error: no ids, 17 ids, uppercase or short ids, junk', () => {
    const bad = [
      '{"ids":[]}',
      `{"ids":[${Array.from({ length: 17 }, (_, i) => `"${id(i)}"`).join(',')}]}`,
      `{"ids":["${id(1).toUpperCase().replace(/0/g, 'A')}"]}`,
      `{"ids":["${id(1).slice(1)}"]}`,
      `{"ids":["${id(1)}"],"x":1}`,
      `{"ids":["${id(1)}"]`,
      `{"ids":["${id(1).slice(0, 31)}g"]}`,
      `{"ids":["${id(1)}"."${id(2)}"]}`,
      'null',
      '',
    ];
    for (const text of bad) {
      const b = Buffer.from(text);
      let reference: unknown;
      try {
        decodeLanBody('ack', b);
      } catch (e) {
        reference = (e as ProtocolError).code;
      }
      expect(reference).toBe('lan.malformed');
      expect(() => decodeAckBody(b)).toThrow(ProtocolError);
    }
  });

  it('fuzz (seeded): a canonical body with one byte changed is read exactly as the full parser reads it', () => {
    const ids = [id(0x1234), id(0x5678), id(0x9abc)];
    const base = encodeAckBody(ids);
    // An LCG's high bits: its low bits repeat with short periods, which would narrow what is tried.
    let s = 7;
    const next = () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s >>> 8;
    };
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(base);
      b[next() % b.length] = next() & 0xff;
      const read = (f: () => unknown) => {
        try {
          return { ok: f() };
        } catch (e) {
          return { error: (e as ProtocolError).code };
        }
      };
      expect(read(() => decodeAckBody(b))).toEqual(read(() => decodeLanBody('ack', b)));
    }
  });
});
