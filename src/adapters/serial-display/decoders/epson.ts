/**
 * Epson ESC/POS customer-display set (DM-D series), research note §1.1, including ESC = n peripheral select:
 * bytes after ESC = 1 are the printer's ({kind:'printer'}), after ESC = 3 both the printer's and the display's.
 */
import { ByteDecoder, ESC, US, type DisplayDecoderOptions } from './base';

type Peripheral = 'display' | 'printer' | 'both';

/** ESC commands with a known length (bytes in all) that change nothing we model. */
const ESC_KNOWN: Record<number, number> = {
  0x74: 3, // ESC t n character table
  0x52: 3, // ESC R n international set
  0x63: 3, // ESC c n
  0x3f: 3, // ESC ? n cancel user character
  0x25: 3, // ESC % n user character set
};

/** US commands with a known length that change nothing we model. */
const US_KNOWN: Record<number, number> = {
  0x43: 3, // US C n cursor
  0x45: 3, // US E n blink
  0x58: 3, // US X n brightness
  0x54: 4, // US T h m set counter time
  0x55: 2, // US U show counter time
  0x72: 3, // US r n reverse
  0x76: 3, // US v n DTR
  0x40: 2, // US @ self-test
};

export class EpsonDecoder extends ByteDecoder {
  readonly protocol = 'epson' as const;
  private peripheral: Peripheral = 'display';

  constructor(options: DisplayDecoderOptions = {}) {
    super(options);
  }

  protected step(buf: Uint8Array, i: number): number {
    if (this.peripheral === 'printer') return this.printerBytes(buf, i);
    const n = this.displayStep(buf, i);
    if (n > 0 && this.peripheral === 'both' && !(buf[i] === ESC && buf[i + 1] === 0x3d)) {
      this.emitPrinter(buf.subarray(i, i + n));
    }
    return n;
  }

  /** Printer-only: everything up to the next ESC = n goes to the printer; a cut ESC or ESC = waits. */
  private printerBytes(buf: Uint8Array, i: number): number {
    let j = i;
    while (j < buf.length) {
      if (buf[j] === ESC) {
        if (j + 1 >= buf.length || (buf[j + 1] === 0x3d && j + 2 >= buf.length)) break;
        if (buf[j + 1] === 0x3d) break;
      }
      j++;
    }
    if (j > i) {
      this.emitPrinter(buf.subarray(i, j));
      return j - i;
    }
    if (j + 2 < buf.length && buf[j] === ESC && buf[j + 1] === 0x3d) return this.select(buf[j + 2]);
    return 0;
  }

  private select(n: number): number {
    if (n === 1) this.peripheral = 'printer';
    else if (n === 2) this.peripheral = 'display';
    else if (n === 3) this.peripheral = 'both';
    else this.stats.unknownCommands++;
    return 3;
  }

  private displayStep(buf: Uint8Array, i: number): number {
    const b = buf[i];
    const d = this.display;
    if (b === ESC) {
      if (i + 1 >= buf.length) return 0;
      const c = buf[i + 1];
      if (c === 0x40) {
        d.clear();
        d.mode = 'overwrite';
        this.emitClear();
        return 2;
      }
      if (c === 0x3d) return i + 2 < buf.length ? this.select(buf[i + 2]) : 0;
      if (c === 0x26) return this.userChars(buf, i);
      const len = ESC_KNOWN[c];
      if (len !== undefined) return i + len <= buf.length ? len : 0;
      return this.unknown(buf, i, 2);
    }
    if (b === US) {
      if (i + 1 >= buf.length) return 0;
      const c = buf[i + 1];
      switch (c) {
        case 0x01:
        case 0x02:
        case 0x03:
          d.mode = c === 0x01 ? 'overwrite' : c === 0x02 ? 'vertical' : 'horizontal';
          return 2;
        case 0x0a:
          d.up();
          this.emitText();
          return 2;
        case 0x0d:
          d.lineEnd();
          this.emitText();
          return 2;
        case 0x42:
          d.bottom();
          this.emitText();
          return 2;
        case 0x24:
          if (i + 3 >= buf.length) return 0;
          d.moveTo(buf[i + 3] - 1, buf[i + 2] - 1);
          this.emitText();
          return 4;
      }
      const len = US_KNOWN[c];
      if (len !== undefined) return i + len <= buf.length ? len : 0;
      return this.unknown(buf, i, 2);
    }
    if (b === 0x0c) {
      d.clear();
      this.emitClear();
      return 1;
    }
    if (b === 0x18) {
      d.clearLine();
      this.emitText();
      return 1;
    }
    const basic = this.basicControl(b);
    if (basic > 0) return basic;
    return this.writeText(buf, i);
  }

  /** ESC & y c1 c2 [x d1…d(y×x)]… define user characters: skipped by their own lengths. */
  private userChars(buf: Uint8Array, i: number): number {
    const n = this.downloadCharacters(buf, i);
    return n < 0 ? this.unknown(buf, i, 5) : n;
  }
}
