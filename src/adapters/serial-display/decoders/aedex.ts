/**
 * AEDEX, research note §1.3: an attention code (`!#` until changed) then a digit — 1 upper line, 2 lower line,
 * 9 both lines (text runs on from the upper into the lower line), 8 a new two-character attention code — text, CR.
 */
import { ByteDecoder, CR, type DisplayDecoderOptions } from './base';

export class AedexDecoder extends ByteDecoder {
  readonly protocol = 'aedex' as const;
  private attention: [number, number] = [0x21, 0x23];

  constructor(options: DisplayDecoderOptions = {}) {
    super(options);
  }

  protected step(buf: Uint8Array, i: number): number {
    const b = buf[i];
    if (b === this.attention[0]) {
      if (i + 1 >= buf.length) return 0;
      if (buf[i + 1] === this.attention[1]) return this.command(buf, i);
    }
    if (b === 0x0c) {
      this.display.clear();
      this.emitClear();
      return 1;
    }
    if (b === CR || b === 0x0a) return 1;
    return this.writeText(buf, i);
  }

  private command(buf: Uint8Array, i: number): number {
    if (i + 2 >= buf.length) return 0;
    const digit = buf[i + 2];
    const d = this.display;
    if (digit === 0x38) {
      const s = this.readString(buf, i + 3, 8);
      if (s === null) return 0;
      const code = Array.from(s[0]);
      if (code.length === 2 && code.every((c) => c.charCodeAt(0) < 0x80)) {
        this.attention = [code[0].charCodeAt(0), code[1].charCodeAt(0)];
      } else this.stats.unknownCommands++;
      return 3 + s[1];
    }
    if (digit !== 0x31 && digit !== 0x32 && digit !== 0x39) return this.unknown(buf, i, 3);
    const s = this.readString(buf, i + 3, 2 * d.columns + 20);
    if (s === null) return 0;
    if (digit === 0x39) {
      const chars = Array.from(s[0]);
      d.setLine(0, chars.slice(0, d.columns).join(''));
      if (d.lines > 1) d.setLine(1, chars.slice(d.columns).join(''));
    } else d.setLine(digit === 0x31 ? 0 : Math.min(1, d.lines - 1), s[0]);
    this.emitText();
    return 3 + s[1];
  }
}
