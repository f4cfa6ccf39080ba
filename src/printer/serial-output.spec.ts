/**
 * The serial printer output on a real serial line: a kernel pseudo-terminal pair from socat stands in for
 * the cable (DESIGN.md "Testing with real parts"). The output opens one end through serialport; the test
 * reads the other end and compares byte for byte, and reads the line settings the port was left with back
 * from the kernel with `stty -F`. Without socat these tests skip on a developer's machine and FAIL under
 * CI=true (test/support/prerequisites.ts).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { SerialPort } from 'serialport';
import { systemPrerequisites } from '../../test/support/prerequisites';
import { FakeClock } from '../protocol/clock';
import { TransportError } from '../protocol/errors';
import { decodeEscPos } from './escpos-decode';
import { openPrinterOutput } from './outputs';
import { ReceiptData } from './receipt';
import { renderReceipt } from './render';
import {
  SerialBinding,
  SerialOpenOptions,
  SerialPrinterOutput,
  describeLine,
  wireTimeMs,
} from './serial-output';
import { DEFAULT_SERIAL_SETTINGS, SerialLineSettings, serialTarget } from './serial-settings';

const sys = systemPrerequisites(['socat', 'stty']);

const data: ReceiptData = {
  storeName: '好又多咖啡',
  registerId: 'R1',
  orderId: 'A-77001',
  amount: { value: 4250, currency: 'CNY' },
  method: 'WeChat Pay',
  paymentId: 'pay_77001',
  time: '2026-05-01T10:15:00+08:00',
};

/** A socat pseudo-terminal pair: `port` is the printer's end (what the output opens), `far` the printer. */
class PtyPair {
  readonly port: string;
  readonly far: string;
  private socat: ChildProcess | undefined;

  constructor(dir: string) {
    this.port = path.join(dir, 'ttyPRINTER');
    this.far = path.join(dir, 'ttyFAR');
  }

  async start(): Promise<void> {
    this.socat = spawn(
      'socat',
      ['-d', '-d', `pty,raw,echo=0,link=${this.port}`, `pty,raw,echo=0,link=${this.far}`],
      {
        stdio: 'ignore',
      },
    );
    for (let i = 0; i < 250 && !(fs.existsSync(this.port) && fs.existsSync(this.far)); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!fs.existsSync(this.port) || !fs.existsSync(this.far))
      throw new Error('socat made no pty pair in 5 s');
  }

  /** The far end's reader: every byte the printer would get, as it arrives. */
  reader(): FarEnd {
    return new FarEnd(this.far);
  }

  /** `stty -F` of the output's end: the settings the kernel has for that line. */
  stty(): string {
    const r = spawnSync('stty', ['-F', this.port, '-a'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`stty -F ${this.port} -a failed: ${r.stderr}`);
    return r.stdout;
  }

  async stop(): Promise<void> {
    const s = this.socat;
    if (!s || s.exitCode !== null) return;
    const exited = new Promise((r) => s.once('exit', r));
    s.kill();
    await exited;
  }
}

class FarEnd {
  private readonly chunks: Buffer[] = [];
  private readonly stream: tty.ReadStream;
  private waiter: { count: number; resolve: () => void } | undefined;

