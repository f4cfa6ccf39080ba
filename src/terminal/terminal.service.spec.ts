/**
 * TerminalService on a FakeClock, the fake LAN and FakePaymentServer: every way a payment can be
 * interrupted, and what the unit does about it. What a spec checks is what the money checks: exactly one
 * charge per attempt at the server, the register told the signed outcome, the clerk shown the truth.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_CURSOR_FLUSH_MS } from '../device/event-cursor';
import { FakePaymentServer } from '../device/fake-payment-server';
import { LocalRequestError, ServerRefusedError } from '../device/server-errors';
import {
  FakeLanNetwork,
  LAN_UNHANDLED,
  LanEndpoint,
  LanInbound,
  LanKeyring,
  OfferDispatcher,
  OfferInbox,
  UnitBeacon,
  UnitDirectory,
} from '../lan';
import { FakeClock } from '../protocol/clock';
import { LanBody } from '../protocol/lan-messages';
import { verifyPaymentResult } from '../protocol/payment-signature';
import { Payment } from '../protocol/states';
import { TerminalStore } from './terminal-store';
import { NOTHING_ARRIVED_MS, TerminalService } from './terminal.service';

const key = { id: 1, version: 1, key: Buffer.alloc(32, 7) };
const PLUGIN = { address: '10.0.0.1', port: 47811 };
const UNIT = { address: '10.0.0.10', port: 40000 };
const UNIT_GROUP_PORT = 47810;
const APPROVED = '281234567890123400';
const CONFIRMING = '281234567890123411';

/** The register's side: offers, grants claims, and records every result a unit relays. */
class Register {
  readonly endpoint: LanEndpoint;
  readonly directory: UnitDirectory;
  readonly dispatcher: OfferDispatcher;
  readonly results: LanBody<'result'>[] = [];
  readonly progress: string[] = [];

  constructor(net: FakeLanNetwork, clock: FakeClock) {
    this.endpoint = new LanEndpoint({
      deviceId: 'P1',
      keyring: new LanKeyring(key),
      transport: net.attach(PLUGIN.address, PLUGIN.port, PLUGIN.port),
      clock,
    });
    this.directory = new UnitDirectory(this.endpoint, { clock });
    this.directory.start();
    this.dispatcher = new OfferDispatcher({
      endpoint: this.endpoint,
      directory: this.directory,
      broadcast: { kind: 'broadcast', address: '10.0.0.255', port: UNIT_GROUP_PORT },
      clock,
    });
    this.dispatcher.start();
    this.endpoint.onMessage((m: LanInbound) => {
      if (m.type === 'result') this.results.push(m.body as LanBody<'result'>);
      else if (m.type === 'progress') this.progress.push((m.body as LanBody<'progress'>).stage);
      else return LAN_UNHANDLED;
      return undefined;
    });
  }

  offer(orderId: string, value = 1250) {
    return this.dispatcher.offer(
      { orderId, registerId: 'R1', amount: { value, currency: 'CNY' } },
      { mode: 'broadcast' },
    );
  }

  cancel(orderId: string) {
    return this.endpoint.send(
      'cancel',
      { orderId, reason: 'canceled at the register' },
      { kind: 'unicast', to: 'T1', ...UNIT },
    );
  }
}

interface Unit {
  service: TerminalService;
  store: TerminalStore;
  endpoint: LanEndpoint;
  inbox: OfferInbox;
  stop(): Promise<void>;
}

function startUnit(
  dir: string,
  net: FakeLanNetwork,
  clock: FakeClock,
  server: FakePaymentServer,
  options: { listedFinishedOffers?: number } = {},
): Unit {
  const store = new TerminalStore(dir);
  const endpoint = new LanEndpoint({
    deviceId: 'T1',
    keyring: new LanKeyring(key),
    transport: net.attach(UNIT.address, UNIT.port, UNIT_GROUP_PORT),
    clock,
  });
  const inbox = new OfferInbox(endpoint, { clock });
  inbox.start();
  const beacon = new UnitBeacon({
    endpoint,
    name: 'T1',
    announce: [{ kind: 'broadcast', address: '10.0.0.255', port: PLUGIN.port }],
    status: () => 'idle',
    clock,
  });
  const service = new TerminalService({
    credentials: {
      deviceId: 'T1',
      storeId: server.storeId,
      token: 'token-T1',
      serverUrl: server.baseUrl,
      serverPublicKey: server.publicKey,
      name: 'T1',
    },
    store,
    server,
    endpoint,
    inbox,
    beacon,
    clock,
    ...options,
  });
  service.start();
  return {
    service,
    store,
    endpoint,
    inbox,
    async stop() {
      await service.stop();
      inbox.stop();
      await endpoint.close();
      net.detach(net.attach(UNIT.address, UNIT.port)); // frees the address for a restarted unit
      store.close();
    },
  };
}

