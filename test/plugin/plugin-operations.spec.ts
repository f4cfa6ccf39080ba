/**
 * What a support engineer does with a running plugin: the printer is off (the register is still told, the
 * status page says so, the receipt prints when the printer is back), previews and reprints a receipt, and
 * switches manifests, by API and by editing the file: a manifest whose adapter cannot work is refused and
 * the running one kept; a good one takes over.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeEscPos } from '../../src/printer/escpos-decode';
import { FakeTcpPrinter } from '../../src/printer/fake-tcp-printer';
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
  receiptsOf,
  startPluginProc,
  Unit,
  writeFileDropManifest,
  writeHookManifest,
} from './support/plugin-harness';

jest.setTimeout(90_000);
const SECRET = 'operations-test-secret-0123456789';

let tmp: string;
let server: TestServer;
let plugin: ChildProc;
let unit: Unit;
let host: HookHost;
let printer: FakeTcpPrinter;
let printerPort: number;
let api: PluginApi;
let lan: LanPorts;
let hookManifest: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-plugin-ops-'));
  server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
  const storeId = await server.createStore('Bakery');
  lan = await pickLanPorts();
  host = await HookHost.start(SECRET);
  printerPort = await freeTcpPort(); // nothing listens yet: the printer is off
  printer = new FakeTcpPrinter();
  hookManifest = writeHookManifest(tmp, {
    id: 'ops-hook',
    callback: host.url,
    secret: SECRET,
    printer: `tcp://127.0.0.1:${printerPort}`,
  });
  const port = await freeTcpPort();
  plugin = await startPluginProc({
    manifest: hookManifest,
    serverUrl: server.url,
    registrationCode: await server.registrationCode(storeId, 'plugin'),
    port,
    dataDir: path.join(tmp, 'plugin'),
    lan,
    // The shop is in China whatever zone this machine has: receipts show Beijing time.
    extraArgs: ['--time-zone', 'Asia/Shanghai'],
  });
  api = new PluginApi(`http://127.0.0.1:${port}`);
  unit = await Unit.start({ id: 'T1', server, storeId, dataDir: path.join(tmp, 'T1'), lan });
  await api.waitForUnits(['T1']);
});

afterAll(async () => {
  await unit?.close().catch(() => undefined);
  await plugin?.stop();
  await server?.proc.stop();
  await killAllChildren();
  await host?.close();
  await printer?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('a running plugin', () => {
  it('with the printer off: tells the register, says so on the status page, prints when the printer is back', async () => {
    expect((await api.post({ orderId: 'OP-1', amount: '8.80' })).status).toBe(202);
    await unit.claimAndPay('OP-1', testCode('00'));
    await api.waitOrder('OP-1', 'to be paid', (o) => o.status === 'paid');
    // The register was told, although the receipt could not print.
    await waitFor('the callback', () =>
      host.deliveries.some((d) => d.orderId === 'OP-1' && d.status === 'paid' && d.verified),
    );
    const problems = await waitFor('the printer problem on the status page', async () => {
      const p = (await api.status()).problems.join('\n');
      return p.includes(`127.0.0.1:${printerPort}`) && p;
    });
    expect(problems).toMatch(/1 receipt/);
    await printer.listen(printerPort);
    await waitFor('the receipt', () => receiptsOf(printer, 'OP-1').length === 1, 30_000, 100);
    await waitFor(
      'the problem to clear',
      async () => !(await api.status()).problems.join('\n').includes(`127.0.0.1:${printerPort}`),
    );
    expect(receiptsOf(printer, 'OP-1')[0].text).toContain('8.80');
  });

  it('says on its status how long it has run and the memory it holds', async () => {
    const { uptimeSeconds, memoryMB } = (await api.status()).process;
    expect(Number.isInteger(uptimeSeconds) && uptimeSeconds >= 0).toBe(true);
    expect(memoryMB.heapUsed).toBeGreaterThan(1);
    expect(memoryMB.heapTotal).toBeGreaterThanOrEqual(memoryMB.heapUsed);
    expect(memoryMB.rss).toBeGreaterThan(memoryMB.heapTotal);
  });

  it('previews a receipt as text, SVG and ESC/POS, and reprints it on request', async () => {
    const text = await http<string>(api.url, 'GET', '/api/receipts/OP-1?format=text');
    expect(text.status).toBe(200);
    expect(String(text.body)).toContain('OP-1');
    expect(String(text.body)).toContain('8.80');
    // The time is the shop's (Asia/Shanghai, +08:00), not UTC.
    const paidAt = Date.parse((await api.order('OP-1')).payment!.updatedAt);
    const beijing = new Date(paidAt + 8 * 3_600_000).toISOString().slice(0, 16).replace('T', ' ');
    expect(String(text.body)).toContain(beijing);
    expect(String(text.body)).toContain('+08:00');
    expect(String(text.body)).not.toContain('UTC');
    const svg = await fetch(`${api.url}/api/receipts/OP-1?format=svg`);
    expect(svg.headers.get('content-type')).toContain('image/svg+xml');
    expect(await svg.text()).toMatch(/^<svg|<\?xml/);
    const escpos = Buffer.from(
      await (await fetch(`${api.url}/api/receipts/OP-1?format=escpos`)).arrayBuffer(),
    );
    expect(decodeEscPos(escpos, { encoding: 'gb18030' }).text).toContain('OP-1');
    expect((await http(api.url, 'GET', '/api/receipts/NOPE?format=text')).status).toBe(404);
    expect((await http(api.url, 'POST', '/api/receipts/OP-1/reprint')).status).toBe(202);
    await waitFor('the reprint', () => receiptsOf(printer, 'OP-1').length === 2, 15_000, 100);
  });

  it('a switch request without a path names the field and what to send (400 path_required)', async () => {
    for (const body of [{}, { path: 5 }, { path: null }, []]) {
      const r = await http<{ error: { code: string; message: string } }>(api.url, 'POST', '/api/manifest', {
        body,
      });
      expect({ body, status: r.status, code: r.body.error?.code }).toEqual({
        body,
        status: 400,
        code: 'path_required',
      });
      expect(r.body.error.message).toBe(
        'send {"path": "<id>.yaml"}: a manifest in the folder of the plugin --manifest file',
      );
    }
    expect((await http<{ manifest: string }>(api.url, 'GET', '/api/status')).body.manifest).toBe('ops-hook');
  });

  it('refuses a manifest whose adapter cannot work and keeps the running one', async () => {
    const broken = writeFileDropManifest(tmp, {
      id: 'ops-missing-inbox',
      inbox: path.join(tmp, 'no-such-inbox'),
      outbox: path.join(tmp, 'no-such-outbox'),
    });
    const r = await http<{ error: { code: string; message: string } }>(api.url, 'POST', '/api/manifest', {
      body: { path: broken },
    });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/kept ops-hook/);
    expect(r.body.error.message).toMatch(/no-such-inbox/);
    const status = (await http<{ manifest: string; problems: string[] }>(api.url, 'GET', '/api/status')).body;
    expect(status.manifest).toBe('ops-hook');
    expect(status.problems.join('\n')).toMatch(/was not applied, still running ops-hook/);
    // Still taking orders the old way.
    expect((await api.post({ orderId: 'OP-2', amount: '1.00' })).status).toBe(202);
  });

  it('refuses a broken edit of the running manifest file, then takes a good manifest by API', async () => {
    writeFileSync(hookManifest, 'id: ops-hook\nadapter: fax\n');
    await waitFor('the broken edit to be refused', async () =>
      (await api.status()).problems.some(
        (p) => p.includes('adapter') && p.includes('still running ops-hook'),
      ),
    );
    expect((await api.post({ orderId: 'OP-3', amount: '1.00' })).status).toBe(202);

    const inbox = path.join(tmp, 'inbox');
    const outbox = path.join(tmp, 'outbox');
    mkdirSync(inbox);
    mkdirSync(outbox);
    const good = writeFileDropManifest(tmp, { id: 'ops-files', inbox, outbox });
    const r = await http<{ manifest: string; adapter: string }>(api.url, 'POST', '/api/manifest', {
      body: { path: good },
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ manifest: 'ops-files', adapter: 'file-drop' });
    expect(
      (await http<{ manifest: string; problems: string[] }>(api.url, 'GET', '/api/status')).body.manifest,
    ).toBe('ops-files');
    // The new adapter takes orders: a dropped file is offered.
    const iconv = await import('iconv-lite');
    writeFileSync(
      path.join(inbox, 'f1.json'),
      iconv.encode(JSON.stringify({ 单号: 'OP-F1', 金额: '2.00' }), 'gb18030'),
    );
    await api.waitOrder('OP-F1', 'to be offered', (o) => o.status === 'offered');
    // HTTP orders are now refused, with the reason.
    const refused = await api.post({ orderId: 'OP-4', amount: '1.00' });
    expect(refused.status).toBe(409);
  });

  it('a printer tap whose printer is off: the receipt is still offered, and the capture card shows the counts and the problem', async () => {
    const tapPort = await freeTcpPort();
    const deadPrinter = await freeTcpPort(); // nothing listens: the real printer is off
    const tap = path.join(tmp, 'ops-tap.yaml');
    writeFileSync(
      tap,
      [
        'id: ops-tap',
        'name: 收银机小票打印机 (tap)',
        'adapter: printer-tap',
        'register: R1',
        `options: { listen: "tcp://127.0.0.1:${tapPort}", forward: "tcp://127.0.0.1:${deadPrinter}", jobIdleMs: 200 }`,
        'parse: { encoding: gb18030, currency: CNY }',
        'writeBack: {}',
        'dispatch: { mode: broadcast }',
        '',
      ].join('\n'),
    );
    const r = await http(api.url, 'POST', '/api/manifest', { body: { path: tap } });
    expect(r.status).toBe(200);
    const iconv = await import('iconv-lite');
    const print = async (text: string) => {
      const socket = net.connect({ host: '127.0.0.1', port: tapPort });
      await new Promise((res) => socket.once('connect', res));
      socket.end(
        Buffer.concat([
          Buffer.from([0x1b, 0x40]),
          iconv.encode(text, 'gb18030'),
          Buffer.from([0x1d, 0x56, 0x00]),
        ]),
      );
      await new Promise((res) => socket.once('close', res));
    };
    await print('面包店\n单号: TAP-1\n合计: 18.50\n');
    await print('面包店\n今日特价\n');
    const order = await api.waitOrder('TAP-1', 'to be offered', (o) => o.status === 'offered');
    expect(order.amount).toEqual({ value: 1850, currency: 'CNY' });

    await waitFor(
      'the unreadable receipt to be listed',
      async () => (await api.status()).rejected.length > 0,
    );
    const status = await api.status();
    expect(status.adapters[0]).toMatchObject({
      adapter: 'printer-tap',
      manifest: 'ops-tap',
      capturing: true,
      // One outage of the printer, reported once however many jobs met it (docs/adapters/printer-tap.md).
      stats: expect.objectContaining({ connections: 2, jobs: 2, orders: 1, rejected: 1, printerOff: 1 }),
    });
    // The file-drop adapter switched away from stays for its orders' write-backs, capturing nothing.
    expect(status.adapters.find((a) => a.adapter === 'file-drop')).toMatchObject({ capturing: false });
    expect(status.adapterProblems).toContainEqual(
      expect.objectContaining({ adapter: 'printer-tap', code: 'printer_tap.printer_off' }),
    );
    expect(status.problems.join('\n')).toMatch(
      new RegExp(`printer-tap: printer tcp://127\\.0\\.0\\.1:${deadPrinter} is off or unreachable`),
    );
    expect(status.rejected[0]).toMatchObject({
      subject: expect.stringMatching(/^tcp client 127\.0\.0\.1:\d+ job 1$/),
    });
  });
});
