/**
 * The local Alipay gateway's ledger: its trades, refunds and spent payment codes. In memory, and — with a
 * data directory — also as an append-only journal (`ledger.jsonl`): every change appends the changed trade
 * whole (or a spent code) and fsyncs before the gateway answers, so a restarted gateway (even after kill -9)
 * knows every trade it ever answered about. Replay keeps the last line per trade. A torn last line (a crash
 * mid-write) is dropped; a damaged line before it is an error naming the line.
 *
 * Payment codes are kept as SHA-256 hashes: the gateway must know a code was used, not what it was.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

export type TradeStatus = 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_CLOSED' | 'TRADE_FINISHED';

export interface GatewayRefund {
  /** out_request_no; a cancel that returned a paid trade's money has none (`''`). */
  requestNo: string;
  fen: number;
  at: number;
}

/** One trade as the gateway keeps it (and `trades()` shows it). */
export interface GatewayTrade {
  appId: string;
  outTradeNo: string;
  tradeNo: string;
  totalFen: number;
  subject: string;
  /** SHA-256 (hex) of the payment code. */
  codeHash: string;
  scene: string;
  storeId?: string;
  scenario?: string;
  status: TradeStatus;
  createdAt: number;
  paidAt?: number;
  closedAt?: number;
  /** When a waiting customer confirms (wait_then_success). */
  confirmAt?: number;
  /** When an unpaid trade closes by itself (3 min by default, or timeout_express). */
  closeAt: number;
  cancelAction?: 'close' | 'refund';
  refunds: GatewayRefund[];
  buyerLogonId: string;
  buyerUserId: string;
}

export function codeHash(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}

type Line = { t: 'trade'; trade: GatewayTrade } | { t: 'code'; app: string; hash: string };

export class GatewayLedger {
  private readonly byOut = new Map<string, GatewayTrade>();
  private readonly byTradeNo = new Map<string, GatewayTrade>();
  private readonly spent = new Set<string>();
  private fd: number | undefined;

  constructor(dataDir?: string) {
    if (!dataDir) return;
    const file = path.join(dataDir, 'ledger.jsonl');
    if (existsSync(file)) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((text, k) => {
        if (text === '') return;
        let line: Line;
        try {
          line = JSON.parse(text) as Line;
        } catch {
          if (k === lines.length - 1) return; // torn by a crash mid-write: never answered
          throw new Error(`the gateway ledger ${file} is damaged at line ${k + 1}`);
        }
        this.apply(line);
      });
    }
    this.fd = openSync(file, 'a', 0o600);
    // Cut a torn last line (a crash mid-write, never answered) so the next record starts on a line of its
    // own instead of being glued to the fragment and lost.
    const size = fstatSync(this.fd).size;
    const whole = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
    const end = whole.lastIndexOf(0x0a) + 1;
    if (end < size) {
      ftruncateSync(this.fd, end);
      fsyncSync(this.fd);
    }
  }

  private apply(line: Line): void {
    if (line.t === 'code') this.spent.add(`${line.app}:${line.hash}`);
    else {
      this.byOut.set(`${line.trade.appId}:${line.trade.outTradeNo}`, line.trade);
      this.byTradeNo.set(`${line.trade.appId}:${line.trade.tradeNo}`, line.trade);
    }
  }

  private write(line: Line): void {
    this.apply(line);
    if (this.fd === undefined) return;
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
    fsyncSync(this.fd);
  }

  find(appId: string, ref: { outTradeNo?: string; tradeNo?: string }): GatewayTrade | undefined {
    // §1.6: trade_no wins when both are given.
    if (ref.tradeNo) return this.byTradeNo.get(`${appId}:${ref.tradeNo}`);
    if (ref.outTradeNo) return this.byOut.get(`${appId}:${ref.outTradeNo}`);
    return undefined;
  }

  save(trade: GatewayTrade): void {
    this.write({ t: 'trade', trade: structuredClone(trade) });
  }

  isSpent(appId: string, hash: string): boolean {
    return this.spent.has(`${appId}:${hash}`);
  }

  spend(appId: string, hash: string): void {
    if (!this.isSpent(appId, hash)) this.write({ t: 'code', app: appId, hash });
  }

  all(): GatewayTrade[] {
    return [...this.byOut.values()].map((t) => structuredClone(t));
  }

  /** The live objects (the gateway settles them in place, then saves). */
  live(): GatewayTrade[] {
    return [...this.byOut.values()];
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
