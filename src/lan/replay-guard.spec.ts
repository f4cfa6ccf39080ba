import { seededRandom } from '../../test/support/seeded-random';
import { ReplayGuard } from './replay-guard';

const boot = Buffer.alloc(8, 1);
const now = 1_790_000_000_000;

describe(ReplayGuard.name, () => {
  it('accepts new sequences, in or out of order, once each', () => {
    const g = new ReplayGuard();
    expect(g.check('T1', boot, 10, now, now)).toBe('ok');
    expect(g.check('T1', boot, 12, now, now)).toBe('ok');
    expect(g.check('T1', boot, 11, now, now)).toBe('ok'); // late, inside the window
    expect(g.check('T1', boot, 11, now, now)).toBe('replay');
    expect(g.check('T1', boot, 12, now, now)).toBe('replay');
    expect(g.check('T1', boot, 10, now, now)).toBe('replay');
  });

  it('treats anything older than the 64-entry window as a replay', () => {
    const g = new ReplayGuard();
    expect(g.check('T1', boot, 100, now, now)).toBe('ok');
    expect(g.check('T1', boot, 37, now, now)).toBe('ok'); // 63 behind: inside
    expect(g.check('T1', boot, 36, now, now)).toBe('replay'); // 64 behind: outside
    expect(g.check('T1', boot, 200, now, now)).toBe('ok'); // a jump clears the window
    expect(g.check('T1', boot, 199, now, now)).toBe('ok');
    expect(g.check('T1', boot, 100, now, now)).toBe('replay');
  });

  it('keeps a window per sender and per boot', () => {
    const g = new ReplayGuard();
    expect(g.check('T1', boot, 5, now, now)).toBe('ok');
    expect(g.check('T2', boot, 5, now, now)).toBe('ok');
    expect(g.check('T1', Buffer.alloc(8, 2), 5, now, now)).toBe('ok');
  });

  it('rejects timestamps more than 5 minutes either side of our clock', () => {
    const g = new ReplayGuard();
    expect(g.check('T1', boot, 1, now - 300_000, now)).toBe('ok');
    expect(g.check('T1', boot, 2, now - 300_001, now)).toBe('skew');
    expect(g.check('T1', boot, 3, now + 300_001, now)).toBe('skew');
    // A skewed datagram does not consume its sequence.
    expect(g.check('T1', boot, 2, now, now)).toBe('ok');
  });

  it('forgets the least recently heard boot beyond its limit', () => {
    const g = new ReplayGuard({ skewMs: 300_000, window: 64, maxBoots: 2 });
    g.check('A', boot, 1, now, now);
    g.check('B', boot, 1, now, now);
    g.check('A', boot, 2, now, now);
    g.check('C', boot, 1, now, now);
    expect(g.trackedBoots()).toBe(2);
    expect(g.check('A', boot, 2, now, now)).toBe('replay'); // A was kept
    expect(g.check('B', boot, 1, now, now)).toBe('ok'); // B was forgotten (message-id dedup covers this case)
  });
});

describe(`${ReplayGuard.name} against a model`, () => {
  /** The rule in docs/protocol.md, kept as plainly as possible: every sequence seen, and the highest. */
  class Model {
    private readonly seen = new Map<string, { top: number; seqs: Set<number> }>();
    constructor(private readonly window: number) {}
    check(boot: string, seq: number): string {
      const s = this.seen.get(boot);
      if (!s) {
        this.seen.set(boot, { top: seq, seqs: new Set([seq]) });
        return 'ok';
      }
      if (seq <= s.top - this.window || s.seqs.has(seq)) return 'replay';
      s.seqs.add(seq);
      s.top = Math.max(s.top, seq);
      return 'ok';
    }
  }

  it.each([1, 31, 32, 33, 64, 100, 1024])(
    'window %i: the same verdict as the model over 20,000 seeded sequences, two boots, steps of every size',
    (window) => {
      const r = seededRandom(window);
      const g = new ReplayGuard({ skewMs: 300_000, window, maxBoots: 16 });
      const model = new Model(window);
      const boots = [Buffer.alloc(8, 1), Buffer.from([0, 0, 0, 0, 0, 0, 0, 1])];
      const tops = [1000, 1000];
      const mismatches: object[] = [];
      for (let i = 0; i < 20_000; i++) {
        const b = r() < 0.5 ? 0 : 1;
        const pick = r();
        // Mostly near the top (in the window, just outside, a little ahead), sometimes a jump.
        const seq =
          pick < 0.1
            ? tops[b] + 1 + Math.floor(r() * 2 * window)
            : pick < 0.15
              ? tops[b] + Math.floor(r() * 5000)
              : Math.max(0, tops[b] - Math.floor(r() * (window + 40)) + 2);
        tops[b] = Math.max(tops[b], seq);
        const mine = g.check('T1', boots[b], seq, now, now);
        const expected = model.check(boots[b].toString('hex'), seq);
        if (mine !== expected) mismatches.push({ i, b, seq, mine, expected });
        if (mismatches.length > 5) break;
      }
      expect(mismatches).toEqual([]);
    },
  );
});

