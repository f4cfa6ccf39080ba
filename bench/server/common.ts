// Shared by the server benchmark's orchestrator (run.ts) and its targets (target.ts): the request every
// payment carries, the statistics, and the small part of autocannon's API the benchmark uses (autocannon
// ships no TypeScript types). No timing decisions live here.

/** The two servers under load: the real one (NestJS app from createServerApp) and the bare baseline. */
export type Kind = 'nest' | 'bare';
export const KINDS: Kind[] = ['bare', 'nest'];

/**
 * A payment code that the simulator approves at once (18 digits, prefix 28 = Alipay-like, ending 00 =
 * immediate success). Never a real customer's code.
 */
export const BENCH_PAYMENT_CODE = '281234567890123400';

/**
 * The body of every create-payment request. `[<id>]` is replaced by autocannon (idReplacement) with a
 * fresh 33-character id per request, so every request is a new order with a new Idempotency-Key.
 */
export function paymentBody(): string {
  return JSON.stringify({
    orderId: 'B-[<id>]',
    registerId: 'R1',
    amount: { value: 4200, currency: 'EUR' },
    method: { type: 'wallet_code', code: BENCH_PAYMENT_CODE },
  });
}

export { isLoopback, summarize, type Summary } from '../support/bench-kit';

// --- autocannon (the subset used here) ---------------------------------------------------------------

export interface AutocannonOptions {
  url: string;
  method: 'POST';
  connections: number;
  duration: number;
  timeout: number;
  headers: Record<string, string>;
  body: string;
  idReplacement: boolean;
}

export interface AutocannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p99: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}

export interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(
    event: 'response',
    fn: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void,
  ): void;
  stop(): void;
}

export type Autocannon = (opts: AutocannonOptions) => AutocannonInstance;
