/**
 * Mobile POS units end to end, as a clerk, a cashier and a reseller see them: a real payment server
 * process (SQLite, fast simulator), two units T1 and T2 (the terminal app in-process, with real UDP
 * sockets on loopback) registered with codes from the admin API, and the register's side of the LAN
 * offering orders. Checked through the units' local HTTP API, the register's LAN inbox, the server's API
 * and the simulator's own records.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LanEndpoint, LanKeyring, lanKeyFromJson, UdpLanTransport } from '../../src/lan';
import { LanStats } from '../../src/lan/lan-stats';
import { Payment } from '../../src/protocol/states';
import { createTerminalApp, RunningTerminal, TerminalSetupError } from '../../src/terminal/terminal-app';
import {
  ChildProc,
  deviceToken,
  expectStatus,
  http,
  killAllChildren,
  pickLanPorts,
  RegisterSide,
  testCode,
  TestServer,
  waitFor,
} from './support/harness';

jest.setTimeout(60_000);

interface OfferJson {
  orderId: string;
  registerId: string;
  amount: { value: number; currency: string };
  amountText: string;
  status: string;
  takenBy: string | null;
}

interface PaymentJson {
  orderId: string;
  status: string;
  paymentId: string | null;
  payment: Payment | null;
  signature: string | null;
  failure: { code: string; message: string } | null;
}

let tmp: string;
let server: TestServer;
let storeId: string;
let ports: { unitPort: number; pluginPort: number };
let register: RegisterSide;
const units = new Map<string, { app: RunningTerminal; dir: string }>();

function unit(id: string) {
  const u = units.get(id);
  if (!u) throw new Error(`unit ${id} is not running`);
  return u;
}

async function startUnit(id: string, registrationCode?: string): Promise<RunningTerminal> {
  const dir = path.join(tmp, id);
  const app = await createTerminalApp({
    id,
    serverUrl: server.url,
    registrationCode,
    port: 0,
    dataDir: dir,
    lan: {
      interfaceAddress: '127.0.0.1',
      broadcastAddress: '127.255.255.255',
      unitPort: ports.unitPort,
      pluginPort: ports.pluginPort,
    },
    // Short, so an order still deciding after 400 ms answers 202 with a Location to poll.
    payWaitMs: 400,
    logger: false,
  });
  units.set(id, { app, dir });
  return app;
}

const offers = async (id: string) =>
  expectStatus<OfferJson[]>(200, http(unit(id).app.url, 'GET', '/api/offers'), `GET /api/offers on ${id}`);
const offerOn = async (id: string, orderId: string) => (await offers(id)).find((o) => o.orderId === orderId);
const lanStats = async (id: string) =>
  (await expectStatus<{ lan: LanStats }>(200, http(unit(id).app.url, 'GET', '/api/status'), 'status')).lan;
const claim = (id: string, orderId: string) =>
  http<{ error?: { code: string; message: string } }>(
    unit(id).app.url,
    'POST',
    `/api/offers/${encodeURIComponent(orderId)}/claim`,
  );
const pay = (id: string, orderId: string, paymentCode: string) =>
  http<PaymentJson & { error?: { code: string; message: string } }>(
    unit(id).app.url,
    'POST',
    `/api/offers/${encodeURIComponent(orderId)}/pay`,
    { body: { paymentCode } },
  );

/** Offers an order to one unit only and has that unit claim it. */
async function offeredAndClaimed(id: string, orderId: string): Promise<void> {
  await register.offer(orderId, id);
  await waitFor(`${orderId} on ${id}`, () => offerOn(id, orderId));
  await expectStatus(200, claim(id, orderId), `claim ${orderId} on ${id}`);
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-terminal-e2e-'));
  server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
  storeId = await server.createStore('Tea house');
  const plugin = await server.registerPlugin(storeId, 'P1');
  ports = await pickLanPorts();
  register = await RegisterSide.open({
    deviceId: 'P1',
    lanKey: plugin.lanKey,
    serverPublicKey: plugin.serverPublicKey,
    storeId: plugin.storeId,
    ...ports,
  });
  await startUnit('T1', await server.registrationCode(storeId, 'terminal'));
  await startUnit('T2', await server.registrationCode(storeId, 'terminal'));
  await register.waitForUnits(['T1', 'T2']);
});

