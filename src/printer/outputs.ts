/**
 * Printer outputs: where receipt bytes go, named by a target string from the manifest's `receipt.printer`.
 *
 * - `tcp://HOST:PORT` — a network printer's raw port (9100 on most): connect, send, close.
 * - `serial:DEVICE[?SETTINGS]` — a printer on a serial line (`serial:/dev/ttyS0`, `serial:/dev/ttyUSB0`,
 *   `serial:COM3`), opened through serialport with the line settings in the query
 *   (`?baudRate=9600&dataBits=8&parity=none&stopBits=1&flowControl=none`; any left out take those
 *   defaults; the manifest's `receipt.serial` writes them there): serial-output.ts. A device that is not a
 *   terminal (a USB printer-class `/dev/usb/lp0`) gets the bytes as they are. The device file is never
 *   created: a missing device means the printer is unplugged or off.
 * - `file:PATH` — bytes appended to a file, for tests and for hosts that spool files themselves.
 *
 * A printer that is off, unplugged or does not answer within the timeout (5 s) is a TransportError
 * `printer.unreachable` naming the printer; the print queue retries those. Other OS errors map to
 * `printer.permission_denied`, `printer.port_busy` or `printer.write_failed`, explicitly
 * (printer-errors.ts).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Clock, SystemClock } from '../protocol/clock';
import { ProtocolError, TransportError } from '../protocol/errors';
import { printerError, printerUnreachable } from './printer-errors';
import { PrinterOutput } from './receipt';
import { SerialBinding, SerialPrinterOutput } from './serial-output';
import { SerialLineSettings, parseSerialUri } from './serial-settings';

export { printerError, printerUnreachable } from './printer-errors';
export { SerialPrinterOutput } from './serial-output';

export const PRINTER_TIMEOUT_MS = 5_000;

export type PrinterTarget =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'serial'; path: string; settings: SerialLineSettings }
  | { kind: 'file'; path: string };

export interface PrinterOutputOptions {
  /** How long a print may take, connecting included (serial: plus twice the bytes' time on the wire). Default 5 s. */
  timeoutMs?: number;
  clock?: Clock;
  /** serial: serialport's binding; a test can wrap the real one to see the settings it is handed. */
  binding?: SerialBinding;
  /** Opens the TCP connection; a test can hand in a socket that never connects. */
  connect?: (port: number, host: string) => net.Socket;
}

/** Parses a printer target; a bad one is a ProtocolError that shows the three forms (or the bad line setting). */
export function parsePrinterTarget(target: string): PrinterTarget {
  const text = typeof target === 'string' ? target.trim() : '';
  const tcp = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})\/?$/.exec(text);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port >= 1 && port <= 65535) return { kind: 'tcp', host: tcp[1].replace(/^\[|\]$/g, ''), port };
  }
  if (/^serial:[^?]/.test(text)) {
    const serial = parseSerialUri(text);
    if (!('problem' in serial)) return { kind: 'serial', path: serial.path, settings: serial.settings };
    throw new ProtocolError(
      'printer.bad_target',
      `${JSON.stringify(target)} is not a serial printer target: ${serial.problem}.`,
      { subject: 'receipt.printer' },
    );
  }
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
      return new SerialPrinterOutput(target, parsed.path, parsed.settings, options);
    case 'file':
      return new FilePrinterOutput(target, parsed.path);
  }
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
