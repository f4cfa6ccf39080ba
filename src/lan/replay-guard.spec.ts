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
