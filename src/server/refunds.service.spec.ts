import { ENGINES, TestDatabases } from '../../test/server/support/databases';
import { FakeClock } from '../protocol/clock';
import { EventsService } from './events.service';
import { PaymentsService, WALLET_TIMING } from './payments.service';
import { PaymentProvider, ProviderRejectedError, ProviderUnknownError } from './providers/provider';
import { SimulatorProvider } from './providers/simulator.provider';
import { RefundsService } from './refunds.service';
import { loadServerKeys } from './server-crypto';
import { ServerDb } from './storage/open';
import { Device, StoresService } from './stores.service';

describe(RefundsService.name, () => {
  describe.each(ENGINES)('on real %s', (engine) => {
    const dbs = new TestDatabases('refunds');
    let db: ServerDb;
    let clock: FakeClock;
    let sim: SimulatorProvider;
    let events: EventsService;
    let payments: PaymentsService;
    let terminal: Device;
    let plugin: Device;
    let other: Device;
    /** What the provider does to the next refunds: lose the answer (after paying out), refuse. */
    let nextRefunds: ('lose' | 'refuse')[] = [];
    let provider: PaymentProvider;
    let n = 0;

    beforeAll(async () => {
      db = await dbs.open(engine);
      clock = new FakeClock(Date.parse('2026-11-28T10:00:00Z'));
      sim = new SimulatorProvider({ db, clock, sleep: async () => undefined });
      provider = {
        name: 'sim',
        charge: (r) => sim.charge(r),
        query: (id) => sim.query(id),
        cancel: (id) => sim.cancel(id),
        queryRefund: (id, no) => sim.queryRefund(id, no),
        refund: async (id, no, amount) => {
          const what = nextRefunds.shift();
          if (what === 'refuse') throw new ProviderRejectedError('TRADE_HAS_CLOSE', 'closed for refunds');
          const r = await sim.refund(id, no, amount);
          if (what === 'lose') throw new ProviderUnknownError('timeout');
          return r;
        },
      };
      const keys = await loadServerKeys(db);
      events = new EventsService(db, db, keys.privateKey, db.kind);
      payments = new PaymentsService(db, clock, provider, events);
      const stores = new StoresService(db, clock, keys.publicKey);
      const device = async (storeId: string, deviceId: string, role: 'terminal' | 'plugin') => {
        const { code } = await stores.createRegistrationCode(storeId, role);
        const reg = await stores.register({ code, deviceId, role, name: deviceId });
        return (await stores.authenticate(reg.token))!;
      };
      const a = await stores.createStore('A');
      const b = await stores.createStore('B');
      terminal = await device(a.id, 'T1', 'terminal');
      plugin = await device(a.id, 'P1', 'plugin');
      other = await device(b.id, 'P2', 'plugin');
    });
    afterAll(() => dbs.closeAll());
    beforeEach(() => (nextRefunds = []));

    const service = () => new RefundsService(db, clock, provider, events, WALLET_TIMING);

    async function paid(value = 1250): Promise<string> {
      const r = await payments.create(terminal, `pay-${++n}`, {
        orderId: `O-${n}`,
        registerId: 'R1',
        amount: { value, currency: 'CNY' },
        method: { type: 'wallet_code', code: '281234567890123400' },
      });
      expect(r.body.status).toBe('succeeded');
      return r.body.id;
    }
    const amount = (value: number) => ({ amount: { value, currency: 'CNY' } });

    it('refunds part, then the rest; a retry gets the stored answer; never more than captured', async () => {
      const refunds = service();
      const id = await paid();
      const first = await refunds.refund(plugin, id, 'r1', amount(500));
      expect(first).toMatchObject({
        status: 201,
        replayed: false,
        body: {
          paymentId: id,
          amount: { value: 500 },
          status: 'succeeded',
          payment: { refunded: { value: 500 } },
        },
      });
      expect(await refunds.refund(plugin, id, 'r1', amount(500))).toEqual({ ...first, replayed: true });
      await expect(refunds.refund(plugin, id, 'r2', amount(800))).rejects.toMatchObject({
        status: 422,
        code: 'refund_exceeds_capture',
      });
      const rest = await refunds.refund(plugin, id, 'r3', {});
      expect(rest.body.payment).toMatchObject({ status: 'refunded', refunded: { value: 1250 } });
      expect((await sim.trade(id))?.refunded_value).toBe(1250);
      await expect(refunds.refund(plugin, id, 'r4', {})).rejects.toMatchObject({ status: 409 });
    });

    it("only the store's plugin refunds: a unit gets 403, another store 404", async () => {
      const id = await paid();
      await expect(service().refund(terminal, id, 'u1', {})).rejects.toMatchObject({ status: 403 });
      await expect(service().refund(other, id, 'o1', {})).rejects.toMatchObject({ status: 404 });
      expect((await sim.trade(id))?.refunded_value).toBe(0);
    });

    it("a provider's refusal is 422 under the key, and does not hold the cap", async () => {
      const refunds = service();
      const id = await paid();
      nextRefunds = ['refuse'];
      await expect(refunds.refund(plugin, id, 'x1', {})).rejects.toMatchObject({
        status: 422,
        code: 'refund_refused',
        message: expect.stringContaining('closed for refunds'),
      });
      // A retry gets the stored answer (the controller sends its status and body).
      expect(await refunds.refund(plugin, id, 'x1', {})).toMatchObject({
        status: 422,
        replayed: true,
        body: { error: { code: 'refund_refused' } },
      });
      expect((await refunds.refund(plugin, id, 'x2', {})).status).toBe(201);
    });

    it('finishes a refund whose answer was lost once its key hold lapses, once, even with two instances at it', async () => {
      const a = service();
      const b = service();
      const id = await paid();
      nextRefunds = ['lose'];
      await expect(a.refund(plugin, id, 'l1', amount(300))).rejects.toMatchObject({ status: 502 });
      expect(await a.resolvePending(10)).toBe(0); // its request's hold has not lapsed
      clock.advance(WALLET_TIMING.keyLockMs);
      const decided = await Promise.all([a.resolvePending(10), b.resolvePending(10)]);
      expect(decided.reduce((x, y) => x + y, 0)).toBe(1);
      expect((await payments.load(id)).refunded).toEqual({ value: 300, currency: 'CNY' });
      expect((await sim.trade(id))?.refunded_value).toBe(300);
      expect(await a.refund(plugin, id, 'l1', amount(300))).toMatchObject({ status: 201, replayed: true });
      expect(await a.resolvePending(10)).toBe(0);
    });
  });
});
