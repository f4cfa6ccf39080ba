/**
 * The unit's local API (DESIGN.md, "Terminal local HTTP API") and its touch page. Thin: each route calls
 * the TerminalService; errors are answered by src/device/device-errors.ts.
 */
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Res } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { TerminalError, TerminalService } from '../terminal.service';
import { startOfShopDay } from '../shop-day';
import { TOUCH_PAGE } from './touch-page';

export const TERMINAL_SERVICE = Symbol('TerminalService');
/** The shop's IANA time zone (the unit's --time-zone, default the machine's): the page shows times in it. */
export const TERMINAL_TIME_ZONE = Symbol('TerminalTimeZone');

@Controller()
export class TerminalController {
  constructor(
    @Inject(TERMINAL_SERVICE) private readonly terminal: TerminalService,
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
    @Body() body: { paymentCode?: unknown } | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    // A code is text: a JSON number has already passed through a float (280000000000000001 arrives as
    // …000), so only a string is taken, never String() of whatever came.
    const code = body?.paymentCode;
    if (typeof code !== 'string') {
      throw new TerminalError(
        400,
        'invalid_payment_code',
        `paymentCode must be the code's digits as a string ("paymentCode": "280000000000000000"); got ${describe(code)}`,
      );
    }
    const { final, attempt } = await this.terminal.pay(orderId, code);
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
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return `a ${typeof v}`;
}
