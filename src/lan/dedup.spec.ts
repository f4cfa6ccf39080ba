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

  it('forgets ids after their time to live, and keeps at most its capacity', () => {
    const c = new MessageIdCache(1000, 3);
    c.finish('a', 0);
    expect(c.state('a', 1000)).toBe('done');
    expect(c.state('a', 1001)).toBe('new');
    for (const id of ['b', 'c', 'd', 'e']) c.finish(id, 2000);
    expect(c.size()).toBe(3);
    expect(c.state('b', 2000)).toBe('new');
    expect(c.state('e', 2000)).toBe('done');
  });
});
