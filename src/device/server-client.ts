/**
 * The one client both device apps use to reach the payment server (docs/server-api.md), and the contract
 * a fake payment server implements for specs (src/device/fake-payment-server.ts).
 *
 * Failures are PayconnectErrors from server-errors.ts, each raw HTTP outcome mapped explicitly in
 * `serverErrorOf`; which of them are worth retrying, and why, is `retryable` below.
 */
import { Payment } from '../protocol/states';
import { DeviceRegistration } from './device-http';
import {
  LocalRequestError,
  ServerConflictError,
  ServerKeyInUseError,
  ServerRefusedError,
  ServerUnavailableError,
} from './server-errors';
import { listenSignedEvents, SignedEventsOptions, SignedPayment } from './signed-events';

export type { SignedPayment };

/** How long a request may take before its outcome counts as unknown. */
export const SERVER_REQUEST_TIMEOUT_MS = 10_000;

export type DeviceRole = 'plugin' | 'terminal';

/** A device's LAN keys and the server's signing key, as `GET /v1/devices/me` answers. */
export interface DeviceKeys {
  lanKeys: { id: number; version: number; key: string }[];
  serverPublicKey: string;
}

export type PaymentEventsOptions = Omit<SignedEventsOptions, 'baseUrl' | 'token'>;

/** What the device apps ask of the payment server. ServerClient is the real one; FakePaymentServer a fake. */
export interface PaymentServer {
  readonly baseUrl: string;
  register(input: {
    code: string;
    deviceId: string;
    role: DeviceRole;
    name: string;
  }): Promise<DeviceRegistration>;
  me(): Promise<DeviceKeys>;
  /** Charges a wallet code; `key` is the Idempotency-Key (a retry with it can never charge twice). */
  createPayment(key: string, body: unknown): Promise<Payment>;
  /** The payment a request with this key created, signed; empty when no try of it reached the server. */
  byIdempotencyKey(key: string): Promise<SignedPayment[]>;
  /** Every payment of an order, each signed. */
  resultsOf(orderId: string): Promise<SignedPayment[]>;
  /**
   * The register canceled the order (the plugin only): the server takes no new payment for it from now on
   * (409 order_canceled) and answers with its payments as they stand, each signed.
   */
  closeOrder(orderId: string): Promise<SignedPayment[]>;
  signed(paymentId: string): Promise<SignedPayment>;
  cancelPayment(paymentId: string): Promise<Payment>;
  /** The store's signed payment events from the cursor on; returns a function that stops listening. */
  listen(opts: PaymentEventsOptions): () => void;
}

/**
 * Whether a failed request is worth sending again, unchanged (same idempotency key):
 * - unavailable (no answer, a timeout, 5xx, 429): yes. The outcome is unknown; the same key makes a second
 *   try either the first one's answer or the first real attempt, never a second charge.
 * - key in use (409): yes, shortly. The first try is still running at the server; its answer will come.
 * - refused (4xx) and conflict (409): no. The server decided; the same request gets the same answer.
 * - could not be built (LocalRequestError): no. Nothing was sent, and it would fail the same way again.
 * - anything else (a bug on our side after the request may have left): no blind retry; the caller asks
 *   the server what happened instead (by idempotency key or payment id).
 */
export function retryable(e: unknown): boolean {
  return e instanceof ServerUnavailableError;
}

/**
 * The wait before retry number `tries` (0-based): 250 ms doubling to 5 s, or what the server asked for
 * (Retry-After) when that is longer. Short at first because a shop's uplink usually blips for under a
 * second; capped at 5 s so the clerk's screen learns the outcome soon after the server is back.
 */
export function retryDelayMs(tries: number, e?: unknown): number {
  const backoff = Math.min(5000, 250 * 2 ** Math.min(tries, 5));
  const asked = e instanceof ServerUnavailableError ? (e.retryAfterMs ?? 0) : 0;
  return Math.max(backoff, Math.min(asked, 60_000));
}

/** The error for an HTTP answer that is not a success. */
export function serverErrorOf(status: number, body: unknown, retryAfter: string | null, what: string): Error {
  const err = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof err?.code === 'string' ? err.code : `http_${status}`;
  const message = typeof err?.message === 'string' ? err.message : undefined;
  const afterMs = retryAfterMs(retryAfter);
  if (status === 409 && code === 'idempotency_key_in_use')
    return new ServerKeyInUseError(`${what}: the first try is still running at the server`, status, afterMs);
  if (status >= 500 || status === 429)
    return new ServerUnavailableError(
      `the payment server answered ${status} to ${what}${message ? `: ${message}` : ''}`,
      status,
      afterMs,
    );
  const text = message ?? `the payment server refused ${what} (${status})`;
  if (status === 409) return new ServerConflictError(status, code, text);
  return new ServerRefusedError(status, code, text);
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export class ServerClient implements PaymentServer {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
    private readonly timeoutMs = SERVER_REQUEST_TIMEOUT_MS,
  ) {}

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const what = `${method} ${path.split('?')[0]}`;
    let request: Request;
    try {
      request = new Request(`${this.baseUrl}${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new LocalRequestError(
        `this device could not build its request ${what} (nothing was sent): ${(e as Error).message}`,
        { cause: e },
      );
    }
    let res: Response;
    let text: string;
    try {
      res = await fetch(request);
      text = await res.text();
    } catch (e) {
      throw new ServerUnavailableError(
        `the payment server at ${this.baseUrl} did not answer ${what}: ${(e as Error).message}`,
        undefined,
        undefined,
        { cause: e },
      );
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) throw serverErrorOf(res.status, parsed, res.headers.get('retry-after'), what);
    return parsed as T;
  }

  register(input: {
    code: string;
    deviceId: string;
    role: DeviceRole;
    name: string;
  }): Promise<DeviceRegistration> {
    return this.call<DeviceRegistration>('POST', '/v1/devices/register', input);
  }

  me(): Promise<DeviceKeys> {
    return this.call<DeviceKeys>('GET', '/v1/devices/me');
  }

  createPayment(key: string, body: unknown): Promise<Payment> {
    return this.call<Payment>('POST', '/v1/payments', body, { 'idempotency-key': key });
  }

  byIdempotencyKey(key: string): Promise<SignedPayment[]> {
    return this.call<SignedPayment[]>(
      'GET',
      `/v1/payments?idempotencyKey=${encodeURIComponent(key)}&signed=true`,
    );
  }

  resultsOf(orderId: string): Promise<SignedPayment[]> {
    return this.call<SignedPayment[]>(
      'GET',
      `/v1/payments?orderId=${encodeURIComponent(orderId)}&signed=true`,
    );
  }

  async closeOrder(orderId: string): Promise<SignedPayment[]> {
    const r = await this.call<{ payments: SignedPayment[] }>('POST', '/v1/orders/cancel', { orderId });
    return r.payments;
  }

  signed(paymentId: string): Promise<SignedPayment> {
    return this.call<SignedPayment>('GET', `/v1/payments/${encodeURIComponent(paymentId)}?signed=true`);
  }

  cancelPayment(paymentId: string): Promise<Payment> {
    return this.call<Payment>('POST', `/v1/payments/${encodeURIComponent(paymentId)}/cancel`, {});
  }

  listen(opts: PaymentEventsOptions): () => void {
    return listenSignedEvents({ ...opts, baseUrl: this.baseUrl, token: this.token ?? '' });
  }
}
