/**
 * What can go wrong between a device (the plugin, a unit) and the payment server, by what it means for
 * money. Each class maps raw HTTP outcomes explicitly (see `serverErrorOf` in server-client.ts):
 *
 * - ServerRefusedError (4xx): the server read the request and said no (a bad code, a bad amount, a
 *   payment that is not ours). Nothing was done; sending the same request again changes nothing.
 * - ServerConflictError (409, except a key in use): the request was understood but the thing it is about
 *   is in another state (cancel of a payment that succeeded, refund of one that cannot be refunded). A
 *   final answer: read the thing's state instead of retrying.
 * - ServerKeyInUseError (409 `idempotency_key_in_use`): the same request is still running at the server.
 *   Retry the same request shortly; its outcome is not known yet.
 * - ServerUnavailableError (no answer, timeout, 5xx, 429): the outcome is unknown. Retry the same request
 *   (same idempotency key) or ask about it; never start a new charge.
 * - LocalRequestError: the request could not even be built here (a header value fetch refuses). Nothing
 *   left the device, so nothing happened, and retrying fails the same way.
 *
 * Which of these are retried, and why, is one function: `retryable` in server-client.ts.
 */
import { PayconnectError, TransportError } from '../protocol/errors';

/** The server answered 4xx: the request itself was wrong. `serverCode` is the server's own error code. */
export class ServerRefusedError extends PayconnectError {
  constructor(
    readonly status: number,
    readonly serverCode: string,
    message: string,
  ) {
    super('server.refused', message, { subject: serverCode });
  }
}

/** 409: what the request is about is in another state; a final answer, not a reason to retry. */
export class ServerConflictError extends ServerRefusedError {}

/** No answer, a timeout, a 5xx or a 429: the outcome is unknown. `retryAfterMs` when the server said. */
export class ServerUnavailableError extends TransportError {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super('server.unavailable', message, { subject: 'payment server', cause: options?.cause });
  }
}

/** 409 idempotency_key_in_use: the first try of this request is still running; retry it shortly. */
export class ServerKeyInUseError extends ServerUnavailableError {}

/** The request could not be built on this device; nothing was sent. */
export class LocalRequestError extends PayconnectError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('server.request_not_built', message, options);
  }
}
