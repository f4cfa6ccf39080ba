/**
 * The plugin's local HTTP API (DESIGN.md, "Plugin local HTTP API"), its live events (SSE) and its status
 * page. Thin: each route is one call into PluginOperations.
 */
import {
  BeforeApplicationShutdown,
  Body,
  Controller,
  Get,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { PluginOperations } from '../plugin-operations';
import { SwitchManifestDto } from './plugin.dto';
import { STATUS_PAGE } from './status-page';

/** How often an idle event stream gets a comment line, so proxies and browsers keep it open. */
export const EVENTS_KEEP_ALIVE_MS = 15_000;

@Controller()
export class PluginController implements BeforeApplicationShutdown {
  /** Open live event streams: ended when the plugin stops, or stopping would wait for every page to close. */
  private readonly streams = new Set<FastifyReply>();

  constructor(private readonly api: PluginOperations) {}

  beforeApplicationShutdown(): void {
    for (const reply of this.streams) reply.raw.end();
    this.streams.clear();
  }

  @Get()
  page(@Res({ passthrough: true }) reply: FastifyReply): string {
    reply.header('content-type', 'text/html; charset=utf-8');
    return STATUS_PAGE;
  }

  @Post('api/orders')
  @HttpCode(202)
  postOrder(@Body() body: unknown) {
    // Checked by the HTTP hook adapter, not a DTO: see src/device/device-validation.ts.
    return this.api.postOrder(body);
  }

  @Get('api/orders')
  orders() {
    return this.api.orders();
  }

  @Get('api/orders/:orderId')
  order(@Param('orderId') orderId: string) {
    return this.api.order(orderId);
  }

  @Post('api/orders/:orderId/cancel')
  @HttpCode(200)
  cancel(@Param('orderId') orderId: string) {
    return this.api.cancel(orderId);
  }

  @Get('api/terminals')
  terminals() {
    return this.api.terminals();
  }

  @Get('api/status')
  status() {
    return this.api.status();
  }

  @Get('api/receipts/:orderId')
  receipt(
    @Param('orderId') orderId: string,
    @Query('format') format: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const r = this.api.receipt(orderId, format ?? 'text');
    reply.header('content-type', r.contentType);
    return r.body;
  }

  @Post('api/receipts/:orderId/reprint')
  @HttpCode(202)
  reprint(@Param('orderId') orderId: string) {
    return this.api.reprint(orderId);
  }

  @Post('api/manifest')
  @HttpCode(200)
  switchManifest(@Body() body: SwitchManifestDto) {
    return this.api.switchManifest(body.path);
  }

  /** Server-sent events: one `data:` line per change, so the status page updates live. */
  @Get('api/events')
  events(@Req() req: FastifyRequest, @Res() reply: FastifyReply): void {
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    reply.raw.write(': connected\n\n');
    const unsubscribe = this.api.subscribe((e) => reply.raw.write(`data: ${JSON.stringify(e)}\n\n`));
    const keepAlive = setInterval(() => reply.raw.write(': keep-alive\n\n'), EVENTS_KEEP_ALIVE_MS);
    this.streams.add(reply);
    const done = () => {
      clearInterval(keepAlive);
      unsubscribe();
      this.streams.delete(reply);
    };
    req.raw.on('close', done);
    reply.raw.on('close', done);
  }
}
