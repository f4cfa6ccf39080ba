/**
 * Builds and starts a mobile POS unit: opens its store, its registration (once; kept in the data folder)
 * and its LAN socket, then runs TerminalModule as a Nest hybrid application — the local HTTP API with its
 * touch page, plus the LAN as a custom transport (ServerLan) whose handlers are TerminalLanController's.
 */
import 'reflect-metadata';
import { DeviceErrorFilter } from '../device/device-errors';
import { closeDeviceApp, startDeviceApp } from '../device/device-http';
import { ServerClient } from '../device/server-client';
import { SetupError } from '../device/setup-error';
import { LanEndpoint, LanKeyring, lanKeyFromJson, LanTarget, UdpLanTransport } from '../lan';
import { DEFAULT_MULTICAST_GROUP, DEFAULT_PLUGIN_PORT, DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { SystemClock } from '../protocol/clock';
import { machineTimeZone } from '../protocol/local-time';
import { DeviceCredentials, TerminalStore } from './terminal-store';
import { TerminalModule } from './terminal.module';
import { TerminalService } from './terminal.service';

export interface TerminalLanConfig {
  /** This unit's address on the shop network: multicast is joined on it. */
  interfaceAddress: string;
  /** Where beacons go so plugins see the unit (the subnet's broadcast address). */
  broadcastAddress: string;
  unitPort?: number;
  pluginPort?: number;
  /** Also join the multicast group and beacon there. */
  multicast?: boolean;
  /** Extra host names the local HTTP API answers to (a DNS name the shop gives this unit). */
  allowedHosts?: string[];
}

export interface TerminalConfig {
  id: string;
  name?: string;
  serverUrl: string;
  registrationCode?: string;
  port: number;
  host?: string;
  dataDir: string;
  lan: TerminalLanConfig;
  payWaitMs?: number;
  logger?: boolean;
  /** The shop's IANA time zone (e.g. Asia/Shanghai) for times on the touch page; default the machine's. */
  timeZone?: string;
}

export interface RunningTerminal {
  url: string;
  port: number;
  service: TerminalService;
  credentials: DeviceCredentials;
  close(): Promise<void>;
}

/** The unit cannot start as configured (not registered, a data folder of another unit, ...). */
export class TerminalSetupError extends SetupError {}

export { machineTimeZone, validTimeZone } from '../protocol/local-time';

async function credentialsFor(config: TerminalConfig, store: TerminalStore): Promise<DeviceCredentials> {
  const existing = store.credentials();
  if (existing) {
    if (existing.deviceId !== config.id) {
      throw new TerminalSetupError(
        'setup.data_folder_taken',
        `the data folder ${config.dataDir} belongs to unit ${existing.deviceId}, not ${config.id}; use that id or another folder`,
        { subject: config.dataDir },
      );
    }
    return existing;
  }
  if (!config.registrationCode) {
    throw new TerminalSetupError(
      'setup.not_registered',
      `unit ${config.id} is not registered yet: ask the reseller for a registration code (role terminal) and start with --registration-code CODE`,
      { subject: config.id },
    );
  }
  const reg = await new ServerClient(config.serverUrl).register({
    code: config.registrationCode,
    deviceId: config.id,
    role: 'terminal',
    name: config.name ?? config.id,
  });
  const creds: DeviceCredentials = {
    deviceId: reg.deviceId,
    storeId: reg.storeId,
    token: reg.token,
    serverUrl: config.serverUrl,
    serverPublicKey: reg.serverPublicKey,
    name: config.name ?? config.id,
  };
  store.saveCredentials(creds, reg.lanKeys.length ? reg.lanKeys : [reg.lanKey]);
  return creds;
}

export async function createTerminalApp(config: TerminalConfig): Promise<RunningTerminal> {
  const clock = new SystemClock();
  const store = new TerminalStore(config.dataDir);
  let endpoint: LanEndpoint | undefined;
  try {
    const creds = await credentialsFor(config, store);
    const server = new ServerClient(creds.serverUrl, creds.token);
    // Pick up a key rotation that happened while the unit was off; the stored keys serve when offline.
    try {
      const me = await server.me();
      if (me.lanKeys.length) store.saveLanKeys(me.lanKeys);
    } catch {
      // offline: use what is stored
    }
    const [current, ...older] = store
      .lanKeys()
      .map((k) => lanKeyFromJson(k, `${config.dataDir}/lan-keys.json`));
    const unitPort = config.lan.unitPort ?? DEFAULT_UNIT_PORT;
    const pluginPort = config.lan.pluginPort ?? DEFAULT_PLUGIN_PORT;
    const transport = await UdpLanTransport.open({
      port: 0,
      interfaceAddress: config.lan.interfaceAddress,
      groupPort: unitPort,
      ...(config.lan.multicast ? { multicastGroup: DEFAULT_MULTICAST_GROUP } : {}),
    });
    endpoint = new LanEndpoint({
      deviceId: creds.deviceId,
      keyring: new LanKeyring(current, older),
      transport,
      status: () => 'idle',
      clock,
    });
    const announce: LanTarget[] = [
      { kind: 'broadcast', address: config.lan.broadcastAddress, port: pluginPort },
      ...(config.lan.multicast
        ? [{ kind: 'multicast' as const, group: DEFAULT_MULTICAST_GROUP, port: pluginPort }]
        : []),
    ];
    const http = {
      port: config.port,
      host: config.host,
      bodyLimit: 4096,
      allowedHosts: config.lan.allowedHosts,
      filter: new DeviceErrorFilter('the unit'),
      logger: config.logger,
    };
    const { app, url, port } = await startDeviceApp(
      TerminalModule.create({
        credentials: creds,
        clock,
        store,
        endpoint,
        server,
        announce,
        timeZone: config.timeZone ?? machineTimeZone(),
        payWaitMs: config.payWaitMs,
      }),
      endpoint,
      http,
    );
    return {
      url,
      port,
      service: app.get(TerminalService),
      credentials: creds,
      close: () => closeDeviceApp(app),
    };
  } catch (e) {
    await endpoint?.close().catch(() => undefined);
    store.close();
    throw e;
  }
}
