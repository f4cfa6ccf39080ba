/**
 * The manifest's led8 `lampOrder` reaches the sale rule: an LED8N-type display (value sent before its lamp)
 * is charged the total, not the amount tendered. Through the same path the adapter takes: the manifest's
 * options → createDisplayDecoder + createSaleRule → the final amount.
 */
import { parseManifest } from '../manifest';
import { createDisplayDecoder } from './decoders';
import { displayCommands } from './decoders/display-fixtures.test';
import { createSaleRule, SerialDisplayManifest } from './serial-display.adapter';

function saleThrough(lampOrder: string | undefined): string[] {
  const m = parseManifest(
    [
      'id: m',
      'name: m',
      'adapter: serial-display',
      'register: R1',
      `options: { input: "serial:/dev/ttyS0", protocol: led8, lamps: ascii${lampOrder ? `, lampOrder: ${lampOrder}` : ''} }`,
      'parse: { currency: CNY }',
      'writeBack: {}',
      'dispatch: { mode: broadcast }',
    ].join('\n'),
    'm.yaml',
  ) as unknown as SerialDisplayManifest;
  const decoder = createDisplayDecoder('led8', { lamps: m.options.lamps });
  const rule = createSaleRule(m.parse, m.options);
  const totals: string[] = [];
  let now = 0;
  for (const c of displayCommands('led8-ascii-value-first-sale.hex')) {
    now += 100;
    totals.push(...rule.push(decoder.push(c.bytes), now).map((t) => String(t.amount)));
  }
  return totals;
}

describe('led8 lampOrder from the manifest', () => {
  it('value-first: the total shown before its lamp is the one charged (12.50)', () => {
    expect(saleThrough('value-first')).toEqual(['12.50']);
  });

  it('left at its default (lamp-first) on a value-first display, it would charge another amount: why it is set, never guessed', () => {
    expect(saleThrough(undefined)).not.toEqual(['12.50']);
  });

  it('refuses an unknown order, naming the field', () => {
    expect(() => saleThrough('sideways')).toThrow(/options\.lampOrder/);
  });
});
