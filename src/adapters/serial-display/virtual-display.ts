/**
 * The virtual customer display every protocol decoder writes into (issue 11): lines × columns of cells, a
 * cursor, the scroll mode and the lit lamp. Pure: no I/O, no timers. A GB18030 character takes one cell.
 */
import type { DisplayLamp, DisplayScreen } from './display-model';

export type ScrollMode = 'overwrite' | 'vertical' | 'horizontal';

export interface DisplaySize {
  lines?: number;
  columns?: number;
}

const clampInt = (n: number, lo: number, hi: number): number =>
  Math.min(hi, Math.max(lo, Number.isFinite(n) ? Math.trunc(n) : lo));

export class VirtualDisplay {
  readonly lines: number;
  readonly columns: number;
  mode: ScrollMode = 'overwrite';
  lamp: DisplayLamp | null = null;
  private row = 0;
  /** May equal `columns`: the next character wraps or scrolls as the mode says. */
  private column = 0;
  private readonly cells: string[][];

  constructor(size: DisplaySize = {}, defaults: Required<DisplaySize> = { lines: 2, columns: 20 }) {
    this.lines = clampInt(size.lines ?? defaults.lines, 1, 8);
    this.columns = clampInt(size.columns ?? defaults.columns, 1, 80);
    this.cells = Array.from({ length: this.lines }, () => new Array<string>(this.columns).fill(' '));
  }

  screen(): DisplayScreen {
    return {
      lines: this.cells.map((r) => r.join('')),
      cursor: { row: this.row, column: Math.min(this.column, this.columns - 1) },
      lamp: this.lamp,
    };
  }

  /** Clears every line and homes the cursor (lamps are not touched). */
  clear(): void {
    for (const r of this.cells) r.fill(' ');
    this.row = 0;
    this.column = 0;
  }

  clearLine(row = this.row): void {
    this.cells[clampInt(row, 0, this.lines - 1)].fill(' ');
    if (row === this.row) this.column = 0;
  }

  write(ch: string): void {
    if (this.column >= this.columns) {
      if (this.mode === 'horizontal') {
        const r = this.cells[this.row];
        r.shift();
        r.push(' ');
        this.column = this.columns - 1;
      } else {
        this.column = 0;
        this.nextLine();
      }
    }
    this.cells[this.row][this.column] = ch;
    this.column++;
  }

  /** Replaces a whole line with `text` (left-aligned, cut to the width); the cursor goes after it. */
  setLine(row: number, text: string): void {
    const r = clampInt(row, 0, this.lines - 1);
    const chars = Array.from(text).slice(0, this.columns);
    this.cells[r].fill(' ');
    chars.forEach((c, i) => (this.cells[r][i] = c));
    this.row = r;
    this.column = chars.length;
  }

  left(): void {
    if (this.column > 0) this.column = Math.min(this.column, this.columns) - 1;
    else if (this.row > 0) {
      this.row--;
      this.column = this.columns - 1;
    }
  }

  right(): void {
    this.column++;
    if (this.column >= this.columns) {
      this.column = 0;
      this.nextLine();
    }
  }

  down(): void {
    this.nextLine();
  }

  up(): void {
    if (this.row > 0) this.row--;
    else if (this.mode === 'vertical') {
      this.cells.pop();
      this.cells.unshift(new Array<string>(this.columns).fill(' '));
    } else this.row = this.lines - 1;
  }

  home(): void {
    this.row = 0;
    this.column = 0;
  }

  lineStart(): void {
    this.column = 0;
  }

  lineEnd(): void {
    this.column = this.columns - 1;
  }

  /** The right-most position of the bottom line (Epson US B). */
  bottom(): void {
    this.row = this.lines - 1;
    this.column = this.columns - 1;
  }

  /** 0-based row and column, clamped to the screen. */
  moveTo(row: number, column: number): void {
    this.row = clampInt(row, 0, this.lines - 1);
    this.column = clampInt(column, 0, this.columns - 1);
  }

  private nextLine(): void {
    if (this.row < this.lines - 1) this.row++;
    else if (this.mode === 'vertical') {
      this.cells.shift();
      this.cells.push(new Array<string>(this.columns).fill(' '));
    } else this.row = 0;
  }
}
