/**
 * The LAN envelope (protocol v1): how one payconnect message becomes one sealed UDP datagram and back.
 *
 * Pure code: no sockets, no clock, no randomness of its own (the caller passes boot id, sequence and time).
 * The layout is documented byte by byte in docs/protocol.md; keep the two in agreement.
 *
 *   offset size  field
 *   0      2     magic "PC" (0x50 0x43)
 *   2      1     protocol version (1)
 *   3      1     message type code (LanMessageType, see lan-messages.ts)
 *   4      1     flags (reserved, 0)
 *   5      4     key id (u32, big-endian): which store LAN key sealed this
 *   9      2     key version (u16, big-endian): which generation of that key
 *   11     8     sender boot id (random per process start)
 *   19     4     sequence (u32, big-endian; per boot, +1 per datagram, retransmissions included)
 *   23     8     timestamp, ms since the Unix epoch (u64, big-endian)
 *   31     16    message id (random; the same for every retransmission of one message)
 *   47     1+n   sender device id (length byte, then 1..32 ASCII characters)
 *   ..     1+m   recipient device id, or "*" for every unit (length byte, then 1..32 ASCII characters)
 *   ..     k     AES-256-GCM ciphertext of the UTF-8 JSON body
 *   ..     16    GCM tag
 *
 * Every header byte is the AEAD's associated data, so a flipped bit anywhere makes `openEnvelope` fail.
 * The 12-byte GCM nonce is boot id || sequence: unique for the life of a key as long as a sender never
 * reuses a (boot id, sequence) pair, which the sender guarantees by drawing a fresh random boot id at every
 * start and whenever the sequence would wrap.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { ProtocolError } from './errors';
import { DEVICE_ID_CHARACTERS, DEVICE_ID_RULE, isDeviceId } from './ids';
import { LanMessageType, lanMessageTypeFromCode, lanMessageTypeCode } from './lan-messages';

export const LAN_MAGIC = 0x5043; // "PC"
export const LAN_PROTOCOL_VERSION = 1;
/** Datagrams stay under this size so they never fragment on any shop network (DESIGN.md). */
export const LAN_MAX_DATAGRAM = 1200;
export const LAN_FIXED_HEADER = 47;
export const LAN_TAG_LENGTH = 16;
export const LAN_BOOT_ID_LENGTH = 8;
export const LAN_MESSAGE_ID_LENGTH = 16;
/** Smallest possible datagram: fixed header, two one-character ids, empty ciphertext, tag. */
export const LAN_MIN_DATAGRAM = LAN_FIXED_HEADER + 2 + 2 + LAN_TAG_LENGTH;
export const LAN_BROADCAST_RECIPIENT = '*';

/** A store LAN key: 32 secret bytes, named by id and version so keys can rotate. */
export interface LanKey {
  id: number;
  version: number;
  key: Buffer;
}

/** The clear header. Everything here is authenticated but readable by anyone on the LAN. */
export interface LanHeader {
  version: number;
  type: LanMessageType;
  flags: number;
  keyId: number;
  keyVersion: number;
  bootId: Buffer;
  seq: number;
  timestamp: number;
  messageId: Buffer;
  sender: string;
  recipient: string;
}

export interface LanEnvelope {
  header: LanHeader;
  /** The decrypted body, still as bytes: parsing and validating it is lan-messages.ts's job. */
  plaintext: Buffer;
}

function fail(code: string, message: string): never {
  throw new ProtocolError(code, message, { subject: 'datagram' });
}

