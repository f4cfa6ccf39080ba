import fc from 'fast-check';
import { readdirSync } from 'node:fs';
import type { DisplayChange, DisplayProtocol } from '../display-model';
import { createDisplayDecoder, type CreateDisplayDecoderOptions } from '.';
import { Cd5220Decoder } from './cd5220';
import { DISPLAY_FIXTURES, displayFixture } from './display-fixtures.test';

interface Case {
  file: string;
  protocol: DisplayProtocol;
  options?: CreateDisplayDecoderOptions;
}

const caseFor = (file: string): Case => {
  if (file.startsWith('logic-controls')) return { file, protocol: 'logic-controls' };
  if (file.startsWith('utc-enhanced')) return { file, protocol: 'utc' };
  const protocol = file.split('-')[0] as DisplayProtocol;
  if (protocol !== 'led8') return { file, protocol };
  const lamps = file.includes('partner')
    ? 'partner'
    : file.includes('bare')
      ? 'bare'
      : file.includes('ascii') || file.includes('value-first')
        ? 'ascii'
        : 'binary';
  return { file, protocol, options: { lamps } };
};

const FILES = readdirSync(DISPLAY_FIXTURES).filter((n) => n.endsWith('.hex'));
const CASES = FILES.map(caseFor);

const decode = (c: Case, chunks: Uint8Array[]) => {
  const d = createDisplayDecoder(c.protocol, c.options);
  const changes: DisplayChange[] = [];
  for (const chunk of chunks) changes.push(...d.push(chunk));
  return { d, changes };
};

/** Change kinds with runs of text (and of printer bytes) merged: how much one push holds depends on the split. */
const shape = (changes: DisplayChange[]) =>
  changes
    .map((c) => (c.kind === 'lamp' ? `lamp:${c.lamp}` : c.kind))
    .filter((k, i, all) => !((k === 'text' || k === 'printer') && all[i - 1] === k));

const printed = (changes: DisplayChange[]) =>
  Buffer.concat(changes.flatMap((c) => (c.kind === 'printer' ? [Buffer.from(c.bytes)] : []))).toString(
    'latin1',
  );

const lastText = (changes: DisplayChange[]) =>
  changes
    .filter((c) => c.kind === 'text')
    .pop()
    ?.screen.lines.map((l) => l.trimEnd());

