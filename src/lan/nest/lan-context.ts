/**
 * The context a Nest handler receives with a LAN message: who sealed it, where it came from, its id.
 * Use `@Ctx() ctx: LanContext` beside `@Payload()`.
 */
import { BaseRpcContext } from '@nestjs/microservices';
import { LanInbound } from '../lan-endpoint';

export class LanContext extends BaseRpcContext<[LanInbound]> {
  constructor(message: LanInbound) {
    super([message]);
  }

  getMessage(): LanInbound {
    return this.args[0];
  }

  /** The device id that sealed the message (verified by the store key). */
  getSender(): string {
    return this.args[0].sender;
  }

  getFrom(): { address: string; port: number } {
    return this.args[0].from;
  }

  getMessageId(): string {
    return this.args[0].id;
  }
}
