/**
 * A fake payment server for specs of the device apps: implements PaymentServer in memory, signs every
 * result with a real Ed25519 key (so the apps' signature checks run for real), keeps each idempotency key's
 * one payment (so "charged twice" is countable), and plays the failures the real one can: unreachable,
 * an answer lost after the charge was taken, a refusal, a key still in use, a customer who confirms later.
 *
 * Like node-serialport's MockBinding it is first-class code: the contract suite in server-client.spec.ts
 * runs the same assertions against it and against the real server through ServerClient.
 */
import { randomUUID } from 'node:crypto';
import { Clock, SystemClock } from '../protocol/clock';
import { isPaymentCode, PAYMENT_CODE_RULE } from '../protocol/payment-code';
import { generateServerKeyPair, ServerKeyPair, signPaymentResult } from '../protocol/payment-signature';
import { Payment, PaymentStatus } from '../protocol/states';
import { DeviceRegistration } from './device-http';
import { DeviceKeys, DeviceRole, PaymentEventsOptions, PaymentServer, SignedPayment } from './server-client';
import {
  ServerConflictError,
  ServerKeyInUseError,
  ServerRefusedError,
  ServerUnavailableError,
} from './server-errors';

/** What the fake does with a charge, by payment code (default: approved at once). */
export type FakeOutcome = 'succeeded' | 'failed' | 'pending';

interface Listener {
  opts: PaymentEventsOptions;
  connected: boolean;
}

export class FakePaymentServer implements PaymentServer {
  readonly baseUrl = 'fake://payment-server';
  readonly keys: ServerKeyPair = generateServerKeyPair();
  readonly lanKey = { id: 1, version: 1, key: Buffer.alloc(32, 7).toString('base64') };
  /** Every call, in order, e.g. `createPayment pc1-…-1`: what a spec asserts was (not) sent. */
  readonly calls: string[] = [];
  /** The server cannot be reached: every call fails with ServerUnavailableError and nothing happens. */
  unreachable = false;
  /** Per payment code; codes not listed are approved at once. */
  readonly outcomes = new Map<string, FakeOutcome>();
  private readonly payments = new Map<string, Payment>();
  private readonly byKey = new Map<string, { paymentId: string; body: string }>();
  private readonly events: (SignedPayment & { seq: number })[] = [];
  private readonly listeners = new Set<Listener>();
  private readonly scripted: { method: string; error: () => Error; afterWork: boolean }[] = [];
  private readonly clock: Clock;

  constructor(
    readonly storeId = 'store_fake',
    options: { clock?: Clock } = {},
  ) {
    this.clock = options.clock ?? new SystemClock();
  }

  get publicKey(): string {
    return this.keys.publicKey;
  }

  // --- scripting ---------------------------------------------------------------------------------

  /** The next call of `method` does its work, then its answer is lost (a timeout after the charge). */
  loseNextAnswer(method: keyof PaymentServer): void {
    this.scripted.push({
      method,
      afterWork: true,
      error: () => new ServerUnavailableError(`fake: the answer to ${method} was lost`),
    });
  }

  /** The next call of `method` fails before doing anything, with this error (default: unreachable). */
  failNext(method: keyof PaymentServer, error?: () => Error): void {
    this.scripted.push({
      method,
      afterWork: false,
      error: error ?? (() => new ServerUnavailableError(`fake: ${method} did not reach the server`)),
    });
  }

  /** The next createPayment answers 409 idempotency_key_in_use without doing anything. */
  keyInUseNext(): void {
    this.failNext(
      'createPayment',
      () => new ServerKeyInUseError('fake: the first try is still running', 409),
    );
  }

  /** Makes the server reachable or not; listeners see the push channel go down or come back. */
  setReachable(up: boolean): void {
    this.unreachable = !up;
    for (const l of this.listeners) this.connect(l);
  }

