import fc from 'fast-check';
import { ProtocolError } from '../../protocol/errors';
import { parseOrderBody } from './parse';

const config = { registerId: 'R1', currency: 'CNY' };

function errorOf(body: unknown): ProtocolError {
  try {
    parseOrderBody(body, config);
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
  throw new Error('expected a ProtocolError');
}

describe(parseOrderBody.name, () => {
  it.each([
    [
      { orderId: 'A-1', amount: '12.50' },
      { value: 1250, currency: 'CNY' },
    ],
    [
      { orderId: 'A-1', amount: '¥1,234.50', currency: 'CNY' },
      { value: 123450, currency: 'CNY' },
    ],
    [
      { orderId: 'A-1', amount: { value: 1250, currency: 'CNY' } },
      { value: 1250, currency: 'CNY' },
    ],
    [
      { orderId: 'A-1', amount: { value: 1, currency: 'CNY' }, currency: 'CNY' },
      { value: 1, currency: 'CNY' },
    ],
  ])('reads %j', (body, amount) => {
    expect(parseOrderBody(body, config)).toEqual({
      orderId: 'A-1',
      registerId: 'R1',
      amount,
      source: 'http',
    });
  });

  it('reads items and a per-order dispatch', () => {
    const order = parseOrderBody(
      {
        orderId: '单-7',
        amount: '12.50',
        items: [{ name: '拿铁', quantity: 2, amount: '6.25' }, { name: 'Bag' }],
        dispatch: { mode: 'unicast', terminal: 'T2' },
      },
      config,
      '127.0.0.1',
    );
    expect(order).toEqual({
      orderId: '单-7',
      registerId: 'R1',
      amount: { value: 1250, currency: 'CNY' },
      items: [{ name: '拿铁', quantity: 2, amount: { value: 625, currency: 'CNY' } }, { name: 'Bag' }],
      dispatch: { mode: 'unicast', terminal: 'T2' },
      source: '127.0.0.1',
    });
  });

  it.each<[string, unknown, string, string]>([
    ['no body', null, 'http_hook.bad_body', 'The order must be a JSON object'],
    ['a list', [1], 'http_hook.bad_body', 'got a list'],
    ['no orderId', { amount: '1' }, 'http_hook.bad_order', 'orderId: is required'],
    ['a numeric orderId', { orderId: 5, amount: '1' }, 'order.bad_id', 'orderId: The order id 5 is not text'],
    ['no amount', { orderId: 'A' }, 'http_hook.bad_order', 'amount: is required'],
    [
      'a number amount',
      { orderId: 'A', amount: 12.5 },
      'http_hook.bad_order',
      'amount: must be a decimal string like "12.50" or {value, currency} in minor units, not the number 12.5',
    ],
    [
      'an amount with too many decimals',
      { orderId: 'A', amount: '12.505' },
      'money.ambiguous',
      'amount: The amount "12.505" is ambiguous',
    ],
    [
      'a negative amount',
      { orderId: 'A', amount: '-1' },
      'money.negative',
      'amount: The amount "-1" is negative',
    ],
    [
      'a zero value',
      { orderId: 'A', amount: { value: 0, currency: 'CNY' } },
      'money.zero',
      'amount.value: The amount is zero',
    ],
    [
      'a fractional value',
      { orderId: 'A', amount: { value: 12.5, currency: 'CNY' } },
      'money.not_integer',
      'amount.value: An amount must be a whole number',
    ],
    [
      'a text value',
      { orderId: 'A', amount: { value: '1250', currency: 'CNY' } },
      'http_hook.bad_order',
      'amount.value: must be a whole number of minor units',
    ],
    [
      'an amount object without currency',
      { orderId: 'A', amount: { value: 1 } },
      'http_hook.bad_order',
      'amount.currency: is required',
    ],
    [
      'an extra amount field',
      { orderId: 'A', amount: { value: 1, currency: 'CNY', cents: 1 } },
      'http_hook.bad_order',
      'amount.cents: unknown field',
    ],
    [
      'another currency',
      { orderId: 'A', amount: '1', currency: 'USD' },
      'http_hook.bad_order',
      'currency: the order is in USD, but this register charges CNY',
    ],
    [
      'another currency in the amount',
      { orderId: 'A', amount: { value: 1, currency: 'JPY' } },
      'http_hook.bad_order',
      'amount.currency: the order is in JPY',
    ],
    [
      'an unknown currency',
      { orderId: 'A', amount: '1', currency: 'RMB' },
      'http_hook.bad_order',
      'currency: "RMB" is not a currency',
    ],
    [
      'a misspelt field',
      { orderId: 'A', amount: '1', dispach: { mode: 'broadcast' } },
      'http_hook.bad_order',
      'dispach: unknown field; allowed: orderId, amount, currency, items, dispatch',
    ],
    [
      'a bad dispatch',
      { orderId: 'A', amount: '1', dispatch: { mode: 'unicast' } },
      'http_hook.bad_order',
      'dispatch.terminal: is required for a unicast dispatch',
    ],
    [
      'items not a list',
      { orderId: 'A', amount: '1', items: {} },
      'http_hook.bad_order',
      'items: must be a list',
    ],
    [
      'an item without name',
      { orderId: 'A', amount: '1', items: [{ quantity: 1 }] },
      'http_hook.bad_order',
      'items[0].name: must be printable text',
    ],
    [
      'a bad item quantity',
      { orderId: 'A', amount: '1', items: [{ name: 'x', quantity: -1 }] },
      'http_hook.bad_order',
      'items[0].quantity: must be a positive number',
    ],
    [
      'a bad item amount',
      { orderId: 'A', amount: '1', items: [{ name: 'x', amount: 'abc' }] },
      'money.not_a_number',
      'items[0].amount: The amount "abc" has no digits',
    ],
  ])('refuses %s, naming the field', (_name, body, code, message) => {
    const e = errorOf(body);
    expect(e.code).toBe(code);
    expect(e.message).toContain(message);
  });

  it('names every bad field at once', () => {
    const e = errorOf({ orderId: '', amount: 12.5, currency: 'XXX', extra: 1 });
    expect(e.code).toBe('http_hook.bad_order');
    expect(e.subject).toBe('extra');
    for (const field of ['extra:', 'orderId:', 'currency:']) expect(e.message).toContain(field);
  });

  it('fuzz: only ProtocolError ever escapes, for any JSON value or order-shaped body', () => {
    const amount = fc.oneof(
      fc.string(),
      fc.double(),
      fc.record({ value: fc.jsonValue(), currency: fc.string() }),
      fc.jsonValue(),
    );
    const orderish = fc.record(
      {
        orderId: fc.oneof(fc.string(), fc.jsonValue()),
        amount,
        currency: fc.oneof(fc.constantFrom('CNY', 'USD', 'cny'), fc.jsonValue()),
        items: fc.oneof(
          fc.array(
            fc.record({ name: fc.jsonValue(), quantity: fc.jsonValue(), amount }, { requiredKeys: [] }),
          ),
          fc.jsonValue(),
        ),
        dispatch: fc.oneof(
          fc.record(
            { mode: fc.constantFrom('unicast', 'broadcast', 'x'), terminal: fc.jsonValue() },
            { requiredKeys: [] },
          ),
          fc.jsonValue(),
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), orderish, fc.anything()), (body) => {
        try {
          parseOrderBody(body, config);
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
