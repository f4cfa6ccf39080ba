/**
 * The endpoint's hot path through the LAN envelope: the same bytes as `sealEnvelope` / `openEnvelope`
 * (src/protocol/lan-envelope.ts, the reference codec and the wire contract in docs/protocol.md), with
 * less work and less garbage per datagram. Issue 14 measured the reference codec at about a third of a
 * sealed round trip's CPU and most of its garbage: an object spread, a header and a nonce allocated and
 * zero-filled, a BigInt for the timestamp, two `Buffer.concat`s, copies of the boot and message ids.
 *
 * What changes is only how the bytes are produced:
 * - `LanSealer` belongs to one sender: its id's bytes are encoded once, and each recipient gets a header
 *   of its own, kept and rewritten in place for every datagram to it (sender and recipient already in
 *   it), which is the AEAD's associated data as it is and is then copied to the front of the datagram.
 *   The nonce lives in one scratch buffer (createCipheriv copies the IV, and setAAD reads the header,
 *   before they return, so reuse is safe), and the datagram is written once into a buffer from Node's
 *   shared pool (`Buffer.allocUnsafe`, never reused while referenced): header, ciphertext, tag.
 * - `DatagramOpener` runs the same checks as `readHeader` + `openEnvelope`, in the same order and with
 *   the same error codes (so drops are counted under the same reasons), and fills one reused record
 *   instead of building a header object; the nonce, the associated data, the tag and the ciphertext are
 *   handed to node:crypto from scratch buffers it owns (a `subarray` is an object per call: five per
 *   datagram). `openDatagram` is the same checks with a `LanHeader` whose boot and message ids are views
 *   into the datagram (the reference's shape, for callers that keep the header).
 *
 * Garbage per datagram that remains: node:crypto's cipher object and the buffers update / final /
 * getAuthTag return (Node can neither re-key a cipher with a new nonce nor write into a given buffer),
 * the datagram itself, and, when opening, the sender's id as a string.
 *
 * Nothing about security changes: every datagram is sealed with AES-256-GCM under the store key named in
 * its header, the whole clear header is the associated data, and nothing is believed before the tag
 * verifies. The specs check byte equality with the reference codec and agreement on fuzzed input.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { ProtocolError } from '../protocol/errors';
import { DEVICE_ID_CHARACTERS, DEVICE_ID_RULE, isDeviceId } from '../protocol/ids';
import {
  LAN_BROADCAST_RECIPIENT,
  LAN_FIXED_HEADER,
  LAN_MAGIC,
  LAN_MAX_DATAGRAM,
  LAN_MIN_DATAGRAM,
  LAN_PROTOCOL_VERSION,
  LAN_TAG_LENGTH,
  LanHeader,
  LanKey,
} from '../protocol/lan-envelope';
import { LanMessageType, lanMessageTypeCode, lanMessageTypeFromCode } from '../protocol/lan-messages';

const GCM_OPTIONS = { authTagLength: LAN_TAG_LENGTH };
const TWO_32 = 2 ** 32;

function fail(code: string, message: string): never {
  throw new ProtocolError(code, message, { subject: 'datagram' });
}

/** Device id -> its length byte and ASCII bytes, checked once. */
function idField(id: string, what: 'sender' | 'recipient'): Buffer {
  if (what === 'sender' ? !isDeviceId(id) : id !== LAN_BROADCAST_RECIPIENT && !isDeviceId(id))
    fail(
      `lan.bad_${what}`,
      what === 'sender'
        ? `sender id "${id}" must be ${DEVICE_ID_RULE}`
        : `recipient id "${id}" must be "*" or ${DEVICE_ID_RULE}`,
    );
  const out = Buffer.alloc(1 + id.length);
  out[0] = id.length;
  out.write(id, 1, 'latin1');
  return out;
}

/** Copies `n` bytes by index: `Buffer.copy` from an offset makes a view object for the source. */
function copyBytes(from: Buffer, fromAt: number, to: Buffer, toAt: number, n: number): void {
  for (let i = 0; i < n; i++) to[toAt + i] = from[fromAt + i];
}

