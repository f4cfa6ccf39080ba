/**
 * The unit's local API (DESIGN.md, "Terminal local HTTP API"), its live events (SSE, see
 * terminal-events.ts) and its touch page. Thin: each route calls the TerminalService or the event streams;
 * errors are answered by src/device/device-errors.ts.
 */
import { processFacts } from '../../device/process-facts';
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { TerminalService } from '../terminal.service';
import { PayDto } from './terminal.dto';
import { startOfShopDay } from '../shop-day';
import { TerminalEventStreams } from './terminal-events';
import { TOUCH_PAGE } from './touch-page';

/** The shop's IANA time zone (the unit's --time-zone, default the machine's): the page shows times in it. */
export const TERMINAL_TIME_ZONE = Symbol('TerminalTimeZone');

@Controller()
export class TerminalController {
  constructor(
    private readonly terminal: TerminalService,
    private readonly streams: TerminalEventStreams,
    @Inject(TERMINAL_TIME_ZONE) private readonly timeZone: string,
  ) {}

  @Get()
  page(@Res({ passthrough: true }) reply: FastifyReply): string {
    reply.header('content-type', 'text/html; charset=utf-8');
    return TOUCH_PAGE;
  }

  @Get('api/status')
  status() {
    return {
      deviceId: this.terminal.deviceId,
      server: this.terminal.serverUp ? 'up' : 'down',
      lan: this.terminal.lanStats(),
      timeZone: this.timeZone,
      process: processFacts(),
    };
  }

  @Get('api/offers')
  offers() {
    return this.terminal.offers();
  }

  @Post('api/offers/:orderId/claim')
  @HttpCode(200)
  claim(@Param('orderId') orderId: string) {
    return this.terminal.claim(orderId);
  }

  @Post('api/offers/:orderId/pay')
  @HttpCode(200)
  async pay(
    @Param('orderId') orderId: string,
    @Body() body: PayDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const { final, attempt } = await this.terminal.pay(orderId, body.paymentCode);
    if (!final) {
      reply
        .status(202)
        .header('location', `/api/payments/${encodeURIComponent(orderId)}`)
        .header('retry-after', '30');
    }
    return this.terminal.paymentView(attempt);
  }

  @Get('api/payments/:orderId')
  payment(@Param('orderId') orderId: string) {
    return this.terminal.paymentOf(orderId);
  }

  @Get('api/history')
  history() {
    // The shop's today, in its zone, whatever zone this machine is set to.
    return this.terminal
      .history((now) => startOfShopDay(this.timeZone, now))
      .map((a) => this.terminal.paymentView(a));
  }

  /** Server-sent events: `data: changed` whenever offers, payments or the server's state change. */
  @Get('api/events')
  events(@Req() req: FastifyRequest, @Res() reply: FastifyReply): void {
    this.streams.serve(req, reply);
  }
}
