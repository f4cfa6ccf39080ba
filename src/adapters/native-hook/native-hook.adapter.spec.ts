import fc from 'fast-check';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { SystemClock } from '../../protocol/clock';
import { CapturedOrder, OrderResult, RejectedInput } from '../host-adapter';
import { parseManifest } from '../manifest';
import { createAdapter } from '../registry';
import { NativeHookAdapter } from './native-hook.adapter';
import { freePort } from '../../../test/support/child-process';
import { HookClient as Client } from '../../../test/support/hook-client';

function result(orderId: string, status: OrderResult['status']): OrderResult {
  return {
    orderId,
    registerId: 'R1',
    status,
    amount: { value: 1250, currency: 'CNY' },
    signature: 'c2lnbmVk',
    decidedAt: '2026-01-01T00:00:00.000Z',
  };
}

describe(NativeHookAdapter.name, () => {
  let dir: string;
  let port: number;
  let sut: NativeHookAdapter;
  let orders: CapturedOrder[];
  let rejects: RejectedInput[];
  let errors: Error[];
  let withdrawn: string[];
  const clients: Client[] = [];

  const make = () =>
    new NativeHookAdapter(
      {
        listen: { host: '127.0.0.1', port },
        maxLineBytes: 2048,
        registerId: 'R1',
        currency: 'CNY',
        stateDir: dir,
      },
      { clock: new SystemClock(), onError: (e) => void errors.push(e) },
    );
  const ctx = () => ({
    onOrder: async (o: CapturedOrder) => void orders.push(o),
    onReject: (r: RejectedInput) => void rejects.push(r),
    onWithdraw: async (orderId: string) => {
      withdrawn.push(orderId);
      return orderId === 'PAID'
        ? ('stands' as const)
        : orderId.startsWith('W')
          ? ('canceled' as const)
          : ('unknown' as const);
    },
  });
  const token = async () => (await fs.readFile(path.join(dir, 'native-hook.token'), 'utf8')).trim();
  /** A connection that has presented the right token. */
  const session = async () => {
    const c = await Client.connect(port);
    clients.push(c);
    expect(await c.request({ op: 'hello', token: await token(), client: 'spec' })).toEqual({
      ok: true,
      protocol: 1,
      server: 'payconnect',
    });
    return c;
  };

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'payconnect-native-hook-'));
    port = await freePort();
    orders = [];
    rejects = [];
    errors = [];
    withdrawn = [];
    sut = make();
    await sut.start(ctx());
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await sut.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is built from a manifest by the registry, listening where options.listen says', async () => {
    const m = parseManifest(
      [
        'id: nh',
        'name: nh',
        'adapter: native-hook',
        'register: R1',
        `options: { listen: "tcp://127.0.0.1:${port}" }`,
        'parse: { currency: CNY }',
        'writeBack: {}',
        'dispatch: { mode: broadcast }',
      ].join('\n'),
      'nh.yaml',
    );
    const a = createAdapter(m, { baseDir: dir, stateDir: dir, clock: new SystemClock() });
    expect(a).toBeInstanceOf(NativeHookAdapter);
    expect((a as NativeHookAdapter).config).toMatchObject({
      listen: { host: '127.0.0.1', port },
      stateDir: dir,
    });
  });

  it('writes a 64-hex token, mode 0600, and keeps it across restarts', async () => {
    const t = await token();
    expect(t).toMatch(/^[0-9a-f]{64}$/);
    if (process.platform !== 'win32') {
      expect((await fs.stat(path.join(dir, 'native-hook.token'))).mode & 0o777).toBe(0o600);
    }
    await sut.stop();
    sut = make();
    await sut.start(ctx());
    expect(await token()).toBe(t);
  });

  it('refuses a wrong token, a missing hello and a garbage first line, counting each and closing', async () => {
    for (const first of [
      { op: 'hello', token: 'ab'.repeat(32) },
      { op: 'submit', order: { orderId: 'A', amount: '1.00' } },
      'not json at all',
    ]) {
      const c = await Client.connect(port);
      clients.push(c);
      const a = await c.request(first);
      expect(a).toMatchObject({ ok: false, error: 'bad_token', code: 'native_hook.bad_token' });
      expect(await c.closedWithin(2000)).toBe(true);
    }
    expect(sut.stats()).toMatchObject({ badTokens: 3, orders: 0 });
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual([
      'native_hook.bad_token',
      'native_hook.bad_token',
      'native_hook.bad_token',
    ]);
    expect(orders).toEqual([]);
  });

  it('counts a wrong token once however many lines follow it, and reads none of them', async () => {
    const c = await Client.connect(port);
    clients.push(c);
    const submit = JSON.stringify({ op: 'submit', order: { orderId: 'P-1', amount: '1.00' } });
    c.send(`${JSON.stringify({ op: 'hello', token: 'cd'.repeat(32) })}\n${submit}\n${submit}\n{garbage\n`);
    expect(await c.next()).toMatchObject({ error: 'bad_token' });
    expect(await c.closedWithin(2000)).toBe(true);
    expect(sut.stats()).toMatchObject({ badTokens: 1, badLines: 0, orders: 0 });
    expect(orders).toEqual([]);
  });

  it('takes an order once journaled, in exact minor units, and names the bad fields of a bad one', async () => {
    const c = await session();
    expect(await c.request({ op: 'submit', order: { orderId: 'A-1', amount: '12.50' } })).toEqual({
      ok: true,
      orderId: 'A-1',
      amount: { value: 1250, currency: 'CNY' },
    });
    expect(orders).toEqual([
      expect.objectContaining({
        orderId: 'A-1',
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
        source: 'native-hook',
      }),
    ]);
    const bad = await c.request({ op: 'submit', order: { orderId: 'A-2', amount: 12.5, dispach: 'T1' } });
    expect(bad).toMatchObject({ ok: false, error: 'rejected' });
    expect(bad.message).toContain('amount: must be a decimal string like "12.50"');
    expect(bad.message).toContain('dispach: unknown field');
    expect(rejects).toHaveLength(1);
    expect(sut.stats()).toMatchObject({ orders: 1, rejected: 1 });
  });

  it('answers garbage lines and unknown ops with a clear error, counts them, and keeps the connection', async () => {
    const c = await session();
    c.send('{{{ garbage\n');
    expect(await c.next()).toMatchObject({ ok: false, error: 'bad_request', code: 'native_hook.bad_line' });
    c.send(Buffer.from([0xff, 0xfe, 0x00, 0x0a]));
    expect(await c.next()).toMatchObject({ ok: false, code: 'native_hook.bad_line' });
    const unknown = await c.request({ op: 'refund', orderId: 'A-1' });
    expect(unknown).toMatchObject({ ok: false, error: 'bad_request', code: 'native_hook.unknown_op' });
    expect(unknown.message).toContain('known: hello, submit, wait, ack, cancel, ping');
    expect(await c.request({ op: 'wait', orderId: 'A-1', timeoutMs: -5 })).toMatchObject({
      code: 'native_hook.bad_timeout',
    });
    expect(await c.request({ op: 'ping' })).toEqual({ ok: true, pong: true });
    expect(sut.stats()).toMatchObject({ badLines: 4 });
    expect(rejects.map((r) => r.code)).toEqual([
      'native_hook.bad_line',
      'native_hook.bad_line',
      'native_hook.unknown_op',
      'native_hook.bad_timeout',
    ]);
    // Another connection, and its orders, never noticed.
    const other = await session();
    expect(await other.request({ op: 'submit', order: { orderId: 'B-1', amount: '1.00' } })).toMatchObject({
      ok: true,
    });
  });

  it('answers an over-long line once and closes only that connection', async () => {
    const c = await session();
    const other = await session();
    c.send(
      `${JSON.stringify({ op: 'submit', order: { orderId: 'L-1', amount: '1.00', pad: 'x'.repeat(4000) } })}\n`,
    );
    expect(await c.next()).toMatchObject({ ok: false, code: 'native_hook.line_too_long' });
    expect(await c.closedWithin(2000)).toBe(true);
    expect(await other.request({ op: 'submit', order: { orderId: 'L-2', amount: '1.00' } })).toMatchObject({
      ok: true,
    });
    expect(orders.map((o) => o.orderId)).toEqual(['L-2']);
    expect(sut.stats()).toMatchObject({ badLines: 1 });
  });

  it('answers a wait at once for a decided order, after the write-back for a pending one, and never again after the ack', async () => {
    const c = await session();
    await c.request({ op: 'submit', order: { orderId: 'W-1', amount: '12.50' } });
    // Pending: the wait is answered when the result is written back.
    c.send(`${JSON.stringify({ op: 'wait', orderId: 'W-1', timeoutMs: 5000 })}\n`);
    await new Promise((r) => setTimeout(r, 100));
    await sut.writeBack(result('W-1', 'paid'));
    const got = await c.next();
    expect(got).toMatchObject({
      ok: true,
      delivery: 'W-1:paid',
      result: {
        orderId: 'W-1',
        status: 'paid',
        amount: { value: 1250, currency: 'CNY' },
        signature: 'c2lnbmVk',
      },
    });
    // Not acknowledged yet: asked again, the same result at once.
    expect(await c.request({ op: 'wait', orderId: 'W-1', timeoutMs: 0 })).toMatchObject({
      delivery: 'W-1:paid',
    });
    expect(await c.request({ op: 'ack', delivery: 'W-1:paid' })).toEqual({ ok: true, delivery: 'W-1:paid' });
    expect(await c.request({ op: 'ack', delivery: 'W-1:paid' })).toEqual({ ok: true, delivery: 'W-1:paid' });
    const started = Date.now();
    expect(await c.request({ op: 'wait', orderId: 'W-1', timeoutMs: 200 })).toMatchObject({
      ok: false,
      error: 'timeout',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    // A write-back repeated by the plugin (after a restart) is not a new result.
    await sut.writeBack(result('W-1', 'paid'));
    expect(await c.request({ op: 'wait', orderId: 'W-1', timeoutMs: 0 })).toMatchObject({ error: 'timeout' });
    expect(await c.request({ op: 'wait', orderId: 'NOPE', timeoutMs: 0 })).toMatchObject({
      error: 'unknown_order',
    });
    expect(await c.request({ op: 'ack', delivery: 'NOPE:paid' })).toMatchObject({
      code: 'native_hook.unknown_delivery',
    });
    expect(sut.stats()).toMatchObject({ resultsDelivered: 1, resultsWaiting: 0 });
  });

  it('gives each final state once: failed, then paid when the customer tries again', async () => {
    const c = await session();
    await c.request({ op: 'submit', order: { orderId: 'F-1', amount: '12.50' } });
    await sut.writeBack(result('F-1', 'failed'));
    await sut.writeBack(result('F-1', 'paid'));
    const first = await c.request({ op: 'wait', orderId: 'F-1', timeoutMs: 0 });
    expect(first).toMatchObject({ delivery: 'F-1:failed' });
    await c.request({ op: 'ack', delivery: 'F-1:failed' });
    expect(await c.request({ op: 'wait', orderId: 'F-1', timeoutMs: 0 })).toMatchObject({
      delivery: 'F-1:paid',
    });
  });

  it('keeps results the library has not acknowledged across a restart of the adapter', async () => {
    const c = await session();
    await c.request({ op: 'submit', order: { orderId: 'R-1', amount: '12.50' } });
    await c.request({ op: 'submit', order: { orderId: 'R-2', amount: '3.00' } });
    await sut.writeBack(result('R-1', 'paid'));
    await sut.writeBack(result('R-2', 'canceled'));
    expect(await c.request({ op: 'wait', orderId: 'R-2', timeoutMs: 0 })).toMatchObject({
      delivery: 'R-2:canceled',
    });
    await c.request({ op: 'ack', delivery: 'R-2:canceled' });
    await sut.stop();

    sut = make();
    expect(sut.stats()).toMatchObject({ resultsWaiting: 0 });
    await sut.start(ctx());
    expect(sut.stats()).toMatchObject({ resultsWaiting: 1 });
    const after = await session();
    expect(await after.request({ op: 'wait', orderId: 'R-1', timeoutMs: 0 })).toMatchObject({
      delivery: 'R-1:paid',
      result: { status: 'paid', amount: { value: 1250, currency: 'CNY' } },
    });
    expect(await after.request({ op: 'wait', orderId: 'R-2', timeoutMs: 0 })).toMatchObject({
      error: 'timeout',
    });
  });

  it('queues a write-back durably even when stopped (a switched-away adapter still writes back)', async () => {
    await sut.stop();
    await sut.writeBack(result('S-1', 'paid'));
    const files = (await fs.readdir(path.join(dir, 'native-hook'))).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    sut = make();
    await sut.start(ctx());
    const c = await session();
    expect(await c.request({ op: 'wait', orderId: 'S-1', timeoutMs: 0 })).toMatchObject({
      delivery: 'S-1:paid',
    });
  });

  it('cancels through ctx.onWithdraw and says when the order stands or is unknown', async () => {
    const c = await session();
    expect(await c.request({ op: 'cancel', orderId: 'W-9' })).toEqual({ ok: true, outcome: 'canceled' });
    expect(await c.request({ op: 'cancel', orderId: 'PAID' })).toMatchObject({ ok: false, error: 'stands' });
    expect(await c.request({ op: 'cancel', orderId: 'X' })).toMatchObject({
      ok: false,
      error: 'unknown_order',
    });
    expect(withdrawn).toEqual(['W-9', 'PAID', 'X']);
    expect(sut.stats()).toMatchObject({ cancels: 1 });
  });

  it('a wait ends when its connection closes, and leaves nothing behind', async () => {
    const c = await session();
    await c.request({ op: 'submit', order: { orderId: 'Q-1', amount: '1.00' } });
    c.send(`${JSON.stringify({ op: 'wait', orderId: 'Q-1', timeoutMs: 60_000 })}\n`);
    await new Promise((r) => setTimeout(r, 100));
    c.close();
    await new Promise((r) => setTimeout(r, 100));
    expect((sut as unknown as { waiters: Map<string, unknown> }).waiters.size).toBe(0);
    expect(sut.stats()).toMatchObject({ open: 0 });
  });

  it('random bytes on authenticated connections never stop the adapter or touch another order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            fc.string({ maxLength: 100 }).map((t) => `${t}\n`),
          ),
          {
            maxLength: 8,
          },
        ),
        async (chunks) => {
          const c = await session();
          for (const chunk of chunks) c.send(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
          c.send('\n');
          await new Promise((r) => setTimeout(r, 5));
          c.close();
        },
      ),
      { numRuns: 40 },
    );
    const good = await session();
    expect(await good.request({ op: 'submit', order: { orderId: 'G-1', amount: '4.20' } })).toMatchObject({
      ok: true,
    });
    expect(orders.filter((o) => o.orderId === 'G-1')).toEqual([
      expect.objectContaining({ amount: { value: 420, currency: 'CNY' } }),
    ]);
  });

  it('probe names the field when another program has the port, and passes once it is free', async () => {
    const other = make();
    // This plugin's own hook on the port (the one a new manifest replaces) counts as working (held-ports.ts).
    await expect(other.probe()).resolves.toBeUndefined();
    await sut.stop();
    const foreign = net.createServer();
    await new Promise<void>((r) => foreign.listen(port, '127.0.0.1', () => r()));
    try {
      await expect(other.probe()).rejects.toThrow(
        /^options\.listen: cannot listen on tcp:\/\/127\.0\.0\.1:\d+ \(EADDRINUSE\); another program/,
      );
    } finally {
      await new Promise<void>((r) => foreign.close(() => r()));
    }
    await expect(other.probe()).resolves.toBeUndefined();
  });
});
