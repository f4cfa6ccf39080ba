import { FieldProblems } from '../field-problems';
import {
  validateSerialDisplayOptions,
  validateSerialDisplayParse,
  validateSerialDisplayWriteBack,
} from './serial-display.options';

function check<T>(fn: (raw: unknown, p: FieldProblems) => T, raw: unknown) {
  const root = FieldProblems.root();
  const value = fn(raw, root.at('options'));
  return { value, problems: root.all.map((x) => `${x.path}: ${x.message}`) };
}

describe('serial-display options', () => {
  it('takes the defaults for the line settings: 9600 8N1, no flow control', () => {
    const { value, problems } = check(validateSerialDisplayOptions, {
      input: 'serial:/dev/ttyS0',
      protocol: 'epson',
    });
    expect(problems).toEqual([]);
    expect(value).toEqual({
      input: '/dev/ttyS0',
      line: { baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none' },
      protocol: 'epson',
    });
  });

  it('reads a Windows com0com end, a display port and every line setting', () => {
    const { value, problems } = check(validateSerialDisplayOptions, {
      input: 'serial:COM3',
      display: 'serial:COM1',
      protocol: 'led8',
      lamps: 'partner',
      baudRate: 2400,
      dataBits: 7,
      parity: 'even',
      stopBits: 2,
      flowControl: 'xonxoff',
    });
    expect(problems).toEqual([]);
    expect(value).toEqual({
      input: 'COM3',
      display: 'COM1',
      line: { baudRate: 2400, dataBits: 7, parity: 'even', stopBits: 2, flowControl: 'xonxoff' },
      protocol: 'led8',
      lamps: 'partner',
      lampOrder: 'lamp-first',
    });
  });

  it('reads forwardGapMs (0–1000) for a display that needs time between commands', () => {
    const base = { input: 'serial:COM3', display: 'serial:COM1', protocol: 'led8', lamps: 'ascii' };
    expect(check(validateSerialDisplayOptions, { ...base, forwardGapMs: 100 }).value?.forwardGapMs).toBe(100);
    expect(check(validateSerialDisplayOptions, { ...base, forwardGapMs: 0 }).value).not.toHaveProperty(
      'forwardGapMs',
    );
    expect(check(validateSerialDisplayOptions, { ...base, forwardGapMs: 1001 }).problems).toEqual([
      expect.stringMatching(/^options\.forwardGapMs: /),
    ]);
    expect(check(validateSerialDisplayOptions, { ...base, forwardGapMs: '100ms' }).problems).toEqual([
      expect.stringMatching(/^options\.forwardGapMs: /),
    ]);
    const { display: _none, ...noDisplay } = base;
    void _none;
    expect(check(validateSerialDisplayOptions, { ...noDisplay, forwardGapMs: 100 }).problems).toEqual([
      'options.forwardGapMs: paces the writes to the display: set options.display too, or remove it',
    ]);
  });

  it('gives led8 binary lamps unless told otherwise', () => {
    expect(check(validateSerialDisplayOptions, { input: 'serial:COM3', protocol: 'led8' }).value?.lamps).toBe(
      'binary',
    );
  });

  it('never guesses the protocol', () => {
    const { value, problems } = check(validateSerialDisplayOptions, { input: 'serial:/dev/ttyS0' });
    expect(value).toBeUndefined();
    expect(problems).toEqual([expect.stringMatching(/^options\.protocol: is required/)]);
  });

  it('names every bad field in one go', () => {
    const { value, problems } = check(validateSerialDisplayOptions, {
      input: 'tcp://127.0.0.1:9100',
      display: 'serial:/dev/ttyS1?baud=9600',
      protocol: 'vfd',
      lamps: 'blink',
      baudRate: 300,
      parity: 'mark',
      baud: 9600,
    });
    expect(value).toBeUndefined();
    const paths = problems.map((p) => p.split(':')[0]);
    expect(paths).toEqual(
      expect.arrayContaining([
        'options.baud',
        'options.input',
        'options.display',
        'options.protocol',
        'options.lamps',
        'options.baudRate',
        'options.parity',
      ]),
    );
  });

  it('refuses lamps for a protocol without them, and one port for both sides', () => {
    const { problems } = check(validateSerialDisplayOptions, {
      input: 'serial:COM3',
      display: 'serial:com3',
      protocol: 'cd5220',
      lamps: 'ascii',
    });
    expect(problems).toEqual([
      'options.display: must be another port than options.input',
      'options.lamps: is for led8 displays only; protocol is cd5220',
    ]);
  });
});

describe('serial-display parse rules', () => {
  it('reads the regexes, the quiet time and the currency', () => {
    const { value, problems } = check(validateSerialDisplayParse, {
      amountLine: '(?:TOTAL|合计)\\s*([\\d.,]+)',
      orderId: 'NO\\.(\\d+)',
      quietMs: 800,
      minShownMs: 300,
      currency: 'CNY',
    });
    expect(problems).toEqual([]);
    expect(value).toEqual({
      amountLine: '(?:TOTAL|合计)\\s*([\\d.,]+)',
      orderId: 'NO\\.(\\d+)',
      quietMs: 800,
      minShownMs: 300,
      currency: 'CNY',
    });
  });

  it('names a bad regex, quiet time and currency', () => {
    const { value, problems } = check(validateSerialDisplayParse, {
      amountLine: 'TOTAL (',
      quietMs: 5,
      minShownMs: 99,
      currency: 'RMB',
    });
    expect(value).toBeUndefined();
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'options.amountLine',
      'options.quietMs',
      'options.minShownMs',
      'options.currency',
    ]);
  });

  it('needs the currency', () => {
    expect(check(validateSerialDisplayParse, {}).problems).toEqual([
      expect.stringMatching(/^options\.currency: is required/),
    ]);
  });
});

describe('serial-display writeBack', () => {
  it('is absent or empty: a display cannot be told a result', () => {
    expect(check(validateSerialDisplayWriteBack, undefined).value).toEqual({});
    expect(check(validateSerialDisplayWriteBack, {}).value).toEqual({});
    expect(check(validateSerialDisplayWriteBack, { outbox: 'x' }).problems).toHaveLength(1);
  });
});
