/**
 * Builds and starts the plugin beside the register: opens its journal, its registration (once; kept in
 * the data folder) and its LAN socket, then runs PluginModule as a Nest hybrid application — the local
 * HTTP API plus the LAN as a custom transport (ServerLan) whose handlers are PluginLanController's.
 */
import 'reflect-metadata';
import { resolve } from 'node:path';
import { loadManifestFile, Manifest } from '../adapters/manifest';
import { DeviceErrorFilter } from '../device/device-errors';
import { closeDeviceApp, DeviceRegistration, startDeviceApp } from '../device/device-http';
import { readDeviceFile, readLanKeys, saveRegistration } from '../device/device-files';
import { ServerClient } from '../device/server-client';
import { SetupError } from '../device/setup-error';
import { LanEndpoint, LanKeyring, lanKeyFromJson, UdpLanTransport } from '../lan';
import { DEFAULT_MULTICAST_GROUP, DEFAULT_PLUGIN_PORT, DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { SystemClock } from '../protocol/clock';
import { machineTimeZone } from '../protocol/local-time';
import { PluginJournal } from './plugin-journal';
import { AdapterHost } from './adapter-host';
import { PluginModule, PluginParts } from './plugin.module';
import { PluginService } from './plugin.service';

export interface PluginConfig {
  manifestPath: string;
  /**
   * More manifests whose adapters run beside the main one (e.g. the demo takes orders over HTTP and from
   * files). They must name the same register and another adapter kind; they are not switched at run time.
   */
  alsoManifests?: string[];
  /** The plugin's device id; default `plugin-<register>`. */
  id?: string;
  serverUrl: string;
  registrationCode?: string;
  port: number;
  host?: string;
  dataDir: string;
  lan: {
    interfaceAddress: string;
    broadcastAddress: string;
    unitPort?: number;
    pluginPort?: number;
    multicast?: boolean;
    /** Extra host names the local HTTP API answers to (a DNS name the shop gives this PC). */
    allowedHosts?: string[];
  };
  storeName?: string;
  /** The shop's IANA time zone for receipts and the status page; default the machine's. */
  timeZone?: string;
  /**
   * Show the status page's "Demo register" form, which posts orders the register does not know: for
   * `payconnect demo` only, never at a shop.
   */
  demoRegister?: boolean;
  logger?: boolean;
  /** Watch the manifest file and switch when it changes (default true). */
  watchManifest?: boolean;
}

export interface RunningPlugin {
  url: string;
  port: number;
  service: PluginService;
  journal: PluginJournal;
  manifest(): Manifest;
  close(): Promise<void>;
}

/** The plugin cannot start as configured (not registered, a data folder of another device, ...). */
export class PluginSetupError extends SetupError {}

interface Credentials {
  deviceId: string;
  storeId: string;
  token: string;
  serverUrl: string;
  serverPublicKey: string;
}

async function credentials(config: PluginConfig, deviceId: string): Promise<Credentials> {
  const existing = readDeviceFile<Credentials>(config.dataDir);
  if (existing) {
    if (existing.deviceId !== deviceId) {
      throw new PluginSetupError(
        'setup.data_folder_taken',
        `the data folder ${config.dataDir} belongs to ${existing.deviceId}, not ${deviceId}`,
        { subject: config.dataDir },
      );
    }
    return existing;
  }
  if (!config.registrationCode) {
    throw new PluginSetupError(
      'setup.not_registered',
      `plugin ${deviceId} is not registered yet: ask for a registration code (role plugin) and start with --registration-code CODE`,
      { subject: deviceId },
    );
  }
  const reg: DeviceRegistration = await new ServerClient(config.serverUrl).register({
    code: config.registrationCode,
    deviceId,
    role: 'plugin',
    name: deviceId,
  });
  const c: Credentials = {
    deviceId,
    storeId: reg.storeId,
    token: reg.token,
    serverUrl: config.serverUrl,
    serverPublicKey: reg.serverPublicKey,
  };
  saveRegistration(config.dataDir, c, reg.lanKeys.length ? reg.lanKeys : [reg.lanKey]);
  return c;
}

export async function createPluginApp(config: PluginConfig): Promise<RunningPlugin> {
  const clock = new SystemClock();
  const manifestPath = resolve(config.manifestPath);
  const manifest = await loadManifestFile(manifestPath);
  const deviceId = config.id ?? `plugin-${manifest.register}`;
  const journal = new PluginJournal(config.dataDir, () => clock.now());
  let endpoint: LanEndpoint | undefined;
  try {
    const creds = await credentials(config, deviceId);
    const [currentKey, ...olderKeys] = readLanKeys(config.dataDir).map((k) => lanKeyFromJson(k));
    const unitPort = config.lan.unitPort ?? DEFAULT_UNIT_PORT;
    const transport = await UdpLanTransport.open({
      port: config.lan.pluginPort ?? DEFAULT_PLUGIN_PORT,
      interfaceAddress: config.lan.interfaceAddress,
      ...(config.lan.multicast ? { multicastGroup: DEFAULT_MULTICAST_GROUP } : {}),
    });
    endpoint = new LanEndpoint({
      deviceId,
      keyring: new LanKeyring(currentKey, olderKeys),
      transport,
      clock,
    });
    const timeZone = config.timeZone ?? machineTimeZone();
    const parts: PluginParts = {
      identity: {
        pluginId: deviceId,
        storeId: creds.storeId,
        storeName: config.storeName ?? creds.storeId,
        serverPublicKey: creds.serverPublicKey,
        timeZone,
        demoRegister: config.demoRegister === true,
      },
      clock,
      journal,
      endpoint,
      server: new ServerClient(creds.serverUrl, creds.token),
      manifest,
      manifestPath,
      alsoManifests: config.alsoManifests ?? [],
      watchManifest: config.watchManifest !== false,
      dataDir: config.dataDir,
      broadcast: { kind: 'broadcast', address: config.lan.broadcastAddress, port: unitPort },
      multicast: { kind: 'multicast', group: DEFAULT_MULTICAST_GROUP, port: unitPort },
      log: config.logger === false ? undefined : (m) => process.stderr.write(`plugin: ${m}\n`),
    };
    const http = {
      port: config.port,
      host: config.host,
      bodyLimit: 64 * 1024,
      allowedHosts: config.lan.allowedHosts,
      filter: new DeviceErrorFilter('the plugin'),
      logger: config.logger,
    };
    const { app, url, port } = await startDeviceApp(PluginModule.create(parts), endpoint, http);
    const service = app.get(PluginService);
    const adapters = app.get(AdapterHost);
    return {
      url,
      port,
      service,
      journal,
      manifest: () => adapters.current(),
      close: () => closeDeviceApp(app),
    };
  } catch (e) {
    await endpoint?.close().catch(() => undefined);
    journal.closeDb();
    throw e;
  }
}
