/**
 * The plugin end to end, as a cashier, a reseller and a support engineer check it: a real payment server
 * process (SQLite, fast simulator), the plugin as a real `payconnect plugin` process with an http-hook
 * manifest, mobile POS units T1 and T2 (the terminal app in-process, real UDP on loopback), the register
 * software's callback listener (checks every delivery's signature) and a raw TCP receipt printer, both in
 * this test. Checked through the plugin's and the units' local APIs, the callback deliveries and the bytes
 * the printer received, decoded back to text.
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LanEndpoint, LanKeyring, lanKeyFromJson, UdpLanTransport } from '../../src/lan';
import { generateServerKeyPair, signPaymentResult } from '../../src/protocol/payment-signature';
import { Payment } from '../../src/protocol/states';
import { FakeTcpPrinter } from '../../src/printer/fake-tcp-printer';
import {
  ChildProc,
  expectStatus,
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
  receiptsOf,
  startPluginProc,
  Unit,
  writeHookManifest,
} from './support/plugin-harness';

jest.setTimeout(60_000);

const SECRET = 'e2e-callback-secret-0123456789';

let tmp: string;
let server: TestServer;
let storeId: string;
let lan: LanPorts;
let host: HookHost;
let printer: FakeTcpPrinter;
let manifest: string;
let pluginPort: number;
let pluginData: string;
let plugin: ChildProc;
let api: PluginApi;
const units: Record<string, Unit> = {};

/** Open connections to the register host's callback listener. */
function hostConnections(): Promise<number> {
  const listener = (host as unknown as { server: Server }).server;
  return new Promise((resolve, reject) => listener.getConnections((e, n) => (e ? reject(e) : resolve(n))));
}

/**
 * Makes the plugin's work loop run a pass and waits until it has: a reprint of `orderId` (a paid order)
 * is work that a pass does after every write-back then due, and its receipt arrives at the printer.
 */
async function workLoopPass(orderId: string): Promise<void> {
  const before = receiptsOf(printer, orderId).length;
  await expectStatus(
    202,
    http(api.url, 'POST', `/api/receipts/${encodeURIComponent(orderId)}/reprint`),
    `reprint ${orderId}`,
  );
  await waitFor(`the reprint of ${orderId}`, () => receiptsOf(printer, orderId).length > before);
}

const events = (history: { event: string }[] | undefined, event: string) =>
  (history ?? []).filter((h) => h.event === event);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-plugin-e2e-'));
  server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
  storeId = await server.createStore('Tea house');
  lan = await pickLanPorts();
  host = await HookHost.start(SECRET);
  printer = new FakeTcpPrinter();
  await printer.listen(0);
  manifest = writeHookManifest(tmp, {
    id: 'e2e-hook',
    callback: host.url,
    secret: SECRET,
    printer: printer.target,
  });
  pluginPort = await freeTcpPort();
  pluginData = path.join(tmp, 'plugin');
  plugin = await startPluginProc({
    manifest,
    serverUrl: server.url,
    registrationCode: await server.registrationCode(storeId, 'plugin'),
    port: pluginPort,
    dataDir: pluginData,
    lan,
  });
  api = new PluginApi(`http://127.0.0.1:${pluginPort}`);
  for (const id of ['T1', 'T2'])
    units[id] = await Unit.start({ id, server, storeId, dataDir: path.join(tmp, id), lan });
  await api.waitForUnits(['T1', 'T2']);
});

