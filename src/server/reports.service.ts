/**
 * The daily settlement report of a store: counts and sums of its payments created that day (UTC), by
 * status, method and currency, as JSON or CSV. What a shop owner checks against the bank statement.
 *
 * Sums are exact: the database sums 64-bit integers and hands them over as text, and `net` is added up in
 * BigInt. Amounts are JSON numbers while they fit exactly (up to 2^53 − 1 minor units; a store's
 * per-payment maximum keeps a day's sums far below that) and decimal strings beyond, never a rounded number.
 */
import { ApiError } from './api-error';
import type { BillRow } from './providers/wallet';
import { Db } from './storage/db';

/** A whole number of minor units: a number while exact in JSON, else its decimal digits as a string. */
export type ExactAmount = number | string;

export interface SettlementRow {
  status: string;
  method: string;
  currency: string;
  count: number;
  amount: ExactAmount;
  refunded: ExactAmount;
}

export interface SettlementReport {
  storeId: string;
  date: string;
  rows: SettlementRow[];
  /** Per currency: what the store keeps (succeeded and refunded payments, less refunds). */
  net: Record<string, ExactAmount>;
}

export class ReportsService {
  constructor(private readonly db: Db) {}

  async settlement(storeId: string, date: string): Promise<SettlementReport> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
      throw ApiError.badRequest('invalid_date', `date must be YYYY-MM-DD, got "${date}"`);
    }
    const from = `${date}T00:00:00.000Z`;
    const to = new Date(Date.parse(from) + 86_400_000).toISOString();
    const rows = await this.db.query<{
      status: string;
      method: string;
      currency: string;
      count: number;
      amount: string;
      refunded: string;
    }>(
      `SELECT status, COALESCE(method_brand, method_type) AS method, currency, COUNT(*) AS count,
              CAST(SUM(amount_value) AS TEXT) AS amount, CAST(SUM(refunded_value) AS TEXT) AS refunded
         FROM payments WHERE store_id = $1 AND created_at >= $2 AND created_at < $3
        GROUP BY status, COALESCE(method_brand, method_type), currency
        ORDER BY status, method, currency`,
      [storeId, from, to],
    );
    const net = new Map<string, bigint>();
    const out = rows.map((r) => {
      const amount = BigInt(r.amount);
      const refunded = BigInt(r.refunded);
      if (r.status === 'succeeded' || r.status === 'refunded')
        net.set(r.currency, (net.get(r.currency) ?? 0n) + amount - refunded);
      return {
        status: r.status,
        method: r.method,
        currency: r.currency,
        count: Number(r.count),
        amount: exact(amount),
        refunded: exact(refunded),
      };
    });
    const netOut: Record<string, ExactAmount> = {};
    for (const [currency, v] of net) netOut[currency] = exact(v);
    return { storeId, date, rows: out, net: netOut };
  }

  static toCsv(report: SettlementReport): string {
    const lines = ['store,date,status,method,currency,count,amount_minor,refunded_minor'];
    for (const r of report.rows)
      lines.push(
        [report.storeId, report.date, r.status, r.method, r.currency, r.count, r.amount, r.refunded].join(
          ',',
        ),
      );
    return lines.join('\n') + '\n';
  }
}

function exact(v: bigint): ExactAmount {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v.toString();
}

/** The business day the wallet providers' bills use: China time (UTC+8, no daylight saving). */
export const PROVIDER_BILL_OFFSET_MS = 8 * 3_600_000;

/** One trade whose money moved differently at the provider than in our ledger, in plain words. */
export interface ReconciliationDifference {
  outTradeNo: string;
  /** Net money in (payments less refunds) that day, minor units. */
  ours: number;
  theirs: number;
  /** What the difference means and what to do. */
  what: string;
}

export interface ProviderReconciliation {
  provider: string;
  ours: { payments: number; received: ExactAmount; refunds: number; paidOut: ExactAmount };
  /** Absent when the provider's bill could not be fetched (`error` says why). */
  theirs?: { payments: number; received: ExactAmount; refunds: number; paidOut: ExactAmount };
  differences: ReconciliationDifference[];
  /** Bill lines of our other stores (one merchant account serving several stores): reconciled there. */
  otherStores?: number;
  error?: string;
}

export interface ReconciliationReport {
  storeId: string;
  /** The providers' business day, China time. */
  date: string;
  timeZone: 'Asia/Shanghai';
  providers: ProviderReconciliation[];
}

/** What the reconciliation needs of the wallet accounts: which providers the store has, and each's bill. */
export interface BillSource {
  providers(storeId: string): Promise<string[]>;
  bill(storeId: string, provider: string, date: string): Promise<BillRow[]>;
}

/**
 * The nightly reconciliation a shop owner does: per wallet provider, our ledger for one China-time day
 * against the provider's own bill for it, trade by trade. Money is compared as each trade's net movement
 * that day (received less paid out), so a trade reversed by a cancel (paid, then refunded) is 0 on both
 * sides however the provider lists it. Our side: the payments routed to that provider and created that day
 * that took money (succeeded, refunded, or canceled with the money returned), and the refunds paid out that
 * day. A payment made seconds before midnight may be booked on the next day by the provider: check the next
 * day's report before chasing it.
 */
