/**
 * Counts refused attempts per client and turns a client away once it has had too many in a window: what
 * keeps a stranger from guessing registration codes (without it one client tried 2,200 codes a second, and
 * could find and lock every outstanding code in minutes). Only refusals count, so a reseller registering a
 * shop's devices is never slowed; a client over the limit is refused even with a right code until its window
 * ends (429 with Retry-After), so guessing cannot go on beside it.
 *
 * In memory, per server instance: several instances behind one balancer each allow the limit (still a few
 * tries a minute, not thousands a second). Clients are told apart by their address; behind a reverse proxy
 * every client has the proxy's address, so one guesser can hold up registration for a minute at a time.
 */
import { Clock } from '../protocol/clock';

export interface FailureLimit {
  /** Refusals allowed per client in one window. */
  failures: number;
  windowMs: number;
}

/** 10 refusals a minute: a person mistyping a code a few times is never stopped. */
export const REGISTRATION_FAILURE_LIMIT: FailureLimit = { failures: 10, windowMs: 60_000 };

const MAX_CLIENTS = 50_000;

export class FailureLimiter {
  private readonly clients = new Map<string, { start: number; failures: number }>();

  constructor(
    private readonly clock: Clock,
    readonly limit: FailureLimit = REGISTRATION_FAILURE_LIMIT,
  ) {}

  /** Milliseconds until the client may try again; 0 when it may try now. */
  blockedFor(client: string): number {
    const entry = this.current(client);
    if (!entry || entry.failures < this.limit.failures) return 0;
    return entry.start + this.limit.windowMs - this.clock.now();
  }

  fail(client: string): void {
    const entry = this.current(client);
    if (entry) entry.failures++;
    else {
      if (this.clients.size >= MAX_CLIENTS) this.sweep();
      this.clients.set(client, { start: this.clock.now(), failures: 1 });
    }
  }

  private current(client: string): { start: number; failures: number } | undefined {
    const entry = this.clients.get(client);
    if (entry && entry.start + this.limit.windowMs <= this.clock.now()) {
      this.clients.delete(client);
      return undefined;
    }
    return entry;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [k, v] of this.clients) if (v.start + this.limit.windowMs <= now) this.clients.delete(k);
    if (this.clients.size >= MAX_CLIENTS) this.clients.clear();
  }
}
