/**
 * Builds and starts a mobile POS unit: registration (once; kept in the data folder), the LAN side
 * (beacons, offer inbox), the TerminalService, and the local HTTP API with its touch page.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { DeviceErrorFilter } from '../device/device-errors';
import { startDeviceHttp } from '../device/device-http';
import {
  LanEndpoint,
  LanKeyring,
  lanKeyFromJson,
  LanTarget,
  OfferInbox,
  UdpLanTransport,
  UnitBeacon,
} from '../lan';
import { DEFAULT_MULTICAST_GROUP, DEFAULT_PLUGIN_PORT, DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { TERMINAL_SERVICE, TERMINAL_TIME_ZONE, TerminalController } from './http/terminal.controller';
import { ServerClient } from './server-client';
import { DeviceCredentials, TerminalStore } from './terminal-store';
import { TerminalService } from './terminal.service';
import { machineTimeZone } from '../protocol/local-time';

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

export class TerminalSetupError extends Error {}

export { machineTimeZone, validTimeZone } from '../protocol/local-time';

async function credentialsFor(config: TerminalConfig, store: TerminalStore): Promise<DeviceCredentials> {
  const existing = store.credentials();
  if (existing) {
    if (existing.deviceId !== config.id) {
      throw new TerminalSetupError(
        `the data folder ${config.dataDir} belongs to unit ${existing.deviceId}, not ${config.id}; use that id or another folder`,
      );
    }
    return existing;
  }
  if (!config.registrationCode) {
    throw new TerminalSetupError(
      `unit ${config.id} is not registered yet: ask the reseller for a registration code (role terminal) and start with --registration-code CODE`,
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
  const store = new TerminalStore(config.dataDir);
  let creds: DeviceCredentials;
  try {
    creds = await credentialsFor(config, store);
  } catch (e) {
    store.close();
    throw e;
  }
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
  const endpoint = new LanEndpoint({
    deviceId: creds.deviceId,
    keyring: new LanKeyring(current, older),
    transport,
    status: () => 'idle',
  });
  const inbox = new OfferInbox(endpoint);
  const announce: LanTarget[] = [
    { kind: 'broadcast', address: config.lan.broadcastAddress, port: pluginPort },
    ...(config.lan.multicast
      ? [{ kind: 'multicast' as const, group: DEFAULT_MULTICAST_GROUP, port: pluginPort }]
      : []),
  ];
  const beacon = new UnitBeacon({
    endpoint,
    name: creds.name,
    announce,
    status: () => 'idle',
    offers: () => inbox.list().length,
  });
  const service = new TerminalService({
    credentials: creds,
    store,
    server,
    endpoint,
    inbox,
    beacon,
    payWaitMs: config.payWaitMs,
  });
  service.start();

  @Module({
    controllers: [TerminalController],
    providers: [
      { provide: TERMINAL_SERVICE, useValue: service },
      { provide: TERMINAL_TIME_ZONE, useValue: config.timeZone ?? machineTimeZone() },
    ],
  })
  class TerminalModule {}
  const { app, url, port } = await startDeviceHttp(TerminalModule, {
    port: config.port,
    host: config.host,
    bodyLimit: 4096,
    allowedHosts: config.lan.allowedHosts,
    filter: new DeviceErrorFilter('the unit'),
    logger: config.logger,
  });
  return {
    url,
    port,
    service,
    credentials: creds,
    async close() {
      await app.close();
      await service.stop();
    },
  };
}
