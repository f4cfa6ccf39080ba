/**
 * How the server waits on, asks about and gives up on one provider's trades: every timing rule a wallet
 * provider imposes on a payment-code (付款码) charge, in one place per provider. Each provider module exports
 * its policy with a comment per rule naming where the rule comes from (../shared/research/wallet-providers.md).
 *
 * All times are real-time milliseconds; the server divides them by PAYCONNECT_SIM_SPEED for the simulator only.
 *
 * The server applies a policy so (payments.service.ts, payment-sweeper.ts):
 * - a charge answered "waiting for the customer" or with an unknown outcome is asked about (`query`) first
 *   after `firstCheckMs`, then every `checkEveryMs` (a random point in the range);
 * - at `deadlineMs` after the charge the server gives up waiting and cancels (closes the trade, or reverses it
 *   when the customer paid meanwhile). `deadlineMs` is always before the provider's own auto-close, so the
 *   cancel is ours, never a surprise;
 * - no cancel goes out before `cancelNotBeforeMs` after the charge (WeChat Pay: a reverse sooner than 15 s is
 *   refused); a provider's cancel() called too early throws ProviderUnknownError and the server tries again;
 * - a cancel the provider asks to be repeated (Alipay retry_flag=Y, WeChat Pay recall=Y) is repeated after
 *   `cancelRetryMs`, for as long as `cancelWindowMs` after the charge allows;
 * - one HTTP call to the provider that takes longer than `requestTimeoutMs` is an unknown outcome.
 */
export interface ProviderPolicy {
  firstCheckMs: number;
  checkEveryMs: [number, number];
  deadlineMs: number;
  cancelNotBeforeMs: number;
  cancelRetryMs: number;
  cancelWindowMs: number;
  requestTimeoutMs: number;
}