function checkHeaderFields(h: Omit<LanHeader, 'version' | 'flags'>): void {
  if (!Number.isInteger(h.keyId) || h.keyId < 0 || h.keyId > 0xffffffff)
    fail('lan.bad_key_id', `key id ${h.keyId} is not a u32`);
  if (!Number.isInteger(h.keyVersion) || h.keyVersion < 0 || h.keyVersion > 0xffff)
    fail('lan.bad_key_version', `key version ${h.keyVersion} is not a u16`);
  if (h.bootId.length !== LAN_BOOT_ID_LENGTH)
    fail('lan.bad_boot_id', `boot id must be ${LAN_BOOT_ID_LENGTH} bytes`);
  if (!Number.isInteger(h.seq) || h.seq < 0 || h.seq > 0xffffffff)
    fail('lan.bad_seq', `sequence ${h.seq} is not a u32`);
  if (!Number.isSafeInteger(h.timestamp) || h.timestamp < 0)
    fail('lan.bad_timestamp', `timestamp ${h.timestamp} is not valid`);
  if (h.messageId.length !== LAN_MESSAGE_ID_LENGTH)
    fail('lan.bad_message_id', `message id must be ${LAN_MESSAGE_ID_LENGTH} bytes`);
  if (!isDeviceId(h.sender)) fail('lan.bad_sender', `sender id "${h.sender}" must be ${DEVICE_ID_RULE}`);
  if (h.recipient !== LAN_BROADCAST_RECIPIENT && !isDeviceId(h.recipient))
    fail('lan.bad_recipient', `recipient id "${h.recipient}" must be "*" or ${DEVICE_ID_RULE}`);
}

function encodeHeader(h: Omit<LanHeader, 'version' | 'flags'>): Buffer {
  const sender = Buffer.from(h.sender, 'ascii');
  const recipient = Buffer.from(h.recipient, 'ascii');
  const out = Buffer.alloc(LAN_FIXED_HEADER + 1 + sender.length + 1 + recipient.length);
  out.writeUInt16BE(LAN_MAGIC, 0);
  out.writeUInt8(LAN_PROTOCOL_VERSION, 2);
  out.writeUInt8(lanMessageTypeCode(h.type), 3);
  out.writeUInt8(0, 4);
  out.writeUInt32BE(h.keyId, 5);
  out.writeUInt16BE(h.keyVersion, 9);
  h.bootId.copy(out, 11);
  out.writeUInt32BE(h.seq, 19);
  out.writeBigUInt64BE(BigInt(h.timestamp), 23);
  h.messageId.copy(out, 31);
  let at = LAN_FIXED_HEADER;
  out.writeUInt8(sender.length, at++);
  sender.copy(out, at);
  at += sender.length;
  out.writeUInt8(recipient.length, at++);
  recipient.copy(out, at);
  return out;
}

function nonceOf(bootId: Buffer, seq: number): Buffer {
  const nonce = Buffer.alloc(12);
  bootId.copy(nonce, 0);
  nonce.writeUInt32BE(seq, 8);
  return nonce;
}

/**
 * Seals one message. Throws ProtocolError when a header field is out of range or the datagram would
 * exceed LAN_MAX_DATAGRAM (the caller must keep bodies small; offers are a few hundred bytes).
 */
export function sealEnvelope(
  header: Omit<LanHeader, 'version' | 'flags' | 'keyId' | 'keyVersion'>,
  body: Buffer,
  key: LanKey,
): Buffer {
  if (key.key.length !== 32) fail('lan.bad_key', 'a store LAN key must be 32 bytes');
  const full = { ...header, keyId: key.id, keyVersion: key.version };
  checkHeaderFields(full);
  const aad = encodeHeader(full);
  const size = aad.length + body.length + LAN_TAG_LENGTH;
  if (size > LAN_MAX_DATAGRAM)
    fail(
      'lan.oversize',
      `a ${header.type} message would be ${size} bytes; datagrams must stay under ${LAN_MAX_DATAGRAM}`,
    );
  const cipher = createCipheriv('aes-256-gcm', key.key, nonceOf(header.bootId, header.seq), {
    authTagLength: LAN_TAG_LENGTH,
  });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(body), cipher.final()]);
  return Buffer.concat([aad, ciphertext, cipher.getAuthTag()]);
}

