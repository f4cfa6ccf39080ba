/**
 * The serial-display adapter's I/O (issue 11): a byte-exact pass-through between the register and its
 * customer display, with a tap for the decoder.
 *
 *   register ⇄ input port (options.input) ⇄ this ⇄ display port (options.display) ⇄ real display
 *
 * - Every chunk read from the input is written to the display port first, unchanged and in order, and only
 *   then handed to `onChunk` (the decoder). An `onChunk` that throws is counted and reported; it can never
 *   stop or delay the display. serialport queues writes in call order, so order is kept across chunks.
 * - Bytes the display sends (status, some models answer) are written back to the register unchanged.
 * - Both ports are opened through serialport with the manifest's line settings (the register's settings
 *   are mirrored to the display: research note §1.5).
 * - A port that vanishes (a USB-serial adapter pulled, a com0com pair removed) is counted and reported as
 *   a TransportError naming the device, and reopened every `reopenMs` through the Clock until it is back.
 *   While the display port is away the register's bytes are still read and decoded; what could not be
 *   written to the display is counted as dropped (a display shows the present, not a backlog).
 * - A write error on the display side is counted and reported and never stops reading.
 * - A display slower than the register (holding RTS/CTS or XOFF) slows the register as a direct cable
 *   would: reading pauses while the display port's queue is full and resumes when it drains, so the
 *   backlog held here stays bounded (serialport's write buffer).
 * - `forwardGapMs` (default 0, off): some displays lose commands that come back to back (the Sedsy PD1800A
 *   needs ~100 ms between commands, research note §1.4). Then the bytes for the display are cut where a
 *   command starts (`commandStarts`) and written one command at a time, each only once the one before
 *   has left the port (drain) and the gap has passed on the Clock. Bytes are never dropped, reordered or
 *   changed, and the tap still gets every chunk the moment it is read: only the display waits. A register
 *   faster than the gaps allow is slowed as by a slow display (reading pauses while more than
 *   GAP_QUEUE_LIMIT bytes wait).
 */
import { hangupAwareBinding } from '../../printer/serial-hangup';
import type { SerialPort as SerialPortClass } from 'serialport';
import { Clock, TimerHandle } from '../../protocol/clock';
import { TransportError } from '../../protocol/errors';
import { describeLine } from '../../printer/serial-output';
import { SerialLineSettings, serialPortOptions } from '../../printer/serial-settings';
import { holdPort, portHolder } from '../held-ports';

export const DEFAULT_REOPEN_MS = 2_000;
/** With forwardGapMs: reading from the register pauses while more bytes than this wait for their gap. */
export const GAP_QUEUE_LIMIT = 4_096;

/**
 * Where commands start, for forwardGapMs: before ESC (1B), US (1F), CLR (0C) and CAN (18), the bytes every
 * display command set here begins its commands with (text goes with the command before it). A parameter
 * byte with one of these values only adds a gap inside a command; bytes are never changed. Offsets > 0.
 */
export function commandStarts(bytes: Uint8Array): number[] {
  const starts: number[] = [];
  for (let i = 1; i < bytes.length; i++) {
    if (isCommandStart(bytes[i])) starts.push(i);
  }
  return starts;
}

function isCommandStart(b: number): boolean {
  return b === 0x1b || b === 0x1f || b === 0x0c || b === 0x18;
}

export interface SerialIoConfig {
  /** Device paths (without `serial:`). */
  input: string;
  display?: string;
  line: SerialLineSettings;
  /** How long to wait between attempts to reopen a vanished port. Default 2 s. */
  reopenMs?: number;
  /** The least time between two commands written to the display; 0 (default) writes chunks as read. */
  forwardGapMs?: number;
}

export interface SerialIoDeps {
  clock: Clock;
  /** Each chunk from the register, after it was handed to the display port. */
  onChunk(bytes: Uint8Array): void;
  /** Problems survived: a vanished port, a failed reopen, a display write error, a throwing onChunk. */
  onError?(error: Error): void;
  /** serialport's binding; default the real one. */
  binding?: unknown;
}

