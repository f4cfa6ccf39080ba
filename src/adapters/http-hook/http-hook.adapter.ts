/**
 * The http-hook adapter: the host POSTs each order to the plugin, and gets each result back as a signed
 * POST to its callback URL.
 *
 * The adapter owns no HTTP server: the plugin's controller for `POST <options.path>` hands the parsed
 * body to `accept(body)`, which parses it (parse.ts) and calls `ctx.onOrder`. A bad body is reported to
 * `ctx.onReject` and thrown as a ProtocolError for the controller to answer 400 with.
 *
 * Write-back POSTs the result document (result-document.ts) as JSON with two headers:
 *
 * - `X-Payconnect-Signature: sha256=<hex>`: HMAC-SHA256 of the exact body bytes under the manifest's
 *   secret. Hosts check it with `verifyCallbackSignature` (or the same three lines in their language)
 *   before they trust the status: anyone on the LAN can POST to the callback URL.
 * - `X-Payconnect-Delivery: <orderId>:<status>`: the same on every retry of the same result, so a host
 *   that saw it already can answer 200 and do nothing. The order id is percent-encoded (as by
 *   encodeURIComponent) so that any id fits in a header and the last `:` always precedes the status.
 *
 * Any 2xx is success. Anything else — another status, a redirect (never followed: the signed result is
 * not sent on to wherever a redirect points), a timeout, a refused connection — is a WriteBackError
 * naming the URL and what happened; the plugin retries with backoff, and the delivery id makes a retry
 * after a lost 200 harmless.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Clock } from '../../protocol/clock';
import { ManifestError, ProtocolError, TransportError, WriteBackError } from '../../protocol/errors';
import type { AdapterEnv } from '../adapter-env';
import { AdapterContext, CapturedOrder, HostAdapter, OrderResult } from '../host-adapter';
import type { HttpHookManifest } from '../manifest';
import { resultDocument } from '../result-document';
import { parseOrderBody } from './parse';

export const SIGNATURE_HEADER = 'X-Payconnect-Signature';
export const DELIVERY_HEADER = 'X-Payconnect-Delivery';

export interface HttpHookConfig {
  registerId: string;
  currency: string;
  path: string;
  callback: string;
  secret: string;
  timeoutMs: number;
}

export class HttpHookAdapter implements HostAdapter {
  readonly kind = 'http-hook';
  private ctx?: AdapterContext;
  private readonly counts = { orders: 0, rejected: 0, callbacks: 0, callbackFailures: 0 };

  constructor(
    readonly config: HttpHookConfig,
    private readonly deps: { clock: Clock; fetch: typeof fetch },
  ) {}

  /**
   * Nothing to open: the plugin serves the path. The secret was resolved when the adapter was made, and
   * the host's callback server may well be down while the plugin starts, which write-back retries cover.
   */
  async probe(): Promise<void> {}

  /** Orders taken and bodies refused; results delivered to the callback and attempts that failed. */
  stats(): { orders: number; rejected: number; callbacks: number; callbackFailures: number } {
    return { ...this.counts };
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.ctx) throw new Error('the http-hook adapter is already started');
    this.ctx = ctx;
  }

  async stop(): Promise<void> {
    this.ctx = undefined;
  }

  /** The controller's one line: parses the POSTed body and hands the order over; resolves once journaled. */
  async accept(body: unknown, source = 'http'): Promise<CapturedOrder> {
    const ctx = this.ctx;
    if (!ctx) {
      throw new TransportError('http_hook.not_started', 'The http-hook adapter is not taking orders now.');
    }
    let order: CapturedOrder;
    try {
      order = parseOrderBody(
        body,
        { registerId: this.config.registerId, currency: this.config.currency },
        source,
      );
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.counts.rejected++;
        ctx.onReject({ subject: source, code: e.code, message: e.message });
      }
      throw e;
    }
    await ctx.onOrder(order);
    this.counts.orders++;
    return order;
  }

  async writeBack(result: OrderResult): Promise<void> {
    const doc = resultDocument(result);
    const body = JSON.stringify(doc);
    const { callback, secret, timeoutMs } = this.config;
    const controller = new AbortController();
    const timer = this.deps.clock.setTimeout(() => controller.abort(), timeoutMs);
    let status: number;
    try {
      const response = await this.deps.fetch(callback, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          [SIGNATURE_HEADER]: signCallback(body, secret),
          [DELIVERY_HEADER]: deliveryId(doc.orderId, doc.status),
        },
        body,
        redirect: 'manual',
        signal: controller.signal,
      });
      status = response.status;
      // Read the answer so the connection can be reused; what the host says is not needed.
      await response.arrayBuffer().catch(() => undefined);
    } catch (e) {
      this.counts.callbackFailures++;
      const timedOut = controller.signal.aborted;
      throw new WriteBackError(
        timedOut ? 'http_hook.callback_timeout' : 'http_hook.callback_unreachable',
        timedOut
          ? `The callback ${callback} did not answer within ${timeoutMs} ms.`
          : `The callback ${callback} could not be reached: ${causeText(e)}.`,
        { subject: callback, cause: e },
      );
    } finally {
      this.deps.clock.clearTimeout(timer);
    }
    if (status < 200 || status > 299) {
      this.counts.callbackFailures++;
      throw new WriteBackError(
        'http_hook.callback_status',
        `The callback ${callback} answered ${status} to the ${doc.status} result of order ${doc.orderId}; only a 2xx answer counts as delivered.`,
        { subject: callback },
      );
    }
    this.counts.callbacks++;
  }
}

export function createHttpHookAdapter(manifest: HttpHookManifest, env: AdapterEnv): HttpHookAdapter {
  const { writeBack } = manifest;
  let secret: string;
  if ('secret' in writeBack) {
    secret = writeBack.secret;
  } else {
    const value = (env.env ?? process.env)[writeBack.secretEnv];
    if (value === undefined || value.length < 16) {
      throw new ManifestError(
        'http_hook.no_secret',
        `writeBack.secretEnv: the environment variable ${writeBack.secretEnv} is ${value === undefined ? 'not set' : 'shorter than 16 characters'}; set it to the callback secret the host verifies with.`,
        { subject: 'writeBack.secretEnv' },
      );
    }
    secret = value;
  }
  return new HttpHookAdapter(
    {
      registerId: manifest.register,
      currency: manifest.parse.currency,
      path: manifest.options.path,
      callback: writeBack.callback,
      secret,
      timeoutMs: writeBack.timeoutMs,
    },
    { clock: env.clock, fetch: env.fetch ?? globalThis.fetch },
  );
}

/** `sha256=<hex>` of the body under the secret: the X-Payconnect-Signature value. */
export function signCallback(rawBody: string | Uint8Array, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/** `<orderId>:<status>`, the order id percent-encoded: the X-Payconnect-Delivery value. */
export function deliveryId(orderId: string, status: string): string {
  return `${encodeURIComponent(orderId)}:${status}`;
}

/**
 * For hosts (and their tests): true when `header` is the X-Payconnect-Signature of `rawBody` under
 * `secret`. Verify the raw bytes as received, before parsing JSON (re-serialising changes the bytes), and
 * compare in constant time, as this does, so the signature cannot be guessed byte by byte from timing.
 *
 *   const ok = verifyCallbackSignature(rawBody, req.headers['x-payconnect-signature'], secret);
 *   if (!ok) return res.status(401).end();
 */
export function verifyCallbackSignature(
  rawBody: string | Uint8Array,
  header: string | string[] | undefined,
  secret: string,
): boolean {
  if (typeof header !== 'string') return false;
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!match) return false;
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(match[1], 'hex'));
}

function causeText(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
}
