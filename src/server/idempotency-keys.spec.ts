import { ENGINES, TestDatabases } from '../../test/server/support/databases';
import { IdempotencyKeys, requestHash } from './idempotency-keys';
import { ServerDb } from './storage/open';

const TIMING = { keyLockMs: 60_000, keyTtlMs: 24 * 60 * 60_000 };

describe(IdempotencyKeys.name, () => {
  it('hashes the request by its canonical JSON: key order does not matter, values do', () => {
    expect(requestHash({ a: 1, b: { c: 2, d: 3 } })).toBe(requestHash({ b: { d: 3, c: 2 }, a: 1 }));
    expect(requestHash({ a: 1 })).not.toBe(requestHash({ a: 2 }));
  });

  describe.each(ENGINES)('on real %s', (engine) => {
    const dbs = new TestDatabases('keys');
    let db: ServerDb;
    let keys: IdempotencyKeys;
    let n = 0;
    let key: string;
    const STORE = 's1';
    const SCOPE = 'payments';
    const hash = requestHash({ order: 1 });

    beforeAll(async () => {
      db = await dbs.open(engine);
      keys = new IdempotencyKeys(db, TIMING);
    });
    afterAll(() => dbs.closeAll());
    beforeEach(() => (key = `k${++n}`));

    const claim = (now: number, resource = 'pay_1', h = hash, scope = SCOPE) =>
      db.tx((q) => keys.claim(q, keys.claimParams(STORE, scope, key, h, resource, now)));
    const existing = (now: number, h = hash) => db.tx((q) => keys.existing(q, STORE, SCOPE, key, h, now));

    it('claims a key once; a second claim writes nothing', async () => {
      expect(await claim(1000)).toBe(true);
      expect(await claim(1000, 'pay_2')).toBe(false);
      expect(await keys.exists(STORE, SCOPE, key)).toBe(true);
      expect(await keys.exists(STORE, 'refund:pay_1', key)).toBe(false);
      const rows = await db.query<{ resource_id: string; state: string; locked_until: number }>(
        'SELECT resource_id, state, locked_until FROM idempotency_keys WHERE idem_key = $1',
        [key],
      );
      expect(rows.map((r) => ({ ...r, locked_until: Number(r.locked_until) }))).toEqual([
        { resource_id: 'pay_1', state: 'running', locked_until: 61_000 },
      ]);
    });

    it('same key: 409 while held, the resource to finish once the hold lapsed (held again), 422 for another body', async () => {
      await claim(1000);
      await expect(existing(2000)).rejects.toMatchObject({ status: 409, code: 'idempotency_key_in_use' });
      await expect(existing(2000, requestHash({ order: 2 }))).rejects.toMatchObject({
        status: 422,
        code: 'idempotency_key_reused',
      });
      expect(await existing(61_001)).toEqual({ kind: 'resume', resourceId: 'pay_1' });
      // Taken over: held again for keyLockMs.
      await expect(existing(61_002)).rejects.toMatchObject({ status: 409 });
    });

    it('completes a key with its answer, which every retry then gets; answer() reads it', async () => {
      await claim(1000);
      expect(await keys.answer(STORE, SCOPE, key)).toBeUndefined();
      expect(await keys.complete(STORE, SCOPE, key, 201, { id: 'pay_1' })).toEqual({
        status: 201,
        body: { id: 'pay_1' },
        replayed: false,
      });
      expect(await existing(2000)).toEqual({ kind: 'replay', status: 201, body: { id: 'pay_1' } });
      expect(await keys.answer(STORE, SCOPE, key)).toEqual({ status: 201, body: { id: 'pay_1' } });
    });

    it('completeFor completes the running key of a resource (the sweeper deciding it), never a done one', async () => {
      await claim(1000, 're_1', hash, 'refund:pay_9');
      await db.tx((q) => keys.completeFor(q, STORE, 'refund:pay_9', 're_1', 422, { error: { code: 'x' } }));
      const answer = () =>
        db.query<{ response_status: number }>(
          'SELECT response_status FROM idempotency_keys WHERE idem_key = $1',
          [key],
        );
      expect(Number((await answer())[0].response_status)).toBe(422);
      await db.tx((q) => keys.completeFor(q, STORE, 'refund:pay_9', 're_1', 201, {}));
      expect(Number((await answer())[0].response_status)).toBe(422);
    });

    it('forgets completed keys after their time to live, never running ones', async () => {
      await db.run('DELETE FROM idempotency_keys');
      await claim(1000);
      await keys.complete(STORE, SCOPE, key, 201, {});
      const running = `${key}-running`;
      await db.tx((q) => keys.claim(q, keys.claimParams(STORE, SCOPE, running, hash, 'pay_2', 1000)));
      expect(await keys.expire(1000 + TIMING.keyTtlMs)).toBe(0);
      expect(await keys.expire(1001 + TIMING.keyTtlMs)).toBe(1);
      expect(await keys.exists(STORE, SCOPE, key)).toBe(false);
      expect(await keys.exists(STORE, SCOPE, running)).toBe(true);
    });
  });
});