afterAll(async () => {
  for (const { app } of units.values()) await app.close().catch(() => undefined);
  await register?.close();
  await server?.proc.stop();
  await killAllChildren();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('mobile POS units with a real server and LAN', () => {
  let winner = '';
  let loser = '';

  it('shows a broadcast offer on both units, once however often it is re-offered', async () => {
    const report = await register.offer('A-100', 'broadcast');
    expect(report.ackedBy.sort()).toEqual(['T1', 'T2']);
    await register.offer('A-100', 'broadcast');
    await register.offer('A-100', 'broadcast');
    for (const id of ['T1', 'T2']) {
      const list = (await offers(id)).filter((o) => o.orderId === 'A-100');
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({
        orderId: 'A-100',
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
        amountText: '¥12.50',
        status: 'open',
        takenBy: null,
      });
    }
  });

  it('gives the order to exactly one of two clerks who claim at the same moment', async () => {
    const [a, b] = await Promise.all([claim('T1', 'A-100'), claim('T2', 'A-100')]);
    const answers = [
      { id: 'T1', r: a },
      { id: 'T2', r: b },
    ];
    const won = answers.filter((x) => x.r.status === 200);
    const lost = answers.filter((x) => x.r.status === 409);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    winner = won[0].id;
    loser = lost[0].id;
    expect(lost[0].r.body.error).toEqual({ code: 'taken', message: `taken by ${winner}` });
    expect(register.dispatcher.holder('A-100')).toBe(winner);

    expect(await offerOn(winner, 'A-100')).toMatchObject({ status: 'claimed' });
    await waitFor(`the offer on ${loser} to show taken`, async () => {
      const o = await offerOn(loser, 'A-100');
      return o?.status === 'taken' && o;
    });
    expect(await offerOn(loser, 'A-100')).toMatchObject({ status: 'taken', takenBy: winner });
    // The loser cannot collect it either.
    const r = await pay(loser, 'A-100', testCode('00'));
    expect(r.status).toBe(409);
    expect(r.body.error?.message).toBe(`taken by ${winner}`);
  });

  const cases: Array<{
    ending: string;
    prefix?: string;
    status: Payment['status'];
    failure?: string;
    chargeCalls: number;
    what: string;
  }> = [
    { ending: '00', status: 'succeeded', chargeCalls: 1, what: 'succeeds at once' },
    {
      ending: '05',
      status: 'failed',
      failure: 'insufficient_funds',
      chargeCalls: 1,
      what: 'is declined for insufficient funds',
    },
    { ending: '10', status: 'succeeded', chargeCalls: 1, what: 'succeeds once the customer confirms' },
    { ending: '11', status: 'canceled', chargeCalls: 1, what: 'is canceled at the deadline' },
    { ending: '20', status: 'succeeded', chargeCalls: 1, what: 'succeeds after a provider timeout' },
    // The provider answers 500 before it records any trade: the server's cancel leaves a closed trade
    // with no charge on it.
    { ending: '21', status: 'failed', chargeCalls: 0, what: 'fails after a provider error' },
    { ending: '30', status: 'failed', failure: 'invalid_code', chargeCalls: 1, what: 'fails: invalid code' },
    { ending: '42', prefix: '13', status: 'succeeded', chargeCalls: 1, what: 'succeeds (other ending)' },
  ];

  it('collects one order per test code and every party sees the right outcome', async () => {
    const orderOf = (ending: string) => (ending === '00' ? 'A-100' : `A-1${ending}`);
    for (const c of cases) if (c.ending !== '00') await offeredAndClaimed(winner, orderOf(c.ending));

    const results = await Promise.all(
      cases.map(async (c) => {
        const orderId = orderOf(c.ending);
        const first = await pay(winner, orderId, testCode(c.ending, c.prefix));
        let final = first.body as PaymentJson;
        if (first.status === 202) {
          // Still deciding: the unit says where to look.
          expect(first.headers.get('location')).toBe(`/api/payments/${orderId}`);
          final = await waitFor(
            `${orderId} to be decided`,
            async () => {
              const r = await expectStatus<PaymentJson>(
                200,
                http(unit(winner).app.url, 'GET', `/api/payments/${orderId}`),
                'poll',
              );
              return !['paying', 'pending'].includes(r.status) && r;
            },
            15_000,
          );
        } else {
          expect(first.status).toBe(200);
        }
        return { c, orderId, first, final };
      }),
    );

    const token = deviceToken(unit(winner).dir);
    for (const { c, orderId, first, final } of results) {
      const label = `${orderId} (code …${c.ending}, ${c.what})`;
      // The clerk's screen.
      expect({ label, status: final.status }).toEqual({ label, status: c.status });
      if (c.failure) expect({ label, failure: final.failure?.code }).toEqual({ label, failure: c.failure });
      if (c.ending === '11') expect({ label, http: first.status }).toEqual({ label, http: 202 });
      const shown = await expectStatus<PaymentJson>(
        200,
        http(unit(winner).app.url, 'GET', `/api/payments/${orderId}`),
        label,
      );
      expect(shown.status).toBe(c.status);

      // The server: exactly one payment for this one attempt, the one the unit knows.
      const onServer = await server.paymentsOf(orderId, token);
      expect({ label, count: onServer.length }).toEqual({ label, count: 1 });
      expect(onServer[0]).toMatchObject({
        id: final.paymentId,
        status: c.status,
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
      });
      // The provider: charged once (never a second charge for a retried or resumed request).
      const trade = server.simTrade(onServer[0].id);
      expect({ label, charges: trade?.charge_calls }).toEqual({ label, charges: c.chargeCalls });

      // The register: a signed result it can trust, and the unit's progress.
      const signed = await waitFor(`a signed result for ${label} at the register`, () => {
        const r = register.verifiedResults(orderId);
        return r.length > 0 && r;
      });
      expect(signed.map((r) => r.payment.status)).toEqual(signed.map(() => c.status));
      expect(signed[0].payment.id).toBe(onServer[0].id);
      await waitFor(`progress "done" for ${label}`, () => register.progress(orderId).includes('done'));
      // Each stage once: a decided payment is never taken back to "paying" and decided again.
      expect({ label, stages: register.progress(orderId) }).toEqual({
        label,
        stages: ['claimed', 'paying', 'done'],
      });
    }
    // What the loser still shows for the first order: it was taken, nothing more.
    expect(await offerOn(loser, 'A-100')).toMatchObject({ status: 'taken', takenBy: winner });
  });

  it('refuses malformed codes on the unit before anything reaches the server', async () => {
    await offeredAndClaimed(winner, 'A-200');
    for (const bad of ['28ABCDEFGHIJKLMN00', '12345', '', '28123456789012345 6x']) {
      const r = await pay(winner, 'A-200', bad);
      expect({ bad, status: r.status, code: r.body.error?.code }).toEqual({
        bad,
        status: 400,
        code: 'invalid_payment_code',
      });
      expect(r.body.error?.message).toMatch(/16-24 digits/);
    }
    expect(await server.paymentsOf('A-200', deviceToken(unit(winner).dir))).toEqual([]);
    expect((await http(unit(winner).app.url, 'GET', '/api/payments/A-200')).status).toBe(404);
    // The order is still the clerk's to collect with a good scan (spaces from the scanner are fine).
    const ok = await pay(winner, 'A-200', testCode('00').replace(/(\d{4})/g, '$1 '));
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('succeeded');
    expect(await server.paymentsOf('A-200', deviceToken(unit(winner).dir))).toHaveLength(1);
  });

  it('refuses a code sent as a JSON number or a list: a number has already been rounded', async () => {
    await offeredAndClaimed(winner, 'A-210');
    for (const paymentCode of [Number('280000000000000001'), [testCode('00')], null]) {
      const r = await http<{ error?: { code: string; message: string } }>(
        unit(winner).app.url,
        'POST',
        '/api/offers/A-210/pay',
        { body: { paymentCode } },
      );
      expect({ paymentCode, status: r.status, code: r.body.error?.code }).toEqual({
        paymentCode,
        status: 400,
        code: 'invalid_payment_code',
      });
      expect(r.body.error?.message).toContain('paymentCode');
    }
    expect(await server.paymentsOf('A-210', deviceToken(unit(winner).dir))).toEqual([]);
  });

  it.each(['订单-0001', 'A 1', '<b>&"x"', 'ﾚｼｰﾄ №7 — 收银台'])(
    'pays an order whose number is any text the host uses: %s',
    async (orderId) => {
      await offeredAndClaimed(winner, orderId);
      const r = await pay(winner, orderId, testCode('00'));
      expect({ orderId, status: r.status, payment: r.body.status }).toEqual({
        orderId,
        status: 200,
        payment: 'succeeded',
      });
      const onServer = await server.paymentsOf(orderId, deviceToken(unit(winner).dir));
      expect(onServer.map((p) => [p.orderId, p.status])).toEqual([[orderId, 'succeeded']]);
      const signed = await waitFor(`the signed result of ${orderId} on the LAN`, () => {
        const v = register.verifiedResults(orderId);
        return v.length > 0 && v;
      });
      expect(signed[0].payment.orderId).toBe(orderId);
      expect(
        (await http<PaymentJson>(unit(winner).app.url, 'GET', `/api/payments/${encodeURIComponent(orderId)}`))
          .body.status,
      ).toBe('succeeded');
    },
  );

  it("never shows an offer sealed with another store's key, and counts the drop", async () => {
    const otherStore = await server.createStore('The shop next door');
    const stranger = await server.registerPlugin(otherStore, 'P9');
    const before = { T1: await lanStats('T1'), T2: await lanStats('T2') };
    const transport = await UdpLanTransport.open({ port: 0, interfaceAddress: '127.0.0.1' });
    const foreign = new LanEndpoint({
      deviceId: 'P9',
      keyring: new LanKeyring(lanKeyFromJson(stranger.lanKey)),
      transport,
    });
    try {
      await expect(
        foreign.send(
          'offer',
          {
            orderId: 'X-1',
            registerId: 'R9',
            amount: { value: 99900, currency: 'CNY' },
            mode: 'broadcast',
            expiresAt: Date.now() + 60_000,
          },
          { kind: 'broadcast', address: '127.255.255.255', port: ports.unitPort },
          { deadlineMs: 800 },
        ),
      ).rejects.toThrow(/not acknowledged/);
    } finally {
      await foreign.close();
    }
    for (const id of ['T1', 'T2'] as const) {
      expect((await offers(id)).map((o) => o.orderId)).not.toContain('X-1');
      const after = await lanStats(id);
      const dropped = (s: LanStats) => s.dropped['unknown-key'] + s.dropped['bad-seal'];
      expect(dropped(after)).toBeGreaterThan(dropped(before[id]));
    }
  });

  it('shows canceled when the register cancels a claimed order that is not paid yet', async () => {
    await offeredAndClaimed(winner, 'A-300');
    await register.endpoint.send(
      'cancel',
      { orderId: 'A-300', reason: 'the customer left' },
      register.directory.targetOf(winner)!,
    );
    expect(await offerOn(winner, 'A-300')).toMatchObject({ status: 'canceled' });
    const r = await pay(winner, 'A-300', testCode('00'));
    expect(r.status).toBe(409);
    expect(await server.paymentsOf('A-300', deviceToken(unit(winner).dir))).toEqual([]);

    // A broadcast offer the host cancels before anyone claimed it: withdrawn from every unit.
    await register.offer('A-301', 'broadcast');
    await register.dispatcher.withdraw('A-301', 'canceled');
    for (const id of ['T1', 'T2']) expect(await offerOn(id, 'A-301')).toMatchObject({ status: 'canceled' });
  });

  it('keeps its registration across a restart without a code, in files only the unit can read', async () => {
    const { dir } = unit(winner);
    for (const f of ['device.json', 'lan-key.json'])
      expect({ f, mode: (statSync(path.join(dir, f)).mode & 0o777).toString(8) }).toEqual({ f, mode: '600' });

    await unit(winner).app.close();
    units.delete(winner);
    const restartedAt = Date.now();
    const app = await startUnit(winner);
    expect(app.credentials).toMatchObject({ deviceId: winner, storeId });
    expect(
      await expectStatus<{ deviceId: string }>(200, http(app.url, 'GET', '/api/status'), 'status'),
    ).toMatchObject({ deviceId: winner });
    // What it collected before the restart is still on its screen.
    expect(
      await expectStatus<PaymentJson>(200, http(app.url, 'GET', '/api/payments/A-100'), 'A-100'),
    ).toMatchObject({ status: 'succeeded' });

    // And it works: the register sees it again, it takes and collects a new order.
    await register.waitForUnits([winner], 10_000, restartedAt);
    await offeredAndClaimed(winner, 'A-400');
    const paid = await pay(winner, 'A-400', testCode('00'));
    expect(paid.status).toBe(200);
    expect(paid.body.status).toBe('succeeded');
    await waitFor('the signed result of A-400', () => register.verifiedResults('A-400').length > 0);
  });

  it('refuses to start an unregistered unit without a code, saying what to do', async () => {
    // What the reseller sees on the command line.
    const cli = ChildProc.spawn('terminal', [
      'terminal',
      '--id',
      'T3',
      '--server',
      server.url,
      '--port',
      '0',
      '--data',
      path.join(tmp, 'T3'),
      '--lan-interface',
      '127.0.0.1',
      '--lan-broadcast',
      '127.255.255.255',
      '--lan-port',
      String(ports.unitPort),
      '--plugin-port',
      String(ports.pluginPort),
    ]);
    const exit = await cli.waitExit(15_000);
    expect(exit.code).toBe(1);
    expect(cli.output).toMatch(/unit T3 is not registered yet/);
    expect(cli.output).toMatch(/--registration-code CODE/);
    // A setup error is the user's to fix, said once: not reported as a bug with a stack.
    expect(cli.output).not.toMatch(/internal error|\n\s+at /);

    // In-process, the same refusal; and a data folder of another unit is refused, naming it.
    await expect(startUnit('T4')).rejects.toThrow(TerminalSetupError);
    await expect(
      createTerminalApp({
        id: 'T9',
        serverUrl: server.url,
        port: 0,
        dataDir: unit(loser).dir,
        lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', unitPort: ports.unitPort },
        logger: false,
      }),
    ).rejects.toThrow(`belongs to unit ${loser}, not T9`);
  });
});
