import { setBounded } from './bounded-map';

describe('setBounded', () => {
  it('keeps the newest `limit` entries, dropping the oldest first', () => {
    const m = new Map<string, number>();
    for (let i = 1; i <= 5; i++) setBounded(m, `o${i}`, i, 3);
    expect([...m]).toEqual([
      ['o3', 3],
      ['o4', 4],
      ['o5', 5],
    ]);
  });

  it('makes a key set again the newest, so it outlives entries set after its first setting', () => {
    const m = new Map<string, number>();
    setBounded(m, 'a', 1, 2);
    setBounded(m, 'b', 2, 2);
    setBounded(m, 'a', 3, 2);
    setBounded(m, 'c', 4, 2);
    expect([...m]).toEqual([
      ['a', 3],
      ['c', 4],
    ]);
  });

  it('brings a map that is over its limit back to it at the next set', () => {
    const m = new Map(Array.from({ length: 10 }, (_, i) => [i, i] as [number, number]));
    setBounded(m, 99, 99, 4);
    expect([...m.keys()]).toEqual([7, 8, 9, 99]);
  });
});