describe('display decoders: fixtures', () => {
  it('has a fixture for every protocol and every led8 lamp variant', () => {
    expect(new Set(CASES.map((c) => c.protocol))).toEqual(
      new Set(['epson', 'cd5220', 'led8', 'aedex', 'utc', 'logic-controls']),
    );
    expect(new Set(CASES.filter((c) => c.protocol === 'led8').map((c) => c.options?.lamps))).toEqual(
      new Set(['binary', 'ascii', 'partner', 'bare']),
    );
  });

  it("reads the research note's VC110 example: 12.50 under the total lamp", () => {
    const { d, changes } = decode(caseFor('led8-binary-total.hex'), [
      displayFixture('led8-binary-total.hex'),
    ]);
    expect(shape(changes)).toEqual(['lamp:total', 'text']);
    expect(d.screen()).toEqual({ lines: ['12.50'.padEnd(16)], cursor: { row: 0, column: 5 }, lamp: 'total' });
    expect(d.stats).toEqual({ bytes: 12, unknownCommands: 0, garbage: 0 });
  });

  it("reads the research note's LED8N example: the value first, then the total lamp", () => {
    const { d, changes } = decode(caseFor('led8-value-first-total.hex'), [
      displayFixture('led8-value-first-total.hex'),
    ]);
    expect(shape(changes)).toEqual(['text', 'lamp:total']);
    expect(d.screen().lines[0].trim()).toBe('12.50');
    expect(d.screen().lamp).toBe('total');
  });

  it.each(['binary', 'ascii', 'partner', 'bare'])('led8 %s: every lamp of a sale, in order', (lamps) => {
    const file = `led8-${lamps}-sale.hex`;
    const { changes, d } = decode(caseFor(file), [displayFixture(file)]);
    expect(shape(changes)).toEqual([
      'clear',
      'clear',
      ...['price', 'price', 'price', 'total', 'tendered', 'change'].flatMap((l) => [`lamp:${l}`, 'text']),
      'clear',
    ]);
    expect(d.stats.unknownCommands + d.stats.garbage).toBe(0);
  });

  it("led8 ascii: '0' turns every lamp off", () => {
    const { changes } = decode(caseFor('led8-ascii-lamps-off.hex'), [
      displayFixture('led8-ascii-lamps-off.hex'),
    ]);
    expect(shape(changes)).toEqual(['lamp:total', 'text', 'lamp:null']);
  });

  it('led8: a lamp in another variant is an unknown command, never a guessed lamp', () => {
    const d = createDisplayDecoder('led8', { lamps: 'binary' });
    expect(d.push(Uint8Array.from([0x1b, 0x73, 0x32]))).toEqual([]);
    expect(d.stats.unknownCommands).toBe(1);
    const bare = createDisplayDecoder('led8', { lamps: 'binary' });
    bare.push(Uint8Array.from([0x32]));
    expect(bare.stats.garbage).toBe(1);
    expect(bare.screen().lamp).toBeNull();
  });

  it('epson: a sale on two lines, positions, CAN and the final CLR', () => {
    const { changes, d } = decode(caseFor('epson-sale.hex'), [displayFixture('epson-sale.hex')]);
    expect(lastText(changes)).toEqual(['CASH 20.00', 'CHANGE 7.50']);
    expect(shape(changes).pop()).toBe('clear');
    expect(d.stats).toMatchObject({ unknownCommands: 0, garbage: 0 });
  });

  it('epson: ESC = n splits a shared display+printer line', () => {
    const { changes, d } = decode(caseFor('epson-peripheral.hex'), [displayFixture('epson-peripheral.hex')]);
    expect(printed(changes)).toBe('\x1b@RECEIPT\nX');
    expect(d.screen().lines[0].trimEnd()).toBe('TOTAL 9.90XY');
  });

  it('epson: unknown ESC/US commands are skipped by length and counted, control noise is garbage', () => {
    const { d } = decode(caseFor('epson-unknown.hex'), [displayFixture('epson-unknown.hex')]);
    expect(d.stats).toEqual({ bytes: 7, unknownCommands: 2, garbage: 1 });
    expect(d.screen().lines[0].trimEnd()).toBe('OK');
  });

  it('epson: GB18030 text from a Chinese VFD', () => {
    const { d } = decode(caseFor('epson-gb18030.hex'), [displayFixture('epson-gb18030.hex')]);
    expect(d.screen().lines[0].trimEnd()).toBe('合计 12.50');
  });

  it('cd5220: ESC Q A/B lock the string mode until CAN; ESC s 1 is not a lamp', () => {
    const d = new Cd5220Decoder();
    const changes = d.push(displayFixture('cd5220-sale.hex'));
    expect(d.ignoredWhileLocked).toBe(2 + 1);
    expect(lastText(changes)).toEqual(['PAID 20.00', 'CHANGE 7.50']);
    expect(changes.some((c) => c.kind === 'lamp')).toBe(false);
    expect(d.locked).toBe(false);
  });

  it('cd5220: ESC & download characters are skipped by their length, locked or not, and are no garbage', () => {
    const d = new Cd5220Decoder();
    const changes = d.push(displayFixture('cd5220-user-characters.hex'));
    expect(d.screen().lines.map((l) => l.trimEnd())).toEqual(['NO.0042', 'TOTAL 12.50']);
    // Only ESC @ and the CLR clear: the CLR-like pattern bytes inside the definitions do not.
    expect(shape(changes)).toEqual(['clear', 'clear', 'text']);
    expect(d.stats).toMatchObject({ unknownCommands: 0, garbage: 0 });
    expect(d.userCharacterDefinitions).toBe(2);
    expect(d.ignoredWhileLocked).toBe(1);
  });

  it('cd5220: an ESC & outside s = 1, 32 ≤ n ≤ m ≤ 126, a ≤ 5 has no knowable length: its header is unknown', () => {
    for (const bad of [
      [0x1b, 0x26, 0x02, 0x41, 0x41, 0x05, 1, 2, 3, 4, 5],
      [0x1b, 0x26, 0x01, 0x42, 0x41],
      [0x1b, 0x26, 0x01, 0x1f, 0x20],
      [0x1b, 0x26, 0x01, 0x41, 0x41, 0x06, 1, 2, 3, 4, 5, 6],
    ]) {
      const d = new Cd5220Decoder();
      d.push(Uint8Array.from(bad));
      expect(d.stats.unknownCommands).toBe(1);
      expect(d.userCharacterDefinitions).toBe(0);
    }
  });

  it('cd5220: the marquee does not lock; an unknown ESC is counted', () => {
    const { d } = decode(caseFor('cd5220-marquee.hex'), [displayFixture('cd5220-marquee.hex')]);
    expect(d.screen().lines[0].trimEnd()).toBe('WELCOME');
    expect(d.stats.unknownCommands).toBe(1);
  });

  it('aedex: upper, lower, both lines and a changed attention code', () => {
    const { d } = decode(caseFor('aedex-sale.hex'), [displayFixture('aedex-sale.hex')]);
    expect(d.screen().lines.map((l) => l.trimEnd())).toEqual(['CASH 20.00', 'CHANGE 7.50']);
  });

  it.each([
    ['utc-standard-sale.hex', ['APPLE 3.00', 'TOTAL 12.50']],
    ['utc-enhanced-sale.hex', ['PAIDE 3.00', 'TOTAL 12.50']],
    ['logic-controls-sale.hex', ['APPLE 3.00', 'TOTAL 12.50']],
  ])('%s', (file, lines) => {
    const { d } = decode(caseFor(file), [displayFixture(file)]);
    expect(d.screen().lines.map((l) => l.trimEnd())).toEqual(lines);
    expect(d.stats).toMatchObject({ unknownCommands: 0, garbage: 0 });
  });
});

