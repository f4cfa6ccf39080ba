/**
 * UTC/S, research note §1.3. Standard mode: DLE pp position (00–27 hex: 2 lines × 20), DC1 overwrite, DC2
 * vertical scroll, DC3/DC4 cursor on/off, US clear/reset, ESC d → enhanced. Enhanced mode: ESC u A … CR upper
 * line, ESC u B … CR lower line, ESC u D … CR marquee, ESC u E hh:mm CR time, ESC RS CR back to standard.
 */
import { ByteDecoder, CR, ESC, US, type DisplayDecoderOptions } from './base';

export interface UtcOptions extends DisplayDecoderOptions {
  /** The mode the display starts in (its DIP switch). */
  mode?: 'standard' | 'enhanced';
}

export class UtcDecoder extends ByteDecoder {
  readonly protocol = 'utc' as const;
  mode: 'standard' | 'enhanced';

  constructor(options: UtcOptions = {}) {
    super(options);
    this.mode = options.mode ?? 'standard';
  }

  protected step(buf: Uint8Array, i: number): number {
    const b = buf[i];
    const d = this.display;
    if (b === US) {
      d.clear();
      d.mode = 'overwrite';
      this.emitClear();
      return 1;
    }
    if (b === 0x0c) {
      d.clear();
      this.emitClear();
      return 1;
    }
    if (b === ESC) {
      if (i + 1 >= buf.length) return 0;
      const c = buf[i + 1];
      if (c === 0x64) {
        this.mode = 'enhanced';
        return 2;
      }
      if (c === 0x1e) {
        if (i + 2 >= buf.length) return 0;
        this.mode = 'standard';
        return buf[i + 2] === CR ? 3 : 2;
      }
      if (c === 0x75 && this.mode === 'enhanced') return this.enhanced(buf, i);
      return this.unknown(buf, i, 2);
    }
    if (this.mode === 'standard') {
      if (b === 0x10) {
        if (i + 1 >= buf.length) return 0;
        const p = buf[i + 1];
        d.moveTo(Math.floor(p / d.columns), p % d.columns);
        this.emitText();
        return 2;
      }
      if (b === 0x11 || b === 0x12) {
        d.mode = b === 0x11 ? 'overwrite' : 'vertical';
        return 1;
      }
      if (b === 0x13 || b === 0x14) return 1;
      const basic = this.basicControl(b);
      if (basic > 0) return basic;
    } else if (b === CR || b === 0x0a) return 1;
    return this.writeText(buf, i);
  }

  private enhanced(buf: Uint8Array, i: number): number {
    if (i + 2 >= buf.length) return 0;
    const which = buf[i + 2];
    if (which !== 0x41 && which !== 0x42 && which !== 0x44 && which !== 0x45) return this.unknown(buf, i, 3);
    const s = this.readString(buf, i + 3, which === 0x44 ? 40 : this.display.columns + 20);
    if (s === null) return 0;
    if (which !== 0x45) {
      this.display.setLine(which === 0x42 ? Math.min(1, this.display.lines - 1) : 0, s[0]);
      this.emitText();
    }
    return 3 + s[1];
  }
}
