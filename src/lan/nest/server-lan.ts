/**
 * A Nest custom transport over the payconnect LAN: apps handle LAN messages with `@EventPattern('offer')`
 * or `@MessagePattern('claim')`, where the pattern is the LAN message type.
 *
 * Event handlers: the message is acknowledged once the handler's promise resolves; a handler that throws
 * leaves it unacknowledged, so the sender retries (and de-duplication keeps that exactly once).
 * Message handlers: the value returned (a LanReply, see lan-reply.ts) is sent back to the sender as its
 * own acknowledged message, carrying `re` = the request's id.
 * A message no handler takes is answered as Nest's own transports do (NO_MESSAGE_HANDLER): the endpoint
 * answers the sender `unhandled` instead of an ack, so it stops retrying and says so at once.
 */
import { CustomTransportStrategy, Server } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import { LAN_UNHANDLED, LanEndpoint, LanInbound } from '../lan-endpoint';
import { LanContext } from './lan-context';
import { LanReply } from './lan-reply';

export const LAN_TRANSPORT = Symbol('payconnect-lan');

export type LanServerStatus = 'listening' | 'closed';

export interface ServerLanOptions {
  /** Opens the endpoint (sockets, keys) when Nest starts listening. */
  endpoint: () => LanEndpoint | Promise<LanEndpoint>;
}

export class ServerLan
  extends Server<Record<string, never>, LanServerStatus>
  implements CustomTransportStrategy
{
  override readonly transportId = LAN_TRANSPORT;
  private endpoint?: LanEndpoint;
  private unsubscribe?: () => void;

  constructor(private readonly options: ServerLanOptions) {
    super();
  }

  async listen(callback: (err?: unknown) => void): Promise<void> {
    try {
      this.endpoint = await this.options.endpoint();
      this.unsubscribe = this.endpoint.onMessage((m) => this.handleMessage(m));
      this._status$.next('listening');
      callback();
    } catch (err) {
      callback(err);
    }
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await this.endpoint?.close();
    this._status$.next('closed');
  }

  on(): void {
    // The endpoint reports problems through its counters and logger; there are no socket events to forward.
  }

  unwrap<T>(): T {
    if (!this.endpoint) throw new Error('ServerLan is not listening yet');
    return this.endpoint as T;
  }

  private async handleMessage(message: LanInbound): Promise<void | typeof LAN_UNHANDLED> {
    // Our patterns are plain type names, the keys Nest stores handlers under: looked up directly. Nest's own
    // getHandlerByPattern (and handleEvent, which calls it) first tries each pattern as JSON, and that
    // failed parse was two thirds of Nest's cost per LAN message (docs/BENCHMARKS.md, "What Nest costs").
    const handler = this.messageHandlers.get(message.type);
    if (!handler) return LAN_UNHANDLED;
    const context = new LanContext(message);
    if (handler.isEventHandler) {
      // Acknowledged once the handler (and any stream it returns) has finished, as handleEvent would run it.
      const result = await handler(message.body, context);
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
      return;
    }
    const result$ = this.transformToObservable(await handler(message.body, context));
    const reply = (await lastValueFrom(result$, { defaultValue: undefined })) as LanReply | undefined;
    if (!reply) return;
    // The request is acknowledged when this returns; the reply is delivered on its own schedule.
    this.endpoint!.send(reply.type, { ...reply.body, re: message.id } as never, {
      kind: 'unicast',
      to: message.sender,
      ...message.from,
    }).catch((err) =>
      this.logger.warn?.(
        `reply ${reply.type} to ${message.sender} was not delivered: ${(err as Error).message}`,
      ),
    );
  }
}
