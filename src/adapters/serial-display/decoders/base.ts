/**
 * The byte loop every display decoder shares: bytes kept between pushes until a command is whole, text
 * (ASCII, GB18030 pairs/quads for bytes ≥ 0x80) written into the VirtualDisplay, changes collected in order.
 * A protocol implements `step`: decode the command at `i` and return how many bytes it used, or 0 when the
 * command is not whole yet. Never throws out of `push`.
 */
import * as iconv from 'iconv-lite';
import type {
  DisplayChange,
  DisplayDecoder,
  DisplayDecoderStats,
  DisplayProtocol,
  DisplayScreen,
} from '../display-model';
import { VirtualDisplay, type DisplaySize } from '../virtual-display';

export interface DisplayDecoderOptions extends DisplaySize {
  /** How bytes ≥ 0x80 read: GB18030 (Chinese VFDs; a lone byte falls back to Latin-1) or Latin-1. */
  encoding?: 'gb18030' | 'latin1';
}

export const ESC = 0x1b;
export const US = 0x1f;
export const CR = 0x0d;

/** One GB18030 character as one cell: anything that does not decode to exactly one code point is U+FFFD. */
function gb(...bytes: number[]): string {
  const cps = Array.from(iconv.decode(Buffer.from(bytes), 'gb18030'));
  return cps.length === 1 ? cps[0] : '\ufffd';
}

/**
 * Held bytes beyond this (no protocol command is this long; the longest, a CD5220 ESC & defining all 95
 * characters, is 575) are dropped one at a time as garbage.
 */
const MAX_PENDING = 1_024;

export abstract class ByteDecoder implements DisplayDecoder {
  abstract readonly protocol: DisplayProtocol;
  readonly stats: DisplayDecoderStats = { bytes: 0, unknownCommands: 0, garbage: 0 };
  protected readonly display: VirtualDisplay;
  private readonly encoding: 'gb18030' | 'latin1';
  private pending: Uint8Array = new Uint8Array(0);
  private out: DisplayChange[] = [];

  constructor(options: DisplayDecoderOptions, defaults?: { lines: number; columns: number }) {
    this.display = new VirtualDisplay(options, defaults);
    this.encoding = options.encoding ?? 'gb18030';
  }

  push(bytes: Uint8Array): DisplayChange[] {
    this.stats.bytes += bytes.length;
    const buf = new Uint8Array(this.pending.length + bytes.length);
    buf.set(this.pending, 0);
    buf.set(bytes, this.pending.length);
    this.out = [];
    let i = 0;
    while (i < buf.length) {
      let n: number;
      try {
        n = this.step(buf, i);
      } catch {
        n = 1;
        this.stats.garbage++;
      }
      if (n > 0) {
        i += n;
      } else if (buf.length - i > MAX_PENDING) {
        this.stats.garbage++;
        i++;
      } else break;
    }
    this.pending = buf.slice(i);
    this.afterPush();
    return this.out;
  }

  screen(): DisplayScreen {
    return this.display.screen();
  }

  protected afterPush(): void {}

  protected abstract step(buf: Uint8Array, i: number): number;

  protected emitText(): void {
    const last = this.out[this.out.length - 1];
    const screen = this.display.screen();
    if (last?.kind === 'text') last.screen = screen;
    else this.out.push({ kind: 'text', screen });
  }

  protected emitClear(): void {
    this.out.push({ kind: 'clear', screen: this.display.screen() });
  }

  protected emitLamp(): void {
    this.out.push({ kind: 'lamp', lamp: this.display.lamp, screen: this.display.screen() });
  }

  protected emitPrinter(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const last = this.out[this.out.length - 1];
    if (last?.kind === 'printer') {
      const joined = new Uint8Array(last.bytes.length + bytes.length);
      joined.set(last.bytes, 0);
      joined.set(bytes, last.bytes.length);
      last.bytes = joined;
    } else this.out.push({ kind: 'printer', bytes: bytes.slice() });
  }

  /** Skips a command this protocol does not know, `length` bytes (0 if not all there yet). */
  protected unknown(buf: Uint8Array, i: number, length: number): number {
    if (i + length > buf.length) return 0;
    this.stats.unknownCommands++;
    return length;
  }

