/**
 * CD5220 command mode (Partner Tech; copied by most Chinese VFDs), research note §1.2. After ESC Q A / ESC Q B
 * the display is in the locked "string mode": other commands (and plain text) are ignored until CLR or CAN.
 * ESC s n / ESC d n are the EEPROM store/restore of user characters here, never lamps (see led8).
 * ESC & s n m [a p1…pa]×(m−n+1) defines download characters (s = 1, 32 ≤ n ≤ m ≤ 126, a ≤ 5; CD5220 standard
 * mode table, PosX XP8200 manual p.19): skipped whole by that length, in the string mode too, so pattern
 * bytes that look like CLR, CAN or ESC never act as commands. With a header or width out of those ranges
 * its length cannot be known: the 5 header bytes count as an unknown command.
 */
import { ByteDecoder, ESC, US, type DisplayDecoderOptions } from './base';

/** ESC commands with a known length that change nothing we model. */
const ESC_KNOWN: Record<number, number> = {
  0x5f: 3, // ESC _ n cursor
  0x2a: 3, // ESC * n brightness
  0x57: 6, // ESC W s x1 x2 y window
  0x25: 3, // ESC % n user character set
  0x3f: 3, // ESC ? n cancel user character
  0x66: 3, // ESC f n international set
  0x63: 3, // ESC c n ASCII/JIS
  0x3d: 3, // ESC = n peripheral select
  0x23: 3, // ESC # n command type
  0x73: 3, // ESC s n store user characters (EEPROM)
  0x64: 3, // ESC d n restore user characters
};

export class Cd5220Decoder extends ByteDecoder {
  readonly protocol = 'cd5220' as const;
  /** True in the string mode ESC Q A/B leaves the display in. */
  locked = false;
  /** Commands and bytes ignored because of the string-mode lock. */
  ignoredWhileLocked = 0;
  /** ESC & download-character definitions skipped (their glyphs are not modelled). */
  userCharacterDefinitions = 0;

  constructor(options: DisplayDecoderOptions = {}) {
    super(options);
  }

  protected step(buf: Uint8Array, i: number): number {
    const b = buf[i];
    const d = this.display;
    if (b === 0x0c || b === 0x18) {
      if (b === 0x0c) d.clear();
      else d.clearLine();
      this.locked = false;
      if (b === 0x0c) this.emitClear();
      else this.emitText();
      return 1;
    }
    if (b === ESC) {
      if (i + 1 >= buf.length) return 0;
      const c = buf[i + 1];
      if (c === 0x51) return this.stringCommand(buf, i);
      if (c === 0x26) return this.userCharacters(buf, i);
      const n = this.escCommand(buf, i, c);
      if (n > 0 && this.locked && c !== 0x40) this.ignoredWhileLocked++;
      return n;
    }
    if (b === US) {
      if (i + 1 >= buf.length) return 0;
      const c = buf[i + 1];
      if (this.locked) {
        this.ignoredWhileLocked++;
        return 2;
      }
      if (c >= 0x01 && c <= 0x03) {
        d.mode = c === 0x01 ? 'overwrite' : c === 0x02 ? 'vertical' : 'horizontal';
        return 2;
      }
      if (c === 0x40) return 2; // US @ self-test
      return this.unknown(buf, i, 2);
    }
    if (this.locked) {
      this.ignoredWhileLocked++;
      return 1;
    }
    const basic = this.basicControl(b);
    if (basic > 0) return basic;
    return this.writeText(buf, i);
  }

  /** ESC Q A/B/D text CR. */
  private stringCommand(buf: Uint8Array, i: number): number {
    if (i + 2 >= buf.length) return 0;
    const which = buf[i + 2];
    if (which !== 0x41 && which !== 0x42 && which !== 0x44) return this.unknown(buf, i, 3);
    const s = this.readString(buf, i + 3, which === 0x44 ? 40 : this.display.columns + 20);
    if (s === null) return 0;
    const row = which === 0x42 ? Math.min(1, this.display.lines - 1) : 0;
    this.display.setLine(row, s[0]);
    if (which !== 0x44) this.locked = true;
    this.emitText();
    return 3 + s[1];
  }

  private escCommand(buf: Uint8Array, i: number, c: number): number {
    const d = this.display;
    if (this.locked && c !== 0x40) {
      const len = c === 0x5b || c === 0x6c ? (c === 0x6c ? 4 : 3) : (ESC_KNOWN[c] ?? 2);
      return i + len <= buf.length ? len : 0;
    }
    switch (c) {
      case 0x40:
        d.clear();
        d.mode = 'overwrite';
        this.locked = false;
        this.emitClear();
        return 2;
      case 0x11:
      case 0x12:
      case 0x13:
        d.mode = c === 0x11 ? 'overwrite' : c === 0x12 ? 'vertical' : 'horizontal';
        return 2;
      case 0x6c:
        if (i + 3 >= buf.length) return 0;
        d.moveTo(buf[i + 3] - 1, buf[i + 2] - 1);
        this.emitText();
        return 4;
      case 0x5b:
        return this.move(buf, i);
    }
    const len = ESC_KNOWN[c];
    if (len !== undefined) return i + len <= buf.length ? len : 0;
    return this.unknown(buf, i, 2);
  }

  /** ESC & s n m [a p1…pa]×(m−n+1): skipped by its length, a known command whatever the lock. */
  private userCharacters(buf: Uint8Array, i: number): number {
    const n = this.downloadCharacters(buf, i, { height: 1, codes: [0x20, 0x7e], width: 5 });
    if (n < 0) return this.unknown(buf, i, 5);
    if (n > 0) {
      this.userCharacterDefinitions++;
      if (this.locked) this.ignoredWhileLocked++;
    }
    return n;
  }

  /** ESC [ A/B/C/D/H/L/R/K cursor moves. */
  private move(buf: Uint8Array, i: number): number {
    if (i + 2 >= buf.length) return 0;
    const d = this.display;
    switch (buf[i + 2]) {
      case 0x41:
        d.up();
        break;
      case 0x42:
        d.down();
        break;
      case 0x43:
        d.right();
        break;
      case 0x44:
        d.left();
        break;
      case 0x48:
        d.home();
        break;
      case 0x4c:
        d.lineStart();
        break;
      case 0x52:
        d.lineEnd();
        break;
      case 0x4b:
        d.bottom();
        break;
      default:
        return this.unknown(buf, i, 3);
    }
    this.emitText();
    return 3;
  }
}
