import fc from 'fast-check';
import { parseAmount } from '../../protocol/money';
import type { DisplayChange, DisplayScreen } from './display-model';
import { createDisplayDecoder, type CreateDisplayDecoderOptions } from './decoders';
import { displayCommands, displayFixture } from './decoders/display-fixtures.test';
import { SaleTracker, type SaleEvent, type SaleRuleOptions } from './sale-rule';

/** Feeds a fixture one command (hex line) at a time, `stepMs` apart, ticking the tracker before each. */
function run(
  file: string,
  decoderOptions: CreateDisplayDecoderOptions & { protocol: Parameters<typeof createDisplayDecoder>[0] },
  rule: SaleRuleOptions,
  pauseMs: (comment: string) => number = () => 50,
): SaleEvent[] {
  const decoder = createDisplayDecoder(decoderOptions.protocol, decoderOptions);
  const tracker = new SaleTracker(rule);
  const events: SaleEvent[] = [];
  let now = 1_000;
  for (const { bytes, comment } of displayCommands(file)) {
    events.push(...tracker.tick(now));
    events.push(...tracker.push(decoder.push(bytes), now));
    now += pauseMs(comment);
  }
  events.push(...tracker.tick(now + 60_000));
  return events;
}

const finals = (events: SaleEvent[]) =>
  events.flatMap((e) => (e.kind === 'amount' && e.final ? [e.amountText] : []));
const ended = (events: SaleEvent[]) => events.filter((e) => e.kind === 'sale-ended');

