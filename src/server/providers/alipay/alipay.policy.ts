/**
 * Alipay's timing rules for a face-to-face bar-code (付款码) trade, as the server applies them (policy.ts).
 * Each rule names its source in ../shared/research/wallet-providers.md.
 */
import { ProviderPolicy } from '../policy';

export const ALIPAY_POLICY: ProviderPolicy = {
  // §1.6, current official guidance (2021 doc): poll every 3–6 s; the first query may come at once, so 3 s.
  firstCheckMs: 3_000,
  // §1.6: "poll every 3–6 s for about 60 s".
  checkEveryMs: [3_000, 6_000],
  // §1.6: after ~60 s without success, cancel immediately after the last query. 60 s is well before
  // Alipay's own auto-close of an unpaid bar-code trade (3 min by default, §1.6), so the cancel is ours.
  deadlineMs: 60_000,
  // §1.6: "cancel immediately after the last query (no gap)" — Alipay sets no earliest cancel time.
  cancelNotBeforeMs: 0,
  // §1.6 / §1.5: a cancel answered retry_flag=Y is called again; the official F2F Java demo
  // (Constants.java) waits 2 s between its 3 cancel attempts.
  cancelRetryMs: 2_000,
  // §1.6: the cancel API works within 24 h of the trade's creation.
  cancelWindowMs: 24 * 3600_000,
  // Not in the note: Alipay publishes no figure. Our choice: 10 s, past which an HTTP call is an unknown
  // outcome (§1.5: 20000 / no answer → query). The server then queries; it never charges again.
  requestTimeoutMs: 10_000,
};
