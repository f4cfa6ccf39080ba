/**
 * Hex dumps for byte fixtures and captures: `1b 40  # ESC @` one command a line, so a fixture under
 * test/fixtures/printer/ reads like the protocol it tests and a diff shows which command changed.
 */
import { ProtocolError } from '../protocol/errors';

/** Bytes from hex text: pairs of hex digits, whitespace ignored, `#` to the end of a line is a comment. */
export function fromHex(text: string): Uint8Array {
  const digits = text.replace(/#[^\n]*/g, '').replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) {
    throw new ProtocolError(
      'hex.bad_format',
      'Hex text must be pairs of hex digits, with whitespace and # comments between them.',
    );
  }
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** `bytes` as lowercase hex, `perLine` bytes a line separated by spaces. */
export function toHex(bytes: Uint8Array, perLine = 16): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += perLine) {
    lines.push(Array.from(bytes.subarray(i, i + perLine), (b) => b.toString(16).padStart(2, '0')).join(' '));
  }
  return lines.join('\n');
}
