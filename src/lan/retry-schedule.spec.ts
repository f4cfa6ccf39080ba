import {
  BACKOFF_ONLY_RETRY,
  checkRetryPolicy,
  DEFAULT_RETRY,
  nextRetryDelayMs,
  RetryPolicy,
  RetryState,
} from './retry-schedule';

/** The times (ms after the first send) of every transmission before `untilMs`, with jitter pinned. */
function sendTimes(policy: RetryPolicy, untilMs: number, random = 0.5): number[] {
  const state: RetryState = { attempts: 0, slowRetries: 0 };
  const times: number[] = [];
  let t = 0;
  while (t < untilMs) {
    times.push(t);
    state.attempts++;
    t += nextRetryDelayMs(policy, state, t, random);
  }
  return times;
}

describe(nextRetryDelayMs.name, () => {
  it('default: 60 ms, then every 80 ms for the first 2.5 s, then 200, 400, 800 ms and one a second', () => {
    const fast = [0, 60, ...Array.from({ length: 30 }, (_, i) => 140 + 80 * i)]; // … 2380, 2460
    const slow = [2540, 2740, 3140, 3940, 4940, 5940, 6940, 7940, 8940, 9940];
    expect(sendTimes(DEFAULT_RETRY, 10_000)).toEqual([...fast, ...slow]);
  });

  it('default: 26 transmissions in the first 2 s (all of them fail at 24% per round trip: under 0.1%)', () => {
    const n = sendTimes(DEFAULT_RETRY, 2000).length;
    expect(n).toBe(26);
    expect(0.76 ** n).toBeLessThan(0.001);
    // The 17th transmission (where the 99th percentile falls at 24% per round trip) leaves at 1.26 s.
    expect(sendTimes(DEFAULT_RETRY, 2000)[16]).toBe(1260);
  });

  it('the schedule before issue 14: 60 ms doubling to 1 s (7 transmissions in 2 s)', () => {
    expect(sendTimes(BACKOFF_ONLY_RETRY, 6000)).toEqual([0, 60, 180, 420, 900, 1860, 2860, 3860, 4860, 5860]);
  });

  it('an offer retried for 30 s to a unit that is gone: 62 datagrams (the old schedule: 34), the 28 more all in the first 3 s', () => {
    expect(sendTimes(DEFAULT_RETRY, 30_000)).toHaveLength(62);
    expect(sendTimes(BACKOFF_ONLY_RETRY, 30_000)).toHaveLength(34);
  });

  it('jitter stays within ±20% of each delay', () => {
    const low = { attempts: 1, slowRetries: 0 };
    const high = { attempts: 1, slowRetries: 0 };
    expect(nextRetryDelayMs(DEFAULT_RETRY, low, 0, 0)).toBe(48);
    expect(nextRetryDelayMs(DEFAULT_RETRY, high, 0, 0.999999)).toBe(72);
    expect(nextRetryDelayMs(DEFAULT_RETRY, { attempts: 9, slowRetries: 0 }, 900, 0)).toBe(64);
    expect(nextRetryDelayMs(DEFAULT_RETRY, { attempts: 30, slowRetries: 9 }, 9000, 0.999999)).toBe(1200);
  });

  it('rejects a policy that would retry in a tight loop or never', () => {
    expect(() => checkRetryPolicy({ ...DEFAULT_RETRY, intervalMs: 0 })).toThrow(/intervalMs/);
    expect(() => checkRetryPolicy({ ...DEFAULT_RETRY, factor: 0.5 })).toThrow(/factor/);
    expect(() => checkRetryPolicy({ ...DEFAULT_RETRY, jitter: 1 })).toThrow(/jitter/);
    expect(checkRetryPolicy(DEFAULT_RETRY)).toBe(DEFAULT_RETRY);
  });
});