describe(`${ReplayGuard.name} against a model: many senders, 32-bit edges, eviction`, () => {
  /**
   * The whole guard kept plainly: every (sender, boot, sequence) seen in a Set, the highest sequence per
   * (sender, boot), the skew limit, and eviction of the least recently heard boots (a skewed datagram is
   * not heard; a replay is) once there are more than maxBoots: down to maxBoots, or to 90% of it from 100.
   */
  class Model {
    private readonly seen = new Set<string>();
    private readonly boots = new Map<string, { top: number; heard: number }>();
    private tick = 0;
    evicted = 0;
    constructor(
      private readonly window: number,
      private readonly maxBoots: number,
    ) {}
    check(sender: string, boot: string, seq: number, timestamp: number, at: number): string {
      if (Math.abs(timestamp - at) > 300_000) return 'skew';
      const key = `${sender}/${boot}`;
      const b = this.boots.get(key);
      if (!b) {
        this.boots.set(key, { top: seq, heard: ++this.tick });
        this.seen.add(`${key}/${seq}`);
        if (this.boots.size > this.maxBoots) this.evict();
        return 'ok';
      }
      b.heard = ++this.tick;
      if (seq <= b.top - this.window || this.seen.has(`${key}/${seq}`)) return 'replay';
      this.seen.add(`${key}/${seq}`);
      b.top = Math.max(b.top, seq);
      return 'ok';
    }
    size(): number {
      return this.boots.size;
    }
    private evict(): void {
      const keep = this.maxBoots >= 100 ? Math.floor(this.maxBoots * 0.9) : this.maxBoots;
      const oldest = [...this.boots].sort((a, b) => a[1].heard - b[1].heard);
      for (const [key] of oldest.slice(0, this.boots.size - keep)) {
        this.boots.delete(key);
        this.evicted++;
        for (const s of [...this.seen]) if (s.startsWith(`${key}/`)) this.seen.delete(s);
      }
    }
  }

  /** Boot ids as (high u32, low u32): pairs that differ only in the high or only in the low word. */
  const bootWords: Array<[number, number]> = [
    [0, 0],
    [1, 0],
    [0, 1],
    [0x80000000, 0],
    [0, 0x80000000],
    [0xffffffff, 0],
    [0, 0xffffffff],
    [0xffffffff, 0xffffffff],
  ];
  const bootIds = bootWords.map(([high, low]) => {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(high, 0);
    b.writeUInt32BE(low, 4);
    return b;
  });
  /** Where each (sender, boot)'s sequences start: at 0, either side of 2^31, and up to 2^32 - 1. */
  const starts = [0, 2 ** 31 - 70, 2 ** 31 - 1, 2 ** 32 - 300, 2 ** 32 - 1];

  it.each([
    [1, 3],
    [32, 6],
    [33, 1000],
    [64, 12],
    [100, 100],
    [1024, 40],
  ])(
    'window %i, maxBoots %i: the same verdicts and tracked boots as the model over 15,000 seeded datagrams',
    (window, maxBoots) => {
      const r = seededRandom(window * 7919 + maxBoots);
      const g = new ReplayGuard({ skewMs: 300_000, window, maxBoots });
      const model = new Model(window, maxBoots);
      // Enough senders that the small tables evict, and maxBoots 100 crosses its limit (forgets a tenth).
      const senders = Array.from({ length: maxBoots >= 100 ? 20 : 6 }, (_, i) => `T${i}`);
      const tops = new Map<string, number>();
      const mismatches: object[] = [];
      let replays = 0;
      for (let i = 0; i < 15_000; i++) {
        // Skewed towards the first senders and boots: they stay heard, the rest come and go.
        const sender = senders[Math.floor(r() * r() * senders.length)];
        const b = Math.floor(r() * r() * bootIds.length);
        const key = `${sender}/${b}`;
        const top = tops.get(key) ?? starts[Math.floor(r() * starts.length)];
        const pick = r();
        // Mostly near the top (in the window, just outside, a little ahead), sometimes a jump.
        const raw =
          pick < 0.15
            ? top + 1 + Math.floor(r() * 2 * window)
            : pick < 0.2
              ? top + Math.floor(r() * 5000)
              : top - Math.floor(r() * (window + 40)) + 2;
        const seq = Math.min(2 ** 32 - 1, Math.max(0, raw));
        tops.set(key, Math.max(top, seq));
        const timestamp = r() < 0.03 ? now + (r() < 0.5 ? -1 : 1) * 300_001 : now;
        const mine = g.check(sender, bootIds[b], seq, timestamp, now);
        const expected = model.check(sender, bootIds[b].toString('hex'), seq, timestamp, now);
        if (mine !== expected || g.trackedBoots() !== model.size())
          mismatches.push({ i, sender, boot: bootWords[b], seq, mine, expected, tracked: g.trackedBoots() });
        if (mismatches.length > 5) break;
        if (expected === 'replay') replays++;
      }
      expect(mismatches).toEqual([]);
      // The run was not trivial: many replays, and eviction wherever the boots outnumber maxBoots.
      expect(replays).toBeGreaterThan(1000);
      if (maxBoots < senders.length * bootIds.length) expect(model.evicted).toBeGreaterThan(100);
    },
  );
});
