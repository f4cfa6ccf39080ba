/**
 * The pass-through on real serial lines: two socat pseudo-terminal pairs stand in for the two cables
 * (DESIGN.md "Testing with real parts"):
 *
 *   test as register ⇄ [pty pair A] ⇄ SerialPassThrough ⇄ [pty pair B] ⇄ test as display
 *
 * Without socat these tests skip on a developer's machine and FAIL under CI=true
 * (test/support/prerequisites.ts).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SerialPort } from 'serialport';
import { systemPrerequisites } from '../../../test/support/prerequisites';
import { FakeClock } from '../../protocol/clock';
import { TransportError } from '../../protocol/errors';
import { DEFAULT_SERIAL_SETTINGS } from '../../printer/serial-settings';
import { SerialPassThrough } from './serial-io';

const serialSys = systemPrerequisites(['socat']);

/** A socat pseudo-terminal pair: `near` is what the plugin opens, `far` the register's or display's end. */
class PtyPair {
  readonly near: string;
  readonly far: string;
  private socat: ChildProcess | undefined;

  constructor(dir: string, name: string) {
    this.near = path.join(dir, `tty${name}`);
    this.far = path.join(dir, `tty${name}-far`);
  }

  async start(): Promise<void> {
    this.socat = spawn('socat', [`pty,raw,echo=0,link=${this.near}`, `pty,raw,echo=0,link=${this.far}`], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 250 && !(fs.existsSync(this.near) && fs.existsSync(this.far)); i++) {
      await sleep(20);
    }
    if (!fs.existsSync(this.near) || !fs.existsSync(this.far))
      throw new Error('socat made no pty pair in 5 s');
  }

  async stop(): Promise<void> {
    const s = this.socat;
    if (!s || s.exitCode !== null || s.signalCode !== null) return;
    const exited = new Promise((r) => s.once('exit', r));
    s.kill();
    await exited;
    for (let i = 0; i < 100 && (fs.existsSync(this.near) || fs.existsSync(this.far)); i++) await sleep(10);
  }
}

/** One far end (the register or the display), opened with serialport, collecting what it receives. */
class FarEnd {
  private readonly chunks: Buffer[] = [];
  private constructor(readonly port: SerialPort) {
    port.on('data', (c: Buffer) => this.chunks.push(c));
    port.on('error', () => undefined);
  }

