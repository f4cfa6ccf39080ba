// The receivers of the Nest-cost benchmark (nest-cost.ts): the same work behind a plain
// `endpoint.onMessage` handler, behind ServerLan in a bare Nest microservice, and behind ServerLan in the
// hybrid app startDeviceApp builds for the plugin and the unit. Used over real sockets by nest-peer.ts and
// in-process (no sockets) by profileNestDispatch below.
import 'reflect-metadata';
import { Controller, DynamicModule, INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern } from '@nestjs/microservices';
import { randomBytes } from 'node:crypto';
import { DeviceErrorFilter } from '../../src/device/device-errors';
import { startDeviceApp } from '../../src/device/device-http';
import {
  LanContext,
  LanEndpoint,
  LanKeyring,
  lanReply,
  ServerLan,
  type LanHandler,
  type LanInbound,
  type LanReply,
  type LanTransport,
} from '../../src/lan';
import { openEnvelope, sealEnvelope, type LanKey } from '../../src/protocol/lan-envelope';
import { encodeLanBody, type LanBody } from '../../src/protocol/lan-messages';
import { nsToMs, offerBody, RECEIVER_ID, SENDER_ID } from './common';

export type ReceiverName = 'plain' | 'nest' | 'device';
export type MessageKind = 'event' | 'request';

/** What every receiver does with a message, whoever routes it there. */
export class BenchWork {
  private readonly offers = new Map<string, number>();
  private readonly claims = new Map<string, string>();

  offer(m: LanInbound): void {
    const { orderId } = m.body as LanBody<'offer'>;
    if (this.offers.size >= 100_000) this.offers.clear();
    this.offers.set(orderId, (this.offers.get(orderId) ?? 0) + 1);
  }

  /** First claim wins, as OfferDispatcher.decideClaim. */
  claim(m: LanInbound): LanReply {
    const { orderId } = m.body as LanBody<'claim'>;
    const holder = this.claims.get(orderId);
    if (holder !== undefined && holder !== m.sender)
      return lanReply('claim.denied', { orderId, reason: 'taken', terminal: holder });
    if (this.claims.size >= 100_000) this.claims.clear();
    this.claims.set(orderId, m.sender);
    return lanReply('claim.granted', { orderId, terminal: m.sender });
  }
}

/** As the real LAN controllers (plugin-lan.controller.ts, terminal-lan.controller.ts): @Ctx, one call. */
@Controller()
class BenchLanController {
  constructor(private readonly work: BenchWork) {}

  @EventPattern('offer')
  offer(@Ctx() ctx: LanContext): void {
    this.work.offer(ctx.getMessage());
  }

  @MessagePattern('claim')
  claim(@Ctx() ctx: LanContext): LanReply {
    return this.work.claim(ctx.getMessage());
  }
}

@Module({})
class BenchLanModule {
  static create(work: BenchWork): DynamicModule {
    return {
      module: BenchLanModule,
      controllers: [BenchLanController],
      providers: [{ provide: BenchWork, useValue: work }],
    };
  }
}

/** The plain receiver: the handler as handlers were before Nest. It answers a claim itself, as ServerLan does. */
export function plainHandler(endpoint: LanEndpoint, work = new BenchWork()): LanHandler {
  return (m) => {
    if (m.type === 'offer') return work.offer(m);
    if (m.type === 'claim') {
      const reply = work.claim(m);
      // Not awaited, as in ServerLan: the claim is acknowledged while the answer travels.
      endpoint
        .send(reply.type, { ...reply.body, re: m.id } as never, { kind: 'unicast', to: m.sender, ...m.from })
        .catch(() => undefined);
    }
  };
}

export interface Receivers {
  endpoints: Record<ReceiverName, LanEndpoint>;
  servers: Record<'nest' | 'device', ServerLan>;
  close(): Promise<void>;
}

/** Starts the three receivers, each on its own endpoint from `open`. */
export async function startReceivers(open: () => Promise<LanEndpoint>): Promise<Receivers> {
  const plain = await open();
  const unsubscribe = plain.onMessage(plainHandler(plain));

  const nestEndpoint = await open();
  const nestServer = new ServerLan({ endpoint: () => nestEndpoint });
  const microservice: INestMicroservice = await NestFactory.createMicroservice(
    BenchLanModule.create(new BenchWork()),
    { strategy: nestServer, logger: false },
  );
  await microservice.listen();

  // startDeviceApp builds its own ServerLan; this one is only for finding it below.
  const deviceEndpoint = await open();
  const device = await startDeviceApp(BenchLanModule.create(new BenchWork()), deviceEndpoint, {
    port: 0,
    host: '127.0.0.1',
    bodyLimit: 4096,
    filter: new DeviceErrorFilter('the unit'),
    logger: false,
  });
  const deviceServer = device.app
    .getMicroservices()
    .map((m) => (m as unknown as { serverInstance?: unknown }).serverInstance)
    .find((s): s is ServerLan => s instanceof ServerLan);
  if (!deviceServer) throw new Error('startDeviceApp connected no ServerLan');

  return {
    endpoints: { plain, nest: nestEndpoint, device: deviceEndpoint },
    servers: { nest: nestServer, device: deviceServer },
    async close() {
      unsubscribe();
      await plain.close();
      await microservice.close();
      await device.app.close();
    },
  };
}

