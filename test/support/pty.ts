/**
 * Real serial lines for tests and benchmarks (DESIGN.md "Testing with real parts"): a socat pseudo-terminal
 * pair stands in for a cable. `near` is the end the code under test opens (the plugin's COM port), `far` the
 * other device's end (the register, the display, the printer). Both are symlinks in a folder of the test's.
 *
 * Tests check `systemPrerequisites(['socat'])` (test/support/prerequisites.ts) before using this, so that
 * a missing socat skips on a developer's machine and fails under CI=true.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SerialPort } from 'serialport';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PtyPair {
  readonly near: string;
  readonly far: string;
  private socat: ChildProcess | undefined;

  /** `name` makes the links `<dir>/tty<name>` (near) and `<dir>/tty<name>-far`. */
  constructor(dir: string, name: string) {
    this.near = path.join(dir, `tty${name}`);
    this.far = path.join(dir, `tty${name}-far`);
  }

  /** Makes a pair in `dir` and waits until both ends exist (at most 5 s). */
  static async open(dir: string, name: string): Promise<PtyPair> {
    const pair = new PtyPair(dir, name);
    await pair.start();
    return pair;
  }

  async start(): Promise<void> {
    this.socat = spawn('socat', [`pty,raw,echo=0,link=${this.near}`, `pty,raw,echo=0,link=${this.far}`], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 250 && !(fs.existsSync(this.near) && fs.existsSync(this.far)); i++) await sleep(20);
    if (!fs.existsSync(this.near) || !fs.existsSync(this.far)) {
      this.socat.kill();
      throw new Error(`socat made no pty pair at ${this.near} in 5 s (is socat installed?)`);
    }
  }

  /** Ends socat (both ends vanish, as a cable pulled out) and waits for the links to go. */
  async stop(): Promise<void> {
    const s = this.socat;
    if (!s || s.exitCode !== null || s.signalCode !== null) return;
    const exited = new Promise((r) => s.once('exit', r));
    s.kill();
    await exited;
    for (let i = 0; i < 100 && (fs.existsSync(this.near) || fs.existsSync(this.far)); i++) await sleep(10);
  }
}

/** One far end opened with serialport, collecting what it receives and writing as the device would. */
export class FarEnd {
  private readonly chunks: Buffer[] = [];
  /** Each chunk as it arrived: `performance.now()` ms and its length, in order. */
  readonly arrivals: { at: number; length: number }[] = [];
  private constructor(readonly port: SerialPort) {
    port.on('data', (c: Buffer) => {
      this.arrivals.push({ at: performance.now(), length: c.length });
      this.chunks.push(c);
    });
    port.on('error', () => undefined);
  }

  /** When the byte at `offset` of everything received arrived (performance.now() ms), or undefined. */
  arrivedAt(offset: number): number | undefined {
    let end = 0;
    for (const a of this.arrivals) {
      end += a.length;
      if (offset < end) return a.at;
    }
    return undefined;
  }

  static async open(device: string, baudRate = 9600): Promise<FarEnd> {
    const port = new SerialPort({ path: device, baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    return new FarEnd(port);
  }

  /** Every byte received so far. */
  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Writes and waits until the bytes left (a string is taken as latin1: one char, one byte). */
  async write(bytes: Uint8Array | string): Promise<void> {
    const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
    await new Promise<void>((resolve, reject) => this.port.write(buf, (e) => (e ? reject(e) : resolve())));
    await new Promise<void>((resolve, reject) => this.port.drain((e) => (e ? reject(e) : resolve())));
  }

  /** Resolves with everything received once at least `count` bytes are in; rejects after `ms` saying how many. */
  async waitFor(count: number, ms = 4_000): Promise<Buffer> {
    const end = Date.now() + ms;
    while (this.received.length < count) {
      if (Date.now() > end)
        throw new Error(`the far end got ${this.received.length} of ${count} bytes in ${ms} ms`);
      await sleep(5);
    }
    return this.received;
  }

  async close(): Promise<void> {
    if (this.port.isOpen) await new Promise((r) => this.port.close(r));
  }
}
