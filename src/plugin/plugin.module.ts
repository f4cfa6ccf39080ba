/**
 * The plugin as a Nest module: its parts are providers, its HTTP API and its LAN handlers controllers.
 * What must be opened before anything else (the journal, the registration, the LAN socket) is opened by
 * createPluginApp and handed in as `PluginParts`; everything else is built here from those.
 *
 * Start and stop order lives in PluginRuntime: the print queue, the adapters (probed first), then the
 * service's work loop and push; stopped the other way round, the journal closed last.
 */
import {
  BeforeApplicationShutdown,
  DynamicModule,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { Manifest } from '../adapters/manifest';
import { PaymentServer } from '../device/server-client';
import { LanEndpoint, LanTarget, OfferDispatcher, UnitDirectory } from '../lan';
import { Clock } from '../protocol/clock';
import { PrintQueue } from '../printer/print-queue';
import { renderCopyMark } from '../printer/render';
import { AdapterHost } from './adapter-host';
import { PluginController } from './http/plugin.controller';
import { PluginLanController } from './plugin-lan.controller';
import { PluginJournal } from './plugin-journal';
import { PluginIdentity, PluginOperations } from './plugin-operations';
import { PluginReceipts } from './plugin-receipts';
import { PluginService } from './plugin.service';

export interface PluginParts {
  identity: PluginIdentity & { storeName: string; serverPublicKey: string };
  clock: Clock;
  journal: PluginJournal;
  endpoint: LanEndpoint;
  server: PaymentServer;
  manifest: Manifest;
  manifestPath: string;
  alsoManifests: string[];
  watchManifest: boolean;
  /** The plugin's data folder (adapters keep their own small state there). */
  dataDir: string;
  broadcast: LanTarget & { kind: 'broadcast' };
  multicast: LanTarget & { kind: 'multicast' };
  log?: (message: string) => void;
}

export const PLUGIN_PARTS = Symbol('PluginParts');

/** Starts the plugin's parts in order once Nest has built them, and stops them in reverse. */
@Injectable()
export class PluginRuntime
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private started = false;

  constructor(
    @Inject(PLUGIN_PARTS) private readonly parts: PluginParts,
    private readonly queue: PrintQueue,
    private readonly adapters: AdapterHost,
    private readonly service: PluginService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.adapters.on('refused', (file, why) => {
      this.parts.journal.log('(manifest)', 'switch refused', `${file}: ${why}`);
      this.service.emit('change', { kind: 'manifest' });
    });
    this.adapters.on('problem', (adapter, error) => this.service.adapterProblem(adapter, error));
    this.adapters.on('switched', (m) => {
      this.service.setDefaultDispatch(m.dispatch);
      this.service.emit('change', { kind: 'manifest' });
    });
    this.started = true;
    await this.queue.start();
    await this.adapters.start((kind) => this.service.contextFor(kind));
    await this.service.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (!this.started) return;
    await this.service.stop();
    await this.adapters.stop();
    await this.queue.stop();
  }

  /** After the LAN transport closed the endpoint: nothing writes to the journal any more. */
  onApplicationShutdown(): void {
    this.parts.journal.closeDb();
  }
}

@Module({})
export class PluginModule {
  static create(parts: PluginParts): DynamicModule {
    return {
      module: PluginModule,
      controllers: [PluginController, PluginLanController],
      providers: [
        { provide: PLUGIN_PARTS, useValue: parts },
        { provide: PluginJournal, useValue: parts.journal },
        { provide: LanEndpoint, useValue: parts.endpoint },
        {
          provide: UnitDirectory,
          useFactory: () => new UnitDirectory(parts.endpoint, { clock: parts.clock }),
        },
        {
          provide: OfferDispatcher,
          inject: [UnitDirectory],
          useFactory: (directory: UnitDirectory) =>
            new OfferDispatcher({
              endpoint: parts.endpoint,
              directory,
              claims: parts.journal,
              broadcast: parts.broadcast,
              multicast: parts.multicast,
              clock: parts.clock,
            }),
        },
        {
          provide: PrintQueue,
          inject: [AdapterHost],
          useFactory: (adapters: AdapterHost) =>
            new PrintQueue({
              store: parts.journal.printJobs,
              clock: parts.clock,
              // A receipt that may be on paper already prints under "补打 REPRINT" in the printer's
              // encoding (a job left by a manifest without a receipt section: 58 mm, GB18030).
              copyMark: () =>
                renderCopyMark(adapters.current().receipt ?? { width: 32, encoding: 'gb18030' }),
            }),
        },
        {
          provide: AdapterHost,
          useFactory: () =>
            new AdapterHost({
              manifest: parts.manifest,
              manifestPath: parts.manifestPath,
              alsoManifests: parts.alsoManifests,
              clock: parts.clock,
              stateDir: parts.dataDir,
              watch: parts.watchManifest,
            }),
        },
        {
          provide: PluginReceipts,
          inject: [PrintQueue, AdapterHost],
          useFactory: (queue: PrintQueue, adapters: AdapterHost) =>
            new PluginReceipts({
              queue,
              manifest: () => adapters.current(),
              baseDir: () => adapters.baseDir(),
              storeName: parts.identity.storeName,
              timeZone: parts.identity.timeZone,
            }),
        },
        {
          provide: PluginService,
          inject: [UnitDirectory, OfferDispatcher, AdapterHost, PluginReceipts],
          useFactory: (
            directory: UnitDirectory,
            dispatcher: OfferDispatcher,
            adapters: AdapterHost,
            receipts: PluginReceipts,
          ) =>
            new PluginService({
              pluginId: parts.identity.pluginId,
              storeName: parts.identity.storeName,
              journal: parts.journal,
              endpoint: parts.endpoint,
              directory,
              dispatcher,
              server: parts.server,
              serverPublicKey: parts.identity.serverPublicKey,
              storeId: parts.identity.storeId,
              adapters,
              defaultDispatch: parts.manifest.dispatch,
              receipts,
              clock: parts.clock,
              log: parts.log,
            }),
        },
        {
          provide: PluginOperations,
          inject: [PluginService, AdapterHost, PluginReceipts, PrintQueue],
          useFactory: (
            service: PluginService,
            adapters: AdapterHost,
            receipts: PluginReceipts,
            queue: PrintQueue,
          ) =>
            new PluginOperations(
              parts.identity,
              service,
              adapters,
              parts.journal,
              receipts,
              queue,
              parts.endpoint,
            ),
        },
        PluginRuntime,
      ],
    };
  }
}
