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

export { isLoopback, summarize, type Summary } from '../support/bench-kit';
