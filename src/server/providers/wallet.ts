/**
 * A real wallet provider (Alipay, WeChat Pay) for one merchant account: the PaymentProvider contract
 * (provider.ts) plus what the server needs beyond charging:
 * - `policy`: its timing rules (policy.ts), which the server applies to every payment it routes there;
 * - `bill(date)`: the provider's own record of one day (the bill it publishes), for the nightly
 *   reconciliation of our ledger against theirs;
 * - `probe()`: one signed harmless call that tells whether the account's credentials work, in plain words
 *   (`payconnect provider check`).
 *
 * Credentials arrive as loaded material (PEM text, key strings): reading and checking the files they live in
 * (mode 0600) is the credential store's job, not the provider's. No provider puts a key, a signature, a
 * payment code or a full response body in an error message or a log line.
 */
import { PaymentProvider } from './provider';
import { ProviderPolicy } from './policy';

/** One line of a provider's bill for a day: a payment received, or a refund paid out. */
export interface BillRow {
  kind: 'payment' | 'refund';
  /** Our payment id, as sent as out_trade_no. */
  outTradeNo: string;
  /** The provider's trade number. */
  tradeNo: string;
  /** Our refund id (out_request_no / out_refund_no) for a refund. */
  refundNo?: string;
  /** Fen (integer minor units), always positive; `kind` says which way the money went. */
  amount: number;
  /** When the provider booked it, ISO 8601 with offset (+08:00). */
  at: string;
}

export type ProbeProblem = 'wrong_key' | 'clock_skew' | 'unknown_account' | 'unreachable' | 'tls' | 'other';

export type ProbeResult =
  { ok: true; message: string } | { ok: false; problem: ProbeProblem; message: string };

export interface WalletProvider extends PaymentProvider {
  readonly policy: ProviderPolicy;
  /** The provider's bill for one day in China time (`YYYY-MM-DD`), every row of it. */
  bill(date: string): Promise<BillRow[]>;
  probe(): Promise<ProbeResult>;
}
