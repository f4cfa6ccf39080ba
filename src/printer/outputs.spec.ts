import * as fs from 'node:fs';
import * as net from 'node:net';
import { freePort } from '../../test/support/child-process';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeClock, flushMicrotasks } from '../protocol/clock';
import { ProtocolError, TransportError } from '../protocol/errors';
import { decodeEscPos } from './escpos-decode';
import { FakeTcpPrinter } from './fake-tcp-printer';
import { openPrinterOutput, parsePrinterTarget, printerError } from './outputs';
import { ReceiptData } from './receipt';
import { renderReceipt } from './render';
import { DEFAULT_SERIAL_SETTINGS, serialTarget } from './serial-settings';

const data: ReceiptData = {
  storeName: '好又多咖啡',
  registerId: 'R1',
  orderId: 'A-77001',
  amount: { value: 4250, currency: 'CNY' },
  method: 'WeChat Pay',
  paymentId: 'pay_77001',
  time: '2026-05-01T10:15:00+08:00',
};

describe(parsePrinterTarget.name, () => {
  it('reads the three target forms', () => {
    expect(parsePrinterTarget('tcp://192.168.1.50:9100')).toEqual({
      kind: 'tcp',
      host: '192.168.1.50',
      port: 9100,
    });
    expect(parsePrinterTarget('tcp://printer.local:9100/')).toEqual({
      kind: 'tcp',
      host: 'printer.local',
      port: 9100,
    });
    expect(parsePrinterTarget('tcp://[::1]:9100')).toEqual({ kind: 'tcp', host: '::1', port: 9100 });
    expect(parsePrinterTarget('serial:/dev/ttyUSB0')).toEqual({
      kind: 'serial',
      path: '/dev/ttyUSB0',
      settings: DEFAULT_SERIAL_SETTINGS,
    });
    expect(parsePrinterTarget('serial:COM3')).toEqual({
      kind: 'serial',
      path: 'COM3',
      settings: DEFAULT_SERIAL_SETTINGS,
    });
    expect(parsePrinterTarget('file:./var/receipts.bin')).toEqual({
      kind: 'file',
      path: './var/receipts.bin',
    });
    expect(parsePrinterTarget('file:///var/receipts.bin')).toEqual({
      kind: 'file',
      path: '/var/receipts.bin',
    });
  });

  it('reads the line settings in a serial target; those left out take the defaults (9600 8N1, no flow control)', () => {
    const settings = {
      baudRate: 19200,
      dataBits: 7,
      parity: 'even',
      stopBits: 2,
      flowControl: 'rtscts',
    } as const;
    expect(parsePrinterTarget(serialTarget('/dev/ttyS0', settings))).toEqual({
      kind: 'serial',
      path: '/dev/ttyS0',
      settings,
    });
    expect(serialTarget('/dev/ttyS0', settings)).toBe(
      'serial:/dev/ttyS0?baudRate=19200&dataBits=7&parity=even&stopBits=2&flowControl=rtscts',
    );
    expect(parsePrinterTarget('serial:/dev/ttyS0?parity=odd&baudRate=115200')).toEqual({
      kind: 'serial',
      path: '/dev/ttyS0',
      settings: { ...DEFAULT_SERIAL_SETTINGS, parity: 'odd', baudRate: 115200 },
    });
  });

  it.each([
    [
      'serial:/dev/ttyS0?baud=9600',
      'unknown line setting "baud"; known: baudRate, dataBits, parity, stopBits, flowControl',
    ],
    [
      'serial:/dev/ttyS0?baudRate=9601',
      'baudRate=9601 is not one of 2400, 4800, 9600, 19200, 38400, 57600, 115200',
    ],
    ['serial:/dev/ttyS0?baudRate=1200', 'baudRate=1200 is not one of 2400'],
    ['serial:/dev/ttyS0?dataBits=6', 'dataBits=6 is not one of 7, 8'],
    ['serial:/dev/ttyS0?parity=mark', 'parity=mark is not one of none, even, odd'],
    ['serial:/dev/ttyS0?stopBits=1.5', 'stopBits=1.5 is not one of 1, 2'],
    ['serial:/dev/ttyS0?flowControl=dtrdsr', 'flowControl=dtrdsr is not one of none, rtscts, xonxoff'],
    ['serial:/dev/ttyS0?parity=odd&parity=even', 'line setting parity given twice'],
  ])('rejects %j naming the bad line setting', (target, problem) => {
    let error: unknown;
    try {
      parsePrinterTarget(target);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'printer.bad_target', subject: 'receipt.printer' });
    expect((error as Error).message).toContain(`is not a serial printer target: ${problem}`);
  });

  it.each([
    '',
    'lpt1',
    'tcp://printer',
    'tcp://printer:0',
    'tcp://printer:70000',
    'udp://a:1',
    'serial:',
    'file:',
  ])('rejects %j naming the target forms', (target) => {
    let error: unknown;
    try {
      parsePrinterTarget(target);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'printer.bad_target', subject: 'receipt.printer' });
    expect((error as Error).message).toContain('tcp://HOST:PORT');
    expect((error as Error).message).toContain('serial:DEVICE');
    expect((error as Error).message).toContain('file:PATH');
  });

  it('is what openPrinterOutput throws at once for a bad target', () => {
    expect(() => openPrinterOutput('printer-1')).toThrow(
      expect.objectContaining({ code: 'printer.bad_target' }),
    );
  });
});

