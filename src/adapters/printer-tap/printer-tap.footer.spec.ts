/**
 * printer-tap's paid footer (writeBack.footer) on a real TCP socket printer and on a socat pty: printed
 * once per order (also across a restart), decoded back to its text and QR code, never in the middle of a
 * register's job, and a WriteBackError while the printer is off.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { systemPrerequisites } from '../../../test/support/prerequisites';
import { FarEnd, PtyPair } from '../../../test/support/pty';
import { waitFor } from '../../../test/support/wait';
import { decodeEscPos } from '../../printer/escpos-decode';
import { FakeTcpPrinter } from '../../printer/fake-tcp-printer';
import { fromHex } from '../../printer/hex';
import { SystemClock } from '../../protocol/clock';
import { WriteBackError } from '../../protocol/errors';
import { FieldProblems } from '../field-problems';
import { CapturedOrder, OrderResult } from '../host-adapter';
import { renderFooter } from './footer';
import { PrinterTapAdapter } from './printer-tap.adapter';
import {
  PrinterTapOptions,
  PrinterTapParseRules,
  PrinterTapWriteBack,
  validatePrinterTapOptions,
  validatePrinterTapParse,
  validatePrinterTapWriteBack,
} from './printer-tap.options';

const CHINESE = Buffer.from(
  fromHex(
    fs.readFileSync(path.join(__dirname, '../../../test/fixtures/printer-tap/chinese-80mm.hex'), 'utf8'),
  ),
);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const PAID: OrderResult = {
  orderId: '20261129-0042',
  registerId: 'R1',
  status: 'paid',
  amount: { value: 1234, currency: 'CNY' },
  payment: {
    id: 'pay_7Kq2Xw9Lm',
    orderId: '20261129-0042',
    registerId: 'R1',
    amount: { value: 1234, currency: 'CNY' },
    status: 'succeeded',
    method: { type: 'wallet_code', code: '280000000000000000', brand: 'alipay' },
    createdAt: '2026-11-29T03:39:01.000Z',
    updatedAt: '2026-11-29T03:39:05.000Z',
  },
  decidedAt: '2026-11-29T03:39:05.500Z',
};

const rules = validatePrinterTapParse(
  { encoding: 'gb18030', currency: 'CNY' },
  FieldProblems.root(),
) as PrinterTapParseRules;

function tap(dir: string, listen: string, forward: string, errors: Error[] = []): PrinterTapAdapter {
  const p = FieldProblems.root();
  const options = validatePrinterTapOptions({ listen, forward, jobIdleMs: 400 }, p) as PrinterTapOptions;
  const writeBack = validatePrinterTapWriteBack(
    { footer: { qr: 'payment', lines: ['谢谢惠顾'], timeZone: 'Asia/Shanghai' } },
    p,
    options,
  ) as PrinterTapWriteBack;
  expect(p.all).toEqual([]);
  return new PrinterTapAdapter(
    { registerId: 'R1', ...options, rules, writeBack },
    { clock: new SystemClock(), onError: (e) => errors.push(e), stateDir: dir, reopenMs: 200 },
  );
}

/** What a footer says, decoded as the printer would print it. */
function read(bytes: Buffer): { lines: string[]; qr: string[]; cuts: number } {
  const d = decodeEscPos(bytes, { encoding: 'gb18030' });
  return { lines: d.lines.map((l) => l.trim()).filter((l) => l !== ''), qr: d.qr, cuts: d.cuts };
}

