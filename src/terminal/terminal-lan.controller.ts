/**
 * The unit's LAN side as Nest handlers (the LAN is a custom transport: src/lan/nest/server-lan.ts). Thin:
 * what a plugin says about its offers goes to the OfferInbox, a `discover` to the beacon. Message types
 * not listed here (a `claim` sent to a unit, say) are answered `unhandled` by the transport.
 */
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern } from '@nestjs/microservices';
import { LanContext, OfferInbox, UnitBeacon } from '../lan';

@Controller()
export class TerminalLanController {
  constructor(
    private readonly inbox: OfferInbox,
    private readonly beacon: UnitBeacon,
  ) {}

  /** A plugin offers an order, withdraws or cancels it, or asks to collect now. */
  @EventPattern('offer')
  offer(@Ctx() ctx: LanContext): void {
    this.inbox.receive(ctx.getMessage());
  }

  @EventPattern('withdraw')
  withdraw(@Ctx() ctx: LanContext): void {
    this.inbox.receive(ctx.getMessage());
  }

  @EventPattern('cancel')
  cancel(@Ctx() ctx: LanContext): void {
    this.inbox.receive(ctx.getMessage());
  }

  @EventPattern('collect')
  collect(@Ctx() ctx: LanContext): void {
    this.inbox.receive(ctx.getMessage());
  }

  /**
   * The plugin's answer to a claim. The claim's own request usually takes it first (by `re`); this one
   * applies an answer that arrives after the claim gave up waiting, so the screen still learns the truth.
   */
  @EventPattern('claim.granted')
  granted(@Ctx() ctx: LanContext): void {
    this.inbox.receive(ctx.getMessage());
  }

  @EventPattern('claim.denied')
  denied(@Ctx() ctx: LanContext): void {
    this.inbox.receive(ctx.getMessage());
  }

  /** "Who is there?": answered at once with a beacon straight back to the asker. */
  @EventPattern('discover')
  discover(@Ctx() ctx: LanContext): void {
    this.beacon.answerDiscover(ctx.getMessage());
  }
}
