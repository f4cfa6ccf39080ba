/**
 * The plugin's view of the payment server: register once, read signed results (push and poll), cancel a
 * pending payment when the host cancels. The plugin never charges; it only learns and verifies results.
 */
import { DeviceRegistration } from '../device/device-http';
import { listenSignedEvents, SignedEventsOptions, SignedPayment } from '../device/signed-events';
import { Payment } from '../protocol/states';

export type SignedResult = SignedPayment;

export type PluginRegistration = DeviceRegistration;

export class ServerUnreachable extends Error {}

export class PluginServerClient {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (e) {
      throw new ServerUnreachable(
        `the payment server at ${this.baseUrl} did not answer: ${(e as Error).message}`,
      );
    }
    const data = (await res.json().catch(() => undefined)) as T & { error?: { message?: string } };
    if (!res.ok) {
      const message = data?.error?.message ?? `HTTP ${res.status}`;
      if (res.status >= 500)
        throw new ServerUnreachable(`the payment server answered ${res.status}: ${message}`);
      throw new Error(`the payment server refused ${method} ${path}: ${message}`);
    }
    return data;
  }

  register(input: { code: string; deviceId: string; name: string }): Promise<PluginRegistration> {
    return this.call<PluginRegistration>('POST', '/v1/devices/register', { ...input, role: 'plugin' });
  }

  /** Every payment of an order, each with the server's signature. */
  resultsOf(orderId: string): Promise<SignedResult[]> {
    return this.call<SignedResult[]>(
      'GET',
      `/v1/payments?orderId=${encodeURIComponent(orderId)}&signed=true`,
    );
  }

  cancel(paymentId: string): Promise<Payment> {
    return this.call<Payment>('POST', `/v1/payments/${encodeURIComponent(paymentId)}/cancel`, {});
  }

  /** Signed `payment.updated` frames from the cursor on (see src/device/signed-events.ts). */
  listen(opts: Omit<SignedEventsOptions, 'baseUrl' | 'token'>): () => void {
    return listenSignedEvents({ ...opts, baseUrl: this.baseUrl, token: this.token ?? '' });
  }
}
