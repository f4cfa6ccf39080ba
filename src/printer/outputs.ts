/**
 * Printer outputs: where receipt bytes go, named by a target string from the manifest's `receipt.printer`.
 *
 * - `tcp://HOST:PORT` — a network printer's raw port (9100 on most): connect, send, close.
 * - `serial:DEVICE` — a printer on a serial or USB line (`serial:/dev/ttyUSB0`, `serial:/dev/usb/lp0`):
 *   the device file is opened for writing and the bytes written. The line settings (baud rate) are the
 *   device's own; set them with `stty` or the printer's DIP switches. The file is never created: a missing
 *   device means the printer is unplugged or off.
 * - `file:PATH` — bytes appended to a file, for tests and for hosts that spool files themselves.
 *
 * A printer that is off, unplugged or does not answer within the timeout (5 s) is a TransportError
 * `printer.unreachable` naming the printer; the print queue retries those. Other OS errors map to
 * `printer.permission_denied` or `printer.write_failed`, explicitly, below.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Clock, SystemClock } from '../protocol/clock';
import { ProtocolError, TransportError } from '../protocol/errors';
import { PrinterOutput } from './receipt';

export const PRINTER_TIMEOUT_MS = 5_000;

export type PrinterTarget =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'serial'; path: string }
  | { kind: 'file'; path: string };

export interface PrinterOutputOptions {
  /** How long a print may take, connecting included. Default 5 s. */
  timeoutMs?: number;
  clock?: Clock;
  /** Opens the TCP connection; a test can hand in a socket that never connects. */
  connect?: (port: number, host: string) => net.Socket;
}

/** Parses a printer target; a bad one is a ProtocolError that shows the three forms. */
export function parsePrinterTarget(target: string): PrinterTarget {
  const text = typeof target === 'string' ? target.trim() : '';
  const tcp = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})\/?$/.exec(text);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port >= 1 && port <= 65535) return { kind: 'tcp', host: tcp[1].replace(/^\[|\]$/g, ''), port };
  }
  const serial = /^serial:(.+)$/.exec(text);
  if (serial) return { kind: 'serial', path: serial[1] };
  const file = /^file:(.+)$/.exec(text);
  if (file) {
    if (!file[1].startsWith('//')) return { kind: 'file', path: file[1] };
    try {
      return { kind: 'file', path: fileURLToPath(text) };
    } catch {
      // Falls through to the error below.
    }
  }
  throw new ProtocolError(
    'printer.bad_target',
    `${JSON.stringify(target)} is not a printer target: use tcp://HOST:PORT for a network printer (port 9100 on most), ` +
      'serial:DEVICE for a serial or USB printer (serial:/dev/ttyUSB0), or file:PATH to append to a file.',
    { subject: 'receipt.printer' },
  );
}

/** The output for a target string; throws ProtocolError `printer.bad_target` at once for a bad one. */
export function openPrinterOutput(target: string, options: PrinterOutputOptions = {}): PrinterOutput {
  const parsed = parsePrinterTarget(target);
  switch (parsed.kind) {
    case 'tcp':
      return new TcpPrinterOutput(target, parsed.host, parsed.port, options);
    case 'serial':
      return new SerialPrinterOutput(target, parsed.path, options);
    case 'file':
      return new FilePrinterOutput(target, parsed.path);
  }
}

/** The error for a printer that is off, unplugged, or not answering. */
export function printerUnreachable(target: string, reason: string, cause?: unknown): TransportError {
  return new TransportError(
    'printer.unreachable',
    `Printer ${target} is unreachable (${reason}): is the printer on and connected?`,
    { subject: target, cause },
  );
}

/** OS error codes that mean the printer is not there, with the words a person reads. */
const UNREACHABLE: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'no route to the printer',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host is down',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  ENOENT: 'no such device',
  ENODEV: 'no such device',
  ENXIO: 'no such device',
};

