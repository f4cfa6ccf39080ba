import * as fc from 'fast-check';
import {
  DEFAULT_SERIAL_SETTINGS,
  SERIAL_BAUD_RATES,
  SERIAL_SETTING_VALUES,
} from '../../printer/serial-settings';
import { FieldProblems } from '../field-problems';
import {
  DEFAULT_JOB_IDLE_MS,
  PrinterTapOptions,
  DEFAULT_MAX_JOB_BYTES,
  validatePrinterTapOptions,
  validatePrinterTapParse,
  validatePrinterTapWriteBack,
} from './printer-tap.options';

function check<T>(f: (raw: unknown, p: FieldProblems) => T, raw: unknown): { value: T; problems: string[] } {
  const p = FieldProblems.root();
  const value = f(raw, p);
  return { value, problems: p.all.map((x) => `${x.path}: ${x.message}`) };
}

describe('printer-tap manifest schema', () => {
  it('reads options with their defaults', () => {
    expect(
      check(validatePrinterTapOptions, { listen: 'tcp://127.0.0.1:9100', forward: 'tcp://10.0.0.5:9100' }),
    ).toEqual({
      value: {
        listen: { host: '127.0.0.1', port: 9100 },
        forward: { host: '10.0.0.5', port: 9100 },
        status: 'online',
        jobIdleMs: DEFAULT_JOB_IDLE_MS,
        maxJobBytes: DEFAULT_MAX_JOB_BYTES,
      },
      problems: [],
    });
    expect(check(validatePrinterTapOptions, { listen: 'tcp://0.0.0.0:9100', forward: 'none' }).value).toEqual(
      expect.not.objectContaining({ forward: expect.anything() }),
    );
  });

  it('names every bad option field', () => {
    const { value, problems } = check(validatePrinterTapOptions, {
      listen: 'serial:/dev/ttyS0?baud=300',
      forward: 'http://printer',
      status: 'maybe',
      jobIdleMs: 5,
      maxJobBytes: 'big',
      color: 'red',
    });
    expect(value).toBeUndefined();
    for (const f of ['listen', 'forward', 'status', 'jobIdleMs', 'maxJobBytes', 'color']) {
      expect(problems.some((p) => p.startsWith(`${f}:`))).toBe(true);
    }
    expect(check(validatePrinterTapOptions, { listen: 'tcp://127.0.0.1:9100' }).problems).toEqual([
      expect.stringMatching(/^forward: is required/),
    ]);
    expect(
      check(validatePrinterTapOptions, { listen: 'tcp://127.0.0.1:9100', forward: 'tcp://127.0.0.1:9100' })
        .problems,
    ).toEqual([expect.stringMatching(/^forward: must not be the address/)]);
  });

  it('reads parse rules with the ranked defaults and checks regexes', () => {
    const ok = check(validatePrinterTapParse, { encoding: 'gb18030', currency: 'CNY' });
    expect(ok.problems).toEqual([]);
    expect(ok.value?.amount).toHaveLength(2);
    expect(ok.value?.orderId).toBeDefined();
    const bad = check(validatePrinterTapParse, {
      encoding: 'big5',
      currency: 'RMB',
      amount: ['TOTAL (', 'TOTAL \\S+'],
      orderId: 42,
    });
    expect(bad.value).toBeUndefined();
    expect(bad.problems).toEqual([
      expect.stringMatching(/^encoding: must be one of/),
      expect.stringMatching(/^currency: "RMB" is not a currency/),
      expect.stringMatching(/^amount\[0\]: .* is not a regular expression/),
      expect.stringMatching(/^amount\[1\]: .* needs a capture group/),
      expect.stringMatching(/^orderId: must be text/),
    ]);
  });

  it('takes writeBack {} only, saying why', () => {
    expect(check(validatePrinterTapWriteBack, {})).toEqual({ value: {}, problems: [] });
    expect(check(validatePrinterTapWriteBack, { outbox: './out' }).problems).toEqual([
      expect.stringMatching(/^outbox: a printer tap cannot tell the register anything/),
    ]);
  });
});

