/**
 * The ClientProxy that matches ServerLan. `emit(type, body)` delivers an acknowledged message and completes
 * with the delivery report; `send(type, body)` also waits for the answer naming it (`claim` ->
 * `claim.granted`/`claim.denied`) and emits that answer as `{type, body, sender}`.
 *
 * Messages go to the client's default `peer`, or wherever a `lanTo(target, body)` payload says.
 */
import { ClientProxy, ReadPacket, WritePacket } from '@nestjs/microservices';
import { LanBody, LanMessageType } from '../../protocol/lan-messages';
import { LanEndpoint, LanTarget } from '../lan-endpoint';
import { LanAddressed } from './lan-reply';

export interface ClientLanOptions {
  endpoint: LanEndpoint;
  /** Where messages go when the payload does not say (for a unit: its plugin). */
  peer?: LanTarget;
  /** Deadline for delivery and for the answer to `send`, ms. */
  timeoutMs?: number;
}

export class ClientLan extends ClientProxy {
  constructor(private readonly options: ClientLanOptions) {
    super();
  }

  async connect(): Promise<LanEndpoint> {
    return this.options.endpoint;
  }

  async close(): Promise<void> {
    // The endpoint is shared with the app (and usually with ServerLan), which closes it.
  }

  unwrap<T>(): T {
    return this.options.endpoint as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    let disposed = false;
    const { type, target, body, options } = this.resolve(packet);
    this.options.endpoint
      .request(type, body as never, target, options.deadlineMs ?? this.options.timeoutMs)
      .then(
        (reply) =>
          !disposed &&
          callback({
            response: { type: reply.type, body: reply.body, sender: reply.sender },
            isDisposed: true,
          }),
        (err) => !disposed && callback({ err, isDisposed: true }),
      );
    return () => {
      disposed = true;
    };
  }

  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    const { type, target, body, options } = this.resolve(packet);
    return (await this.options.endpoint.send(type, body as never, target, {
      deadlineMs: options.deadlineMs ?? this.options.timeoutMs,
      expect: options.expect,
    })) as T;
  }

  private resolve(packet: ReadPacket): {
    type: LanMessageType;
    target: LanTarget;
    body: LanBody;
    options: { deadlineMs?: number; expect?: string[] };
  } {
    const type = packet.pattern as LanMessageType;
    if (packet.data instanceof LanAddressed) {
      return {
        type,
        target: packet.data.target,
        body: packet.data.body as LanBody,
        options: packet.data.options,
      };
    }
    if (!this.options.peer)
      throw new Error(`ClientLan has no default peer: wrap the ${type} body with lanTo(target, body)`);
    return { type, target: this.options.peer, body: packet.data as LanBody, options: {} };
  }
}
