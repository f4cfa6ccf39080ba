import {
  isPaymentCode,
  normalizePaymentCode,
  PAYMENT_CODE_MAX_DIGITS,
  PAYMENT_CODE_MIN_DIGITS,
  walletOfCode,
  PAYMENT_CODE_RULE,
} from './payment-code';

const digits = (n: number) => '2801234567'.repeat(4).slice(0, n);

describe('the payment code rule', () => {
  it('is 16-24 digits', () => {
    expect([PAYMENT_CODE_MIN_DIGITS, PAYMENT_CODE_MAX_DIGITS]).toEqual([16, 24]);
    expect(PAYMENT_CODE_RULE).toBe('16-24 digits');
  });

  test.each([16, 18, 19, 24])('takes %i digits', (n) => {
    expect(isPaymentCode(digits(n))).toBe(true);
  });

  test.each([0, 10, 15, 25, 32])('refuses %i digits', (n) => {
    expect(isPaymentCode(digits(n))).toBe(false);
  });

  test.each<unknown>([
    '28ABCDEFGH12345600',
    '2800 0000 0000 0000 00', // not normalized
    '２８００００００００００００００００', // full-width digits are not ASCII digits
    '28000000000000000٠', // an Arabic-Indic zero
    '-28000000000000000',
    '2.8000000000000000',
    280000000000000000,
    ['280000000000000000'],
    null,
    undefined,
  ])('refuses %p', (x) => {
    expect(isPaymentCode(x)).toBe(false);
  });

  it('removes the spaces scanners and clerks add, and nothing else', () => {
    expect(normalizePaymentCode('2800 0000 0000 0000 00')).toBe('280000000000000000');
    expect(normalizePaymentCode(' 280000000000000000\r\n')).toBe('280000000000000000');
    expect(normalizePaymentCode('2800\t0000\u00a00000\u30000000 00')).toBe('280000000000000000');
    expect(normalizePaymentCode('28-00')).toBe('28-00');
    // The same answer twice in a row (the pattern is global: no state may leak between calls).
    expect(normalizePaymentCode('1 2')).toBe('12');
    expect(normalizePaymentCode('1 2')).toBe('12');
  });
});

describe('walletOfCode (research note §4: the wallet a real store routes a code to)', () => {
  it.each([
    ['100000000000000000', 'wechat'],
    ['134567890123456789', 'wechat'],
    ['159999999999999999', 'wechat'],
    ['250000000000000000', 'alipay'],
    ['2800000000000000', 'alipay'],
    ['280000000000000000000000', 'alipay'],
    ['301234567890123456', 'alipay'],
    ['6212345678901234567', 'unionpay'],
  ])('%s is %s', (code, wallet) => {
    expect(walletOfCode(code)).toBe(wallet);
  });

  it.each([
    ['a WeChat prefix with 17 digits', '13456789012345678'],
    ['a WeChat prefix with 19 digits', '1345678901234567890'],
    ['prefix 16', '160000000000000000'],
    ['prefix 24', '240000000000000000'],
    ['prefix 31', '310000000000000000'],
    ['UnionPay with 18 digits', '621234567890123456'],
    ['not a payment code', '28000000000000000x'],
  ])('%s belongs to no wallet', (_what, code) => {
    expect(walletOfCode(code)).toBeUndefined();
  });
});
