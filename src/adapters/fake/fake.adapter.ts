/**
 * A host adapter for plugin tests, held to the same contract as the real ones (the contract suite in
 * host-adapter.contract.spec.ts runs against it): a test pushes orders and bad input as a host would, and
 * reads what the host was told. It keeps the real adapters' obligations — an order is taken only when
 * `onOrder` resolves, write-back is idempotent per (orderId, status), a paid or canceled result is never
 * replaced — so a plugin that passes against the fake does not lean on behaviour the real ones lack.
 */
import { ManifestError, WriteBackError } from '../../protocol/errors';
import { validateOrderId } from '../../protocol/ids';
import { Money, money } from '../../protocol/money';
import { AdapterContext, CapturedOrder, HostAdapter, OrderResult, RejectedInput } from '../host-adapter';
import { FINAL_RESULT_STATUSES, resultDocument } from '../result-document';

export interface FakeOrderInput {
  orderId: string;
  amount: Money;
  registerId?: string;
  items?: CapturedOrder['items'];
  dispatch?: CapturedOrder['dispatch'];
  source?: string;
}

export class FakeAdapter implements HostAdapter {
  readonly kind = 'fake';
  /** Every order handed to onOrder, in order (also those whose onOrder failed). */
  readonly offered: CapturedOrder[] = [];
  /** Orders whose onOrder resolved: the host considers these taken. */
  readonly taken: CapturedOrder[] = [];
  readonly rejected: RejectedInput[] = [];
  /** Every writeBack call, including repeats and failed ones. */
  readonly writeBackCalls: OrderResult[] = [];
  /** What the host has been told, one entry per (orderId, status) the first time it was delivered. */
  readonly delivered: OrderResult[] = [];
  probes = 0;
  private ctx?: AdapterContext;
  private probeError?: Error;
  private writeBackFailures: Error[] = [];
  private readonly latest = new Map<string, OrderResult['status']>();

  constructor(readonly registerId = 'R1') {}

  get started(): boolean {
    return this.ctx !== undefined;
  }

  /** Probes (and so starts) throw `error` from now on, a ManifestError by default, until fixProbe(). */
  failProbe(error: Error = new ManifestError('fake.probe', 'the fake host is unreachable')): void {
    this.probeError = error;
  }

  fixProbe(): void {
    this.probeError = undefined;
  }

  /** The next `times` writeBacks throw (a WriteBackError by default) before telling the host anything. */
  failWriteBack(
    times = 1,
    error: Error = new WriteBackError('fake.write_back', 'the fake host is not answering'),
  ): void {
    for (let i = 0; i < times; i++) this.writeBackFailures.push(error);
  }

  async probe(): Promise<void> {
    this.probes++;
    if (this.probeError) throw this.probeError;
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.ctx) throw new Error('the fake adapter is already started');
    await this.probe();
    this.ctx = ctx;
  }

  async stop(): Promise<void> {
    this.ctx = undefined;
  }

  /** The host records an order: resolves when the plugin has taken it, rejects as onOrder does. */
  async push(input: FakeOrderInput): Promise<CapturedOrder> {
    const ctx = this.requireStarted();
    const order: CapturedOrder = {
      orderId: validateOrderId(input.orderId),
      registerId: input.registerId ?? this.registerId,
      amount: money(input.amount.value, input.amount.currency),
      source: input.source ?? 'fake',
    };
    if (input.items) order.items = input.items;
    if (input.dispatch) order.dispatch = input.dispatch;
    this.offered.push(order);
    await ctx.onOrder(order);
    this.taken.push(order);
    return order;
  }

  /** The host produced input the adapter cannot read. */
  pushGarbage(reject: RejectedInput): void {
    const ctx = this.requireStarted();
    this.rejected.push(reject);
    ctx.onReject(reject);
  }

  async writeBack(result: OrderResult): Promise<void> {
    this.writeBackCalls.push(result);
    const doc = resultDocument(result);
    const failure = this.writeBackFailures.shift();
    if (failure) throw failure;
    const before = this.latest.get(doc.orderId);
    if (before === doc.status) return;
    if (before !== undefined && FINAL_RESULT_STATUSES.includes(before)) {
      throw new WriteBackError(
        'fake.conflicting_result',
        `the host was told order ${doc.orderId} is ${before}; it will not be changed to ${doc.status}`,
      );
    }
    this.latest.set(doc.orderId, doc.status);
    this.delivered.push(result);
  }

  /** The last status the host was told for an order. */
  statusOf(orderId: string): OrderResult['status'] | undefined {
    return this.latest.get(orderId);
  }

  private requireStarted(): AdapterContext {
    if (!this.ctx) throw new Error('start the fake adapter before pushing orders');
    return this.ctx;
  }
}
