/**
 * Freshness checks for datagrams that have already been authenticated: the clock-skew limit and the
 * per-sender-boot sliding replay window (the IPsec anti-replay scheme, RFC 4303 §3.4.3).
 *
 * Why both, and why message-id de-duplication on top (dedup.ts): the window stops an attacker replaying a
 * recorded datagram of a boot we still track; a boot we no longer track (or a sender that restarted) could
 * be replayed, but only within the skew limit, and inside that limit the message id is still remembered,
 * so the replayed message is never processed again. Only authenticated datagrams reach this class, so no
 * outsider can fill the table.
 */
export type FreshnessVerdict = 'ok' | 'skew' | 'replay';

export interface ReplayGuardOptions {
  /** Largest accepted |sender time - our time|, ms. DESIGN.md: 5 minutes. */
  skewMs: number;
  /** Sequences tracked behind the highest seen, per sender boot. DESIGN.md: 64. */
  window: number;
  /** Sender boots remembered at once; the least recently heard is forgotten first. */
  maxBoots: number;
}

export const DEFAULT_REPLAY_GUARD: ReplayGuardOptions = { skewMs: 5 * 60_000, window: 64, maxBoots: 4096 };

interface WindowState {
  top: number;
  /** Bit i set = sequence (top - i) was seen. */
  bits: bigint;
  /** When this boot was last heard from (a counter): the least recently heard boots are forgotten first. */
  heard: number;
}

export class ReplayGuard {
  private readonly boots = new Map<string, WindowState>();
  private readonly mask: bigint;
  private tick = 0;

  constructor(private readonly options: ReplayGuardOptions = DEFAULT_REPLAY_GUARD) {
    if (options.window < 1 || options.window > 1024) throw new RangeError('replay window must be 1-1024');
    this.mask = (1n << BigInt(options.window)) - 1n;
  }

  /** Checks and, when fresh, records the datagram. Call only after the seal has been verified. */
  check(sender: string, bootId: Buffer, seq: number, timestamp: number, now: number): FreshnessVerdict {
    if (Math.abs(timestamp - now) > this.options.skewMs) return 'skew';
    const key = `${sender}/${bootId.toString('hex')}`;
    const state = this.boots.get(key);
    if (!state) {
      this.remember(key, { top: seq, bits: 1n, heard: ++this.tick });
      return 'ok';
    }
    // Not re-inserted (a delete and a set on every datagram left holes for V8 to rehash): the counter
    // orders boots by when they were last heard, and is read only when the table is full.
    state.heard = ++this.tick;
    if (seq > state.top) {
      const shift = seq - state.top;
      state.bits = shift >= this.options.window ? 1n : ((state.bits << BigInt(shift)) | 1n) & this.mask;
      state.top = seq;
      return 'ok';
    }
    const behind = state.top - seq;
    if (behind >= this.options.window) return 'replay';
    const bit = 1n << BigInt(behind);
    if (state.bits & bit) return 'replay';
    state.bits |= bit;
    return 'ok';
  }

  trackedBoots(): number {
    return this.boots.size;
  }

  /**
   * Adds a boot. When that makes more than `maxBoots`, forgets the least recently heard tenth in one pass
   * (O(n log n) once per maxBoots/10 new boots, not work per datagram).
   */
  private remember(key: string, state: WindowState): void {
    this.boots.set(key, state);
    if (this.boots.size <= this.options.maxBoots) return;
    const { maxBoots } = this.options;
    // A small table (tests) forgets exactly the least recently heard boot.
    const keep = maxBoots >= 100 ? Math.floor(maxBoots * 0.9) : maxBoots;
    const byAge = [...this.boots].sort((a, b) => a[1].heard - b[1].heard);
    for (const [k] of byAge.slice(0, this.boots.size - keep)) this.boots.delete(k);
  }
}
