/**
 * The `offer` body without a JSON round trip, as ack-body.ts does for acks. The wire stays exactly what
 * docs/protocol.md says (UTF-8 JSON); only the work changes:
 *
 *   - `encodeOfferBody` writes `{"orderId":…,"registerId":…,"amount":{"value":…,"currency":…},"mode":…,
 *     "expiresAt":…}` (and `,"collect":…` when set) straight into a buffer, byte for byte what
 *     JSON.stringify writes for a body with its keys in that order, without the intermediate string. A
 *     string that JSON would escape (a quote, a backslash, a lone surrogate) goes through JSON.stringify.
 *   - `readOfferBody` reads a body in exactly that shape by position. Anything else (spacing, another key
 *     order, escapes, a number with a sign, fraction or exponent: all valid JSON that another
 *     implementation may send) goes through the full parser.
 *
 * Both run the same validator as `encodeLanBody` and `decodeLanBody`, so what is sent, accepted and
 * refused, and the error naming the field, are unchanged. Order numbers and register names in any script
 * (收银-0042) are written and read as UTF-8 directly.
 */
import { decodeLanBody, encodeLanBody, LanBody, validateLanBody } from '../protocol/lan-messages';

type OfferBody = LanBody<'offer'>;

const P_ORDER = '{"orderId":"';
const P_REGISTER = '","registerId":"';
const P_VALUE = '","amount":{"value":';
const P_CURRENCY = ',"currency":"';
const P_MODE = '"},"mode":"';
const P_EXPIRES = '","expiresAt":';
const P_COLLECT = ',"collect":';
const MODES = ['unicast', 'broadcast', 'multicast'] as const;

/** Bytes a valid body can take at most: orderId 64 UTF-16 units of up to 3 bytes each, the rest far less. */
const SCRATCH_BYTES = 512;

// The fixed parts, as bytes: copied by a loop, which costs less than a native write call per part.
const B_ORDER = Buffer.from(P_ORDER, 'latin1');
const B_REGISTER = Buffer.from(P_REGISTER, 'latin1');
const B_VALUE = Buffer.from(P_VALUE, 'latin1');
const B_CURRENCY = Buffer.from(P_CURRENCY, 'latin1');
const B_MODE = Buffer.from(P_MODE, 'latin1');
const B_EXPIRES = Buffer.from(P_EXPIRES, 'latin1');
const B_COLLECT_TRUE = Buffer.from(`${P_COLLECT}true}`, 'latin1');
const B_COLLECT_FALSE = Buffer.from(`${P_COLLECT}false}`, 'latin1');

function put(b: Buffer, at: number, part: Buffer): number {
  for (let i = 0; i < part.length; i++) b[at + i] = part[i];
  return at + part.length;
}

/**
 * Writes `s` as JSON.stringify writes it between its quotes, at `at`; returns the new end, or -1 if JSON
 * would escape something in it (a quote, a backslash, a control character, a lone surrogate). ASCII is
 * written by a loop; a string with anything else is written as UTF-8 by Buffer.write once it is checked.
 */
function putString(b: Buffer, at: number, s: string): number {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return -1;
    if (c < 0x80) continue;
    ascii = false;
    if (c >= 0xd800 && c <= 0xdfff) {
      // A high surrogate followed by a low one is a character JSON writes as is; anything else is escaped.
      if (c > 0xdbff) return -1;
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return -1;
      i++;
    }
  }
  if (!ascii) return at + b.write(s, at, 'utf8');
  for (let i = 0; i < s.length; i++) b[at + i] = s.charCodeAt(i);
  return at + s.length;
}