describe(SaleTracker.name, () => {
  describe('led8: the value under the total lamp, in every lamp variant', () => {
    it.each([
      ['led8-binary-sale.hex', 'binary', 'lamp-first'],
      ['led8-ascii-sale.hex', 'ascii', 'lamp-first'],
      ['led8-ascii-value-first-sale.hex', 'ascii', 'value-first'],
      ['led8-partner-sale.hex', 'partner', 'lamp-first'],
      ['led8-bare-sale.hex', 'bare', 'lamp-first'],
    ] as const)('%s: exactly one final total, 12.50, and one end of sale', (file, lamps, lampOrder) => {
      const events = run(file, { protocol: 'led8', lamps }, { amountFrom: 'lamp', lampOrder });
      expect(finals(events)).toEqual(['12.50']);
      expect(events.filter((e) => e.kind === 'amount')).toHaveLength(1);
      expect(ended(events)).toEqual([expect.objectContaining({ reason: 'tendered' })]);
      expect(parseAmount('12.50', 'CNY').value).toBe(1250);
    });

    it.each([
      ['led8-binary-sale.hex', 'binary', 'lamp-first'],
      ['led8-ascii-value-first-sale.hex', 'ascii', 'value-first'],
      ['led8-partner-sale.hex', 'partner', 'lamp-first'],
      ['led8-bare-sale.hex', 'bare', 'lamp-first'],
    ] as const)('%s split at every byte boundary: still one final 12.50', (file, lamps, lampOrder) => {
      const bytes = displayFixture(file);
      for (let k = 0; k <= bytes.length; k++) {
        const decoder = createDisplayDecoder('led8', { lamps });
        const tracker = new SaleTracker({ amountFrom: 'lamp', lampOrder });
        const events = [
          ...tracker.push(decoder.push(bytes.subarray(0, k)), 0),
          ...tracker.push(decoder.push(bytes.subarray(k)), 10),
        ];
        expect(finals(events)).toEqual(['12.50']);
      }
    });

    it("reads the note's two literal examples", () => {
      expect(
        finals(run('led8-binary-total.hex', { protocol: 'led8', lamps: 'binary' }, { amountFrom: 'lamp' })),
      ).toEqual(['12.50']);
      expect(
        finals(
          run(
            'led8-value-first-total.hex',
            { protocol: 'led8', lamps: 'ascii' },
            { amountFrom: 'lamp', lampOrder: 'value-first' },
          ),
        ),
      ).toEqual(['12.50']);
    });

    it('value-first read as lamp-first would take the tendered value: the order is an option', () => {
      const events = run(
        'led8-ascii-value-first-sale.hex',
        { protocol: 'led8', lamps: 'ascii' },
        { amountFrom: 'lamp', lampOrder: 'lamp-first' },
      );
      expect(finals(events)).toEqual(['20.00']);
    });

    it('the Citaq welcome 0.00 (no lamp) is no total', () => {
      expect(run('led8-welcome.hex', { protocol: 'led8' }, { amountFrom: 'lamp' })).toEqual([]);
    });
  });

  describe('lines: a regex over the screen', () => {
    it('epson: TOTAL 12.50 becomes final after the quiet time, once; the clear ends the sale', () => {
      const events = run('epson-sale.hex', { protocol: 'epson' }, { quietMs: 1500 }, (c) =>
        c.includes('TOTAL') ? 2_000 : 50,
      );
      expect(finals(events)).toEqual(['12.50']);
      expect(ended(events)).toEqual([expect.objectContaining({ reason: 'clear' })]);
    });

    it('Wintec CD320 (epson, GB18030) sent byte by byte 15 ms apart: one final 12.50 with its order number', () => {
      const decoder = createDisplayDecoder('epson');
      const tracker = new SaleTracker({ quietMs: 1500, orderPattern: /NO\.(\d+)/ });
      const events: SaleEvent[] = [];
      let now = 0;
      for (const b of displayFixture('epson-wintec-cd320.hex')) {
        events.push(...tracker.tick(now), ...tracker.push(decoder.push(Uint8Array.of(b)), now));
        now += 15;
      }
      events.push(...tracker.tick(now + 1500));
      expect(decoder.screen().lines.map((l) => l.trimEnd())).toEqual(['NO.0042', '合计：12.50']);
      expect(events.filter((e) => e.kind === 'amount' && e.final)).toEqual([
        { kind: 'amount', amountText: '12.50', final: true, orderNumber: '0042', at: now + 1500 },
      ]);
    });

    it('epson: shown too briefly, the total is not final', () => {
      expect(finals(run('epson-sale.hex', { protocol: 'epson' }, { quietMs: 1500 }))).toEqual([]);
    });

    it.each([
      ['cd5220-sale.hex', 'cd5220'],
      ['cd5220-user-characters.hex', 'cd5220'],
      ['aedex-sale.hex', 'aedex'],
      ['utc-standard-sale.hex', 'utc'],
      ['utc-enhanced-sale.hex', 'utc'],
      ['logic-controls-sale.hex', 'logic-controls'],
      ['epson-gb18030.hex', 'epson'],
    ] as const)('%s: a line rule makes TOTAL/合计 final at once', (file, protocol) => {
      const events = run(file, { protocol }, { finalOn: 'line', finalLinePattern: /TOTAL|合计/ });
      expect(finals(events)).toEqual(['12.50']);
    });

    it('a repeat of the same total is not a new order; a different one after a clear is', () => {
      const tracker = new SaleTracker({ finalOn: 'line', finalLinePattern: 'TOTAL' });
      const screen = (line: string): DisplayScreen => ({
        lines: [line.padEnd(20), ''.padEnd(20)],
        cursor: { row: 0, column: 0 },
        lamp: null,
      });
      const text = (line: string): DisplayChange => ({ kind: 'text', screen: screen(line) });
      const events = [
        ...tracker.push([text('TOTAL 5.00')], 0),
        ...tracker.push([text('TOTAL 5.00')], 100),
        ...tracker.push([text('ITEM 1.00'), text('TOTAL 5.00')], 200),
        ...tracker.push([{ kind: 'clear', screen: screen('') }], 300),
        ...tracker.push([text('TOTAL 5.00')], 400),
      ];
      expect(finals(events)).toEqual(['5.00', '5.00']);
      expect(ended(events)).toHaveLength(1);
    });

    it('finds the order number with a configured regex; 应收 matches by default', () => {
      const tracker = new SaleTracker({
        finalOn: 'line',
        finalLinePattern: '应收',
        orderPattern: /NO\.(\d+)/,
      });
      const events = tracker.push(
        [
          {
            kind: 'text',
            screen: { lines: ['NO.1234', '应收 8.80'], cursor: { row: 0, column: 0 }, lamp: null },
          },
        ],
        0,
      );
      expect(events).toEqual([
        { kind: 'amount', amountText: '8.80', final: true, orderNumber: '1234', at: 0 },
      ]);
    });

    it('emits a provisional amount before the quiet time makes it final', () => {
      const tracker = new SaleTracker({ quietMs: 1000 });
      const change: DisplayChange = {
        kind: 'text',
        screen: { lines: ['TOTAL 3.30'], cursor: { row: 0, column: 0 }, lamp: null },
      };
      expect(tracker.push([change], 0)).toEqual([
        { kind: 'amount', amountText: '3.30', final: false, at: 0 },
      ]);
      expect(tracker.tick(999)).toEqual([]);
      expect(tracker.tick(1000)).toEqual([{ kind: 'amount', amountText: '3.30', final: true, at: 1000 }]);
      expect(tracker.tick(5000)).toEqual([]);
    });
  });

  describe('a sale that ends, or changes its total, before the rule is done', () => {
    const screen = (...lines: string[]): DisplayScreen => ({
      lines: [...lines, '', ''].slice(0, 2).map((l) => l.padEnd(20)),
      cursor: { row: 0, column: 0 },
      lamp: null,
    });
    const text = (...lines: string[]): DisplayChange => ({ kind: 'text', screen: screen(...lines) });
    const clear: DisplayChange = { kind: 'clear', screen: screen() };
    const lamp = (l: 'price' | 'total' | 'tendered' | 'change', value: string): DisplayChange => ({
      kind: 'lamp',
      lamp: l,
      screen: { lines: [value.padEnd(16)], cursor: { row: 0, column: 0 }, lamp: l },
    });
    const finalEvents = (events: SaleEvent[]) => events.filter((e) => e.kind === 'amount' && e.final);

    it('quiet time: a total shown at least minShownMs and then cleared is final at the clear', () => {
      const tracker = new SaleTracker({ quietMs: 1500, minShownMs: 500, orderPattern: /NO\.(\d+)/ });
      expect(finals(tracker.push([text('NO.17', 'TOTAL 12.50')], 1_000))).toEqual([]);
      expect(tracker.tick(1_499)).toEqual([]);
      const events = tracker.push([clear], 1_500);
      expect(events).toEqual([
        { kind: 'amount', amountText: '12.50', final: true, orderNumber: '17', at: 1_500 },
        { kind: 'sale-ended', reason: 'clear', at: 1_500 },
      ]);
      // The quiet time passing later makes nothing final twice.
      expect(tracker.tick(10_000)).toEqual([]);
    });

    it('quiet time: a total shown shorter than minShownMs and then cleared is not final', () => {
      const tracker = new SaleTracker({ quietMs: 1500, minShownMs: 500 });
      tracker.push([text('TOTAL 12.50')], 1_000);
      const events = tracker.push([clear], 1_499);
      expect(finals(events)).toEqual([]);
      expect(ended(events)).toHaveLength(1);
      expect(tracker.tick(10_000)).toEqual([]);
    });

    it('quiet time: the tendered lamp ends the sale like a clear', () => {
      const tracker = new SaleTracker({ quietMs: 1500, minShownMs: 500, amountPattern: /(\d+\.\d+)/ });
      tracker.push([text('12.50')], 0);
      expect(finals(tracker.push([lamp('tendered', '12.50')], 600))).toEqual(['12.50']);
    });

    it('quiet time: a total replaced by the next item is not final, at the clear nor later', () => {
      const tracker = new SaleTracker({ quietMs: 1500, minShownMs: 500 });
      tracker.push([text('TOTAL 12.50')], 0);
      tracker.push([text('MILK 3.00')], 1_000);
      expect(tracker.tick(2_600)).toEqual([]);
      expect(finals(tracker.push([clear], 2_700))).toEqual([]);
    });

    it('quiet time: the same total redrawn keeps counting from when it first appeared', () => {
      const tracker = new SaleTracker({ quietMs: 1500, minShownMs: 500 });
      tracker.push([text('TOTAL 12.50')], 0);
      tracker.push([text('THANK YOU', 'TOTAL 12.50')], 400);
      expect(finals(tracker.push([clear], 500))).toEqual(['12.50']);
    });

    it('minShownMs at the quiet time or above turns the early final off', () => {
      const tracker = new SaleTracker({ quietMs: 1500, minShownMs: 1500 });
      tracker.push([text('TOTAL 12.50')], 0);
      expect(finals(tracker.push([clear], 1_499))).toEqual([]);
    });

    it('a lamp or line rule is not changed by minShownMs: an unlit total is not final at the clear', () => {
      const tracker = new SaleTracker({ finalOn: 'line', finalLinePattern: 'PAY', minShownMs: 100 });
      tracker.push([text('TOTAL 12.50')], 0);
      expect(finals(tracker.push([clear], 5_000))).toEqual([]);
    });

    it('a different final total in the same sale says which total it corrects; repeats say nothing', () => {
      const tracker = new SaleTracker({ quietMs: 1000 });
      const events = [
        ...tracker.push([text('TOTAL 12.50')], 0),
        ...tracker.tick(1_000),
        ...tracker.push([text('TOTAL 12.50')], 1_100),
        ...tracker.tick(2_100),
        ...tracker.push([text('MILK 3.00')], 2_200),
        ...tracker.push([text('TOTAL 15.50')], 2_300),
        ...tracker.tick(3_300),
      ];
      expect(finalEvents(events)).toEqual([
        { kind: 'amount', amountText: '12.50', final: true, at: 1_000 },
        { kind: 'amount', amountText: '15.50', final: true, corrects: '12.50', at: 3_300 },
      ]);
    });

    it('led8: a second total under the total lamp after another item corrects the first', () => {
      const tracker = new SaleTracker({ amountFrom: 'lamp' });
      const value = (v: string, l: 'price' | 'total'): DisplayChange => ({
        kind: 'text',
        screen: { lines: [v.padEnd(16)], cursor: { row: 0, column: 0 }, lamp: l },
      });
      const events = [
        ...tracker.push([lamp('total', '3.00'), value('12.50', 'total')], 0),
        ...tracker.push([lamp('price', '12.50'), value('3.00', 'price')], 100),
        ...tracker.push([lamp('total', '3.00'), value('15.50', 'total')], 200),
        ...tracker.push([lamp('tendered', '15.50')], 300),
        ...tracker.push([lamp('total', '0.00'), value('7.00', 'total')], 400),
      ];
      expect(
        finalEvents(events).map((e) => [
          e.kind === 'amount' && e.amountText,
          e.kind === 'amount' && e.corrects,
        ]),
      ).toEqual([
        ['12.50', undefined],
        ['15.50', '12.50'],
        ['7.00', undefined],
      ]);
    });

    it('a total after a clear corrects nothing: it is the next sale', () => {
      const tracker = new SaleTracker({ finalOn: 'line', finalLinePattern: 'TOTAL' });
      const events = [
        ...tracker.push([text('TOTAL 5.00')], 0),
        ...tracker.push([clear], 100),
        ...tracker.push([text('TOTAL 6.00')], 200),
      ];
      expect(finalEvents(events).map((e) => e.kind === 'amount' && e.corrects)).toEqual([
        undefined,
        undefined,
      ]);
    });
  });

  it('fuzz: any bytes through any decoder never make the tracker throw, and finals are numbers', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('epson', 'cd5220', 'led8', 'aedex', 'utc', 'logic-controls' as const),
        fc.constantFrom('binary', 'ascii', 'partner', 'bare' as const),
        fc.array(fc.uint8Array({ maxLength: 48 }), { maxLength: 10 }),
        (protocol, lamps, chunks) => {
          const decoder = createDisplayDecoder(protocol, { lamps });
          const byLamp = new SaleTracker({ amountFrom: 'lamp' });
          const byLine = new SaleTracker({ quietMs: 10 });
          let now = 0;
          for (const chunk of chunks) {
            const changes = decoder.push(chunk);
            for (const e of [
              ...byLamp.push(changes, now),
              ...byLine.push(changes, now),
              ...byLine.tick(now + 20),
            ]) {
              if (e.kind === 'amount') expect(e.amountText).toMatch(/^-?\d+(?:[.,]\d+)?$/);
            }
            now += 30;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