function expectFooter(bytes: Buffer): void {
  const { lines, qr, cuts } = read(bytes);
  expect(lines).toEqual([
    '-'.repeat(32),
    '已支付 ￥12.34',
    expect.stringMatching(/^支付方式 +Alipay 支付宝$/),
    expect.stringMatching(/^支付单号 +pay_7Kq2Xw9Lm$/),
    expect.stringMatching(/^时间 +2026-11-29 11:39:05 \+08:00$/),
    '谢谢惠顾',
  ]);
  expect(qr).toEqual(['pay_7Kq2Xw9Lm']);
  expect(cuts).toBe(1);
  // GS ( k: the QR code is built by the receipt renderer, with the payment id stored in it.
  expect(bytes.includes(Buffer.from([0x1d, 0x28, 0x6b]))).toBe(true);
  expect(bytes.includes(Buffer.from('pay_7Kq2Xw9Lm'))).toBe(true);
}

describe('printer-tap paid footer on a TCP printer', () => {
  let dir: string;
  let printer: FakeTcpPrinter;
  const adapters: PrinterTapAdapter[] = [];
  const start = async (a: PrinterTapAdapter, orders: CapturedOrder[] = []) => {
    adapters.push(a);
    await a.start({ onOrder: async (o) => void orders.push(o), onReject: () => undefined });
    return a;
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payconnect-tap-footer-'));
    printer = new FakeTcpPrinter();
    await printer.listen();
  });
  afterEach(async () => {
    for (const a of adapters.splice(0)) await a.stop();
    await printer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints the footer once per paid order, also after a restart; failed and canceled print nothing', async () => {
    const a = await start(tap(dir, 'tcp://127.0.0.1:0', printer.target));
    await a.writeBack({ ...PAID, orderId: 'F-1', status: 'failed' });
    await a.writeBack({ ...PAID, orderId: 'C-1', status: 'canceled' });
    await a.writeBack(PAID);
    await printer.waitForReceipts(1);
    expectFooter(printer.receipts[0]);
    await a.writeBack(PAID);
    await a.stop();
    const again = await start(tap(dir, 'tcp://127.0.0.1:0', printer.target));
    await again.writeBack(PAID);
    await sleep(200);
    expect(printer.receipts).toHaveLength(1);
    expect(a.stats()).toMatchObject({ footers: 1, footersAlreadyPrinted: 1 });
    expect(again.stats()).toMatchObject({ footers: 0, footersAlreadyPrinted: 1 });
  });

  it('waits until the register job in progress has ended before printing', async () => {
    const orders: CapturedOrder[] = [];
    const a = await start(tap(dir, 'tcp://127.0.0.1:0', printer.target), orders);
    const register = net.connect({ host: '127.0.0.1', port: a.port });
    await new Promise((r) => register.once('connect', r));
    const noCut = CHINESE.subarray(0, CHINESE.length - 4);
    register.write(noCut.subarray(0, 100));
    await sleep(50);
    let printedAt = 0;
    const footer = a.writeBack(PAID).then(() => (printedAt = Date.now()));
    await sleep(150);
    register.write(noCut.subarray(100));
    const lastByteAt = Date.now();
    await footer;
    // The job had no cut: it ended after jobIdleMs (400) of silence, and only then did the footer go.
    expect(printedAt - lastByteAt).toBeGreaterThanOrEqual(350);
    expect(orders).toHaveLength(1);
    await printer.waitForReceipts(1);
    expectFooter(printer.receipts[0]);
    register.end();
    await printer.waitForReceipts(2);
    expect(printer.receipts[1].equals(noCut)).toBe(true);
  });

  it('is not held up by a register that keeps polling the printer status on an open connection', async () => {
    const a = await start(tap(dir, 'tcp://127.0.0.1:0', printer.target));
    const poller = net.connect({ host: '127.0.0.1', port: a.port });
    await new Promise((r) => poller.once('connect', r));
    // A poll every 100 ms: never 400 ms (jobIdleMs) of silence on this connection.
    const polls = setInterval(() => poller.write(Buffer.from([0x10, 0x04, 0x01])), 100);
    try {
      await sleep(250);
      const t0 = Date.now();
      await a.writeBack(PAID);
      expect(Date.now() - t0).toBeLessThan(1000);
      await printer.waitForReceipts(1);
      expectFooter(printer.receipts[0]);
    } finally {
      clearInterval(polls);
      poller.destroy();
    }
  });

  it('throws WriteBackError naming a damaged journal, and prints nothing', async () => {
    fs.writeFileSync(path.join(dir, '.printer-tap-R1.footers.json'), '{"printed": [');
    const a = await start(tap(dir, 'tcp://127.0.0.1:0', printer.target));
    const error = await a.writeBack(PAID).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WriteBackError);
    expect(error).toMatchObject({ code: 'printer_tap.footer_journal' });
    expect((error as Error).message).toContain('.printer-tap-R1.footers.json');
    await sleep(100);
    expect(printer.receipts).toEqual([]);
  });

  it('throws WriteBackError while the printer is off, and prints on the retry once it is on', async () => {
    const port = printer.port;
    await printer.close();
    const a = await start(tap(dir, 'tcp://127.0.0.1:0', `tcp://127.0.0.1:${port}`));
    const error = await a.writeBack(PAID).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WriteBackError);
    expect(error).toMatchObject({ code: 'printer_tap.footer_not_printed' });
    expect((error as Error).message).toContain(`tcp://127.0.0.1:${port}`);
    printer = new FakeTcpPrinter();
    await printer.listen(port);
    await a.writeBack(PAID);
    await printer.waitForReceipts(1);
    expectFooter(printer.receipts[0]);
  });
});

