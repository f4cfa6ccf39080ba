/**
 * The plugin's view of the payment server: register once, read signed results (push and poll), cancel a
 * pending payment when the host cancels. The plugin never charges; it only learns and verifies results.
 */
import { WebSocket } from 'ws';
import { verifyPaymentResult } from '../protocol/payment-signature';
import { Payment } from '../protocol/states';

export interface SignedResult {
  payment: Payment;
  signature: string;
}

export interface PluginRegistration {
  deviceId: string;
  storeId: string;
  token: string;
  lanKey: { id: number; version: number; key: string };
  lanKeys: { id: number; version: number; key: string }[];
  serverPublicKey: string;
}

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

  /** Signed `payment.updated` frames, from `after()` on, reconnecting; unverifiable frames are dropped. */
  listen(opts: {
    publicKey: string;
    after: () => number;
    onEvent: (e: SignedResult & { seq: number }) => void;
    onState: (up: boolean) => void;
  }): () => void {
    let ws: WebSocket | undefined;
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;
    const connect = () => {
      if (stopped) return;
      ws = new WebSocket(`${this.baseUrl.replace(/^http/, 'ws')}/v1/events?after=${opts.after()}`, {
        headers: { authorization: `Bearer ${this.token}` },
      });
      ws.on('open', () => opts.onState(true));
      ws.on('message', (data) => {
        let f: { type?: string; seq?: number; payment?: unknown; signature?: unknown };
        try {
          f = JSON.parse(String(data));
        } catch {
          return;
        }
        if (f.type !== 'payment.updated' || typeof f.seq !== 'number') return;
        if (!verifyPaymentResult(f.payment, f.signature, opts.publicKey)) return;
        opts.onEvent({ payment: f.payment, signature: f.signature as string, seq: f.seq });
      });
      ws.on('error', () => undefined);
      ws.on('close', () => {
        opts.onState(false);
        if (!stopped) retry = setTimeout(connect, 1000);
      });
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(retry);
      ws?.terminate();
    };
  }
}
