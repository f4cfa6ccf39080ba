/**
 * The customer's payment code (the barcode or QR code a wallet app shows, which the clerk scans): the one
 * rule the server, the unit, the unit's touch page and the fake server all check.
 *
 * A payment code is 16–24 ASCII digits once spaces are removed: scanners and clerks add them (a wallet app
 * shows the code in groups of four, and a keyboard-wedge scanner may type a line end). normalizePaymentCode
 * removes them; isPaymentCode checks what is left. On the wire to the server the code is always the
 * normalized digits.
 *
 * Why 16–24: the wallets' own codes, from shared/research/wallet-providers.md §4 "Code routing by prefix":
 * WeChat Pay codes are 18 digits (prefix 10–15), Alipay codes 16–24 digits, usually 18 (prefix 25–30), and
 * UnionPay QR codes 19 digits (prefix 62). Anything shorter or longer is a bad scan (a product barcode, half
 * a code), refused before it reaches a provider. Alipay's face-payment tokens (`fp…`, 35 characters) are
 * not digit codes and are not taken here. The simulator's test codes (DESIGN.md "Test payment codes") are
 * 18 digits.
 */

export const PAYMENT_CODE_MIN_DIGITS = 16;
export const PAYMENT_CODE_MAX_DIGITS = 24;

/** A normalized payment code: only ASCII digits, PAYMENT_CODE_MIN_DIGITS to PAYMENT_CODE_MAX_DIGITS. */
export const PAYMENT_CODE_PATTERN = new RegExp(
  `^[0-9]{${PAYMENT_CODE_MIN_DIGITS},${PAYMENT_CODE_MAX_DIGITS}}$`,
);

/** What normalizePaymentCode removes: spaces, and any other white space (a tab, a scanner's line end). */
export const PAYMENT_CODE_SPACES = /\s+/g;

/** The rule in words, for messages: `must be ${PAYMENT_CODE_RULE}`. */
export const PAYMENT_CODE_RULE = `${PAYMENT_CODE_MIN_DIGITS}-${PAYMENT_CODE_MAX_DIGITS} digits`;

/** The code as typed or scanned, without its spaces. It does not check it: isPaymentCode does. */
export function normalizePaymentCode(raw: string): string {
  return raw.replace(PAYMENT_CODE_SPACES, '');
}

/** True for a normalized payment code (see normalizePaymentCode): 16–24 ASCII digits and nothing else. */
export function isPaymentCode(x: unknown): x is string {
  return typeof x === 'string' && PAYMENT_CODE_PATTERN.test(x);
}

/** The wallet whose customers show a code (research note §4): the provider a real store routes it to. */
export type CodeWallet = 'alipay' | 'wechat' | 'unionpay';

/**
 * Which wallet a normalized payment code belongs to, by its prefix and length (wallet-providers.md §4):
 * WeChat Pay 10–15 and 18 digits; Alipay 25–30 and 16–24 digits; UnionPay QR 62 and 19 digits. Undefined
 * for any other code (a product barcode, a gift card, a bad scan).
 */
export function walletOfCode(code: string): CodeWallet | undefined {
  if (!isPaymentCode(code)) return undefined;
  const prefix = Number(code.slice(0, 2));
  if (prefix >= 10 && prefix <= 15 && code.length === 18) return 'wechat';
  if (prefix >= 25 && prefix <= 30) return 'alipay';
  if (prefix === 62 && code.length === 19) return 'unionpay';
  return undefined;
}
