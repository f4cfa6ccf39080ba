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