/** Writes a non-negative safe integer in decimal at `at`, as JSON.stringify does; returns the new end. */
function putDecimal(b: Buffer, at: number, n: number): number {
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    b[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

/**
 * Writes offer bodies: validated as `encodeLanBody('offer')` validates them, then written into a scratch
 * buffer of the writer's own and copied out at its exact length (the sender keeps it for retransmission).
 */
export class OfferBodyWriter {
  private readonly scratch = Buffer.alloc(SCRATCH_BYTES);

  encode(body: OfferBody): Buffer {
    validateLanBody('offer', body);
    const b = this.scratch;
    let at = put(b, 0, B_ORDER);
    at = putString(b, at, body.orderId);
    if (at >= 0) at = putString(b, put(b, at, B_REGISTER), body.registerId);
    if (at < 0) return encodeLanBody('offer', body);
    at = putDecimal(b, put(b, at, B_VALUE), body.amount.value);
    at = putString(b, put(b, at, B_CURRENCY), body.amount.currency); // validated: three capitals
    at = putString(b, put(b, at, B_MODE), body.mode); // validated: one of the modes
    at = putDecimal(b, put(b, at, B_EXPIRES), body.expiresAt);
    if (body.collect === undefined)
      b[at++] = 0x7d; // }
    else at = put(b, at, body.collect ? B_COLLECT_TRUE : B_COLLECT_FALSE);
    const out = Buffer.allocUnsafe(at);
    for (let i = 0; i < at; i++) out[i] = b[i];
    return out;
  }
}

const sharedWriter = new OfferBodyWriter();

/** The bytes of `JSON.stringify(body)` for a body with its keys in the protocol's order. */
export function encodeOfferBody(body: OfferBody): Buffer {
  return sharedWriter.encode(body);
}

// The reader's position in the body being read: -1 once its shape is off the canonical one. Module state,
// not an object per read; a read runs to its end without awaiting, so reads never interleave.
const EMPTY = Buffer.alloc(0);
let buf: Buffer = EMPTY;
let pos = 0;

/** Marks the body as not canonical. */
function off(): -1 {
  pos = -1;
  return -1;
}

function literal(text: string): boolean {
  if (pos < 0 || pos + text.length > buf.length) return off() > 0;
  for (let i = 0; i < text.length; i++) if (buf[pos + i] !== text.charCodeAt(i)) return off() > 0;
  pos += text.length;
  return true;
}

/** The end of a string's bytes (its closing quote), or -1 at an escape, a control byte or the body's end. */
function stringEnd(): number {
  if (pos < 0) return -1;
  for (let i = pos; i < buf.length; i++) {
    const c = buf[i];
    if (c === 0x22) return i;
    if (c === 0x5c || c < 0x20) break;
  }
  return off();
}

/** A string's text: its bytes decoded as UTF-8, as JSON.parse of the whole decoded text has them. */
function string(): string | undefined {
  const end = stringEnd();
  if (end < 0) return undefined;
  const s = buf.toString('utf8', pos, end);
  pos = end;
  return s;
}

/** A non-negative integer of at most 15 digits, with no sign, fraction or exponent; else -1. */
function integer(): number {
  if (pos < 0 || pos >= buf.length) return off();
  if (buf[pos] === 0x30) {
    pos++;
    return 0;
  }
  const start = pos;
  let n = 0;
  while (pos < buf.length && pos - start < 15 && buf[pos] >= 0x30 && buf[pos] <= 0x39)
    n = n * 10 + (buf[pos++] - 0x30);
  return pos === start ? off() : n;
}

/** The offer mode whose bytes are at [from, to), as the shared constant; undefined if it is none of them. */
function modeAt(b: Buffer, from: number, to: number): OfferBody['mode'] | undefined {
  for (const m of MODES) {
    if (m.length !== to - from) continue;
    let same = true;
    for (let i = 0; i < m.length && same; i++) same = b[from + i] === m.charCodeAt(i);
    if (same) return m;
  }
  return undefined;
}

function readCanonical(b: Buffer): OfferBody | undefined {
  buf = b;
  pos = 0;
  try {
    if (!literal(P_ORDER)) return undefined;
    const orderId = string();
    if (orderId === undefined || !literal(P_REGISTER)) return undefined;
    const registerId = string();
    if (registerId === undefined || !literal(P_VALUE)) return undefined;
    const value = integer();
    if (value < 0 || !literal(P_CURRENCY)) return undefined;
    const currency = string();
    if (currency === undefined || !literal(P_MODE)) return undefined;
    const modeFrom = pos;
    const modeTo = stringEnd();
    if (modeTo < 0) return undefined;
    const mode = modeAt(b, modeFrom, modeTo) ?? (b.toString('utf8', modeFrom, modeTo) as OfferBody['mode']);
    pos = modeTo;
    if (!literal(P_EXPIRES)) return undefined;
    const expiresAt = integer();
    if (expiresAt < 0) return undefined;
    const body: OfferBody = { orderId, registerId, amount: { value, currency }, mode, expiresAt };
    if (pos === b.length - 1 && b[pos] === 0x7d) return body;
    if (!literal(P_COLLECT)) return undefined;
    if (pos === b.length - 5 && literal('true}')) body.collect = true;
    else if (pos === b.length - 6 && literal('false}')) body.collect = false;
    else return undefined;
    return body;
  } finally {
    buf = EMPTY; // not kept alive past the read
  }
}

/**
 * Reads an offer body: the canonical shape by position, anything else through decodeLanBody('offer'); the
 * same body and the same refusals (a ProtocolError from the full validator) either way.
 */
export function readOfferBody(plaintext: Buffer): OfferBody {
  const body = readCanonical(plaintext);
  return body ? validateLanBody('offer', body) : decodeLanBody('offer', plaintext);
}
