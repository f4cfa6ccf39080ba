/**
 * The unit's live event stream (server-sent events, GET /api/events): the touch page hears at once that
 * something it shows changed, instead of finding out at its next poll. Each event says only `changed`; the
 * page then reads /api/offers, /api/status and /api/history as before, so the stream carries no state of
 * its own and a missed event costs nothing but time (the page's slow fallback poll catches up).
 *
 * Who may open it: what the local-request guard lets in (docs/plugin.md, "Who may call the local APIs"),
 * and, stricter than for other reads, not a web page of another origin. The browser would keep such a
 * page from reading the stream, but only after this unit had opened it, and a stream stays open for as
 * long as that page does: a foreign page could hold any number of them. So a stream is the unit's own
 * page's, or a tool's (no Origin header), or refused with 403 `cross_origin`.
 *
 * Streams end when the app shuts down (BeforeApplicationShutdown), before the HTTP server closes: a server
 * that waited for every open touch page to go away would never stop.
 */
import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DeviceApiError } from '../../device/device-errors';
import { TerminalService } from '../terminal.service';

/** How often an idle stream gets a comment line, so proxies and browsers keep it open. */
export const TERMINAL_EVENTS_KEEP_ALIVE_MS = 15_000;
/** How long a browser waits before it reconnects a stream that ended (the SSE `retry:` field). */
export const TERMINAL_EVENTS_RETRY_MS = 1000;

/** The headers that say which page opens a stream. */
export interface StreamRequest {
  host?: string;
  origin?: string;
  fetchSite?: string;
}

/** undefined: the stream may open; otherwise why not (the guard already checked the Host). */
export function streamRefusal(r: StreamRequest): DeviceApiError | undefined {
  const own = [`http://${r.host}`, `https://${r.host}`];
  if (r.origin !== undefined && !own.includes(r.origin))
    return new DeviceApiError(
      403,
      'cross_origin',
      `refused the live event stream to the web page ${r.origin}: only this unit's own touch page and tools may listen`,
    );
  if (r.fetchSite === 'cross-site')
    return new DeviceApiError(
      403,
      'cross_origin',
      "refused the live event stream to another site: only this unit's own touch page and tools may listen",
    );
  return undefined;
}

@Injectable()
export class TerminalEventStreams implements BeforeApplicationShutdown {
  /** Open streams, each with what ends it. */
  private readonly open = new Map<FastifyReply, () => void>();
  private closing = false;

  constructor(private readonly terminal: TerminalService) {}

  /** Answers GET /api/events: the stream, held until the client or the app ends it; or throws the refusal. */
  serve(req: FastifyRequest, reply: FastifyReply): void {
    const refusal = this.closing
      ? new DeviceApiError(503, 'stopping', 'the unit is stopping; reconnect in a moment')
      : streamRefusal({
          host: req.headers.host,
          origin: req.headers.origin,
          fetchSite: req.headers['sec-fetch-site'] as string | undefined,
        });
    // Answered by the app's error filter as {error: {code, message}}, as every refusal of the API is.
    if (refusal) throw refusal;
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    reply.raw.write(`retry: ${TERMINAL_EVENTS_RETRY_MS}\n: connected\n\n`);
    const unsubscribe = this.terminal.onChange(() => reply.raw.write('data: changed\n\n'));
    const keepAlive = setInterval(() => reply.raw.write(': keep-alive\n\n'), TERMINAL_EVENTS_KEEP_ALIVE_MS);
    const done = () => {
      clearInterval(keepAlive);
      unsubscribe();
      this.open.delete(reply);
    };
    this.open.set(reply, done);
    req.raw.on('close', done);
    reply.raw.on('close', done);
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
    for (const [reply, done] of [...this.open]) {
      done();
      reply.raw.end();
    }
  }
}
