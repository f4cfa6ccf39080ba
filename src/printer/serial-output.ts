/**
 * A receipt printer on a serial line (`serial:/dev/ttyS0`, `serial:/dev/ttyUSB0`, `serial:COM3`), written
 * through the `serialport` package with the manifest's line settings (baud rate, data bits, parity, stop
 * bits, flow control; see serial-settings.ts). A serial line has no handshake that would tell a wrong
 * setting: both ends must match, so the port is always set explicitly, never left as the OS had it.
 *
 * Each receipt opens the port, writes, drains (waits until the UART has sent every byte, not just until
 * the OS took them) and closes it, like the TCP output's one connection per receipt. The port is not kept
 * open between receipts because receipts are rare (one per payment) and an open port is held exclusively
 * (serialport locks it): the register software, a reseller's test tool or `payconnect capture watch` could
 * not use the line in between; and a USB-serial adapter that was unplugged and plugged back in is a new
 * device file, which a kept file handle would never see again. Opening costs milliseconds.
 *
 * A device file that is not a terminal (a USB printer-class device such as `/dev/usb/lp0`, a parallel
 * port) has no line settings: its bytes are written to it as they are, without serialport, which cannot
 * open such a device.
 *
 * Failures are TransportErrors naming the device (printer-errors.ts); the print queue retries them:
 * no such device → `printer.unreachable`; another program holds the port → `printer.port_busy`; no
 * permission → `printer.permission_denied`. A print that does not finish within the timeout plus twice the
 * time the bytes need on the wire (a printer holding off flow control, a cable without CTS) is
 * `printer.unreachable`; what was not sent is discarded and the whole receipt is sent again on retry.
 */
import * as fs from 'node:fs';
import * as tty from 'node:tty';
import type { SerialPort as SerialPortClass } from 'serialport';
import { Clock, SystemClock } from '../protocol/clock';
import { TransportError } from '../protocol/errors';
import { printerError, printerUnreachable } from './printer-errors';
import { PrinterOutput } from './receipt';
import { SerialLineSettings, bitsPerByte, serialPortOptions } from './serial-settings';

export interface SerialPrinterOutputOptions {
  /** How long a print may take beyond the bytes' time on the wire. Default 5 s. */
  timeoutMs?: number;
  clock?: Clock;
  /**
   * serialport's binding (the native code that opens the port and sets termios); default the real one for
   * this OS. Tests wrap the real one to see the settings it is handed.
   */
  binding?: SerialBinding;
}

/** The part of a serialport binding the output relies on (serialport's BindingInterface). */
export interface SerialBinding {
  list(): Promise<unknown[]>;
  /** Opens the port and sets its termios (or DCB on Windows) from these options. */
  open(options: SerialOpenOptions): Promise<unknown>;
}

/** What serialport hands its binding's open(): the line settings among them. */
export interface SerialOpenOptions {
  path: string;
  baudRate: number;
  dataBits?: number;
  parity?: string;
  stopBits?: number;
  rtscts?: boolean;
  xon?: boolean;
  xoff?: boolean;
  [option: string]: unknown;
}

const DEFAULT_TIMEOUT_MS = 5_000;

/** One write's link to its timeout: once abandoned, the port is let go and nothing more is sent. */
interface SendRun {
  abandoned: boolean;
  abandon: () => void;
}

/** `9600 8N1`, `19200 7E2 rtscts`: the line as printer manuals and DIP switch tables write it. */
export function describeLine(s: SerialLineSettings): string {
  const parity = s.parity === 'none' ? 'N' : s.parity === 'even' ? 'E' : 'O';
  return `${s.baudRate} ${s.dataBits}${parity}${s.stopBits}${s.flowControl === 'none' ? '' : ` ${s.flowControl}`}`;
}

/** Milliseconds the bytes take on the wire at these settings. */
export function wireTimeMs(byteCount: number, s: SerialLineSettings): number {
  return Math.ceil((byteCount * bitsPerByte(s) * 1000) / s.baudRate);
}

/** The serialport class, loaded on first use: a machine whose native binding is broken still prints to tcp:. */
let serialPortClass: typeof SerialPortClass | undefined;
export function loadSerialPort(): typeof SerialPortClass {
  serialPortClass ??= (require('serialport') as typeof import('serialport')).SerialPort;
  return serialPortClass;
}

export class SerialPrinterOutput implements PrinterOutput {
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly binding: SerialBinding | undefined;
  /** How messages name the printer: `serial:/dev/ttyS0 (9600 8N1)`. */
  readonly name: string;

  constructor(
    /** The full target, line settings included: the print queue's key and the errors' subject. */
    readonly target: string,
    readonly path: string,
    readonly settings: SerialLineSettings,
    options: SerialPrinterOutputOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.clock = options.clock ?? new SystemClock();
    this.binding = options.binding;
    this.name = `serial:${path} (${describeLine(settings)})`;
  }