export interface SerialIoStats {
  /** Bytes read from the register. */
  bytesIn: number;
  /** Bytes handed to the display port. */
  bytesToDisplay: number;
  /** Register bytes not written on because the display port was away. */
  bytesDropped: number;
  /** Bytes from the display written back to the register. */
  bytesBack: number;
  displayWriteErrors: number;
  /** Times reading from the register paused until a slow display caught up. */
  heldForDisplay: number;
  /** Times a port went away (input or display). */
  portsLost: number;
  reopenAttempts: number;
  reopened: number;
  /** onChunk calls that threw. */
  tapErrors: number;
  /** forwardGapMs: commands written to the display one by one, and how many of them waited for the gap. */
  gappedCommands: number;
  gapWaits: number;
}

interface Segment {
  bytes: Buffer;
  /** False when it continues the command of the segment before (a command cut between two reads). */
  startsCommand: boolean;
}

type Side = 'input' | 'display';

let serialPortClass: typeof SerialPortClass | undefined;
function loadSerialPort(): typeof SerialPortClass {
  serialPortClass ??= (require('serialport') as typeof import('serialport')).SerialPort;
  return serialPortClass;
}

/** Every counter at zero: a pass-through's start, and the adapter's figures before it has one. */
export function emptySerialIoStats(): SerialIoStats {
  return {
    bytesIn: 0,
    bytesToDisplay: 0,
    bytesDropped: 0,
    bytesBack: 0,
    displayWriteErrors: 0,
    heldForDisplay: 0,
    portsLost: 0,
    reopenAttempts: 0,
    reopened: 0,
    tapErrors: 0,
    gappedCommands: 0,
    gapWaits: 0,
  };
}

export class SerialPassThrough {
  readonly stats: SerialIoStats = emptySerialIoStats();
  private readonly ports: Partial<Record<Side, SerialPortClass>> = {};
  private readonly timers: Partial<Record<Side, TimerHandle>> = {};
  private running = false;
  /** Reading from the register is paused until the display drains. */
  private holding = false;
  private readonly reopenMs: number;
  private readonly gapMs: number;
  /** forwardGapMs: what waits for the display, in order, and the pump that writes it. */
  private readonly gapQueue: Segment[] = [];
  private gapQueued = 0;
  private pumping = false;
  /** When the last bytes written with forwardGapMs had left the display port. */
  private lastWriteDone?: number;
  private gapTimer?: { handle: TimerHandle; wake: () => void };

  constructor(
    readonly config: SerialIoConfig,
    private readonly deps: SerialIoDeps,
  ) {
    this.reopenMs = config.reopenMs ?? DEFAULT_REOPEN_MS;
    this.gapMs = config.forwardGapMs ?? 0;
  }

  /** `serial:/dev/ttyS0 (9600 8N1)`: how messages name a port. */
  name(side: Side): string {
    return `serial:${side === 'input' ? this.config.input : this.config.display} (${describeLine(this.config.line)})`;
  }

  /** Bytes queued for the display port that it has not taken yet (with forwardGapMs, also those waiting). */
  get displayBacklog(): number {
    return (this.ports.display?.writableLength ?? 0) + this.gapQueued;
  }

  /** True while the side's port is open. */
  isOpen(side: Side): boolean {
    return this.ports[side]?.isOpen ?? false;
  }

