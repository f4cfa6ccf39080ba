import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { readReportRecording } from './hid-binding';
import { HidParseRules } from './hid.options';
import { HidDecoder, MAX_MESSAGE_BYTES, decodeReports, reportData } from './parse';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/hid');
const recording = (name: string): Buffer[][] =>
  readReportRecording(readFileSync(path.join(FIXTURES, name), 'utf8'));

const rules: HidParseRules = {
  report: 'hid-pos',
  endOfMessage: 'CR',
  quietMs: 150,
  amount: 'AMT:([^;\\r]+)',
  orderId: 'ORD:([^;\\r]+)',
  currency: 'CNY',
};
const SOURCE = 'hid 0x0c2e:0x0b61';

function pos(text: string | Buffer, size = 16): Buffer {
  const data = typeof text === 'string' ? Buffer.from(text) : text;
  const r = Buffer.concat([Buffer.from([2, data.length]), data]);
  return r.length < size ? Buffer.concat([r, Buffer.alloc(size - r.length)]) : r;
}

describe(reportData.name, () => {
  it('takes the data bytes after the length byte of a HID-POS report, padding dropped', () => {
    expect(reportData(pos('AMT:1'), 'hid-pos').toString()).toBe('AMT:1');
  });

  it('refuses a HID-POS report whose length runs past its end, and one too short for a header', () => {
    const bad = Buffer.from([2, 40, 0x41, 0x42]);
    expect(() => reportData(bad, 'hid-pos')).toThrow(/says it carries 40 data bytes but has only 2/);
    expect(() => reportData(Buffer.from([2]), 'hid-pos')).toThrow(/report id and a length byte; got 1 byte/);
  });

  it('in ascii mode keeps every byte but NUL', () => {
    expect(reportData(Buffer.from('A\0B\0\0'), 'ascii').toString()).toBe('AB');
  });
});

describe('decoding the recorded HID-POS scans (test/fixtures/hid/hid-pos-scans.hex)', () => {
  it('reads every scan as an order in exact minor units, across report and character boundaries', () => {
    const outcomes = decodeReports(recording('hid-pos-scans.hex').flat(), rules, 'R1', SOURCE);
    expect(outcomes).toEqual([
      {
        kind: 'order',
        order: { orderId: 'A-1', registerId: 'R1', amount: { value: 1250, currency: 'CNY' }, source: SOURCE },
      },
      {
        kind: 'order',
        order: {
          orderId: 'B-22',
          registerId: 'R1',
          amount: { value: 123450, currency: 'CNY' },
          source: SOURCE,
        },
      },
      {
        kind: 'order',
        order: { orderId: '单-7', registerId: 'R1', amount: { value: 800, currency: 'CNY' }, source: SOURCE },
      },
    ]);
  });

  it('takes named groups when the regex has them', () => {
    const named = { ...rules, amount: 'x?(y)?AMT:(?<amount>[0-9.,]+)', orderId: '(?<orderId>[A-Z]-\\d+)' };
    const [first] = decodeReports(recording('hid-pos-scans.hex')[0], named, 'R1', SOURCE);
    expect(first).toMatchObject({ kind: 'order', order: { orderId: 'A-1', amount: { value: 1250 } } });
  });
});

describe('decoding noise (test/fixtures/hid/hid-pos-noise.hex)', () => {
  it('rejects each bad item once with a precise code, and keeps the good scans', () => {
    const outcomes = decodeReports(recording('hid-pos-noise.hex').flat(), rules, 'R1', SOURCE);
    const summary = outcomes.map((o) => (o.kind === 'order' ? `order ${o.order.orderId}` : o.reject.code));
    expect(summary).toEqual([
      'order N-1',
      'hid.bad_report',
      'hid.bad_report',
      'hid.no_amount',
      'money.ambiguous',
      'hid.no_order_id',
      'hid.not_text',
      'order N-3',
      'hid.incomplete_message',
    ]);
    for (const o of outcomes) if (o.kind === 'reject') expect(o.reject.subject).toBe(SOURCE);
    const noAmount = outcomes[3];
    expect(noAmount.kind === 'reject' && noAmount.reject.message).toContain('"6901234567892"');
  });
});

