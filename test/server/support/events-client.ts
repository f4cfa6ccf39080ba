/**
 * A device's side of `GET /v1/events` for tests: connects with its bearer token (and an optional cursor),
 * keeps every frame, and waits for frames matching a predicate.
 */
import WebSocket from 'ws';
import { Payment } from '../../../src/protocol/states';

export interface HelloFrame {
  type: 'hello';
  deviceId: string;
  storeId: string;
  latestSeq: number;
}

export interface PaymentFrame {
  type: 'payment.updated';
  seq: number;
  payment: Payment;
  signature: string;
}

export type Frame = HelloFrame | PaymentFrame;

export class EventsClient {
  readonly frames: Frame[] = [];
  private waiters: { check: () => boolean }[] = [];
  private closedReason?: string;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closedReason = `closed (${code})`;
      this.wake();
    });
    ws.on('error', (e) => {
      this.closedReason = `error: ${e.message}`;
      this.wake();
    });
  }

  /** Connects and waits for the hello frame. */
  static async connect(baseUrl: string, token: string, after?: number): Promise<EventsClient> {
    const url = `${baseUrl.replace(/^http/, 'ws')}/v1/events${after === undefined ? '' : `?after=${after}`}`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const client = new EventsClient(ws);
    await client.waitFor((f) => f.type === 'hello', 1, 5000);
    return client;
  }

  get hello(): HelloFrame {
    return this.frames.find((f): f is HelloFrame => f.type === 'hello')!;
  }

  payments(): PaymentFrame[] {
    return this.frames.filter((f): f is PaymentFrame => f.type === 'payment.updated');
  }

  /** Waits until at least `count` frames match; returns them. */
  waitFor<T extends Frame = Frame>(match: (f: Frame) => boolean, count = 1, timeoutMs = 5000): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const found = () => this.frames.filter(match) as T[];
      const waiter = {
        check: () => {
          const got = found();
          if (got.length >= count) {
            clearTimeout(timer);
            resolve(got);
            return true;
          }
          if (this.closedReason) {
            clearTimeout(timer);
            reject(new Error(`events socket ${this.closedReason} after ${JSON.stringify(this.frames)}`));
            return true;
          }
          return false;
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `waited ${timeoutMs} ms for ${count} matching frames; have ${found().length}: ${JSON.stringify(this.frames)}`,
          ),
        );
      }, timeoutMs);
      if (!waiter.check()) this.waiters.push(waiter);
    });
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => !w.check());
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
