/**
 * The hook library for real, as a register vendor's program uses it: the payconnect plugin runs as a
 * process with a native-hook manifest, a payment server and a mobile POS unit beside it; the C test
 * program (native/test/submit_test.c) and koffi both drive libpayconnect.so, built here from native/ with
 * gcc. The unit claims each order and pays it with an immediate-success test code, and the register gets
 * the server-signed result through pc_wait_result.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { freeTcpPort, testCode, waitFor } from '../terminal/support/harness';
import { PluginApi, Unit } from '../plugin/support/plugin-harness';
import { buildNative, LIBRARY, nativeGate, PC, SUBMIT_TEST } from './support/native-build';
import { HookShop, startHookShop } from './support/shop';

jest.setTimeout(90_000);

/** Runs the C test program to its end; stdout, stderr and exit code. */
function runSubmitTest(
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(SUBMIT_TEST, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

interface HookLib {
  open(config: string): { status: number; handle: unknown };
  submit(h: unknown, order: string): number;
  wait(
    h: unknown,
    orderId: string,
    timeoutMs: number,
    len: number,
  ): { status: number; text: string; needed: number };
  /** Async (koffi runs it on a worker thread): the plugin withdraws the offer over the LAN meanwhile. */
  cancel(h: unknown, orderId: string): Promise<number>;
  lastError(h: unknown): string;
  /** pc_last_error into a buffer of `len` bytes: its status and *needed. */
  lastErrorInto(h: unknown, len: number): { status: number; needed: number };
  /** pc_wait_result on a koffi worker thread, so the event loop (and the unit) runs meanwhile. */
  waitAsync(h: unknown, orderId: string, timeoutMs: number): Promise<number>;
  version(): string;
  close(h: unknown): number;
}

/** payconnect.h's functions through koffi. */
function loadHookLibrary(file: string): HookLib {
  const lib = koffi.load(file);
  koffi.opaque('pc_handle');
  const pcOpen = lib.func('int pc_open(const char *config, _Out_ pc_handle **out)');
  const pcSubmit = lib.func('int pc_submit_order(pc_handle *h, const char *order)');
  const pcWait = lib.func(
    'int pc_wait_result(pc_handle *h, const char *order_id, int timeout_ms, _Out_ uint8_t *buf, size_t len, _Out_ size_t *needed)',
  );
  const pcCancel = lib.func('int pc_cancel(pc_handle *h, const char *order_id)');
  const pcLastError = lib.func(
    'int pc_last_error(pc_handle *h, _Out_ uint8_t *buf, size_t len, _Out_ size_t *needed)',
  );
  const pcVersion = lib.func('const char *pc_version()');
  const pcClose = lib.func('int pc_close(pc_handle *h)');
  return {
    open(config) {
      const out: unknown[] = [null];
      const status = pcOpen(config, out) as number;
      return { status, handle: out[0] };
    },
    submit: (h, order) => pcSubmit(h, order) as number,
    wait(h, orderId, timeoutMs, len) {
      const buf = Buffer.alloc(Math.max(len, 1));
      const needed = [0];
      const status = pcWait(h, orderId, timeoutMs, buf, len, needed) as number;
      const text = status === PC.OK ? buf.subarray(0, Number(needed[0])).toString('utf8') : '';
      return { status, text, needed: Number(needed[0]) };
    },
    cancel: (h, orderId) =>
      new Promise<number>((resolve, reject) =>
        pcCancel.async(h, orderId, (e: unknown, status: number) =>
          e ? reject(e as Error) : resolve(status),
        ),
      ),
    lastError(h) {
      const buf = Buffer.alloc(2048);
      const needed = [0];
      pcLastError(h, buf, buf.length, needed);
      return buf.subarray(0, Number(needed[0])).toString('utf8');
    },
    lastErrorInto(h, len) {
      const buf = Buffer.alloc(Math.max(len, 1));
      const needed = [0];
      const status = pcLastError(h, buf, len, needed) as number;
      return { status, needed: Number(needed[0]) };
    },
    waitAsync: (h, orderId, timeoutMs) =>
      new Promise<number>((resolve, reject) => {
        const buf = Buffer.alloc(4096);
        pcWait.async(h, orderId, timeoutMs, buf, buf.length, [0], (e: unknown, status: number) =>
          e ? reject(e as Error) : resolve(status),
        );
      }),
    version: () => pcVersion() as string,
    close: (h) => pcClose(h) as number,
  };
}

nativeGate.describe('the hook library through a running plugin', () => {
  let shop: HookShop;
  let hookPort: number;
  let pluginData: string;
  let tmp: string;
  let api: PluginApi;
  let unit: Unit;
  let lib: HookLib;
  let config: string;

  beforeAll(async () => {
    buildNative();
    shop = await startHookShop('native');
    ({ hookPort, pluginData, tmp, api, unit, config } = shop);
    lib = loadHookLibrary(LIBRARY);
  });

  afterAll(async () => {
    await shop?.close();
  });

  it('the plugin keeps the token in its data folder, readable by its own account only', () => {
    const file = path.join(pluginData, 'native-hook.token');
    expect(readFileSync(file, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a C program submits an order, the unit pays it, and the program gets the signed result', async () => {
    const program = runSubmitTest([config, 'pay', 'N-1', '12.50', '30000']);
    await unit.claimAndPay('N-1', testCode('00'));
    const { code, out, err } = await program;
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(out).toMatch(/^version 1\.0\.0\nsubmitted N-1\nresult /);
    const result = JSON.parse(/^result (.*)$/m.exec(out)![1]) as Record<string, unknown>;
    expect(result).toMatchObject({
      orderId: 'N-1',
      registerId: 'R1',
      status: 'paid',
      amount: { value: 1250, currency: 'CNY' },
      method: 'wallet_code',
      delivery: 'N-1:paid',
    });
    expect(result.signature).toEqual(expect.any(String));
    const order = await api.order('N-1');
    expect(order).toMatchObject({
      status: 'paid',
      source: 'native-hook',
      amount: { value: 1250, currency: 'CNY' },
    });
    expect(result.paymentId).toBe(order.payment!.id);
  });

  it('koffi: a too-small buffer gets the size needed and loses nothing; a second wait gets nothing new', async () => {
    const { status, handle } = lib.open(config);
    expect(status).toBe(PC.OK);
    try {
      expect(lib.version()).toBe('1.0.0');
      expect(
        lib.submit(handle, JSON.stringify({ orderId: 'K-1', amount: { value: 880, currency: 'CNY' } })),
      ).toBe(PC.OK);
      await unit.claimAndPay('K-1', testCode('00'));
      await api.waitOrder('K-1', 'to be paid', (o) => o.status === 'paid');
      // Decided before the register asks: the wait answers at once (koffi calls block the event loop, so
      // the order is paid first).
      const small = lib.wait(handle, 'K-1', 5000, 16);
      expect(small.status).toBe(PC.BUFFER_TOO_SMALL);
      expect(small.needed).toBeGreaterThan(100);
      expect(lib.lastError(handle)).toContain(`needs a buffer of ${small.needed} bytes`);
      // A timeout past the plugin's 10-minute limit per request is fine: the library asks in slices.
      const full = lib.wait(handle, 'K-1', 700_000, small.needed);
      expect(full.status).toBe(PC.OK);
      expect(full.needed).toBe(small.needed - 1);
      expect(JSON.parse(full.text)).toMatchObject({ orderId: 'K-1', status: 'paid', amount: { value: 880 } });
      // Acknowledged: asked again, there is no new result for the order.
      const started = Date.now();
      expect(lib.wait(handle, 'K-1', 300, 4096).status).toBe(PC.TIMEOUT);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      // Even through another handle (a restarted register): the plugin journaled the ack.
      const other = lib.open(config);
      expect(lib.wait(other.handle, 'K-1', 0, 4096).status).toBe(PC.TIMEOUT);
      expect(lib.close(other.handle)).toBe(PC.OK);
      // A bad order is refused, naming the field; an order the hook never took is unknown.
      expect(lib.submit(handle, JSON.stringify({ orderId: 'K-2', amount: 12.5 }))).toBe(PC.REJECTED);
      expect(lib.lastError(handle)).toContain('amount');
      // A long answer (every bad item named) comes through whole.
      const items = Array.from({ length: 25 }, (_, i) => ({ name: `dish ${i}`, quantity: -1 }));
      expect(lib.submit(handle, JSON.stringify({ orderId: 'K-3', amount: '1.00', items }))).toBe(PC.REJECTED);
      const long = lib.lastError(handle);
      expect(long.length).toBeGreaterThan(700);
      expect(long).toContain('24');
      expect(long).toMatch(/must be a positive number; got -1$/);
      expect(lib.wait(handle, 'NEVER', 0, 4096).status).toBe(PC.UNKNOWN_ORDER);
      expect(lib.submit(handle, '{"orderId": ')).toBe(PC.BAD_INPUT);
    } finally {
      expect(lib.close(handle)).toBe(PC.OK);
    }
  });

  it('koffi: the register cancels an order it has not had paid, and hears "canceled" once', async () => {
    const { handle } = lib.open(config);
    try {
      expect(lib.submit(handle, JSON.stringify({ orderId: 'C-1', amount: '3.00' }))).toBe(PC.OK);
      await unit.waitOffer('C-1');
      expect(await lib.cancel(handle, 'C-1')).toBe(PC.OK);
      await api.waitOrder('C-1', 'to be canceled', (o) => o.status === 'canceled');
      await waitFor('the canceled result to be queued', async () => {
        const status = await api.status();
        const hook = status.adapters.find((a) => a.adapter === 'native-hook');
        return (hook?.stats?.resultsWaiting as number) > 0;
      });
      const r = lib.wait(handle, 'C-1', 2000, 4096);
      expect(r.status).toBe(PC.OK);
      expect(JSON.parse(r.text)).toMatchObject({ orderId: 'C-1', status: 'canceled' });
      expect(lib.wait(handle, 'C-1', 0, 4096).status).toBe(PC.TIMEOUT);
      expect(await lib.cancel(handle, 'NOT-THERE')).toBe(PC.UNKNOWN_ORDER);
    } finally {
      lib.close(handle);
    }
  });

  it('koffi: a handle in use is not closed (PC_BUSY); pc_last_error reports the size it needs', async () => {
    const { handle } = lib.open(config);
    expect(lib.submit(handle, JSON.stringify({ orderId: 'U-1', amount: '1.00' }))).toBe(PC.OK);
    const waiting = lib.waitAsync(handle, 'U-1', 1500);
    await new Promise((r) => setTimeout(r, 300));
    expect(lib.close(handle)).toBe(PC.BUSY);
    expect(await waiting).toBe(PC.TIMEOUT);
    // The last error is the calling thread's: the close here, not the wait on koffi's worker thread.
    const message = lib.lastError(handle);
    expect(message).toBe('calls on this handle are still running (1); close it after they return');
    expect(lib.lastErrorInto(handle, 8)).toEqual({
      status: PC.BUFFER_TOO_SMALL,
      needed: Buffer.byteLength(message) + 1,
    });
    expect(lib.close(handle)).toBe(PC.OK);
  });

  it('koffi: a wrong token is PC_BAD_TOKEN and counted by the plugin', async () => {
    const wrong = path.join(tmp, 'wrong.token');
    writeFileSync(wrong, `${'ab'.repeat(32)}\n`);
    const before = await hookStats();
    const { handle } = lib.open(JSON.stringify({ address: `127.0.0.1:${hookPort}`, tokenFile: wrong }));
    try {
      expect(lib.submit(handle, JSON.stringify({ orderId: 'B-1', amount: '1.00' }))).toBe(PC.BAD_TOKEN);
      expect(lib.lastError(handle)).toContain('refused the token');
      const missing = lib.open(
        JSON.stringify({ address: `127.0.0.1:${hookPort}`, tokenFile: `${wrong}.none` }),
      );
      expect(lib.submit(missing.handle, JSON.stringify({ orderId: 'B-1', amount: '1.00' }))).toBe(
        PC.BAD_TOKEN,
      );
      expect(lib.lastError(missing.handle)).toContain('does not exist');
      lib.close(missing.handle);
    } finally {
      lib.close(handle);
    }
    expect((await hookStats()).badTokens).toBe((before.badTokens as number) + 1);
    expect((await api.order('B-1').catch(() => undefined))?.orderId).toBeUndefined();
  });

  it('koffi: nothing listening is PC_NOT_RUNNING, quickly and with what to do', async () => {
    const closedPort = await freeTcpPort();
    const { handle } = lib.open(JSON.stringify({ address: `127.0.0.1:${closedPort}`, dataDir: pluginData }));
    try {
      const started = Date.now();
      expect(lib.submit(handle, JSON.stringify({ orderId: 'X-1', amount: '1.00' }))).toBe(PC.NOT_RUNNING);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(lib.lastError(handle)).toContain(`nothing listens at 127.0.0.1:${closedPort}`);
      expect(lib.wait(handle, 'X-1', 100, 4096).status).toBe(PC.NOT_RUNNING);
    } finally {
      lib.close(handle);
    }
    // A config that points off this PC is refused before anything is sent.
    expect(lib.open(JSON.stringify({ address: '192.0.2.1:47812', dataDir: pluginData })).status).toBe(
      PC.BAD_INPUT,
    );
  });

  it('16 threads of a C program submit at once through one handle: every order journaled once', async () => {
    const { code, out } = await runSubmitTest([config, 'threads', '16', 'M', '2.50']);
    expect(out).toContain('ok 16');
    expect(code).toBe(0);
    const orders = (await listOrders()).filter((o) => /^M-\d+$/.test(o.orderId));
    expect(orders.map((o) => o.orderId).sort()).toEqual(
      Array.from({ length: 16 }, (_, i) => `M-${i + 1}`).sort(),
    );
    for (const o of orders) expect(o.amount).toEqual({ value: 250, currency: 'CNY' });
    // Submitted again (a register retrying after a timeout): the same orders, no second one.
    const again = await runSubmitTest([config, 'threads', '16', 'M', '2.50']);
    expect(again.out).toContain('ok 16');
    expect((await listOrders()).filter((o) => /^M-\d+$/.test(o.orderId))).toHaveLength(16);
  });

  async function hookStats(): Promise<Record<string, unknown>> {
    const status = await api.status();
    return status.adapters.find((a) => a.adapter === 'native-hook')?.stats ?? {};
  }

  async function listOrders(): Promise<{ orderId: string; amount: { value: number; currency: string } }[]> {
    const r = await fetch(`${api.url}/api/orders`);
    const body = (await r.json()) as unknown;
    return (Array.isArray(body) ? body : ((body as { orders?: unknown[] }).orders ?? [])) as {
      orderId: string;
      amount: { value: number; currency: string };
    }[];
  }
});
