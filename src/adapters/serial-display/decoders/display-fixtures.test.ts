/** Test helper (excluded from the build as *.test.ts): reads test/fixtures/display/*.hex, whole or a line at a time. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex } from '../../../printer/hex';

export const DISPLAY_FIXTURES = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'display');

export function displayFixture(name: string): Uint8Array {
  return fromHex(readFileSync(join(DISPLAY_FIXTURES, name), 'utf8'));
}

/** Each hex line of a fixture as one command, with its comment. */
export function displayCommands(name: string): { bytes: Uint8Array; comment: string }[] {
  return readFileSync(join(DISPLAY_FIXTURES, name), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
    .map((l) => {
      const at = l.indexOf('#');
      return { bytes: fromHex(at < 0 ? l : l.slice(0, at)), comment: at < 0 ? '' : l.slice(at + 1).trim() };
    });
}
