/**
 * A plugin stops cleanly while someone is looking at it: the shop's browser keeps the status page's live
 * event stream (SSE) open for as long as the page is open, and a plugin that waited for that stream to end
 * would never stop (a Windows service stop, a restart after a manifest change by the reseller). Nor does a
 * register program's request that never finishes hold it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEVICE_CLOSE_GRACE_MS } from '../../src/device/device-http';
import { createPluginApp } from '../../src/plugin/plugin-app';
import { createServerApp, RunningServer } from '../../src/server/server-app';
import { http, pickLanPorts } from '../terminal/support/harness';
import { closedWithin, HookHost, writeHookManifest } from './support/plugin-harness';

jest.setTimeout(30_000);
const SECRET = 'shutdown-test-secret-0123456789';

let tmp: string;
let server: RunningServer;
let host: HookHost;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-plugin-shutdown-'));
  server = await createServerApp({
    port: 0,
    db: { kind: 'sqlite', path: path.join(tmp, 'server.db') },
    adminToken: 'adm-shutdown',
    simSpeed: 50,
    logger: false,
  });
  host = await HookHost.start(SECRET);
});

afterAll(async () => {
  await server?.close();
  await host?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A registered plugin of a new store, on the http-hook manifest, in its own folder under tmp. */
async function startShopPlugin(name: string) {
  const admin = async (p: string, body: unknown) =>
    (
      await http<Record<string, string>>(server.url, 'POST', p, {
        body,
        headers: { authorization: 'Bearer adm-shutdown' },
      })
    ).body;
  const storeId = (await admin('/v1/stores', { name })).id;
  const code = (await admin(`/v1/stores/${storeId}/registration-codes`, { role: 'plugin' })).code;
  const dir = mkdtempSync(path.join(tmp, 'shop-'));
  return createPluginApp({
    manifestPath: writeHookManifest(dir, { id: 'shutdown-hook', callback: host.url, secret: SECRET }),
    serverUrl: server.url,
    registrationCode: code,
    port: 0,
    dataDir: path.join(dir, 'plugin'),
    lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', ...(await pickLanPorts()) },
    logger: false,
    watchManifest: false,
  });
}

it('closes while a status page holds its live event stream open, and the stream is ended, not cut', async () => {
  const plugin = await startShopPlugin('Shutdown');
  // The status page's stream, as a browser holds it.
  let connected!: () => void;
  const isConnected = new Promise<void>((r) => (connected = r));
  const ended = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${plugin.url}/api/events`, { headers: { accept: 'text/event-stream' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        connected(); // the plugin writes ": connected" at once
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  await isConnected;
  expect(await closedWithin(plugin.close(), 10_000)).toBe('closed');
  const stream = await ended;
  expect(stream.status).toBe(200);
  expect(stream.body).toContain(': connected');
});

it('closes while a register program holds a request half-sent: the connection is cut after the grace', async () => {
  const plugin = await startShopPlugin('Shutdown 2');
  // POST /api/orders announcing 200 bytes of body and sending 20: the request stays open at the plugin.
  const { port } = new URL(plugin.url);
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const cut = new Promise<void>((r) => socket.once('close', () => r()));
  socket.write(
    'POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"orderId":"收银-77",',
  );
  await sleep(200); // the plugin has the headers and waits for the body
  const started = Date.now();
  const closing = plugin.close();
  const outcome = await closedWithin(closing, 10_000);
  const tookMs = Date.now() - started;
  // Whether the plugin closed the half-sent request's connection (rather than leaving it open).
  const cutByPlugin = await Promise.race([cut.then(() => true), sleep(1000).then(() => false)]);
  socket.destroy(); // frees a plugin that waited on it, so a failure ends here instead of hanging the run
  await closing;
  expect({ outcome, cutByPlugin }).toEqual({ outcome: 'closed', cutByPlugin: true });
  // Not before the grace: a request that was about to finish had its chance.
  expect(tookMs).toBeGreaterThanOrEqual(DEVICE_CLOSE_GRACE_MS - 100);
});
