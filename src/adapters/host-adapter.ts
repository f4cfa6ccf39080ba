/**
 * The contract every host adapter fulfils: how an order the host records becomes a CapturedOrder, and how
 * the host learns the result. One small interface, the same for a dropped file, an HTTP hook, a DLL call,
 * a serial customer display, a printer tap or a USB HID device.
 *
 * Obligations:
 * - `probe()` checks the adapter can work (folder exists and is writable, port opens, DLL loads) without
 *   taking orders; it throws a ManifestError or TransportError naming the field or device. The plugin
 *   probes a new manifest's adapter before it swaps, and keeps the old one if the probe fails.
 * - `start(ctx)` begins capturing. For each order it calls `ctx.onOrder(order)` and treats the order as
 *   taken only when that promise resolves (the plugin has journaled it): e.g. file-drop moves the file to
 *   `processed/` only then. Input it cannot parse goes to `ctx.onReject` with the reason, and must not stop
 *   the adapter or touch any other order.
 * - `writeBack(result)` tells the host a final result. It must be idempotent per (orderId, status): the
 *   plugin calls it again after a restart when it cannot know whether the last call completed, and the
 *   host must see each final state exactly once (e.g. a result file written atomically under a fixed name).
 *   It throws WriteBackError when the host cannot be told now; the plugin retries with backoff.
 * - `stop()` stops capturing; orders already handed over stay with the plugin.
 * - `stats()` (optional) returns the adapter's own counters (bytes, jobs, garbage, unplugs…) as plain JSON,
 *   shown on the plugin's status page under the adapter so support can see a wiring problem at a glance.
 * - `ctx.onWithdraw(orderId, reason)` (optional to call) tells the plugin the host took back an order it
 *   handed over, e.g. a customer display showed a corrected total in the same sale. The plugin cancels the
 *   order unless it is already paid or being paid past the point of return (then it stands, and the
 *   adapter's next order is a separate one).
 */
import { Money } from '../protocol/money';
import { Payment } from '../protocol/states';

export type DispatchMode =
  { mode: 'unicast'; terminal: string } | { mode: 'broadcast' } | { mode: 'multicast' };

export interface OrderItem {
  name: string;
  quantity?: number;
  amount?: Money;
}

export interface CapturedOrder {
  orderId: string;
  registerId: string;
  amount: Money;
  items?: OrderItem[];
  /** A per-order dispatch from the host; otherwise the manifest's. */
  dispatch?: DispatchMode;
  /** Where it came from, for the status page and support: a file name, "http", a port. */
  source: string;
}

export interface OrderResult {
  orderId: string;
  registerId: string;
  status: 'paid' | 'failed' | 'canceled';
  amount: Money;
  /** The server-signed payment, when there is one. */
  payment?: Payment;
  signature?: string;
  /** ISO time the plugin decided the result. */
  decidedAt: string;
}

export interface RejectedInput {
  /** The file, request or device the bad input came from. */
  subject: string;
  code: string;
  message: string;
}

export interface AdapterContext {
  onOrder(order: CapturedOrder): Promise<void>;
  onReject(reject: RejectedInput): void;
  /**
   * The host took the order back. Resolves 'canceled' when the plugin canceled it, 'stands' when it was
   * already paid (or its payment could not be stopped) and so is kept, 'unknown' for an order it never had.
   */
  onWithdraw?(orderId: string, reason: string): Promise<'canceled' | 'stands' | 'unknown'>;
}

/** An adapter's counters: numbers, flags and short texts, nested one level at most. */
export type AdapterStats = object;

export interface HostAdapter {
  readonly kind: string;
  probe(): Promise<void>;
  start(ctx: AdapterContext): Promise<void>;
  writeBack(result: OrderResult): Promise<void>;
  stop(): Promise<void>;
  stats?(): AdapterStats;
}
