/**
 * The LAN message types (protocol v1) and their bodies: what each one means, its one-byte wire code, and a
 * strict validator for its JSON body. A body that fails validation is rejected with a ProtocolError naming
 * the field, and the datagram is counted as malformed; nothing half-valid is ever handed to an app.
 */
import { ProtocolError } from './errors';
import { DEVICE_ID_PATTERN, MAX_DEVICE_ID_LENGTH } from './ids';

/** Type name -> wire code. Codes are part of the wire format: never renumber, only append. */
const CODES = {
  beacon: 1,
  discover: 2,
  offer: 3,
  ack: 4,
  claim: 5,
  'claim.granted': 6,
  'claim.denied': 7,
  withdraw: 8,
  collect: 9,
  cancel: 10,
  progress: 11,
  result: 12,
  ping: 13,
  pong: 14,
  unhandled: 15,
} as const;

export type LanMessageType = keyof typeof CODES;
export const LAN_MESSAGE_TYPES = Object.keys(CODES) as LanMessageType[];

const BY_CODE = new Map<number, LanMessageType>(LAN_MESSAGE_TYPES.map((t) => [CODES[t], t]));

export function lanMessageTypeCode(type: LanMessageType): number {
  const code = CODES[type];
  if (code === undefined) throw new ProtocolError('lan.unknown_type', `unknown LAN message type "${type}"`);
  return code;
}

export function lanMessageTypeFromCode(code: number): LanMessageType | undefined {
  return BY_CODE.get(code);
}

/**
 * `ack`, `beacon`, `pong` and `unhandled` are fire-and-forget; every other message is acknowledged and
 * retried.
 */
export function lanTypeNeedsAck(type: LanMessageType): boolean {
  return type !== 'ack' && type !== 'beacon' && type !== 'pong' && type !== 'unhandled';
}

export interface LanMoney {
  value: number;
  currency: string;
}

export type OfferMode = 'unicast' | 'broadcast' | 'multicast';
export type UnitStatus = 'idle' | 'busy' | 'paused';
/**
 * `unit_error`: the unit could not even send the payment (a fault of the unit's own, not the server's or the
 * customer's); nothing was charged. `detail` says what. The plugin lists it under "Needs attention".
 */
export type ProgressStage = 'claimed' | 'waiting_for_code' | 'paying' | 'done' | 'released' | 'unit_error';
export type WithdrawReason = 'claimed' | 'canceled' | 'expired';
export type ClaimDenial = 'taken' | 'unknown' | 'withdrawn';

export interface LanBodies {
  /** A unit announces itself: periodically, and in answer to `discover`. `port` is its unicast port. */
  beacon: { id: string; name: string; port: number; status: UnitStatus; offers?: number };
  /** "Who is there?" Units answer with a beacon sent to the asker. */
  discover: Record<string, never>;
  /** An amount to collect. `expiresAt` is epoch ms; a unit shows the offer until then. */
  offer: {
    orderId: string;
    registerId: string;
    amount: LanMoney;
    mode: OfferMode;
    expiresAt: number;
    /** The cashier's "collect now": the unit goes straight to scanning the customer's code. */
    collect?: boolean;
  };
  /** Acknowledges messages by id (hex). Sent for every message that needs one, including duplicates. */
  ack: { ids: string[] };
  claim: { orderId: string };
  /** `re` is the id (hex) of the claim this answers. */
  'claim.granted': { orderId: string; terminal: string; re?: string };
  /**
   * `reason` says why: `taken` (then `terminal` names the unit that has the order, so the loser can show
   * "taken by T2"), `unknown` (the plugin has no such open offer), `withdrawn` (canceled or expired).
   */
  'claim.denied': { orderId: string; reason: ClaimDenial; terminal?: string; re?: string };
  withdraw: { orderId: string; reason: WithdrawReason; claimedBy?: string };
  collect: { orderId: string };
  cancel: { orderId: string; reason?: string };
  progress: { orderId: string; stage: ProgressStage; detail?: string };
  /** A server-signed payment result relayed by a unit. Trust comes from `signature`, never from the LAN. */
  result: { payment: Record<string, unknown>; signature: string };
  ping: { nonce?: string };
  pong: { re: string; status?: UnitStatus };
  /**
   * "Nobody here handles that": the answer to a message of a type the receiver has no handler for (an
   * older or newer version of the app), instead of an ack. `re` is the message's id, `type` its type. The
   * sender stops retrying and reports it at once, as Nest's transports answer NO_MESSAGE_HANDLER.
   */
  unhandled: { re: string; type: string };
}

export type LanBody<T extends LanMessageType = LanMessageType> = LanBodies[T];

type Json = Record<string, unknown>;

