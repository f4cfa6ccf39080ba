/**
 * The unit as a Nest module: its parts are providers, its HTTP API (touch page) and its LAN handlers
 * controllers. What must be opened first (the store, the registration, the LAN socket) is opened by
 * createTerminalApp and handed in as `TerminalParts`.
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
import { PaymentServer } from '../device/server-client';
import { LanEndpoint, LanTarget, OfferInbox, UnitBeacon } from '../lan';
import { Clock } from '../protocol/clock';
import { TERMINAL_TIME_ZONE, TerminalController } from './http/terminal.controller';
import { TerminalEventStreams } from './http/terminal-events';
import { TerminalLanController } from './terminal-lan.controller';
import { DeviceCredentials, TerminalStore } from './terminal-store';
import { TerminalService } from './terminal.service';

export interface TerminalParts {
  credentials: DeviceCredentials;
  clock: Clock;
  store: TerminalStore;
  endpoint: LanEndpoint;
  server: PaymentServer;
  /** Where beacons go so plugins see the unit. */
  announce: LanTarget[];
  timeZone: string;
  payWaitMs?: number;
  log?: (message: string) => void;
}

export const TERMINAL_PARTS = Symbol('TerminalParts');

/** Starts the unit's service once Nest has built it; stops it, then closes the store last. */
@Injectable()
export class TerminalRuntime
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private started = false;

  constructor(
    @Inject(TERMINAL_PARTS) private readonly parts: TerminalParts,
    private readonly service: TerminalService,
  ) {}

  onApplicationBootstrap(): void {
    this.started = true;
    this.service.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.started) await this.service.stop();
  }

  /** After the LAN transport closed the endpoint: nothing writes to the store any more. */
  onApplicationShutdown(): void {
    this.parts.store.close();
  }
}

@Module({})
export class TerminalModule {
  static create(parts: TerminalParts): DynamicModule {
    return {
      module: TerminalModule,
      controllers: [TerminalController, TerminalLanController],
      providers: [
        { provide: TERMINAL_PARTS, useValue: parts },
        { provide: TERMINAL_TIME_ZONE, useValue: parts.timeZone },
        { provide: OfferInbox, useFactory: () => new OfferInbox(parts.endpoint, { clock: parts.clock }) },
        {
          provide: UnitBeacon,
          inject: [OfferInbox],
          useFactory: (inbox: OfferInbox) =>
            new UnitBeacon({
              endpoint: parts.endpoint,
              name: parts.credentials.name,
              announce: parts.announce,
              status: () => 'idle',
              offers: () => inbox.list().length,
              clock: parts.clock,
              routed: true,
            }),
        },
        {
          provide: TerminalService,
          inject: [OfferInbox, UnitBeacon],
          useFactory: (inbox: OfferInbox, beacon: UnitBeacon) =>
            new TerminalService({
              credentials: parts.credentials,
              store: parts.store,
              server: parts.server,
              endpoint: parts.endpoint,
              inbox,
              beacon,
              clock: parts.clock,
              payWaitMs: parts.payWaitMs,
              log: parts.log,
            }),
        },
        TerminalRuntime,
        TerminalEventStreams,
      ],
    };
  }
}
