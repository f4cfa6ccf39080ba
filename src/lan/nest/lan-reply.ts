import { LanBody, LanMessageType } from '../../protocol/lan-messages';
import { LanTarget } from '../lan-endpoint';

/**
 * What a `@MessagePattern` handler returns to answer a LAN request: the answer's type and body. The
 * transport adds `re` (the request's id) and delivers it, acknowledged, to the device that asked.
 */
export interface LanReply<T extends LanMessageType = LanMessageType> {
  type: T;
  body: Omit<LanBody<T>, 're'>;
}

export function lanReply<T extends LanMessageType>(type: T, body: Omit<LanBody<T>, 're'>): LanReply<T> {
  return { type, body };
}

/** A payload for ClientLan that names its own destination instead of the client's default peer. */
export class LanAddressed<T = unknown> {
  constructor(
    readonly target: LanTarget,
    readonly body: T,
    readonly options: { deadlineMs?: number; expect?: string[] } = {},
  ) {}
}

export function lanTo<T>(
  target: LanTarget,
  body: T,
  options?: { deadlineMs?: number; expect?: string[] },
): LanAddressed<T> {
  return new LanAddressed(target, body, options);
}