export interface SealInput {
  type: LanMessageType;
  bootId: Buffer;
  seq: number;
  timestamp: number;
  messageId: Buffer;
  recipient: string;
}

/**
 * Seals datagrams for one sender. Not shared between senders: the id bytes and scratch are its own.
 * Not re-entrant either (nothing in it awaits): one seal finishes before the next begins.
 */
export class LanSealer {
  private readonly senderField: Buffer;
  /** Per recipient: its whole clear header, sender and recipient filled in, the rest rewritten per seal. */
  private readonly headers = new Map<string, Buffer>();
  private readonly nonce = Buffer.alloc(12);

  constructor(readonly sender: string) {
    this.senderField = idField(sender, 'sender');
  }

  seal(m: SealInput, body: Buffer, key: LanKey): Buffer {
    // A message id of any other length than 16 is refused by sealWith's check, at its place in the order.
    const at = m.messageId.length === 16 ? 0 : -1;
    return this.sealWith(m.type, m.bootId, m.seq, m.timestamp, m.messageId, at, m.recipient, body, key);
  }

  /**
   * `seal` without the input object: the message id is the 16 bytes of `messageId` from `messageIdAt`
   * (a pool of random bytes, say), checked to be there.
   */
  sealWith(
    type: LanMessageType,
    bootId: Buffer,
    seq: number,
    timestamp: number,
    messageId: Buffer,
    messageIdAt: number,
    recipientId: string,
    body: Buffer,
    key: LanKey,
  ): Buffer {
    if (key.key.length !== 32) fail('lan.bad_key', 'a store LAN key must be 32 bytes');
    if (!Number.isInteger(key.id) || key.id < 0 || key.id > 0xffffffff)
      fail('lan.bad_key_id', `key id ${key.id} is not a u32`);
    if (!Number.isInteger(key.version) || key.version < 0 || key.version > 0xffff)
      fail('lan.bad_key_version', `key version ${key.version} is not a u16`);
    if (bootId.length !== 8) fail('lan.bad_boot_id', 'boot id must be 8 bytes');
    if (!(messageIdAt >= 0 && messageIdAt + 16 <= messageId.length))
      fail('lan.bad_message_id', 'message id must be 16 bytes');
    if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff)
      fail('lan.bad_seq', `sequence ${seq} is not a u32`);
    if (!Number.isSafeInteger(timestamp) || timestamp < 0)
      fail('lan.bad_timestamp', `timestamp ${timestamp} is not valid`);
    let header = this.headers.get(recipientId);
    if (!header) {
      const recipient = idField(recipientId, 'recipient');
      header = Buffer.alloc(LAN_FIXED_HEADER + this.senderField.length + recipient.length);
      header.writeUInt16BE(LAN_MAGIC, 0);
      header[2] = LAN_PROTOCOL_VERSION;
      header[4] = 0;
      this.senderField.copy(header, LAN_FIXED_HEADER);
      recipient.copy(header, LAN_FIXED_HEADER + this.senderField.length);
      if (this.headers.size >= 1024) this.headers.clear(); // ids come from our own peers; bound it anyway
      this.headers.set(recipientId, header);
    }
    const headerLength = header.length;
    const size = headerLength + body.length + LAN_TAG_LENGTH;
    if (size > LAN_MAX_DATAGRAM)
      fail(
        'lan.oversize',
        `a ${type} message would be ${size} bytes; datagrams must stay under ${LAN_MAX_DATAGRAM}`,
      );

    header[3] = lanMessageTypeCode(type);
    header.writeUInt32BE(key.id, 5);
    header.writeUInt16BE(key.version, 9);
    copyBytes(bootId, 0, header, 11, 8);
    header.writeUInt32BE(seq, 19);
    header.writeUInt32BE(Math.floor(timestamp / TWO_32), 23);
    header.writeUInt32BE(timestamp % TWO_32, 27);
    copyBytes(messageId, messageIdAt, header, 31, 16);

