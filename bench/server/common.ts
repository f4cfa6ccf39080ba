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

/** Addresses the benchmark may send to. */
export function isLoopback(address: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

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
