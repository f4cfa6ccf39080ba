/**
 * The local WeChat Pay gateway's ledger: its trades, refunds and the payment codes it has seen (as SHA-256
 * digests; a code is never stored). One ledger serves the v2 and v3 paths, as one merchant account at
 * WeChat Pay does.
 *
 * Durability: with a file, every change is one appended JSON line (the whole record) followed by fsync, so a
 * gateway killed at any point restarts with every trade it answered about; the last line of a key wins. A torn
 * last line (a crash mid-write) is ignored. Without a file it lives in memory.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';

export type GatewayTradeState = 'USERPAYING' | 'SUCCESS' | 'PAYERROR' | 'REVOKED' | 'CLOSED' | 'REFUND';

export interface GatewayRefund {
  outRefundNo: string;
  refundId: string;
  amount: number;
  at: number;
}

export interface GatewayTrade {
  mchId: string;
  appId: string;
  outTradeNo: string;
  transactionId: string;
  /** Fen; 0 for a tombstone (a reverse of an order that never existed, so a late pay cannot succeed). */
  amount: number;
  state: GatewayTradeState;
  /** Which path made it: v2 micropay or v3 codepay. */
  api: 'v2' | 'v3';
  scenario?: string;
  /** The err_code a PAYERROR trade answered with. */
  errCode?: string;
  createdAt: number;
  /** When a waiting customer confirms (password); absent: never. */
  confirmAt?: number;
  /** The customer confirms exactly when a reverse arrives (scenario cancel_race). */
  confirmOnReverse?: boolean;
  paidAt?: number;
  revokedAt?: number;
  /** A reverse was asked while the customer was paying: the gateway answered recall=Y and closes it. */
  reverseAsked?: boolean;
  refunds: GatewayRefund[];
}

type Line = { t: GatewayTrade } | { c: string };

export class WechatLedger {
  private readonly trades = new Map<string, GatewayTrade>();
  private readonly codes = new Set<string>();
  private fd: number | undefined;

  constructor(file?: string) {
    if (file && existsSync(file)) {
      for (const raw of readFileSync(file, 'utf8').split('\n')) {
        if (!raw) continue;
        let line: Line;
        try {
          line = JSON.parse(raw) as Line;
        } catch {
          continue; // a torn last line
        }
        if ('t' in line) this.trades.set(key(line.t.mchId, line.t.outTradeNo), line.t);
        else if ('c' in line) this.codes.add(line.c);
      }
    }
    if (file) {
      this.fd = openSync(file, 'a', 0o600);
      // After a torn last line, start on a fresh line so the next record is not glued to the fragment.
      if (existsSync(file)) {
        const text = readFileSync(file);
        if (text.length > 0 && text[text.length - 1] !== 0x0a) writeSync(this.fd, '\n');
      }
    }
  }

  get(mchId: string, outTradeNo: string): GatewayTrade | undefined {
    return this.trades.get(key(mchId, outTradeNo));
  }

  byRefundNo(mchId: string, outRefundNo: string): { trade: GatewayTrade; refund: GatewayRefund } | undefined {
    for (const t of this.trades.values()) {
      if (t.mchId !== mchId) continue;
      const refund = t.refunds.find((r) => r.outRefundNo === outRefundNo);
      if (refund) return { trade: t, refund };
    }
    return undefined;
  }

  put(t: GatewayTrade): void {
    this.trades.set(key(t.mchId, t.outTradeNo), t);
    this.append({ t });
  }

  codeSeen(digest: string): boolean {
    return this.codes.has(digest);
  }

  useCode(digest: string): void {
    this.codes.add(digest);
    this.append({ c: digest });
  }

  all(): GatewayTrade[] {
    return [...this.trades.values()].map((t) => ({ ...t, refunds: t.refunds.map((r) => ({ ...r })) }));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private append(line: Line): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, JSON.stringify(line) + '\n');
    fsyncSync(this.fd);
  }
}

function key(mchId: string, outTradeNo: string): string {
  return `${mchId}\u0000${outTradeNo}`;
}