  /**
   * A download-character definition: `ESC & y c1 c2`, then for each character c1…c2 a width x and y × x
   * pattern bytes (Epson ESC & y c1 c2; CD5220 ESC & s n m [a p1…pa]). Returns its length, 0 while it is
   * not all there, or -1 when the header or a width is outside `limits` (its length is then unknowable).
   */
  protected downloadCharacters(
    buf: Uint8Array,
    i: number,
    limits: { height?: number; codes?: [number, number]; width?: number } = {},
  ): number {
    if (i + 4 >= buf.length) return 0;
    const [y, c1, c2] = [buf[i + 2], buf[i + 3], buf[i + 4]];
    const [lo, hi] = limits.codes ?? [0, 255];
    const count = c2 - c1 + 1;
    if (count <= 0 || count > 95 || c1 < lo || c2 > hi) return -1;
    if (limits.height !== undefined && y !== limits.height) return -1;
    let j = i + 5;
    for (let k = 0; k < count; k++) {
      if (j >= buf.length) return 0;
      if (limits.width !== undefined && buf[j] > limits.width) return -1;
      j += 1 + y * buf[j];
    }
    return j <= buf.length ? j - i : 0;
  }

  protected garbage(): number {
    this.stats.garbage++;
    return 1;
  }

  /** Reads one character at `i`: [text, bytes used], bytes 0 if a multi-byte character is cut, null if not text. */
  protected readChar(buf: Uint8Array, i: number): [string, number] | null {
    const b = buf[i];
    if (b >= 0x20 && b < 0x7f) return [String.fromCharCode(b), 1];
    if (b < 0x80) return null;
    if (this.encoding === 'latin1' || b === 0x80 || b === 0xff) return [String.fromCharCode(b), 1];
    if (i + 1 >= buf.length) return ['', 0];
    const b2 = buf[i + 1];
    if (b2 >= 0x40 && b2 <= 0xfe && b2 !== 0x7f) return [gb(b, b2), 2];
    if (b2 >= 0x30 && b2 <= 0x39) {
      if (i + 3 >= buf.length) return ['', 0];
      const [b3, b4] = [buf[i + 2], buf[i + 3]];
      if (b3 >= 0x81 && b3 <= 0xfe && b4 >= 0x30 && b4 <= 0x39) {
        return [gb(b, b2, b3, b4), 4];
      }
    }
    return [String.fromCharCode(b), 1];
  }

  /** Writes the character at `i` on the screen; returns bytes used (0: cut), or garbage for a control byte. */
  protected writeText(buf: Uint8Array, i: number): number {
    const c = this.readChar(buf, i);
    if (c === null) return this.garbage();
    if (c[1] === 0) return 0;
    this.display.write(c[0]);
    this.emitText();
    return c[1];
  }

  /**
   * Reads a string command's text from `start` up to CR: [text, bytes to CR inclusive], or null if no CR yet.
   * A string longer than `max` bytes without a CR ends there (the rest reads as ordinary bytes).
   */
  protected readString(buf: Uint8Array, start: number, max: number): [string, number] | null {
    let text = '';
    let j = start;
    while (j < buf.length && j - start <= max) {
      if (buf[j] === CR) return [text, j + 1 - start];
      const c = this.readChar(buf, j);
      if (c === null) {
        j++;
        continue;
      }
      if (c[1] === 0) return null;
      text += c[0];
      j += c[1];
    }
    if (j - start > max) return [text, j - start];
    return null;
  }

  /** BS HT LF HOM CR, shared by most sets. Returns 1 if handled, else -1. */
  protected basicControl(b: number): number {
    const d = this.display;
    switch (b) {
      case 0x08:
        d.left();
        break;
      case 0x09:
        d.right();
        break;
      case 0x0a:
        d.down();
        break;
      case 0x0b:
        d.home();
        break;
      case 0x0d:
        d.lineStart();
        break;
      default:
        return -1;
    }
    this.emitText();
    return 1;
  }
}
