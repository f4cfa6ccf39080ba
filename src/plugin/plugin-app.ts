/**
 * Builds and starts the plugin beside the register: its manifest and adapters, registration (once; kept in
 * the data folder), the LAN side (unit directory, offers, claims), result intake, receipts, and the local
 * HTTP API with its live status page. Switching manifests probes the new adapter first and keeps the old
 * one when the probe fails.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { DeviceErrorFilter } from '../device/device-errors';
import { startDeviceHttp } from '../device/device-http';
import { realpathSync, unwatchFile, watchFile } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { readDeviceFile, readLanKeys, saveRegistration } from '../device/device-files';
import { HostAdapter } from '../adapters/host-adapter';
import { HttpHookAdapter } from '../adapters/http-hook/http-hook.adapter';
import { loadManifestFile, Manifest, manifestBaseDir } from '../adapters/manifest';
import { createAdapter } from '../adapters/registry';
import {
  LanEndpoint,
  LanKeyring,
  lanKeyFromJson,
  OfferDispatcher,
  UdpLanTransport,
  UnitDirectory,
} from '../lan';
import { DEFAULT_MULTICAST_GROUP, DEFAULT_PLUGIN_PORT, DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { ManifestError } from '../protocol/errors';
import { ManifestInvalidError } from '../adapters/field-problems';
import { SystemClock } from '../protocol/clock';
import { formatMoney } from '../protocol/money';
import { machineTimeZone, zonedIso } from '../protocol/local-time';
import { PrintQueue } from '../printer/print-queue';
import { renderReceipt, renderReceiptSvg, renderReceiptText } from '../printer/render';
import { ReceiptData } from '../printer/receipt';
import { PLUGIN_API, PluginApi, PluginApiError, PluginController } from './http/plugin.controller';
import { OrderRecord, PluginJournal } from './plugin-journal';
import { PluginRegistration, PluginServerClient } from './plugin-server-client';
import { PluginService, ReceiptSink } from './plugin.service';

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

export class PluginSetupError extends Error {}

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
        `the data folder ${config.dataDir} belongs to ${existing.deviceId}, not ${deviceId}`,
      );
    }
    return existing;
  }
  if (!config.registrationCode) {
    throw new PluginSetupError(
      `plugin ${deviceId} is not registered yet: ask for a registration code (role plugin) and start with --registration-code CODE`,
    );
  }
  const reg: PluginRegistration = await new PluginServerClient(config.serverUrl).register({
    code: config.registrationCode,
    deviceId,
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

/** Receipts: rendered from the journal's order, queued per printer, retried while the printer is off. */
class ManifestReceipts implements ReceiptSink {
  constructor(
    private readonly queue: PrintQueue,
    private readonly current: () => Manifest,
    private readonly baseDir: () => string,
    private readonly storeName: string,
    /** The shop's zone: the receipt shows its wall-clock time and offset, not UTC. */
    private readonly timeZone: string,
  ) {}

  /** A relative `file:` printer path starts from the manifest's folder, like every path in a manifest. */
  private target(printer: string): string {
    const m = /^file:(.+)$/.exec(printer);
    return m && !isAbsolute(m[1]) ? `file:${resolve(this.baseDir(), m[1])}` : printer;
  }

  data(o: OrderRecord): ReceiptData {
    const brand = String(o.payment?.method?.brand ?? 'wallet');
    return {
      storeName: this.storeName,
      registerId: o.registerId,
      orderId: o.orderId,
      amount: o.amount,
      method: brand === 'alipay' ? 'Alipay 支付宝' : brand === 'wechat' ? 'WeChat Pay 微信支付' : brand,
      paymentId: o.payment?.id ?? '',
      time: zonedIso(o.payment?.updatedAt ?? o.updatedAt, this.timeZone),
      ...(o.items ? { items: o.items } : {}),
      footer: '谢谢惠顾 Thank you',
    };
  }

  async print(o: OrderRecord): Promise<void> {
    const r = this.current().receipt;
    if (!r) return;
    await this.queue.enqueue({
      id: `receipt:${o.orderId}`,
      orderId: o.orderId,
      bytes: renderReceipt(this.data(o), r),
      target: this.target(r.printer),
    });
  }

