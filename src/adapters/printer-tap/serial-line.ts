/**
 * One serial port printer-tap keeps open for as long as it runs: the register's end of the line
 * (`options.listen`) or a serial printer (`options.forward`). A serial line has no connections, so the
 * port is opened once, with the manifest's line settings, and read as one long stream.
 *
 * A port that goes away (a USB-serial adapter pulled out, a com0com pair removed, a pty whose other side
 * closed) is counted, reported once through `onLost`, and reopened every `reopenMs` (2 s, as the
 * serial-display adapter does) until it is back; failed attempts are counted, not reported again. Nothing
 * here throws after `open()`: the caller decides whether a port that cannot be opened at start is fatal
 * (the listen port: the probe fails, naming it) or only reported (a printer that is off).
 */
import type { SerialPort as SerialPortClass } from 'serialport';
import { Clock, TimerHandle } from '../../protocol/clock';
import { TransportError } from '../../protocol/errors';
import { describeLine, loadSerialPort } from '../../printer/serial-output';
import { hangupAwareBinding } from '../../printer/serial-hangup';
import { serialPortOptions } from '../../printer/serial-settings';
import { holdPort, portHolder } from '../held-ports';
import type { SerialEndpoint } from './printer-tap.options';

export const DEFAULT_REOPEN_MS = 2_000;

export interface SerialLineStats {
  /** Times the port went away or could not be opened when it should have been. */
  lost: number;
  reopenAttempts: number;
  reopened: number;
}

export interface SerialLineDeps {
  clock: Clock;
  reopenMs: number;
  onData(chunk: Buffer): void;
  /** The port went away (or a reopen started to be needed); once per loss. */
  onLost(error: TransportError): void;
  /** The port is open again after a loss. */
  onBack?(): void;
  /** serialport's binding; default the real one. */
  binding?: unknown;
}

/** `serial:/dev/ttyS0 (9600 8N1)`: how messages name a serial endpoint. */
export function serialName(e: SerialEndpoint): string {
  return `serial:${e.serial} (${describeLine(e.line)})`;
}

export class SerialLine {
  readonly stats: SerialLineStats = { lost: 0, reopenAttempts: 0, reopened: 0 };
  private port?: SerialPortClass;
  private timer?: TimerHandle;
  private running = false;
  private paused = false;

  constructor(
    readonly endpoint: SerialEndpoint,
    /** What the port is for, in messages: "the register's port (options.listen)". */
    readonly role: string,
    private readonly deps: SerialLineDeps,
  ) {}

  get name(): string {
    return serialName(this.endpoint);
  }

  get isOpen(): boolean {
    return this.port?.isOpen ?? false;
  }

  /** Bytes handed to the port that it has not sent yet. */
  get backlog(): number {
    return this.port?.writableLength ?? 0;
  }

  /** Opens the port; throws a TransportError naming it when it cannot be opened now. */
  async open(): Promise<void> {
    this.running = true;
    await this.attach();
  }

  /** Keeps trying to open the port (after open() failed for a port that may come later). */
  reopenLater(error: TransportError): void {
    this.running = true;
    this.lost(error);
  }

  /**
   * Opens the port once with the settings and closes it. A port this process holds (the running tap a new
   * manifest is to replace: serialport locks it) counts as working (held-ports.ts).
   */
  async probe(): Promise<void> {
    if (portHolder({ serial: this.endpoint.serial }) !== undefined) return;
    const port = await this.openPort();
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  async close(): Promise<void> {
    this.running = false;
    this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  /** Writes; false when the caller should wait for whenWritable(). Nothing is written while closed. */
  write(bytes: Buffer, done?: (e?: Error | null) => void): boolean {
    const port = this.port;
    if (!port?.isOpen) {
      done?.(new Error(`${this.name} is not open`));
      return true;
    }
    return port.write(bytes, done);
  }

  /** Calls `f` once the port took what was written, or when it went away (then nothing more waits). */
  whenWritable(f: () => void): void {
    const port = this.port;
    if (!port?.isOpen) {
      f();
      return;
    }
    let called = false;
    const once = () => {
      if (called) return;
      called = true;
      port.off('drain', once);
      port.off('close', once);
      f();
    };
    port.once('drain', once);
    port.once('close', once);
  }

  /** Resolves once every byte written so far has left the port (or the port went away). */
  drained(): Promise<void> {
    const port = this.port;
    if (!port?.isOpen) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // serialport's drain on a port that closed waits for an open that never comes: close ends it too.
      const done = () => {
        port.off('close', done);
        resolve();
      };
      port.once('close', done);
      port.drain(done);
    });
  }

  pause(): void {
    this.paused = true;
    this.port?.pause();
  }

  resume(): void {
    this.paused = false;
    this.port?.resume();
  }

  private async attach(): Promise<void> {
    const port = await this.openPort();
    if (!this.running) {
      port.close(() => undefined);
      return;
    }
    this.port = port;
    const release = holdPort({ serial: this.endpoint.serial }, `printer-tap ${this.role}`);
    port.on('data', (chunk: Buffer) => this.deps.onData(chunk));
    if (this.paused) port.pause();
    port.once('close', (e: Error | null) => {
      release();
      if (this.port === port) this.port = undefined;
      if (!this.running) return;
      this.lost(this.error(e ?? new Error('closed'), 'went away'));
    });
  }

  private lost(error: TransportError): void {
    this.stats.lost++;
    this.deps.onLost(error);
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (!this.running) return;
    this.deps.clock.clearTimeout(this.timer);
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.running) return;
      this.stats.reopenAttempts++;
      this.attach().then(
        () => {
          if (!this.running) return;
          this.stats.reopened++;
          this.deps.onBack?.();
        },
        () => this.scheduleReopen(),
      );
    }, this.deps.reopenMs);
  }

  private async openPort(): Promise<SerialPortClass> {
    const SerialPort = loadSerialPort();
    const port = new SerialPort({
      ...({ binding: this.deps.binding ?? hangupAwareBinding() } as object),
      ...serialPortOptions(this.endpoint.serial, this.endpoint.line),
    });
    // Errors arrive through open's callback and 'close'; this keeps a late one from crashing the process.
    port.on('error', () => undefined);
    await new Promise<void>((resolve, reject) =>
      port.open((e) => (e ? reject(this.error(e, 'cannot be opened')) : resolve())),
    );
    return port;
  }

  /** A TransportError naming the port and its role, with what to do for the usual OS reasons. */
  error(e: unknown, what: 'cannot be opened' | 'went away'): TransportError {
    if (e instanceof TransportError) return e;
    const message = e instanceof Error ? e.message : String(e);
    const path = this.endpoint.serial;
    let hint = `; reopening it every ${this.deps.reopenMs} ms`;
    if (/No such file or directory|No such device|File not found|ENOENT/i.test(message)) {
      hint = `; check the cable, the USB adapter or the virtual COM pair, and that ${path} is the right port`;
    } else if (/Cannot lock port|Resource temporarily unavailable|Access denied|busy/i.test(message)) {
      const holder = portHolder({ serial: path });
      hint = holder
        ? `; this plugin's ${holder} holds it`
        : '; another program holds it (the register itself, a terminal program, another payconnect)';
    } else if (/Permission denied|Operation not permitted/i.test(message)) {
      hint = '; give the plugin access to the port (on Linux the dialout group)';
    }
    return new TransportError(
      what === 'went away' ? 'printer_tap.port_lost' : 'printer_tap.port_unavailable',
      `${this.role} ${this.name} ${what} (${message})${hint}`,
      { subject: path, cause: e },
    );
  }
}
