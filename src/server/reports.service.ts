/**
 * The daily settlement report of a store: counts and sums of its payments created that day (UTC), by
 * status, method and currency, as JSON or CSV. What a shop owner checks against the bank statement.
 */
import { ApiError } from './api-error';
import { Db } from './storage/db';

export interface SettlementRow {
  status: string;
  method: string;
  currency: string;
  count: number;
  amount: number;
  refunded: number;
}

export interface SettlementReport {
  storeId: string;
  date: string;
  rows: SettlementRow[];
  /** Per currency: what the store keeps (succeeded and refunded payments, less refunds). */
  net: Record<string, number>;
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
      amount: number;
      refunded: number;
    }>(
      `SELECT status, COALESCE(method_brand, method_type) AS method, currency, COUNT(*) AS count,
              SUM(amount_value) AS amount, SUM(refunded_value) AS refunded
         FROM payments WHERE store_id = $1 AND created_at >= $2 AND created_at < $3
        GROUP BY status, COALESCE(method_brand, method_type), currency
        ORDER BY status, method, currency`,
      [storeId, from, to],
    );
    const out = rows.map((r) => ({
      status: r.status,
      method: r.method,
      currency: r.currency,
      count: Number(r.count),
      amount: Number(r.amount),
      refunded: Number(r.refunded),
    }));
    const net: Record<string, number> = {};
    for (const r of out) {
      if (r.status === 'succeeded' || r.status === 'refunded')
        net[r.currency] = (net[r.currency] ?? 0) + r.amount - r.refunded;
    }
    return { storeId, date, rows: out, net };
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
