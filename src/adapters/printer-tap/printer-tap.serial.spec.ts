/**
 * printer-tap on real serial lines (DESIGN.md "Testing with real parts"): socat pty pairs on both sides,
 * register → tap → printer, with the register and the printer as serialport far ends (test/support/pty.ts);
 * and the mixed wirings, serial → TCP printer and TCP register → file.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { systemPrerequisites } from '../../../test/support/prerequisites';
import { FarEnd, PtyPair } from '../../../test/support/pty';
import { waitFor } from '../../../test/support/wait';
import { FakeTcpPrinter } from '../../printer/fake-tcp-printer';
import { fromHex } from '../../printer/hex';
import { SystemClock } from '../../protocol/clock';
import { PayconnectError } from '../../protocol/errors';
import { FieldProblems } from '../field-problems';
import { CapturedOrder, RejectedInput } from '../host-adapter';
import { PrinterTapAdapter } from './printer-tap.adapter';
import {
  PrinterTapOptions,
  PrinterTapParseRules,
  validatePrinterTapOptions,
  validatePrinterTapParse,
} from './printer-tap.options';

const serialSys = systemPrerequisites(['socat']);

const FIXTURES = path.join(__dirname, '../../../test/fixtures/printer-tap');
const CHINESE = Buffer.from(fromHex(fs.readFileSync(path.join(FIXTURES, 'chinese-80mm.hex'), 'utf8')));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** Writes each piece as its own write, a moment apart, as a slow register driver does. */
async function print(register: FarEnd, bytes: Buffer, size = 7): Promise<void> {
  for (const piece of pieces(bytes, size)) {
    await register.write(piece);
    await sleep(1);
  }
}

