/**
 * Sends each payment to its provider.
 *
 * A store without a wallet account is a demo or test store: every code goes to the built-in simulator,
 * with its own test prefixes (DESIGN.md "Test payment codes"). A store with one or more wallet accounts
 * (wallet-accounts.ts) takes real codes: the code's prefix and length name the wallet (walletOfCode —
 * WeChat Pay 10–15 and 18 digits, Alipay 25–30 and 16–24), and the store's account for that wallet
 * charges it. A code of a wallet the store has no usable account for is refused before anything is stored
 * or charged, saying which wallet and what to do.
 *
 * The route is decided once, in route(), and written with the payment (payments.provider) before the charge
 * goes out; every later query, cancel and refund of that payment goes to the same provider, also after a
 * restart, looked up by the payment id (the outTradeNo).
 */
import { walletOfCode } from '../../protocol/payment-code';
import { ApiError } from '../api-error';
import type { PaymentTiming, Route, Routing } from '../payments.service';
import {
  CancelResult,
  ChargeRequest,
  ChargeResult,
  PaymentProvider,
  ProviderRejectedError,
  ProviderUnknownError,
  QueryResult,
  RefundQueryResult,
  RefundResult,
} from './provider';
import { ProviderPolicy } from './policy';
import { WalletAccounts } from './wallet-accounts';

export const SIMULATOR = 'simulator';

export interface ProviderRouterOptions {
  /** The built-in simulator (or a test's provider) for stores without wallet accounts. */
  simulator: PaymentProvider;
  simulatorTiming: PaymentTiming;
  wallets: WalletAccounts;
  /** The store and provider a payment was routed to (payments.store_id, payments.provider). */
  lookup(outTradeNo: string): Promise<{ storeId: string; provider: string } | undefined>;
  /** Divides real wallets' timing rules (tests against the local gateways only; 1 in production). */
  walletTimeScale?: number;
}

/** A provider's policy as the payments' timing: the server's own idempotency rules stay. */
export function timingOfPolicy(policy: ProviderPolicy, base: PaymentTiming, scale = 1): PaymentTiming {
  const s = scale;
  return {
    ...base,
    firstCheckMs: policy.firstCheckMs / s,
    checkEveryMs: [policy.checkEveryMs[0] / s, policy.checkEveryMs[1] / s],
    deadlineMs: policy.deadlineMs / s,
    // Counted from the payment's creation, which comes a commit before the pay call: 10% more, so that no
    // cancel reaches the provider before its rule allows (WeChat Pay's 15 s become 16.5 s).
    cancelNotBeforeMs: (policy.cancelNotBeforeMs * 1.1) / s,
  };
}

export class ProviderRouter implements PaymentProvider, Routing {
  readonly name = 'router';

  constructor(private readonly opts: ProviderRouterOptions) {}

  /** The timing rules of payments routed to `provider` (the simulator's for an unknown name). */
  timingOf(provider: string): PaymentTiming {
    const policy = provider === SIMULATOR ? undefined : this.opts.wallets.policyOf(provider);
    return policy
      ? timingOfPolicy(policy, this.opts.simulatorTiming, this.opts.walletTimeScale)
      : this.opts.simulatorTiming;
  }

  /**
   * Where a new payment with this code goes. Throws ApiError 422 when the store cannot take the code:
   * nothing is stored, nothing charged.
   */
  async route(storeId: string, code: string): Promise<Route> {
    if (!(await this.opts.wallets.hasWallets(storeId)))
      return { provider: SIMULATOR, timing: this.opts.simulatorTiming };
    const wallet = walletOfCode(code);
    if (wallet === undefined || wallet === 'unionpay') {
      throw ApiError.unprocessable(
        'unsupported_payment_code',
        wallet === 'unionpay'
          ? 'this is a UnionPay code; this store takes Alipay and WeChat Pay codes only: ask the customer to pay with one of those'
          : "this code is not an Alipay (25–30…) or WeChat Pay (10–15…) payment code: scan the customer's payment code again",
      );
    }
    const p = await this.opts.wallets.provider(storeId, wallet);
    if (!p.ok) {
      const label = wallet === 'alipay' ? 'Alipay' : 'WeChat Pay';
      throw ApiError.unprocessable(
        'wallet_unavailable',
        `this store cannot take ${label} now (${p.problem}); ask the customer for another wallet, and tell support`,
      );
    }
    return { provider: wallet, timing: this.timingOf(wallet) };
  }

  private async providerOf(
    outTradeNo: string,
    provider?: string,
    storeId?: string,
  ): Promise<PaymentProvider> {
    if (provider === undefined || storeId === undefined) {
      const found = await this.opts.lookup(outTradeNo);
      if (!found) throw new ProviderRejectedError('payment_not_found', `no payment ${outTradeNo}`);
      provider = found.provider;
      storeId = found.storeId;
    }
    if (provider === SIMULATOR) return this.opts.simulator;
    const name = provider === 'alipay' || provider === 'wechat' ? provider : undefined;
    if (!name)
      throw new ProviderRejectedError(
        'provider_unknown',
        `payment ${outTradeNo} names an unknown provider "${provider}"`,
      );
    const p = await this.opts.wallets.provider(storeId, name);
    if (!p.ok) {
      // The account went away or its files broke after the charge: the payment cannot be asked about until
      // it is back. Unknown, not refused: the sweeper keeps the payment pending and asks again.
      throw new ProviderUnknownError(`the ${name} account of store ${storeId} is not usable: ${p.problem}`);
    }
    return p.provider;
  }

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    return (await this.providerOf(req.outTradeNo, req.provider ?? SIMULATOR, req.storeId)).charge(req);
  }

  async query(outTradeNo: string): Promise<QueryResult> {
    return (await this.providerOf(outTradeNo)).query(outTradeNo);
  }

  async cancel(outTradeNo: string): Promise<CancelResult> {
    return (await this.providerOf(outTradeNo)).cancel(outTradeNo);
  }

  async refund(
    outTradeNo: string,
    refundNo: string,
    amount: { value: number; currency: string },
  ): Promise<RefundResult> {
    return (await this.providerOf(outTradeNo)).refund(outTradeNo, refundNo, amount);
  }

  async queryRefund(outTradeNo: string, refundNo: string): Promise<RefundQueryResult> {
    return (await this.providerOf(outTradeNo)).queryRefund(outTradeNo, refundNo);
  }
}
