import { FieldProblems } from '../field-problems';
import { validateHidOptions, validateHidParse, validateHidWriteBack } from './hid.options';

function check<T>(validate: (raw: unknown, p: FieldProblems) => T, raw: unknown) {
  const p = FieldProblems.root().at('options');
  const value = validate(raw, p);
  return { value, problems: p.all.map((x) => `${x.path}: ${x.message}`) };
}

describe(validateHidOptions.name, () => {
  it('reads hex and numeric ids and a usage page', () => {
    expect(
      check(validateHidOptions, { device: { vendorId: '0x0C2E', productId: 2913 }, usagePage: '0x8c' }),
    ).toEqual({ value: { device: { vendorId: 0x0c2e, productId: 2913 }, usagePage: 0x8c }, problems: [] });
    expect(check(validateHidOptions, { device: { path: '/dev/hidraw3' } }).value).toEqual({
      device: { path: '/dev/hidraw3' },
    });
  });

  it('names each bad field', () => {
    const { value, problems } = check(validateHidOptions, {
      device: { vendorId: '0c2e', productId: 70000 },
      usagePage: 'pos',
      extra: 1,
    });
    expect(value).toBeUndefined();
    expect(problems).toEqual([
      'options.extra: unknown field; allowed here: device, usagePage',
      'options.device.vendorId: "0c2e": write hex ids with 0x in front, e.g. "0x0c2e"',
      'options.device.productId: must be a whole number from 0 to 65535; got 70000',
      'options.usagePage: must be a hex id like "0x0c2e" or a whole number from 0 to 65535; got "pos"',
    ]);
  });

  it('wants either a path or both ids', () => {
    expect(check(validateHidOptions, { device: { path: '/dev/hidraw0', vendorId: 1 } }).problems).toEqual([
      'options.device: give either path or vendorId and productId, not both (also found: vendorId)',
    ]);
    expect(check(validateHidOptions, { device: { vendorId: '0x0c2e' } }).problems).toEqual([
      'options.device.productId: is required: the USB product id, e.g. "0x0b61"',
    ]);
    expect(check(validateHidOptions, {}).problems[0]).toMatch(/^options.device: is required/);
  });
});

describe(validateHidParse.name, () => {
  const good = { report: 'hid-pos', amount: 'AMT:([0-9.,]+)', orderId: 'ORD:(\\S+)', currency: 'CNY' };

  it('fills the defaults', () => {
    expect(check(validateHidParse, good)).toEqual({
      value: { ...good, endOfMessage: 'CR', quietMs: 150 },
      problems: [],
    });
    expect(check(validateHidParse, { ...good, endOfMessage: 'quiet', quietMs: 300 }).value).toMatchObject({
      endOfMessage: 'quiet',
      quietMs: 300,
    });
  });

  it('names each bad field: report, regexes without a group or not compiling, currency, quietMs', () => {
    const { value, problems } = check(validateHidParse, {
      report: 'keyboard',
      amount: 'AMT:[0-9]+',
      orderId: 'ORD:(',
      currency: 'RMB',
      quietMs: 100,
    });
    expect(value).toBeUndefined();
    expect(problems).toEqual([
      'options.report: must be one of "hid-pos", "ascii"; got "keyboard"',
      'options.quietMs: is only used with endOfMessage: quiet (endOfMessage is CR)',
      'options.amount: "AMT:[0-9]+" has no group; put the amount in parentheses, e.g. "AMT:([0-9.,]+)"',
      expect.stringMatching(/^options.orderId: "ORD:\(" is not a valid regex: /),
      'options.currency: "RMB" is not a currency payconnect knows; use an ISO code in capitals such as CNY',
    ]);
  });
});

describe(validateHidWriteBack.name, () => {
  it('accepts only an empty mapping', () => {
    expect(check(validateHidWriteBack, {}).value).toEqual({});
    expect(check(validateHidWriteBack, { outbox: 'x' }).problems).toEqual([
      'options.outbox: unknown field: the hid adapter writes nothing back (a scanner cannot be told a result)',
    ]);
  });
});