    copyBytes(bootId, 0, this.nonce, 0, 8);
    this.nonce.writeUInt32BE(seq, 8);
    const cipher = createCipheriv('aes-256-gcm', key.key, this.nonce, GCM_OPTIONS);
    cipher.setAAD(header);
    const out = Buffer.allocUnsafe(size);
    header.copy(out, 0);
    // GCM is a stream mode: update returns exactly body.length bytes and final none.
    cipher.update(body).copy(out, headerLength);
    cipher.final();
    cipher.getAuthTag().copy(out, size - LAN_TAG_LENGTH);
    return out;
  }
}

export interface OpenedDatagram {
  header: LanHeader;
  /** The decrypted body. */
  plaintext: Buffer;
}

/**
 * What `DatagramOpener.open` read: the clear header's fields and the decrypted body. One record per
 * opener, rewritten by every open. The boot id and the message id are not copied out: they are the
 * datagram's bytes 11–18 and 31–46.
 */
export interface OpenedFields {
  version: number;
  type: LanMessageType;
  flags: number;
  keyId: number;
  keyVersion: number;
  seq: number;
  timestamp: number;
  sender: string;
  recipient: string;
  /** Where the ciphertext begins: the length of the clear header (the associated data). */
  headerLength: number;
  plaintext: Buffer;
}

/** Offsets of the ids in every datagram (docs/protocol.md). */
export const LAN_BOOT_ID_AT = 11;
export const LAN_MESSAGE_ID_AT = 31;

/**
 * Checks and opens datagrams, exactly as `openEnvelope` does (same checks, order and error codes), into
 * one reused record (`OpenedFields`), with node:crypto fed from scratch buffers of its own. Not
 * re-entrant (nothing in it awaits); the record is valid until the next open.
 */
export class DatagramOpener {
  private readonly fields: OpenedFields = {
    version: 0,
    type: 'ack',
    flags: 0,
    keyId: 0,
    keyVersion: 0,
    seq: 0,
    timestamp: 0,
    sender: '',
    recipient: '',
    headerLength: 0,
    plaintext: Buffer.alloc(0),
  };
  private readonly iv = Buffer.alloc(12);
  private readonly tag = Buffer.alloc(LAN_TAG_LENGTH);
  /** Associated-data scratch, one buffer per header length (at most 47 + 33 + 33). */
  private readonly aad: Buffer[] = [];
  /** Ciphertext scratch: views of one buffer, one per length, made when a length is first seen. */
  private readonly body = Buffer.alloc(LAN_MAX_DATAGRAM);
  private readonly bodyViews: Buffer[] = [];

