/**
 * The `ack` body without a JSON round trip. An ack is sent for every acknowledged message and is the
 * commonest datagram on the LAN, and its body has one fixed shape: `{"ids":["<32 hex>",…]}` (1–16 ids).
 * The wire stays exactly what docs/protocol.md says (UTF-8 JSON, byte for byte what JSON.stringify
 * writes); only the work changes: the body is written from the ids directly, and a body in exactly that
 * canonical shape is read by position. Anything else (other spacing, key order, escapes: all still valid
 * JSON that another implementation may send) goes through the full parser and validator, so what is
 * accepted and refused is unchanged.
 */
import { decodeLanBody } from '../protocol/lan-messages';

const PREFIX = '{"ids":["';
const ID_LENGTH = 32;
/** Bytes of a canonical body with n ids: prefix 9, ids 32n, separators `","` 3(n-1), suffix `"]}` 3. */
const canonicalLength = (n: number) => PREFIX.length + ID_LENGTH * n + 3 * (n - 1) + 3;

/** Writes the body of an ack for these message ids (lowercase hex, as LanEndpoint produces them). */
export function encodeAckBody(ids: readonly string[]): Buffer {
  return Buffer.from(`${PREFIX}${ids.join('","')}"]}`, 'latin1');
}

/**
 * Writes ack bodies into a buffer of its own, the same bytes as `encodeAckBody` for ids of 32 characters:
 * no string is joined and no buffer allocated per ack. What `write` returns is valid until the next call
 * (the endpoint seals it at once). Other ids (never made by LanEndpoint) go through `encodeAckBody`.
 */
export class AckBodyWriter {
  private readonly scratch = Buffer.alloc(canonicalLength(16));
  /** One view of `scratch` per id count, made when first needed. */
  private readonly views: Buffer[] = [];

  /** The body for `ids[0]` to `ids[count - 1]` (all of `ids` by default). */
  write(ids: readonly string[], count = ids.length): Buffer {
    const n = count;
    if (n < 1 || n > 16) return encodeAckBody(ids.slice(0, n));
    for (let i = 0; i < n; i++) if (ids[i].length !== ID_LENGTH) return encodeAckBody(ids.slice(0, n));
    const b = this.scratch;
    let at = b.write(PREFIX, 0, 'latin1');
    for (let i = 0; i < n; i++) {
      if (i > 0) at += b.write('","', at, 'latin1');
      at += b.write(ids[i], at, 'latin1');
    }
    at += b.write('"]}', at, 'latin1');
    return (this.views[n] ??= b.subarray(0, at));
  }
}

function isLowerHex(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = b[i];
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

function hasBytes(b: Buffer, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Reads an ack body: the canonical shape by position, anything else through decodeLanBody('ack'). */
export function decodeAckBody(plaintext: Buffer): { ids: string[] } {
  const ids: string[] = [];
  readAckIds(plaintext, ids);
  return { ids };
}

/**
 * `decodeAckBody` into a list the caller reuses: afterwards it holds exactly the ack's ids (the same ids,
 * the same refusals: a ProtocolError from the full validator), with no result object or list per ack. The
 * ids are written by index and the length set last: emptying a list with `length = 0` frees its storage,
 * so every ack would allocate it again (152 B an ack, measured).
 */
export function readAckIds(plaintext: Buffer, ids: string[]): void {
  const len = plaintext.length;
  const n = (len - PREFIX.length) / (ID_LENGTH + 3);
  if (Number.isInteger(n) && n >= 1 && n <= 16 && canonicalLength(n) === len) {
    let ok = hasBytes(plaintext, 0, PREFIX) && hasBytes(plaintext, len - 3, '"]}');
    for (let i = 0, at = PREFIX.length; ok && i < n; i++, at += ID_LENGTH + 3) {
      if (!isLowerHex(plaintext, at, at + ID_LENGTH)) ok = false;
      else if (i < n - 1 && !hasBytes(plaintext, at + ID_LENGTH, '","')) ok = false;
      else ids[i] = plaintext.toString('latin1', at, at + ID_LENGTH);
    }
    if (ok) {
      if (ids.length !== n) ids.length = n;
      return;
    }
  }
  ids.length = 0;
  for (const id of decodeLanBody('ack', plaintext).ids) ids.push(id);
}
