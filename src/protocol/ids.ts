/**
 * Ids that cross a boundary: LAN message ids (random, 16 bytes, hex in logs and JSON), the host's order ids
 * and device ids. Order and device ids are validated where they enter, with a message that names the problem.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { ProtocolError } from './errors';

export const MESSAGE_ID_BYTES = 16;
export const MAX_ORDER_ID_LENGTH = 64;

/**
 * A fresh random message id. `randomBytes` is a parameter so a test can make ids predictable; 128 random
 * bits make a collision between two senders' ids practically impossible.
 */
export function newMessageId(randomBytes: (size: number) => Buffer = cryptoRandomBytes): Buffer {
  const id: unknown = randomBytes(MESSAGE_ID_BYTES);
  if (!isMessageId(id)) {
    throw new ProtocolError('message_id.bad_random', 'The random source did not give 16 bytes.');
  }
  return id;
}

export function isMessageId(x: unknown): x is Buffer {
  return Buffer.isBuffer(x) && x.length === MESSAGE_ID_BYTES;
}

/** 32 lower-case hex digits. */
export function messageIdToHex(id: Buffer): string {
  if (!isMessageId(id)) {
    throw new ProtocolError('message_id.bad_length', `A message id is 16 bytes; this one is not.`, {
      subject: 'messageId',
    });
  }
  return id.toString('hex');
}

/** Reads 32 hex digits (either case); anything else, including Buffer.from's lenient inputs, is refused. */
export function messageIdFromHex(hex: string): Buffer {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{32}$/.test(hex)) {
    throw new ProtocolError('message_id.bad_hex', `${quote(hex)} is not a message id (32 hex digits).`, {
      subject: 'messageId',
    });
  }
  return Buffer.from(hex, 'hex');
}

/**
 * The host's order number: 1–64 characters (code points), printable, no control or invisible formatting
 * characters (a bidi override could make one id look like another), no space at either end (` 42` and `42`
 * would be two orders that look the same). Returns the id unchanged.
 */
export function validateOrderId(s: unknown): string {
  const problem = orderIdProblem(s);
  if (problem !== undefined) {
    throw new ProtocolError('order.bad_id', `The order id ${quote(s)} ${problem}.`, { subject: 'orderId' });
  }
  return s as string;
}

function orderIdProblem(s: unknown): string | undefined {
  if (typeof s !== 'string') return `is not text (it is ${s === null ? 'null' : typeof s})`;
  if (s.length === 0) return 'is empty';
  const length = [...s].length;
  if (length > MAX_ORDER_ID_LENGTH)
    return `is ${length} characters long; at most ${MAX_ORDER_ID_LENGTH} are allowed`;
  // Cc: control characters; Cf: invisible format characters; Cs: lone surrogates; Zl, Zp: line breaks.
  const bad = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u.exec(s);
  if (bad !== null) {
    const cp = (bad[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0');
    return `contains the unprintable character U+${cp} at position ${bad.index + 1}`;
  }
  if (/^\s|\s$/u.test(s)) return 'starts or ends with a space';
  return undefined;
}

/**
 * The device id rule, the one definition: letters, digits and `. _ : -`, 1–32 characters, e.g. `T1`,
 * `plugin-R1`. Every device id (a unit's, a plugin's, a LAN datagram's sender and recipient) and every
 * register id follows it. Being ASCII, its length in characters is its length in bytes on the LAN.
 */
export const MAX_DEVICE_ID_LENGTH = 32;
export const DEVICE_ID_PATTERN = new RegExp(`^[A-Za-z0-9._:-]{1,${MAX_DEVICE_ID_LENGTH}}$`);
/** The characters a device id may have, in words. */
export const DEVICE_ID_CHARACTERS = 'A-Z a-z 0-9 . _ : -';
/** The rule in words, for messages and help: `deviceId must be ${DEVICE_ID_RULE}`. */
export const DEVICE_ID_RULE = `1-${MAX_DEVICE_ID_LENGTH} of ${DEVICE_ID_CHARACTERS}`;

export function isDeviceId(x: unknown): x is string {
  return typeof x === 'string' && DEVICE_ID_PATTERN.test(x);
}

/** Checks a device id (see DEVICE_ID_PATTERN). Returns the id unchanged. */
export function validateDeviceId(s: unknown): string {
  if (!isDeviceId(s)) {
    const message = `The device id ${quote(s)} is not valid: it must be ${DEVICE_ID_RULE}.`;
    throw new ProtocolError('device.bad_id', message, { subject: 'deviceId' });
  }
  return s;
}

function quote(x: unknown): string {
  let shown: string;
  try {
    shown = typeof x === 'string' ? JSON.stringify(x) : String(x);
  } catch {
    shown = Object.prototype.toString.call(x); // an object without a usable toString
  }
  return shown.length > 80 ? `${shown.slice(0, 77)}…` : shown;
}
