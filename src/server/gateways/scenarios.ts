/**
 * The local wallet gateways' scenarios (`payconnect gateway alipay|wechat`), chosen as WeChat Pay's own
 * sandbox chooses them: by the amount, or by a request header. Both gateways use this one table, so a demo or
 * a test plays the same scenario on either provider. Every amount not listed succeeds at once.
 *
 * The header `Payconnect-Scenario: <name>` on a pay request overrides the amount (tests only; the server never
 * sends it unless a test configures it).
 */
export type GatewayScenario =
  /** The customer must confirm on the phone (password); confirms after the gateway's confirm delay (8 s). */
  | 'wait_then_success'
  /** The customer never confirms: the trade stays waiting until the gateway closes it at the provider's
   * own auto-close time (Alipay 3 min unless timeout_express; WeChat Pay 45 s), or until it is cancelled. */
  | 'wait_then_timeout'
  /** Declined for good: not enough money (Alipay ACQ.BUYER_BALANCE_NOT_ENOUGH, WeChat Pay NOTENOUGH). */
  | 'insufficient_funds'
  /** Declined for good: the payment code is invalid or expired (ACQ.PAYMENT_AUTH_CODE_INVALID, AUTHCODEEXPIRE). */
  | 'code_invalid'
  /** The pay call answers "system error" (outcome unknown), yet the trade was paid: a query says paid. */
  | 'system_error_then_success'
  /** The pay call answers "system error" and no trade was made: a query says it does not exist. */
  | 'system_error_not_created'
  /** The out_trade_no counts as already used by another trade (ACQ.CONTEXT_INCONSISTENT, OUT_TRADE_NO_USED). */
  | 'duplicate_order_no'
  /** The customer is confirming and confirms exactly as the cancel/reverse arrives: the cancel then refunds
   * the paid trade (Alipay action=refund; WeChat Pay reverse of a paid order). */
  | 'cancel_race'
  /** The pay call is charged but its answer never comes (held past any client timeout): unknown, query says
   * paid. */
  | 'no_answer_then_success';

/** Amount in fen → scenario. ¥91.01 … ¥91.09. */
export const SCENARIO_AMOUNTS: Readonly<Record<number, GatewayScenario>> = {
  9101: 'wait_then_success',
  9102: 'wait_then_timeout',
  9103: 'insufficient_funds',
  9104: 'code_invalid',
  9105: 'system_error_then_success',
  9106: 'system_error_not_created',
  9107: 'duplicate_order_no',
  9108: 'cancel_race',
  9109: 'no_answer_then_success',
};

export const SCENARIO_HEADER = 'payconnect-scenario';

const NAMES = new Set<string>(Object.values(SCENARIO_AMOUNTS));

/** The scenario a pay request plays: the header's if it names one, else the amount's, else undefined (success). */
export function scenarioFor(amountFen: number, header?: string | string[]): GatewayScenario | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (h !== undefined && NAMES.has(h.trim())) return h.trim() as GatewayScenario;
  return SCENARIO_AMOUNTS[amountFen];
}

/** How long a waiting customer takes to confirm at speed 1 (the gateway divides it by its speed). */
export const GATEWAY_CONFIRM_MS = 8_000;
