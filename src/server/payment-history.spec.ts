import { ENGINES, TestDatabases } from '../../test/server/support/databases';
import { PaymentHistory } from './payment-history';

describe(PaymentHistory.name, () => {
  describe.each(ENGINES)('on real %s', (engine) => {
    const dbs = new TestDatabases('history');
    afterAll(() => dbs.closeAll());

    it("records notes in the caller's transaction and lists a payment's own, oldest first, per store", async () => {
      const db = await dbs.open(engine);
      const iso = '2026-11-28T10:00:00.000Z';
      await db.run("INSERT INTO stores (id, name, created_at) VALUES ('s1', 'Shop', $1)", [iso]);
      for (const id of ['p1', 'p2'])
        await db.run(
          `INSERT INTO payments (id, store_id, device_id, order_id, register_id, amount_value, currency, status,
             method_type, deadline_at, created_at, updated_at)
           VALUES ($1, 's1', 'T1', $1, 'R1', 100, 'CNY', 'pending', 'wallet_code', 0, $2, $2)`,
          [id, iso],
        );
      const history = new PaymentHistory(db);
      const note = (paymentId: string, message: string) => ({
        paymentId,
        kind: 'cancel_refused' as const,
        message,
        at: iso,
      });
      await db.tx(async (q) => {
        await history.record(q, 's1', note('p1', 'first'));
        await history.record(q, 's1', note('p2', 'other payment'));
        await history.record(q, 's1', note('p1', 'second'));
      });
      // A note whose transaction rolls back is not kept.
      await expect(
        db.tx(async (q) => {
          await history.record(q, 's1', note('p1', 'rolled back'));
          throw new Error('the change failed');
        }),
      ).rejects.toThrow('the change failed');
      expect(await history.list('s1', 'p1')).toEqual([note('p1', 'first'), note('p1', 'second')]);
      expect(await history.list('s2', 'p1')).toEqual([]);
    });
  });
});