/** Maps an OS error from writing to the printer at `target` to a TransportError, explicitly. */
export function printerError(target: string, error: unknown): TransportError {
  if (error instanceof TransportError) return error;
  const code = (error as NodeJS.ErrnoException)?.code ?? '';
  if (Object.hasOwn(UNREACHABLE, code)) return printerUnreachable(target, UNREACHABLE[code], error);
  if (code === 'EACCES' || code === 'EPERM') {
    return new TransportError(
      'printer.permission_denied',
      `Printer ${target}: permission denied; give the plugin's user write access (for a serial port, the dialout group).`,
      { subject: target, cause: error },
    );
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new TransportError(
      'printer.write_failed',
      `Printer ${target} closed the connection while the receipt was being sent (${code}).`,
      { subject: target, cause: error },
    );
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new TransportError(
    'printer.write_failed',
    `Printer ${target}: could not send the receipt (${detail}).`,
    {
      subject: target,
      cause: error,
    },
  );
}

/** A network printer's raw TCP port. */
export class TcpPrinterOutput implements PrinterOutput {
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly connect: (port: number, host: string) => net.Socket;

  constructor(
    readonly target: string,
    private readonly host: string,
    private readonly port: number,
    options: PrinterOutputOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? PRINTER_TIMEOUT_MS;
    this.clock = options.clock ?? new SystemClock();
    this.connect = options.connect ?? ((port, host) => net.connect({ port, host }));
  }

  /** Resolves once every byte is handed to the OS and the connection is half-closed (raw port: no reply). */
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const socket = this.connect(this.port, this.host);
      const settle = (error?: unknown) => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        if (error === undefined) {
          resolve();
          return;
        }
        socket.destroy();
        reject(printerError(this.target, error));
      };
      const timer = this.clock.setTimeout(
        () => settle(printerUnreachable(this.target, `no answer within ${this.timeoutMs / 1000} s`)),
        this.timeoutMs,
      );
      // Errors after the bytes are out (a printer resetting the connection) change nothing.
      socket.on('error', (e) => settle(e));
      socket.once('connect', () => {
        // Status bytes some printers send back are read and dropped: unread input would make the kernel
        // reset the connection on close and discard the end of the receipt.
        socket.resume();
        // The printer closes its side after ours; a printer that does not is let go after the timeout.
        socket.setTimeout(this.timeoutMs, () => socket.destroy());
        socket.once('finish', () => settle());
        socket.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      });
    });
  }
}

/** A serial or USB printer's device file. */
export class SerialPrinterOutput implements PrinterOutput {
  private readonly timeoutMs: number;
  private readonly clock: Clock;

  constructor(
    readonly target: string,
    private readonly path: string,
    options: PrinterOutputOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? PRINTER_TIMEOUT_MS;
    this.clock = options.clock ?? new SystemClock();
  }

  async write(bytes: Uint8Array): Promise<void> {
    // No O_CREAT: a missing device is an unplugged printer, not a file to make. O_NOCTTY: a tty must not
    // become the plugin's controlling terminal.
    const send = (async () => {
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
    })();
    // A device whose line is down can block the open or the write; the caller hears of it after the timeout
    // (the blocked call finishes or fails on its own, later).
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(
        () => reject(printerUnreachable(this.target, `no answer within ${this.timeoutMs / 1000} s`)),
        this.timeoutMs,
      );
    });
    send.catch(() => undefined);
    try {
      await Promise.race([send, timeout]);
    } catch (e) {
      throw printerError(this.target, e);
    } finally {
      this.clock.clearTimeout(timer);
    }
  }
}

/** Appends receipts to a file. */
export class FilePrinterOutput implements PrinterOutput {
  constructor(
    readonly target: string,
    private readonly path: string,
  ) {}

  async write(bytes: Uint8Array): Promise<void> {
    try {
      await fs.promises.appendFile(this.path, bytes);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException)?.code;
      if (code === 'ENOENT') {
        throw new TransportError(
          'printer.write_failed',
          `Printer ${this.target}: the folder of ${this.path} does not exist.`,
          { subject: this.target, cause: e },
        );
      }
      throw printerError(this.target, e);
    }
  }
}
