/**
 * The Nest custom transport over real loopback sockets: an app handles `offer` with @EventPattern and
 * answers `claim` with @MessagePattern; a ClientLan emits and sends to it.
 */
import 'reflect-metadata';
import { Controller, INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { randomBytes } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import { LanBody } from '../../src/protocol/lan-messages';
import { LanKey } from '../../src/protocol/lan-envelope';
import {
  ClientLan,
  LanContext,
  LanEndpoint,
  LanKeyring,
  LanNoHandlerError,
  lanReply,
  lanTo,
  ServerLan,
  UdpLanTransport,
} from '../../src/lan';

const key: LanKey = { id: 9, version: 1, key: randomBytes(32) };
const seen: { orderId: string; sender: string }[] = [];

@Controller()
class UnitController {
  @EventPattern('offer')
  onOffer(@Payload() body: LanBody<'offer'>, @Ctx() ctx: LanContext): void {
    seen.push({ orderId: body.orderId, sender: ctx.getSender() });
  }

  @MessagePattern('claim')
  onClaim(@Payload() body: LanBody<'claim'>, @Ctx() ctx: LanContext) {
    return body.orderId === 'N-1'
      ? lanReply('claim.granted', { orderId: body.orderId, terminal: ctx.getSender() })
      : lanReply('claim.denied', { orderId: body.orderId, reason: 'unknown' });
  }
}

@Module({ controllers: [UnitController] })
class UnitModule {}

describe(ServerLan.name, () => {
  let app: INestMicroservice;
  let serverEndpoint: LanEndpoint;
  let clientEndpoint: LanEndpoint;
  let client: ClientLan;

  beforeAll(async () => {
    const server = new ServerLan({
      endpoint: async () => {
        serverEndpoint = new LanEndpoint({
          deviceId: 'T1',
          keyring: new LanKeyring(key),
          transport: await UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0 }),
        });
        return serverEndpoint;
      },
    });
    app = await NestFactory.createMicroservice(UnitModule, { strategy: server, logger: false });
    await app.listen();
    clientEndpoint = new LanEndpoint({
      deviceId: 'P1',
      keyring: new LanKeyring(key),
      transport: await UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0 }),
    });
    client = new ClientLan({
      endpoint: clientEndpoint,
      peer: { kind: 'unicast', to: 'T1', address: '127.0.0.1', port: serverEndpoint.port },
    });
  });

  afterAll(async () => {
    await app.close();
    await clientEndpoint.close();
  });

  it('routes an acknowledged event to @EventPattern with the verified sender', async () => {
    const report = await lastValueFrom(
      client.emit('offer', {
        orderId: 'N-0',
        registerId: 'R1',
        amount: { value: 100, currency: 'JPY' },
        mode: 'unicast',
        expiresAt: Date.now() + 60_000,
      }),
    );
    expect(report).toMatchObject({ ackedBy: ['T1'] });
    expect(seen).toEqual([{ orderId: 'N-0', sender: 'P1' }]);
  });

  it('answers a request from @MessagePattern with a reply naming the request', async () => {
    const granted = await lastValueFrom(client.send('claim', { orderId: 'N-1' }));
    expect(granted).toEqual({
      type: 'claim.granted',
      body: expect.objectContaining({ orderId: 'N-1', terminal: 'P1' }),
      sender: 'T1',
    });
    const target = { kind: 'unicast' as const, to: 'T1', address: '127.0.0.1', port: serverEndpoint.port };
    const denied = await lastValueFrom(client.send('claim', lanTo(target, { orderId: 'N-2' })));
    expect(denied).toMatchObject({ type: 'claim.denied', body: { orderId: 'N-2', reason: 'unknown' } });
  });

  it('reports an undelivered event as an error on the observable', async () => {
    const lost = new ClientLan({
      endpoint: clientEndpoint,
      peer: { kind: 'unicast', to: 'T9', address: '127.0.0.1', port: 9 },
      timeoutMs: 300,
    });
    await expect(lastValueFrom(lost.emit('collect', { orderId: 'N-3' }))).rejects.toThrow(/not acknowledged/);
  });

  it('answers a message no handler takes "unhandled", as Nest transports answer NO_MESSAGE_HANDLER', async () => {
    // The unit's controller handles offer and claim only: a `collect` is nobody's.
    const before = serverEndpoint.stats.unhandled;
    const err = await lastValueFrom(client.emit('collect', { orderId: 'N-4' })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(LanNoHandlerError);
    expect((err as Error).message).toMatch(/T1 does not handle collect messages/);
    expect(serverEndpoint.stats.unhandled).toBe(before + 1);
    // Not acknowledged: the unit never counted it processed.
    expect(seen.map((s) => s.orderId)).not.toContain('N-4');
  });
});
