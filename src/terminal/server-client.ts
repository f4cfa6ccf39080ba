/**
 * The unit's client for the payment server. Two kinds of failure, kept apart because they mean opposite
 * things for money:
 * - ServerRefusal: the server answered 4xx. The request was wrong (bad code, bad amount); nothing will
 *   change by retrying it.
 * - ServerUnavailable: no answer, a timeout, or a 5xx. The outcome is unknown; retry the *same* request
 *   (same idempotency key) or ask about it; never start a new charge.
 */
import { WebSocket } from 'ws';
import { Payment } from '../protocol/states';
import { verifyPaymentResult } from '../protocol/payment-signature';

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

export interface SignedPayment {
  payment: Payment;
  signature: string;
}

export interface RegistrationAnswer {
  deviceId: string;
  storeId: string;
  token: string;
  lanKey: { id: number; version: number; key: string };
  lanKeys: { id: number; version: number; key: string }[];
  serverPublicKey: string;
}

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
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
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
      throw new ServerUnavailable(
        `the payment server at ${this.baseUrl} did not answer: ${(e as Error).message}`,
      );
    }
    const text = await res.text();
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

  /**
   * Listens to the store's signed payment events, reconnecting with the last sequence seen, so nothing
   * pushed while the unit was offline is missed. Only frames whose signature verifies are passed on.
   */
  listen(opts: {
    publicKey: string;
    after: () => number;
    onEvent: (e: SignedPayment & { seq: number }) => void;
    onState?: (up: boolean) => void;
  }): () => void {
    let ws: WebSocket | undefined;
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;
    const connect = () => {
      if (stopped) return;
      const url = `${this.baseUrl.replace(/^http/, 'ws')}/v1/events?after=${opts.after()}`;
      ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.token}` } });
      ws.on('open', () => opts.onState?.(true));
      ws.on('message', (data) => {
        let frame: { type?: string; seq?: number; payment?: Payment; signature?: string };
        try {
          frame = JSON.parse(String(data));
        } catch {
          return;
        }
        if (frame.type !== 'payment.updated' || typeof frame.seq !== 'number') return;
        if (!verifyPaymentResult(frame.payment, frame.signature, opts.publicKey)) return;
        opts.onEvent({
          payment: frame.payment as Payment,
          signature: frame.signature as string,
          seq: frame.seq,
        });
      });
      ws.on('error', () => undefined);
      ws.on('close', () => {
        opts.onState?.(false);
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

function errorText(body: unknown): string {
  const m = (body as { error?: { message?: string } })?.error?.message;
  return m ? `: ${m}` : '';
}
