/**
 * Switching a running plugin to another manifest on the SAME port (src/plugin/adapter-host.ts `switchNow`,
 * with the real adapters): the new adapter is probed while the old one still holds the port, so its probe
 * must take a port this process holds as working (src/adapters/held-ports.ts) instead of failing on
 * EADDRINUSE or serialport's lock. Orders after the switch are captured by the new manifest's adapter.
 * A port another program holds (a net.Server or a SerialPort opened here by the test, not by an adapter)
 * still fails the probe, naming the field, and the running manifest is kept.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { CapturedOrder, HostAdapter, RejectedInput } from '../../src/adapters/host-adapter';
import { loadManifestFile } from '../../src/adapters/manifest';
import { createAdapter } from '../../src/adapters/registry';
import { fromHex } from '../../src/printer/hex';
import { AdapterHost } from '../../src/plugin/adapter-host';
import { SystemClock } from '../../src/protocol/clock';
import { freePort } from '../support/child-process';
import { systemPrerequisites } from '../support/prerequisites';
import { HookClient } from '../support/hook-client';
import { FarEnd, PtyPair } from '../support/pty';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

const ENGLISH_RECEIPT = Buffer.from(
  fromHex(readFileSync(path.join(__dirname, '../fixtures/printer-tap/english-epson.hex'), 'utf8')),
);

let dir: string;
let host: AdapterHost | undefined;
let orders: CapturedOrder[];
let rejects: RejectedInput[];
const closers: (() => Promise<unknown>)[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'payconnect-switch-same-port-'));
  orders = [];
  rejects = [];
});

afterEach(async () => {
  await host?.stop();
  host = undefined;
  for (const close of closers.splice(0).reverse()) await close();
  rmSync(dir, { recursive: true, force: true });
});

function manifest(id: string, adapter: string, options: string, parse: string): string {
  const file = path.join(dir, `${id}.yaml`);
  writeFileSync(
    file,
    [
      `id: ${id}`,
      `name: ${id}`,
      `adapter: ${adapter}`,
      'register: R1',
      `options: ${options}`,
      `parse: ${parse}`,
      'writeBack: {}',
      'dispatch: { mode: broadcast }',
    ].join('\n'),
  );
  return file;
}

async function startHost(file: string): Promise<AdapterHost> {
  const h = new AdapterHost({
    manifest: await loadManifestFile(file),
    manifestPath: file,
    clock: new SystemClock(),
    stateDir: dir,
    watch: false,
  });
  await h.start(() => ({
    onOrder: async (o) => void orders.push(o),
    onReject: (r) => void rejects.push(r),
  }));
  host = h;
  return h;
}

/** A server of the test's own (not an adapter's) on the port: another program, as far as adapters know. */
async function foreignServer(port: number): Promise<void> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', resolve);
  });
  closers.push(() => new Promise((r) => s.close(r)));
}

/** A register printing one job to the tap and closing. */
async function print(port: number, bytes: Buffer): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  await new Promise<void>((resolve) => socket.end(bytes, resolve));
  socket.on('error', () => undefined);
}

/** The hook library's side (test/support/hook-client.ts): hello with the plugin's token, then one request. */
async function hookRequest(port: number, request: object): Promise<Record<string, unknown>> {
  const token = readFileSync(path.join(dir, 'native-hook.token'), 'utf8').trim();
  const client = await HookClient.connect(port);
  try {
    expect(await client.request({ op: 'hello', token, client: 'spec' })).toMatchObject({ ok: true });
    return await client.request(request);
  } finally {
    client.close();
  }
}

function running(h: AdapterHost, kind: string): HostAdapter {
  const a = h.get(kind);
  if (!a) throw new Error(`no ${kind} adapter runs`);
  return a;
}

