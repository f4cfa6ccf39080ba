/**
 * ESC/POS decoder: reads the bytes a POS program sends to a receipt printer back into the text the printer
 * would print, the QR codes it would print and the cuts it would make. renderReceipt's tests use it, and
 * the printer-tap adapter uses it on what a host register sends to its printer, so it must take anything:
 * it is pure, never throws, never allocates more than its input suggests, and skips what it does not know.
 *
 * What it understands (n is one byte):
 *
 * - LF prints the line; CR is ignored (printers ignore it, or treat CR LF as one line end); HT is kept as
 *   a tab; FF ends the line. ESC d n and ESC J n end the line and feed n lines (ESC d) or dots (ESC J).
 * - ESC @ (initialize), ESC ! n, ESC E n, ESC G n, ESC - n, ESC 4 n, ESC a n, ESC M n, ESC t n, ESC R n,
 *   ESC 2, ESC 3 n and the other fixed-length ESC commands in ESC_LENGTHS; ESC * (bit image), ESC & (user
 *   characters), ESC D (tab stops, up to NUL) and ESC ( x pL pH … are skipped by their own lengths.
 * - GS ! n, GS B n, GS V m [n] (cut: counted), GS ( k pL pH cn fn … (2-D codes: a QR code's stored data
 *   is read at its print command), GS v 0 (raster image), GS * and GS 8 L (graphics), GS k (barcodes), and
 *   the fixed-length GS commands in GS_LENGTHS.
 * - FS & and FS . (Chinese character mode on and off), FS ! n, FS - n, FS W n, FS S n1 n2, FS 2 (define a
 *   Hanzi), FS p, FS q (NV images), FS ( x pL pH ….
 * - DLE EOT n, DLE ENQ n, DLE DC4 … (real-time status requests a POS program interleaves).
 *
 * An unknown ESC, FS or GS command is skipped as its two bytes (a parameter it had then reads as text: the
 * decoder cannot know its length). A sequence cut off by the end of the input is reported in `truncatedAt`
 * and nothing after its start is read, so a caller reading a stream can keep those bytes for the next chunk.
 *
 * Text: with `encoding: 'gb18030'` bytes are GB18030 while Chinese mode is on, which is the power-on state
 * of a Chinese printer and is restored by ESC @; FS . turns it off, and then bytes are read in the code
 * page ESC t chose (PC437 by default), as the printer would. `cp437` reads the code page ESC t chose and
 * ignores Chinese mode (such a printer has no Hanzi font); `utf8` reads UTF-8 throughout.
 */
import * as iconv from 'iconv-lite';
import { ReceiptLayout } from './receipt';

export interface EscPosCommand {
  /** Mnemonic, e.g. `ESC @`, `GS V`, `GS ( k`, `LF`; unknown ones as `ESC 0x7a`. */
  name: string;
  /** Byte offset of the command's first byte. */
  at: number;
}

export interface DecodedEscPos {
  /** What the printer prints, one `\n` per line end. */
  text: string;
  /** `text` split into lines (an unfinished last line included, no empty line after a final `\n`). */
  lines: string[];
  /** Paper cuts (GS V, ESC i, ESC m). */
  cuts: number;
  /** The data of each QR code printed, in order. */
  qr: string[];
  commands: EscPosCommand[];
  /** Where a command starts that the input ends inside of; absent when the input ends cleanly. */
  truncatedAt?: number;
}

export interface DecodeEscPosOptions {
  /** The text encoding the printer is set to, as in ReceiptLayout. */
  encoding: ReceiptLayout['encoding'];
}

const ESC = 0x1b;
const FS = 0x1c;
const GS = 0x1d;
const DLE = 0x10;

