// Shared by the LAN benchmark's orchestrator (run.ts) and its peers (peer.ts): the offer every round trip
// carries, the store key, and the statistics. No timing decisions live here.
import { LanKey } from '../../src/protocol/lan-envelope';
import { LanBody } from '../../src/protocol/lan-messages';
import { lanKeyFromJson } from '../../src/lan';

/** The environment variable that hands the benchmark's throwaway store key to the peers (JSON). */
export const BENCH_KEY_ENV = 'PAYCONNECT_BENCH_LAN_KEY';

export function benchKey(): LanKey {
  return lanKeyFromJson(JSON.parse(process.env[BENCH_KEY_ENV] ?? 'null'), BENCH_KEY_ENV);
}

/** Device ids on the benchmark LAN: the sender plays the plugin, the receiver a unit. */
export const SENDER_ID = 'P1';
export const RECEIVER_ID = 'U1';

/** A realistic unicast offer. The order id has a fixed width, so every datagram has the same length. */
export function offerBody(prefix: string, i: number, expiresAt: number): LanBody<'offer'> {
  return {
    orderId: `${prefix}${String(i).padStart(8, '0')}`,
    registerId: 'R1',
    amount: { value: 4200, currency: 'EUR' },
    mode: 'unicast',
    expiresAt,
  };
}

/** Nanoseconds (from process.hrtime.bigint) to milliseconds. */
export function nsToMs(ns: bigint): number {
  return Number(ns) / 1e6;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentiles, in the samples' own unit. */
export function summarize(samples: number[]): Summary {
  const s = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, p50: NaN, p99: NaN, mean: NaN, min: NaN, max: NaN };
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  return {
    n: s.length,
    p50: rank(50),
    p99: rank(99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    min: s[0],
    max: s[s.length - 1],
  };
}

/** Addresses a benchmark may send to: loopback, or (checked by the caller) its own namespaces' hosts. */
export function isLoopback(address: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}