describe('display decoders: a command split across pushes is decoded once whole', () => {
  it.each(FILES)('%s split at every byte boundary, and byte by byte', (file) => {
    const c = caseFor(file);
    const bytes = displayFixture(file);
    const whole = decode(c, [bytes]);
    for (let k = 0; k <= bytes.length; k++) {
      const split = decode(c, [bytes.subarray(0, k), bytes.subarray(k)]);
      expect(split.d.screen()).toEqual(whole.d.screen());
      expect(split.d.stats).toEqual(whole.d.stats);
      expect(shape(split.changes)).toEqual(shape(whole.changes));
      expect(printed(split.changes)).toEqual(printed(whole.changes));
    }
    const single = decode(
      c,
      Array.from(bytes, (b) => Uint8Array.of(b)),
    );
    expect(single.d.screen()).toEqual(whole.d.screen());
    expect(single.d.stats).toEqual(whole.d.stats);
    expect(printed(single.changes)).toEqual(printed(whole.changes));
  });
});

describe('display decoders: fuzz', () => {
  const configs: Case[] = [
    { file: '', protocol: 'epson' },
    { file: '', protocol: 'cd5220' },
    { file: '', protocol: 'aedex' },
    { file: '', protocol: 'utc' },
    { file: '', protocol: 'utc', options: { utcMode: 'enhanced' } },
    { file: '', protocol: 'logic-controls' },
    ...(['binary', 'ascii', 'partner', 'bare'] as const).map((lamps) => ({
      file: '',
      protocol: 'led8' as const,
      options: { lamps },
    })),
    { file: '', protocol: 'epson', options: { lines: 4, columns: 40, encoding: 'latin1' } },
  ];
  it.each(configs.map((c) => [`${c.protocol} ${JSON.stringify(c.options ?? {})}`, c] as const))(
    '%s: random bytes never throw, every byte is counted, the screen keeps its size',
    (_name, c) => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 12 }), (chunks) => {
          const d = createDisplayDecoder(c.protocol, c.options);
          const size = d.screen().lines.map((l) => Array.from(l).length);
          let total = 0;
          for (const chunk of chunks) {
            total += chunk.length;
            for (const change of d.push(chunk)) {
              if (change.kind !== 'printer') {
                expect(change.screen.lines.map((l) => Array.from(l).length)).toEqual(size);
              }
            }
          }
          const s = d.screen();
          expect(s.lines.map((l) => Array.from(l).length)).toEqual(size);
          expect(s.cursor.row).toBeLessThan(size.length);
          expect(s.cursor.column).toBeLessThan(size[0]);
          expect(d.stats.bytes).toBe(total);
          expect(d.stats.garbage + d.stats.unknownCommands).toBeLessThanOrEqual(total);
        }),
        { numRuns: 300 },
      );
    },
  );
});
