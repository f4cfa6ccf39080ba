/**
 * The shop's bytes and files as the capture and end-to-end benches play them: money as a register prints
 * it, the led8 customer display's value command, and a shipped manifest copied with the bench's changes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from '../../test/support/node-runner';

/** Fen as the register prints yuan: 1234 → "12.34". */
export const yuan = (fen: number) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;

/** Milliseconds between two process.hrtime.bigint() readings. */
export const elapsedMs = (from: bigint, to: bigint) => Number(to - from) / 1e6;

const ESC = 0x1b;

/**
 * A led8 display's value command without its closing CR: ESC s <lamp> (the lamp that lights beside the
 * value; on the Hisense VC110 1 is the unit price and 2 the total), then ESC Q A and the value
 * (docs/adapters/serial-display.md).
 */
export function led8Value(lamp: number, text: string): Buffer {
  return Buffer.concat([Buffer.from([ESC, 0x73, lamp, ESC, 0x51, 0x41]), Buffer.from(text, 'latin1')]);
}

/** A manifest of manifests/, copied into `dir` under its own file name with `change` applied. */
export function manifestCopy(
  dir: string,
  file: string,
  change: (m: Record<string, unknown>) => void,
): string {
  const m = YAML.parse(readFileSync(path.join(REPO_ROOT, 'manifests', file), 'utf8')) as Record<
    string,
    unknown
  >;
  change(m);
  const out = path.join(dir, file);
  writeFileSync(out, YAML.stringify(m));
  return out;
}