describe('AdapterHost: switching to a manifest on the same TCP port', () => {
  it('printer-tap → printer-tap: the switch is taken and the new manifest captures the next receipt', async () => {
    const port = await freePort();
    const listen = `{ listen: "tcp://127.0.0.1:${port}", forward: none }`;
    const first = manifest('tap-usd', 'printer-tap', listen, '{ encoding: cp437, currency: USD }');
    const second = manifest('tap-cad', 'printer-tap', listen, '{ encoding: cp437, currency: CAD }');
    const h = await startHost(first);
    const old = running(h, 'printer-tap');
    await print(port, ENGLISH_RECEIPT);
    await waitFor('the first order', () => orders.length === 1);
    expect(orders[0].amount).toEqual({ value: 1284, currency: 'USD' });

    await expect(h.switchFile(second)).resolves.toEqual({ manifest: 'tap-cad', adapter: 'printer-tap' });
    expect(h.problem()).toBeUndefined();
    const now = running(h, 'printer-tap');
    expect(now).not.toBe(old);
    await print(port, ENGLISH_RECEIPT);
    await waitFor('the order after the switch', () => orders.length === 2 || rejects.length > 0);
    expect(rejects).toEqual([]);
    expect(orders[1].amount).toEqual({ value: 1284, currency: 'CAD' });
    expect(now.stats?.()).toMatchObject({ orders: 1 });

    // And back again: the port the second manifest's tap holds is taken as working too.
    await expect(h.switchFile(first)).resolves.toEqual({ manifest: 'tap-usd', adapter: 'printer-tap' });
    await print(port, ENGLISH_RECEIPT);
    await waitFor('the order after switching back', () => orders.length === 3);
    expect(orders[2].amount.currency).toBe('USD');
  });

  it('printer-tap: a port another program holds still refuses the manifest, naming options.listen', async () => {
    const port = await freePort();
    const taken = await freePort();
    await foreignServer(taken);
    const first = manifest(
      'tap-a',
      'printer-tap',
      `{ listen: "tcp://127.0.0.1:${port}", forward: none }`,
      '{ encoding: cp437, currency: USD }',
    );
    const second = manifest(
      'tap-b',
      'printer-tap',
      `{ listen: "tcp://127.0.0.1:${taken}", forward: none }`,
      '{ encoding: cp437, currency: USD }',
    );
    const h = await startHost(first);
    await expect(h.switchFile(second)).rejects.toThrow(
      /kept tap-a: options\.listen: cannot listen on tcp:\/\/127\.0\.0\.1:\d+ \(EADDRINUSE\); another program/,
    );
    expect(h.current().id).toBe('tap-a');
    await print(port, ENGLISH_RECEIPT);
    await waitFor('the order on the kept manifest', () => orders.length === 1);
  });

  it("a start on a port this plugin's own adapter still holds names that adapter, not another program", async () => {
    const port = await freePort();
    const listen = `{ listen: "tcp://127.0.0.1:${port}", forward: none }`;
    const file = manifest('tap-one', 'printer-tap', listen, '{ encoding: cp437, currency: USD }');
    const h = await startHost(file);
    const second = createAdapter(await loadManifestFile(file), { baseDir: dir, clock: new SystemClock() });
    await expect(second.probe()).resolves.toBeUndefined();
    await expect(second.start({ onOrder: async () => undefined, onReject: () => undefined })).rejects.toThrow(
      /options\.listen: cannot listen on tcp:\/\/127\.0\.0\.1:\d+ \(EADDRINUSE\); this plugin's printer-tap options\.listen listens there/,
    );
    expect(running(h, 'printer-tap').stats?.()).toMatchObject({ orders: 0 });
  });

  it("a switch that passes the probe but cannot start (the port is an --also adapter's) keeps the old manifest capturing", async () => {
    const hookPort = await freePort();
    const tapPort = await freePort();
    const tap = manifest(
      'tap-main',
      'printer-tap',
      `{ listen: "tcp://127.0.0.1:${tapPort}", forward: none }`,
      '{ encoding: cp437, currency: USD }',
    );
    const hook = manifest(
      'hook-also',
      'native-hook',
      `{ listen: "tcp://127.0.0.1:${hookPort}" }`,
      '{ currency: CNY }',
    );
    // The new main manifest listens where the --also hook does: its probe takes the port as this plugin's.
    const clash = manifest(
      'tap-clash',
      'printer-tap',
      `{ listen: "tcp://127.0.0.1:${hookPort}", forward: none }`,
      '{ encoding: cp437, currency: CAD }',
    );
    const h = new AdapterHost({
      manifest: await loadManifestFile(tap),
      manifestPath: tap,
      alsoManifests: [hook],
      clock: new SystemClock(),
      stateDir: dir,
      watch: false,
    });
    await h.start(() => ({
      onOrder: async (o) => void orders.push(o),
      onReject: (r) => void rejects.push(r),
    }));
    host = h;

    await expect(h.switchFile(clash)).rejects.toThrow(/kept tap-main: .*EADDRINUSE/);
    expect(h.current().id).toBe('tap-main');
    expect(h.problem()).toMatch(/tap-clash\.yaml was not applied, still running tap-main/);
    // The old tap was stopped for the new one, and is capturing again.
    await print(tapPort, ENGLISH_RECEIPT);
    await waitFor('the order on the kept manifest', () => orders.length === 1);
    expect(orders[0].amount).toEqual({ value: 1284, currency: 'USD' });
    // And the --also hook was never disturbed.
    expect(await hookRequest(hookPort, { op: 'ping' })).toMatchObject({ ok: true });
  });

  it('native-hook → native-hook: the switch is taken and the new manifest takes the next order', async () => {
    const port = await freePort();
    const listen = `{ listen: "tcp://127.0.0.1:${port}" }`;
    const first = manifest('hook-cny', 'native-hook', listen, '{ currency: CNY }');
    const second = manifest('hook-usd', 'native-hook', listen, '{ currency: USD }');
    const h = await startHost(first);
    expect(
      await hookRequest(port, { op: 'submit', order: { orderId: 'A-1', amount: '4.20' } }),
    ).toMatchObject({
      ok: true,
    });
    const old = running(h, 'native-hook');

    await expect(h.switchFile(second)).resolves.toEqual({ manifest: 'hook-usd', adapter: 'native-hook' });
    expect(running(h, 'native-hook')).not.toBe(old);
    expect(
      await hookRequest(port, { op: 'submit', order: { orderId: 'B-1', amount: '5.00' } }),
    ).toMatchObject({
      ok: true,
    });
    expect(orders.map((o) => [o.orderId, o.amount])).toEqual([
      ['A-1', { value: 420, currency: 'CNY' }],
      ['B-1', { value: 500, currency: 'USD' }],
    ]);
  });

  it('native-hook: a port another program holds still refuses the manifest, naming options.listen', async () => {
    const port = await freePort();
    const taken = await freePort();
    await foreignServer(taken);
    const first = manifest(
      'hook-a',
      'native-hook',
      `{ listen: "tcp://127.0.0.1:${port}" }`,
      '{ currency: CNY }',
    );
    const second = manifest(
      'hook-b',
      'native-hook',
      `{ listen: "tcp://127.0.0.1:${taken}" }`,
      '{ currency: CNY }',
    );
    const h = await startHost(first);
    await expect(h.switchFile(second)).rejects.toThrow(
      /kept hook-a: options\.listen: cannot listen on tcp:\/\/127\.0\.0\.1:\d+ \(EADDRINUSE\); another program/,
    );
    expect(h.current().id).toBe('hook-a');
  });
});