  constructor(device: string) {
    const fd = fs.openSync(device, fs.constants.O_RDONLY | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
    this.stream = new tty.ReadStream(fd);
    this.stream.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      if (this.waiter && this.received.length >= this.waiter.count) this.waiter.resolve();
    });
    this.stream.on('error', () => undefined);
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Resolves once `count` bytes are in, or rejects after 4 s (within the test's 5) saying how many did. */
  async waitFor(count: number): Promise<Buffer> {
    if (this.received.length < count) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the far end got ${this.received.length} of ${count} bytes in 4 s`)),
          4_000,
        );
        this.waiter = {
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
      });
    }
    return this.received;
  }

  /** Stops reading (the pty's buffers then fill up, as a printer that stopped taking bytes). */
  pause(): void {
    this.stream.pause();
  }

  close(): void {
    this.stream.destroy();
  }
}

/** The port can be opened and locked by someone else: the output did not keep it. */
async function portIsFree(device: string): Promise<boolean> {
  const other = new SerialPort({ path: device, baudRate: 9600, autoOpen: false });
  const opened = await new Promise<Error | null>((resolve) => other.open(resolve));
  if (opened) return false;
  await new Promise((resolve) => other.close(resolve));
  return true;
}

sys.describe('serial: printer output on a socat pseudo-terminal pair', () => {
  let dir: string;
  let pair: PtyPair;
  let far: FarEnd | undefined;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payconnect-serial-'));
    pair = new PtyPair(dir);
    await pair.start();
  });

  afterEach(async () => {
    far?.close();
    far = undefined;
    await pair.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // The kernel keeps a pty's termios while socat holds the pair, so `stty -F` after the print shows what
  // serialport set: speed, stop bits and flow control (socat leaves the line at 38400, so every speed below
  // is a change the output made). Linux's pty driver forces CS8 and no parity whatever it is told
  // (drivers/tty/pty.c, pty_set_termios), so data bits and parity are checked where serialport hands them to
  // its native binding, which sets termios from exactly these options on a real UART.
  const cases: [string, SerialLineSettings, string[]][] = [
    ['the defaults, 9600 8N1', { ...DEFAULT_SERIAL_SETTINGS }, ['-cstopb', '-crtscts', '-ixon', '-ixoff']],
    [
      '19200 8E2 with RTS/CTS',
      { baudRate: 19200, dataBits: 8, parity: 'even', stopBits: 2, flowControl: 'rtscts' },
      ['cstopb', 'crtscts', '-ixon', '-ixoff'],
    ],
    [
      '4800 7O1 with XON/XOFF',
      { baudRate: 4800, dataBits: 7, parity: 'odd', stopBits: 1, flowControl: 'xonxoff' },
      ['-cstopb', '-crtscts', 'ixon', 'ixoff'],
    ],
    [
      '115200 8N1',
      { baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none' },
      ['-cstopb', '-crtscts', '-ixon', '-ixoff'],
    ],
  ];

  it.each(cases)('prints a receipt byte for byte and sets the line to %s', async (_, settings, flags) => {
    expect(pair.stty()).toMatch(/^speed 38400 baud;/);
    far = pair.reader();
    const target = serialTarget(pair.port, settings);
    const opened: SerialOpenOptions[] = [];
    const real = SerialPort.binding as unknown as SerialBinding;
    const binding: SerialBinding = {
      list: () => real.list(),
      open: (options) => {
        opened.push({ ...options });
        return real.open(options);
      },
    };
    const output = openPrinterOutput(target, { binding });
    expect(output).toBeInstanceOf(SerialPrinterOutput);
    expect(output.target).toBe(target);
    // 7 data bits cannot carry GB18030 (the manifest refuses it); on a pty every bit passes, on a real line
    // the 8th would be lost, so that case prints a cp437 receipt.
    const encoding = settings.dataBits === 7 ? 'cp437' : 'gb18030';
    const bytes = renderReceipt(data, { width: 32, encoding });
    await output.write(bytes);
    const got = await far.waitFor(bytes.length);
    expect(got.equals(Buffer.from(bytes))).toBe(true);
    const decoded = decodeEscPos(got, { encoding });
    expect(decoded.text).toContain('A-77001');
    expect(decoded.qr).toEqual(['pay_77001']);

    const stty = pair.stty();
    expect(stty).toMatch(new RegExp(`^speed ${settings.baudRate} baud;`));
    const words = stty.split(/[\s;]+/);
    for (const flag of flags) expect(words).toContain(flag);
    expect(opened).toEqual([
      expect.objectContaining({
        path: pair.port,
        baudRate: settings.baudRate,
        dataBits: settings.dataBits,
        parity: settings.parity,
        stopBits: settings.stopBits,
        rtscts: settings.flowControl === 'rtscts',
        xon: settings.flowControl === 'xonxoff',
        xoff: settings.flowControl === 'xonxoff',
      }),
    ]);
    // The port is let go after each receipt.
    await expect(portIsFree(pair.port)).resolves.toBe(true);
  });

  it('sends receipts one after another, in order, opening the port for each', async () => {
    far = pair.reader();
    const output = openPrinterOutput(`serial:${pair.port}`);
    const first = renderReceipt({ ...data, orderId: 'A-1' }, { width: 42, encoding: 'gb18030' });
    const second = renderReceipt({ ...data, orderId: 'A-2' }, { width: 42, encoding: 'gb18030' });
    await output.write(first);
    // On a real line the drain means the bytes have left the UART. A pty's drain returns once they are in
    // socat's side, and serialport's open flushes the line (tcflush), which on a pty also drops what socat
    // has not read yet: so the second receipt goes once the far end has the first, as on a real line.
    expect((await far.waitFor(first.length)).equals(Buffer.from(first))).toBe(true);
    await output.write(second);
    const got = await far.waitFor(first.length + second.length);
    expect(got.equals(Buffer.concat([first, second]))).toBe(true);
    expect(pair.stty()).toMatch(/^speed 9600 baud;/);
  });

  it('sends a large receipt whole (200 KB: a logo as a raster image)', async () => {
    far = pair.reader();
    const big = Buffer.alloc(200 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 0xff;
    await openPrinterOutput(serialTarget(pair.port, { ...DEFAULT_SERIAL_SETTINGS, baudRate: 115200 })).write(
      big,
    );
    const got = await far.waitFor(big.length);
    expect(got.length).toBe(big.length);
    expect(got.equals(big)).toBe(true);
  });

  it('a port another program holds is printer.port_busy naming the device; it prints once the port is free', async () => {
    far = pair.reader();
    const holder = new SerialPort({ path: pair.port, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => holder.open((e) => (e ? reject(e) : resolve())));
    const output = openPrinterOutput(`serial:${pair.port}`);
    let error: unknown;
    try {
      error = await output.write(Buffer.from('first try\n')).catch((e: unknown) => e);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ code: 'printer.port_busy', subject: `serial:${pair.port}` });
    expect((error as Error).message).toContain(
      `Printer serial:${pair.port} (9600 8N1): ${pair.port} is in use by another program`,
    );
    expect((error as Error).message).toContain('Close that program');
    // What the print queue's retry does: the same write again.
    await output.write(Buffer.from('retry\n'));
    expect((await far.waitFor(6)).toString()).toBe('retry\n');
  });

  it('a line that stops taking bytes is printer.unreachable after the timeout plus twice the wire time, and the port is let go', async () => {
    far = pair.reader();
    far.pause(); // the printer stops taking bytes: the pty's buffers fill and the drain never ends
    const clock = new FakeClock();
    const settings = { ...DEFAULT_SERIAL_SETTINGS, baudRate: 115200 as const };
    const output = openPrinterOutput(serialTarget(pair.port, settings), { clock });
    const bytes = Buffer.alloc(2 * 1024 * 1024, 0x41);
    const result = output.write(bytes).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 500)); // real time: the port opens and the buffers fill
    const limit = 5_000 + 2 * wireTimeMs(bytes.length, settings);
    expect(limit).toBe(5_000 + 2 * Math.ceil((bytes.length * 10 * 1000) / 115200));
    clock.advance(limit - 1);
    await new Promise((r) => setTimeout(r, 50));
    clock.advance(1);
    const error = await result;
    expect(error).toMatchObject({ code: 'printer.unreachable', subject: output.target });
    expect((error as Error).message).toBe(
      `Printer serial:${pair.port} (115200 8N1) is unreachable (the receipt was not sent within ${Math.ceil(limit / 1000)} s; ` +
        'with flow control on, check that the cable carries it): is the printer on and connected?',
    );
    // The abandoned port is flushed and closed, so the retry can open it.
    let free = false;
    for (let i = 0; i < 100 && !free; i++) {
      free = await portIsFree(pair.port);
      if (!free) await new Promise((r) => setTimeout(r, 50));
    }
    expect(free).toBe(true);
  });

  it('a port that went away (socat ended: the adapter unplugged) is printer.unreachable naming the device', async () => {
    await pair.stop();
    const target = `serial:${pair.port}`;
    const error = await openPrinterOutput(target)
      .write(Buffer.from('x'))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'printer.unreachable', subject: target });
    expect((error as Error).message).toContain(
      `Printer serial:${pair.port} (9600 8N1) is unreachable (cannot open ${pair.port}`,
    );
    expect((error as Error).message).toContain('is the printer on and connected?');
  });
});

describe(describeLine.name, () => {
  it('writes the line as printer manuals do', () => {
    expect(describeLine(DEFAULT_SERIAL_SETTINGS)).toBe('9600 8N1');
    expect(
      describeLine({ baudRate: 19200, dataBits: 7, parity: 'even', stopBits: 2, flowControl: 'rtscts' }),
    ).toBe('19200 7E2 rtscts');
    expect(describeLine({ ...DEFAULT_SERIAL_SETTINGS, parity: 'odd', flowControl: 'xonxoff' })).toBe(
      '9600 8O1 xonxoff',
    );
  });
});
