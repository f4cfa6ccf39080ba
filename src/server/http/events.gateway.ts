/**
 * `GET /v1/events`: the WebSocket each device keeps open to hear about its store's payments.
 *
 * Authenticate with `Authorization: Bearer <device token>` (or `?token=` where a client cannot set
 * headers). `?after=<seq>` is the device's cursor: the server first sends every event after it, in order,
 * then live events as they are committed on any server instance. Frames:
 *   {type: "hello", deviceId, storeId, latestSeq}
 *   {type: "payment.updated", seq, payment, signature}   (signature: Ed25519 over canonical JSON)
 */
import { IncomingMessage, Server } from 'node:http';
import { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { EventsService } from '../events.service';
import { Metrics } from '../metrics';
import { StoresService } from '../stores.service';
import { bearer } from './auth';

/** How long a connection waits before it reads again after a failed read of its store's events. */
export const READ_RETRY_MS = 1000;

/** At most this many events per read of a store's events. */
const READ_LIMIT = 200;

export class EventsGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly sockets = new Set<WebSocket>();
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private readonly stores: StoresService,
    private readonly events: EventsService,
    private readonly metrics: Metrics,
  ) {}

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== '/v1/events') {
        socket.destroy();
        return;
      }
      void this.accept(req, socket, head, url);
    });
    // Drop connections that stopped answering pings (a unit that walked out of Wi-Fi range).
    this.heartbeat = setInterval(() => {
      for (const ws of this.sockets) {
        if ((ws as WebSocket & { alive?: boolean }).alive === false) ws.terminate();
        else {
          (ws as WebSocket & { alive?: boolean }).alive = false;
          ws.ping();
        }
      }
    }, 30_000);
    this.heartbeat.unref();
  }

  connections(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private reject(socket: Duplex, status: number, code: string, message: string): void {
    const body = JSON.stringify({ error: { code, message } });
    socket.end(
      `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  private async accept(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const token = bearer(req) ?? url.searchParams.get('token') ?? undefined;
    const device = token ? await this.stores.authenticate(token) : undefined;
    if (!device)
      return this.reject(
        socket,
        401,
        'unauthorized',
        'connect with a device token: Authorization: Bearer <token>',
      );
    const afterText = url.searchParams.get('after');
    if (afterText !== null && !/^\d{1,15}$/.test(afterText))
      return this.reject(socket, 400, 'invalid_cursor', 'after must be an event sequence number');
    const latest = await this.events.latestSeq(device.storeId);
    let cursor = afterText === null ? latest : Number(afterText);

    this.wss.handleUpgrade(req, socket, head, async (ws) => {
      this.sockets.add(ws);
      (ws as WebSocket & { alive?: boolean }).alive = true;
      ws.on('pong', () => ((ws as WebSocket & { alive?: boolean }).alive = true));
      this.metrics.inc('payconnect_push_connections_total');
      // One delivery at a time per connection, so frames always leave in sequence order.
      let chain = Promise.resolve();
      // The newest event this connection was told of: it reads until it has sent that one.
      let told = 0;
      // `first`: the read right after this connection subscribed. A shared read under way then may
      // have started before an event whose news came before the subscription (so `told` does not know
      // it): that read starts on its own.
      const deliver = (_storeId?: string, seq?: number, first = false) => {
        if (seq !== undefined && seq > told) told = seq;
        chain = chain.then(async () => {
          // The devices of a store that are caught up share one read (EventsService.frames). A shared
          // read may have started just before the event it was told of committed: then it reads again,
          // on its own.
          for (let fresh = first; ws.readyState === WebSocket.OPEN;) {
            const frames = await this.events.frames(device.storeId, cursor, READ_LIMIT, fresh);
            if (ws.readyState !== WebSocket.OPEN) return;
            if (frames.length === 0) {
              if (cursor >= told || fresh) return;
              fresh = true;
              continue;
            }
            for (const f of frames) {
              ws.send(f.text);
              cursor = f.seq;
            }
            this.metrics.inc('payconnect_push_frames_total', {}, frames.length);
            // Every event committed after this read started is announced on its own, and comes by that.
            if (frames.length < READ_LIMIT && cursor >= told) return;
            fresh = false;
          }
        });
        // A read that failed (the database unreachable for a moment) is tried again, on its own, a
        // second later while an event this device was told of has not gone out: with reads shared, one
        // failure would otherwise hold every caught-up device of the store until the store's next event.
        chain = chain.catch(() => {
          if (cursor < told && ws.readyState === WebSocket.OPEN)
            setTimeout(() => deliver(undefined, undefined, true), READ_RETRY_MS).unref();
        });
      };
      const unsubscribe = await this.events.subscribe(device.storeId, deliver);
      ws.on('close', () => {
        unsubscribe();
        this.sockets.delete(ws);
      });
      ws.on('error', () => undefined);
      ws.send(
        JSON.stringify({
          type: 'hello',
          deviceId: device.deviceId,
          storeId: device.storeId,
          latestSeq: latest,
        }),
      );
      deliver(undefined, undefined, true);
    });
  }
}