afterAll(async () => {
  for (const u of Object.values(units)) await u.close().catch(() => undefined);
  await plugin?.stop();
  await server?.proc.stop();
  await killAllChildren();
  await host?.close();
  await printer?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the plugin with a real server, units, callback host and printer', () => {
  it('offers an HTTP order to both units, lets the first claim win, and tells the host once, signed', async () => {
    const posted = await api.post({ orderId: 'E-1', amount: '12.50' });
    expect(posted.status).toBe(202);
    expect(posted.body).toMatchObject({ orderId: 'E-1', amount: { value: 1250, currency: 'CNY' } });

    // Broadcast: both units hold the offer, open.
    for (const id of ['T1', 'T2']) expect(await units[id].waitOffer('E-1')).toMatchObject({ status: 'open' });
    await api.waitOrder('E-1', 'to be offered', (o) => o.status === 'offered');

    // T2's clerk is first; T1's is told who has it.
    expect((await units.T2.claim('E-1')).status).toBe(200);
    const lost = await units.T1.claim('E-1');
    expect(lost.status).toBe(409);
    expect(lost.body.error).toEqual({ code: 'taken', message: 'taken by T2' });

    const paid = await units.T2.pay('E-1', testCode('00'));
    expect(paid.status).toBe(200);
    expect(paid.body).toMatchObject({ orderId: 'E-1', status: 'succeeded' });

    const order = await api.waitOrder('E-1', 'to be paid', (o) => o.status === 'paid');
    expect(order).toMatchObject({
      status: 'paid',
      terminal: 'T2',
      amount: { value: 1250, currency: 'CNY' },
      payment: { id: paid.body.paymentId, status: 'succeeded' },
    });

    // The host hears about it exactly once, signed with the manifest's secret, and it says paid.
    await waitFor('the paid callback for E-1', () => host.of('E-1').length > 0);
    // Every copy of the result has reached the plugin (the push, and T2's LAN relay: T2 counts it relayed
    // once the plugin acknowledged it, which it does after processing it), and the write-back is
    // journaled done, once: nothing is left that could tell the host again. (Later passes of the work
    // loop are covered at the end of the restart test, which finds E-1 still told once.)
    await waitFor('T2 to have relayed the result of E-1 to the plugin', async () => {
      const p = await expectStatus<{ relayedToRegister: boolean }>(
        200,
        http(units.T2.app.url, 'GET', '/api/payments/E-1'),
        'the payment of E-1 on T2',
      );
      return p.relayedToRegister;
    });
    const written = await api.waitOrder('E-1', 'to be written back', (o) => o.writeBack === 'done');
    expect(events(written.history, 'written back')).toHaveLength(1);
    const deliveries = host.of('E-1');
    expect(deliveries).toHaveLength(1);
    const [d] = deliveries;
    expect(d.verified).toBe(true);
    expect(d.headers['x-payconnect-delivery']).toBe('E-1:paid');
    expect(d.body).toMatchObject({
      orderId: 'E-1',
      registerId: 'R1',
      status: 'paid',
      amount: { value: 1250, currency: 'CNY' },
      paymentId: paid.body.paymentId,
    });

    // The receipt printer got the receipt: the order number and the amount, in GB18030.
    await waitFor('the receipt of E-1', () => receiptsOf(printer, 'E-1').length > 0);
    const receipts = receiptsOf(printer, 'E-1');
    expect(receipts).toHaveLength(1);
    expect(receipts[0].text).toContain('E-1');
    expect(receipts[0].text).toContain('12.50');
    expect(receipts[0].cuts).toBe(1);

    // The register posts the same order again (a retry after a lost answer): the same order, no new offer.
    const again = await api.post({ orderId: 'E-1', amount: '12.50' });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ orderId: 'E-1', status: 'paid', createdAt: order.createdAt });
    // The plugin journals a capture, and an offer before it sends one, before it answers the post: the
    // history read after the answer shows any new offer.
    const history = (await api.order('E-1')).history ?? [];
    expect(events(history, 'captured')).toHaveLength(1);
    expect(events(history, 'offered')).toHaveLength(1);
    for (const id of ['T1', 'T2']) expect(await units[id].offersOf('E-1')).toHaveLength(1);
    expect(host.of('E-1')).toHaveLength(1);
  });

  it('takes a Chinese order number over the HTTP hook through to the signed callback and the receipt', async () => {
    expect((await api.post({ orderId: '订单-0001', amount: '8.80' })).status).toBe(202);
    await units.T1.waitOffer('订单-0001');
    const paid = await units.T1.claimAndPay('订单-0001', testCode('00'));
    expect(paid.status).toBe('succeeded');
    await waitFor('the paid callback for 订单-0001', () => host.of('订单-0001').length > 0);
    const [d] = host.of('订单-0001');
    expect(d.verified).toBe(true);
    expect(d.headers['x-payconnect-delivery']).toBe(`${encodeURIComponent('订单-0001')}:paid`);
    expect(d.body).toMatchObject({
      orderId: '订单-0001',
      status: 'paid',
      amount: { value: 880, currency: 'CNY' },
    });
    await waitFor('the receipt of 订单-0001', () => receiptsOf(printer, '订单-0001').length > 0);
    expect(receiptsOf(printer, '订单-0001')[0].text).toContain('订单-0001');
  });

  it('ignores a "paid" sealed with the store LAN key but not signed by the server', async () => {
    await api.post({ orderId: 'F-1', amount: '12.50' });
    await units.T1.waitOffer('F-1');
    await api.waitOrder('F-1', 'to be offered', (o) => o.status === 'offered');
    const before = (await api.status()).counters.forgedResults;

    // A device holding the store key (read from the plugin's data folder) fakes a succeeded payment,
    // once signed with a key of its own and once with a made-up signature.
    const key = lanKeyFromJson(JSON.parse(readFileSync(path.join(pluginData, 'lan-key.json'), 'utf8')));
    const transport = await UdpLanTransport.open({
      bindAddress: '127.0.0.1',
      port: 0,
      interfaceAddress: '127.0.0.1',
    });
    const attacker = new LanEndpoint({ deviceId: 'T9', keyring: new LanKeyring(key), transport });
    try {
      const now = new Date().toISOString();
      const fake: Payment = {
        id: 'pay_forged_1',
        orderId: 'F-1',
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
        status: 'succeeded',
        method: { type: 'wallet_code', brand: 'alipay' },
        createdAt: now,
        updatedAt: now,
      } as Payment;
      const target = {
        kind: 'unicast' as const,
        to: (await api.status()).pluginId,
        address: '127.0.0.1',
        port: lan.pluginPort,
      };
      const ownKey = generateServerKeyPair();
      // Acknowledged: the plugin opened the datagram (the LAN layer let it through) and looked at it.
      const r1 = await attacker.send(
        'result',
        {
          payment: fake as unknown as Record<string, unknown>,
          signature: signPaymentResult(fake, 'store_attacker', ownKey.privateKey),
        },
        target,
        { deadlineMs: 5000 },
      );
      expect(r1.ackedBy).toContain(target.to);
      await attacker.send(
        'result',
        {
          payment: { ...fake, id: 'pay_forged_2' } as unknown as Record<string, unknown>,
          signature: Buffer.alloc(64, 7).toString('base64'),
        },
        target,
        { deadlineMs: 5000 },
      );
    } finally {
      await attacker.close();
    }

    const status = await waitFor('the forged results to be counted', async () => {
      const s = await api.status();
      return s.counters.forgedResults >= before + 2 && s;
    });
    expect(status.problems.join('\n')).toMatch(/result\(s\) without a valid server signature were ignored/);
    // Both forgeries were acknowledged, so the plugin had finished with them (it acks a message once its
    // handler is done) and counted them: nothing of them was kept for later.
    const order = await api.order('F-1');
    expect(order.status).toBe('offered');
    expect(order.payment).toBeNull();
    expect(host.of('F-1')).toHaveLength(0);
    expect(receiptsOf(printer, 'F-1')).toHaveLength(0);
  });

  it('finishes a write-back that was due when the plugin was killed, once, without a second receipt', async () => {
    host.answer = 503; // the register software is busy: the write-back is due but not done
    await api.post({ orderId: 'K-1', amount: '12.50' });
    const paid = await units.T1.claimAndPay('K-1', testCode('00'));
    expect(paid.status).toBe('succeeded');

    const due = await api.waitOrder(
      'K-1',
      'to be paid with the write-back due after a failed attempt',
      (o) => o.status === 'paid' && o.writeBack === 'due' && !!o.writeBackError,
    );
    expect(due.writeBackError).toMatch(/503/);
    expect(host.of('K-1').length).toBeGreaterThan(0);
    expect(host.accepted('K-1')).toHaveLength(0);
    // The receipt is out (and no longer queued) before the crash.
    await waitFor('the receipt of K-1', () => receiptsOf(printer, 'K-1').length > 0);
    await waitFor('the print queue to be empty', async () => (await api.status()).receipts.jobs.length === 0);

    await plugin.kill9();
    // A request the dead plugin had already sent is answered 503 before the host recovers: the host reads
    // the whole of a connection before its close, and the OS closed the dead plugin's connections.
    await waitFor(
      'the dead plugin’s connections to the host to close',
      async () => (await hostConnections()) === 0,
    );
    host.answer = 200;
    plugin = await startPluginProc({
      manifest,
      serverUrl: server.url,
      port: pluginPort,
      dataDir: pluginData, // same folder, no registration code: it is registered already
      lan,
    });

    await waitFor('the host to accept K-1 after the restart', () => host.accepted('K-1').length > 0, 15_000);
    await api.waitOrder('K-1', 'to be written back', (o) => o.writeBack === 'done');
    // Two passes of the work loop after that, each forced and awaited with a reprint of another order:
    // the second starts after the first has printed, so it runs whole after K-1 was written back. A pass
    // delivers every write-back then due before it prints, and journals each delivery and each receipt.
    await workLoopPass('订单-0001');
    await workLoopPass('订单-0001');
    const k1 = await api.order('K-1');
    expect(events(k1.history, 'written back')).toHaveLength(1);
    expect(events(k1.history, 'receipt queued')).toHaveLength(1);
    const accepted = host.accepted('K-1');
    expect(accepted).toHaveLength(1);
    expect(accepted[0].verified).toBe(true);
    expect(accepted[0].body).toMatchObject({ orderId: 'K-1', status: 'paid', paymentId: paid.paymentId });
    // Nothing else was told again after the restart either.
    expect(host.accepted('E-1')).toHaveLength(1);

    // One receipt: one cut across every byte the printer got for K-1.
    const receipts = receiptsOf(printer, 'K-1');
    expect(receipts.reduce((n, r) => n + r.cuts, 0)).toBe(1);
    expect(receiptsOf(printer, 'E-1')).toHaveLength(1);
    expect((await api.order('K-1')).status).toBe('paid');
  });
});