describe(TerminalService.name, () => {
  let dir: string;
  let clock: FakeClock;
  let net: FakeLanNetwork;
  let server: FakePaymentServer;
  let register: Register;
  let unit: Unit;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-terminal-service-'));
    clock = new FakeClock(Date.parse('2026-11-29T02:00:00Z'));
    net = new FakeLanNetwork(11);
    server = new FakePaymentServer('store_spec', { clock });
    server.outcomes.set(CONFIRMING, 'pending');
    register = new Register(net, clock);
    unit = startUnit(dir, net, clock, server);
    await clock.advanceAsync(50); // the first beacon: the register knows the unit
  });

  afterEach(async () => {
    await unit.stop().catch(() => undefined);
    await register.endpoint.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Offers an order and lets the unit hear it. */
  async function offered(orderId: string, value = 1250): Promise<void> {
    const sent = register.offer(orderId, value);
    await clock.advanceAsync(50);
    await sent;
    expect(unit.service.offer(orderId).status).toBe('open');
  }

  /** Starts paying; returns the pay() promise and lets `ms` of fake time pass. */
  async function paying(orderId: string, code: string, ms = 100) {
    const result = unit.service.pay(orderId, code);
    result.catch(() => undefined);
    await clock.advanceAsync(ms);
    return result;
  }

  const verified = (r: LanBody<'result'>) =>
    verifyPaymentResult(r.payment, r.signature, server.publicKey, server.storeId);

  it('claims, charges once, shows the outcome and relays the signed result to the register', async () => {
    await offered('订单-0001');
    const { final, attempt } = await paying('订单-0001', APPROVED);
    expect(final).toBe(true);
    expect(attempt.status).toBe('succeeded');
    expect(server.paymentsOf('订单-0001')).toHaveLength(1);
    await clock.advanceAsync(100);
    expect(register.results).toHaveLength(1);
    expect(verified(register.results[0])).toBe(true);
    expect(unit.store.latest('订单-0001')!.relayed).toBe(true);
    expect(register.progress).toEqual(expect.arrayContaining(['claimed', 'paying', 'done']));
  });

  it('a result pushed before the POST answered decides the attempt from it: no second request, one write', async () => {
    await offered('订单-0003');
    // Idle past the cursor's flush interval first, so that a cursor stored on its own would show.
    await clock.advanceAsync(EVENT_CURSOR_FLUSH_MS + 1000);
    let inUpdate = false;
    const realUpdate = unit.store.update.bind(unit.store);
    const update = jest.spyOn(unit.store, 'update').mockImplementation((...args) => {
      inUpdate = true;
      try {
        return realUpdate(...args);
      } finally {
        inUpdate = false;
      }
    });
    const storedOnItsOwn: string[] = [];
    const setMeta = unit.store.setMeta.bind(unit.store);
    jest.spyOn(unit.store, 'setMeta').mockImplementation((name, value) => {
      if (!inUpdate) storedOnItsOwn.push(value);
      setMeta(name, value);
    });
    const { final, attempt } = await paying('订单-0003', APPROVED);
    expect(final).toBe(true);
    expect(attempt.status).toBe('succeeded');
    const [p] = server.paymentsOf('订单-0003');
    // The answer named the pushed payment: the unit did not ask for it again...
    expect(server.calls.filter((c) => c.startsWith('signed '))).toEqual([]);
    // ...and journaled its payment id and its signed result in one write.
    const writes = update.mock.calls.filter(([orderId]) => orderId === '订单-0003');
    expect(writes[0][2]).toMatchObject({
      paymentId: p.id,
      status: 'succeeded',
      signature: expect.any(String),
    });
    expect(writes.filter(([, , patch]) => patch.paymentId !== undefined)).toHaveLength(1);
    // That write also stored the push cursor of the event that brought the result; nothing stored it
    // before the attempt had journaled the result (a crash meanwhile hears the event again).
    expect(writes[0][4]).toEqual({ name: 'event_cursor', value: String(server.eventSeqOf(p.id)) });
    expect(unit.store.meta('event_cursor')).toBe(String(server.eventSeqOf(p.id)));
    expect(storedOnItsOwn).toEqual([]);
    expect(verifyPaymentResult(attempt.payment, attempt.signature, server.publicKey, server.storeId)).toBe(
      true,
    );
    await clock.advanceAsync(100);
    expect(register.results).toHaveLength(1);
    expect(verified(register.results[0])).toBe(true);
  });

  it('a push slower than the answer: the unit asks for the signed result, and the late push changes nothing', async () => {
    await offered('订单-0004');
    server.holdPushes = true;
    const { final, attempt } = await paying('订单-0004', APPROVED);
    expect(final).toBe(true);
    expect(attempt.status).toBe('succeeded');
    const [p] = server.paymentsOf('订单-0004');
    expect(server.calls).toContain(`signed ${p.id}`);
    await clock.advanceAsync(100);
    expect(register.results).toHaveLength(1);
    const update = jest.spyOn(unit.store, 'update');
    server.releasePushes();
    await clock.advanceAsync(100);
    expect(update.mock.calls.filter(([orderId]) => orderId === '订单-0004')).toEqual([]);
    expect(unit.store.latest('订单-0004')).toMatchObject({ status: 'succeeded', relayed: true });
    expect(register.results).toHaveLength(1);
  });

  it("stores its push cursor with its own payments' results, and for other units' payments only now and then", async () => {
    // Another unit of the store takes 30 payments: pushed to this unit too, which has no part in them.
    for (let i = 1; i <= 30; i++)
      await server.createPayment(`other-${i}`, {
        orderId: `别的-${i}`,
        registerId: 'R2',
        amount: { value: 100 + i, currency: 'CNY' },
        method: { type: 'wallet_code', code: APPROVED },
      });
    await clock.advanceAsync(10);
    expect(unit.store.meta('event_cursor')).toBeUndefined();
    await offered('订单-0002');
    await paying('订单-0002', APPROVED);
    await clock.advanceAsync(100);
    // Its own payment's event stored the cursor past everything it skipped.
    const own = server.paymentsOf('订单-0002')[0];
    expect(own.status).toBe('succeeded');
    expect(Number(unit.store.meta('event_cursor'))).toBeGreaterThan(30);
  });

  it('server unreachable: retries the same request (same key) until it answers, then charges once', async () => {
    await offered('A-1');
    server.setReachable(false);
    void paying('A-1', APPROVED, 0);
    await clock.advanceAsync(3000);
    const tries = server.calls.filter((c) => c.startsWith('createPayment '));
    expect(tries.length).toBeGreaterThanOrEqual(3);
    expect(new Set(tries).size).toBe(1); // one idempotency key for every try
    expect(unit.service.serverUp).toBe(false);
    expect(unit.store.latest('A-1')!.status).toBe('paying');
    server.setReachable(true);
    await clock.advanceAsync(6000);
    expect(server.paymentsOf('A-1')).toHaveLength(1);
    expect(unit.store.latest('A-1')!.status).toBe('succeeded');
    expect(register.results.map((r) => (r.payment as unknown as Payment).orderId)).toEqual(['A-1']);
  });

  it('an answer lost after the charge: the retry gets the same payment, never a second charge', async () => {
    await offered('B-1');
    server.loseNextAnswer('createPayment');
    await paying('B-1', APPROVED, 2000);
    expect(server.paymentsOf('B-1')).toHaveLength(1);
    expect(unit.store.latest('B-1')!.status).toBe('succeeded');
    expect(server.calls.filter((c) => c.startsWith('createPayment')).length).toBe(2);
  });

  it('409 key in use: waits and asks again with the same key', async () => {
    await offered('C-1');
    server.keyInUseNext();
    await paying('C-1', APPROVED, 2000);
    expect(server.paymentsOf('C-1')).toHaveLength(1);
    expect(unit.store.latest('C-1')!.status).toBe('succeeded');
  });

  it('a refusal is final for that attempt: shown, not retried; the clerk can scan again', async () => {
    await offered('D-1');
    server.failNext(
      'createPayment',
      () => new ServerRefusedError(422, 'amount_too_large', 'the amount is over this store’s limit'),
    );
    const { final, attempt } = await paying('D-1', APPROVED, 2000);
    expect(final).toBe(true);
    expect(attempt.status).toBe('failed');
    expect(unit.service.paymentOf('D-1').failure).toEqual({
      code: 'not_charged',
      message: 'the amount is over this store’s limit',
    });
    expect(server.calls.filter((c) => c.startsWith('createPayment'))).toHaveLength(1);
    const second = await paying('D-1', APPROVED, 200);
    expect(second.attempt).toMatchObject({ attempt: 2, status: 'succeeded' });
    expect(server.paymentsOf('D-1')).toHaveLength(1);
  });

  it('a request it cannot build is shown as such and never retried', async () => {
    await offered('E-1');
    server.failNext('createPayment', () => new LocalRequestError('header value refused'));
    const { attempt } = await paying('E-1', APPROVED, 2000);
    expect(attempt.status).toBe('failed');
    expect(unit.service.paymentOf('E-1').failure?.message).toMatch(/could not send the payment/);
    // The register hears it as the unit's own problem, not as "scanning the code".
    expect(register.progress).toContain('unit_error');
    expect(server.calls.filter((c) => c.startsWith('createPayment'))).toHaveLength(1);
  });

  it('a customer confirming on the phone: pending until the pushed result, then relayed', async () => {
    await offered('F-1');
    const pay = unit.service.pay('F-1', CONFIRMING);
    await clock.advanceAsync(200);
    expect(unit.store.latest('F-1')!.status).toBe('pending');
    expect(unit.service.paymentOf('F-1').waitingFor).toBe('customer');
    server.decide(server.paymentsOf('F-1')[0].id, 'succeeded');
    await clock.advanceAsync(200);
    expect((await pay).attempt.status).toBe('succeeded');
    expect(register.results).toHaveLength(1);
  });

  it('canceled at the register while the customer confirms: canceled at the server, nothing charged', async () => {
    await offered('G-1');
    void unit.service.pay('G-1', CONFIRMING).catch(() => undefined);
    await clock.advanceAsync(200);
    const sent = register.cancel('G-1');
    await clock.advanceAsync(200);
    await sent;
    const [p] = server.paymentsOf('G-1');
    expect(p.status).toBe('canceled');
    expect(unit.store.latest('G-1')!.status).toBe('canceled');
  });

  it('canceled while the server was unreachable and no try arrived: nothing charged, said so after the margin', async () => {
    await offered('H-1');
    server.setReachable(false);
    void unit.service.pay('H-1', APPROVED).catch(() => undefined);
    await clock.advanceAsync(500);
    const sent = register.cancel('H-1');
    await clock.advanceAsync(100);
    await sent;
    server.setReachable(true);
    await clock.advanceAsync(NOTHING_ARRIVED_MS - 2000);
    // A try that timed out may still reach a busy server: not concluded before the margin.
    expect(unit.store.latest('H-1')!.status).toBe('paying');
    await clock.advanceAsync(4000);
    expect(unit.store.latest('H-1')!.status).toBe('canceled');
    expect(unit.service.paymentOf('H-1').failure?.message).toMatch(/nothing was charged/);
    expect(server.paymentsOf('H-1')).toHaveLength(0);
  });

  it('canceled while the answer was lost and the payment is still pending: the unit cancels it at the server', async () => {
    await offered('I-1');
    server.loseNextAnswer('createPayment');
    server.setReachable(true);
    void unit.service.pay('I-1', CONFIRMING).catch(() => undefined);
    await clock.advanceAsync(20); // the charge was taken, its answer lost; the unit will retry
    server.setReachable(false);
    const sent = register.cancel('I-1');
    await clock.advanceAsync(100);
    await sent;
    server.setReachable(true);
    await clock.advanceAsync(6000);
    const [p] = server.paymentsOf('I-1');
    expect(p.status).toBe('canceled');
    expect(server.calls).toContain(`cancelPayment ${p.id}`);
    expect(unit.store.latest('I-1')!.status).toBe('canceled');
  });

  it('the register unreachable: the result is relayed again until acknowledged, and arrives once', async () => {
    await offered('J-1');
    const claimed = unit.service.claim('J-1');
    await clock.advanceAsync(50);
    await claimed;
    net.faults.drop = (_from, to) => to.port === PLUGIN.port;
    await paying('J-1', APPROVED, 7000);
    expect(unit.store.latest('J-1')).toMatchObject({ status: 'succeeded', relayed: false });
    expect(register.results).toHaveLength(0);
    net.faults.drop = undefined;
    await clock.advanceAsync(3000);
    expect(unit.store.latest('J-1')!.relayed).toBe(true);
    expect(register.results).toHaveLength(1);
  });

  it('after a restart: an attempt whose try reached the server is finished from the server, not charged again', async () => {
    await offered('K-1');
    server.setReachable(false);
    void unit.service.pay('K-1', APPROVED).catch(() => undefined);
    await clock.advanceAsync(100);
    const a = unit.store.latest('K-1')!;
    await unit.stop();
    // The try did reach the server before the unit died (its answer never came back).
    server.setReachable(true);
    await server.createPayment(a.idempotencyKey, {
      orderId: 'K-1',
      registerId: 'R1',
      amount: { value: 1250, currency: 'CNY' },
      method: { type: 'wallet_code', code: APPROVED },
    });
    unit = startUnit(dir, net, clock, server);
    await clock.advanceAsync(3000);
    expect(unit.store.latest('K-1')).toMatchObject({ attempt: 1, status: 'succeeded', relayed: true });
    expect(server.paymentsOf('K-1')).toHaveLength(1);
    expect(register.results).toHaveLength(1);
  });

  it('after a restart: an attempt no try of which reached the server is failed, and the clerk scans again', async () => {
    await offered('L-1');
    server.setReachable(false);
    void unit.service.pay('L-1', APPROVED).catch(() => undefined);
    await clock.advanceAsync(100);
    await unit.stop();
    server.setReachable(true);
    register.progress.length = 0;
    unit = startUnit(dir, net, clock, server);
    // It still holds the order it had claimed (journaled at the claim), though the offer is not sent again.
    expect(unit.service.offer('L-1').status).toBe('claimed');
    await clock.advanceAsync(NOTHING_ARRIVED_MS + 2000);
    expect(unit.store.latest('L-1')!.status).toBe('failed');
    expect(server.paymentsOf('L-1')).toHaveLength(0);
    // The register hears it too, instead of "paying" from before the unit stopped.
    expect(register.progress).toContain('waiting_for_code');
    // The clerk scans again on the same unit: paid once, relayed once.
    const { final, attempt } = await paying('L-1', APPROVED);
    expect(final).toBe(true);
    expect(attempt).toMatchObject({ attempt: 2, status: 'succeeded' });
    await clock.advanceAsync(100);
    expect(server.paymentsOf('L-1')).toHaveLength(1);
    expect(register.results.map((r) => r.payment.orderId)).toEqual(['L-1']);
  });

  it('after a restart: an order canceled at the register while the unit was down stays canceled there', async () => {
    await offered('L-2');
    const claimed = unit.service.claim('L-2');
    await clock.advanceAsync(50);
    await claimed;
    await unit.stop();
    unit = startUnit(dir, net, clock, server);
    expect(unit.service.offer('L-2').status).toBe('claimed');
    const sent = register.cancel('L-2');
    await clock.advanceAsync(100);
    await sent;
    await unit.stop();
    unit = startUnit(dir, net, clock, server);
    // The cancel was journaled with the held order: a scan now charges nothing.
    expect(unit.service.offer('L-2').status).toBe('canceled');
    await expect(unit.service.pay('L-2', APPROVED)).rejects.toMatchObject({ status: 409 });
    expect(server.paymentsOf('L-2')).toHaveLength(0);
  });

  it('a charge the server refuses because the register canceled the order meanwhile: canceled, nothing charged', async () => {
    await offered('L-3');
    server.setReachable(false);
    void unit.service.pay('L-3', APPROVED).catch(() => undefined);
    await clock.advanceAsync(500);
    // The register's cancel reached the server (the plugin closed the order) but not this unit.
    server.setReachable(true);
    await server.closeOrder('L-3');
    await clock.advanceAsync(5000); // the unit's retry
    expect(unit.store.latest('L-3')!.status).toBe('canceled');
    expect(unit.service.paymentOf('L-3').failure?.message).toMatch(
      /canceled at the register; nothing was charged/,
    );
    expect(server.paymentsOf('L-3')).toHaveLength(0);
  });

  it('lists every offer still open or being paid, and only the newest finished ones (a busy hour stays one screen)', async () => {
    await unit.stop();
    unit = startUnit(dir, net, clock, server, { listedFinishedOffers: 3 });
    await clock.advanceAsync(50);
    // Claimed, not scanned yet: still to be paid, however many offers come after it.
    await offered('收银-K0');
    await unit.service.claim('收银-K0');
    // The customer is confirming on the phone: still being paid.
    await offered('收银-C1');
    void paying('收银-C1', CONFIRMING);
    await clock.advanceAsync(100);
    for (let i = 1; i <= 5; i++) {
      await offered(`收银-P${i}`);
      expect((await paying(`收银-P${i}`, APPROVED)).final).toBe(true);
    }
    await offered('收银-O6');
    expect(unit.service.offers().map((o) => [o.orderId, o.status, o.payment?.status ?? null])).toEqual([
      ['收银-K0', 'claimed', null],
      ['收银-C1', 'claimed', 'pending'],
      ['收银-P3', 'claimed', 'succeeded'],
      ['收银-P4', 'claimed', 'succeeded'],
      ['收银-P5', 'claimed', 'succeeded'],
      ['收银-O6', 'open', null],
    ]);
    // The older ones are still there, one by one.
    expect(unit.service.offer('收银-P1').payment?.status).toBe('succeeded');
  });

  it('tells its change listeners whenever what the API shows changes (the touch page hears it live)', async () => {
    let told = 0;
    const stopTelling = unit.service.onChange(() => told++);
    const shown = () =>
      JSON.stringify([
        unit.service.offers(),
        unit.service.history().map((a) => unit.service.paymentView(a)),
        unit.service.serverUp,
      ]);
    /** Each step changes what the API shows, and the listeners were told at least once. */
    async function step(what: string, act: () => Promise<unknown>): Promise<void> {
      const [before, toldBefore] = [shown(), told];
      await act();
      await clock.advanceAsync(100);
      expect({ what, changed: shown() !== before, told: told > toldBefore }).toEqual({
        what,
        changed: true,
        told: true,
      });
    }
    await step('a new offer', () => offered('E-1'));
    await step('paid (claimed, paying, decided, relayed)', () => paying('E-1', APPROVED));
    await step('a second offer', () => offered('E-2'));
    await step('canceled at the register', () => register.cancel('E-2'));
    await step('a third offer', () => offered('E-3'));
    server.setReachable(false);
    await step('the server unreachable while paying', async () => void paying('E-3', APPROVED, 0));

    stopTelling();
    const after = told;
    await offered('E-4');
    expect(told).toBe(after);
  });

  it('tells its change listeners when an offer expires, though the inbox notices expiry only when read', async () => {
    await offered('X-1');
    const expiresIn = Date.parse(unit.service.offer('X-1').expiresAt) - clock.now();
    await clock.advanceAsync(expiresIn - 50);
    let told = 0;
    unit.service.onChange(() => told++);
    await clock.advanceAsync(100); // nothing reads the inbox meanwhile: no page, no payment in flight
    expect(told).toBeGreaterThan(0);
    expect(unit.service.offer('X-1').status).toBe('expired');
  });
});
