/**
 * The unit's client for the payment server. Two kinds of failure, kept apart because they mean opposite
 * things for money:
 * - ServerRefusal: the server answered 4xx. The request was wrong (bad code, bad amount); nothing will
 *   change by retrying it.
 * - ServerUnavailable: no answer, a timeout, or a 5xx. The outcome is unknown; retry the *same* request
 *   (same idempotency key) or ask about it; never start a new charge.
 * A third kind never reaches the network: LocalRequestError, a request this unit could not even build
 * (a header value fetch refuses, a body that does not serialise). Nothing was sent, so nothing was charged,
 * and retrying would fail the same way: it is shown, never mistaken for "the server is unreachable".
 */
import { DeviceRegistration } from '../device/device-http';
import { listenSignedEvents, SignedEventsOptions, SignedPayment } from '../device/signed-events';
import { Payment } from '../protocol/states';

export type { SignedPayment };

export class ServerRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ServerUnavailable extends Error {}

export class LocalRequestError extends Error {}

export type RegistrationAnswer = DeviceRegistration;

export class ServerClient {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
    private readonly timeoutMs = 10_000,
  ) {}

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T }> {
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
        `this unit could not build its request ${method} ${path} (nothing was sent): ${(e as Error).message}`,
      );
    }
    let res: Response;
    let text: string;
    try {
      res = await fetch(request);
      text = await res.text();
    } catch (e) {
      throw new ServerUnavailable(
        `the payment server at ${this.baseUrl} did not answer: ${(e as Error).message}`,
      );
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.status >= 500 || res.status === 409 || res.status === 429) {
      throw new ServerUnavailable(`the payment server answered ${res.status}${errorText(parsed)}`);
    }
    if (res.status >= 400) {
      const err = (parsed as { error?: { code?: string; message?: string } })?.error;
      throw new ServerRefusal(
        res.status,
        err?.code ?? `http_${res.status}`,
        err?.message ?? `the server refused the request (${res.status})`,
      );
    }
    return { status: res.status, body: parsed as T };
  }

  register(input: {
    code: string;
    deviceId: string;
    role: 'terminal';
    name: string;
  }): Promise<RegistrationAnswer> {
    return this.call<RegistrationAnswer>('POST', '/v1/devices/register', input).then((r) => r.body);
  }

  me(): Promise<{ lanKeys: { id: number; version: number; key: string }[]; serverPublicKey: string }> {
    return this.call<{ lanKeys: { id: number; version: number; key: string }[]; serverPublicKey: string }>(
      'GET',
      '/v1/devices/me',
    ).then((r) => r.body);
  }

  createPayment(key: string, body: unknown): Promise<Payment> {
    return this.call<Payment>('POST', '/v1/payments', body, { 'idempotency-key': key }).then((r) => r.body);
  }

  /** The payment a request with this key created, signed; empty when the request never reached the server. */
  byIdempotencyKey(key: string): Promise<SignedPayment[]> {
    return this.call<SignedPayment[]>(
      'GET',
      `/v1/payments?idempotencyKey=${encodeURIComponent(key)}&signed=true`,
    ).then((r) => r.body);
  }

  cancelPayment(paymentId: string): Promise<Payment> {
    return this.call<Payment>('POST', `/v1/payments/${encodeURIComponent(paymentId)}/cancel`, {}).then(
      (r) => r.body,
    );
  }

  signed(paymentId: string): Promise<SignedPayment> {
    return this.call<SignedPayment>('GET', `/v1/payments/${encodeURIComponent(paymentId)}?signed=true`).then(
      (r) => r.body,
    );
  }

  /** The store's signed payment events, from the cursor on (see src/device/signed-events.ts). */
  listen(opts: Omit<SignedEventsOptions, 'baseUrl' | 'token'>): () => void {
    return listenSignedEvents({ ...opts, baseUrl: this.baseUrl, token: this.token ?? '' });
  }
}

function errorText(body: unknown): string {
  const m = (body as { error?: { message?: string } })?.error?.message;
  return m ? `: ${m}` : '';
}
