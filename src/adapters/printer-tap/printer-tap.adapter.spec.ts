/**
 * The printer tap over real TCP sockets on 127.0.0.1, both sides: a register client printing to the tap,
 * and a printer (FakeTcpPrinter, or a listener of our own that answers status queries) behind it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { waitFor } from '../../../test/support/wait';
import { FakeTcpPrinter } from '../../printer/fake-tcp-printer';
import { fromHex } from '../../printer/hex';
import { SystemClock } from '../../protocol/clock';
import { PayconnectError } from '../../protocol/errors';
import { FieldProblems } from '../field-problems';
import { CapturedOrder, RejectedInput } from '../host-adapter';
import {
  PrinterTapAdapter,
  PrinterTapManifest,
  StatusQueryScanner,
  createPrinterTapAdapter,
} from './printer-tap.adapter';
import {
  PrinterTapOptions,
  PrinterTapParseRules,
  validatePrinterTapOptions,
  validatePrinterTapParse,
} from './printer-tap.options';

const FIXTURES = path.join(__dirname, '../../../test/fixtures/printer-tap');
const fixture = (name: string): Buffer =>
  Buffer.from(fromHex(readFileSync(path.join(FIXTURES, name), 'utf8')));
const CHINESE = fixture('chinese-80mm.hex');
const ENGLISH = fixture('english-epson.hex');
const RASTER = fixture('raster-job.hex');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for a condition; the bound only detects a hang (the shared waitFor's 10 s), never a speed claim. */
async function until(what: string, cond: () => boolean): Promise<void> {
  await waitFor(what, () => cond() || undefined, 10_000, 5);
}

function split(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** A register's print connection to the tap. */
class Register {
  readonly replies: number[] = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => this.replies.push(...d));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static async connect(port: number): Promise<Register> {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new Register(socket);
  }

  /** Sends each piece as its own write, a moment apart, so they travel as separate segments. */
  async send(pieces: Buffer[]): Promise<void> {
    for (const piece of pieces) {
      this.socket.write(piece);
      await sleep(1);
    }
  }

  async reply(count: number): Promise<number[]> {
    await until(`${count} reply bytes`, () => this.replies.length >= count);
    return this.replies.splice(0, count);
  }

  /** Half-closes, like a spooler, and waits until the tap closes its side; resolves with the wait. */
  async finish(): Promise<number> {
    const t0 = Date.now();
    this.socket.end();
    await until('the tap to close the connection', () => this.closed);
    return Date.now() - t0;
  }
}

