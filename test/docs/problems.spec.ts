/**
 * Problems from docs/support/problems.md that no other spec showed as a shop sees them, reproduced with real
 * parts: the payment server and the plugin as `payconnect` processes, a mobile POS unit in-process, the
 * register software's HTTP callback on a real socket. Each test asserts what a person would see: the
 * message on the status page ("Needs attention"), the API's answer, the line the command prints.
 *
 * The tests run in order on one shop; the last one stops the payment server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ChildProc,
  freeTcpPort,
  http,
  killAllChildren,
  pickLanPorts,
  testCode,
  TestServer,
  waitFor,
} from '../terminal/support/harness';
import {
  HookHost,
  LanPorts,
  PluginApi,
  startPluginProc,
  Unit,
  writeHookManifest,
} from '../plugin/support/plugin-harness';

jest.setTimeout(120_000);
const SECRET = 'support-problems-secret-0123456789';

let tmp: string;
let server: TestServer;
let storeId: string;
let plugin: ChildProc;
let unit: Unit;
let host: HookHost;
let api: PluginApi;
let lan: LanPorts;
let manifest: string;
/** The plugin's code: used once it registered, so a second start with it is refused. */
let usedCode: string;
/** A unit's pay request still waiting for the customer when the server went away. */
let paying: Promise<unknown> | undefined;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-support-problems-'));
  // Real time (speed 1): a payment of a …11 code stays pending for the server's 30 s deadline, long
  // enough to take the server away while a unit is paying it.
  server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 1 });
  storeId = await server.createStore('收银台 Noodle shop');
  lan = await pickLanPorts();
  host = await HookHost.start(SECRET);
  manifest = writeHookManifest(tmp, { id: 'shop-hook', callback: host.url, secret: SECRET });
  usedCode = await server.registrationCode(storeId, 'plugin');
  const port = await freeTcpPort();
  plugin = await startPluginProc({
    manifest,
    serverUrl: server.url,
    registrationCode: usedCode,
    port,
    dataDir: path.join(tmp, 'plugin'),
    lan,
  });
  api = new PluginApi(`http://127.0.0.1:${port}`);
  unit = await Unit.start({ id: 'T1', server, storeId, dataDir: path.join(tmp, 'T1'), lan });
  await api.waitForUnits(['T1']);
});

afterAll(async () => {
  await unit?.close().catch(() => undefined);
  await paying;
  await plugin?.stop();
  await server?.proc.stop();
  await killAllChildren();
  await host?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('problems at a shop, as support sees them', () => {
  it('a registration code that was already used: the plugin does not start, and says why and what to do', async () => {
    const port = await freeTcpPort();
    const second = ChildProc.spawn('plugin with a used code', [
      'plugin',
      '--manifest',
      manifest,
      '--server',
      server.url,
      '--registration-code',
      usedCode,
      '--port',
      String(port),
      '--data',
      path.join(tmp, 'second-plugin'),
      '--lan-port',
      String(lan.unitPort),
      '--plugin-port',
      String(await freeTcpPort()),
    ]);
    const exit = await second.waitExit(20_000);
    expect(exit.code).toBe(1);
    expect(second.output).toBe(
      'payconnect plugin: registration code refused: it was already used; each code registers one device\n',
    );
    // Nothing half-started: no status page answers.
    expect(
      (await http(`http://127.0.0.1:${port}`, 'GET', '/api/status').catch(() => undefined))?.status,
    ).toBe(undefined);
  });

  it('the register sends order number 0001 again with another amount: refused 400 naming both amounts, the first order stands', async () => {
    expect((await api.post({ orderId: '0001', amount: '12.50' })).status).toBe(202);
    const again = await api.post({ orderId: '0001', amount: '15.00' });
    expect(again.status).toBe(400);
    const error = (again.body as unknown as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('order.amount_conflict');
    expect(error.message).toContain('order 0001 was already sent for ¥12.50');
    expect(error.message).toContain(
      'it cannot be sent again for ¥15.00: cancel it or use a new order number',
    );
    // The same number with the same amount is the same order (no second offer), and it is not re-priced.
    expect((await api.post({ orderId: '0001', amount: '12.50' })).status).toBe(202);
    expect((await api.order('0001')).amount).toEqual({ value: 1250, currency: 'CNY' });
    await unit.claimAndPay('0001', testCode('00'));
    await api.waitOrder('0001', 'to be paid at 12.50', (o) => o.status === 'paid');
  });

  it('the register software does not take the result: Needs attention says telling the register failed, and it is told once when it answers again', async () => {
    host.answer = 503;
    expect((await api.post({ orderId: '0002', amount: '9.90' })).status).toBe(202);
    await unit.claimAndPay('0002', testCode('00'));
    await api.waitOrder('0002', 'to be paid', (o) => o.status === 'paid');
    const problem = await waitFor(
      'the write-back problem under Needs attention',
      async () =>
        (await api.status()).problems.find((p) => p.startsWith('order 0002: telling the register failed')),
      15_000,
      100,
    );
    expect(problem).toContain(
      'retrying: check that the register software is running and its callback or outbox is right in the manifest',
    );
    expect((await api.order('0002')).writeBack).not.toBe('done');
    host.answer = 200;
    await api.waitOrder('0002', 'to be written back', (o) => o.writeBack === 'done', 30_000);
    expect(host.accepted('0002').map((d) => d.status)).toEqual(['paid']);
    expect((await api.status()).problems.join('\n')).not.toContain('order 0002');
  });

  it('the payment server goes away while a unit is paying: Needs attention says so, and a cancel is refused 503 cancel_unconfirmed with nothing changed', async () => {
    expect((await api.post({ orderId: '0003', amount: '20.00' })).status).toBe(202);
    await unit.waitOffer('0003');
    expect((await unit.claim('0003')).status).toBe(200);
    // …11: the customer is "confirming on the phone"; the unit's answer waits, so it is not awaited here.
    paying = unit.pay('0003', testCode('11')).catch(() => undefined);
    await api.waitOrder('0003', 'to be paying', (o) => o.status === 'paying', 15_000);
    await server.proc.stop();
    const problem = await waitFor(
      'the server problem under Needs attention',
      async () => (await api.status()).problems.find((p) => p.startsWith(`the payment server ${server.url}`)),
      20_000,
      200,
    );
    expect(problem).toBe(
      `the payment server ${server.url} is unreachable: results arrive by LAN only; check this PC's internet connection, then the server`,
    );
    const cancel = await http<{ error: { code: string; message: string } }>(
      api.url,
      'POST',
      '/api/orders/0003/cancel',
    );
    expect(cancel.status).toBe(503);
    expect(cancel.body.error.code).toBe('cancel_unconfirmed');
    expect(cancel.body.error.message).toContain(
      'order 0003 is being paid on T1 and the payment server cannot confirm the cancel',
    );
    expect(cancel.body.error.message).toContain(
      'nothing was changed and the payment decides the order; try the cancel again in a moment',
    );
    expect((await api.order('0003')).status).toBe('paying');
  });
});
