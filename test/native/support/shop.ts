/**
 * A shop for the hook library's tests: a payment server process, the payconnect plugin process with a
 * native-hook manifest listening on a free loopback port, and mobile POS unit T1 (in-process) that the
 * tests make claim and pay orders. `config` is the hook library's pc_open config for this plugin.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LanPorts, PluginApi, startPluginProc, Unit } from '../../plugin/support/plugin-harness';
import {
  ChildProc,
  freeTcpPort,
  killAllChildren,
  pickLanPorts,
  TestServer,
} from '../../terminal/support/harness';

export interface HookShop {
  tmp: string;
  server: TestServer;
  lan: LanPorts;
  hookPort: number;
  pluginData: string;
  plugin: ChildProc;
  api: PluginApi;
  unit: Unit;
  /** pc_open's config: the plugin's address and data folder. */
  config: string;
  close(): Promise<void>;
}

/** The register calling the hook library on `hookPort`: native-hook-test.yaml in `dir`; returns its path. */
export function writeNativeHookManifest(dir: string, hookPort: number): string {
  const manifest = path.join(dir, 'native-hook-test.yaml');
  writeFileSync(
    manifest,
    [
      'id: native-hook-test',
      'name: Register calling the payconnect hook library',
      'adapter: native-hook',
      'register: R1',
      `options: { listen: "tcp://127.0.0.1:${hookPort}" }`,
      'parse: { currency: CNY }',
      'writeBack: {}',
      'dispatch: { mode: broadcast }',
      '',
    ].join('\n'),
  );
  return manifest;
}

export async function startHookShop(name: string): Promise<HookShop> {
  const tmp = mkdtempSync(path.join(tmpdir(), `payconnect-${name}-`));
  const server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
  const storeId = await server.createStore('Noodle bar');
  const lan = await pickLanPorts();
  const hookPort = await freeTcpPort();
  const manifest = writeNativeHookManifest(tmp, hookPort);
  const pluginPort = await freeTcpPort();
  const pluginData = path.join(tmp, 'plugin');
  const plugin = await startPluginProc({
    manifest,
    serverUrl: server.url,
    registrationCode: await server.registrationCode(storeId, 'plugin'),
    port: pluginPort,
    dataDir: pluginData,
    lan,
  });
  const api = new PluginApi(`http://127.0.0.1:${pluginPort}`);
  const unit = await Unit.start({ id: 'T1', server, storeId, dataDir: path.join(tmp, 'T1'), lan });
  await api.waitForUnits(['T1']);
  const config = JSON.stringify({
    address: `127.0.0.1:${hookPort}`,
    dataDir: pluginData,
    connectTimeoutMs: 2000,
  });
  return {
    tmp,
    server,
    lan,
    hookPort,
    pluginData,
    plugin,
    api,
    unit,
    config,
    async close() {
      await unit.close().catch(() => undefined);
      await plugin.stop();
      await server.proc.stop();
      await killAllChildren();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