export async function reconcile(
  db: Db,
  source: BillSource,
  storeId: string,
  date: string,
): Promise<ReconciliationReport> {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
    throw ApiError.badRequest('invalid_date', `date must be YYYY-MM-DD (China time), got "${date}"`);
  }
  const from = new Date(Date.parse(`${date}T00:00:00Z`) - PROVIDER_BILL_OFFSET_MS).toISOString();
  const to = new Date(Date.parse(from) + 86_400_000).toISOString();
  const out: ProviderReconciliation[] = [];
  for (const provider of await source.providers(storeId)) {
    const paid = await db.query<{ id: string; amount_value: number; reversed: number }>(
      `SELECT id, amount_value, reversed FROM payments
        WHERE store_id = $1 AND provider = $2 AND created_at >= $3 AND created_at < $4
          AND (status IN ('succeeded', 'refunded') OR (status = 'canceled' AND reversed = 1))`,
      [storeId, provider, from, to],
    );
    const refunded = await db.query<{ payment_id: string; amount_value: number }>(
      `SELECT r.payment_id, r.amount_value FROM refunds r JOIN payments p ON p.id = r.payment_id
        WHERE p.store_id = $1 AND p.provider = $2 AND r.status = 'succeeded' AND r.created_at >= $3 AND r.created_at < $4`,
      [storeId, provider, from, to],
    );
    const ours = new Map<string, number>();
    const add = (m: Map<string, number>, id: string, v: number) => m.set(id, (m.get(id) ?? 0) + v);
    let oursIn = 0n;
    let oursOut = 0n;
    let oursRefunds = 0;
    for (const p of paid) {
      add(ours, p.id, Number(p.amount_value));
      oursIn += BigInt(p.amount_value);
      if (Number(p.reversed)) {
        add(ours, p.id, -Number(p.amount_value));
        oursOut += BigInt(p.amount_value);
        oursRefunds++;
      }
    }
    for (const r of refunded) {
      add(ours, r.payment_id, -Number(r.amount_value));
      oursOut += BigInt(r.amount_value);
      oursRefunds++;
    }
    const entry: ProviderReconciliation = {
      provider,
      ours: { payments: paid.length, received: exact(oursIn), refunds: oursRefunds, paidOut: exact(oursOut) },
      differences: [],
    };
    let bill: BillRow[];
    try {
      bill = await source.bill(storeId, provider, date);
    } catch (e) {
      entry.error = `the ${provider} bill for ${date} could not be fetched: ${(e as Error).message}; try again later (bills are usually ready after 10:00 the next day)`;
      out.push(entry);
      continue;
    }
    // One merchant account may serve several of our stores: its bill then lists their trades too. Those
    // are reconciled in their own store's report, not flagged here.
    const foreign = new Set<string>();
    const unknown = [...new Set(bill.map((r) => r.outTradeNo))].filter((id) => !ours.has(id));
    for (const id of unknown) {
      const r = await db.query<{ store_id: string }>('SELECT store_id FROM payments WHERE id = $1', [id]);
      if (r[0] && r[0].store_id !== storeId) foreign.add(id);
    }
    if (foreign.size) bill = bill.filter((r) => !foreign.has(r.outTradeNo));
    const theirs = new Map<string, number>();
    let theirIn = 0n;
    let theirOut = 0n;
    let theirPayments = 0;
    let theirRefunds = 0;
    for (const row of bill) {
      if (row.kind === 'payment') {
        add(theirs, row.outTradeNo, row.amount);
        theirIn += BigInt(row.amount);
        theirPayments++;
      } else {
        add(theirs, row.outTradeNo, -row.amount);
        theirOut += BigInt(row.amount);
        theirRefunds++;
      }
    }
    entry.theirs = {
      payments: theirPayments,
      received: exact(theirIn),
      refunds: theirRefunds,
      paidOut: exact(theirOut),
    };
    if (foreign.size) entry.otherStores = foreign.size;
    for (const id of new Set([...ours.keys(), ...theirs.keys()])) {
      const o = ours.get(id) ?? 0;
      const t = theirs.get(id) ?? 0;
      if (o === t) continue;
      entry.differences.push({
        outTradeNo: id,
        ours: o,
        theirs: t,
        what: !ours.has(id)
          ? `${provider} booked money for ${id} that this ledger does not have that day: look the payment up (GET /v1/payments/${id}); if it is not ours or not paid here, the customer was charged without a sale — refund it at ${provider}`
          : !theirs.has(id)
            ? `this ledger has money for ${id} that ${provider}'s bill does not show that day: check the next day's bill; if it is not there either, ask ${provider} about the trade before giving anything back`
            : `the amounts differ (ours ${o}, ${provider} ${t} minor units): compare the payment's refunds with ${provider}'s record`,
      });
    }
    entry.differences.sort((a, b) => (a.outTradeNo < b.outTradeNo ? -1 : 1));
    out.push(entry);
  }
  return { storeId, date, timeZone: 'Asia/Shanghai', providers: out };
}
