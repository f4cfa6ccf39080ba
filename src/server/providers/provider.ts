/**
 * The contract between the payment server and a wallet provider (Alipay-, WeChat-Pay-like "payment code"
 * providers: the clerk scans the code on the customer's phone and the server charges it).
 *
 * Obligations, as real wallet providers impose them:
 * - `charge` is keyed by `outTradeNo` (our payment id) and must be idempotent at the provider: calling it
 *   again for the same outTradeNo never creates a second trade. The server still never calls it twice on
 *   purpose: an unknown outcome is resolved by `query`.
 * - A charge may end `user_paying` (the customer must confirm on the phone): the server then queries
 *   (first within 5 s, then every 3-5 s) until final, and at its deadline calls `cancel`, which closes the
 *   trade or, when the customer paid in the meantime, reverses it (`reversed: true`).
 * - `ProviderUnknownError` (timeout, 5xx, connection reset) means "we do not know whether money moved":
 *   never retry the charge; query.
 * - `refund` is keyed by `refundNo` (our refund id) and must be idempotent at the provider: a refund sent
 *   again under the same refundNo pays out nothing more. A refund whose answer was lost is asked about with
 *   `queryRefund` and, if the provider never received it, sent again under the same refundNo.
 */
import { ProviderError } from '../../protocol/errors';

export interface ChargeRequest {
  outTradeNo: string;
  amount: { value: number; currency: string };
  /** The customer's payment code. Passed through, never stored or logged. */
  code: string;
  storeId: string;
  /** The provider the payment was routed to (ProviderRouter.route, payments.provider); the router's own. */
  provider?: string;
}

export type ChargeResult =
  | { outcome: 'succeeded'; tradeNo: string; brand: string }
  | { outcome: 'user_paying'; tradeNo: string; brand: string }
  | { outcome: 'declined'; code: string; message: string; brand?: string };

export type QueryResult =
  | { state: 'succeeded'; tradeNo: string }
  | { state: 'user_paying' }
  | { state: 'failed'; code: string; message: string }
  | { state: 'closed' }
  | { state: 'not_found' };

export interface CancelResult {
  /** True when the trade had been paid and the cancel returned the money (a reversal). */
  reversed: boolean;
}

export interface RefundResult {
  refundNo: string;
}

/** What the provider knows of a refund id: paid out, refused or failed, or never received. */
export type RefundQueryResult =
  { state: 'succeeded' } | { state: 'failed'; code: string; message: string } | { state: 'not_found' };

/** What every wallet provider (Alipay, WeChat Pay) takes beside its account. */
export interface WalletProviderOptions {
  /** One HTTP call's limit; past it the outcome is unknown. Default: the wallet's policy. */
  timeoutMs?: number;
  /** The clock for request timestamps. Default Date.now. */
  now?: () => number;
  log?: (line: string) => void;
}

export interface PaymentProvider {
  readonly name: string;
  charge(req: ChargeRequest): Promise<ChargeResult>;
  query(outTradeNo: string): Promise<QueryResult>;
  cancel(outTradeNo: string): Promise<CancelResult>;
  refund(
    outTradeNo: string,
    refundNo: string,
    amount: { value: number; currency: string },
  ): Promise<RefundResult>;
  /** What became of a refund id (a refund whose answer was lost): paid out, failed, or never received. */
  queryRefund(outTradeNo: string, refundNo: string): Promise<RefundQueryResult>;
}

/** The provider's answer is unknown (timeout, 5xx): money may or may not have moved. Query, never re-charge. */
export class ProviderUnknownError extends ProviderError {
  constructor(message: string, cause?: unknown) {
    super('provider.unknown_outcome', message, { cause });
  }
}

/** The provider refused the call itself (bad request, auth); nothing happened. */
export class ProviderRejectedError extends ProviderError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
