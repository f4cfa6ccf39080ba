/**
 * The promises the whole chain makes (DESIGN.md "The flow": nothing is charged twice, no paid order is
 * forgotten, no order stays undecided), checked after a run against what each part holds:
 *
 * - final:        every order is paid or canceled at the plugin, within its deadline after capture;
 * - charged-once: the provider's ledger holds money (a trade `succeeded`) for at most one payment per order;
 * - ledger-agrees: an order the plugin calls paid has exactly one trade holding money, and the server
 *                 says that payment succeeded; an order it calls canceled has none (a lost payment else);
 * - written-back-once: a paid order's "paid" reached the host once — one delivery id, applied once, the
 *                 only status the host was told (a canceled order: "canceled" once); a file-drop order's
 *                 result file says the final status;
 * - printed-once: a paid order has exactly one receipt; any other none. The one allowance: when the
 *                 plugin was killed while the printer took a receipt, the restart prints it again under
 *                 "补打 REPRINT" (src/printer/print-queue.ts: no printer says what it printed), so a paid
 *                 order may have one unmarked receipt or none, plus marked copies, at most one per kill -9
 *                 of the plugin, and never zero receipts in all;
 * - not-paid-shown-paid: nothing failed or canceled was shown to the host or printed as paid;
 * - paid-shown-failed: nothing paid was shown to the host as failed or canceled;
 * - parts-stay-up: no process exits unless the harness killed or stopped it (checked per start).
 *
 * Each invariant counts the orders it checked and the ones that broke it, with the evidence.
 */
import type { Delivery } from './world';
import type { ServerPayment, SimTrade } from './ledger';
import type { Plan } from './plan';
import type { OrderOutcome } from './run-seed';

export interface Evidence {
  pluginOrders: Array<{ orderId: string; status: string; writeBack: string }>;
  deliveries: Delivery[];
  /** Receipts printed per order, copies included. */
  receipts: Record<string, number>;
  /** Of those, the ones printed under the copy mark ("补打 REPRINT"). */
  copies: Record<string, number>;
  outbox: Record<string, string>;
  payments: ServerPayment[];
  trades: SimTrade[];
}

export const INVARIANTS = [
  'final',
  'charged-once',
  'ledger-agrees',
  'written-back-once',
  'printed-once',
  'not-paid-shown-paid',
  'paid-shown-failed',
  'parts-stay-up',
] as const;
export type Invariant = (typeof INVARIANTS)[number];

export interface InvariantReport {
  checked: Record<Invariant, number>;
  violations: Array<{ invariant: Invariant; orderId: string; detail: string }>;
  /** Facts worth counting that break nothing: outcomes, repeats a host de-duplicates, time to final. */
  stats: {
    paid: number;
    canceled: number;
    redeliveries: number;
    /** Receipts printed again under the copy mark after a kill -9 of the plugin mid-print. */
    copies: number;
    msToFinal: number[];
  };
}