  /** The customer confirmed (or the provider decided) a pending payment: stored, signed and pushed. */
  decide(paymentId: string, status: Exclude<PaymentStatus, 'pending'>): Payment {
    const p = this.payments.get(paymentId);
    if (!p) throw new Error(`fake: no payment ${paymentId}`);
    return this.update(p, { status, ...(status === 'failed' ? { failure: failure() } : {}) });
  }

  // --- what a spec reads -------------------------------------------------------------------------

  /** Every payment of an order, in creation order: an order charged twice shows two succeeded ones. */
  paymentsOf(orderId: string): Payment[] {
    return [...this.payments.values()].filter((p) => p.orderId === orderId);
  }

  payment(id: string): Payment | undefined {
    return this.payments.get(id);
  }

  sign(p: Payment): SignedPayment {
    return { payment: p, signature: signPaymentResult(p, this.storeId, this.keys.privateKey) };
  }

  // --- PaymentServer -----------------------------------------------------------------------------

  async register(input: {
    code: string;
    deviceId: string;
    role: DeviceRole;
    name: string;
  }): Promise<DeviceRegistration> {
    return this.call('register', input.deviceId, () => {
      if (input.code !== 'GOOD-CODE')
        throw new ServerRefusedError(400, 'invalid_code', 'this registration code is not valid');
      return {
        deviceId: input.deviceId,
        storeId: this.storeId,
        token: `token-${input.deviceId}`,
        lanKey: this.lanKey,
        lanKeys: [this.lanKey],
        serverPublicKey: this.publicKey,
      };
    });
  }

  async me(): Promise<DeviceKeys> {
    return this.call('me', '', () => ({ lanKeys: [this.lanKey], serverPublicKey: this.publicKey }));
  }

  async createPayment(key: string, body: unknown): Promise<Payment> {
    return this.call('createPayment', key, () => {
      const text = JSON.stringify(body);
      const known = this.byKey.get(key);
      if (known) {
        if (known.body !== text)
          throw new ServerRefusedError(422, 'idempotency_key_reused', 'fake: key reused with another body');
        return this.payments.get(known.paymentId)!;
      }
      const b = body as {
        orderId: string;
        registerId: string;
        amount: { value: number; currency: string };
        method: { code: string };
      };
      if (this.closed.has(b.orderId))
        throw new ServerConflictError(
          409,
          'order_canceled',
          `order ${b.orderId} was canceled at the register`,
        );
      // The real server's rule (protocol/payment-code.ts).
      if (!isPaymentCode(b.method?.code))
        throw new ServerRefusedError(400, 'validation_failed', `method.code: must be ${PAYMENT_CODE_RULE}`);
      const now = new Date(this.clock.now()).toISOString();
      const outcome = this.outcomes.get(b.method.code) ?? 'succeeded';
      const p: Payment = {
        id: `pay_${randomUUID().slice(0, 8)}`,
        orderId: b.orderId,
        registerId: b.registerId,
        amount: b.amount,
        status: outcome,
        method: { type: 'wallet_code', brand: 'alipay', code: `${b.method.code.slice(0, 2)}**` },
        ...(outcome === 'failed' ? { failure: failure() } : {}),
        createdAt: now,
        updatedAt: now,
      };
      this.payments.set(p.id, p);
      this.byKey.set(key, { paymentId: p.id, body: text });
      this.push(p);
      return p;
    });
  }

  async byIdempotencyKey(key: string): Promise<SignedPayment[]> {
    return this.call('byIdempotencyKey', key, () => {
      const known = this.byKey.get(key);
      return known ? [this.sign(this.payments.get(known.paymentId)!)] : [];
    });
  }

  async resultsOf(orderId: string): Promise<SignedPayment[]> {
    return this.call('resultsOf', orderId, () => this.paymentsOf(orderId).map((p) => this.sign(p)));
  }

  /** Orders the register canceled (closeOrder): no new payment is taken for them. */
  readonly closed = new Set<string>();

  async closeOrder(orderId: string): Promise<SignedPayment[]> {
    return this.call('closeOrder', orderId, () => {
      this.closed.add(orderId);
      return this.paymentsOf(orderId).map((p) => this.sign(p));
    });
  }

