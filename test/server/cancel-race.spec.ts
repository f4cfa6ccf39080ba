/**
 * A cancel racing the decision of a payment, on both engines: the register cancels an order while the
 * unit's charge of an immediately-approving code is still in flight. Each race must end one of two ways,
 * and the server's answer, the payment, its signed events and the provider's own ledger must agree:
 * - the cancel wins: 200 `canceled`, the trade closed or reversed, the devices told `canceled`;
 * - the cancel loses: 409, the payment `succeeded`, the trade succeeded (the charge stands).
 * Never a 200 on a payment that stays succeeded while the provider gave the money back.
 */
import { randomBytes } from 'node:crypto';
import type { RunningServer } from '../../src/server/server-app';
import { engineCases, type EngineServer, startEngineServer } from './support/engine-server';
import type { PaymentProvider } from '../../src/server/providers/provider';
import { SimulatorProvider } from '../../src/server/providers/simulator.provider';

jest.setTimeout(120_000);

const ADMIN = `admin-${randomBytes(12).toString('hex')}`;
const RACES = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const engines = engineCases('pc_race');

describe.each(engines)('a cancel racing the charge on $name', (engine) => {
  let server: EngineServer;
  let running: RunningServer;
  let sim: SimulatorProvider;
  /**
   * Per payment code: how long its charge takes to reach the provider, and its answer to come back (ms), to
   * spread the cancel over every moment of the charge.
   */
  const chargeDelay = new Map<string, { before: number; after: number }>();
  /** Per payment id: how many cancels the provider fails before it answers one. */
  const failingCancels = new Map<string, number>();

  async function call(method: string, path: string, token: string, body?: unknown, key?: string) {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (key) headers['idempotency-key'] = key;
    const res = await fetch(running.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  beforeAll(async () => {
    server = await startEngineServer(engine, {
      adminToken: ADMIN,
      simSpeed: 200,
      logger: false,
      provider: (ctx) => {
        sim = new SimulatorProvider(ctx);
        const inner = sim;
        const provider: PaymentProvider = {
          name: inner.name,
          charge: async (req) => {
            const delay = chargeDelay.get(req.code) ?? { before: 0, after: 0 };
            if (delay.before) await sleep(delay.before);
            const answer = await inner.charge(req);
            if (delay.after) await sleep(delay.after);
            return answer;
          },
          query: (id) => inner.query(id),
          cancel: async (id) => {
            const left = failingCancels.get(id) ?? 0;
            if (left > 0) {
              failingCancels.set(id, left - 1);
              throw new Error('provider answered 503 to the cancel');
            }
            return inner.cancel(id);
          },
          refund: (id, refundNo, amount) => inner.refund(id, refundNo, amount),
          queryRefund: (id, refundNo) => inner.queryRefund(id, refundNo),
        };
        return provider;
      },
    });
    running = server.running;
  });

  afterAll(async () => {
    await server?.close();
  });

  it(`ends each of ${RACES} races as a clean win or a clean loss, agreeing with the provider's ledger`, async () => {
    const store = (await call('POST', '/v1/stores', ADMIN, { name: 'Race shop' })).json.id as string;
    const register = async (deviceId: string, role: 'terminal' | 'plugin') => {
      const code = (await call('POST', `/v1/stores/${store}/registration-codes`, ADMIN, { role })).json.code;
      const r = await call('POST', '/v1/devices/register', '', { code, deviceId, role, name: deviceId });
      return r.json.token as string;
    };
    const unit = await register('T1', 'terminal');
    const plugin = await register('P1', 'plugin');
    const outcomes = { won: 0, lost: 0 };
    const broken: string[] = [];

    for (let i = 0; i < RACES; i++) {
      const orderId = `RACE-${i}`;
      const code = `2800000000${String(i).padStart(6, '0')}00`;
      // A quarter at full speed (the charge usually decides first), a quarter held on the way to the
      // provider (the cancel gets there first), half held on the way back (the provider has charged, the
      // server has not decided yet: the cancel reverses a trade the create is about to report paid).
      chargeDelay.set(
        code,
        [
          { before: 0, after: 0 },
          { before: 5 + (i % 5), after: 0 },
          { before: 0, after: 5 + (i % 5) },
          { before: 0, after: 1 + (i % 3) },
        ][i % 4],
      );
      // The payment id is known once the journal commits; the charge's delay spreads the cancel across
      // every moment of the charge: before it reaches the provider, while it is there, after it answers.
      const creating = call(
        'POST',
        '/v1/payments',
        unit,
        {
          orderId,
          registerId: 'R1',
          amount: { value: 1250, currency: 'CNY' },
          method: { type: 'wallet_code', code },
        },
        `race-${i}-${randomBytes(4).toString('hex')}`,
      );
      let paymentId: string | undefined;
      for (let t = 0; t < 500 && !paymentId; t++) {
        const list = await call('GET', `/v1/payments?orderId=${orderId}`, plugin);
        paymentId = list.json[0]?.id;
      }
      if (!paymentId) throw new Error(`payment for ${orderId} never appeared`);
      const cancel = await call('POST', `/v1/payments/${paymentId}/cancel`, plugin, {});
      const created = await creating;
      expect(created.status).toBe(201);

      // Let a cancel the provider did not confirm, or a pending create, finish.
      let payment = (await call('GET', `/v1/payments/${paymentId}`, plugin)).json;
      for (let t = 0; t < 200 && payment.status === 'pending'; t++) {
        await sleep(10);
        payment = (await call('GET', `/v1/payments/${paymentId}`, plugin)).json;
      }
      const trade = await sim.trade(paymentId);
      const events = (
        await running.context.db.query<{ body: string }>(
          'SELECT body FROM events WHERE payment_id = $1 ORDER BY seq',
          [paymentId],
        )
      ).map((r) => JSON.parse(r.body).status as string);
      const seen = {
        cancel: cancel.status,
        cancelSays: cancel.json?.status ?? cancel.json?.error?.code,
        payment: payment.status,
        ledger: trade?.state ?? 'none',
        lastEvent: events.at(-1),
      };
      const win =
        seen.cancel === 200 &&
        seen.cancelSays === 'canceled' &&
        seen.payment === 'canceled' &&
        (seen.ledger === 'closed' || seen.ledger === 'reversed') &&
        seen.lastEvent === 'canceled';
      const loss =
        seen.cancel === 409 &&
        seen.cancelSays === 'payment_succeeded' &&
        seen.payment === 'succeeded' &&
        seen.ledger === 'succeeded' &&
        seen.lastEvent === 'succeeded';
      if (win) outcomes.won++;
      else if (loss) outcomes.lost++;
      else broken.push(`${orderId}: ${JSON.stringify(seen)}`);
    }
    expect(broken).toEqual([]);
    // The races really raced: both endings happened.
    expect(outcomes.won).toBeGreaterThan(0);
    expect(outcomes.lost).toBeGreaterThan(0);
  });

  it('a cancel the provider does not confirm answers 502 and the server keeps cancelling: never paid', async () => {
    const store = (await call('POST', '/v1/stores', ADMIN, { name: 'Flaky provider shop' })).json
      .id as string;
    const code = (await call('POST', `/v1/stores/${store}/registration-codes`, ADMIN, { role: 'terminal' }))
      .json.code;
    const unit = (
      await call('POST', '/v1/devices/register', '', { code, deviceId: 'T1', role: 'terminal', name: 'T1' })
    ).json.token as string;
    // 10: the customer is confirming, then pays: the payment is pending when the register cancels.
    const created = await call(
      'POST',
      '/v1/payments',
      unit,
      {
        orderId: 'FLAKY-1',
        registerId: 'R1',
        amount: { value: 990, currency: 'CNY' },
        method: { type: 'wallet_code', code: '280000000000000010' },
      },
      `flaky-${randomBytes(4).toString('hex')}`,
    );
    expect(created.json.status).toBe('pending');
    failingCancels.set(created.json.id, 2);
    const cancel = await call('POST', `/v1/payments/${created.json.id}/cancel`, unit, {});
    expect(cancel.status).toBe(502);
    expect(cancel.json.error.code).toBe('cancel_pending');
    expect(cancel.json.error.message).toContain('keeps cancelling');
    let payment = cancel.json;
    for (let t = 0; t < 300; t++) {
      payment = (await call('GET', `/v1/payments/${created.json.id}`, unit)).json;
      if (payment.status !== 'pending') break;
      await sleep(10);
    }
    // Even though the customer confirmed meanwhile, the cancel stands: canceled, the trade closed/reversed.
    expect(payment.status).toBe('canceled');
    expect(['closed', 'reversed']).toContain((await sim.trade(created.json.id))?.state);
    expect(failingCancels.get(created.json.id)).toBe(0);
  });
});
