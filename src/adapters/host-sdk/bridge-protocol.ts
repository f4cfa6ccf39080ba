/**
 * The line protocol between the host-sdk adapter and the sdk bridge (native/bridge/sdk_bridge.c), pure.
 * One JSON object per line each way over a loopback TCP connection the bridge opens to the adapter (not
 * stdin/stdout: under Wine a Windows program's standard handles to a Linux pipe are unreliable, as with
 * node.exe, and a socket works the same natively, under Wine and on Windows). Only flat objects of
 * strings and integers, so the bridge's C reader stays small:
 *
 *   bridge → {"bridge":"payconnect-sdk-bridge","version":1,"token":"<hex>","bits":32}
 *   adapter → {"id":1,"op":"load","library":"C:\\Acme\\AcmePay.dll","convention":"stdcall"}
 *   adapter → {"id":2,"op":"resolve","fn":0,"name":"GetCurrentOrder","params":"b64 i4 o8"}
 *   adapter → {"id":3,"op":"call","fn":0,"args":"_ 64 _"}
 *   bridge → {"id":3,"ok":true,"ret":0,"out":"502d31 _ 1250"}
 *   bridge → {"id":2,"ok":false,"code":"no_symbol","message":"…"}
 *
 * Parameter codes: `s` text in, `b<N>` text out of N bytes, `i4`/`i8` integer in, `o4`/`o8` integer out.
 * Values, one token per parameter: text as hex bytes (`-` when empty), integers in decimal (64-bit exact:
 * never a double), `_` where there is nothing to give or read.
 */
import type { ParamType, SdkFunction } from './signature';
import type { SdkArg } from './sdk-caller';

export const BRIDGE_NAME = 'payconnect-sdk-bridge';
export const BRIDGE_VERSION = 1;
export const MAX_ANSWER_BYTES = 1024 * 1024;

const CODES: Record<ParamType, (size?: number) => string> = {
  str: () => 's',
  buf: (size) => `b${size ?? 1}`,
  i32: () => 'i4',
  i64: () => 'i8',
  out_i32: () => 'o4',
  out_i64: () => 'o8',
};

export function paramCodes(fn: SdkFunction): string {
  return fn.params.map((p) => CODES[p.type](p.size)).join(' ');
}

export function argTokens(fn: SdkFunction, args: Record<string, SdkArg>): string {
  return fn.params
    .map((p) => {
      const v = args[p.name];
      if (p.type === 'str') {
        if (!Buffer.isBuffer(v)) throw new Error(`${fn.name}: ${p.name} needs text`);
        if (v.includes(0)) throw new Error(`${fn.name}: ${p.name} must not contain a NUL byte`);
        return v.length === 0 ? '-' : v.toString('hex');
      }
      if (p.type === 'i32' || p.type === 'i64') {
        if (typeof v !== 'bigint') throw new Error(`${fn.name}: ${p.name} needs an integer`);
        return v.toString(10);
      }
      return '_';
    })
    .join(' ');
}

export type BridgeAnswer =
  | { id: number; ok: true; ret?: number; out?: string; bits?: number }
  | { id: number; ok: false; code: string; message: string };

/** Reads one answer line; throws an Error saying what is wrong with it (a broken bridge). */
export function readAnswer(line: string): BridgeAnswer {
  let x: unknown;
  try {
    x = JSON.parse(line);
  } catch {
    throw new Error(`not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Error('not a JSON object');
  const o = x as Record<string, unknown>;
  if (!Number.isSafeInteger(o.id)) throw new Error('no integer "id"');
  if (o.ok === true) {
    if (
      o.ret !== undefined &&
      (!Number.isInteger(o.ret) || (o.ret as number) < -(2 ** 31) || (o.ret as number) >= 2 ** 31)
    )
      throw new Error('"ret" is not a 32-bit integer');
    if (o.out !== undefined && typeof o.out !== 'string') throw new Error('"out" is not text');
    return {
      id: o.id as number,
      ok: true,
      ret: o.ret as number | undefined,
      out: o.out as string | undefined,
    };
  }
  if (o.ok === false) {
    if (typeof o.code !== 'string' || typeof o.message !== 'string')
      throw new Error('an error without code and message');
    return { id: o.id as number, ok: false, code: o.code, message: o.message };
  }
  throw new Error('"ok" is neither true nor false');
}

const INT = /^-?[0-9]{1,20}$/;
const HEX = /^(?:[0-9a-f]{2})+$/;

/** The outs of a call from its `out` tokens; throws an Error when they do not fit the declaration. */
export function readOutTokens(fn: SdkFunction, out: string): Record<string, Buffer | bigint> {
  const tokens = out === '' ? [] : out.split(' ');
  if (tokens.length !== fn.params.length) {
    throw new Error(`${fn.name}: ${tokens.length} out values for ${fn.params.length} parameters`);
  }
  const values: Record<string, Buffer | bigint> = {};
  fn.params.forEach((p, i) => {
    const t = tokens[i];
    if (p.type === 'buf') {
      if (t === '-') values[p.name] = Buffer.alloc(0);
      else if (HEX.test(t) && t.length / 2 <= (p.size ?? 0)) values[p.name] = Buffer.from(t, 'hex');
      else throw new Error(`${fn.name}: ${p.name} is not hex text of at most ${p.size} bytes`);
    } else if (p.type === 'out_i32' || p.type === 'out_i64') {
      if (!INT.test(t)) throw new Error(`${fn.name}: ${p.name} is not an integer`);
      const v = BigInt(t);
      const bits = p.type === 'out_i32' ? 31n : 63n;
      if (v < -(2n ** bits) || v >= 2n ** bits) throw new Error(`${fn.name}: ${p.name} is out of range`);
      values[p.name] = v;
    } else if (t !== '_') throw new Error(`${fn.name}: ${p.name} is an in parameter; "_" expected`);
  });
  return values;
}

/** Splits a byte stream into lines; a line longer than `max` bytes sets `overflow`. */
export class AnswerLines {
  private parts: Buffer[] = [];
  private size = 0;
  overflow = false;

  constructor(private readonly max = MAX_ANSWER_BYTES) {}

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(10, from);
      if (nl < 0) break;
      this.parts.push(chunk.subarray(from, nl));
      const line = Buffer.concat(this.parts).toString('utf8');
      this.parts = [];
      this.size = 0;
      from = nl + 1;
      if (Buffer.byteLength(line) > this.max) this.overflow = true;
      else lines.push(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    if (from < chunk.length) {
      this.parts.push(chunk.subarray(from));
      this.size += chunk.length - from;
      if (this.size > this.max) {
        this.overflow = true;
        this.parts = [];
        this.size = 0;
      }
    }
    return lines;
  }
}