  async signed(paymentId: string): Promise<SignedPayment> {
    return this.call('signed', paymentId, () => {
      const p = this.payments.get(paymentId);
      if (!p) throw new ServerRefusedError(404, 'not_found', `payment ${paymentId} not found`);
      return this.sign(p);
    });
  }

  async cancelPayment(paymentId: string): Promise<Payment> {
    return this.call('cancelPayment', paymentId, () => {
      const p = this.payments.get(paymentId);
      if (!p) throw new ServerRefusedError(404, 'not_found', `payment ${paymentId} not found`);
      if (p.status === 'succeeded')
        throw new ServerConflictError(409, 'payment_succeeded', 'the payment succeeded; refund it instead');
      if (p.status !== 'pending') return p;
      return this.update(p, {
        status: 'canceled',
        failure: { code: 'canceled', message: 'canceled at the register' },
      });
    });
  }

  listen(opts: PaymentEventsOptions): () => void {
    const l: Listener = { opts, connected: false };
    this.listeners.add(l);
    this.connect(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  // --- inside ------------------------------------------------------------------------------------

  private call<T>(method: string, arg: string, work: () => T): T {
    this.calls.push(`${method} ${arg}`.trim());
    if (this.unreachable) throw new ServerUnavailableError(`fake: the payment server is unreachable`);
    const i = this.scripted.findIndex((s) => s.method === method);
    const script = i >= 0 ? this.scripted.splice(i, 1)[0] : undefined;
    if (script && !script.afterWork) throw script.error();
    const result = work();
    if (script) throw script.error();
    return result;
  }

  private update(p: Payment, change: Partial<Payment>): Payment {
    const next = { ...p, ...change, updatedAt: new Date(this.clock.now()).toISOString() };
    this.payments.set(p.id, next);
    this.push(next);
    return next;
  }

  /**
   * While true, pushed events wait (in order) until releasePushes(): a push channel slower than the
   * answers. Otherwise an event is delivered just after the call that made it returns, before its answer
   * is read, as the real server pushes at its commit.
   */
  holdPushes = false;
  private readonly held: (SignedPayment & { seq: number })[] = [];

  /** The sequence of the newest push event of a payment (tests: what a device's cursor should say). */
  eventSeqOf(paymentId: string): number | undefined {
    for (let i = this.events.length - 1; i >= 0; i--)
      if (this.events[i].payment.id === paymentId) return this.events[i].seq;
    return undefined;
  }

  releasePushes(): void {
    this.holdPushes = false;
    for (const e of this.held.splice(0)) this.deliverAll(e);
  }

  private push(p: Payment): void {
    const e = { ...this.sign(p), seq: this.events.length + 1 };
    this.events.push(e);
    if (this.holdPushes) this.held.push(e);
    // Delivered after the current call returns, as a socket would.
    else queueMicrotask(() => this.deliverAll(e));
  }

  private deliverAll(e: SignedPayment & { seq: number }): void {
    for (const l of this.listeners) if (l.connected && !this.unreachable) deliver(l.opts, e);
  }

  /** (Re)connects a listener as a WebSocket would: from its cursor, or marks it down while unreachable. */
  private connect(l: Listener): void {
    if (this.unreachable) {
      if (l.connected) {
        l.connected = false;
        l.opts.onState?.(false);
      }
      return;
    }
    if (l.connected) return;
    l.connected = true;
    l.opts.onState?.(true);
    const after = l.opts.after();
    for (const e of this.events) if (e.seq > after) deliver(l.opts, e);
  }
}

/** As the real push does: an event the device does not want is skipped before anything else. */
function deliver(o: PaymentEventsOptions, e: SignedPayment & { seq: number }): void {
  if (o.wants && !o.wants(e.payment)) o.onSkipped?.(e.seq);
  else o.onEvent(e);
}

function failure() {
  return { code: 'insufficient_funds', message: 'the customer’s balance is too low' };
}
