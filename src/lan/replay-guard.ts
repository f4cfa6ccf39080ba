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

/** One sender boot's window. */
interface WindowState {
  /** The boot id as two u32s (its 8 bytes, big-endian). */
  bootHigh: number;
  bootLow: number;
  top: number;
  /** Bit i set = sequence (top - i) was seen; bit i is bit (i % 32) of word (i / 32). */
  bits: Uint32Array;
  /** When this boot was last heard from (a counter): the least recently heard boots are forgotten first. */
  heard: number;
}

/**
 * No garbage per datagram: boots are found by sender, then by the boot id's two u32s (a sender has one
 * boot, two across a restart), so no key string is built; the window is an array of u32 words, not a
 * BigInt (every shift and mask of a BigInt is a new heap object).
 */
export class ReplayGuard {
  /** Per sender, its boots we track. */
  private readonly senders = new Map<string, WindowState[]>();
  private boots = 0;
  private readonly words: number;
  /** Mask of the window's bits in its last word. */
  private readonly lastWordMask: number;
  private tick = 0;

  constructor(private readonly options: ReplayGuardOptions = DEFAULT_REPLAY_GUARD) {
    if (options.window < 1 || options.window > 1024) throw new RangeError('replay window must be 1-1024');
    this.words = Math.ceil(options.window / 32);
    const rest = options.window % 32;
    this.lastWordMask = rest === 0 ? 0xffffffff : (1 << rest) - 1;
  }

  /** Checks and, when fresh, records the datagram. Call only after the seal has been verified. */
  check(sender: string, bootId: Buffer, seq: number, timestamp: number, now: number): FreshnessVerdict {
    return this.checkAt(sender, bootId, 0, seq, timestamp, now);
  }

  /** `check`, with the boot id being the 8 bytes of `bytes` from `bootAt` (e.g. a received datagram). */
  checkAt(
    sender: string,
    bytes: Buffer,
    bootAt: number,
    seq: number,
    timestamp: number,
    now: number,
  ): FreshnessVerdict {
    if (Math.abs(timestamp - now) > this.options.skewMs) return 'skew';
    const high = bytes.readUInt32BE(bootAt);
    const low = bytes.readUInt32BE(bootAt + 4);
    let list = this.senders.get(sender);
    let state: WindowState | undefined;
    if (list) {
      // Newest boot last: a sender's current boot is found first however many old ones are remembered.
      for (let i = list.length - 1; i >= 0; i--) {
        const s = list[i];
        if (s.bootHigh === high && s.bootLow === low) {
          state = s;
          break;
        }
      }
    }
    if (!state) {
      const bits = new Uint32Array(this.words);
      bits[0] = 1;
      state = { bootHigh: high, bootLow: low, top: seq, bits, heard: ++this.tick };
      if (!list) this.senders.set(sender, (list = []));
      list.push(state);
      this.boots++;
      if (this.boots > this.options.maxBoots) this.forgetLeastRecentlyHeard();
      return 'ok';
    }
    // Not re-inserted anywhere: the counter orders boots by when they were last heard, and is read only
    // when the table is full.
    state.heard = ++this.tick;
    if (seq > state.top) {
      this.advance(state.bits, seq - state.top);
      state.top = seq;
      return 'ok';
    }
    const behind = state.top - seq;
    if (behind >= this.options.window) return 'replay';
    const word = behind >>> 5;
    const bit = 1 << (behind & 31);
    if ((state.bits[word] & bit) !== 0) return 'replay';
    state.bits[word] |= bit;
    return 'ok';
  }

  trackedBoots(): number {
    return this.boots;
  }

  /** Forgets every boot, as a restart of this device does (specs: a recorded datagram then passes). */
  forgetAll(): void {
    this.senders.clear();
    this.boots = 0;
  }

  /** Moves the window up by `shift` sequences (bit i becomes bit i + shift), then marks the new top seen. */
  private advance(bits: Uint32Array, shift: number): void {
    const n = this.words;
    if (shift >= this.options.window) {
      bits.fill(0);
    } else {
      const wordShift = shift >>> 5;
      const bitShift = shift & 31;
      for (let j = n - 1; j >= 0; j--) {
        const from = j - wordShift;
        let v = from >= 0 ? bits[from] << bitShift : 0;
        if (bitShift !== 0 && from - 1 >= 0) v |= bits[from - 1] >>> (32 - bitShift);
        bits[j] = v;
      }
      bits[n - 1] &= this.lastWordMask;
    }
    bits[0] |= 1;
  }

  /**
   * Over `maxBoots`: forgets the least recently heard tenth in one pass (O(n log n) once per maxBoots/10
   * new boots, not work per datagram). A small table (tests) forgets exactly the least recently heard boot.
   */
  private forgetLeastRecentlyHeard(): void {
    const { maxBoots } = this.options;
    const keep = maxBoots >= 100 ? Math.floor(maxBoots * 0.9) : maxBoots;
    const all: Array<[string, WindowState]> = [];
    for (const [sender, list] of this.senders) for (const s of list) all.push([sender, s]);
    all.sort((a, b) => a[1].heard - b[1].heard);
    for (const [sender, s] of all.slice(0, this.boots - keep)) {
      const list = this.senders.get(sender)!;
      list.splice(list.indexOf(s), 1);
      if (list.length === 0) this.senders.delete(sender);
      this.boots--;
    }
  }
}
