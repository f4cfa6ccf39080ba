/**
 * How the host-sdk adapter calls a vendor's SDK, whichever way the library is loaded: in this process
 * through koffi (sdk-koffi.ts) or in a bridge process of the library's own width (sdk-bridge.ts). Texts
 * cross as bytes (the manifest's encoding is applied by the adapter), integers as bigint, never a float.
 */
import { TransportError } from '../../protocol/errors';
import type { SdkFunction } from './signature';

/** An argument for an in parameter: bytes for `const char *` (no NUL), an integer for int/int64_t. */
export type SdkArg = Buffer | bigint;

/** What a call answered: the return code, and each out parameter by name (bytes up to the NUL, or an integer). */
export interface SdkAnswer {
  ret: number;
  out: Record<string, Buffer | bigint>;
}

export interface SdkCaller {
  /**
   * Loads the library and resolves every function. Throws ManifestError (a missing library or symbol, a
   * library of the wrong width) or TransportError (a bridge that cannot start), naming the library and symbol.
   */
  open(): Promise<void>;
  /**
   * Calls one of the functions given at construction; never blocks the event loop. Rejects with a
   * TransportError when the call does not return within the caller's timeout (the call may still be
   * running in its thread or process: the next call is refused until it returned).
   */
  call(fn: SdkFunction, args: Record<string, SdkArg>): Promise<SdkAnswer>;
  close(): Promise<void>;
  /** Counters of the caller itself (bridge restarts), for stats(). */
  stats(): Record<string, number | string>;
}

/** The argument list in declaration order: in values from `args`, fresh zeroed buffers for the outs. */
export function argumentList(fn: SdkFunction, args: Record<string, SdkArg>): (Buffer | bigint)[] {
  return fn.params.map((p) => {
    switch (p.type) {
      case 'buf':
        return Buffer.alloc(p.size ?? 1);
      case 'out_i32':
        return Buffer.alloc(4);
      case 'out_i64':
        return Buffer.alloc(8);
      case 'str': {
        const v = args[p.name];
        if (!Buffer.isBuffer(v)) throw new Error(`${fn.name}: ${p.name} needs text`);
        if (v.includes(0)) throw new Error(`${fn.name}: ${p.name} must not contain a NUL byte`);
        return Buffer.concat([v, Buffer.from([0])]);
      }
      case 'i32':
      case 'i64': {
        const v = args[p.name];
        if (typeof v !== 'bigint') throw new Error(`${fn.name}: ${p.name} needs an integer`);
        const [lo, hi] = p.type === 'i32' ? [-(2n ** 31n), 2n ** 31n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
        if (v < lo || v > hi) throw new Error(`${fn.name}: ${p.name} = ${v} does not fit ${p.type}`);
        return v;
      }
    }
  });
}

/** Reads the outs after a call from the buffers argumentList made (little-endian: x86 and x64). */
export function readOuts(fn: SdkFunction, list: (Buffer | bigint)[]): Record<string, Buffer | bigint> {
  const out: Record<string, Buffer | bigint> = {};
  fn.params.forEach((p, i) => {
    const v = list[i];
    if (!Buffer.isBuffer(v)) return;
    if (p.type === 'buf') {
      const end = v.indexOf(0);
      out[p.name] = Buffer.from(end < 0 ? v : v.subarray(0, end));
    } else if (p.type === 'out_i32') out[p.name] = BigInt(v.readInt32LE(0));
    else if (p.type === 'out_i64') out[p.name] = v.readBigInt64LE(0);
  });
  return out;
}

/**
 * One SDK call at a time, in order: register SDKs are rarely thread-safe, and a poll and a write-back may
 * ask at the same moment. A call waits for the one before it to return; if that one is stuck past
 * `timeoutMs` (a hung SDK), this call fails instead of queueing behind it for ever. `run` rejects when
 * its own call does not return in time; the queue stays closed until the native call really returned.
 */
export class CallQueue {
  private tail: Promise<void> = Promise.resolve();
  private running?: { label: string; since: number };
  timeouts = 0;

  constructor(
    private readonly subject: string,
    private readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async run<T>(label: string, start: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    const began = this.now();
    const waited = await within(
      prev.then(() => true),
      this.timeoutMs,
      false,
    );
    if (!waited) {
      void prev.then(release);
      const stuck = this.running;
      throw new TransportError(
        'host_sdk.sdk_busy',
        `${stuck ? `${stuck.label} has not returned for ${this.now() - stuck.since} ms` : 'an earlier call has not returned'}` +
          ` in ${this.subject}; ${label} was not called`,
        { subject: this.subject },
      );
    }
    this.running = { label, since: this.now() };
    const call = start();
    void call.then(
      () => ((this.running = undefined), release()),
      () => ((this.running = undefined), release()),
    );
    const left = Math.max(1, this.timeoutMs - (this.now() - began));
    const timedOut = Symbol('timeout');
    const r = await within(call, left, timedOut);
    if (r === timedOut) {
      this.timeouts++;
      throw new TransportError(
        'host_sdk.call_timeout',
        `${label} in ${this.subject} did not return within ${this.timeoutMs} ms (options.callTimeoutMs)`,
        { subject: this.subject },
      );
    }
    return r as T;
  }
}

/** `p`'s value, or `fallback` after `ms` (p keeps running). */
function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<F>((resolve) => {
      timer = setTimeout(() => resolve(fallback), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