const serialSys = systemPrerequisites(['socat']);

serialSys.describe('printer-tap paid footer on a serial printer (socat pty)', () => {
  it('arrives once at the printer end, after the register job, and decodes to the footer', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payconnect-tap-footer-pty-'));
    const registerPair = await PtyPair.open(dir, 'REG');
    const printerPair = await PtyPair.open(dir, 'PRN');
    const register = await FarEnd.open(registerPair.far);
    const printer = await FarEnd.open(printerPair.far);
    const orders: CapturedOrder[] = [];
    const a = tap(dir, `serial:${registerPair.near}?baud=9600`, `serial:${printerPair.near}?baud=9600`);
    try {
      await a.start({ onOrder: async (o) => void orders.push(o), onReject: () => undefined });
      for (let i = 0; i < CHINESE.length; i += 16) await register.write(CHINESE.subarray(i, i + 16));
      await waitFor('the order', () => orders.length === 1);
      await a.writeBack(PAID);
      await a.writeBack(PAID);
      await sleep(200);
      const got = printer.received;
      expect(got.subarray(0, CHINESE.length).equals(CHINESE)).toBe(true);
      expectFooter(got.subarray(CHINESE.length));
      expect(orders).toHaveLength(1);
      expect(a.stats()).toMatchObject({ footers: 1, footersAlreadyPrinted: 1 });
    } finally {
      await a.stop();
      await register.close();
      await printer.close();
      await registerPair.stop();
      await printerPair.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('printer-tap paid footer text', () => {
  it('is in English with Latin names on a cp437 printer, and without a QR code when qr is none', () => {
    const bytes = renderFooter(
      { ...PAID, payment: { ...PAID.payment!, method: { type: 'wallet_code', brand: 'wechat' } } },
      { qr: 'none', lines: [], width: 42, timeZone: 'UTC' },
      'cp437',
    );
    const d = decodeEscPos(bytes, { encoding: 'cp437' });
    expect(d.lines.map((l) => l.trim()).filter((l) => l !== '')).toEqual([
      '-'.repeat(42),
      'PAID ¥12.34', // cp437 has the yen sign (0x9D)
      expect.stringMatching(/^Method +WeChat Pay$/),
      expect.stringMatching(/^Payment +pay_7Kq2Xw9Lm$/),
      expect.stringMatching(/^Time +2026-11-29 03:39:05 \+00:00$/),
    ]);
    expect(d.qr).toEqual([]);
    expect(d.cuts).toBe(1);
  });
});
