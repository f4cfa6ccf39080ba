/**
 * The native hook's wire format, pure: one JSON object per line each way, UTF-8, `\n`-terminated
 * (docs/adapters/native-hook.md). `readRequest` turns one line from the library into a request or a
 * LineProblem that the adapter answers with and counts; it never throws, whatever the bytes.
 *
 *   {"op":"hello","token":"<64 hex>","client":"payconnect-c/1.0.0"}   first line of every connection
 *   {"op":"submit","order":{orderId, amount, currency?, items?, dispatch?}}
 *   {"op":"wait","orderId":"A-1","timeoutMs":5000}                    0 to 600000
 *   {"op":"ack","delivery":"A-1:paid"}
 *   {"op":"cancel","orderId":"A-1"}
 *   {"op":"ping"}
 *
 * Answers are `{"ok":true,…}` or `{"ok":false,"error":KIND,"code":CODE,"message":TEXT}`. KIND is what the
 * library maps to its return code (`bad_token`, `rejected`, `timeout`, `unknown_order`, `stands`,
 * `unavailable`, `bad_request`); CODE is payconnect's own error code, for logs and support.
 */
import { ProtocolError } from '../../protocol/errors';
import { validateOrderId } from '../../protocol/ids';
import { isFields } from '../field-problems';

export const PROTOCOL_VERSION = 1;
export const MAX_WAIT_MS = 600_000;
export const OPS = ['hello', 'submit', 'wait', 'ack', 'cancel', 'ping'] as const;

export type HookRequest =
  | { op: 'hello'; token: string; client?: string }
  | { op: 'submit'; order: unknown }
  | { op: 'wait'; orderId: string; timeoutMs: number }
  | { op: 'ack'; delivery: string }
  | { op: 'cancel'; orderId: string }
  | { op: 'ping' };

export type ErrorKind =
  'bad_token' | 'rejected' | 'timeout' | 'unknown_order' | 'stands' | 'unavailable' | 'bad_request';

export interface LineProblem {
  error: ErrorKind;
  code: string;
  message: string;
}

export type HookAnswer = ({ ok: true } & Record<string, unknown>) | ({ ok: false } & LineProblem);

export function problem(error: ErrorKind, code: string, message: string): LineProblem {
  return { error, code, message };
}

/** One line (without its `\n`) as a request, or the problem to answer it with. */
export function readRequest(line: string): HookRequest | LineProblem {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return problem(
      'bad_request',
      'native_hook.bad_line',
      `the line is not JSON (${preview(line)}); each request is one JSON object on one line`,
    );
  }
  if (!isFields(value)) {
    return problem('bad_request', 'native_hook.bad_line', 'each request must be a JSON object with an "op"');
  }
  const op = value.op;
  switch (op) {
    case 'hello':
      if (typeof value.token !== 'string')
        return problem('bad_token', 'native_hook.no_token', 'the hello line carries no "token"');
      return {
        op,
        token: value.token,
        ...(typeof value.client === 'string' ? { client: value.client.slice(0, 100) } : {}),
      };
    case 'submit':
      if (value.order === undefined)
        return problem('bad_request', 'native_hook.no_order', 'submit needs "order": {orderId, amount, …}');
      return { op, order: value.order };
    case 'wait': {
      const orderId = readOrderId(value.orderId);
      if (typeof orderId !== 'string') return orderId;
      const t = value.timeoutMs;
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > MAX_WAIT_MS) {
        return problem(
          'bad_request',
          'native_hook.bad_timeout',
          `wait needs "timeoutMs", whole milliseconds from 0 to ${MAX_WAIT_MS}`,
        );
      }
      return { op, orderId, timeoutMs: t };
    }
    case 'ack':
      if (typeof value.delivery !== 'string' || value.delivery === '' || value.delivery.length > 1000)
        return problem(
          'bad_request',
          'native_hook.bad_ack',
          'ack needs "delivery", the id a result came with',
        );
      return { op, delivery: value.delivery };
    case 'cancel': {
      const orderId = readOrderId(value.orderId);
      return typeof orderId === 'string' ? { op, orderId } : orderId;
    }
    case 'ping':
      return { op };
    default:
      return problem(
        'bad_request',
        'native_hook.unknown_op',
        `unknown op ${typeof op === 'string' ? JSON.stringify(op.slice(0, 40)) : 'missing'}; known: ${OPS.join(', ')}`,
      );
  }
}

function readOrderId(raw: unknown): string | LineProblem {
  try {
    return validateOrderId(raw);
  } catch (e) {
    if (e instanceof ProtocolError) return problem('bad_request', e.code, e.message);
    throw e;
  }
}

function preview(line: string): string {
  const s = line.length > 40 ? `${line.slice(0, 40)}…` : line;
  return JSON.stringify(s);
}

export function isProblem(x: HookRequest | LineProblem): x is LineProblem {
  return 'error' in x;
}

/** The answer line for a problem (with its `\n`). */
export function problemLine(p: LineProblem): string {
  return `${JSON.stringify({ ok: false, ...p })}\n`;
}

export function okLine(fields: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ ok: true, ...fields })}\n`;
}

/**
 * Splits a byte stream into lines of at most `maxBytes` (without the `\n`; a `\r` before it is dropped).
 * `push` returns the complete lines; `overflow` is set once a line grew past the limit, after which the
 * connection is answered once and closed (there is no safe way to find where the next request starts in
 * a stream whose sender ignores the limit).
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  overflow = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): string[] {
    if (this.overflow) return [];
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > this.maxBytes) {
        this.overflow = true;
        return lines;
      }
      const whole = this.parts.length ? Buffer.concat([...this.parts, piece]) : piece;
      this.parts = [];
      this.size = 0;
      const end = whole.length > 0 && whole[whole.length - 1] === 0x0d ? whole.length - 1 : whole.length;
      lines.push(whole.subarray(0, end).toString('utf8'));
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (this.size + rest.length > this.maxBytes) {
      this.overflow = true;
      return lines;
    }
    if (rest.length) {
      this.parts.push(Buffer.from(rest));
      this.size += rest.length;
    }
    return lines;
  }
}
