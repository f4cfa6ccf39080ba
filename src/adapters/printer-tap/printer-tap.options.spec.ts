import { FieldProblems } from '../field-problems';
import {
  DEFAULT_JOB_IDLE_MS,
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