  open(datagram: Buffer, lookupKey: (id: number, version: number) => LanKey | undefined): OpenedFields {
    const length = datagram.length;
    if (length > LAN_MAX_DATAGRAM)
      fail('lan.oversize', `datagram of ${length} bytes exceeds ${LAN_MAX_DATAGRAM}`);
    if (length < LAN_MIN_DATAGRAM)
      fail('lan.malformed', `datagram of ${length} bytes is shorter than any valid one`);
    if (datagram[0] !== 0x50 || datagram[1] !== 0x43)
      fail('lan.malformed', 'not a payconnect datagram (bad magic)');
    const version = datagram[2];
    if (version !== LAN_PROTOCOL_VERSION)
      fail('lan.bad_version', `protocol version ${version} is not supported (this build speaks 1)`);
    const type = lanMessageTypeFromCode(datagram[3]);
    if (type === undefined) fail('lan.malformed', `unknown message type code ${datagram[3]}`);
    const flags = datagram[4];
    if (flags !== 0) fail('lan.malformed', `reserved flags ${flags} are set`);
    let at = LAN_FIXED_HEADER;
    const senderLength = datagram[at++];
    if (senderLength < 1 || senderLength > 32 || at + senderLength + 1 > length - LAN_TAG_LENGTH)
      fail('lan.malformed', `bad sender id length ${senderLength}`);
    const sender = datagram.toString('latin1', at, at + senderLength);
    at += senderLength;
    const recipientLength = datagram[at++];
    if (recipientLength < 1 || recipientLength > 32 || at + recipientLength > length - LAN_TAG_LENGTH)
      fail('lan.malformed', `bad recipient id length ${recipientLength}`);
    const recipient =
      recipientLength === 1 && datagram[at] === 0x2a
        ? LAN_BROADCAST_RECIPIENT
        : datagram.toString('latin1', at, at + recipientLength);
    at += recipientLength;
    const high = datagram.readUInt32BE(23);
    // Above 2^53 - 1: the high word would exceed 2^21 - 1.
    if (high > 0x1fffff) fail('lan.malformed', 'timestamp out of range');
    const timestamp = high * TWO_32 + datagram.readUInt32BE(27);
    if (!isDeviceId(sender))
      fail('lan.malformed', `sender id has characters outside ${DEVICE_ID_CHARACTERS}`);
    if (recipient !== LAN_BROADCAST_RECIPIENT && !isDeviceId(recipient))
      fail('lan.malformed', `recipient id has characters outside ${DEVICE_ID_CHARACTERS}`);
    const keyId = datagram.readUInt32BE(5);
    const keyVersion = datagram.readUInt16BE(9);
    const key = lookupKey(keyId, keyVersion);
    if (!key)
      throw new ProtocolError(
        'lan.unknown_key',
        `datagram sealed with key ${keyId}/${keyVersion}, which this device does not hold`,
        { subject: sender },
      );
    const bodyLength = length - LAN_TAG_LENGTH - at;
    copyBytes(datagram, LAN_BOOT_ID_AT, this.iv, 0, 12);
    const aad = (this.aad[at] ??= Buffer.alloc(at));
    copyBytes(datagram, 0, aad, 0, at);
    copyBytes(datagram, length - LAN_TAG_LENGTH, this.tag, 0, LAN_TAG_LENGTH);
    const ciphertext = (this.bodyViews[bodyLength] ??= this.body.subarray(0, bodyLength));
    copyBytes(datagram, at, ciphertext, 0, bodyLength);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, this.iv, GCM_OPTIONS);
      decipher.setAAD(aad);
      decipher.setAuthTag(this.tag);
      plaintext = decipher.update(ciphertext);
      decipher.final();
    } catch (cause) {
      throw new ProtocolError(
        'lan.bad_seal',
        `datagram from "${sender}" failed authentication (wrong key or altered bytes)`,
        { subject: sender, cause },
      );
    }
    const f = this.fields;
    f.version = version;
    f.type = type;
    f.flags = flags;
    f.keyId = keyId;
    f.keyVersion = keyVersion;
    f.seq = datagram.readUInt32BE(19);
    f.timestamp = timestamp;
    f.sender = sender;
    f.recipient = recipient;
    f.headerLength = at;
    f.plaintext = plaintext;
    return f;
  }
}

/** The header of an opened datagram as the reference codec returns it; the ids are views of `datagram`. */
export function headerOf(
  datagram: Buffer,
  f: Pick<
    OpenedFields,
    'version' | 'type' | 'flags' | 'keyId' | 'keyVersion' | 'seq' | 'timestamp' | 'sender' | 'recipient'
  >,
): LanHeader {
  return {
    version: f.version,
    type: f.type,
    flags: f.flags,
    keyId: f.keyId,
    keyVersion: f.keyVersion,
    bootId: datagram.subarray(LAN_BOOT_ID_AT, LAN_BOOT_ID_AT + 8),
    seq: f.seq,
    timestamp: f.timestamp,
    messageId: datagram.subarray(LAN_MESSAGE_ID_AT, LAN_MESSAGE_ID_AT + 16),
    sender: f.sender,
    recipient: f.recipient,
  };
}

const sharedOpener = new DatagramOpener();

/**
 * Checks and opens one datagram, exactly as `openEnvelope` does (same checks, order and error codes).
 * `header.bootId` and `header.messageId` are views into `datagram`, which must not be changed afterwards
 * (Node hands every received datagram its own buffer).
 */
export function openDatagram(
  datagram: Buffer,
  lookupKey: (id: number, version: number) => LanKey | undefined,
): OpenedDatagram {
  const f = sharedOpener.open(datagram, lookupKey);
  return { header: headerOf(datagram, f), plaintext: f.plaintext };
}
