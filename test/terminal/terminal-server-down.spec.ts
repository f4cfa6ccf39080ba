/**
 * The payment server goes down while a customer is confirming a payment: the unit says so on its screen,
 * keeps the payment (not failed, not lost), and when the server is back it ends with the one payment,
 * the right result, and the register told, without a second charge.
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
import { retryDelayMs } from '../../src/device/server-client';
import { createTerminalApp } from '../../src/terminal/terminal-app';
import { NOTHING_ARRIVED_MS } from '../../src/terminal/terminal.service';

jest.setTimeout(60_000);

let tmp: string;
let register: RegisterSide | undefined;

afterAll(async () => {
  await register?.close();
  await killAllChildren();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the payment server is down mid-payment', () => {
  it('shows it, keeps the payment, and finishes it when the server is back', async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-terminal-server-down-'));
    const dbPath = path.join(tmp, 'server.db');
    const server = await TestServer.start({ dbPath, simSpeed: 2 });
    const port = Number(new URL(server.url).port);
    const storeId = await server.createStore('Tea shop');
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
    const code = await server.registrationCode(storeId, 'terminal');
    const unit = ChildProc.spawn('terminal T1', [
      'terminal',
      '--id',
      'T1',
      '--server',
      server.url,
      '--registration-code',
      code,
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
    ]);
    await unit.waitHttp(`${unitUrl}/api/status`);
    await register.waitForUnits(['T1']);
    await register.offer('S-1', 'T1');
    await waitFor('S-1 on T1', async () =>
      (await http<Array<{ orderId: string }>>(unitUrl, 'GET', '/api/offers')).body.some(
        (o) => o.orderId === 'S-1',
      ),
    );
    await expectStatus(200, http(unitUrl, 'POST', '/api/offers/S-1/claim'), 'claim');
    // The customer needs 4 s to confirm; the server dies meanwhile.
    void http(unitUrl, 'POST', '/api/offers/S-1/pay', { body: { paymentCode: testCode('10') } }).catch(
      () => undefined,
    );
    await waitFor(
      'S-1 pending',
      async () =>
        (await http<{ status: string }>(unitUrl, 'GET', '/api/payments/S-1')).body.status === 'pending',
    );
    await server.proc.kill9();

    // The screen says the server is unreachable; the payment is still there, undecided.
    await waitFor(
      'the unit to notice',
      async () => (await http<{ server: string }>(unitUrl, 'GET', '/api/status')).body.server === 'down',
    );
    expect((await http<{ status: string }>(unitUrl, 'GET', '/api/payments/S-1')).body.status).toBe('pending');

    // The server comes back (same database, same address): the payment finishes, once.
    const back = ChildProc.spawn(
      'server (back)',
      ['server', '--port', String(port), '--db', `sqlite:${dbPath}`],
      {
        PAYCONNECT_ADMIN_TOKEN: server.adminToken,
        PAYCONNECT_SIM_SPEED: '2',
      },
    );
    await back.waitHttp(`${server.url}/healthz`);
    const final = await waitFor(
      'S-1 decided',
      async () => {
        const r = await http<{ status: string; relayedToRegister: boolean; paymentId: string }>(
          unitUrl,
          'GET',
          '/api/payments/S-1',
        );
        return r.body.status === 'succeeded' && r.body.relayedToRegister && r.body;
      },
      30_000,
      100,
    );
    expect((await http<{ server: string }>(unitUrl, 'GET', '/api/status')).body.server).toBe('up');
    const payments = await server.paymentsOf('S-1', deviceToken(dataDir));
    expect(payments.map((p) => [p.id, p.status])).toEqual([[final.paymentId, 'succeeded']]);
    expect(server.simTrade(final.paymentId)?.charge_calls).toBe(1);
    expect(register.verifiedResults('S-1').map((r) => r.payment.status)).toContain('succeeded');
    await back.stop();
  });

  it('a payment stuck while the server is down ends canceled at once when the register cancels, and is never sent later', async () => {
    const own = mkdtempSync(path.join(tmpdir(), 'payconnect-terminal-cancel-down-'));
    const dataDir2 = path.join(own, 'T2');
    const down = await TestServer.start({ dbPath: path.join(own, 'server.db'), simSpeed: 50 });
    const storeId = await down.createStore('Noodle bar');
    const plugin = await down.registerPlugin(storeId, 'P2');
    const ports = await pickLanPorts();
    const reg = await RegisterSide.open({
      deviceId: 'P2',
      lanKey: plugin.lanKey,
      serverPublicKey: plugin.serverPublicKey,
      storeId: plugin.storeId,
      ...ports,
    });
    const unitApp = await createTerminalApp({
      id: 'T2',
      serverUrl: down.url,
      registrationCode: await down.registrationCode(storeId, 'terminal'),
      port: 0,
      dataDir: dataDir2,
      lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', ...ports },
      payWaitMs: 200,
      logger: false,
    });
    try {
      await reg.waitForUnits(['T2']);
      await reg.offer('订单-0009', 'T2');
      const url = unitApp.url;
      const id = encodeURIComponent('订单-0009');
      await waitFor('the offer on T2', async () =>
        (await http<Array<{ orderId: string }>>(url, 'GET', '/api/offers')).body.some(
          (o) => o.orderId === '订单-0009',
        ),
      );
      await expectStatus(200, http(url, 'POST', `/api/offers/${id}/claim`), 'claim');
      await down.proc.kill9();
      const paying = await http<{ status: string }>(url, 'POST', `/api/offers/${id}/pay`, {
        body: { paymentCode: testCode('00') },
      });
      expect(paying.body.status).toBe('paying');
      await reg.endpoint.send(
        'cancel',
        { orderId: '订单-0009', reason: 'the customer left' },
        reg.directory.targetOf('T2')!,
      );
      await waitFor('the offer canceled on T2', async () =>
        (await http<Array<{ orderId: string; status: string }>>(url, 'GET', '/api/offers')).body.some(
          (o) => o.orderId === '订单-0009' && o.status === 'canceled',
        ),
      );
      // The server comes back: the unit learns that nothing arrived, shows the cancel, and sends nothing.
      const back = ChildProc.spawn(
        'server (back)',
        ['server', '--port', new URL(down.url).port, '--db', `sqlite:${path.join(own, 'server.db')}`],
        { PAYCONNECT_ADMIN_TOKEN: down.adminToken, PAYCONNECT_SIM_SPEED: '50' },
      );
      await back.waitHttp(`${down.url}/healthz`);
      const shown = await waitFor(
        'the unit to show the cancel',
        async () => {
          const r = await http<{ status: string; failure: { message: string } | null }>(
            url,
            'GET',
            `/api/payments/${id}`,
          );
          return r.body.status !== 'paying' && r.body;
        },
        30_000,
        100,
      );
      expect(shown.status).toBe('canceled');
      expect(shown.failure?.message).toContain('nothing was charged');
      // The unit says "canceled" only once its retry loop for this payment has ended and no try has left
      // it for NOTHING_ARRIVED_MS, longer than the retry schedule's longest pause (while a loop runs, it
      // sends at least that often): nothing is left that could send the payment later, and none reached
      // the server.
      expect(retryDelayMs(1000)).toBeLessThan(NOTHING_ARRIVED_MS);
      expect(await down.paymentsOf('订单-0009', deviceToken(dataDir2))).toEqual([]);
      await back.stop();
    } finally {
      await unitApp.close().catch(() => undefined);
      await reg.close();
      rmSync(own, { recursive: true, force: true });
    }
  });
});