function bad(type: string, field: string, why: string): never {
  throw new ProtocolError('lan.malformed', `${type} body: field "${field}" ${why}`, { subject: field });
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function str(
  type: string,
  o: Json,
  field: string,
  opts: { max: number; optional?: boolean; pattern?: RegExp },
): void {
  const v = o[field];
  if (v === undefined && opts.optional) return;
  if (typeof v !== 'string') bad(type, field, 'must be a string');
  if (v.length < 1 || v.length > opts.max) bad(type, field, `must be 1-${opts.max} characters`);
  if (opts.pattern && !opts.pattern.test(v)) bad(type, field, `has an invalid format`);
  if (CONTROL.test(v)) bad(type, field, 'contains control characters');
}

function int(type: string, o: Json, field: string, min: number, max: number, optional = false): void {
  const v = o[field];
  if (v === undefined && optional) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(type, field, 'must be an integer');
  if (v < min || v > max) bad(type, field, `must be between ${min} and ${max}`);
}

function oneOf(type: string, o: Json, field: string, values: readonly string[], optional = false): void {
  const v = o[field];
  if (v === undefined && optional) return;
  if (typeof v !== 'string' || !values.includes(v)) bad(type, field, `must be one of ${values.join(', ')}`);
}

const hasOwn = Object.prototype.hasOwnProperty;

/** Every own key of `o` is one of `allowed` (for…in, not Object.keys: no array per body checked). */
function onlyKeys(type: string, o: Json, allowed: readonly string[]): void {
  for (const k in o)
    if (hasOwn.call(o, k) && !allowed.includes(k)) bad(type, k, 'is not part of this message');
}

/** A device id (ids.ts); register ids follow the same rule today, so an offer's registerId uses it too. */
const DEVICE = { max: MAX_DEVICE_ID_LENGTH, pattern: DEVICE_ID_PATTERN };
const HEX_ID = /^[0-9a-f]{32}$/;
const ORDER = { max: 64 };
const CURRENCY = /^[A-Z]{3}$/;

// Built once: the validators run for every datagram, and a literal in a call is a new object each time.
const BEACON_KEYS: readonly string[] = ['id', 'name', 'port', 'status', 'offers'];
const NO_KEYS: readonly string[] = [];
const MONEY_KEYS: readonly string[] = ['value', 'currency'];
const OFFER_KEYS: readonly string[] = ['orderId', 'registerId', 'amount', 'mode', 'expiresAt', 'collect'];
const ACK_KEYS: readonly string[] = ['ids'];
const ORDER_ONLY_KEYS: readonly string[] = ['orderId'];
const GRANTED_KEYS: readonly string[] = ['orderId', 'terminal', 're'];
const DENIED_KEYS: readonly string[] = ['orderId', 'reason', 'terminal', 're'];
const WITHDRAW_KEYS: readonly string[] = ['orderId', 'reason', 'claimedBy'];
const CANCEL_KEYS: readonly string[] = ['orderId', 'reason'];
const PROGRESS_KEYS: readonly string[] = ['orderId', 'stage', 'detail'];
const RESULT_KEYS: readonly string[] = ['payment', 'signature'];
const PING_KEYS: readonly string[] = ['nonce'];
const UNHANDLED_KEYS: readonly string[] = ['re', 'type'];
const PONG_KEYS: readonly string[] = ['re', 'status'];
const UNIT_STATUSES: readonly string[] = ['idle', 'busy', 'paused'];
const OFFER_MODES: readonly string[] = ['unicast', 'broadcast', 'multicast'];
const DENIAL_REASONS: readonly string[] = ['taken', 'unknown', 'withdrawn'];
const WITHDRAW_REASONS: readonly string[] = ['claimed', 'canceled', 'expired'];
const PROGRESS_STAGES: readonly string[] = [
  'claimed',
  'waiting_for_code',
  'paying',
  'done',
  'released',
  'unit_error',
];
const NAME = { max: 64 };
const RE_OPTIONAL = { max: 32, pattern: HEX_ID, optional: true };
const DEVICE_OPTIONAL = { ...DEVICE, optional: true };
const TEXT_OPTIONAL = { max: 200, optional: true };
const SIGNATURE = { max: 200, pattern: /^[A-Za-z0-9+/=_-]+$/ };
const NONCE_OPTIONAL = { max: 64, optional: true };
const RE = { max: 32, pattern: HEX_ID };
const TYPE_NAME = { max: 32 };

function money(type: string, o: Json, field: string): void {
  const m = o[field];
  if (typeof m !== 'object' || m === null || Array.isArray(m)) bad(type, field, 'must be {value, currency}');
  const mo = m as Json;
  onlyKeys(type, mo, MONEY_KEYS);
  if (typeof mo.value !== 'number' || !Number.isSafeInteger(mo.value) || mo.value <= 0)
    bad(type, `${field}.value`, 'must be a positive integer in minor units');
  if (typeof mo.currency !== 'string' || !CURRENCY.test(mo.currency))
    bad(type, `${field}.currency`, 'must be an ISO 4217 code');
}

const VALIDATORS: { [T in LanMessageType]: (o: Json) => void } = {
  beacon(o) {
    onlyKeys('beacon', o, BEACON_KEYS);
    str('beacon', o, 'id', DEVICE);
    str('beacon', o, 'name', NAME);
    int('beacon', o, 'port', 1, 65535);
    oneOf('beacon', o, 'status', UNIT_STATUSES);
    int('beacon', o, 'offers', 0, 10000, true);
  },
  discover(o) {
    onlyKeys('discover', o, NO_KEYS);
  },
  offer(o) {
    onlyKeys('offer', o, OFFER_KEYS);
    str('offer', o, 'orderId', ORDER);
    str('offer', o, 'registerId', DEVICE);
    money('offer', o, 'amount');
    oneOf('offer', o, 'mode', OFFER_MODES);
    int('offer', o, 'expiresAt', 0, Number.MAX_SAFE_INTEGER);
    if (o.collect !== undefined && typeof o.collect !== 'boolean')
      bad('offer', 'collect', 'must be true or false');
  },
  ack(o) {
    onlyKeys('ack', o, ACK_KEYS);
    if (!Array.isArray(o.ids) || o.ids.length < 1 || o.ids.length > 16)
      bad('ack', 'ids', 'must be a list of 1-16 message ids');
    for (const id of o.ids)
      if (typeof id !== 'string' || !HEX_ID.test(id))
        bad('ack', 'ids', 'holds something that is not a message id');
  },
  claim(o) {
    onlyKeys('claim', o, ORDER_ONLY_KEYS);
    str('claim', o, 'orderId', ORDER);
  },
  'claim.granted'(o) {
    onlyKeys('claim.granted', o, GRANTED_KEYS);
    str('claim.granted', o, 'orderId', ORDER);
    str('claim.granted', o, 'terminal', DEVICE);
    str('claim.granted', o, 're', RE_OPTIONAL);
  },
  'claim.denied'(o) {
    onlyKeys('claim.denied', o, DENIED_KEYS);
    str('claim.denied', o, 'orderId', ORDER);
    oneOf('claim.denied', o, 'reason', DENIAL_REASONS);
    str('claim.denied', o, 'terminal', DEVICE_OPTIONAL);
    str('claim.denied', o, 're', RE_OPTIONAL);
  },
  withdraw(o) {
    onlyKeys('withdraw', o, WITHDRAW_KEYS);
    str('withdraw', o, 'orderId', ORDER);
    oneOf('withdraw', o, 'reason', WITHDRAW_REASONS);
    str('withdraw', o, 'claimedBy', DEVICE_OPTIONAL);
  },
  collect(o) {
    onlyKeys('collect', o, ORDER_ONLY_KEYS);
    str('collect', o, 'orderId', ORDER);
  },
  cancel(o) {
    onlyKeys('cancel', o, CANCEL_KEYS);
    str('cancel', o, 'orderId', ORDER);
    str('cancel', o, 'reason', TEXT_OPTIONAL);
  },
  progress(o) {
    onlyKeys('progress', o, PROGRESS_KEYS);
    str('progress', o, 'orderId', ORDER);
    oneOf('progress', o, 'stage', PROGRESS_STAGES);
    str('progress', o, 'detail', TEXT_OPTIONAL);
  },
  result(o) {
    onlyKeys('result', o, RESULT_KEYS);
    if (typeof o.payment !== 'object' || o.payment === null || Array.isArray(o.payment))
      bad('result', 'payment', 'must be an object');
    str('result', o, 'signature', SIGNATURE);
  },
  ping(o) {
    onlyKeys('ping', o, PING_KEYS);
    str('ping', o, 'nonce', NONCE_OPTIONAL);
  },
  unhandled(o) {
    onlyKeys('unhandled', o, UNHANDLED_KEYS);
    str('unhandled', o, 're', RE);
    str('unhandled', o, 'type', TYPE_NAME);
  },
  pong(o) {
    onlyKeys('pong', o, PONG_KEYS);
    str('pong', o, 're', RE);
    oneOf('pong', o, 'status', UNIT_STATUSES, true);
  },
};

/** Checks a decoded body against its type's schema; throws ProtocolError naming the first bad field. */
export function validateLanBody<T extends LanMessageType>(type: T, body: unknown): LanBody<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    bad(type, '(body)', 'must be a JSON object');
  VALIDATORS[type](body as Json);
  return body as LanBody<T>;
}

/** Parses and validates a decrypted body. */
export function decodeLanBody<T extends LanMessageType>(type: T, plaintext: Buffer): LanBody<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw new ProtocolError('lan.malformed', `${type} body is not valid JSON`, { subject: '(body)' });
  }
  return validateLanBody(type, parsed);
}

export function encodeLanBody<T extends LanMessageType>(type: T, body: LanBody<T>): Buffer {
  validateLanBody(type, body);
  return Buffer.from(JSON.stringify(body), 'utf8');
}