export function checkInvariants(
  plan: Plan,
  outcomes: OrderOutcome[],
  ev: Evidence,
  deadlineMs: number,
  parts: { crashes: string[]; starts: number } = { crashes: [], starts: 0 },
): InvariantReport {
  const checked = Object.fromEntries(INVARIANTS.map((i) => [i, 0])) as Record<Invariant, number>;
  const violations: InvariantReport['violations'] = [];
  const stats: InvariantReport['stats'] = {
    paid: 0,
    canceled: 0,
    redeliveries: 0,
    copies: 0,
    msToFinal: [],
  };
  const pluginKills = plan.faults.filter((f) => f.kind === 'kill9' && f.part === 'plugin').length;
  const fail = (invariant: Invariant, orderId: string, detail: string) =>
    violations.push({ invariant, orderId, detail });

  const paymentsById = new Map(ev.payments.map((p) => [p.id, p]));
  const ours = new Set(plan.orders.map((o) => o.orderId));
  // Money the provider holds for a payment nobody on our side knows of is lost whatever its order.
  for (const t of ev.trades) {
    if (t.state === 'succeeded' && !paymentsById.has(t.outTradeNo))
      fail('ledger-agrees', '(none)', `trade ${t.outTradeNo} holds money but the server has no such payment`);
  }

  for (const o of plan.orders) {
    const id = o.orderId;
    const outcome = outcomes.find((x) => x.orderId === id)!;
    const plugin = ev.pluginOrders.find((x) => x.orderId === id);
    const status = plugin?.status ?? '(unknown to the plugin)';
    const payments = ev.payments.filter((p) => p.orderId === id);
    const trades = ev.trades.filter((t) => payments.some((p) => p.id === t.outTradeNo));
    const holding = trades.filter((t) => t.state === 'succeeded');
    const deliveries = ev.deliveries.filter((d) => d.orderId === id && ours.has(id));
    const receipts = ev.receipts[id] ?? 0;
    const copies = ev.copies?.[id] ?? 0;
    const what = () =>
      `plugin ${status}; payments ${JSON.stringify(payments.map((p) => [p.id, p.status, p.reversed]))}; ` +
      `trades ${JSON.stringify(trades.map((t) => [t.outTradeNo, t.state, t.chargeCalls]))}; ` +
      `deliveries ${JSON.stringify(deliveries.map((d) => [d.deliveryId, d.status, d.verified]))}; ` +
      `receipts ${receipts} (${copies} marked copies); outbox ${ev.outbox[id] ?? '-'}; clerk ${outcome.notes.join(' | ')}`;

    // final
    checked.final++;
    if (status !== 'paid' && status !== 'canceled') fail('final', id, `not final: ${what()}`);
    else if (outcome.finalAt === undefined || outcome.capturedAt === undefined)
      fail('final', id, `final only after the harness stopped watching: ${what()}`);
    else if (outcome.finalAt - outcome.capturedAt > deadlineMs)
      fail(
        'final',
        id,
        `final after ${outcome.finalAt - outcome.capturedAt} ms (> ${deadlineMs}): ${what()}`,
      );
    if (outcome.finalAt !== undefined && outcome.capturedAt !== undefined)
      stats.msToFinal.push(outcome.finalAt - outcome.capturedAt);
    if (status === 'paid') stats.paid++;
    if (status === 'canceled') stats.canceled++;

    // charged-once
    checked['charged-once']++;
    if (holding.length > 1) fail('charged-once', id, `${holding.length} trades hold money: ${what()}`);

    // ledger-agrees
    checked['ledger-agrees']++;
    const succeededAtServer = payments.filter((p) => p.status === 'succeeded');
    if (status === 'paid') {
      if (holding.length !== 1 || succeededAtServer.length !== 1)
        fail('ledger-agrees', id, `paid, but the provider/server disagree: ${what()}`);
    } else if (holding.length > 0 || succeededAtServer.length > 0) {
      fail('ledger-agrees', id, `${status}, but money was kept: ${what()}`);
    }

    // written-back-once
    checked['written-back-once']++;
    if (o.source === 'http-hook') {
      const bad = deliveries.filter((d) => !d.verified);
      const ids = new Set(deliveries.map((d) => d.deliveryId));
      stats.redeliveries += deliveries.length - ids.size;
      const statuses = new Set(deliveries.map((d) => d.status));
      if (bad.length) fail('written-back-once', id, `${bad.length} deliveries without a valid signature`);
      if (status === 'paid' || status === 'canceled') {
        if (ids.size !== 1 || statuses.size !== 1 || !statuses.has(status))
          fail(
            'written-back-once',
            id,
            `the host was told ${[...statuses].join(', ') || 'nothing'}: ${what()}`,
          );
      }
    } else if ((status === 'paid' || status === 'canceled') && ev.outbox[id] !== status) {
      fail('written-back-once', id, `result file says ${ev.outbox[id] ?? 'nothing'}: ${what()}`);
    }

    // printed-once
    checked['printed-once']++;
    stats.copies += copies;
    if (status !== 'paid') {
      if (receipts !== 0) fail('printed-once', id, `${receipts} receipts for a ${status} order: ${what()}`);
    } else if (receipts === 0 || receipts - copies > 1 || copies > pluginKills) {
      fail(
        'printed-once',
        id,
        `${receipts} receipts (${copies} marked copies, ${pluginKills} kill -9 of the plugin): ${what()}`,
      );
    }

    // not-paid-shown-paid
    checked['not-paid-shown-paid']++;
    if (status !== 'paid') {
      if (deliveries.some((d) => d.status === 'paid') || ev.outbox[id] === 'paid' || receipts > 0)
        fail('not-paid-shown-paid', id, `${status}, but shown or printed as paid: ${what()}`);
    }

    // paid-shown-failed
    checked['paid-shown-failed']++;
    if (status === 'paid' || holding.length > 0) {
      if (
        deliveries.some((d) => d.status !== 'paid') ||
        (ev.outbox[id] !== undefined && ev.outbox[id] !== 'paid')
      )
        fail('paid-shown-failed', id, `money taken, but the host was told otherwise: ${what()}`);
    }
  }
  checked['parts-stay-up'] += parts.starts;
  for (const c of parts.crashes) fail('parts-stay-up', '(process)', c);
  return { checked, violations, stats };
}
