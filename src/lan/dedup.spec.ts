import { MessageIdCache } from './dedup';

describe(MessageIdCache.name, () => {
  it('tracks a message from new to processing to done', () => {
    const c = new MessageIdCache(1000);
    expect(c.state('a', 0)).toBe('new');
    c.begin('a', 0);
    expect(c.state('a', 10)).toBe('processing');
    c.finish('a', 10);
    expect(c.state('a', 20)).toBe('done');
  });

  it('forgets an abandoned message so its retry is processed', () => {
    const c = new MessageIdCache(1000);
    c.begin('a', 0);
    c.abandon('a');
    expect(c.state('a', 1)).toBe('new');
  });

  it('forgets ids after their time to live', () => {
    const c = new MessageIdCache(1000);
    c.begin('a', 0);
    c.finish('a', 5);
    expect(c.state('a', 1000)).toBe('done');
    expect(c.state('a', 1001)).toBe('new');
    c.begin('b', 2000); // a sweep removes the expired entry
    expect(c.size()).toBe(1);
  });

  it('keeps at most its capacity, dropping the oldest first', () => {
    const c = new MessageIdCache(60_000, 10);
    for (let i = 0; i < 11; i++) c.begin(`m${i}`, i);
    expect(c.size()).toBeLessThanOrEqual(10);
    expect(c.state('m0', 20)).toBe('new');
    expect(c.state('m10', 20)).toBe('processing');
  });

  it('holds its capacity over a long stream of messages', () => {
    const c = new MessageIdCache(11 * 60_000, 10_000);
    for (let i = 0; i < 200_000; i++) {
      c.begin(`id${i}`, i);
      c.finish(`id${i}`, i);
    }
    expect(c.size()).toBeLessThanOrEqual(10_000);
    expect(c.state('id199999', 200_000)).toBe('done');
  });
});
