/**
 * A plugin stops cleanly while someone is looking at it: the shop's browser keeps the status page's live
 * event stream (SSE) open for as long as the page is open, and a plugin that waited for that stream to end
 * would never stop (a Windows service stop, a restart after a manifest change by the reseller).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPluginApp } from '../../src/plugin/plugin-app';
import { createServerApp, RunningServer } from '../../src/server/server-app';
import { http, pickLanPorts } from '../terminal/support/harness';
import { HookHost, writeHookManifest } from './support/plugin-harness';

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

it('closes while a status page holds its live event stream open, and the stream is ended, not cut', async () => {
  const admin = async (p: string, body: unknown) =>
    (
      await http<Record<string, string>>(server.url, 'POST', p, {
        body,
        headers: { authorization: 'Bearer adm-shutdown' },
      })
    ).body;
  const storeId = (await admin('/v1/stores', { name: 'Shutdown' })).id;
  const code = (await admin(`/v1/stores/${storeId}/registration-codes`, { role: 'plugin' })).code;
  const plugin = await createPluginApp({
    manifestPath: writeHookManifest(tmp, { id: 'shutdown-hook', callback: host.url, secret: SECRET }),
    serverUrl: server.url,
    registrationCode: code,
    port: 0,
    dataDir: path.join(tmp, 'plugin'),
    lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', ...(await pickLanPorts()) },
    logger: false,
    watchManifest: false,
  });
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
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    plugin.close().then(() => 'closed'),
    new Promise((r) => (timer = setTimeout(() => r('still closing after 10 s'), 10_000))),
  ]);
  clearTimeout(timer);
  expect(outcome).toBe('closed');
  const stream = await ended;
  expect(stream.status).toBe(200);
  expect(stream.body).toContain(': connected');
});