/** Total length, command bytes included, of the fixed-length ESC commands (keyed by the second byte). */
const ESC_LENGTHS: Readonly<Record<string, number>> = {
  '@': 2, // initialize
  '!': 3, // print mode
  E: 3, // emphasized
  G: 3, // double strike
  '-': 3, // underline
  '4': 3, // italic (some printers)
  a: 3, // justification
  d: 3, // print and feed n lines
  J: 3, // print and feed n dots
  e: 3, // print and reverse feed n lines
  K: 3, // print and reverse feed n dots
  t: 3, // character code table
  M: 3, // character font
  R: 3, // international character set
  ' ': 3, // right-side character spacing
  '2': 2, // default line spacing
  '3': 3, // line spacing
  p: 5, // cash drawer pulse
  '=': 3, // select peripheral device
  c: 4, // ESC c 3/4/5 n: paper sensors, panel buttons
  '{': 3, // upside down
  V: 3, // 90° rotation
  r: 3, // print color
  U: 3, // unidirectional printing
  '%': 3, // user-defined character set on/off
  '?': 3, // cancel user-defined character
  $: 4, // absolute print position
  '\\': 4, // relative print position
  i: 2, // partial cut (obsolete)
  m: 2, // partial cut, one point left (obsolete)
  L: 2, // page mode
  S: 2, // standard mode
  T: 3, // print direction in page mode
  W: 10, // print area in page mode
  u: 3, // transmit peripheral status
  v: 2, // transmit paper sensor status
  B: 4, // buzzer (Chinese printers: ESC B n t)
  '<': 2, // return home
};

/** Total length of the fixed-length GS commands. */
const GS_LENGTHS: Readonly<Record<string, number>> = {
  '!': 3, // character size
  B: 3, // white/black reverse
  H: 3, // HRI position
  h: 3, // barcode height
  w: 3, // barcode width
  f: 3, // HRI font
  a: 3, // automatic status back
  r: 3, // transmit status
  I: 3, // transmit printer id
  b: 3, // smoothing
  E: 3, // print head control / density
  L: 4, // left margin
  W: 4, // print area width
  P: 4, // motion units
  $: 4, // absolute vertical position in page mode
  '\\': 4, // relative vertical position in page mode
  '/': 3, // print downloaded bit image
  ':': 2, // macro definition start/end
  '^': 5, // execute macro
  j: 3, // automatic status back for ink
  T: 3, // print position to the beginning of the line
};

/** Total length of the fixed-length FS commands. */
const FS_LENGTHS: Readonly<Record<string, number>> = {
  '&': 2, // Chinese character mode on
  '.': 2, // Chinese character mode off
  '!': 3, // Chinese character print mode
  '-': 3, // Chinese character underline
  W: 3, // Chinese character double size
  S: 4, // Chinese character spacing
  C: 3, // Chinese character code system
  '2': 76, // define a user Chinese character: FS 2 c1 c2 + 72 bytes of 24×24 dots
  p: 4, // print NV bit image
};

/** ESC t n → iconv-lite code page, for the tables a POS program uses; others read as PC437. */
const CODE_PAGES: Readonly<Record<number, string>> = {
  0: 'cp437',
  2: 'cp850',
  3: 'cp860',
  4: 'cp863',
  5: 'cp865',
  16: 'windows1252',
  17: 'cp866',
  18: 'cp852',
  19: 'cp858',
};

/** Decodes ESC/POS bytes; see the top of this file. Never throws. */
export function decodeEscPos(bytes: Uint8Array, opts: DecodeEscPosOptions): DecodedEscPos {
  return new Decoder(bytes, opts?.encoding ?? 'cp437').run();
}