describe('printer-tap serial and file endpoints', () => {
  it('reads serial:PATH?… with short or long setting names, file: and none', () => {
    const { value, problems } = check(validatePrinterTapOptions, {
      listen: 'serial:COM4?baud=19200&parity=even&dataBits=7&stopBits=2&flow=rtscts',
      forward: 'serial:/dev/ttyUSB0?baudRate=9600&flowControl=xonxoff',
    });
    expect(problems).toEqual([]);
    expect(value).toMatchObject({
      listen: {
        serial: 'COM4',
        line: { baudRate: 19200, parity: 'even', dataBits: 7, stopBits: 2, flowControl: 'rtscts' },
      },
      forward: { serial: '/dev/ttyUSB0', line: { ...DEFAULT_SERIAL_SETTINGS, flowControl: 'xonxoff' } },
    });
    expect(
      check(validatePrinterTapOptions, { listen: 'serial:/dev/ttyS0', forward: 'file:/dev/usb/lp0' }).value,
    ).toMatchObject({
      listen: { serial: '/dev/ttyS0', line: DEFAULT_SERIAL_SETTINGS },
      forward: { file: '/dev/usb/lp0' },
    });
  });

  it.each([
    ['listen', 'serial:/dev/ttyS0?baud=1200', /^listen: .*baud=1200 is not one of 2400, 4800/],
    ['listen', 'serial:/dev/ttyS0?parity=mark', /^listen: .*parity=mark is not one of none, even, odd/],
    ['listen', 'serial:/dev/ttyS0?speed=9600', /^listen: .*unknown line setting "speed"/],
    ['listen', 'serial:/dev/ttyS0?baud=9600&baudRate=9600', /^listen: .*baudRate given twice/],
    ['listen', 'serial:ttyS0', /^listen: .*must be a device path/],
    ['listen', 'file:/tmp/x', /^listen: .*must be tcp:\/\/HOST:PORT .* or serial:PATH/],
    ['forward', 'serial:COM3?flow=dtr', /^forward: .*flow=dtr is not one of none, rtscts, xonxoff/],
    ['forward', 'file:', /^forward: .*must name a file or device/],
  ])('names %s for %j', (field, uri, problem) => {
    const raw = { listen: 'tcp://127.0.0.1:9100', forward: 'none', [field]: uri };
    const { value, problems } = check(validatePrinterTapOptions, raw);
    expect(value).toBeUndefined();
    expect(problems).toEqual([expect.stringMatching(problem)]);
  });

  it('refuses a forward that is the listen port', () => {
    expect(
      check(validatePrinterTapOptions, { listen: 'serial:COM3', forward: 'serial:com3?baud=9600' }).problems,
    ).toEqual([expect.stringMatching(/^forward: must not be the address/)]);
  });

  it('reads any serial URI to its settings or a problem naming the setting, never throwing (fuzz)', () => {
    const names = fc.constantFrom(
      'baud',
      'baudRate',
      'dataBits',
      'parity',
      'stopBits',
      'flow',
      'flowControl',
    );
    const values = fc.oneof(
      fc.constantFrom(
        ...SERIAL_BAUD_RATES.map(String),
        '7',
        '8',
        '1',
        '2',
        'none',
        'even',
        'odd',
        'rtscts',
        'xonxoff',
      ),
      fc.string({ maxLength: 8 }),
    );
    const setting = fc.tuple(names, values);
    const device = fc.oneof(
      fc.constantFrom('/dev/ttyS0', 'COM3', '/tmp/x/ttyREG', 'ttyS0', '\\\\.\\COM12'),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(device, fc.array(setting, { maxLength: 6 }), (path, settings) => {
        const uri = `serial:${path}${settings.length ? '?' : ''}${settings.map(([n, v]) => `${n}=${v}`).join('&')}`;
        const { value, problems } = check(validatePrinterTapOptions, { listen: uri, forward: 'none' });
        const long = (n: string) => (n === 'baud' ? 'baudRate' : n === 'flow' ? 'flowControl' : n);
        const seen = new Set(settings.map(([n]) => long(n)));
        const valid =
          // A value starting or ending with a space is refused for every text field (field-problems.ts).
          uri === uri.trim() &&
          seen.size === settings.length &&
          !path.includes('?') &&
          !path.includes('\0') &&
          path !== '' &&
          /^(\/|COM\d+$|\\\\\.\\)/i.test(path) &&
          settings.every(([n, v]) =>
            (SERIAL_SETTING_VALUES[long(n) as keyof typeof SERIAL_SETTING_VALUES] as readonly unknown[])
              .map(String)
              .includes(v),
          );
        if (valid) {
          expect(problems).toEqual([]);
          const line = (value?.listen as unknown as { line: Record<string, unknown> }).line;
          for (const [n, v] of settings) expect(String(line[long(n)])).toBe(v);
        } else {
          expect(value).toBeUndefined();
          expect(problems).toHaveLength(1);
          expect(problems[0]).toMatch(/^listen: /);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('printer-tap writeBack footer', () => {
  const tcp = { listen: 'tcp://127.0.0.1:9100', forward: 'tcp://10.0.0.5:9100' };
  const options = (raw: Record<string, unknown>) =>
    validatePrinterTapOptions(raw, FieldProblems.root()) as PrinterTapOptions;

  it('reads a footer with its defaults and checks each field', () => {
    const p = FieldProblems.root();
    expect(validatePrinterTapWriteBack({ footer: {} }, p, options(tcp))).toEqual({
      footer: { qr: 'payment', lines: [], width: 32 },
    });
    expect(
      validatePrinterTapWriteBack(
        { footer: { qr: 'none', lines: ['谢谢惠顾'], width: 48, timeZone: 'Asia/Shanghai' } },
        p,
        options(tcp),
      ),
    ).toEqual({ footer: { qr: 'none', lines: ['谢谢惠顾'], width: 48, timeZone: 'Asia/Shanghai' } });
    expect(p.all).toEqual([]);
    const bad = FieldProblems.root();
    expect(
      validatePrinterTapWriteBack(
        { footer: { qr: 'yes', lines: ['x'.repeat(65)], width: 58, timeZone: 'Mars/Base', color: 1 } },
        bad,
        options(tcp),
      ),
    ).toBeUndefined();
    expect(bad.all.map((x) => x.path)).toEqual(expect.arrayContaining(['footer.color']));
    const b2 = FieldProblems.root();
    validatePrinterTapWriteBack(
      { footer: { qr: 'yes', lines: ['x'.repeat(65)], width: 58, timeZone: 'Mars/Base' } },
      b2,
      options(tcp),
    );
    expect(b2.all.map((x) => `${x.path}: ${x.message}`)).toEqual([
      expect.stringMatching(/^footer\.qr: must be one of "payment", "none"/),
      expect.stringMatching(/^footer\.lines\[0\]: must be at most 64 characters/),
      expect.stringMatching(/^footer\.width: must be one of 32, 42, 48/),
      expect.stringMatching(/^footer\.timeZone: "Mars\/Base" is not a time zone/),
    ]);
  });

  it('refuses a footer without a printer to print on', () => {
    const p = FieldProblems.root();
    const none = options({ listen: 'tcp://127.0.0.1:9100', forward: 'none' });
    expect(validatePrinterTapWriteBack({ footer: { qr: 'payment' } }, p, none)).toBeUndefined();
    expect(p.all.map((x) => `${x.path}: ${x.message}`)).toEqual([
      expect.stringMatching(/^footer: needs a printer to print on: set options.forward/),
    ]);
  });
});
