/**
 * Dispatch and restart, in one process with real sockets: an order the host sends "to the multicast group"
 * reaches the units that joined it and is paid; an order captured while no unit was there is offered again
 * after the plugin restarts, once a unit is listening.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPluginApp, RunningPlugin } from '../../src/plugin/plugin-app';
import { createServerApp, RunningServer } from '../../src/server/server-app';
import { createTerminalApp, RunningTerminal } from '../../src/terminal/terminal-app';
import { http, pickLanPorts, testCode, waitFor } from '../terminal/support/harness';
import { HookHost, writeHookManifest } from './support/plugin-harness';

jest.setTimeout(60_000);
const SECRET = 'dispatch-test-secret-0123456789';

let tmp: string;
let server: RunningServer;
let host: HookHost;
const open: { close(): Promise<void> }[] = [];

async function admin(path_: string, body: unknown): Promise<Record<string, string>> {
  const r = await http<Record<string, string>>(server.url, 'POST', path_, {
    body,
    headers: { authorization: 'Bearer adm-dispatch' },
  });
  return r.body;
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-plugin-dispatch-'));
  server = await createServerApp({
    port: 0,
    db: { kind: 'sqlite', path: path.join(tmp, 'server.db') },
    adminToken: 'adm-dispatch',
    simSpeed: 50,
    logger: false,
  });
  host = await HookHost.start(SECRET);
});

afterAll(async () => {
  for (const o of open.reverse()) await o.close().catch(() => undefined);
  await server?.close();
  await host?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('plugin dispatch', () => {
  let storeId: string;
  let lan: { unitPort: number; pluginPort: number };
  let manifest: string;
  let plugin: RunningPlugin;
  const code = async (role: string) =>
    (await admin(`/v1/stores/${storeId}/registration-codes`, { role })).code;
  const startPlugin = async (registrationCode?: string) =>
    createPluginApp({
      manifestPath: manifest,
      serverUrl: server.url,
      registrationCode,
      port: 0,
      dataDir: path.join(tmp, 'plugin'),
      lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', multicast: true, ...lan },
      logger: false,
      watchManifest: false,
    });
  const startUnit = async (id: string): Promise<RunningTerminal> =>
    createTerminalApp({
      id,
      serverUrl: server.url,
      registrationCode: await code('terminal'),
      port: 0,
      dataDir: path.join(tmp, id),
      lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', multicast: true, ...lan },
      logger: false,
    });

  beforeAll(async () => {
    storeId = (await admin('/v1/stores', { name: 'Dispatch shop' })).id;
    lan = await pickLanPorts();
    manifest = writeHookManifest(tmp, { id: 'dispatch-hook', callback: host.url, secret: SECRET });
  });

  it('re-offers after a restart an order captured while no unit was listening', async () => {
    plugin = await startPlugin(await code('plugin'));
    const posted = await http<{ status: string }>(plugin.url, 'POST', '/api/orders', {
      body: { orderId: 'R-1', amount: '3.30' },
    });
    expect(posted.status).toBe(202);
    await plugin.close();
    const unit = await startUnit('T1');
    open.push(unit);
    plugin = await startPlugin();
    open.push(plugin);
    await waitFor(
      'R-1 offered again to T1 after the restart',
      async () =>
        (await http<Array<{ orderId: string }>>(unit.url, 'GET', '/api/offers')).body.some(
          (o) => o.orderId === 'R-1',
        ),
      20_000,
      100,
    );
  });

  it('sends an order to the multicast group when the host asks for it, and it is paid', async () => {
    const unit2 = await startUnit('T2');
    open.push(unit2);
    await waitFor('T2 seen by the plugin', async () =>
      (await http<Array<{ id: string }>>(plugin.url, 'GET', '/api/terminals')).body.some(
        (u) => u.id === 'T2',
      ),
    );
    const posted = await http(plugin.url, 'POST', '/api/orders', {
      body: { orderId: 'M-1', amount: '4.40', dispatch: { mode: 'multicast' } },
    });
    expect(posted.status).toBe(202);
    const offer = await waitFor('M-1 on T2', async () =>
      (await http<Array<{ orderId: string; mode: string }>>(unit2.url, 'GET', '/api/offers')).body.find(
        (o) => o.orderId === 'M-1',
      ),
    );
    expect(offer.mode).toBe('multicast');
    expect((await http(unit2.url, 'POST', '/api/offers/M-1/claim')).status).toBe(200);
    const paid = await http<{ status: string }>(unit2.url, 'POST', '/api/offers/M-1/pay', {
      body: { paymentCode: testCode('00') },
    });
    expect(paid.body.status).toBe('succeeded');
    await waitFor(
      'M-1 paid on the plugin',
      async () =>
        (await http<{ status: string }>(plugin.url, 'GET', '/api/orders/M-1')).body.status === 'paid',
    );
  });
});
