/**
 * A serial device that hung up before the port's next read (a USB serial adapter pulled out while nothing
 * was being read; here, a socat pseudo-terminal pair ended first): the kernel answers every later read
 * with 0 bytes. The port must close with a disconnect error, so the pass-through notices the loss and
 * reopens it; with bindings-cpp's own read it stayed open, reading 0 bytes forever.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { systemPrerequisites } from '../../test/support/prerequisites';
import { PtyPair } from '../../test/support/pty';
import { hangupAwareBinding } from './serial-hangup';

const serialSys = systemPrerequisites(['socat']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

serialSys.describe('hangupAwareBinding on a socat pseudo-terminal pair', () => {
  let dir: string;
  let pair: PtyPair;
  let port: SerialPort | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-hangup-'));
    pair = new PtyPair(dir, 'display');
    await pair.start();
  });

  afterEach(async () => {
    if (port?.isOpen) await new Promise((r) => port!.close(r));
    port = undefined;
    await pair.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function open(): Promise<SerialPort> {
    return new Promise((resolve, reject) => {
      const p = new SerialPort(
        { path: pair.near, baudRate: 9600, ...({ binding: hangupAwareBinding() } as object) },
        (e) => (e ? reject(e) : resolve(p)),
      );
    });
  }

  it('closes the port with a disconnect error when the device hung up before the read began', async () => {
    port = await open();
    const closed = new Promise<Error | null>((resolve) => port!.once('close', resolve));
    // Nothing reads yet (no 'data' listener): the hang-up comes first, and the kernel's answer to every
    // read after it is 0 bytes.
    await pair.stop();
    await sleep(50);
    port.on('data', () => undefined);
    const error = await Promise.race([closed, sleep(5000).then(() => 'still open' as const)]);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error & { disconnected?: boolean }).disconnected).toBe(true);
    expect((error as Error).message).toMatch(/hung up/);
    expect(port.isOpen).toBe(false);
  });

  it('reads what the device sends, as the default binding does', async () => {
    port = await open();
    const got: Buffer[] = [];
    port.on('data', (b: Buffer) => got.push(b));
    const far = await new Promise<SerialPort>((resolve, reject) => {
      const p = new SerialPort({ path: pair.far, baudRate: 9600 }, (e) => (e ? reject(e) : resolve(p)));
    });
    try {
      far.write(Buffer.from('¥12.50 合计'));
      const end = Date.now() + 5000;
      while (Buffer.concat(got).toString() !== '¥12.50 合计' && Date.now() < end) await sleep(10);
      expect(Buffer.concat(got).toString()).toBe('¥12.50 合计');
    } finally {
      await new Promise((r) => far.close(r));
    }
  });
});