// --- in-process: what routing one message costs, without sockets or sealing ---------------------------

/** A transport that never delivers anything: the endpoints below only hold ServerLan's subscription. */
class NullTransport implements LanTransport {
  readonly port = 0;
  async send(): Promise<void> {}
  onDatagram(): void {}
  async close(): Promise<void> {}
}

const hr = () => process.hrtime.bigint();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Mean µs per call, strictly one at a time: median over `batches` batches of ~`batchMs` each. */
async function timeAsync(fn: () => unknown, batches = 5, batchMs = 150): Promise<number> {
  const warmEnd = hr() + 150_000_000n;
  while (hr() < warmEnd) await fn();
  const means: number[] = [];
  for (let b = 0; b < batches; b++) {
    const end = hr() + BigInt(batchMs) * 1_000_000n;
    let n = 0;
    const t0 = hr();
    while (hr() < end) {
      for (let k = 0; k < 50; k++) await fn();
      n += 50;
    }
    means.push((nsToMs(hr() - t0) * 1000) / n);
  }
  return median(means);
}

export interface DispatchRow {
  step: string;
  micros: number;
  note?: string;
}

/**
 * One offer handed to each receiver's handling in-process (what LanEndpoint.dispatch awaits once the
 * datagram is opened and checked), µs per message, and Nest's pattern lookup on its own.
 */
export async function profileNestDispatch(): Promise<DispatchRow[]> {
  const key: LanKey = { id: 1, version: 1, key: randomBytes(32) };
  const receivers = await startReceivers(
    async () =>
      new LanEndpoint({
        deviceId: RECEIVER_ID,
        keyring: new LanKeyring(key),
        transport: new NullTransport(),
      }),
  );
  try {
    // A real inbound offer: sealed and opened, as LanEndpoint hands it to its handlers.
    const body = offerBody('I-', 0, Date.now() + 3_600_000);
    const messageId = randomBytes(16);
    const sealed = sealEnvelope(
      {
        type: 'offer',
        bootId: randomBytes(8),
        seq: 1,
        timestamp: Date.now(),
        messageId,
        sender: SENDER_ID,
        recipient: RECEIVER_ID,
      },
      encodeLanBody('offer', body),
      key,
    );
    const message: LanInbound = {
      type: 'offer',
      body,
      id: messageId.toString('hex'),
      sender: SENDER_ID,
      recipient: RECEIVER_ID,
      from: { address: '127.0.0.1', port: 9 },
      header: openEnvelope(sealed, () => key).header,
    };
    const plain = plainHandler(receivers.endpoints.plain);
    const route = (s: ServerLan) => (m: LanInbound) =>
      (s as unknown as { handleMessage(m: LanInbound): Promise<unknown> }).handleMessage(m);
    const nest = route(receivers.servers.nest);
    const device = route(receivers.servers.device);
    const rows: DispatchRow[] = [];
    // Alternate, twice, and keep the lower figure of each: the first pass also warms the other.
    const plainUs: number[] = [];
    const nestUs: number[] = [];
    const deviceUs: number[] = [];
    for (let pass = 0; pass < 2; pass++) {
      plainUs.push(await timeAsync(() => plain(message)));
      nestUs.push(await timeAsync(() => nest(message)));
      deviceUs.push(await timeAsync(() => device(message)));
    }
    rows.push(
      { step: 'plain onMessage handler, offer', micros: Math.min(...plainUs) },
      {
        step: 'ServerLan -> @EventPattern(offer), bare microservice',
        micros: Math.min(...nestUs),
        note: 'ServerLan.handleMessage, awaited',
      },
      {
        step: 'ServerLan -> @EventPattern(offer), as the device apps run it',
        micros: Math.min(...deviceUs),
        note: 'startDeviceApp: inherited filter and validation pipe',
      },
      {
        step: "  of which Nest's Server.getRouteFromPattern('offer'), per call",
        micros: await timeAsync(() =>
          (
            receivers.servers.nest as unknown as { getRouteFromPattern(p: string): string }
          ).getRouteFromPattern('offer'),
        ),
        note: 'JSON.parse of a plain string throws and is caught; twice per event, once per request',
      },
      {
        step: '  a thrown and caught JSON.parse alone, for comparison',
        micros: await timeAsync(() => {
          try {
            return JSON.parse('offer');
          } catch {
            return undefined;
          }
        }),
      },
    );
    return rows;
  } finally {
    await receivers.close();
  }
}
