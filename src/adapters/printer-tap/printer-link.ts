/**
 * The tap's side towards the real printer (`options.forward`), one small interface over three links:
 *
 * - `TcpLink`: one connection to a network printer's raw port. With a TCP listen there is one per
 *   register connection (as the register's own connection to the printer was); with a serial listen one
 *   per burst of bytes, ended when the register has been quiet for `jobIdleMs`.
 * - `FileLink`: bytes appended to a file or a printer-class device (`/dev/usb/lp0`), opened per burst like
 *   a TcpLink. Nothing answers status queries through it; the tap answers them itself.
 * - `SerialLink`: the serial printer's port, kept open by the adapter for its whole run (a serial line has
 *   no connections) and shared by every register stream one job at a time (JobGate).
 *
 * A link whose printer is off (connection refused, device missing, port gone) is `up: false`: the
 * register's bytes are still read and captured but not printed, and the link says so once through
 * `onDown`. Writes never throw; back-pressure is `write() === false` then `whenWritable`.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { SerialLine } from './serial-line';
import type { TcpEndpoint } from './printer-tap.options';

export interface PrinterLink {
  /** False once the printer is known to be off or gone: bytes are not written. */
  readonly up: boolean;
  /** True when the printer itself answers status queries (tcp, serial); false for a file. */
  readonly answersStatus: boolean;
  /** Writes the bytes; false when the caller should wait for whenWritable before writing more. */
  write(chunk: Buffer): boolean;
  /** Calls `f` once the printer took the backlog, or the link went down (nothing more to wait for). */
  whenWritable(f: () => void): void;
  /** The register is done with this link (its connection ended, or it went quiet). */
  end(): void;
  /** Drops the link at once (the adapter stops). */
  destroy(): void;
}

export interface LinkEvents {
  /** Bytes from the printer (status answers) for the register. */
  onAnswer(bytes: Buffer): void;
  /** The printer is off, refused, or hung up before the register was done; why, in a few words. */
  onDown(reason: string): void;
  /** The printer answered (connected, opened). */
  onUp?(): void;
  /** The link is closed for good (a TCP printer closed its side). */
  onClosed?(): void;
}

/** Runs the waiting `whenWritable` callbacks once: on drain, or when the link went down or closed. */
class Waiters {
  private list: (() => void)[] = [];
  add(f: () => void): void {
    this.list.push(f);
  }
  release(): void {
    for (const f of this.list.splice(0)) f();
  }
}

export class TcpLink implements PrinterLink {
  readonly answersStatus = true;
  up = true;
  closed = false;
  private readonly socket: net.Socket;
  private readonly waiters = new Waiters();
  private ended = false;

  constructor(target: TcpEndpoint, events: LinkEvents) {
    const socket = net.connect({ host: target.host, port: target.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => events.onUp?.());
    socket.on('data', (answer: Buffer) => events.onAnswer(answer));
    socket.on('drain', () => this.waiters.release());
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.up = false;
      events.onDown(e.code ?? e.message);
      this.waiters.release();
    });
    socket.on('close', () => {
      // Closed while the register was still printing: what follows is read, but not printed.
      if (!this.ended && this.up) events.onDown('it closed the connection during a job');
      this.up = false;
      this.closed = true;
      this.waiters.release();
      events.onClosed?.();
    });
  }

  write(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  whenWritable(f: () => void): void {
    if (!this.up) f();
    else this.waiters.add(f);
  }

  /** Half-closes towards the printer; the printer's answers are still relayed until it closes. */
  end(): void {
    this.ended = true;
    this.socket.end();
  }

  destroy(): void {
    this.ended = true;
    this.socket.destroy();
  }
}

export class FileLink implements PrinterLink {
  readonly answersStatus = false;
  up = true;
  private readonly stream: fs.WriteStream;
  private readonly waiters = new Waiters();

  constructor(file: string, events: LinkEvents) {
    // Appended, never truncated: a capture file keeps every job; a device file ignores the flag.
    this.stream = fs.createWriteStream(file, { flags: 'a' });
    this.stream.on('open', () => events.onUp?.());
    this.stream.on('drain', () => this.waiters.release());
    this.stream.on('error', (e: NodeJS.ErrnoException) => {
      this.up = false;
      events.onDown(e.code ?? e.message);
      this.waiters.release();
    });
  }

  write(chunk: Buffer): boolean {
    return this.stream.write(chunk);
  }

  whenWritable(f: () => void): void {
    if (!this.up) f();
    else this.waiters.add(f);
  }

  end(): void {
    this.stream.end();
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/** The shared serial printer port as a link; `end` leaves the port open for the next job. */
export class SerialLink implements PrinterLink {
  readonly answersStatus = true;

  constructor(
    private readonly line: SerialLine,
    private readonly onWriteError: (e: Error) => void,
  ) {}

  get up(): boolean {
    return this.line.isOpen;
  }

  write(chunk: Buffer): boolean {
    return this.line.write(chunk, (e) => {
      if (e) this.onWriteError(e);
    });
  }

  whenWritable(f: () => void): void {
    this.line.whenWritable(f);
  }

  end(): void {}

  destroy(): void {}
}
