/**
 * Chinese 8-digit LED customer displays (顾客显示屏) with the lamps 单价/总计/收款/找零, research note §1.4.
 * The lamp bytes differ per model, so the variant is an option, never guessed:
 * - `binary`  1B 73 0n (n = 1…4; 00 all off) — Hisense VC110/VC108, Wintec CD110
 * - `ascii`   1B 73 '1'…'4', '0' all off — Sedsy PD1800A, Citaq PD6108, the LED8N class (value first)
 * - `partner` 1B 73 0(n+1) 01 (4 bytes; 0(n+1) 00 turns that lamp off) — Partner CD7110
 * - `bare`    '1'…'4' with no ESC — Ejeton VFD8C
 * The value is ESC Q A digits CR (no string-mode lock on these displays); CLR clears; ESC @ initialises.
 */
import type { DisplayLamp } from '../display-model';
import { ByteDecoder, ESC, type DisplayDecoderOptions } from './base';

export type Led8LampVariant = 'binary' | 'ascii' | 'partner' | 'bare';

export interface Led8Options extends DisplayDecoderOptions {
  lamps?: Led8LampVariant;
}

const LAMPS: readonly DisplayLamp[] = ['price', 'total', 'tendered', 'change'];

export class Led8Decoder extends ByteDecoder {
  readonly protocol = 'led8' as const;
  readonly lamps: Led8LampVariant;

  constructor(options: Led8Options = {}) {
    // One line; 16 cells so a value with its decimal points and sign is kept whole.
    super(options, { lines: 1, columns: 16 });
    this.lamps = options.lamps ?? 'binary';
  }

  protected step(buf: Uint8Array, i: number): number {
    const b = buf[i];
    const d = this.display;
    if (b === 0x0c || b === 0x18) {
      d.clear();
      this.emitClear();
      return 1;
    }
    if (this.lamps === 'bare' && b >= 0x31 && b <= 0x34) return this.setLamp(b - 0x30);
    if (b === ESC) {
      if (i + 1 >= buf.length) return 0;
      const c = buf[i + 1];
      if (c === 0x40) {
        d.clear();
        d.lamp = null;
        this.emitClear();
        return 2;
      }
      if (c === 0x51) {
        if (i + 2 >= buf.length) return 0;
        if (buf[i + 2] !== 0x41 && buf[i + 2] !== 0x42) return this.unknown(buf, i, 3);
        const s = this.readString(buf, i + 3, 40);
        if (s === null) return 0;
        d.setLine(0, s[0].trim());
        this.emitText();
        return 3 + s[1];
      }
      if (c === 0x73) return this.escLamp(buf, i);
      return this.unknown(buf, i, 2);
    }
    if (b === 0x0d || b === 0x0a || b === 0x0b) return 1; // line ends and home mean nothing on one line
    return this.garbage();
  }

  private escLamp(buf: Uint8Array, i: number): number {
    if (this.lamps === 'bare') return this.unknown(buf, i, 3);
    if (i + 2 >= buf.length) return 0;
    const n = buf[i + 2];
    if (this.lamps === 'binary') {
      if (n <= 4) return this.setLamp(n) + 2;
      return this.unknown(buf, i, 3);
    }
    if (this.lamps === 'ascii') {
      if (n >= 0x30 && n <= 0x34) return this.setLamp(n - 0x30) + 2;
      return this.unknown(buf, i, 3);
    }
    if (i + 3 >= buf.length) return 0;
    const on = buf[i + 3];
    if (n >= 2 && n <= 5 && (on === 0 || on === 1)) {
      if (on === 1) return this.setLamp(n - 1) + 3;
      if (this.display.lamp === LAMPS[n - 2]) return this.setLamp(0) + 3;
      return 4;
    }
    return this.unknown(buf, i, 4);
  }

  /** n = 1…4 lights that lamp alone, 0 turns them all off. Returns 1. */
  private setLamp(n: number): number {
    this.display.lamp = n === 0 ? null : LAMPS[n - 1];
    this.emitLamp();
    return 1;
  }
}