serialSys.describe('printer-tap on socat pty pairs', () => {
  let dir: string;
  let registerPair: PtyPair;
  let printerPair: PtyPair;
  let register: FarEnd;
  let printer: FarEnd | undefined;
  let adapter: PrinterTapAdapter | undefined;
  let orders: CapturedOrder[];
  let rejects: RejectedInput[];
  let errors: Error[];
  const closers: (() => Promise<void>)[] = [];
  const rules = validatePrinterTapParse(
    { encoding: 'gb18030', currency: 'CNY' },
    FieldProblems.root(),
  ) as PrinterTapParseRules;

  async function startTap(
    listen: string,
    forward: string,
    more: Record<string, unknown> = {},
  ): Promise<PrinterTapAdapter> {
    const p = FieldProblems.root();
    const options = validatePrinterTapOptions(
      { listen, forward, jobIdleMs: 300, ...more },
      p,
    ) as PrinterTapOptions;
    expect(p.all).toEqual([]);
    adapter = new PrinterTapAdapter(
      { registerId: 'R1', ...options, rules },
      { clock: new SystemClock(), onError: (e) => errors.push(e), reopenMs: 200, stateDir: dir },
    );
    await adapter.start({ onOrder: async (o) => void orders.push(o), onReject: (r) => void rejects.push(r) });
    return adapter;
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payconnect-printer-tap-'));
    orders = [];
    rejects = [];
    errors = [];
    registerPair = await PtyPair.open(dir, 'REG');
    printerPair = await PtyPair.open(dir, 'PRN');
    register = await FarEnd.open(registerPair.far);
    printer = await FarEnd.open(printerPair.far);
  });
  afterEach(async () => {
    await adapter?.stop();
    adapter = undefined;
    await register.close();
    await printer?.close();
    for (const c of closers.splice(0)) await c();
    await registerPair.stop();
    await printerPair.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('passes a GB18030 receipt written in 7-byte pieces byte for byte to the printer and reads 应收 in fen', async () => {
    await startTap(
      `serial:${registerPair.near}?baud=9600&parity=none&dataBits=8&stopBits=1&flow=none`,
      `serial:${printerPair.near}?baud=9600`,
    );
    await print(register, CHINESE);
    const got = await printer!.waitFor(CHINESE.length);
    expect(got.equals(CHINESE)).toBe(true);
    await waitFor('the order', () => orders.length === 1);
    expect(orders[0]).toEqual({
      orderId: '20261129-0042',
      registerId: 'R1',
      amount: { value: 8650, currency: 'CNY' },
      source: `serial:${registerPair.near} job 1`,
    });
    expect(rejects).toEqual([]);
    expect(adapter!.stats()).toMatchObject({
      bytesIn: CHINESE.length,
      bytesForwarded: CHINESE.length,
      jobs: 1,
      orders: 1,
    });
  });

  it("relays the far printer's answer to a DLE EOT query back to the register, and answers nothing itself", async () => {
    await startTap(`serial:${registerPair.near}`, `serial:${printerPair.near}`);
    await register.write(Buffer.from([0x10, 0x04, 0x01]));
    await printer!.waitFor(3);
    await printer!.write(Buffer.from([0x16])); // online, drawer open: what only the real printer knows
    expect((await register.waitFor(1)).equals(Buffer.from([0x16]))).toBe(true);
    await sleep(100);
    expect(register.received.length).toBe(1);
    expect(adapter!.stats().statusAnswered).toBe(0);
  });

  it('answers status queries itself with forward: none, and still reads the receipt', async () => {
    await startTap(`serial:${registerPair.near}`, 'none');
    await register.write(Buffer.from([0x10, 0x04]));
    await register.write(Buffer.from([0x01, 0x1d, 0x72, 0x01]));
    expect([...(await register.waitFor(2))]).toEqual([0x12, 0x00]);
    await print(register, CHINESE, 11);
    await waitFor('the order', () => orders.length === 1);
    expect(orders[0].amount).toEqual({ value: 8650, currency: 'CNY' });
    expect(adapter!.stats().statusAnswered).toBe(2);
  });

  it('forwards a serial register to a TCP printer: one connection per burst, byte for byte', async () => {
    const tcpPrinter = new FakeTcpPrinter();
    await tcpPrinter.listen();
    closers.push(() => tcpPrinter.close());
    await startTap(`serial:${registerPair.near}`, tcpPrinter.target);
    await print(register, CHINESE);
    await waitFor('the order', () => orders.length === 1);
    // The connection ends once the register has been quiet for jobIdleMs.
    await tcpPrinter.waitForReceipts(1);
    expect(tcpPrinter.receipts[0].equals(CHINESE)).toBe(true);
    await print(register, CHINESE, 64);
    await tcpPrinter.waitForReceipts(2);
    expect(tcpPrinter.receipts[1].equals(CHINESE)).toBe(true);
    expect(orders).toHaveLength(2);
  });

  it('forwards a TCP register to a file, answering status queries itself', async () => {
    const file = path.join(dir, 'capture.bin');
    const tap = await startTap('tcp://127.0.0.1:0', `file:${file}`);
    const replies: number[] = [];
    const socket = net.connect({ host: '127.0.0.1', port: tap.port });
    socket.on('data', (d) => replies.push(...d));
    await new Promise((r) => socket.once('connect', r));
    socket.write(Buffer.from([0x10, 0x04, 0x01]));
    await waitFor('the status answer', () => replies.length === 1);
    expect(replies).toEqual([0x12]);
    for (const piece of pieces(CHINESE, 9)) socket.write(piece);
    socket.end();
    await waitFor('the order', () => orders.length === 1);
    await waitFor('the file', () => fs.existsSync(file) && fs.statSync(file).size === CHINESE.length + 3);
    expect(fs.readFileSync(file).equals(Buffer.concat([Buffer.from([0x10, 0x04, 0x01]), CHINESE]))).toBe(
      true,
    );
    expect(orders[0].amount.value).toBe(8650);
  });

  it('keeps reading the register when the printer pty vanishes mid-job: order captured, error once, counted', async () => {
    await startTap(`serial:${registerPair.near}`, `serial:${printerPair.near}`);
    const half = Math.floor(CHINESE.length / 2);
    await print(register, CHINESE.subarray(0, half));
    await printer!.waitFor(half);
    await printer!.close();
    printer = undefined;
    await printerPair.stop();
    await print(register, CHINESE.subarray(half));
    await waitFor('the order', () => orders.length === 1);
    expect(orders[0].amount.value).toBe(8650);
    expect(adapter!.stats().bytesIn).toBe(CHINESE.length);
    await waitFor('the printer-off report', () => errors.length > 0);
    await sleep(600); // several reopen attempts: still one report
    expect(errors.map((e) => (e as PayconnectError).code)).toEqual(['printer_tap.printer_off']);
    expect(errors[0].message).toContain(`printer serial:${printerPair.near} (9600 8N1) is off`);
    expect(adapter!.stats().printerOff).toBe(1);
  });

  it('counts line noise as a rejected job and reads the next receipt', async () => {
    await startTap(`serial:${registerPair.near}`, `serial:${printerPair.near}`);
    // Noise as a loose cable makes it: printable and high bytes, no commands.
    const noise = Buffer.alloc(200);
    for (let i = 0; i < noise.length; i++)
      noise[i] = i % 3 === 0 ? 0x20 + ((i * 37) % 0x5f) : 0x80 + ((i * 53) % 0x7f);
    await register.write(noise);
    await waitFor('the noise job to end', () => rejects.length === 1);
    expect(rejects[0]).toMatchObject({
      code: 'printer_tap.no_amount',
      subject: `serial:${registerPair.near} job 1`,
    });
    await print(register, CHINESE);
    await waitFor('the order', () => orders.length === 1);
    expect(orders[0]).toMatchObject({ amount: { value: 8650 }, source: `serial:${registerPair.near} job 2` });
    expect(
      (await printer!.waitFor(noise.length + CHINESE.length)).equals(Buffer.concat([noise, CHINESE])),
    ).toBe(true);
    expect(adapter!.stats()).toMatchObject({ rejected: 1, orders: 1 });
  });

  it('reopens the register port after it vanished, counts it, and reads the next receipt', async () => {
    await startTap(`serial:${registerPair.near}`, 'none');
    await register.close();
    await registerPair.stop();
    await waitFor('the loss report', () => errors.length === 1);
    expect(errors[0]).toMatchObject({ code: 'printer_tap.port_lost', subject: registerPair.near });
    await registerPair.start();
    await waitFor('the reopen', () => adapter!.stats().listenReopened === 1, 5000);
    register = await FarEnd.open(registerPair.far);
    await print(register, CHINESE);
    await waitFor('the order', () => orders.length === 1);
    expect(adapter!.stats()).toMatchObject({ listenLost: 1, listenReopened: 1 });
    expect(errors).toHaveLength(1);
  });

  it("a new manifest's probe passes while the running tap holds both ports (serialport locks them)", async () => {
    const running = await startTap(`serial:${registerPair.near}`, `serial:${printerPair.near}`);
    const p = FieldProblems.root();
    const options = validatePrinterTapOptions(
      { listen: `serial:${registerPair.near}`, forward: `serial:${printerPair.near}` },
      p,
    ) as PrinterTapOptions;
    const next = new PrinterTapAdapter(
      { registerId: 'R1', ...options, rules },
      { clock: new SystemClock(), onError: (e) => errors.push(e) },
    );
    await next.probe();
    expect(errors).toEqual([]);
    // A port nobody holds is really opened by the probe: a locked one fails.
    await running.stop();
    adapter = undefined;
    const holder = await FarEnd.open(registerPair.near);
    closers.push(() => holder.close());
    await expect(next.probe()).rejects.toMatchObject({ code: 'printer_tap.listen_failed' });
  });

  it('probe and start fail naming options.listen when the register port does not exist', async () => {
    const p = FieldProblems.root();
    const options = validatePrinterTapOptions(
      { listen: `serial:${dir}/ttyNOPE`, forward: 'none' },
      p,
    ) as PrinterTapOptions;
    const tap = new PrinterTapAdapter({ registerId: 'R1', ...options, rules }, { clock: new SystemClock() });
    await expect(tap.probe()).rejects.toMatchObject({
      code: 'printer_tap.listen_failed',
      subject: 'options.listen',
    });
    await expect(tap.start({ onOrder: async () => undefined, onReject: () => undefined })).rejects.toThrow(
      /options\.listen: .*ttyNOPE/,
    );
  });
});