  /**
   * Opens the input (and the display, when configured). A port that cannot be opened now throws a
   * TransportError naming it: the probe and start fail loudly rather than wait for a port that may be a typo.
   */
  async start(): Promise<void> {
    if (this.running) throw new Error('the serial pass-through is already started');
    this.running = true;
    try {
      await this.open('input');
      if (this.config.display !== undefined) await this.open('display');
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /**
   * Opens each configured port with the settings and closes it again; a port this process already holds
   * (the running adapter this one is to replace) is taken as working. Throws a TransportError naming a
   * port that cannot be opened.
   */
  async probe(): Promise<void> {
    for (const side of ['input', 'display'] as const) {
      const path = side === 'input' ? this.config.input : this.config.display;
      // The running adapter this one is to replace holds it (serialport locks it): known to work.
      if (path === undefined || portHolder({ serial: path }) !== undefined) continue;
      const port = await this.openPort(side);
      await new Promise<void>((resolve) => port.close(() => resolve()));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.holding = false;
    this.dropGapQueue();
    if (this.gapTimer) {
      this.deps.clock.clearTimeout(this.gapTimer.handle);
      this.gapTimer.wake();
    }
    for (const side of ['input', 'display'] as const) {
      this.deps.clock.clearTimeout(this.timers[side]);
      this.timers[side] = undefined;
      const port = this.ports[side];
      this.ports[side] = undefined;
      if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    }
  }

  private async open(side: Side): Promise<void> {
    const port = await this.openPort(side);
    if (!this.running) {
      port.close(() => undefined);
      return;
    }
    const path = port.path;
    const release = holdPort({ serial: path }, `serial-display options.${side}`);
    this.ports[side] = port;
    port.on('data', (chunk: Buffer) =>
      side === 'input' ? this.fromRegister(chunk) : this.fromDisplay(chunk),
    );
    if (side === 'input' && this.holding) port.pause();
    port.once('close', (e: Error | null) => {
      release();
      if (this.ports[side] === port) this.ports[side] = undefined;
      // A display that went away no longer holds the register up.
      if (side === 'display') this.release();
      if (!this.running) return;
      this.stats.portsLost++;
      this.report(
        new TransportError(
          'serial_display.port_lost',
          `${side === 'input' ? 'The register side' : 'The display'} ${this.name(side)} went away` +
            `${e ? ` (${e.message})` : ''}; reopening it every ${this.reopenMs} ms`,
          { subject: path, cause: e ?? undefined },
        ),
      );
      this.scheduleReopen(side);
    });
  }

  /** A port of this side, open with the line settings. */
  private async openPort(side: Side): Promise<SerialPortClass> {
    const SerialPort = loadSerialPort();
    const path = side === 'input' ? this.config.input : this.config.display!;
    const port = new SerialPort({
      ...({ binding: this.deps.binding ?? hangupAwareBinding() } as object),
      ...serialPortOptions(path, this.config.line),
    });
    // Write errors are counted in write()'s callback; this keeps a late one from crashing the process.
    port.on('error', (e: Error) => this.report(this.error(side, e, 'error')));
    await new Promise<void>((resolve, reject) =>
      port.open((e) => (e ? reject(this.error(side, e, 'open')) : resolve())),
    );
    return port;
  }

  private scheduleReopen(side: Side): void {
    if (!this.running) return;
    this.timers[side] = this.deps.clock.setTimeout(() => {
      this.timers[side] = undefined;
      if (!this.running) return;
      this.stats.reopenAttempts++;
      this.open(side).then(
        () => {
          if (this.running) this.stats.reopened++;
        },
        (e: Error) => {
          this.report(e);
          this.scheduleReopen(side);
        },
      );
    }, this.reopenMs);
  }

  /** Display first, then the tap: a decoder can never hold the display up. */
  private fromRegister(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    const display = this.ports.display;
    if (display?.isOpen && this.gapMs > 0) {
      this.queueForGap(chunk);
    } else if (display?.isOpen) {
      this.stats.bytesToDisplay += chunk.length;
      const more = display.write(chunk, (e) => {
        if (e) {
          this.stats.displayWriteErrors++;
          this.report(this.error('display', e, 'write'));
        }
      });
      // The display is slower than the register (it holds flow control): stop reading until it catches
      // up, so the register waits as it would on a direct cable, instead of the backlog growing here.
      if (!more && !this.holding) {
        this.holding = true;
        this.stats.heldForDisplay++;
        this.ports.input?.pause();
        display.once('drain', () => this.release());
      }
    } else if (this.config.display !== undefined) {
      this.stats.bytesDropped += chunk.length;
    }
    try {
      this.deps.onChunk(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (e) {
      this.stats.tapErrors++;
      this.report(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** forwardGapMs: cuts the chunk into commands and queues them for the pump. */
  private queueForGap(chunk: Buffer): void {
    let from = 0;
    for (const at of [...commandStarts(chunk), chunk.length]) {
      this.gapQueue.push({
        bytes: Buffer.from(chunk.subarray(from, at)),
        startsCommand: isCommandStart(chunk[from]),
      });
      from = at;
    }
    this.gapQueued += chunk.length;
    if (this.gapQueued > GAP_QUEUE_LIMIT && !this.holding) {
      this.holding = true;
      this.stats.heldForDisplay++;
      this.ports.input?.pause();
    }
    void this.pump();
  }

  /**
   * Writes the queued commands in order, each after the last one left the port and the gap passed. One
   * pump at a time; a display that goes away (or stop) drops what still waits, counted as dropped.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.gapQueue.length > 0) {
        const display = this.ports.display;
        if (!this.running || !display?.isOpen) {
          this.dropGapQueue();
          break;
        }
        const segment = this.gapQueue[0];
        const wait =
          segment.startsCommand && this.lastWriteDone !== undefined
            ? this.lastWriteDone + this.gapMs - this.deps.clock.now()
            : 0;
        if (wait > 0) {
          this.stats.gapWaits++;
          await this.sleep(wait);
          continue;
        }
        this.gapQueue.shift();
        this.gapQueued -= segment.bytes.length;
        this.stats.bytesToDisplay += segment.bytes.length;
        if (segment.startsCommand) this.stats.gappedCommands++;
        await new Promise<void>((resolve) => {
          // serialport's drain on a port that closed waits for an open that never comes: close ends it too.
          const done = () => {
            display.off('close', done);
            resolve();
          };
          display.once('close', done);
          display.write(segment.bytes, (e) => {
            if (e) {
              this.stats.displayWriteErrors++;
              this.report(this.error('display', e, 'write'));
            }
          });
          display.drain(done);
        });
        this.lastWriteDone = this.deps.clock.now();
        if (this.gapQueued <= GAP_QUEUE_LIMIT / 2) this.release();
      }
    } finally {
      this.pumping = false;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.gapTimer = undefined;
        resolve();
      };
      this.gapTimer = { handle: this.deps.clock.setTimeout(wake, ms), wake };
    });
  }

  private dropGapQueue(): void {
    this.stats.bytesDropped += this.gapQueued;
    this.gapQueue.length = 0;
    this.gapQueued = 0;
    this.release();
  }

  /** Reads from the register again after the display caught up or went away. */
  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    this.ports.input?.resume();
  }

  private fromDisplay(chunk: Buffer): void {
    const input = this.ports.input;
    if (!input?.isOpen) return;
    this.stats.bytesBack += chunk.length;
    input.write(chunk, (e) => {
      if (e) this.report(this.error('input', e, 'write'));
    });
  }

  private report(e: Error): void {
    try {
      this.deps.onError?.(e);
    } catch {
      // A reporter that fails must not stop the pass-through.
    }
  }

  private error(side: Side, e: unknown, op: 'open' | 'write' | 'error'): TransportError {
    if (e instanceof TransportError) return e;
    const message = e instanceof Error ? e.message : String(e);
    const path = side === 'input' ? this.config.input : this.config.display!;
    const what = side === 'input' ? 'the register side' : 'the display';
    let code = `serial_display.${op === 'open' ? 'open_failed' : `${side}_${op}_failed`}`;
    let hint = '';
    if (/No such file or directory|No such device|File not found|ENOENT/i.test(message)) {
      code = 'serial_display.no_such_port';
      hint = `; check the cable or USB adapter and that ${path} is ${what}'s port`;
    } else if (/Cannot lock port|Resource temporarily unavailable|Access denied|busy/i.test(message)) {
      code = 'serial_display.port_busy';
      const holder = portHolder({ serial: path });
      hint = holder
        ? `; this plugin's ${holder} holds it`
        : '; another program holds it (the register itself, a terminal program, another payconnect)';
    } else if (/Permission denied|Operation not permitted/i.test(message)) {
      code = 'serial_display.permission_denied';
      hint = '; give the plugin access to the port (on Linux the dialout group)';
    }
    return new TransportError(
      code,
      `Cannot ${op === 'error' ? 'use' : op} ${what} ${this.name(side)}: ${message}${hint}`,
      { subject: path, cause: e },
    );
  }
}
