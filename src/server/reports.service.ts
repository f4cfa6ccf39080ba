/**
 * The daily settlement report of a store: counts and sums of its payments created that day (UTC), by
 * status, method and currency, as JSON or CSV. What a shop owner checks against the bank statement.
 *
 * Sums are exact: the database sums 64-bit integers and hands them over as text, and `net` is added up in
 * BigInt. Amounts are JSON numbers while they fit exactly (up to 2^53 − 1 minor units; a store's
 * per-payment maximum keeps a day's sums far below that) and decimal strings beyond, never a rounded number.
 */
import { ApiError } from './api-error';
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