  problems(): string[] {
    return this.queue
      .status()
      .printers.filter((p) => p.waiting > 0 && p.lastError)
      .map(
        (p) => p.message ?? `printer ${p.target}: ${p.lastError!.message} (${p.waiting} receipt(s) waiting)`,
      );
  }
}

export async function createPluginApp(config: PluginConfig): Promise<RunningPlugin> {
  const clock = new SystemClock();
  let manifestPath = resolve(config.manifestPath);
  let manifest = await loadManifestFile(manifestPath);
  const deviceId = config.id ?? `plugin-${manifest.register}`;
  const journal = new PluginJournal(config.dataDir);
  let creds: Credentials;
  try {
    creds = await credentials(config, deviceId);
  } catch (e) {
    journal.closeDb();
    throw e;
  }
  const [currentKey, ...olderKeys] = readLanKeys(config.dataDir).map((k) => lanKeyFromJson(k));
  const unitPort = config.lan.unitPort ?? DEFAULT_UNIT_PORT;
  const transport = await UdpLanTransport.open({
    port: config.lan.pluginPort ?? DEFAULT_PLUGIN_PORT,
    interfaceAddress: config.lan.interfaceAddress,
    ...(config.lan.multicast ? { multicastGroup: DEFAULT_MULTICAST_GROUP } : {}),
  });
  const endpoint = new LanEndpoint({ deviceId, keyring: new LanKeyring(currentKey, olderKeys), transport });
  const directory = new UnitDirectory(endpoint);
  directory.start();
  const dispatcher = new OfferDispatcher({
    endpoint,
    directory,
    claims: journal,
    broadcast: { kind: 'broadcast', address: config.lan.broadcastAddress, port: unitPort },
    multicast: { kind: 'multicast', group: DEFAULT_MULTICAST_GROUP, port: unitPort },
  });
  dispatcher.start();
  const server = new PluginServerClient(creds.serverUrl, creds.token);

  const adapters = new Map<string, HostAdapter>();
  const env = () => ({ baseDir: manifestBaseDir(manifestPath), clock });
  const queue = new PrintQueue({ store: journal.printJobs, clock });
  await queue.start();
  const receipts = new ManifestReceipts(
    queue,
    () => manifest,
    () => manifestBaseDir(manifestPath),
    config.storeName ?? creds.storeId,
    config.timeZone ?? machineTimeZone(),
  );
  const service = new PluginService({
    pluginId: deviceId,
    storeName: config.storeName ?? creds.storeId,
    journal,
    endpoint,
    directory,
    dispatcher,
    server,
    serverPublicKey: creds.serverPublicKey,
    storeId: creds.storeId,
    adapters,
    defaultDispatch: manifest.dispatch,
    receipts,
    log: config.logger === false ? undefined : (m) => process.stderr.write(`plugin: ${m}\n`),
  });

  const startAdapter = async (m: Manifest): Promise<HostAdapter> => {
    const adapter = createAdapter(m, env());
    await adapter.probe();
    await adapter.start(service.contextFor(m.adapter));
    return adapter;
  };
  adapters.set(manifest.adapter, await startAdapter(manifest));
  const extras: Manifest[] = [];
  for (const file of config.alsoManifests ?? []) {
    const m = await loadManifestFile(resolve(file));
    if (m.register !== manifest.register) {
      throw new PluginSetupError(
        `${file}: register ${m.register} differs from the main manifest's ${manifest.register}`,
      );
    }
    if (adapters.has(m.adapter))
      throw new PluginSetupError(`${file}: a ${m.adapter} adapter is already running`);
    const adapter = createAdapter(m, { baseDir: manifestBaseDir(resolve(file)), clock });
    await adapter.probe();
    await adapter.start(service.contextFor(m.adapter));
    adapters.set(m.adapter, adapter);
    extras.push(m);
  }
  await service.start();

  let switching: Promise<unknown> = Promise.resolve();
  let manifestProblem: string | undefined;
  // Manifests are switched to only from the folder of the one the plugin was started with.
  const manifestsDir = realpathSync(dirname(manifestPath));
  const switchManifest = (path: string) => {
    const run = switching.then(async () => {
      const file = resolve(path);
      let next: Manifest;
      let adapter: HostAdapter;
      try {
        next = await loadManifestFile(file);
        if (next.register !== manifest.register) {
          throw new ManifestError(
            'manifest.register_changed',
            `register: this plugin serves register ${manifest.register}, the manifest says ${next.register}`,
            {
              subject: 'register',
            },
          );
        }
        adapter = createAdapter(next, { baseDir: manifestBaseDir(file), clock });
        await adapter.probe();
      } catch (e) {
        // Only the first line: a YAML error goes on to quote the file's text, which has no place in an
        // answer or on the status page (the full report: payconnect manifest validate FILE).
        const why = manifestRefusal(e as Error);
        service.journal.log('(manifest)', 'switch refused', `${file}: ${why}`);
        manifestProblem = `the manifest ${file} was not applied, still running ${manifest.id}: ${why}`;
        service.emit('change', { kind: 'manifest' });
        throw new PluginApiError(422, 'manifest_refused', `kept ${manifest.id}: ${why}`);
      }
      const old = adapters.get(manifest.adapter);
      await old?.stop();
      adapters.delete(manifest.adapter);
      await adapter.start(service.contextFor(next.adapter));
      adapters.set(next.adapter, adapter);
      // Orders captured by the old adapter keep their write-back path only while it runs; keep it for them.
      if (old && next.adapter !== manifest.adapter) adapters.set(manifest.adapter, old);
      manifest = next;
      manifestPath = file;
      manifestProblem = undefined;
      watch(file);
      service.setDefaultDispatch(next.dispatch);
      service.emit('change', { kind: 'manifest' });
      return { manifest: next.id, adapter: next.adapter };
    });
    switching = run.catch(() => undefined);
    return run;
  };
  // A changed manifest file is applied the same way: probed first, kept out if it fails.
  let watched: string | undefined;
  function watch(file: string): void {
    if (config.watchManifest === false || watched === file) return;
    if (watched) unwatchFile(watched);
    watched = file;
    watchFile(file, { interval: 500 }, () => void switchManifest(file).catch(() => undefined));
  }
  watch(manifestPath);

  const api: PluginApi = {
    postOrder: async (body) => {
      const hook = adapters.get('http-hook');
      if (manifest.adapter !== 'http-hook' || !(hook instanceof HttpHookAdapter)) {
        throw new PluginApiError(
          409,
          'http_hook_off',
          `this plugin takes orders through ${manifest.adapter} (manifest ${manifest.id}), not over HTTP`,
        );
      }
      const order = await hook.accept(body, 'http');
      return view(journal.get(order.orderId)!);
    },
    orders: () => journal.list().map(view),
    order: (orderId) => {
      const o = journal.get(orderId);
      if (!o) throw new PluginApiError(404, 'not_found', `order ${orderId} not found`);
      return { ...view(o), history: journal.history(orderId) };
    },
    cancel: async (orderId) => {
      const o = await service.cancel(orderId);
      if (!o) throw new PluginApiError(404, 'not_found', `order ${orderId} not found`);
      return view(o);
    },
    terminals: () => service.terminals(),
    status: () => ({
      pluginId: deviceId,
      storeId: creds.storeId,
      registerId: manifest.register,
      manifest: manifest.id,
      adapter: manifest.adapter,
      alsoRunning: extras.map((m) => ({ manifest: m.id, adapter: m.adapter })),
      server: service.serverUp ? 'up' : 'down',
      problems: [...(manifestProblem ? [manifestProblem] : []), ...service.problems()],
      counters: service.counters,
      rejected: service.rejects,
      lan: endpoint.stats,
      receipts: queue.status(),
      timeZone: config.timeZone ?? machineTimeZone(),
      demoRegister: config.demoRegister === true,
    }),
    receipt: (orderId, format) => {
      const o = journal.get(orderId);
      if (!o || o.status !== 'paid')
        throw new PluginApiError(404, 'no_receipt', `order ${orderId} has no receipt (it is not paid)`);
      const layout = manifest.receipt ?? { printer: '', encoding: 'utf8' as const, width: 42 as const };
      const data = receipts.data(o);
      if (format === 'escpos')
        return { contentType: 'application/octet-stream', body: Buffer.from(renderReceipt(data, layout)) };
      if (format === 'svg')
        return { contentType: 'image/svg+xml; charset=utf-8', body: renderReceiptSvg(data, layout) };
      if (format === 'text')
        return { contentType: 'text/plain; charset=utf-8', body: renderReceiptText(data, layout) };
      throw new PluginApiError(400, 'bad_format', 'format must be text, escpos or svg');
    },
    reprint: async (orderId) => {
      if (!(await service.reprint(orderId)))
        throw new PluginApiError(404, 'no_receipt', `order ${orderId} is not paid; nothing to reprint`);
      return { orderId, reprint: 'queued' };
    },
    switchManifest: (nameOrPath) => switchManifest(manifestInFolder(manifestsDir, nameOrPath)),
    subscribe: (listener) => {
      service.on('change', listener);
      return () => service.off('change', listener);
    },
  };

  @Module({ controllers: [PluginController], providers: [{ provide: PLUGIN_API, useValue: api }] })
  class PluginModule {}
  const { app, url, port } = await startDeviceHttp(PluginModule, {
    port: config.port,
    host: config.host,
    bodyLimit: 64 * 1024,
    allowedHosts: config.lan.allowedHosts,
    filter: new DeviceErrorFilter('the plugin'),
    logger: config.logger,
  });
  return {
    url,
    port,
    service,
    journal,
    manifest: () => manifest,
    async close() {
      if (watched) unwatchFile(watched);
      await app.close();
      await service.stop();
      for (const a of adapters.values()) await a.stop().catch(() => undefined);
      await queue.stop();
      await endpoint.close();
      journal.closeDb();
    },
  };
}