describe(HidDecoder.name, () => {
  it('ends messages at LF, or at each report, as the manifest says', () => {
    const lf = new HidDecoder({ ...rules, endOfMessage: 'LF' }, 'R1', SOURCE);
    expect(lf.report(pos('AMT:2;ORD:L-1\r\nAMT:3;'))).toMatchObject([
      { kind: 'order', order: { orderId: 'L-1' } },
    ]);
    expect(lf.report(pos('ORD:L-2\n'))).toMatchObject([
      { kind: 'order', order: { orderId: 'L-2', amount: { value: 300 } } },
    ]);
    const each = new HidDecoder({ ...rules, endOfMessage: 'report' }, 'R1', SOURCE);
    expect(each.report(pos('AMT:2;ORD:P-1'))).toMatchObject([{ kind: 'order', order: { orderId: 'P-1' } }]);
    expect(each.pendingBytes).toBe(0);
  });

  it('in quiet mode keeps bytes until flush(), then reads them as one message', () => {
    const [first, second] = recording('ascii-quiet.hex');
    const d = new HidDecoder(
      { ...rules, report: 'ascii', endOfMessage: 'quiet', amount: 'AMT:(\\S+)', orderId: 'ORD:(\\S+)' },
      'R1',
      SOURCE,
    );
    expect(first.flatMap((r) => d.report(r))).toEqual([]);
    expect(d.flush()).toMatchObject([{ kind: 'order', order: { orderId: 'Q-1', amount: { value: 660 } } }]);
    second.forEach((r) => d.report(r));
    expect(d.flush()).toMatchObject([{ kind: 'order', order: { orderId: 'Q-2', amount: { value: 1500 } } }]);
    expect(d.flush()).toEqual([]);
  });

  it('drops a message that runs past the limit, once, and reads the next one', () => {
    const d = new HidDecoder(rules, 'R1', SOURCE);
    const chunk = pos('9'.repeat(200), 202);
    const outcomes = [];
    for (let sent = 0; sent <= MAX_MESSAGE_BYTES; sent += 200) outcomes.push(...d.report(chunk));
    outcomes.push(...d.report(pos('99\rAMT:1;ORD:Z-1\r')));
    expect(outcomes.map((o) => (o.kind === 'order' ? o.order.orderId : o.reject.code))).toEqual([
      'hid.message_too_long',
      'Z-1',
    ]);
  });

  it('rejects an order id the id rule refuses, and a zero amount', () => {
    const long = decodeReports([pos(`AMT:1;ORD:${'x'.repeat(70)}\r`, 90)], rules, 'R1', SOURCE);
    expect(long).toMatchObject([{ kind: 'reject', reject: { code: 'order.bad_id' } }]);
    const zero = decodeReports([pos('AMT:0.00;ORD:A\r')], rules, 'R1', SOURCE);
    expect(zero).toMatchObject([{ kind: 'reject', reject: { code: 'money.zero' } }]);
  });
});

describe('fuzz', () => {
  const fuzzRules: HidParseRules[] = [
    rules,
    { ...rules, endOfMessage: 'LF' },
    { ...rules, endOfMessage: 'report' },
    { ...rules, endOfMessage: 'quiet', report: 'ascii' },
    { ...rules, report: 'ascii' },
  ];

  it('never throws on arbitrary reports: every outcome is an order or a rejection with a code', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...fuzzRules),
        fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 30 }),
        (r, reports) => {
          for (const o of decodeReports(reports, r, 'R1', SOURCE)) {
            if (o.kind === 'order') {
              expect(Number.isSafeInteger(o.order.amount.value) && o.order.amount.value > 0).toBe(true);
            } else {
              expect(o.reject.code).toMatch(/^(hid|money|order)\./);
              expect(o.reject.message.length).toBeGreaterThan(0);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads any valid order text the same however it is split into reports', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 99_999_999 }),
        fc.stringMatching(/^[A-Z0-9-]{1,20}$/),
        fc.array(fc.integer({ min: 1, max: 14 }), { minLength: 1, maxLength: 10 }),
        (fen, orderId, sizes) => {
          const amount = `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
          const bytes = Buffer.from(`AMT:${amount};ORD:${orderId}\r`);
          const reports: Buffer[] = [];
          for (let at = 0, i = 0; at < bytes.length; i++) {
            const n = sizes[i % sizes.length];
            reports.push(pos(bytes.subarray(at, at + n)));
            at += n;
          }
          expect(decodeReports(reports, rules, 'R1', SOURCE)).toEqual([
            {
              kind: 'order',
              order: { orderId, registerId: 'R1', amount: { value: fen, currency: 'CNY' }, source: SOURCE },
            },
          ]);
        },
      ),
      { numRuns: 300 },
    );
  });
});