describe('tcp:// printer output', () => {
  let printer: FakeTcpPrinter;

  beforeEach(() => {
    printer = new FakeTcpPrinter();
  });

  afterEach(async () => {
    await printer.close();
  });

  it('sends a receipt to a real TCP listener that decodes to the order id and amount', async () => {
    await printer.listen();
    const output = openPrinterOutput(printer.target);
    expect(output.target).toBe(printer.target);
    const bytes = renderReceipt(data, { width: 42, encoding: 'gb18030' });
    await output.write(bytes);
    await printer.waitForReceipts(1);
    expect(printer.receipts[0]).toEqual(Buffer.from(bytes));
    const decoded = decodeEscPos(printer.receipts[0], { encoding: 'gb18030' });
    expect(decoded.text).toContain('A-77001');
    expect(decoded.text).toContain('￥42.50');
    expect(decoded.text).toContain('好又多咖啡');
    expect(decoded.qr).toEqual(['pay_77001']);
  });

  it('sends each write as its own connection', async () => {
    await printer.listen();
    const output = openPrinterOutput(printer.target);
    await output.write(new Uint8Array([0x41, 0x0a]));
    await output.write(new Uint8Array([0x42, 0x0a]));
    await printer.waitForReceipts(2);
    expect(printer.receipts.map((r) => r.toString())).toEqual(['A\n', 'B\n']);
  });

  it('sends a large receipt whole', async () => {
    await printer.listen();
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => 0x20 + (i % 90));
    await openPrinterOutput(printer.target).write(big);
    await printer.waitForReceipts(1);
    expect(printer.receipts[0].length).toBe(big.length);
  });

  it('fails with printer.unreachable naming the printer when nothing listens', async () => {
    const target = `tcp://127.0.0.1:${await freePort()}`;
    const error = await openPrinterOutput(target)
      .write(new Uint8Array([0x41]))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ code: 'printer.unreachable', subject: target });
    expect((error as Error).message).toBe(
      `Printer ${target} is unreachable (connection refused): is the printer on and connected?`,
    );
  });

  it('fails with printer.unreachable after 5 s when the printer does not answer', async () => {
    const clock = new FakeClock();
    const socket = new net.Socket(); // never connects
    const output = openPrinterOutput('tcp://127.0.0.1:9100', { clock, connect: () => socket });
    const result = output.write(new Uint8Array([0x41])).catch((e: unknown) => e);
    clock.advance(4_999);
    await flushMicrotasks();
    clock.advance(1);
    const error = await result;
    expect(error).toMatchObject({ code: 'printer.unreachable' });
    expect((error as Error).message).toBe(
      'Printer tcp://127.0.0.1:9100 is unreachable (no answer within 5 s): is the printer on and connected?',
    );
    expect(socket.destroyed).toBe(true);
  });
});

describe(printerError.name, () => {
  const oops = (code: string) => Object.assign(new Error(`${code} oops`), { code });

  it('maps OS error codes explicitly', () => {
    expect(printerError('t', oops('EHOSTUNREACH')).code).toBe('printer.unreachable');
    expect(printerError('t', oops('ENOENT')).code).toBe('printer.unreachable');
    expect(printerError('t', oops('EACCES')).code).toBe('printer.permission_denied');
    expect(printerError('t', oops('ECONNRESET')).code).toBe('printer.write_failed');
    expect(printerError('t', oops('EWHATEVER')).message).toBe(
      'Printer t: could not send the receipt (EWHATEVER oops).',
    );
  });
});

describe('file: and serial: printer outputs', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payconnect-printer-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('file: appends each receipt', async () => {
    const file = path.join(dir, 'receipts.bin');
    const output = openPrinterOutput(`file:${file}`);
    await output.write(new Uint8Array([1, 2]));
    await output.write(new Uint8Array([3]));
    expect(Array.from(fs.readFileSync(file))).toEqual([1, 2, 3]);
  });

  it('file: in a folder that does not exist fails with printer.write_failed', async () => {
    const target = `file:${path.join(dir, 'missing', 'receipts.bin')}`;
    await expect(openPrinterOutput(target).write(new Uint8Array([1]))).rejects.toMatchObject({
      code: 'printer.write_failed',
      subject: target,
    });
  });

  // /dev/usb/lp0 (a USB printer-class device) is not a terminal: serialport cannot open it, so its bytes are
  // written as they are. A regular file that exists stands in for it here, and is read back.
  it('serial: a device that is not a terminal gets the bytes as they are, none lost or added', async () => {
    const device = path.join(dir, 'lp0');
    fs.writeFileSync(device, '');
    const bytes = renderReceipt(data, { width: 32, encoding: 'gb18030' });
    await openPrinterOutput(serialTarget(device, { ...DEFAULT_SERIAL_SETTINGS, baudRate: 19200 })).write(
      bytes,
    );
    expect(fs.readFileSync(device).equals(Buffer.from(bytes))).toBe(true);
    expect(decodeEscPos(fs.readFileSync(device), { encoding: 'gb18030' }).text).toContain('A-77001');
  });

  it('serial: a missing device is an unplugged printer, and no file is created in its place', async () => {
    const device = path.join(dir, 'ttyUSB9');
    const error = await openPrinterOutput(`serial:${device}`)
      .write(new Uint8Array([0x41]))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'printer.unreachable', subject: `serial:${device}` });
    expect((error as Error).message).toBe(
      `Printer serial:${device} (9600 8N1) is unreachable (cannot open ${device}: no such device; check the cable ` +
        `or USB adapter and that ${device} is the printer's port): is the printer on and connected?`,
    );
    expect(fs.existsSync(device)).toBe(false);
  });

  // serial: on a real serial line (a socat pseudo-terminal pair): serial-output.spec.ts.
});