  async write(bytes: Uint8Array): Promise<void> {
    const limitMs = this.timeoutMs + 2 * wireTimeMs(bytes.length, this.settings);
    const run: SendRun = { abandoned: false, abandon: () => undefined };
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => {
        run.abandoned = true;
        run.abandon();
        reject(
          printerUnreachable(
            this.target,
            `the receipt was not sent within ${Math.ceil(limitMs / 1000)} s; with flow control on, check that the cable carries it`,
            undefined,
            this.name,
          ),
        );
      }, limitMs);
    });
    const send = (async () => {
      if (process.platform !== 'win32' && !(await this.isTerminal())) {
        await this.writeRaw(bytes);
        return;
      }
      await this.writeSerial(bytes, run);
    })();
    // After a timeout the send still ends on its own (abandoned); its error is no longer anyone's.
    send.catch(() => undefined);
    try {
      await Promise.race([send, timeout]);
    } catch (e) {
      throw this.error(e);
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  /**
   * Opens the device without creating it (a missing device is an unplugged printer, not a file to make)
   * and tells whether it is a terminal. O_NONBLOCK: a serial port waiting for carrier must not block the
   * open; O_NOCTTY: it must not become the plugin's controlling terminal.
   */
  private async isTerminal(): Promise<boolean> {
    const { O_WRONLY, O_NOCTTY, O_NONBLOCK } = fs.constants;
    const handle = await fs.promises.open(this.path, O_WRONLY | O_NOCTTY | O_NONBLOCK);
    try {
      return tty.isatty(handle.fd);
    } finally {
      await handle.close();
    }
  }

  /** A device that is not a serial line: the bytes as they are, no settings to apply. */
  private async writeRaw(bytes: Uint8Array): Promise<void> {
    const handle = await fs.promises.open(this.path, fs.constants.O_WRONLY | fs.constants.O_NOCTTY);
    try {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
        done += bytesWritten;
      }
    } finally {
      await handle.close();
    }
  }

  /** Open with the line settings, write, drain, close. */
  private async writeSerial(bytes: Uint8Array, run: SendRun): Promise<void> {
    const SerialPort = loadSerialPort();
    const port = new SerialPort({
      ...(this.binding ? ({ binding: this.binding } as object) : {}),
      ...serialPortOptions(this.path, this.settings),
    });
    // Errors arrive through the callbacks below; a listener keeps a late one from crashing the process.
    port.on('error', () => undefined);
    // A USB-serial adapter pulled out mid-receipt closes the port with a disconnect error.
    const disconnected = new Promise<never>((_, reject) => {
      port.once('close', (e: Error | null) => {
        if (e) {
          reject(
            printerUnreachable(
              this.target,
              `${this.path} went away while the receipt was being sent`,
              e,
              this.name,
            ),
          );
        }
      });
    });
    disconnected.catch(() => undefined);
    const step = (op: (done: (e?: Error | null) => void) => void) =>
      Promise.race([
        new Promise<void>((resolve, reject) => op((e) => (e ? reject(e) : resolve()))),
        disconnected,
      ]);
    // What the line has not taken is thrown away, so the close does not wait for it.
    const letGo = () => {
      if (port.isOpen) port.flush(() => port.close(() => undefined));
    };

    await step((done) => port.open(done));
    if (run.abandoned) {
      letGo();
      return;
    }
    run.abandon = letGo;
    try {
      await step((done) => port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), done));
      await step((done) => port.drain(done));
    } catch (e) {
      letGo();
      throw e;
    }
    await step((done) => port.close(done));
  }

  /** serialport's own errors are text, not errno codes: read the OS's words in them. */
  private error(e: unknown): TransportError {
    if (e instanceof TransportError) return e;
    const message = e instanceof Error ? e.message : String(e);
    const hasCode = typeof (e as NodeJS.ErrnoException)?.code === 'string';
    if (!hasCode && /Cannot lock port|Resource temporarily unavailable|Access denied/i.test(message)) {
      return new TransportError(
        'printer.port_busy',
        `Printer ${this.name}: ${this.path} is in use by another program (${message}). Close that program ` +
          '(a register driver, a terminal program, `payconnect capture watch` on the same port) or give the printer ' +
          'a port of its own; waiting receipts print once the port is free.',
        { subject: this.target, cause: e },
      );
    }
    if (!hasCode && /No such file or directory|No such device|File not found/i.test(message)) {
      return printerUnreachable(this.target, `no such device ${this.path}`, e, this.name);
    }
    if (!hasCode && /Permission denied|Operation not permitted/i.test(message)) {
      return printerError(this.target, Object.assign(new Error(message), { code: 'EACCES' }), this.name);
    }
    if (hasCode && ['ENOENT', 'ENODEV', 'ENXIO'].includes((e as NodeJS.ErrnoException).code!)) {
      return printerUnreachable(
        this.target,
        `cannot open ${this.path}: no such device; check the cable or USB adapter and that ${this.path} is the printer's port`,
        e,
        this.name,
      );
    }
    return printerError(this.target, e, this.name);
  }
}
