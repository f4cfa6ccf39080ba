import { redact } from './redact';

describe(redact.name, () => {
  it('masks payment codes and card-like numbers, keeping two digits at each end', () => {
    expect(redact('charge 280000000000000010 failed')).toBe('charge 28**************10 failed');
    expect(redact('card 4111 1111 1111 1111 seen')).toBe('card 41************11 seen');
    expect(redact('card 4111-1111-1111-1111')).toBe('card 41************11');
  });

  it('leaves short numbers (amounts, ids, times) alone', () => {
    expect(redact('order 1234567 amount 1250 at 2026-11-26T10:00:00Z')).toBe(
      'order 1234567 amount 1250 at 2026-11-26T10:00:00Z',
    );
    expect(redact('12345678901')).toBe('12345678901');
  });
});