/** Reading state: one pass over the input, text collected per line. */
class Decoder {
  private i = 0;
  private readonly commands: EscPosCommand[] = [];
  private readonly qr: string[] = [];
  private cuts = 0;
  private truncatedAt: number | undefined;
  /** Finished text, and the current line's decoded text and its not yet decoded bytes. */
  private text = '';
  private line = '';
  private pending: number[] = [];
  private chinese: boolean;
  private codePage = 'cp437';
  private storedQr: Uint8Array | undefined;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly encoding: ReceiptLayout['encoding'],
  ) {
    this.chinese = encoding === 'gb18030';
  }

  run(): DecodedEscPos {
    const b = this.bytes;
    while (this.i < b.length) {
      const c = b[this.i];
      if (c >= 0x20) {
        this.pending.push(c);
        this.i++;
      } else if (c === 0x0a) {
        this.command('LF', 1);
        this.endLine();
      } else if (c === 0x0d) {
        this.command('CR', 1);
      } else if (c === 0x09) {
        this.command('HT', 1);
        this.flushText();
        this.line += '\t';
      } else if (c === 0x0c) {
        this.command('FF', 1);
        if (this.hasLine()) this.endLine();
      } else if (c === ESC) {
        if (!this.esc()) break;
      } else if (c === GS) {
        if (!this.gs()) break;
      } else if (c === FS) {
        if (!this.fs()) break;
      } else if (c === DLE) {
        if (!this.dle()) break;
      } else {
        // Other C0 controls (NUL, CAN, …) print nothing.
        this.i++;
      }
    }
    this.flushText();
    if (this.line !== '') this.text += this.line;
    const lines = this.text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const result: DecodedEscPos = {
      text: this.text,
      lines,
      cuts: this.cuts,
      qr: this.qr,
      commands: this.commands,
    };
    if (this.truncatedAt !== undefined) result.truncatedAt = this.truncatedAt;
    return result;
  }

  private esc(): boolean {
    const at = this.i;
    if (!this.need(2)) return false;
    const op = this.bytes[at + 1];
    const key = String.fromCharCode(op);
    const name = `ESC ${printable(op)}`;
    switch (key) {
      case '*': {
        // ESC * m nL nH d…: m 0/1 one byte per column, 32/33 three.
        if (!this.need(5)) return false;
        const m = this.bytes[at + 2];
        const columns = this.bytes[at + 3] + 256 * this.bytes[at + 4];
        return this.skip(name, 5 + columns * (m >= 32 ? 3 : 1));
      }
      case 'D': {
        // ESC D n1 … nk NUL (k ≤ 32): tab stops.
        return this.untilNul(name, at + 2, 33);
      }
      case '&': {
        // ESC & y c1 c2 [x d1 … d(y×x)] × (c2 − c1 + 1): user-defined characters.
        if (!this.need(5)) return false;
        const y = this.bytes[at + 2];
        const count = this.bytes[at + 4] - this.bytes[at + 3] + 1;
        let length = 5;
        for (let k = 0; k < count; k++) {
          if (at + length >= this.bytes.length) return this.truncate(at);
          length += 1 + y * this.bytes[at + length];
        }
        return this.skip(name, length);
      }
      case '(': {
        // ESC ( x pL pH p bytes.
        if (!this.need(5)) return false;
        const p = this.bytes[at + 3] + 256 * this.bytes[at + 4];
        return this.skip(`ESC ( ${printable(this.bytes[at + 2])}`, 5 + p);
      }
    }
    const length = ESC_LENGTHS[key];
    if (length === undefined) return this.skip(`ESC 0x${hex(op)}`, 2);
    if (!this.need(length)) return false;
    const n = this.bytes[at + 2];
    switch (key) {
      case '@':
        this.flushText();
        this.chinese = this.encoding === 'gb18030';
        this.codePage = 'cp437';
        break;
      case 't':
        this.flushText();
        this.codePage = CODE_PAGES[n] ?? 'cp437';
        break;
      case 'd':
        this.command(name, length);
        this.feed(n);
        return true;
      case 'J':
        this.command(name, length);
        if (this.hasLine()) this.endLine();
        return true;
      case 'i':
      case 'm':
        this.command(name, length);
        this.cut();
        return true;
    }
    this.command(name, length);
    return true;
  }

  private gs(): boolean {
    const at = this.i;
    if (!this.need(2)) return false;
    const op = this.bytes[at + 1];
    const key = String.fromCharCode(op);
    const name = `GS ${printable(op)}`;
    switch (key) {
      case 'V': {
        // GS V m: m 0, 1, 48, 49 cut; GS V m n: m 65, 66 feed and cut, 97, 98, 103, 104 (reserve) cut.
        if (!this.need(3)) return false;
        const m = this.bytes[at + 2];
        const length = [65, 66, 97, 98, 103, 104].includes(m) ? 4 : 3;
        if (!this.need(length)) return false;
        this.command(name, length);
        if ([0, 1, 48, 49, 65, 66, 97, 98, 103, 104].includes(m)) this.cut();
        return true;
      }
      case '(': {
        // GS ( x pL pH p bytes; GS ( k carries 2-D codes.
        if (!this.need(5)) return false;
        const fn = this.bytes[at + 2];
        const p = this.bytes[at + 3] + 256 * this.bytes[at + 4];
        if (!this.need(5 + p)) return false;
        if (fn === 0x6b) this.twoDimensionalCode(at + 5, p);
        return this.skip(`GS ( ${printable(fn)}`, 5 + p);
      }
      case 'v': {
        // GS v 0 m xL xH yL yH d…: raster image of (x bytes) × (y dots).
        if (!this.need(8)) return false;
        const x = this.bytes[at + 4] + 256 * this.bytes[at + 5];
        const y = this.bytes[at + 6] + 256 * this.bytes[at + 7];
        return this.skip('GS v 0', 8 + x * y);
      }
      case '*': {
        // GS * x y d…: downloaded bit image of x×8 by y×8 dots.
        if (!this.need(4)) return false;
        return this.skip(name, 4 + this.bytes[at + 2] * this.bytes[at + 3] * 8);
      }
      case '8': {
        // GS 8 L p1 p2 p3 p4 m fn …: graphics with a four-byte length.
        if (!this.need(7)) return false;
        const b = this.bytes;
        const p = b[at + 3] + 256 * b[at + 4] + 65536 * b[at + 5] + 16777216 * b[at + 6];
        return this.skip(`GS 8 ${printable(b[at + 2])}`, 7 + p);
      }
      case 'k': {
        // GS k m d… NUL (m 0–6) or GS k m n d1…dn (m 65–79): barcode.
        if (!this.need(3)) return false;
        const m = this.bytes[at + 2];
        if (m <= 6) return this.untilNul(name, at + 3, 256);
        if (!this.need(4)) return false;
        return this.skip(name, 4 + this.bytes[at + 3]);
      }
    }
    const length = GS_LENGTHS[key];
    if (length === undefined) return this.skip(`GS 0x${hex(op)}`, 2);
    return this.skip(name, length);
  }

  private fs(): boolean {
    const at = this.i;
    if (!this.need(2)) return false;
    const op = this.bytes[at + 1];
    const key = String.fromCharCode(op);
    const name = `FS ${printable(op)}`;
    if (key === '(') {
      if (!this.need(5)) return false;
      const p = this.bytes[at + 3] + 256 * this.bytes[at + 4];
      return this.skip(`FS ( ${printable(this.bytes[at + 2])}`, 5 + p);
    }
    if (key === 'q') {
      // FS q n [xL xH yL yH d1…d(x×y×8)] × n: define NV bit images.
      if (!this.need(3)) return false;
      let length = 3;
      for (let k = 0; k < this.bytes[at + 2]; k++) {
        if (at + length + 4 > this.bytes.length) return this.truncate(at);
        const b = this.bytes;
        const x = b[at + length] + 256 * b[at + length + 1];
        const y = b[at + length + 2] + 256 * b[at + length + 3];
        length += 4 + x * y * 8;
      }
      return this.skip(name, length);
    }
    const length = FS_LENGTHS[key];
    if (length === undefined) return this.skip(`FS 0x${hex(op)}`, 2);
    if (!this.need(length)) return false;
    if (key === '&' || key === '.') {
      this.flushText();
      this.chinese = key === '&';
    }
    this.command(name, length);
    return true;
  }

  private dle(): boolean {
    const at = this.i;
    if (!this.need(2)) return false;
    const op = this.bytes[at + 1];
    if (op === 0x04 || op === 0x05) return this.skip(op === 0x04 ? 'DLE EOT' : 'DLE ENQ', 3);
    if (op === 0x14) {
      if (!this.need(3)) return false;
      return this.skip('DLE DC4', this.bytes[at + 2] === 8 ? 10 : 5);
    }
    // A lone DLE is a control character that prints nothing; what follows is read normally.
    this.i++;
    return true;
  }

  /** GS ( k: cn 49 is QR; fn 80 stores the data (after m), fn 81 prints what is stored. */
  private twoDimensionalCode(start: number, length: number): void {
    if (length < 2) return;
    const cn = this.bytes[start];
    const fn = this.bytes[start + 1];
    if (cn !== 0x31) return;
    if (fn === 0x50 && length >= 3) {
      this.storedQr = this.bytes.slice(start + 3, start + length);
    } else if (fn === 0x51 && this.storedQr !== undefined) {
      this.qr.push(qrText(this.storedQr));
    }
  }

  /**
   * A command whose data ends with NUL within `limit` bytes from `from`. Without a NUL there it is not one
   * (skipped as its two bytes), unless the input ends first: then it is truncated.
   */
  private untilNul(name: string, from: number, limit: number): boolean {
    const window = this.bytes.subarray(from, from + limit);
    const end = window.indexOf(0);
    if (end >= 0) return this.skip(name, from + end + 1 - this.i);
    if (window.length < limit) return this.truncate(this.i);
    return this.skip(name, 2);
  }

  /** True when `n` bytes from the current command's start are there; else marks the input truncated. */
  private need(n: number): boolean {
    if (this.i + n <= this.bytes.length) return true;
    this.truncate(this.i);
    return false;
  }

  private truncate(at: number): false {
    this.truncatedAt = at;
    this.i = this.bytes.length;
    return false;
  }

  /** Records a command of `length` bytes and moves past it, unless the input ends inside it. */
  private skip(name: string, length: number): boolean {
    if (!this.need(length)) return false;
    this.command(name, length);
    return true;
  }

  private command(name: string, length: number): void {
    this.commands.push({ name, at: this.i });
    this.i += length;
  }

  private feed(lines: number): void {
    if (lines === 0) {
      if (this.hasLine()) this.endLine();
      return;
    }
    for (let k = 0; k < lines; k++) this.endLine();
  }

  private cut(): void {
    if (this.hasLine()) this.endLine();
    this.cuts++;
  }

  private hasLine(): boolean {
    return this.line !== '' || this.pending.length > 0;
  }

  private endLine(): void {
    this.flushText();
    this.text += `${this.line}\n`;
    this.line = '';
  }

  /** Decodes the bytes gathered since the last mode change or line end in the current mode. */
  private flushText(): void {
    if (this.pending.length === 0) return;
    const chunk = Buffer.from(this.pending);
    this.pending = [];
    const codec =
      this.encoding === 'utf8'
        ? 'utf8'
        : this.encoding === 'gb18030' && this.chinese
          ? 'gb18030'
          : this.codePage;
    this.line += iconv.decode(chunk, codec);
  }
}

/** A QR code's data: UTF-8 when it is valid UTF-8 (ASCII is), else Latin-1, byte for byte. */
function qrText(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes);
  const utf8 = buf.toString('utf8');
  return Buffer.from(utf8, 'utf8').equals(buf) ? utf8 : buf.toString('latin1');
}

function printable(byte: number): string {
  return byte > 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `0x${hex(byte)}`;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
