/**
 * The plugin's and the unit's local APIs against a web page the cashier happens to open, and against a page
 * that points a DNS name of its own at the register PC (rebinding): a real plugin process and a real unit,
 * over real HTTP. The register's software and support tools (no Origin) and the apps' own pages (same
 * origin) still work; nothing else may change anything, and the plugin loads manifests only from its own
 * folder without ever showing another file's contents.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ChildProc,
  freeTcpPort,
  killAllChildren,
  pickLanPorts,
  TestServer,
} from '../terminal/support/harness';
import { HookHost, PluginApi, startPluginProc, Unit, writeHookManifest } from './support/plugin-harness';

jest.setTimeout(90_000);
const SECRET = 'guard-test-secret-0123456789abcdef';

let tmp: string;
let server: TestServer;
let plugin: ChildProc;
let unit: Unit;
let host: HookHost;
let api: PluginApi;
let pluginUrl: string;

/** A raw request, so Host, Origin and Content-Type are exactly what an attacking page would send. */
function raw(
  url: string,
  method: string,
  path_: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method,
        path: path_,
        headers: { ...headers, ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-guard-'));
  server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
  const storeId = await server.createStore('Guarded tea house');
  const lan = await pickLanPorts();
  host = await HookHost.start(SECRET);
  const manifests = path.join(tmp, 'manifests');
  mkdirSync(manifests);
  const manifest = writeHookManifest(manifests, { id: 'guard-hook', callback: host.url, secret: SECRET });
  const port = await freeTcpPort();
  plugin = await startPluginProc({
    manifest,
    serverUrl: server.url,
    registrationCode: await server.registrationCode(storeId, 'plugin'),
    port,
    dataDir: path.join(tmp, 'plugin'),
    lan,
  });
  pluginUrl = `http://127.0.0.1:${port}`;
  api = new PluginApi(pluginUrl);
  unit = await Unit.start({ id: 'T1', server, storeId, dataDir: path.join(tmp, 'T1'), lan });
  await api.waitForUnits(['T1']);
  expect((await api.post({ orderId: 'G-1', amount: '3.00' })).status).toBe(202);
  await unit.waitOffer('G-1');
});

afterAll(async () => {
  await unit?.close().catch(() => undefined);
  await plugin?.stop();
  await server?.proc.stop();
  await killAllChildren();
  await host?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('who may call the local APIs', () => {
  it('a web page on another origin cannot cancel an order or claim an offer (403), nor post a form (403/415)', async () => {
    const hostHeader = new URL(pluginUrl).host;
    const evil = { host: hostHeader, origin: 'http://evil.example' };
    const cancel = await raw(pluginUrl, 'POST', '/api/orders/G-1/cancel', evil);
    expect(cancel.status).toBe(403);
    expect(JSON.parse(cancel.text).error.message).toContain('http://evil.example');
    const form = await raw(
      pluginUrl,
      'POST',
      '/api/orders',
      { ...evil, 'content-type': 'application/x-www-form-urlencoded' },
      'orderId=EVIL-1&amount=1.00',
    );
    expect(form.status).toBe(403);
    // Even without an Origin (a plain HTML form can be made to send none), a form body is refused.
    const noOrigin = await raw(
      pluginUrl,
      'POST',
      '/api/orders',
      { host: hostHeader, 'content-type': 'application/x-www-form-urlencoded' },
      'orderId=EVIL-2&amount=1.00',
    );
    expect(noOrigin.status).toBe(415);
    const textPlain = await raw(
      pluginUrl,
      'POST',
      '/api/orders',
      { host: hostHeader, 'content-type': 'text/plain' },
      '{"orderId":"EVIL-3","amount":"1.00"}',
    );
    expect(textPlain.status).toBe(415);
    const crossSite = await raw(pluginUrl, 'POST', '/api/orders/G-1/cancel', {
      host: hostHeader,
      'sec-fetch-site': 'cross-site',
    });
    expect(crossSite.status).toBe(403);

    const unitHost = new URL(unit.app.url).host;
    const claim = await raw(unit.app.url, 'POST', '/api/offers/G-1/claim', {
      host: unitHost,
      origin: 'http://evil.example',
    });
    expect(claim.status).toBe(403);
    const pay = await raw(
      unit.app.url,
      'POST',
      '/api/offers/G-1/pay',
      { host: unitHost, 'content-type': 'application/x-www-form-urlencoded' },
      'paymentCode=280000000000000000',
    );
    expect(pay.status).toBe(415);

    // Nothing happened: the order is still offered, no EVIL order exists, and the unit still holds the offer.
    expect((await api.order('G-1')).status).toBe('offered');
    expect(
      (await raw(pluginUrl, 'GET', '/api/orders/EVIL-1', { host: new URL(pluginUrl).host })).status,
    ).toBe(404);
    expect((await unit.offersOf('G-1'))[0].status).toBe('open');
  });

  it('a rebinding page (a DNS name of its own pointing here) can read nothing (421)', async () => {
    for (const url of [pluginUrl, unit.app.url]) {
      const r = await raw(url, 'GET', '/api/orders', { host: `rebind.evil.example:${new URL(url).port}` });
      expect({ url, status: r.status }).toEqual({ url, status: 421 });
      expect(r.text).not.toContain('G-1');
    }
  });

  it('the register software and support tools (no Origin), and the own page (same origin), still work', async () => {
    const hostHeader = new URL(pluginUrl).host;
    const own = await raw(
      pluginUrl,
      'POST',
      '/api/orders',
      { host: hostHeader, origin: `http://${hostHeader}`, 'content-type': 'application/json' },
      JSON.stringify({ orderId: 'G-2', amount: '2.00' }),
    );
    expect(own.status).toBe(202);
    const tool = await raw(
      pluginUrl,
      'POST',
      '/api/orders',
      { host: `localhost:${new URL(pluginUrl).port}`, 'content-type': 'application/json; charset=utf-8' },
      JSON.stringify({ orderId: 'G-3', amount: '2.00' }),
    );
    expect(tool.status).toBe(202);
    const cancel = await raw(pluginUrl, 'POST', '/api/orders/G-3/cancel', { host: hostHeader });
    expect(cancel.status).toBe(200);
  });

  it('switches manifests only from its own folder, and never shows another file', async () => {
    writeFileSync(path.join(tmp, 'outside.yaml'), 'id: outside\n');
    for (const p of [
      '/etc/passwd',
      '../outside.yaml',
      path.join(tmp, 'outside.yaml'),
      path.join(tmp, 'plugin', 'lan-key.json'),
    ]) {
      const r = await raw(
        pluginUrl,
        'POST',
        '/api/manifest',
        { host: new URL(pluginUrl).host, 'content-type': 'application/json' },
        JSON.stringify({ path: p }),
      );
      expect({ p, status: r.status }).toEqual({ p, status: 403 });
      expect(r.text).not.toMatch(/root:|"key"|outside\n/);
    }
    const missing = await raw(
      pluginUrl,
      'POST',
      '/api/manifest',
      { host: new URL(pluginUrl).host, 'content-type': 'application/json' },
      JSON.stringify({ path: 'nope' }),
    );
    expect(missing.status).toBe(404);
    const status = await api.status();
    expect(JSON.stringify(status)).not.toMatch(/root:x:0/);
  });
});
