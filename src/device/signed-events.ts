/**
 * What plugins and units share about the payment server's push: a WebSocket to `/v1/events` that
 * reconnects with the device's cursor (the last sequence it saw), so nothing pushed while it was away is
 * missed, and that passes on only frames whose server signature verifies with the pinned public key.
 */
import { WebSocket } from 'ws';
import { verifyPaymentResult } from '../protocol/payment-signature';
import { Payment } from '../protocol/states';

export interface SignedPayment {
  payment: Payment;
  signature: string;
}

export interface SignedEventsOptions {
  baseUrl: string;
  token: string;
  publicKey: string;
  /** The device's own store: a result signed for another store is not believed. */
  storeId: string;
  /** The cursor to resume from, read at every (re)connect. */
  after: () => number;
  onEvent: (e: SignedPayment & { seq: number }) => void;
  /**
   * Whether an event is this device's business (a payment of its own orders), asked before the signature is
   * checked; an event it does not want goes to `onSkipped` instead of `onEvent`, unverified and unread. Skipping
   * is always safe: a device acts only on events it wants, and only once they verify. Without it, every event.
   */
  wants?: (payment: unknown) => boolean;
  onSkipped?: (seq: number) => void;
  onState?: (up: boolean) => void;
  reconnectMs?: number;
}

/** Starts listening; returns a function that stops. */
export function listenSignedEvents(o: SignedEventsOptions): () => void {
  let ws: WebSocket | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = () => {
    if (stopped) return;
    ws = new WebSocket(`${o.baseUrl.replace(/^http/, 'ws')}/v1/events?after=${o.after()}`, {
      headers: { authorization: `Bearer ${o.token}` },
    });
    ws.on('open', () => o.onState?.(true));
    ws.on('message', (data) => {
      let frame: { type?: string; seq?: number; payment?: unknown; signature?: unknown };
      try {
        frame = JSON.parse(String(data));
      } catch {
        return;
      }
      if (frame.type !== 'payment.updated' || typeof frame.seq !== 'number') return;
      if (o.wants && !o.wants(frame.payment)) return o.onSkipped?.(frame.seq);
      if (!verifyPaymentResult(frame.payment, frame.signature, o.publicKey, o.storeId)) return;
      o.onEvent({ payment: frame.payment, signature: frame.signature as string, seq: frame.seq });
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      o.onState?.(false);
      if (!stopped) retry = setTimeout(connect, o.reconnectMs ?? 1000);
    });
  };
  connect();
  return () => {
    stopped = true;
    clearTimeout(retry);
    ws?.terminate();
  };
}