/** The order as the API shows it (DESIGN.md: {orderId, amount, status, terminal, payment, receipt}). */
export function view(o: OrderRecord) {
  return {
    orderId: o.orderId,
    registerId: o.registerId,
    amount: o.amount,
    amountText: formatMoney(o.amount, { symbol: true, grouping: true }),
    status: o.status,
    terminal: o.terminal,
    progress: o.progress,
    payment: o.payment,
    signature: o.signature,
    resultVia: o.resultVia,
    receipt:
      o.status === 'paid'
        ? { state: o.receipt, url: `/api/receipts/${encodeURIComponent(o.orderId)}` }
        : null,
    writeBack: o.writeBack,
    writeBackError: o.writeBackError,
    source: o.source,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
  };
}

/**
 * The manifest file a switch request names: `other`, `other.yaml`, or a path, which must be a `.yaml` file
 * directly in the plugin's manifests folder (after following links). Anything else is refused before the
 * file is opened, so the local API can neither read other files nor tell whether they exist.
 */
export function manifestInFolder(folder: string, nameOrPath: string): string {
  const refuse = () =>
    new PluginApiError(
      403,
      'manifest_outside_folder',
      `manifests are taken only from ${folder}: name one of its .yaml files (e.g. {"path": "shop.yaml"})`,
    );
  if (nameOrPath.includes('\0')) throw refuse();
  const asked = isAbsolute(nameOrPath) ? nameOrPath : join(folder, nameOrPath);
  const file = asked.endsWith('.yaml') ? asked : `${asked}.yaml`;
  if (dirname(resolve(file)) !== folder && dirname(resolve(file)) !== resolve(folder)) throw refuse();
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    throw new PluginApiError(404, 'no_such_manifest', `there is no manifest ${basename(file)} in ${folder}`);
  }
  if (dirname(real) !== folder) throw refuse();
  return real;
}

function manifestRefusal(e: Error): string {
  if (e instanceof ManifestInvalidError)
    return `${e.problems.length} problem(s): ${e.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`;
  return e.message.split('\n')[0];
}
