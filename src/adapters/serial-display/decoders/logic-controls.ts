/**
 * Logic Controls (also Elo/UTC-style), research note §1.3: US DC1 (1F 11) reset, DLE nn position (00–13 hex
 * line 1, 14–27 line 2), DC3/DC4 cursor, EOT nn brightness; BS, LF, CR move the cursor; other bytes are text.
 */
import { ByteDecoder, US, type DisplayDecoderOptions } from './base';

export class LogicControlsDecoder extends ByteDecoder {
  readonly protocol = 'logic-controls' as const;

  constructor(options: DisplayDecoderOptions = {}) {
    super(options);
  }

  protected step(buf: Uint8Array, i: number): number {
    const b = buf[i];
    const d = this.display;
    if (b === US) {
      if (i + 1 >= buf.length) return 0;
      if (buf[i + 1] === 0x11) {
        d.clear();
        d.mode = 'overwrite';
        this.emitClear();
        return 2;
      }
      return this.unknown(buf, i, 2);
    }
    if (b === 0x10 || b === 0x04) {
      if (i + 1 >= buf.length) return 0;
      if (b === 0x10) {
        const p = buf[i + 1];
        d.moveTo(Math.floor(p / d.columns), p % d.columns);
        this.emitText();
      }
      return 2;
    }
    if (b === 0x13 || b === 0x14) return 1;
    const basic = this.basicControl(b);
    if (basic > 0) return basic;
    return this.writeText(buf, i);
  }
}