describe('printer-tap adapter (real TCP on 127.0.0.1)', () => {
  let adapter: PrinterTapAdapter;
  let printer: FakeTcpPrinter;
  let orders: CapturedOrder[];
  let rejects: RejectedInput[];
  let errors: Error[];
  const closers: (() => Promise<void>)[] = [];

  function rules(encoding: string, currency: string): PrinterTapParseRules {
    return validatePrinterTapParse({ encoding, currency }, FieldProblems.root()) as PrinterTapParseRules;
  }

  async function startTap(
    forward: string,
    more: Record<string, unknown> = {},
    parse = rules('gb18030', 'CNY'),
  ): Promise<number> {
    const p = FieldProblems.root();
    const options = validatePrinterTapOptions(
      { listen: 'tcp://127.0.0.1:0', forward, jobIdleMs: 200, ...more },
      p,
    );
    expect(p.all).toEqual([]);
    const manifest = {
      id: 'tap',
      name: 'tap',
      adapter: 'printer-tap',
      register: 'R1',
      dispatch: { mode: 'broadcast' },
      options,
      parse,
      writeBack: {},
    } as PrinterTapManifest;
    adapter = createPrinterTapAdapter(manifest, {
      baseDir: '/',
      clock: new SystemClock(),
      onError: (e) => errors.push(e),
    });
    await adapter.start({
      onOrder: async (o) => void orders.push(o),
      onReject: (r) => void rejects.push(r),
    });
    return adapter.port;
  }

  beforeEach(async () => {
    orders = [];
    rejects = [];
    errors = [];
    printer = new FakeTcpPrinter();
    await printer.listen();
  });
  afterEach(async () => {
    await adapter?.stop();
    await printer.close();
    for (const c of closers.splice(0)) await c();
  });

  it('forwards a Chinese receipt sent in 7-byte segments byte for byte and captures 应收', async () => {
    const port = await startTap(printer.target);
    const register = await Register.connect(port);
    await register.send(split(CHINESE, 7));
    const waited = await register.finish();
    await printer.waitForReceipts(1);
    expect(printer.receipts[0].equals(CHINESE)).toBe(true);
    await until('the order', () => orders.length === 1);
    expect(orders[0]).toEqual({
      orderId: '20261129-0042',
      registerId: 'R1',
      amount: { value: 8650, currency: 'CNY' },
      source: expect.stringMatching(/^tcp client 127\.0\.0\.1:\d+ job 1$/),
    });
    expect(rejects).toEqual([]);
    expect(waited).toBeLessThan(2000);
  });

  it('splits one connection into jobs at each cut: an English receipt and a raster job', async () => {
    const port = await startTap(printer.target, {}, rules('cp437', 'USD'));
    const register = await Register.connect(port);
    const both = Buffer.concat([ENGLISH, RASTER]);
    await register.send(split(both, 3));
    await until('the order and the rejection', () => orders.length === 1 && rejects.length === 1);
    expect(orders[0]).toMatchObject({ orderId: '10457', amount: { value: 1284, currency: 'USD' } });
    expect(rejects[0]).toEqual({
      subject: expect.stringMatching(/^tcp client 127\.0\.0\.1:\d+ job 2$/),
      code: 'printer_tap.raster_job',
      message: expect.stringContaining('raster job: no text to read'),
    });
    await register.finish();
    await printer.waitForReceipts(1);
    expect(printer.receipts[0].equals(both)).toBe(true);
    expect(adapter.stats()).toMatchObject({ jobs: 2, orders: 1, rejected: 1, rasterJobs: 1 });
  });

  it("relays the real printer's answer to a DLE EOT status query", async () => {
    // A printer that answers DLE EOT 1 with "online, drawer open" (0x16) and keeps what it gets.
    const got: Buffer[] = [];
    const answering = net.createServer((s) => {
      s.on('data', (d) => {
        got.push(d);
        if (d.includes(Buffer.from([0x10, 0x04, 0x01]))) s.write(Buffer.from([0x16]));
      });
      s.on('end', () => s.end());
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => answering.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => answering.close(() => r())));
    const port = await startTap(`tcp://127.0.0.1:${(answering.address() as net.AddressInfo).port}`);
    const register = await Register.connect(port);
    register.socket.write(Buffer.from([0x10, 0x04, 0x01]));
    expect(await register.reply(1)).toEqual([0x16]);
    await register.send(split(CHINESE, 11));
    await register.finish();
    expect(Buffer.concat(got).equals(Buffer.concat([Buffer.from([0x10, 0x04, 0x01]), CHINESE]))).toBe(true);
    await until('the order', () => orders.length === 1);
    expect(adapter.stats().statusAnswered).toBe(0);
  });

  it('answers status queries itself with forward: none, even split across segments', async () => {
    const port = await startTap('none');
    const register = await Register.connect(port);
    await register.send([Buffer.from([0x10]), Buffer.from([0x04, 0x01])]);
    expect(await register.reply(1)).toEqual([0x12]);
    await register.send([Buffer.from([0x1d, 0x72]), Buffer.from([0x01, 0x1b]), Buffer.from([0x76])]);
    expect(await register.reply(2)).toEqual([0x00, 0x00]);
    await register.send(split(CHINESE, 5));
    const waited = await register.finish();
    expect(waited).toBeLessThan(1000);
    await until('the order', () => orders.length === 1);
    expect(orders[0].amount.value).toBe(8650);
    expect(adapter.stats()).toMatchObject({ statusAnswered: 3, emptyJobs: 0 });
  });

  it('answers "offline" when the manifest says so', async () => {
    const port = await startTap('none', { status: 'offline' });
    const register = await Register.connect(port);
    register.socket.write(Buffer.from([0x10, 0x04, 0x01, 0x1d, 0x72, 0x01]));
    expect(await register.reply(2)).toEqual([0x1a, 0x0f]);
    await register.finish();
    expect(orders).toEqual([]);
    expect(rejects).toEqual([]);
  });

  it('keeps taking and reading jobs when the printer is off, and says so', async () => {
    const off = net.createServer();
    await new Promise<void>((r) => off.listen(0, '127.0.0.1', r));
    const offPort = (off.address() as net.AddressInfo).port;
    await new Promise<void>((r) => off.close(() => r()));
    const port = await startTap(`tcp://127.0.0.1:${offPort}`);
    const register = await Register.connect(port);
    await register.send(split(CHINESE, 13));
    const waited = await register.finish();
    expect(waited).toBeLessThan(2000);
    await until('the order', () => orders.length === 1);
    expect(orders[0].amount.value).toBe(8650);
    expect(errors.map((e) => (e as PayconnectError).code)).toEqual(['printer_tap.printer_off']);
    expect(errors[0].message).toContain(`printer tcp://127.0.0.1:${offPort} is off`);
    expect(adapter.stats().printerOff).toBe(1);
  });

  it('reports a printer that hangs up during a job, and still reads the job', async () => {
    const rude = net.createServer((s) => {
      s.once('data', () => s.destroy());
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => rude.close(() => r())));
    const port = await startTap(`tcp://127.0.0.1:${(rude.address() as net.AddressInfo).port}`);
    const register = await Register.connect(port);
    await register.send(split(CHINESE, 9));
    await register.finish();
    await until('the order', () => orders.length === 1);
    expect(errors.map((e) => (e as PayconnectError).code)).toEqual(['printer_tap.printer_off']);
  });

  it('forwards a 10 MB job unchanged but does not read it, and counts it', async () => {
    const port = await startTap(printer.target, { maxJobBytes: 1024 * 1024 });
    const big = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 8)) & 0xff;
    const register = await Register.connect(port);
    register.socket.write(big);
    await register.finish();
    await printer.waitForReceipts(1);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(printer.receipts[0].length).toBe(big.length);
    expect(sha(printer.receipts[0])).toBe(sha(big));
    await until('the rejection', () => rejects.length === 1);
    expect(rejects[0].code).toBe('printer_tap.job_too_large');
    expect(rejects[0].message).toContain(`${big.length} bytes`);
    expect(adapter.stats()).toMatchObject({ tooLarge: 1, bytesIn: big.length, bytesForwarded: big.length });
  }, 20_000);

  it('a printer slower than the idle time does not split the job it holds the register back for', async () => {
    // A printer that stops reading for 3 idle times once it has 1 MB (a logo being printed): the tap holds
    // the register back meanwhile, and that is no silence of the register's. One job, one rejection.
    let got = 0;
    const stalled: Buffer[] = [];
    const slow = net.createServer((s) => {
      s.on('data', (chunk: Buffer) => {
        stalled.push(chunk);
        got += chunk.length;
        if (got >= 1024 * 1024 && got - chunk.length < 1024 * 1024) {
          s.pause();
          setTimeout(() => s.resume(), 600);
        }
      });
      s.on('end', () => s.end());
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => slow.close(() => r())));
    const port = await startTap(`tcp://127.0.0.1:${(slow.address() as net.AddressInfo).port}`, {
      maxJobBytes: 1024 * 1024,
    });
    const big = Buffer.alloc(24 * 1024 * 1024, 0x41);
    const register = await Register.connect(port);
    register.socket.write(big);
    await until('the printer to take the whole job', () => got === big.length);
    await register.finish();
    await until('the rejection', () => rejects.length >= 1);
    await sleep(300);
    expect(rejects.map((r) => r.code)).toEqual(['printer_tap.job_too_large']);
    expect(rejects[0].message).toContain(`${big.length} bytes`);
    expect(adapter.stats()).toMatchObject({ tooLarge: 1, bytesIn: big.length, bytesForwarded: big.length });
  });

  it('ends a job without a cut after the idle time', async () => {
    const port = await startTap('none');
    const register = await Register.connect(port);
    const noCut = CHINESE.subarray(0, CHINESE.length - 4);
    await register.send(split(noCut, 64));
    await until('the order after idle', () => orders.length === 1);
    expect(register.closed).toBe(false);
    await register.finish();
    expect(orders).toHaveLength(1);
  });

  it('reports an unreadable receipt and keeps the next one', async () => {
    const port = await startTap('none');
    const register = await Register.connect(port);
    await register.send([Buffer.from('hello\n\x1dV\x00'), CHINESE]);
    await register.finish();
    await until('both jobs', () => rejects.length === 1 && orders.length === 1);
    expect(rejects[0].code).toBe('printer_tap.no_amount');
    expect(rejects[0].subject).toMatch(/ job 1$/);
    expect(orders[0].source).toMatch(/ job 2$/);
  });

  it('takes no orders after stop, refuses a second start, and writeBack does nothing', async () => {
    const port = await startTap('none');
    await expect(
      adapter.start({ onOrder: async () => undefined, onReject: () => undefined }),
    ).rejects.toThrow('already started');
    await adapter.writeBack({
      orderId: 'x',
      registerId: 'R1',
      status: 'paid',
      amount: { value: 1, currency: 'CNY' },
      decidedAt: '2026-01-01T00:00:00.000Z',
    });
    await adapter.stop();
    await expect(Register.connect(port)).rejects.toThrow();
    expect(orders).toEqual([]);
  });

  it('probe: fails naming options.listen when the port is taken; only warns about an absent printer', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => taken.close(() => r())));
    const takenPort = (taken.address() as net.AddressInfo).port;
    const tap = (listen: string, forward: string) =>
      new PrinterTapAdapter(
        {
          registerId: 'R1',
          ...(validatePrinterTapOptions({ listen, forward }, FieldProblems.root()) as PrinterTapOptions),
          rules: rules('gb18030', 'CNY'),
        },
        { clock: new SystemClock(), onError: (e) => errors.push(e) },
      );
    await expect(tap(`tcp://127.0.0.1:${takenPort}`, 'none').probe()).rejects.toMatchObject({
      code: 'printer_tap.listen_failed',
      subject: 'options.listen',
    });
    await tap('tcp://127.0.0.1:0', `tcp://127.0.0.1:${takenPort}`).probe();
    await tap('tcp://127.0.0.1:0', 'tcp://127.0.0.1:1').probe();
    expect(errors.map((e) => (e as PayconnectError).code)).toEqual(['printer_tap.printer_off']);
  });
});

describe('StatusQueryScanner', () => {
  it('finds the same queries however the stream is split (fuzz)', () => {
    const piece = fc.oneof(
      fc.uint8Array({ maxLength: 8 }),
      fc.constantFrom(
        Uint8Array.from([0x10, 0x04, 0x01]),
        Uint8Array.from([0x1d, 0x72, 0x01]),
        Uint8Array.from([0x1b, 0x76]),
      ),
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 10 }),
        fc.array(fc.nat(40), { maxLength: 6 }),
        (pieces, cuts) => {
          const bytes = Buffer.concat(pieces.map((p) => Buffer.from(p)));
          const whole = new StatusQueryScanner().feed(bytes);
          const s = new StatusQueryScanner();
          const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
          const got = [];
          let from = 0;
          for (const at of [...points, bytes.length]) {
            got.push(...s.feed(bytes.subarray(from, at)));
            from = at;
          }
          expect(got).toEqual(whole);
        },
      ),
      { numRuns: 500 },
    );
  });
});
