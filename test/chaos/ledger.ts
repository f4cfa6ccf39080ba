/**
 * Reading what each part holds after a run, straight from its files: the server's payments (SQLite),
 * the simulator provider's own ledger of trades (the money side: `sim_trades` in the file beside the
 * server database), the receipts the file printers got, and the result files in the file-drop outbox.
 */
import Database from 'better-sqlite3';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { simulatorLedgerPath } from '../../src/server/providers/simulator.provider';
import { COPY_MARK } from '../../src/printer/render';

export interface ServerPayment {
  id: string;
  orderId: string;
  status: string;
  reversed: number;
}

export interface SimTrade {
  outTradeNo: string;
  state: string;
  chargeCalls: number;
  scenario: string;
}

export function readServer(
  dbPath: string,
  orderIds: string[],
): { payments: ServerPayment[]; trades: SimTrade[] } {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  let payments: ServerPayment[];
  try {
    const all = db
      .prepare('SELECT id, order_id AS orderId, status, reversed FROM payments')
      .all() as ServerPayment[];
    const ours = new Set(orderIds);
    payments = all.filter((p) => ours.has(p.orderId));
  } finally {
    db.close();
  }
  const ledger = simulatorLedgerPath(dbPath);
  const trades: SimTrade[] = [];
  if (existsSync(ledger)) {
    const sim = new Database(ledger, { readonly: true, fileMustExist: true });
    try {
      trades.push(
        ...(sim
          .prepare(
            'SELECT out_trade_no AS outTradeNo, state, charge_calls AS chargeCalls, scenario FROM sim_trades',
          )
          .all() as SimTrade[]),
      );
    } finally {
      sim.close();
    }
  }
  return { payments, trades };
}

/**
 * Receipts per order id, from the bytes the file printers got: each receipt ends in a paper cut
 * (GS V …), so the bytes are split there and every piece naming an order counts once for it.
 */
export function readReceipts(
  files: string[],
  orderIds: string[],
): { receipts: Record<string, number>; copies: Record<string, number> } {
  const counts: Record<string, number> = Object.fromEntries(orderIds.map((id) => [id, 0]));
  const copies: Record<string, number> = Object.fromEntries(orderIds.map((id) => [id, 0]));
  for (const file of files) {
    if (!existsSync(file)) continue;
    const bytes = readFileSync(file);
    const pieces: Buffer[] = [];
    let from = 0;
    for (let i = 0; i + 1 < bytes.length; i++) {
      if (bytes[i] === 0x1d && bytes[i + 1] === 0x56) {
        pieces.push(bytes.subarray(from, i));
        from = i + 2;
      }
    }
    pieces.push(bytes.subarray(from));
    for (const piece of pieces) {
      const text = piece.toString('latin1');
      // A copy printed after a crash mid-print starts with the copy mark (its ASCII word, whatever the
      // printer's encoding), before the receipt and with no cut between.
      const copy = text.includes(COPY_MARK_WORD);
      for (const id of orderIds)
        if (text.includes(id)) {
          counts[id]++;
          if (copy) copies[id]++;
        }
    }
  }
  return { receipts: counts, copies };
}

/** The word both forms of the copy mark print (the GB18030 and the ASCII title), taken from the renderer. */
const COPY_MARK_WORD = COPY_MARK.titleAscii.replace(/[* ]/g, '');

/** The status of each result file in the file-drop outbox, by order id. */
export function readOutbox(outbox: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(outbox)) return out;
  for (const name of readdirSync(outbox)) {
    if (!name.endsWith('.result.json')) continue;
    try {
      const doc = JSON.parse(readFileSync(path.join(outbox, name), 'utf8')) as {
        orderId: string;
        status: string;
      };
      out[doc.orderId] = doc.status;
    } catch {
      out[name] = 'unreadable';
    }
  }
  return out;
}
