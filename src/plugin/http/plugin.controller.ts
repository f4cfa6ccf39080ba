/**
 * The plugin's local HTTP API (DESIGN.md, "Plugin local HTTP API"), its live events (SSE) and its status
 * page. Thin: each route calls the PluginApi facade that plugin-app.ts builds.
 */
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { DeviceApiError } from '../../device/device-errors';
import { STATUS_PAGE } from './status-page';

export const PLUGIN_API = Symbol('PluginApi');

/** An answer the plugin's API means to give (status, code, message); see src/device/device-errors.ts. */
export class PluginApiError extends DeviceApiError {}

/** What the HTTP layer needs from the plugin (built in plugin-app.ts). */
export interface PluginApi {
  postOrder(body: unknown): Promise<unknown>;
  orders(): unknown[];
  order(orderId: string): unknown;
  cancel(orderId: string): Promise<unknown>;
  terminals(): unknown[];
  status(): unknown;
  receipt(orderId: string, format: string): { contentType: string; body: string | Buffer };
  reprint(orderId: string): Promise<unknown>;
  switchManifest(path: string): Promise<unknown>;
  subscribe(listener: (event: unknown) => void): () => void;
}

@Controller()
export class PluginController {
  constructor(@Inject(PLUGIN_API) private readonly api: PluginApi) {}

  @Get()
  page(@Res({ passthrough: true }) reply: FastifyReply): string {
    reply.header('content-type', 'text/html; charset=utf-8');
    return STATUS_PAGE;
  }

  @Post('api/orders')
  @HttpCode(202)
  postOrder(@Body() body: unknown) {
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
  switchManifest(@Body() body: { path?: unknown } | undefined) {
    if (typeof body?.path !== 'string')
      throw new PluginApiError(
        400,
        'path_required',
        'send {"path": "<id>.yaml"}: a manifest in the folder of the plugin --manifest file',
      );
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
    const keepAlive = setInterval(() => reply.raw.write(': keep-alive\n\n'), 15_000);
    req.raw.on('close', () => {
      clearInterval(keepAlive);
      unsubscribe();
    });
  }
}