const serial = systemPrerequisites(['socat']);

serial.describe('AdapterHost: switching to a manifest on the same serial port (socat pty)', () => {
  it('serial-display → serial-display: the switch is taken; a port another program holds is refused', async () => {
    const pair = await PtyPair.open(dir, 'REG');
    closers.push(() => pair.stop());
    const register = await FarEnd.open(pair.far);
    closers.push(() => register.close());
    const options = `{ input: "serial:${pair.near}", protocol: epson }`;
    const first = manifest('display-cny', 'serial-display', options, '{ currency: CNY }');
    const second = manifest('display-usd', 'serial-display', options, '{ currency: USD }');
    const h = await startHost(first);
    const old = running(h, 'serial-display');

    await expect(h.switchFile(second)).resolves.toEqual({
      manifest: 'display-usd',
      adapter: 'serial-display',
    });
    const now = running(h, 'serial-display');
    expect(now).not.toBe(old);
    // The new adapter has the port: the register's bytes reach it.
    await register.write('\x1b@TOTAL 12.50');
    const bytesIn = () => (now.stats?.() as { io: { bytesIn: number } }).io.bytesIn;
    await waitFor('the bytes at the new adapter', () => bytesIn() === 13);

    // A second pty whose near end the test itself holds: the probe opens it and fails on the lock.
    const other = await PtyPair.open(dir, 'BUSY');
    closers.push(() => other.stop());
    const foreign = new SerialPort({ path: other.near, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => foreign.open((e) => (e ? reject(e) : resolve())));
    closers.push(() => new Promise((r) => foreign.close(r)));
    const busy = manifest(
      'display-busy',
      'serial-display',
      `{ input: "serial:${other.near}", protocol: epson }`,
      '{ currency: CNY }',
    );
    await expect(h.switchFile(busy)).rejects.toThrow(/kept display-usd: .*another program holds it/);
    expect(h.current().id).toBe('display-usd');
  });
});
