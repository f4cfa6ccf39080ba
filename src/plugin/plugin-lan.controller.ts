/**
 * The plugin's LAN side as Nest handlers (the LAN is a custom transport: src/lan/nest/server-lan.ts). Thin:
 * each pattern is one call into the part that owns it. Message types not listed here (an `offer` sent to a
 * plugin, say) are answered `unhandled` by the transport.
 */
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern } from '@nestjs/microservices';
import { LanContext, LanInbound, OfferDispatcher, UnitDirectory } from '../lan';
import { PluginService } from './plugin.service';

@Controller()
export class PluginLanController {
  constructor(
    private readonly directory: UnitDirectory,
    private readonly dispatcher: OfferDispatcher,
    private readonly service: PluginService,
  ) {}

  /** A unit announces itself: the unit list and unicast offers use its address. */
  @EventPattern('beacon')
  beacon(@Ctx() ctx: LanContext): void {
    this.directory.record(ctx.getMessage() as LanInbound<'beacon'>);
  }

  /** First claim wins; the answer (claim.granted or claim.denied) goes back to the claimer. */
  @MessagePattern('claim')
  claim(@Ctx() ctx: LanContext) {
    const reply = this.dispatcher.decideClaim(ctx.getMessage() as LanInbound<'claim'>);
    this.service.lanMessage(ctx.getMessage());
    return reply;
  }

  /** A unit's progress with an order it holds (claimed, paying, waiting for the code). */
  @EventPattern('progress')
  progress(@Ctx() ctx: LanContext): void {
    this.service.lanMessage(ctx.getMessage());
  }

  /** A server-signed result relayed by a unit: believed only if the signature verifies. */
  @EventPattern('result')
  result(@Ctx() ctx: LanContext): void {
    this.service.lanMessage(ctx.getMessage());
  }
}
