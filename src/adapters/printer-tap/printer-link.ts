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
import type { Writable } from 'node:stream';
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

/**
 * A link over a Node stream (a socket, a file): back-pressure through 'drain'; an error marks the printer
 * down, says why once, and releases whoever waits to write.
 */
abstract class StreamLink implements PrinterLink {
  abstract readonly answersStatus: boolean;
  up = true;
  private waiting: (() => void)[] = [];

  constructor(
    private readonly out: Writable,
    events: LinkEvents,
  ) {
    out.on('drain', () => this.release());
    out.on('error', (e: NodeJS.ErrnoException) => {
      this.up = false;
      events.onDown(e.code ?? e.message);
      this.release();
    });
  }

  write(chunk: Buffer): boolean {
    return this.out.write(chunk);
  }

  whenWritable(f: () => void): void {
    if (!this.up) f();
    else this.waiting.push(f);
  }

  end(): void {
    this.out.end();
  }

  destroy(): void {
    this.out.destroy();
  }

  protected release(): void {
    for (const f of this.waiting.splice(0)) f();
  }
}

export class TcpLink extends StreamLink {
  readonly answersStatus = true;
  closed = false;
  private ended = false;

  constructor(target: TcpEndpoint, events: LinkEvents) {
    const socket = net.connect({ host: target.host, port: target.port });
    super(socket, events);
    socket.setNoDelay(true);
    socket.on('connect', () => events.onUp?.());
    socket.on('data', (answer: Buffer) => events.onAnswer(answer));
    socket.on('close', () => {
      // Closed while the register was still printing: what follows is read, but not printed.
      if (!this.ended && this.up) events.onDown('it closed the connection during a job');
      this.up = false;
      this.closed = true;
      this.release();
      events.onClosed?.();
    });
  }

  /** Half-closes towards the printer; the printer's answers are still relayed until it closes. */
  override end(): void {
    this.ended = true;
    super.end();
  }

  override destroy(): void {
    this.ended = true;
    super.destroy();
  }
}

export class FileLink extends StreamLink {
  readonly answersStatus = false;

  constructor(file: string, events: LinkEvents) {
    // Appended, never truncated: a capture file keeps every job; a device file ignores the flag.
    const stream = fs.createWriteStream(file, { flags: 'a' });
    super(stream, events);
    stream.on('open', () => events.onUp?.());
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
