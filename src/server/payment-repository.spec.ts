import { ENGINES, TestDatabases } from '../../test/server/support/databases';
import { IdempotencyKeys } from './idempotency-keys';
import { PaymentRepository, PaymentRow, toPayment } from './payment-repository';
import { ServerDb } from './storage/open';

const ISO = '2026-11-28T10:00:00.000Z';
const LATER = '2026-11-28T10:00:05.000Z';

describe(PaymentRepository.name, () => {
  describe.each(ENGINES)('on real %s', (engine) => {
    const dbs = new TestDatabases('repo');
    let db: ServerDb;
    let repo: PaymentRepository;
    let keys: IdempotencyKeys;
    let n = 0;

    beforeAll(async () => {
      db = await dbs.open(engine);
      repo = new PaymentRepository(db);
      keys = new IdempotencyKeys(db, { keyLockMs: 60_000, keyTtlMs: 86_400_000 });
      await db.run("INSERT INTO stores (id, name, created_at) VALUES ('s1', 'Shop', $1)", [ISO]);
    });
    afterAll(() => dbs.closeAll());

    function newRow(overrides: Partial<PaymentRow> = {}): PaymentRow {
      const id = `pay_${++n}`;
      return {
        id,
        store_id: 's1',
        device_id: 'T1',
        order_id: `O-${n}`,
        register_id: 'R1',
        amount_value: 1250,
        currency: 'CNY',
        status: 'pending',
        method_type: 'wallet_code',
        method_brand: null,
        code_hint: '28**************00',
        provider: 'simulator',
        provider_trade_no: null,
        failure_code: null,
        failure_message: null,
        refunded_value: 0,
        reversed: 0,
        deadline_at: 31_000,
        next_check_at: 6000,
        checks: 0,
        created_at: ISO,
        updated_at: ISO,
        ...overrides,
      };
    }

    async function journal(row = newRow(), key = `key-${row.id}`): Promise<PaymentRow> {
      expect(await repo.journalNew(row, keys.claimParams('s1', 'payments', key, 'h', row.id, 1000))).toBe(
        true,
      );
      return row;
    }

    const raw = async (id: string) =>
      (
        await db.query<Record<string, unknown>>(
          'SELECT status, lease_until, pending_event, cancel_requested, next_check_at FROM payments WHERE id = $1',
          [id],
        )
      ).map((r) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)])),
      )[0];

    it('journals a new payment with its key in one commit: pending, leased to its deadline, no event yet', async () => {
      const row = await journal();
      expect(await repo.load(row.id)).toEqual(toPayment(row));
      expect(await raw(row.id)).toEqual({
        status: 'pending',
        lease_until: '31000',
        pending_event: '0',
        cancel_requested: '0',
        next_check_at: '6000',
      });
      expect(await repo.byIdempotencyKey('s1', `key-${row.id}`)).toEqual([
        expect.objectContaining({ id: row.id }),
      ]);
      // The key taken: nothing is written for a second payment.
      const other = newRow();
      expect(
        await repo.journalNew(
          other,
          keys.claimParams('s1', 'payments', `key-${row.id}`, 'h', other.id, 1000),
        ),
      ).toBe(false);
      expect(await repo.row(other.id)).toBeUndefined();
      // A key that does not name the payment is a bug, not a journal.
      const third = newRow();
      await expect(
        repo.journalNew(third, keys.claimParams('s1', 'payments', 'k-x', 'h', 'pay_other', 1000)),
      ).rejects.toThrow(/must name it/);
    });

    it('decides a pending payment once; a cancel asked for blocks `succeeded` until it is cleared', async () => {
      const a = await journal();
      const decided = await db.tx((q) =>
        repo.decide(q, a.id, { status: 'succeeded', tradeNo: 'T1', brand: 'alipay' }, LATER),
      );
      expect(decided).toMatchObject({ status: 'succeeded', provider_trade_no: 'T1', method_brand: 'alipay' });
      expect(await raw(a.id)).toMatchObject({ lease_until: null, next_check_at: null });
      expect(await db.tx((q) => repo.decide(q, a.id, { status: 'failed' }, LATER))).toBeUndefined();

      const b = await journal();
      expect(await repo.requestCancel(b.id)).toBe(true);
      expect(await db.tx((q) => repo.decide(q, b.id, { status: 'succeeded' }, LATER))).toBeUndefined();
      const kept = await db.tx(async (q) => {
        await repo.clearCancelRequest(q, b.id);
        return repo.decide(q, b.id, { status: 'succeeded', tradeNo: 'T2' }, LATER);
      });
      expect(toPayment(kept!)).toMatchObject({ status: 'succeeded', updatedAt: LATER });

      const c = await journal();
      await repo.requestCancel(c.id);
      const canceled = await db.tx((q) =>
        repo.decide(
          q,
          c.id,
          { status: 'canceled', reversed: true, failure: { code: 'reversed', message: 'money returned' } },
          LATER,
        ),
      );
      expect(toPayment(canceled!)).toMatchObject({
        status: 'canceled',
        reversed: true,
        failure: { code: 'reversed', message: 'money returned' },
      });
      expect(await repo.requestCancel(c.id)).toBe(false);
    });

    it('decides at once only a payment no one has touched (no event written, no cancel asked)', async () => {
      const change = { status: 'succeeded' as const, tradeNo: 'T9', brand: 'wechat' };
      const atOnce = async (row: PaymentRow) => {
        const body = JSON.stringify(toPayment({ ...row, status: 'succeeded', updated_at: LATER }));
        if (engine === 'postgres') {
          const key = {
            store_id: 's1',
            scope: 'payments',
            idem_key: `key-${row.id}`,
            response_status: 201,
            response_body: body,
          };
          return repo.decideAtOncePg(row.id, change, LATER, key, 'sig');
        }
        return db.tx((q) => repo.decideAtOnce(q, row.id, change, LATER));
      };
      const fresh = await journal();
      expect(await atOnce(fresh)).toBe(true);
      expect(await repo.load(fresh.id)).toMatchObject({ status: 'succeeded', method: { brand: 'wechat' } });
      if (engine === 'postgres') {
        // One statement: the event (its body the key's answer) and the completed key with it.
        const [event] = await db.query<{ body: string; signature: string }>(
          'SELECT body, signature FROM events WHERE payment_id = $1',
          [fresh.id],
        );
        expect(event.signature).toBe('sig');
        expect(await keys.answer('s1', 'payments', `key-${fresh.id}`)).toEqual({
          status: 201,
          body: JSON.parse(event.body),
        });
      }
      const seen = await journal();
      expect(await db.tx((q) => repo.markPendingEvent(q, seen.id))).toMatchObject({ id: seen.id });
      expect(await db.tx((q) => repo.markPendingEvent(q, seen.id))).toBeUndefined();
      expect(await atOnce(seen)).toBe(false);
      const canceling = await journal();
      await repo.requestCancel(canceling.id);
      expect(await atOnce(canceling)).toBe(false);
      expect((await repo.load(canceling.id)).status).toBe('pending');
    });

    it('journals and decides at once payments that arrive together as one statement on PostgreSQL, each with its own answer', async () => {
      const before = structuredClone(repo.batching);
      await db.run(
        "INSERT INTO closed_orders (store_id, order_id, device_id, closed_at) VALUES ('s1', 'O-closed', 'T1', $1)",
        [ISO],
      );
      const rows = Array.from({ length: 6 }, () => newRow());
      const closed = newRow({ order_id: 'O-closed' });
      const twin = newRow(); // claims rows[0]'s key in the same batch
      const claim = (row: PaymentRow, key = `key-${row.id}`) =>
        keys.claimParams('s1', 'payments', key, 'h', row.id, 1000);
      const journaled = await Promise.all([
        ...rows.map((r) => repo.journalNew(r, claim(r))),
        repo.journalNew(closed, claim(closed)),
        repo.journalNew(twin, claim(twin, `key-${rows[0].id}`)),
      ]);
      expect(journaled).toEqual([true, true, true, true, true, true, false, false]);
      expect(await repo.row(closed.id)).toBeUndefined();
      expect(await repo.row(twin.id)).toBeUndefined();
      for (const r of rows) expect(await repo.load(r.id)).toEqual(toPayment(r));
      expect(await raw(rows[1].id)).toMatchObject({
        status: 'pending',
        lease_until: '31000',
        pending_event: '0',
      });
      if (engine !== 'postgres') return;

      // rows[4] has had its pending event written and rows[5] a cancel asked for: neither is decided at once.
      await db.tx((q) => repo.markPendingEvent(q, rows[4].id));
      await repo.requestCancel(rows[5].id);
      const change = { status: 'succeeded' as const, tradeNo: 'T7', brand: 'alipay' };
      const decide = (row: PaymentRow) => {
        const body = JSON.stringify(toPayment({ ...row, status: 'succeeded', updated_at: LATER }));
        const key = {
          store_id: 's1',
          scope: 'payments',
          idem_key: `key-${row.id}`,
          response_status: 201,
          response_body: body,
        };
        return repo.decideAtOncePg(row.id, change, LATER, key, `sig-${row.id}`);
      };
      expect(await Promise.all(rows.map(decide))).toEqual([true, true, true, true, false, false]);
      for (const r of rows.slice(0, 4)) {
        expect(await repo.load(r.id)).toMatchObject({ status: 'succeeded', method: { brand: 'alipay' } });
        const events = await db.query<{ body: string; signature: string }>(
          'SELECT body, signature FROM events WHERE payment_id = $1',
          [r.id],
        );
        expect(events).toHaveLength(1);
        expect(events[0].signature).toBe(`sig-${r.id}`);
        expect(await keys.answer('s1', 'payments', `key-${r.id}`)).toEqual({
          status: 201,
          body: JSON.parse(events[0].body),
        });
      }
      for (const r of rows.slice(4)) {
        expect((await repo.load(r.id)).status).toBe('pending');
        expect(await keys.answer('s1', 'payments', `key-${r.id}`)).toBeUndefined();
      }
      // Each kind went as one statement after the first (which found nothing in flight and went alone).
      expect(repo.batching.journals.batches).toBeGreaterThan(before.journals.batches);
      expect(repo.batching.decisions.batches).toBeGreaterThan(before.decisions.batches);

      // A batch the database refuses (a payment of a store that does not exist) runs payment by payment: the
      // others are journaled, the bad one alone fails.
      const fine = [newRow(), newRow()];
      const stray = newRow({ store_id: 'no-such-store' });
      const first = newRow();
      const results = await Promise.allSettled([
        repo.journalNew(first, claim(first)),
        ...fine.map((r) => repo.journalNew(r, claim(r))),
        repo.journalNew(stray, keys.claimParams('no-such-store', 'payments', 'k-stray', 'h', stray.id, 1000)),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
      for (const r of [first, ...fine]) expect(await repo.load(r.id)).toEqual(toPayment(r));
      expect(repo.batching.journals.fallbacks).toBe(before.journals.fallbacks + 1);
    });

    it('keeps the trade, the lease and the next check of a pending payment', async () => {
      const row = await journal();
      await db.tx((q) => repo.setTrade(q, row.id, 'T5', 'alipay'));
      expect(await repo.row(row.id)).toMatchObject({ provider_trade_no: 'T5', method_brand: 'alipay' });
      await repo.releaseLease(row.id, 99); // not its lease: kept
      expect((await raw(row.id)).lease_until).toBe('31000');
      await repo.releaseLease(row.id, 31_000);
      expect((await raw(row.id)).lease_until).toBeNull();
      await repo.checkAt(row.id, 7777);
      expect((await raw(row.id)).next_check_at).toBe('7777');
    });

    it('finds payments by store and order, and adds refunds until the payment is refunded', async () => {
      const row = await journal(newRow({ order_id: 'ORDER-X' }));
      expect(await repo.inStore('s1', row.id)).toMatchObject({ id: row.id });
      expect(await repo.inStore('s2', row.id)).toBeUndefined();
      expect((await repo.byOrder('s1', 'ORDER-X')).map((r) => r.id)).toEqual([row.id]);
      await expect(repo.load('pay_none')).rejects.toMatchObject({ status: 404 });

      await db.tx((q) => repo.decide(q, row.id, { status: 'succeeded' }, LATER));
      const part = await db.tx(async (q) => {
        expect(await repo.lockedRow(q, row.id)).toMatchObject({ status: 'succeeded' });
        return repo.addRefunded(q, row.id, 250, LATER);
      });
      expect(toPayment(part)).toMatchObject({
        status: 'succeeded',
        refunded: { value: 250, currency: 'CNY' },
      });
      const full = await db.tx((q) => repo.addRefunded(q, row.id, 1000, LATER));
      expect(toPayment(full)).toMatchObject({ status: 'refunded', refunded: { value: 1250 } });
    });
  });
});