/** Reads the clear header without opening the datagram. Throws ProtocolError (`lan.malformed`, ...) on bad bytes. */
export function readHeader(datagram: Buffer): { header: LanHeader; headerLength: number } {
  if (datagram.length > LAN_MAX_DATAGRAM)
    fail('lan.oversize', `datagram of ${datagram.length} bytes exceeds ${LAN_MAX_DATAGRAM}`);
  if (datagram.length < LAN_MIN_DATAGRAM)
    fail('lan.malformed', `datagram of ${datagram.length} bytes is shorter than any valid one`);
  if (datagram.readUInt16BE(0) !== LAN_MAGIC) fail('lan.malformed', 'not a payconnect datagram (bad magic)');
  const version = datagram.readUInt8(2);
  if (version !== LAN_PROTOCOL_VERSION)
    fail('lan.bad_version', `protocol version ${version} is not supported (this build speaks 1)`);
  const type = lanMessageTypeFromCode(datagram.readUInt8(3));
  if (type === undefined) fail('lan.malformed', `unknown message type code ${datagram.readUInt8(3)}`);
  const flags = datagram.readUInt8(4);
  if (flags !== 0) fail('lan.malformed', `reserved flags ${flags} are set`);
  let at = LAN_FIXED_HEADER;
  const senderLength = datagram.readUInt8(at++);
  if (senderLength < 1 || senderLength > 32 || at + senderLength + 1 > datagram.length - LAN_TAG_LENGTH)
    fail('lan.malformed', `bad sender id length ${senderLength}`);
  const sender = datagram.toString('latin1', at, at + senderLength);
  at += senderLength;
  const recipientLength = datagram.readUInt8(at++);
  if (recipientLength < 1 || recipientLength > 32 || at + recipientLength > datagram.length - LAN_TAG_LENGTH)
    fail('lan.malformed', `bad recipient id length ${recipientLength}`);
  const recipient = datagram.toString('latin1', at, at + recipientLength);
  at += recipientLength;
  const timestamp = datagram.readBigUInt64BE(23);
  if (timestamp > BigInt(Number.MAX_SAFE_INTEGER)) fail('lan.malformed', 'timestamp out of range');
  const header: LanHeader = {
    version,
    type,
    flags,
    keyId: datagram.readUInt32BE(5),
    keyVersion: datagram.readUInt16BE(9),
    bootId: Buffer.from(datagram.subarray(11, 19)),
    seq: datagram.readUInt32BE(19),
    timestamp: Number(timestamp),
    messageId: Buffer.from(datagram.subarray(31, 47)),
    sender,
    recipient,
  };
  if (!isDeviceId(sender)) fail('lan.malformed', `sender id has characters outside ${DEVICE_ID_CHARACTERS}`);
  if (recipient !== LAN_BROADCAST_RECIPIENT && !isDeviceId(recipient))
    fail('lan.malformed', `recipient id has characters outside ${DEVICE_ID_CHARACTERS}`);
  return { header, headerLength: at };
}

/**
 * Opens a datagram with the key its header names. `lookupKey` returns undefined for a key this device does
 * not hold (counted as `unknown-key` by the caller). Throws ProtocolError: `lan.unknown_key`, `lan.bad_seal`,
 * or a header error from readHeader.
 */
export function openEnvelope(
  datagram: Buffer,
  lookupKey: (id: number, version: number) => LanKey | undefined,
): LanEnvelope {
  const { header, headerLength } = readHeader(datagram);
  const key = lookupKey(header.keyId, header.keyVersion);
  if (!key) {
    throw new ProtocolError(
      'lan.unknown_key',
      `datagram sealed with key ${header.keyId}/${header.keyVersion}, which this device does not hold`,
      {
        subject: header.sender,
      },
    );
  }
  const aad = datagram.subarray(0, headerLength);
  const ciphertext = datagram.subarray(headerLength, datagram.length - LAN_TAG_LENGTH);
  const tag = datagram.subarray(datagram.length - LAN_TAG_LENGTH);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, nonceOf(header.bootId, header.seq), {
      authTagLength: LAN_TAG_LENGTH,
    });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    return { header, plaintext };
  } catch (cause) {
    throw new ProtocolError(
      'lan.bad_seal',
      `datagram from "${header.sender}" failed authentication (wrong key or altered bytes)`,
      {
        subject: header.sender,
        cause,
      },
    );
  }
}
