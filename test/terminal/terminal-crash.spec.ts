/**
 * A unit that dies in the middle of a payment (kill -9, like a dropped phone or a pulled battery) and is
 * started again with its data folder: it must finish that payment, not charge again, and still tell the
 * register. Real processes: `payconnect server` with a simulator slow enough that a `…10` customer takes
 * 4 s to confirm (PAYCONNECT_SIM_SPEED=2; the server's deadline is then 15 s), and `payconnect terminal`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ChildProc,
  deviceToken,
  expectStatus,
  freeTcpPort,
  http,
  killAllChildren,
  pickLanPorts,
  RegisterSide,
  testCode,
  TestServer,
  waitFor,
} from './support/harness';

jest.setTimeout(60_000);

interface PaymentJson {
  orderId: string;
  status: string;
  paymentId: string | null;
  relayedToRegister: boolean;
}

let tmp: string;
let server: TestServer;
let register: RegisterSide | undefined;

afterAll(async () => {
  await register?.close();
  await server?.proc.stop();
  await killAllChildren();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('a unit killed mid-payment', () => {
  it('finishes the payment after a restart: paid once, and the register gets the signed result', async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-terminal-crash-'));
    server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 2 });
    const storeId = await server.createStore('Noodle bar');
    const plugin = await server.registerPlugin(storeId, 'P1');
    const ports = await pickLanPorts();
    register = await RegisterSide.open({
      deviceId: 'P1',
      lanKey: plugin.lanKey,
      serverPublicKey: plugin.serverPublicKey,
      storeId: plugin.storeId,
      ...ports,
    });

    const dataDir = path.join(tmp, 'T1');
    const httpPort = await freeTcpPort();
    const unitUrl = `http://127.0.0.1:${httpPort}`;
    const args = [
      'terminal',
      '--id',
      'T1',
      '--server',
      server.url,
      '--port',
      String(httpPort),
      '--data',
      dataDir,
      '--lan-interface',
      '127.0.0.1',
      '--lan-broadcast',
      '127.255.255.255',
      '--lan-port',
      String(ports.unitPort),
      '--plugin-port',
      String(ports.pluginPort),
    ];
    const code = await server.registrationCode(storeId, 'terminal');
    const first = ChildProc.spawn('terminal T1', [...args, '--registration-code', code]);
    await first.waitHttp(`${unitUrl}/api/status`);
    await register.waitForUnits(['T1']);

    // Two orders in flight when the unit dies: C-1 already answered by the server (the unit knows its
    // payment id), C-2 just sent (the unit knows only its idempotency key).
    const orders = ['C-1', 'C-2'];
    for (const orderId of orders) {
      await register.offer(orderId, 'T1');
      await waitFor(`${orderId} on T1`, async () => {
        const list = await expectStatus<Array<{ orderId: string }>>(
          200,
          http(unitUrl, 'GET', '/api/offers'),
          'offers',
        );
        return list.some((o) => o.orderId === orderId);
      });
      await expectStatus(200, http(unitUrl, 'POST', `/api/offers/${orderId}/claim`), `claim ${orderId}`);
    }
    const shown = (orderId: string) => http<PaymentJson>(unitUrl, 'GET', `/api/payments/${orderId}`);
    // The clerk scans a code whose customer takes a few seconds to confirm. The POSTs are not awaited:
    // their connections die with the process.
    const scan = (orderId: string) =>
      http(unitUrl, 'POST', `/api/offers/${orderId}/pay`, { body: { paymentCode: testCode('10') } }).catch(
        () => undefined,
      );
    void scan('C-1');
    const c1 = await waitFor(
      'C-1 to be pending at the server',
      async () => {
        const r = await shown('C-1');
        return r.status === 200 && r.body.status === 'pending' && r.body;
      },
      5000,
      10,
    );
    void scan('C-2');
    const c2 = await waitFor(
      'C-2 to show under way',
      async () => {
        const r = await shown('C-2');
        return r.status === 200 && ['paying', 'pending'].includes(r.body.status) && r.body;
      },
      5000,
      10,
    );
    await first.kill9();
    const killedAt = Date.now();

    const token = deviceToken(dataDir);
    for (const orderId of orders) {
      // It really died mid-payment: the customer had not confirmed yet.
      expect((await server.paymentsOf(orderId, token)).map((p) => p.status)).toEqual(['pending']);
      expect(register.allResults(orderId)).toEqual([]);
    }

    // Started again with its data folder and no code.
    const second = ChildProc.spawn('terminal T1 (restarted)', args);
    await second.waitHttp(`${unitUrl}/api/status`);
    expect(second.output).toMatch(/terminal T1 \(store .+\) ready/);

    for (const [orderId, before] of [
      ['C-1', c1],
      ['C-2', c2],
    ] as const) {
      const final = await waitFor(
        `the resumed payment of ${orderId} to be decided`,
        async () => {
          const r = await shown(orderId);
          return r.status === 200 && !['paying', 'pending'].includes(r.body.status) && r.body;
        },
        20_000,
        100,
      );
      expect({ orderId, status: final.status }).toEqual({ orderId, status: 'succeeded' });
      if (before.paymentId) expect(final.paymentId).toBe(before.paymentId);

      // Exactly one payment for the order, charged once at the provider.
      const onServer = await server.paymentsOf(orderId, token);
      expect(onServer).toHaveLength(1);
      expect(onServer[0]).toMatchObject({ id: final.paymentId, status: 'succeeded' });
      expect({ orderId, charges: server.simTrade(onServer[0].id)?.charge_calls }).toEqual({
        orderId,
        charges: 1,
      });

      // The register hears the signed result, from the restarted unit.
      const results = await waitFor(
        `the signed result of ${orderId} at the register`,
        () => {
          const r = register!.verifiedResults(orderId);
          return r.length > 0 && r;
        },
        10_000,
      );
      expect(results[0].payment).toMatchObject({ id: onServer[0].id, status: 'succeeded' });
      expect(results[0].at).toBeGreaterThan(killedAt);
      expect(register.allResults(orderId)).toHaveLength(results.length);
      await waitFor(
        `the unit to record that the register has the result of ${orderId}`,
        async () => (await shown(orderId)).body.relayedToRegister,
        10_000,
      );
    }
    expect(register.progress('C-1')).toContain('done');

    await second.stop();
  });
});
