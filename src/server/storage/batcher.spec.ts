import { Batcher } from './batcher';

/** A call whose answer the test releases by hand. */
function gate<T>(): { promise: Promise<T>; open: (v: T) => void; fail: (e: unknown) => void } {
  let open!: (v: T) => void;
  let fail!: (e: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

class Refused extends Error {}

describe(Batcher.name, () => {
  it('sends a call that finds nothing in flight at once and alone', async () => {
    const one = jest.fn(async (n: number) => n * 10);
    const many = jest.fn(async (ns: number[]) => ns.map((n) => n * 10));
    const sut = new Batcher(one, many, (e) => e instanceof Refused);
    await expect(sut.run(1)).resolves.toBe(10);
    await expect(sut.run(2)).resolves.toBe(20);
    expect(one).toHaveBeenCalledTimes(2);
    expect(many).not.toHaveBeenCalled();
  });

  it('sends the calls that arrive while one is in flight together, in order, each getting its own answer', async () => {
    const first = gate<string>();
    const one = jest.fn((n: number) => (n === 0 ? first.promise : Promise.resolve(`one ${n}`)));
    const many = jest.fn(async (ns: number[]) => ns.map((n) => `many ${n}`));
    const sut = new Batcher(one, many, (e) => e instanceof Refused);
    const answers = [0, 1, 2, 3].map((n) => sut.run(n));
    first.open('one 0');
    await expect(Promise.all(answers)).resolves.toEqual(['one 0', 'many 1', 'many 2', 'many 3']);
    expect(many).toHaveBeenCalledTimes(1);
    expect(many).toHaveBeenCalledWith([1, 2, 3]);
    expect(sut.stats).toEqual({ batches: 1, items: 3, fallbacks: 0 });
  });

  it('never puts more than max items in one batch', async () => {
    const first = gate<number>();
    const sizes: number[] = [];
    const sut = new Batcher(
      (n: number) => (n === 0 ? first.promise : Promise.resolve(n)),
      async (ns: number[]) => {
        sizes.push(ns.length);
        return ns;
      },
      (e) => e instanceof Refused,
      3,
    );
    const answers = Array.from({ length: 8 }, (_, n) => sut.run(n));
    first.open(0);
    await expect(Promise.all(answers)).resolves.toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(sizes).toEqual([3, 3]); // and the last item alone
  });

  it('runs every item of a refused batch alone, so one item’s error stays its own', async () => {
    const first = gate<string>();
    const one = jest.fn((n: number) => {
      if (n === 0) return first.promise;
      if (n === 2) return Promise.reject(new Refused('item 2 is bad'));
      return Promise.resolve(`one ${n}`);
    });
    const many = jest.fn(async () => {
      throw new Refused('the batch has a bad item');
    });
    const sut = new Batcher(one, many, (e) => e instanceof Refused);
    const answers = [0, 1, 2, 3].map((n) => sut.run(n).catch((e: Error) => `error: ${e.message}`));
    first.open('one 0');
    await expect(Promise.all(answers)).resolves.toEqual(['one 0', 'one 1', 'error: item 2 is bad', 'one 3']);
    expect(sut.stats.fallbacks).toBe(1);
  });

  it('gives every caller the error of a batch whose outcome is unknown, and runs nothing again', async () => {
    const first = gate<string>();
    const one = jest.fn((n: number) => (n === 0 ? first.promise : Promise.resolve(`one ${n}`)));
    const broken = new Error('Connection terminated unexpectedly');
    const sut = new Batcher(
      one,
      async () => {
        throw broken;
      },
      (e) => e instanceof Refused,
    );
    const answers = [0, 1, 2].map((n) => sut.run(n).catch((e: Error) => `error: ${e.message}`));
    first.open('one 0');
    await expect(Promise.all(answers)).resolves.toEqual([
      'one 0',
      'error: Connection terminated unexpectedly',
      'error: Connection terminated unexpectedly',
    ]);
    expect(one).toHaveBeenCalledTimes(1);
  });

  it('refuses a max that is not a whole number of at least 1', () => {
    const f = async () => 0;
    expect(
      () =>
        new Batcher(
          f,
          async () => [],
          () => true,
          0,
        ),
    ).toThrow(RangeError);
  });
});