  static async open(device: string): Promise<FarEnd> {
    const port = new SerialPort({ path: device, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    return new FarEnd(port);
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  async write(bytes: Uint8Array): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.port.write(Buffer.from(bytes), (e) => (e ? reject(e) : resolve())),
    );
    await new Promise<void>((resolve, reject) => this.port.drain((e) => (e ? reject(e) : resolve())));
  }

  async waitFor(count: number, ms = 8_000): Promise<Buffer> {
    const until = Date.now() + ms;
    while (this.received.length < count && Date.now() < until) await sleep(10);
    if (this.received.length < count)
      throw new Error(`got ${this.received.length} of ${count} bytes in ${ms} ms`);
    return this.received;
  }

  async close(): Promise<void> {
    if (this.port.isOpen) await new Promise((r) => this.port.close(r));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Random chunk sizes from 1 to 2048 bytes covering `total`. */
function randomChunks(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length;) {
    const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * 2048));
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

serialSys.describe('serial-display pass-through on socat pseudo-terminal pairs', () => {
  jest.setTimeout(30_000);
  let dir: string;
  let registerPair: PtyPair;
  let displayPair: PtyPair;
  let register: FarEnd | undefined;
  let display: FarEnd | undefined;
  let io: SerialPassThrough | undefined;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payconnect-serial-display-'));
    registerPair = new PtyPair(dir, 'REGISTER');
    displayPair = new PtyPair(dir, 'DISPLAY');
    await Promise.all([registerPair.start(), displayPair.start()]);
  });

  afterEach(async () => {
    await io?.stop();
    io = undefined;
    await register?.close();
    await display?.close();
    register = display = undefined;
    await registerPair.stop();
    await displayPair.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes 64 KiB of random binary, sent in random chunks, on to the display byte for byte and in order', async () => {
    const tapped: Buffer[] = [];
    io = new SerialPassThrough(
      { input: registerPair.near, display: displayPair.near, line: { ...DEFAULT_SERIAL_SETTINGS } },
      { clock: new FakeClock(), onChunk: (b) => tapped.push(Buffer.from(b)) },
    );
    await io.start();
    register = await FarEnd.open(registerPair.far);
    display = await FarEnd.open(displayPair.far);
    const data = randomBytes(64 * 1024);
    for (const chunk of randomChunks(data)) await register.write(chunk);
    const got = await display.waitFor(data.length);
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
    expect(Buffer.concat(tapped).equals(data)).toBe(true);
    expect(io.stats).toMatchObject({ bytesIn: data.length, bytesToDisplay: data.length, bytesDropped: 0 });
  });

  it('keeps the display fed when the decoder throws on every chunk', async () => {
    const errors: Error[] = [];
    io = new SerialPassThrough(
      { input: registerPair.near, display: displayPair.near, line: { ...DEFAULT_SERIAL_SETTINGS } },
      {
        clock: new FakeClock(),
        onChunk: () => {
          throw new Error('decoder bug');
        },
        onError: (e) => errors.push(e),
      },
    );
    await io.start();
    register = await FarEnd.open(registerPair.far);
    display = await FarEnd.open(displayPair.far);
    const data = randomBytes(8 * 1024);
    for (const chunk of randomChunks(data)) await register.write(chunk);
    expect((await display.waitFor(data.length)).equals(data)).toBe(true);
    expect(io.stats.tapErrors).toBeGreaterThan(0);
    expect(errors.every((e) => e.message === 'decoder bug')).toBe(true);
  });

  it('slows the register down to a display that stops reading, and loses nothing', async () => {
    io = new SerialPassThrough(
      { input: registerPair.near, display: displayPair.near, line: { ...DEFAULT_SERIAL_SETTINGS } },
      { clock: new FakeClock(), onChunk: () => undefined },
    );
    await io.start();
    register = await FarEnd.open(registerPair.far);
    display = await FarEnd.open(displayPair.far);
    display.port.pause(); // the display holds off: nothing more is read from its line
    const data = randomBytes(1024 * 1024);
    const sending = register.write(data);
    await until(() => io!.stats.heldForDisplay > 0, 'reading to pause for the display', 8_000);
    await sleep(200);
    // What the pass-through holds is bounded by the display port's queue, not the megabyte sent.
    expect(io.displayBacklog).toBeLessThan(256 * 1024);
    expect(io.stats.bytesIn).toBeLessThan(data.length);
    display.port.resume();
    await sending;
    expect((await display.waitFor(data.length, 15_000)).equals(data)).toBe(true);
  });

  it('passes what the display answers back to the register', async () => {
    io = new SerialPassThrough(
      { input: registerPair.near, display: displayPair.near, line: { ...DEFAULT_SERIAL_SETTINGS } },
      { clock: new FakeClock(), onChunk: () => undefined },
    );
    await io.start();
    register = await FarEnd.open(registerPair.far);
    display = await FarEnd.open(displayPair.far);
    const status = Buffer.from([0x10, 0x04, 0x01, 0x00, 0xff, 0x12]);
    await display.write(status);
    expect((await register.waitFor(status.length)).equals(status)).toBe(true);
    expect(io.stats.bytesBack).toBe(status.length);
  });

  it('reads and decodes without a display port', async () => {
    const tapped: Buffer[] = [];
    io = new SerialPassThrough(
      { input: registerPair.near, line: { ...DEFAULT_SERIAL_SETTINGS } },
      { clock: new FakeClock(), onChunk: (b) => tapped.push(Buffer.from(b)) },
    );
    await io.start();
    register = await FarEnd.open(registerPair.far);
    await register.write(Buffer.from('TOTAL 12.50\r\n'));
    await until(() => Buffer.concat(tapped).toString() === 'TOTAL 12.50\r\n', 'the tapped bytes');
    expect(io.stats.bytesDropped).toBe(0);
  });

  it('refuses to start on a port that does not exist, naming it', async () => {
    const missing = path.join(dir, 'ttyNOPE');
    io = new SerialPassThrough(
      { input: missing, line: { ...DEFAULT_SERIAL_SETTINGS } },
      { clock: new FakeClock(), onChunk: () => undefined },
    );
    const e = await io.start().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('serial_display.no_such_port');
    expect((e as Error).message).toContain(missing);
  });

  it('reports a vanished register port, reopens it through the clock, and passes bytes again', async () => {
    const clock = new FakeClock();
    const errors: Error[] = [];
    io = new SerialPassThrough(
      {
        input: registerPair.near,
        display: displayPair.near,
        line: { ...DEFAULT_SERIAL_SETTINGS },
        reopenMs: 500,
      },
      { clock, onChunk: () => undefined, onError: (e) => errors.push(e) },
    );
    await io.start();
    display = await FarEnd.open(displayPair.far);

    await registerPair.stop(); // the cable is pulled: the pty pair is gone
    await until(() => io!.stats.portsLost === 1, 'the lost port to be noticed');
    const lost = errors.find((e) => (e as TransportError).code === 'serial_display.port_lost');
    expect(lost).toBeInstanceOf(TransportError);
    expect(lost!.message).toContain(registerPair.near);
    expect(io.isOpen('input')).toBe(false);

    // Still gone: an attempt fails, is reported, and another is scheduled.
    clock.advance(500);
    await until(
      () => errors.some((e) => (e as TransportError).code === 'serial_display.no_such_port'),
      'the failed reopen',
    );
    expect(io.stats.reopenAttempts).toBe(1);

    await registerPair.start(); // plugged back in
    clock.advance(500);
    await until(() => io!.isOpen('input'), 'the register port to be reopened');
    expect(io.stats.reopened).toBe(1);

    register = await FarEnd.open(registerPair.far);
    const data = randomBytes(4096);
    await register.write(data);
    expect((await display.waitFor(data.length)).equals(data)).toBe(true);
  });

  it('keeps reading from the register while the display port is gone, and feeds it again once back', async () => {
    const clock = new FakeClock();
    const tapped: Buffer[] = [];
    io = new SerialPassThrough(
      {
        input: registerPair.near,
        display: displayPair.near,
        line: { ...DEFAULT_SERIAL_SETTINGS },
        reopenMs: 500,
      },
      { clock, onChunk: (b) => tapped.push(Buffer.from(b)), onError: () => undefined },
    );
    await io.start();
    register = await FarEnd.open(registerPair.far);

    await displayPair.stop();
    await until(() => io!.stats.portsLost === 1, 'the lost display to be noticed');
    await register.write(Buffer.from('while away'));
    await until(() => Buffer.concat(tapped).toString() === 'while away', 'the decoder to get the bytes');
    expect(io.stats.bytesDropped).toBe(10);

    await displayPair.start();
    clock.advance(500);
    await until(() => io!.isOpen('display'), 'the display port to be reopened');
    display = await FarEnd.open(displayPair.far);
    await register.write(Buffer.from('back'));
    expect((await display.waitFor(4)).toString()).toBe('back');
  });
});
