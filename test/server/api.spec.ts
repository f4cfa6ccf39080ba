/**
 * The payment server's HTTP API as its users see it — a reseller's tooling (admin token) and the devices
 * of a shop (bearer tokens) — against a real server on a real port, once per storage engine: an SQLite
 * file and a private PostgreSQL schema. The simulator provider runs 200 times faster than real time, so
 * every payment-code scenario (DESIGN.md "Test payment codes") plays out for real, sweeper included.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { verifyPaymentResult } from '../../src/protocol/payment-signature';
import type { Payment } from '../../src/protocol/states';
import { createServerApp, RunningServer } from '../../src/server/server-app';
import {
  type PaymentProvider,
  ProviderRejectedError,
  ProviderUnknownError,
} from '../../src/server/providers/provider';
import { SimulatorProvider, SimTradeRow } from '../../src/server/providers/simulator.provider';
import type { DbUrl } from '../../src/server/storage/db';
import type { PostgresDb } from '../../src/server/storage/postgres';

jest.setTimeout(30_000);

const ADMIN = `admin-${randomBytes(12).toString('hex')}`;
const SPEED = 200;
/** The wallet deadline (30 s real time) at SPEED. */
const DEADLINE_MS = 30_000 / SPEED;

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

interface Registered {
  deviceId: string;
  storeId: string;
  token: string;
  lanKey: { id: number; version: number; key: string };
  serverPublicKey: string;
}

interface Engine {
  name: string;
  db: () => DbUrl;
  cleanup: (running: RunningServer | undefined) => Promise<void>;
}

let sqliteDir: string | undefined;
const engines: Engine[] = [
  {
    name: 'sqlite',
    db: () => {
      sqliteDir = mkdtempSync(join(tmpdir(), 'pc-api-'));
      return { kind: 'sqlite', path: join(sqliteDir, 'server.db') };
    },
    cleanup: async (running) => {
      await running?.close();
      if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
    },
  },
  {
    name: 'postgres',
    db: () => ({
      kind: 'postgres',
      url: `postgres://postgres@127.0.0.1:5432/test?schema=pc_api_${randomBytes(6).toString('hex')}`,
    }),
    cleanup: async (running) => {
      if (!running) return;
      await (running.context.db as unknown as PostgresDb).dropSchema();
      await running.close();
    },
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An 18-digit test payment code: prefix, random middle, the ending that picks the scenario. */
function walletCode(prefix: '28' | '13', ending: string): string {
  let middle = '';
  while (middle.length < 14) middle += String(randomInt(0, 10));
  return `${prefix}${middle}${ending}`;
}

describe.each(engines)('server HTTP API on $name', (engine) => {
  let running: RunningServer;
  let base: string;
  let sim: SimulatorProvider;
  /** Stores whose link to the provider is slow: each charge takes this long to reach it (ms). */
  const slowLink = new Map<string, number>();
  /** Payments whose refunds the provider refuses (a real provider's own rule, not ours). */
  const refusedRefunds = new Set<string>();
  /** Payments whose refund answers are lost on the way back (the provider did refund): 502 refund_unknown. */
  const lostRefundAnswers = new Set<string>();
  /** Every full payment code this suite sent, and every response body it got back. */
  const codesUsed = new Set<string>();
  const responseTexts: string[] = [];
  const openSockets = new Set<WebSocket>();

  async function call(
    method: string,
    path: string,
    opts: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.rawBody !== undefined || opts.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = opts.rawBody ?? JSON.stringify(opts.body);
    }
    const res = await fetch(base + path, { method, headers, body });
    const text = await res.text();
    responseTexts.push(text);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  const admin = (method: string, path: string, body?: unknown) => call(method, path, { token: ADMIN, body });

  async function newStore(name: string): Promise<string> {
    const r = await admin('POST', '/v1/stores', { name });
    expect(r.status).toBe(201);
    return r.json.id;
  }

  async function codeFor(storeId: string, role: 'terminal' | 'plugin'): Promise<string> {
    const r = await admin('POST', `/v1/stores/${storeId}/registration-codes`, { role });
    expect(r.status).toBe(201);
    return r.json.code;
  }

  async function registerDevice(
    storeId: string,
    deviceId: string,
    role: 'terminal' | 'plugin' = 'terminal',
  ): Promise<Registered> {
    const code = await codeFor(storeId, role);
    const r = await call('POST', '/v1/devices/register', {
      body: { code, deviceId, role, name: `${role} ${deviceId}` },
    });
    expect(r.status).toBe(201);
    return r.json;
  }

  function paymentBody(code: string, overrides: Record<string, unknown> = {}) {
    codesUsed.add(code);
    return {
      orderId: `O-${randomBytes(5).toString('hex')}`,
      registerId: 'R1',
      amount: { value: 1250, currency: 'CNY' },
      method: { type: 'wallet_code', code },
      ...overrides,
    };
  }

  function pay(device: Registered, body: unknown, key = `k-${randomBytes(8).toString('hex')}`) {
    return call('POST', '/v1/payments', { token: device.token, body, headers: { 'idempotency-key': key } });
  }

  /** Polls the payment until it is no longer pending (bounded), as a device that lost its push would. */
  async function untilFinal(device: Registered, id: string, timeoutMs = 5000): Promise<Payment> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await call('GET', `/v1/payments/${id}`, { token: device.token });
      expect(r.status).toBe(200);
      if (r.json.status !== 'pending') return r.json;
      if (Date.now() > until) throw new Error(`payment ${id} still pending after ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  const trade = (id: string): Promise<SimTradeRow | undefined> => sim.trade(id);

  /** The statuses of a payment's signed events, in sequence order: its history as devices were told it. */
  async function history(paymentId: string): Promise<string[]> {
    const rows = await running.context.db.query<{ body: string }>(
      'SELECT body FROM events WHERE payment_id = $1 ORDER BY seq',
      [paymentId],
    );
    return rows.map((r) => JSON.parse(r.body).status);
  }

  interface Listener {
    ws: WebSocket;
    frames: any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    closed: Promise<void>;
  }

  async function listen(token: string, query = ''): Promise<Listener> {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/events${query}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    openSockets.add(ws);
    const frames: unknown[] = [];
    ws.on('message', (data) => {
      responseTexts.push(String(data));
      frames.push(JSON.parse(String(data)));
    });
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return { ws, frames, closed };
  }

  async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  // The shop used by most tests: two terminals and a plugin in store A, one terminal in store B.
  let storeA: string;
  let storeB: string;
  let t1: Registered;
  let t2: Registered;
  let plugin: Registered;
  let b1: Registered;

  beforeAll(async () => {
    running = await createServerApp({
      port: 0,
      db: engine.db(),
      adminToken: ADMIN,
      simSpeed: SPEED,
      logger: false,
      // This suite refuses many codes on purpose from one address; the limit itself has its own test.
      registrationLimit: { failures: 1000, windowMs: 60_000 },
      // The built-in simulator, kept at hand to read its books, behind a link that can be made slow.
      provider: (ctx) => {
        sim = new SimulatorProvider(ctx);
        const inner = sim;
        const provider: PaymentProvider = {
          name: inner.name,
          charge: async (req) => {
            const delay = slowLink.get(req.storeId);
            if (delay) await sleep(delay);
            return inner.charge(req);
          },
          query: (id) => inner.query(id),
          cancel: (id) => inner.cancel(id),
          refund: async (id, refundNo, amount) => {
            if (refusedRefunds.has(id))
              throw new ProviderRejectedError(
                'TRADE_HAS_CLOSE',
                'the trade is closed for refunds at the provider',
              );
            const answer = await inner.refund(id, refundNo, amount);
            if (lostRefundAnswers.has(id)) throw new ProviderUnknownError('timeout: no answer to the refund');
            return answer;
          },
          queryRefund: (id, refundNo) => inner.queryRefund(id, refundNo),
        };
        return provider;
      },
    });
    base = running.url;
    storeA = await newStore('Shop A');
    storeB = await newStore('Shop B');
    t1 = await registerDevice(storeA, 'T1');
    t2 = await registerDevice(storeA, 'T2');
    plugin = await registerDevice(storeA, 'P1', 'plugin');
    b1 = await registerDevice(storeB, 'B1');
  });

  afterAll(async () => {
    for (const ws of openSockets) ws.terminate();
    await engine.cleanup(running);
  });

  describe('stores and device registration', () => {
    it('registers a terminal with a one-use code and hands it a token, the LAN key and the server key', async () => {
      const store = await newStore('Corner shop');
      const codeReply = await admin('POST', `/v1/stores/${store}/registration-codes`, { role: 'terminal' });
      expect(codeReply.status).toBe(201);
      expect(codeReply.json.code).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
      const expiresIn = Date.parse(codeReply.json.expiresAt) - Date.now();
      expect(expiresIn).toBeGreaterThan(9 * 60_000);
      expect(expiresIn).toBeLessThanOrEqual(10 * 60_000);

      const r = await call('POST', '/v1/devices/register', {
        body: { code: codeReply.json.code, deviceId: 'T9', role: 'terminal', name: 'Till 9' },
      });
      expect(r.status).toBe(201);
      expect(r.json).toMatchObject({ deviceId: 'T9', storeId: store });
      expect(typeof r.json.token).toBe('string');
      expect(r.json.token.length).toBeGreaterThanOrEqual(32);
      expect(r.json.lanKey).toEqual({ id: expect.any(Number), version: 1, key: expect.any(String) });
      expect(Buffer.from(r.json.lanKey.key, 'base64')).toHaveLength(32);
      expect(Buffer.from(r.json.serverPublicKey, 'base64')).toHaveLength(32);

      const me = await call('GET', '/v1/devices/me', { token: r.json.token });
      expect(me.status).toBe(200);
      expect(me.json).toMatchObject({ deviceId: 'T9', storeId: store, role: 'terminal', name: 'Till 9' });
      expect(me.json.lanKeys).toEqual([r.json.lanKey]);
      expect(me.json.serverPublicKey).toBe(r.json.serverPublicKey);
      // Every device of every store pins the same server key.
      expect(r.json.serverPublicKey).toBe(t1.serverPublicKey);
    });

    async function register(code: string, role = 'terminal', deviceId = `D${randomInt(1e6)}`) {
      return call('POST', '/v1/devices/register', { body: { code, deviceId, role, name: 'x' } });
    }
    function expectRefused(r: Reply, why: RegExp) {
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('registration_refused');
      expect(r.json.error.message).toMatch(why);
    }

    it('refuses a code that was already used', async () => {
      const code = await codeFor(storeA, 'terminal');
      expect((await register(code)).status).toBe(201);
      expectRefused(await register(code), /already used/);
    });

    it('refuses an expired code', async () => {
      const code = await codeFor(storeA, 'terminal');
      await running.context.db.run('UPDATE registration_codes SET expires_at = $1 WHERE lookup = $2', [
        Date.now() - 1000,
        code.slice(0, 4),
      ]);
      expectRefused(await register(code), /expired/);
    });

    it('refuses a code made for another role, without burning it', async () => {
      const code = await codeFor(storeA, 'terminal');
      expectRefused(await register(code, 'plugin'), /terminal/);
      expect((await register(code, 'terminal')).status).toBe(201);
    });

    it('locks a code after five wrong secrets: the right secret is refused on the sixth try', async () => {
      const code = await codeFor(storeA, 'terminal');
      const last = code.slice(-1);
      const wrong = code.slice(0, -1) + (last === '0' ? '1' : '0');
      for (let i = 0; i < 5; i++) expectRefused(await register(wrong), /not a valid code/);
      expectRefused(await register(code), /locked/);
      // The admin sees it locked, and why a new code is needed.
      const list = await admin('GET', `/v1/stores/${storeA}/registration-codes`);
      expect(list.status).toBe(200);
      const mine = list.json.find((c: { code: string }) => c.code.startsWith(code.slice(0, 4)));
      expect(mine).toMatchObject({ role: 'terminal', state: 'locked', wrongTries: 5 });
      expect(JSON.stringify(list.json)).not.toContain(code.slice(5));
    });

    it('refuses malformed and unknown codes', async () => {
      expectRefused(await register('hello'), /XXXX-XXXX-XXXX-XXXX/);
      expectRefused(await register('IIII-IIII-IIII-IIII'), /XXXX-XXXX-XXXX-XXXX/);
      const unknown = await register('ZZZZ-ZZZZ-ZZZZ-ZZZZ');
      expect(unknown.status).toBe(400);
      // No such code and a wrong secret for a live code answer alike: a guesser learns nothing.
      const live = await codeFor(storeA, 'terminal');
      const wrongSecret = await register(live.slice(0, 5) + 'ZZZZ-ZZZZ-ZZZZ');
      expect(wrongSecret.json).toEqual(unknown.json);
      const empty = await register('');
      expect(empty.status).toBe(400);
      expect(empty.json.error.message).toMatch(/code/);
    });

    it('a device registered again gets a new token; the old one is refused at once, though it was just used', async () => {
      const deviceId = `R${randomInt(1e6)}`;
      const first = await registerDevice(storeA, deviceId);
      // Used twice: the server now remembers this token (it looks devices up once per few seconds).
      for (let i = 0; i < 2; i++)
        expect((await call('GET', '/v1/devices/me', { token: first.token })).status).toBe(200);
      const again = await registerDevice(storeA, deviceId);
      expect(again.token).not.toBe(first.token);
      const old = await call('GET', '/v1/devices/me', { token: first.token });
      expect(old.status).toBe(401);
      expect(old.json.error.code).toBe('unauthorized');
      expect((await pay(first, paymentBody(walletCode('28', '00')))).status).toBe(401);
      const now = await call('GET', '/v1/devices/me', { token: again.token });
      expect(now.status).toBe(200);
      expect(now.json).toMatchObject({ deviceId, storeId: storeA });
    });

    it('answers admin calls without or with a wrong admin token with a 401 JSON error', async () => {
      const none = await call('POST', '/v1/stores', { body: { name: 'x' } });
      expect(none.status).toBe(401);
      expect(none.headers.get('content-type')).toMatch(/application\/json/);
      expect(none.json.error).toEqual({ code: 'unauthorized', message: expect.any(String) });
      const wrong = await call('POST', '/v1/stores', { token: 'not-the-admin', body: { name: 'x' } });
      expect(wrong.status).toBe(401);
      expect(wrong.json.error.code).toBe('unauthorized');
      // A device token is not an admin token either.
      const device = await call('POST', `/v1/stores/${storeA}/registration-codes`, {
        token: t1.token,
        body: { role: 'terminal' },
      });
      expect(device.status).toBe(401);
      const code = await call('POST', `/v1/stores/${storeA}/registration-codes`, {
        token: ADMIN,
        body: { role: 'cashier' },
      });
      expect(code.status).toBe(400);
      expect(code.json.error.message).toMatch(/role/);
    });
  });

  describe('LAN key rotation', () => {
    it('hands out two keys during a rotation, the new one first, and one after retire-old', async () => {
      const store = await newStore('Rotating shop');
      const dev = await registerDevice(store, 'RT1');
      const rotated = await admin('POST', `/v1/stores/${store}/lan-keys/rotate`);
      expect(rotated.status).toBe(200);

      const during = (await call('GET', '/v1/devices/me', { token: dev.token })).json.lanKeys;
      expect(during).toHaveLength(2);
      expect(during[0].version).toBe(2);
      expect(during[0].id).toBe(dev.lanKey.id);
      expect(during[0].key).not.toBe(dev.lanKey.key);
      expect(Buffer.from(during[0].key, 'base64')).toHaveLength(32);
      expect(during[1]).toEqual(dev.lanKey);
      // A device registering now seals with the new key.
      expect((await registerDevice(store, 'RT2')).lanKey).toEqual(during[0]);

      const retired = await admin('POST', `/v1/stores/${store}/lan-keys/retire-old`);
      expect(retired.status).toBe(200);
      const after = (await call('GET', '/v1/devices/me', { token: dev.token })).json.lanKeys;
      expect(after).toEqual([during[0]]);
      // Other stores' keys are untouched.
      expect((await call('GET', '/v1/devices/me', { token: t1.token })).json.lanKeys).toHaveLength(1);
    });
  });

  describe('payments', () => {
    it('charges a …00 code at once: 201, succeeded, signed event, code masked', async () => {
      const code = walletCode('28', '00');
      const body = paymentBody(code);
      const r = await pay(t1, body);
      expect(r.status).toBe(201);
      expect(r.headers.get('idempotent-replayed')).toBeNull();
      expect(r.json).toMatchObject({
        id: expect.any(String),
        orderId: body.orderId,
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
        status: 'succeeded',
        method: { type: 'wallet_code', brand: 'alipay', code: `28${'*'.repeat(14)}00` },
      });
      expect(Date.parse(r.json.createdAt)).not.toBeNaN();
      expect(Date.parse(r.json.updatedAt)).not.toBeNaN();
      expect(r.text).not.toContain(code);

      const got = await call('GET', `/v1/payments/${r.json.id}`, { token: t2.token });
      expect(got.json).toEqual(r.json);
      const listed = await call('GET', `/v1/payments?orderId=${body.orderId}`, { token: plugin.token });
      expect(listed.json).toEqual([r.json]);

      const events = await running.context.events.since(storeA, 0, 10_000);
      const last = events.filter((e) => e.payment.id === r.json.id);
      // Decided within the request: one event, the decision (no one saw it pending through events).
      expect(last.map((e) => e.payment.status)).toEqual(['succeeded']);
      for (const e of last)
        expect(verifyPaymentResult(e.payment, e.signature, t1.serverPublicKey, storeA)).toBe(true);
      expect(last[0].payment).toEqual(r.json);
    });

    it('replays the stored response for the same key and body, and refuses the key with another body', async () => {
      const key = `replay-${randomBytes(6).toString('hex')}`;
      const body = paymentBody(walletCode('13', '00'));
      const first = await pay(t1, body, key);
      expect(first.status).toBe(201);
      const again = await pay(t1, body, key);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.text).toBe(first.text);
      // Same key, other body: 422, and nothing new was made.
      const other = await pay(t1, { ...body, amount: { value: 1300, currency: 'CNY' } }, key);
      expect(other.status).toBe(422);
      expect(other.json.error.code).toBe('idempotency_key_reused');
      const listed = await call('GET', `/v1/payments?orderId=${body.orderId}`, { token: t1.token });
      expect(listed.json).toHaveLength(1);
      expect((await trade(first.json.id))!.charge_calls).toBe(1);
    });

    it('refuses bad requests with 400 naming the field, storing nothing (the key stays free)', async () => {
      const key = `bad-${randomBytes(6).toString('hex')}`;
      const good = paymentBody(walletCode('28', '00'));
      const { orderId: _o, ...noOrder } = good;
      const { amount: _a, ...noAmount } = good;
      const { method: _m, ...noMethod } = good;
      const cases: Array<[string, unknown, RegExp]> = [
        ['missing orderId', noOrder, /orderId/],
        ['missing amount', noAmount, /amount/],
        ['missing method', noMethod, /method/],
        ['missing registerId', { ...good, registerId: undefined }, /registerId/],
        ['fractional amount', { ...good, amount: { value: 12.5, currency: 'CNY' } }, /amount\.value/],
        ['zero amount', { ...good, amount: { value: 0, currency: 'CNY' } }, /amount\.value/],
        ['negative amount', { ...good, amount: { value: -1, currency: 'CNY' } }, /amount\.value/],
        ['huge amount', { ...good, amount: { value: 2 ** 60, currency: 'CNY' } }, /amount\.value/],
        ['amount as text', { ...good, amount: { value: '1250', currency: 'CNY' } }, /amount\.value/],
        ['unknown currency', { ...good, amount: { value: 1250, currency: 'XXX' } }, /amount\.currency/],
        ['lower-case currency', { ...good, amount: { value: 1250, currency: 'cny' } }, /amount\.currency/],
        ['unknown field', { ...good, tip: 5 }, /tip/],
        ['unknown nested field', { ...good, amount: { ...good.amount, fx: 1 } }, /fx/],
        [
          'code with letters',
          { ...good, method: { type: 'wallet_code', code: '28ABCDEFGH12345600' } },
          /method\.code/,
        ],
        // The protocol's payment code rule: 16-24 digits (the server took 10-32 before).
        [
          'code of 15 digits',
          { ...good, method: { type: 'wallet_code', code: '281234567890100' } },
          /method\.code.*16-24 digits/,
        ],
        [
          'code of 25 digits',
          { ...good, method: { type: 'wallet_code', code: '2812345678901234567890100' } },
          /method\.code.*16-24 digits/,
        ],
        // On the wire the code is normalized: the unit removes the spaces a scanner adds.
        [
          'code with spaces',
          { ...good, method: { type: 'wallet_code', code: good.method.code.replace(/(\d{6})/g, '$1 ') } },
          /method\.code/,
        ],
        ['other method type', { ...good, method: { type: 'card', code: good.method.code } }, /method\.type/],
        ['empty orderId', { ...good, orderId: '' }, /orderId/],
      ];
      for (const [what, body, field] of cases) {
        const r = await pay(t1, body, key);
        expect({ what, status: r.status }).toEqual({ what, status: 400 });
        expect({ what, message: r.json.error.message }).toEqual({
          what,
          message: expect.stringMatching(field),
        });
        expect(r.text).not.toContain(good.method.code);
      }
      const noKey = await call('POST', '/v1/payments', { token: t1.token, body: good });
      expect(noKey.status).toBe(400);
      expect(noKey.json.error.code).toBe('idempotency_key_required');
      expect(noKey.json.error.message).toMatch(/Idempotency-Key/);

      // Nothing was stored: the same key now takes a valid request, and the order has just that payment.
      const ok = await pay(t1, good, key);
      expect(ok.status).toBe(201);
      expect(ok.headers.get('idempotent-replayed')).toBeNull();
      expect(ok.json.status).toBe('succeeded');
      const listed = await call('GET', `/v1/payments?orderId=${good.orderId}`, { token: t1.token });
      expect(listed.json).toEqual([ok.json]);
      expect((await trade(ok.json.id))!.charge_calls).toBe(1);
    });

    it('takes payment codes of 16 and of 24 digits, the ends of the protocol rule', async () => {
      for (const code of ['2812345678901200', '281234567890123456789000']) {
        const r = await pay(t1, paymentBody(code));
        expect({ digits: code.length, status: r.status }).toEqual({ digits: code.length, status: 201 });
        // It reached the provider: the simulator's own rule (18 digits) decides it, not the server's.
        expect((await trade(r.json.id))!.charge_calls).toBe(1);
      }
    });

    it('answers an oversized body with 413 and malformed JSON with 400 invalid_json', async () => {
      const big = paymentBody(walletCode('28', '00'), { note: 'x'.repeat(20_000) });
      const tooLarge = await pay(t1, big);
      expect(tooLarge.status).toBe(413);
      expect(tooLarge.json.error.code).toBe('body_too_large');

      const bad = await call('POST', '/v1/payments', {
        token: t1.token,
        rawBody: '{"orderId": "A1", ',
        headers: { 'idempotency-key': 'json-1' },
      });
      expect(bad.status).toBe(400);
      expect(bad.json.error.code).toBe('invalid_json');
    });

    it('refuses payment calls without a token or with an unknown one (401)', async () => {
      const body = paymentBody(walletCode('28', '00'));
      const none = await call('POST', '/v1/payments', { body, headers: { 'idempotency-key': 'k-none' } });
      expect(none.status).toBe(401);
      expect(none.json.error.code).toBe('unauthorized');
      const wrong = await call('POST', '/v1/payments', {
        token: 'nope',
        body,
        headers: { 'idempotency-key': 'k-wrong' },
      });
      expect(wrong.status).toBe(401);
      expect(wrong.json.error.code).toBe('unauthorized');
      expect((await call('GET', '/v1/payments/pay_x')).status).toBe(401);
      expect((await call('GET', '/v1/payments?orderId=x', { token: ADMIN })).status).toBe(401);
      const listed = await call('GET', `/v1/payments?orderId=${body.orderId}`, { token: t1.token });
      expect(listed.json).toEqual([]);
    });

    it("keeps stores apart: a device of store B cannot see, list, cancel or refund store A's payment", async () => {
      const body = paymentBody(walletCode('28', '00'));
      const r = await pay(t1, body);
      expect(r.status).toBe(201);
      const get = await call('GET', `/v1/payments/${r.json.id}`, { token: b1.token });
      expect(get.status).toBe(404);
      expect(get.json.error.code).toBe('not_found');
      const list = await call('GET', `/v1/payments?orderId=${body.orderId}`, { token: b1.token });
      expect(list.status).toBe(200);
      expect(list.json).toEqual([]);
      expect((await call('POST', `/v1/payments/${r.json.id}/cancel`, { token: b1.token })).status).toBe(404);
      const refund = await call('POST', `/v1/payments/${r.json.id}/refunds`, {
        token: b1.token,
        body: {},
        headers: { 'idempotency-key': 'steal' },
      });
      expect(refund.status).toBe(404);
      expect((await call('GET', `/v1/payments/${r.json.id}`, { token: t1.token })).json.status).toBe(
        'succeeded',
      );
      // The same Idempotency-Key in another store is another store's key.
      const key = `shared-${randomBytes(4).toString('hex')}`;
      const a = await pay(t1, paymentBody(walletCode('28', '00')), key);
      const b = await pay(b1, paymentBody(walletCode('28', '00')), key);
      expect([a.status, b.status]).toEqual([201, 201]);
      expect(b.headers.get('idempotent-replayed')).toBeNull();
      expect(b.json.id).not.toBe(a.json.id);
    });
  });

  describe('every simulator code, end to end', () => {
    async function run(prefix: '28' | '13', ending: string) {
      const body = paymentBody(walletCode(prefix, ending));
      const created = Date.now();
      const r = await pay(t1, body);
      expect(r.status).toBe(201);
      const final = r.json.status === 'pending' ? await untilFinal(t1, r.json.id) : r.json;
      // A device reading it later sees the same final state.
      expect((await call('GET', `/v1/payments/${r.json.id}`, { token: t2.token })).json).toEqual(final);
      return { first: r.json as Payment, final, created, id: r.json.id as string };
    }

    it('…00 succeeds at once (Alipay brand for 28…), charged once', async () => {
      const { first, id } = await run('28', '00');
      expect(first.status).toBe('succeeded');
      expect(first.method.brand).toBe('alipay');
      expect(first.failure).toBeUndefined();
      expect((await trade(id))!.charge_calls).toBe(1);
    });

    it('…05 is declined for insufficient funds (WeChat brand for 13…), charged once', async () => {
      const { first, id } = await run('13', '05');
      expect(first.status).toBe('failed');
      expect(first.method.brand).toBe('wechat');
      expect(first.failure).toEqual({ code: 'insufficient_funds', message: expect.any(String) });
      expect((await trade(id))!.charge_calls).toBe(1);
    });

    it('…10 is pending while the customer confirms, then succeeds', async () => {
      const { first, final, id } = await run('28', '10');
      expect(['pending', 'succeeded']).toContain(first.status);
      expect(final.status).toBe('succeeded');
      expect(final.method.brand).toBe('alipay');
      expect(await history(id)).toEqual(['pending', 'succeeded']);
      const t = (await trade(id))!;
      expect(t.charge_calls).toBe(1);
      expect(t.query_calls).toBeGreaterThanOrEqual(1);
      expect(t.state).toBe('succeeded');
    });

    it('…11 stays pending, then is canceled with customer_timeout at the (scaled) deadline', async () => {
      const { first, final, id } = await run('13', '11');
      expect(first.status).toBe('pending');
      expect(final.status).toBe('canceled');
      expect(final.failure).toEqual({ code: 'customer_timeout', message: expect.any(String) });
      expect(final.reversed).toBeUndefined();
      expect(Date.parse(final.updatedAt) - Date.parse(final.createdAt)).toBeGreaterThanOrEqual(DEADLINE_MS);
      expect(await history(id)).toEqual(['pending', 'canceled']);
      const t = (await trade(id))!;
      expect(t.charge_calls).toBe(1);
      expect(t.cancel_calls).toBe(1);
      expect(t.state).toBe('closed');
    });

    it('…20 times out at the provider, and a query finds it succeeded: charged once', async () => {
      const { final, id } = await run('28', '20');
      expect(final.status).toBe('succeeded');
      expect(await history(id)).toEqual(['pending', 'succeeded']);
      await sleep(100); // time for a wrong second charge or a wrong cancel to show
      const t = (await trade(id))!;
      expect(t.charge_calls).toBe(1);
      expect(t.query_calls).toBeGreaterThanOrEqual(1);
      expect(t.cancel_calls).toBe(0);
      expect(t.state).toBe('succeeded');
    });

    it('…21 fails with provider_error: no trade at the provider, never charged again', async () => {
      const { final, id } = await run('13', '21');
      expect(final.status).toBe('failed');
      expect(final.failure).toEqual({ code: 'provider_error', message: expect.any(String) });
      await sleep(100);
      const t = await trade(id);
      // The server closed the trade number so a late charge cannot go through; nothing was ever charged.
      expect(t).toMatchObject({ scenario: 'none', state: 'closed', charge_calls: 0 });
      expect(await history(id)).toEqual(['pending', 'failed']);
    });

    it('…30 is refused as an invalid code', async () => {
      const { first, id } = await run('28', '30');
      expect(first.status).toBe('failed');
      expect(first.failure).toEqual({ code: 'invalid_code', message: expect.any(String) });
      expect((await trade(id))!.charge_calls).toBe(1);
    });

    it('any other ending succeeds at once', async () => {
      for (const ending of ['01', '42', '99']) {
        const { first, id } = await run('13', ending);
        expect(first.status).toBe('succeeded');
        expect(first.method.brand).toBe('wechat');
        expect((await trade(id))!.charge_calls).toBe(1);
      }
    });
  });

  describe('a slow link to the provider', () => {
    it('a charge still on its way is not given up before the deadline', async () => {
      const store = await newStore('Slow link shop');
      const till = await registerDevice(store, 'SL1');
      // Slower than the first check (5 s real time), well inside the deadline (30 s).
      slowLink.set(store, Math.round(DEADLINE_MS / 2));
      for (const ending of ['00', '10']) {
        const r = await pay(till, paymentBody(walletCode('28', ending)));
        expect(r.status).toBe(201);
        const final = r.json.status === 'pending' ? await untilFinal(till, r.json.id) : r.json;
        expect({ ending, status: final.status, failure: final.failure }).toEqual({
          ending,
          status: 'succeeded',
          failure: undefined,
        });
        const t = (await trade(r.json.id))!;
        expect(t).toMatchObject({ charge_calls: 1, cancel_calls: 0, state: 'succeeded' });
        // …00 is decided within its (slow) request: one event. …10 stays pending (user_paying) after it.
        expect(await history(r.json.id)).toEqual(ending === '00' ? ['succeeded'] : ['pending', 'succeeded']);
      }
    });

    it('a charge that reaches the provider after the deadline is refused: the customer is not charged', async () => {
      const store = await newStore('Very slow link shop');
      const till = await registerDevice(store, 'VS1');
      slowLink.set(store, DEADLINE_MS * 2);
      const r = await pay(till, paymentBody(walletCode('13', '00')));
      expect(r.status).toBe(201);
      expect(r.json).toMatchObject({ status: 'failed', failure: { code: 'provider_error' } });
      expect(Date.parse(r.json.updatedAt) - Date.parse(r.json.createdAt)).toBeGreaterThanOrEqual(DEADLINE_MS);
      // The server closed the trade at the deadline; the late charge found it closed.
      const t = (await trade(r.json.id))!;
      expect(t).toMatchObject({ state: 'closed', charge_calls: 1, cancel_calls: 1 });
      expect(await history(r.json.id)).toEqual(['pending', 'failed']);
      const again = await call('GET', `/v1/payments/${r.json.id}`, { token: till.token });
      expect(again.json).toEqual(r.json);
    });
  });

  describe('one Idempotency-Key, 100 concurrent requests', () => {
    it.each(['20', '10', '00'])('…%s: one payment, one charge; the rest replays or 409', async (ending) => {
      const key = `storm-${ending}-${randomBytes(6).toString('hex')}`;
      const body = paymentBody(walletCode('28', ending));
      const replies = await Promise.all(Array.from({ length: 100 }, () => pay(t2, body, key)));

      const originals = replies.filter(
        (r) => r.status === 201 && r.headers.get('idempotent-replayed') === null,
      );
      expect(originals).toHaveLength(1);
      const original = originals[0];
      for (const r of replies) {
        if (r === original) continue;
        if (r.status === 201) {
          expect(r.headers.get('idempotent-replayed')).toBe('true');
          expect(r.text).toBe(original.text);
        } else {
          expect({ status: r.status, code: r.json?.error?.code }).toEqual({
            status: 409,
            code: 'idempotency_key_in_use',
          });
        }
      }
      const id = original.json.id;
      const rows = await running.context.db.query<{ id: string }>(
        'SELECT id FROM payments WHERE store_id = $1 AND order_id = $2',
        [storeA, body.orderId],
      );
      expect(rows.map((r) => r.id)).toEqual([id]);
      const final = await untilFinal(t2, id);
      // The storm delays the charge itself (it waits its turn for the database), and at 200x the wallet
      // deadline is 150 ms: a charge still on its way may meet the deadline. What must never happen is a
      // decision against a charge in flight before that deadline.
      if (final.status !== 'succeeded') {
        expect(Date.parse(final.updatedAt) - Date.parse(final.createdAt)).toBeGreaterThanOrEqual(DEADLINE_MS);
      }
      const charges = await running.context.db.query<{ n: unknown }>(
        'SELECT COALESCE(SUM(charge_calls), 0) AS n FROM sim_trades WHERE out_trade_no = $1',
        [id],
      );
      expect(Number(charges[0].n)).toBe(1);
      // A client that got 409 retries and now gets the stored answer.
      const retry = await pay(t2, body, key);
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.text).toBe(original.text);
    });
  });

  describe('cancel and refunds', () => {
    it('cancels a pending payment; a succeeded one cannot be canceled (409)', async () => {
      const pending = await pay(t1, paymentBody(walletCode('28', '11')));
      expect(pending.json.status).toBe('pending');
      const canceled = await call('POST', `/v1/payments/${pending.json.id}/cancel`, { token: t2.token });
      expect(canceled.status).toBe(200);
      expect(canceled.json.status).toBe('canceled');
      // Normally our cancel; under heavy load the deadline may have come first. Either way: not charged.
      expect(['canceled', 'customer_timeout']).toContain(canceled.json.failure.code);
      expect((await trade(pending.json.id))!.state).toBe('closed');
      // Canceling again changes nothing.
      const again = await call('POST', `/v1/payments/${pending.json.id}/cancel`, { token: t2.token });
      expect(again.status).toBe(200);
      expect(again.json).toEqual(canceled.json);

      const paid = await pay(t1, paymentBody(walletCode('28', '00')));
      const refused = await call('POST', `/v1/payments/${paid.json.id}/cancel`, { token: t1.token });
      expect(refused.status).toBe(409);
      expect(refused.json.error.code).toBe('payment_succeeded');
      expect((await call('GET', `/v1/payments/${paid.json.id}`, { token: t1.token })).json.status).toBe(
        'succeeded',
      );
    });

    it('a cancel the provider refuses for a paid trade: 409, the charge kept, the reason in the history and metrics', async () => {
      // The sweeper waits, so the cancel finds the payment pending (the charge's answer lost, the trade paid).
      running.context.sweeper.stop();
      sim.refuseCancel = 'paid';
      try {
        const lost = await pay(t1, paymentBody(walletCode('28', '20')));
        expect(lost.json.status).toBe('pending');
        const id = lost.json.id;
        const cancel = await call('POST', `/v1/payments/${id}/cancel`, { token: plugin.token });
        expect(cancel.status).toBe(409);
        expect(cancel.json.error.code).toBe('payment_succeeded');
        const now = await call('GET', `/v1/payments/${id}`, { token: t1.token });
        expect(now.json).toMatchObject({ status: 'succeeded' });
        expect(now.json.failure).toBeUndefined();
        expect(await history(id)).toEqual(['pending', 'succeeded']);
        expect((await trade(id))!).toMatchObject({ state: 'succeeded', charge_calls: 1 });

        const notes = await admin('GET', `/v1/payments/${id}/history`);
        expect(notes.status).toBe(200);
        expect(notes.json).toEqual([
          {
            paymentId: id,
            kind: 'cancel_refused',
            message: expect.stringContaining('cancel refused by provider; charge kept'),
            at: now.json.updatedAt,
          },
        ]);
        expect((await call('GET', `/v1/payments/${id}/history`, { token: t2.token })).json).toEqual(
          notes.json,
        );
        expect((await call('GET', `/v1/payments/${id}/history`, { token: b1.token })).status).toBe(404);
        expect((await call('GET', `/v1/payments/${id}/history`)).status).toBe(401);
        const metrics = await admin('GET', '/metrics');
        expect(metrics.text).toMatch(/^payconnect_cancels_refused_total\{outcome="charge_kept"\} [1-9]/m);

        // The charge stands, so the register refunds it.
        const refund = await call('POST', `/v1/payments/${id}/refunds`, {
          token: plugin.token,
          body: {},
          headers: { 'idempotency-key': `rf-${id}` },
        });
        expect(refund.status).toBe(201);
        expect(refund.json.payment).toMatchObject({ status: 'refunded' });
      } finally {
        sim.refuseCancel = undefined;
        running.context.sweeper.start();
      }
    });

    it('refunds partially and then fully, never more than captured, idempotently', async () => {
      const paid = await pay(t1, paymentBody(walletCode('13', '00')));
      const id = paid.json.id;
      const refund = (value: number, key: string) =>
        call('POST', `/v1/payments/${id}/refunds`, {
          token: plugin.token,
          body: { amount: { value, currency: 'CNY' } },
          headers: { 'idempotency-key': key },
        });

      const first = await refund(500, 'rf-1');
      expect(first.status).toBe(201);
      expect(first.json).toMatchObject({
        id: expect.any(String),
        paymentId: id,
        amount: { value: 500, currency: 'CNY' },
        status: 'succeeded',
        payment: { id, status: 'succeeded', refunded: { value: 500, currency: 'CNY' } },
      });

      const replay = await refund(500, 'rf-1');
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.json).toEqual(first.json);

      const tooMuch = await refund(800, 'rf-2');
      expect(tooMuch.status).toBe(422);
      expect(tooMuch.json.error.code).toBe('refund_exceeds_capture');

      const rest = await refund(750, 'rf-3');
      expect(rest.status).toBe(201);
      expect(rest.json.id).not.toBe(first.json.id);
      expect(rest.json.payment).toMatchObject({ status: 'refunded', refunded: { value: 1250 } });
      const now = await call('GET', `/v1/payments/${id}`, { token: t2.token });
      expect(now.json).toMatchObject({ status: 'refunded', refunded: { value: 1250, currency: 'CNY' } });
      expect((await trade(id))!.refunded_value).toBe(1250);
      expect(await history(id)).toEqual(['succeeded', 'succeeded', 'refunded']);

      // Nothing is left to refund.
      expect((await refund(1, 'rf-4')).status).toBe(409);
    });

    it('refuses to refund a failed payment (409)', async () => {
      const failed = await pay(t1, paymentBody(walletCode('28', '05')));
      expect(failed.json.status).toBe('failed');
      const r = await call('POST', `/v1/payments/${failed.json.id}/refunds`, {
        token: plugin.token,
        body: {},
        headers: { 'idempotency-key': 'rf-failed' },
      });
      expect(r.status).toBe(409);
      expect(r.json.error.code).toBe('not_refundable');
    });

    it('lets the plugin refund, never a unit (403, nothing paid out)', async () => {
      const paid = await pay(t1, paymentBody(walletCode('28', '00')));
      const byUnit = await call('POST', `/v1/payments/${paid.json.id}/refunds`, {
        token: t1.token,
        body: {},
        headers: { 'idempotency-key': `rf-unit-${randomBytes(4).toString('hex')}` },
      });
      expect(byUnit.status).toBe(403);
      expect(byUnit.json.error.message).toContain('terminal may not refund');
      expect((await trade(paid.json.id))!.refunded_value).toBe(0);
      expect((await call('GET', `/v1/payments/${paid.json.id}`, { token: t1.token })).json.status).toBe(
        'succeeded',
      );
    });

    it('ten concurrent full refunds: one refund, nine clean refusals, no key left running', async () => {
      const paid = await pay(t1, paymentBody(walletCode('28', '00')));
      const id = paid.json.id;
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          call('POST', `/v1/payments/${id}/refunds`, {
            token: plugin.token,
            body: {},
            headers: { 'idempotency-key': `rf-many-${i}-${randomBytes(4).toString('hex')}` },
          }),
        ),
      );
      expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
      // The others: 422 while the first is still being refunded (it counts against the cap), 409 once the
      // payment is refunded. Each a clean refusal with its reason, never a 500.
      const refusals = answers
        .filter((a) => a.status !== 201)
        .map((a) => `${a.status} ${a.json.error.code}`)
        .filter((r) => r !== '409 not_refundable' && r !== '422 refund_exceeds_capture');
      expect(refusals).toEqual([]);
      expect((await trade(id))!.refunded_value).toBe(1250);
      const rows = await running.context.db.query<{ status: string }>(
        'SELECT status FROM refunds WHERE payment_id = $1',
        [id],
      );
      expect(rows.map((r) => r.status)).toEqual(['succeeded']);
      const running_ = await running.context.db.query<{ n: number }>(
        "SELECT COUNT(*) AS n FROM idempotency_keys WHERE scope = $1 AND state = 'running'",
        [`refund:${id}`],
      );
      expect(Number(running_[0].n)).toBe(0);
    });

    it('a refund retried after 502 refund_unknown with the same Idempotency-Key pays out once', async () => {
      const paid = await pay(t1, paymentBody(walletCode('28', '00')));
      const id = paid.json.id;
      const key = `rf-lost-${randomBytes(4).toString('hex')}`;
      const refund = () =>
        call('POST', `/v1/payments/${id}/refunds`, {
          token: plugin.token,
          body: { amount: { value: 500, currency: 'CNY' } },
          headers: { 'idempotency-key': key },
        });
      lostRefundAnswers.add(id);
      const lost = await refund();
      expect([lost.status, lost.json.error.code]).toEqual([502, 'refund_unknown']);
      expect((await trade(id))!.refunded_value).toBe(500);
      lostRefundAnswers.delete(id);
      // The device retries once the first request's hold on the key has lapsed (60 s; here at once).
      await running.context.db.run('UPDATE idempotency_keys SET locked_until = 0 WHERE scope = $1', [
        `refund:${id}`,
      ]);
      const retry = await refund();
      expect(retry.status).toBe(201);
      expect(retry.json.payment).toMatchObject({ status: 'succeeded', refunded: { value: 500 } });
      expect((await trade(id))!.refunded_value).toBe(500);
    });

    it('a crash between a refused refund and its key: the retry completes the key with the 422 answer', async () => {
      const paid = await pay(t1, paymentBody(walletCode('28', '00')));
      const id = paid.json.id;
      const key = `rf-crash-${randomBytes(4).toString('hex')}`;
      const refund = () =>
        call('POST', `/v1/payments/${id}/refunds`, {
          token: plugin.token,
          body: {},
          headers: { 'idempotency-key': key },
        });
      refusedRefunds.add(id);
      try {
        const first = await refund();
        expect([first.status, first.json.error.code]).toEqual([422, 'refund_refused']);
      } finally {
        refusedRefunds.delete(id);
      }
      // The process died after marking the refund failed and before completing the key (an older server
      // did the two in separate transactions): the key is running, its holder gone.
      await running.context.db.run(
        "UPDATE idempotency_keys SET state = 'running', response_status = NULL, response_body = NULL, locked_until = 0 WHERE scope = $1 AND idem_key = $2",
        [`refund:${id}`, key],
      );
      const resumed = await refund();
      expect([resumed.status, resumed.json.error.code]).toEqual([422, 'refund_refused']);
      expect(resumed.json.error.message).toContain('the trade is closed for refunds at the provider');
      const [stored] = await running.context.db.query<{ state: string; response_status: number }>(
        'SELECT state, response_status FROM idempotency_keys WHERE scope = $1 AND idem_key = $2',
        [`refund:${id}`, key],
      );
      expect({ ...stored, response_status: Number(stored.response_status) }).toEqual({
        state: 'done',
        response_status: 422,
      });
      // From now on the stored answer, at once (not a 409 while a dead request's hold lasts).
      const replay = await refund();
      expect([replay.status, replay.json.error.code]).toEqual([422, 'refund_refused']);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect((await trade(id))!.refunded_value).toBe(0);
    });

    it('counts refunds still pending against the cap, with a provider that keeps no cap of its own', async () => {
      const paid = await pay(t1, paymentBody(walletCode('28', '00')));
      const id = paid.json.id;
      // A refund the provider has not answered yet (a crash after the journal): it still counts.
      await running.context.db.run(
        // (The sweeper asks the provider about it once its request's hold on the key lapses, in 60 s.)
        `INSERT INTO refunds (id, payment_id, amount_value, status, created_at, next_check_at)
         VALUES ($1, $2, 1000, 'pending', $3, $4)`,
        [`re_test_${randomBytes(4).toString('hex')}`, id, new Date().toISOString(), Date.now() + 60_000],
      );
      const more = await call('POST', `/v1/payments/${id}/refunds`, {
        token: plugin.token,
        body: { amount: { value: 300, currency: 'CNY' } },
        headers: { 'idempotency-key': `rf-pending-${randomBytes(4).toString('hex')}` },
      });
      expect(more.status).toBe(422);
      expect(more.json.error).toMatchObject({ code: 'refund_exceeds_capture' });
      expect(more.json.error.message).toContain('1000 being refunded now');
      expect((await trade(id))!.refunded_value).toBe(0);
    });

    it('answers {"amount": null} with a 400 naming the field, and a provider refusal with its reason', async () => {
      const paid = await pay(t1, paymentBody(walletCode('28', '00')));
      const id = paid.json.id;
      const nullAmount = await call('POST', `/v1/payments/${id}/refunds`, {
        token: plugin.token,
        body: { amount: null },
        headers: { 'idempotency-key': `rf-null-${randomBytes(4).toString('hex')}` },
      });
      expect(nullAmount.status).toBe(400);
      expect(nullAmount.json.error.message).toMatch(/^amount: /);

      refusedRefunds.add(id);
      const key = `rf-refused-${randomBytes(4).toString('hex')}`;
      const refused = await call('POST', `/v1/payments/${id}/refunds`, {
        token: plugin.token,
        body: {},
        headers: { 'idempotency-key': key },
      });
      expect(refused.status).toBe(422);
      expect(refused.json.error.code).toBe('refund_refused');
      expect(refused.json.error.message).toContain('the trade is closed for refunds at the provider');
      // The same key gets the same answer; the refusal does not hold the cap.
      const again = await call('POST', `/v1/payments/${id}/refunds`, {
        token: plugin.token,
        body: {},
        headers: { 'idempotency-key': key },
      });
      expect([again.status, again.json.error.code]).toEqual([422, 'refund_refused']);
      refusedRefunds.delete(id);
      const ok = await call('POST', `/v1/payments/${id}/refunds`, {
        token: plugin.token,
        body: {},
        headers: { 'idempotency-key': `rf-after-${randomBytes(4).toString('hex')}` },
      });
      expect(ok.status).toBe(201);
      expect((await trade(id))!.refunded_value).toBe(1250);
    });
  });

  describe('push over WebSocket', () => {
    it("pushes signed updates to the store's devices, and nothing to another store's", async () => {
      const mine = await listen(plugin.token);
      const theirs = await listen(b1.token);
      await waitFor('hello', () => mine.frames.find((f) => f.type === 'hello'));
      expect(mine.frames[0]).toMatchObject({ type: 'hello', deviceId: 'P1', storeId: storeA });
      await waitFor('hello (B)', () => theirs.frames.find((f) => f.type === 'hello'));

      // Two payments decided within their requests: one frame each, the decision, in sequence order.
      const r = await pay(t2, paymentBody(walletCode('28', '00')));
      const r2 = await pay(t2, paymentBody(walletCode('13', '05')));
      const ids = [r.json.id, r2.json.id];
      const updates = await waitFor('the two decided frames', () => {
        const u = mine.frames.filter((f) => f.type === 'payment.updated' && ids.includes(f.payment.id));
        return u.length >= 2 && u;
      });
      expect(updates.map((f) => [f.payment.id, f.payment.status])).toEqual([
        [r.json.id, 'succeeded'],
        [r2.json.id, 'failed'],
      ]);
      for (const f of updates) {
        expect(f).toEqual({
          type: 'payment.updated',
          seq: expect.any(Number),
          payment: expect.any(Object),
          signature: expect.any(String),
        });
        expect(verifyPaymentResult(f.payment, f.signature, plugin.serverPublicKey, storeA)).toBe(true);
      }
      expect(updates[0].payment).toEqual(r.json);
      expect(updates[1].payment).toEqual(r2.json);
      expect(updates[1].seq).toBeGreaterThan(updates[0].seq);
      // A tampered copy does not verify.
      const forged = { ...updates[1].payment, status: 'succeeded' };
      expect(verifyPaymentResult(forged, updates[1].signature, plugin.serverPublicKey, storeA)).toBe(false);

      await sleep(100);
      expect(theirs.frames.filter((f) => f.type !== 'hello')).toEqual([]);
      mine.ws.close();
      theirs.ws.close();
    });

    it('replays what a device missed, in order, when it reconnects with ?after=<seq>', async () => {
      const first = await listen(plugin.token);
      const r0 = await pay(t1, paymentBody(walletCode('13', '00')));
      const seen = await waitFor('a frame', () =>
        first.frames.find(
          (f) =>
            f.type === 'payment.updated' && f.payment.id === r0.json.id && f.payment.status === 'succeeded',
        ),
      );
      first.ws.close();
      await first.closed;

      const missed = [];
      for (let i = 0; i < 3; i++) missed.push((await pay(t1, paymentBody(walletCode('28', '00')))).json.id);
      const expected = (
        await running.context.db.query<{ seq: number }>(
          'SELECT seq FROM events WHERE store_id = $1 AND seq > $2 ORDER BY seq',
          [storeA, seen.seq],
        )
      ).map((e) => Number(e.seq));
      // One event each: decided within the request.
      expect(expected.length).toBeGreaterThanOrEqual(3);

      const back = await listen(plugin.token, `?after=${seen.seq}`);
      const frames = await waitFor('the missed frames', () => {
        const u = back.frames.filter((f) => f.type === 'payment.updated');
        return u.length >= expected.length && u;
      });
      expect(frames.slice(0, expected.length).map((f) => f.seq)).toEqual(expected);
      for (const id of missed) {
        expect(frames.filter((f) => f.payment.id === id).map((f) => f.payment.status)).toEqual(['succeeded']);
      }
      for (const f of frames)
        expect(verifyPaymentResult(f.payment, f.signature, plugin.serverPublicKey, storeA)).toBe(true);
      back.ws.close();
    });

    it('delivers every update of many concurrent payments to every connected device, once, in order', async () => {
      const store = await newStore('Busy shop');
      const tills = await Promise.all([1, 2, 3, 4].map((n) => registerDevice(store, `BT${n}`)));
      const watcher = await registerDevice(store, 'BP', 'plugin');
      // The plugin and the four units listen: caught up, they share the server's reads of new events, so
      // an event committed while a shared read is under way must still reach each of them.
      const [ws, ...others] = await Promise.all(
        [watcher, ...tills].map(async (d) => {
          const l = await listen(d.token);
          await waitFor('hello', () => l.frames.find((f) => f.type === 'hello'));
          return l;
        }),
      );
      const endings = ['00', '05', '10', '00', '20', '42', '00', '30'];
      const ids = (
        await Promise.all(
          Array.from({ length: 32 }, (_, i) =>
            pay(tills[i % 4], paymentBody(walletCode('13', endings[i % 8]))),
          ),
        )
      ).map((r) => r.json.id as string);
      for (const id of ids) await untilFinal(tills[0], id);
      const expected = await running.context.events.since(store, 0, 10_000);
      // Per 8: …10 (user_paying) and …20 (unknown outcome) stay pending past the request, two events
      // each; the other six are decided within it, one event each.
      expect(expected.length).toBe(40);
      // A device's updates once it has as many as the store's events (or what it has after 3 s).
      const updates = (l: typeof ws) =>
        waitFor(
          'all updates',
          () => {
            const u = l.frames.filter((f) => f.type === 'payment.updated');
            return u.length >= expected.length && u;
          },
          3000,
        ).catch(() => l.frames.filter((f) => f.type === 'payment.updated'));
      const got = await updates(ws);
      expect(got.map((f) => f.seq)).toEqual(expected.map((e) => e.seq));
      // Each frame is the event as stored, payment and signature alike.
      expect(got).toEqual(expected);
      for (const o of others) expect(await updates(o)).toEqual(expected);
      await sleep(100);
      for (const l of [ws, ...others]) {
        expect(l.frames.filter((f) => f.type === 'payment.updated')).toHaveLength(expected.length);
        l.ws.close();
      }
    });

    it('refuses an upgrade with a bad token (401)', async () => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/events`, {
        headers: { authorization: 'Bearer not-a-device' },
      });
      openSockets.add(ws);
      const status = await new Promise<number>((resolve, reject) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => reject(new Error('the upgrade was accepted')));
        ws.on('error', () => undefined);
      });
      expect(status).toBe(401);
      const noToken = new WebSocket(`${base.replace('http', 'ws')}/v1/events`);
      openSockets.add(noToken);
      const status2 = await new Promise<number>((resolve, reject) => {
        noToken.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        noToken.on('open', () => reject(new Error('the upgrade was accepted')));
        noToken.on('error', () => undefined);
      });
      expect(status2).toBe(401);
    });
  });

  describe('settlement report', () => {
    it("sums a day's payments by status and method, as JSON and CSV", async () => {
      const store = await newStore('Report shop');
      const till = await registerDevice(store, 'RP1');
      const other = await registerDevice(storeB, 'RPB');
      const a = await pay(
        till,
        paymentBody(walletCode('28', '00'), { amount: { value: 1250, currency: 'CNY' } }),
      );
      await pay(till, paymentBody(walletCode('28', '00'), { amount: { value: 750, currency: 'CNY' } }));
      await pay(till, paymentBody(walletCode('13', '00'), { amount: { value: 300, currency: 'CNY' } }));
      await pay(till, paymentBody(walletCode('13', '05'), { amount: { value: 999, currency: 'CNY' } }));
      const tillPlugin = await registerDevice(store, 'RPP', 'plugin');
      const refund = await call('POST', `/v1/payments/${a.json.id}/refunds`, {
        token: tillPlugin.token,
        body: { amount: { value: 250, currency: 'CNY' } },
        headers: { 'idempotency-key': 'report-refund' },
      });
      expect(refund.status).toBe(201);
      const date = a.json.createdAt.slice(0, 10);

      const json = await call('GET', `/v1/reports/settlement?date=${date}`, { token: till.token });
      expect(json.status).toBe(200);
      expect(json.json.storeId).toBe(store);
      expect(json.json.date).toBe(date);
      expect(json.json.rows).toEqual(
        expect.arrayContaining([
          { status: 'succeeded', method: 'alipay', currency: 'CNY', count: 2, amount: 2000, refunded: 250 },
          { status: 'succeeded', method: 'wechat', currency: 'CNY', count: 1, amount: 300, refunded: 0 },
          { status: 'failed', method: 'wechat', currency: 'CNY', count: 1, amount: 999, refunded: 0 },
        ]),
      );
      expect(json.json.rows).toHaveLength(3);
      expect(json.json.net).toEqual({ CNY: 2000 - 250 + 300 });

      const csv = await call('GET', `/v1/reports/settlement?date=${date}&format=csv`, { token: till.token });
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
      const lines = csv.text.trim().split('\n');
      expect(lines[0]).toBe('store,date,status,method,currency,count,amount_minor,refunded_minor');
      expect(lines.slice(1).sort()).toEqual(
        [
          `${store},${date},failed,wechat,CNY,1,999,0`,
          `${store},${date},succeeded,alipay,CNY,2,2000,250`,
          `${store},${date},succeeded,wechat,CNY,1,300,0`,
        ].sort(),
      );

      // Without ?date= it is today's report.
      const today = await call('GET', '/v1/reports/settlement', { token: till.token });
      expect(today.json.date).toBe(new Date().toISOString().slice(0, 10));

      // The admin names the store; a device reads only its own store.
      const adminNoStore = await call('GET', `/v1/reports/settlement?date=${date}`, { token: ADMIN });
      expect(adminNoStore.status).toBe(400);
      expect(adminNoStore.json.error.code).toBe('store_id_required');
      const adminReport = await call('GET', `/v1/reports/settlement?date=${date}&storeId=${store}`, {
        token: ADMIN,
      });
      expect(adminReport.status).toBe(200);
      expect(adminReport.json).toEqual(json.json);
      const spy = await call('GET', `/v1/reports/settlement?date=${date}&storeId=${store}`, {
        token: other.token,
      });
      expect(spy.status).toBe(403);
      expect(spy.json.error.code).toBe('forbidden');
      const otherOwn = await call('GET', `/v1/reports/settlement?date=${date}`, { token: other.token });
      expect(otherOwn.json.storeId).toBe(storeB);
      expect(otherOwn.text).not.toContain(store);

      expect(
        (await call('GET', '/v1/reports/settlement?date=2024-13-45', { token: till.token })).status,
      ).toBe(400);
      expect((await call('GET', '/v1/reports/settlement')).status).toBe(401);
      const wrong = await call('GET', '/v1/reports/settlement', { token: 'not-a-token' });
      expect(wrong.status).toBe(401);
      expect(wrong.json.error.code).toBe('unauthorized');
    });
  });

  describe('health and metrics', () => {
    it('answers /healthz and /metrics', async () => {
      const health = await call('GET', '/healthz');
      expect(health.status).toBe(200);
      expect(health.json).toEqual({ status: 'ok', database: engine.name });
      expect((await call('GET', '/metrics')).status).toBe(401);
      expect((await call('GET', '/metrics', { token: t1.token })).status).toBe(401);
      const metrics = await call('GET', '/metrics', { token: ADMIN });
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/text\/plain/);
      const created = /^payconnect_payments_created_total(?:\{\})? (\d+)$/m.exec(metrics.text);
      expect(created).not.toBeNull();
      expect(Number(created![1])).toBeGreaterThan(10);
      expect(metrics.text).toMatch(/^# TYPE payconnect_payments_created_total counter$/m);
      expect(metrics.text).toMatch(/^payconnect_payments_pending(?:\{\})? \d+$/m);
    });
  });

  describe('amounts: a per-store maximum, exact sums', () => {
    it('refuses a payment above the store maximum (default 100,000.00), naming the limit; the admin can change it', async () => {
      const store = await newStore('Limit shop');
      const till = await registerDevice(store, 'LT1');
      expect((await admin('GET', `/v1/stores/${store}`)).json).toMatchObject({ maxPaymentValue: 10_000_000 });
      const huge = await pay(
        till,
        paymentBody(walletCode('28', '00'), { amount: { value: 2 ** 53 - 1, currency: 'CNY' } }),
      );
      expect(huge.status).toBe(422);
      expect(huge.json.error.code).toBe('amount_too_large');
      expect(huge.json.error.message).toContain('¥100,000.00');
      expect(
        (
          await pay(
            till,
            paymentBody(walletCode('28', '00'), { amount: { value: 10_000_001, currency: 'CNY' } }),
          )
        ).status,
      ).toBe(422);
      const atLimitBody = paymentBody(walletCode('28', '00'), {
        amount: { value: 10_000_000, currency: 'CNY' },
      });
      const atLimit = await pay(till, atLimitBody, 'limit-retry-key');
      expect([atLimit.status, atLimit.json.status]).toEqual([201, 'succeeded']);

      const lowered = await admin('PATCH', `/v1/stores/${store}`, { maxPaymentValue: 50_000 });
      expect(lowered.status).toBe(200);
      expect(lowered.json).toMatchObject({ id: store, maxPaymentValue: 50_000 });
      // A retry of the payment made before the limit was lowered gets its stored answer, not a refusal.
      const retry = await pay(till, atLimitBody, 'limit-retry-key');
      expect([retry.status, retry.json.id, retry.headers.get('idempotent-replayed')]).toEqual([
        201,
        atLimit.json.id,
        'true',
      ]);
      expect(
        (await pay(till, paymentBody(walletCode('28', '00'), { amount: { value: 50_001, currency: 'CNY' } })))
          .status,
      ).toBe(422);
      for (const bad of [0, -5, 1.5, '100', 10 ** 14]) {
        const r = await admin('PATCH', `/v1/stores/${store}`, { maxPaymentValue: bad });
        expect({ bad, status: r.status }).toEqual({ bad, status: 400 });
        expect(r.json.error.message).toContain('maxPaymentValue');
      }
      // A device may not change it.
      const byDevice = await call('PATCH', `/v1/stores/${store}`, {
        token: till.token,
        body: { maxPaymentValue: 10 ** 12 },
      });
      expect(byDevice.status).toBe(401);
    });

    it("sums the day's payments exactly, beyond 2^53 (net as a decimal string, not a rounded number)", async () => {
      const store = await newStore('Big sums shop');
      const till = await registerDevice(store, 'ST1');
      const date = new Date().toISOString().slice(0, 10);
      const insert = `INSERT INTO payments (id, store_id, device_id, order_id, register_id, amount_value, currency, status,
          method_type, refunded_value, deadline_at, next_check_at, created_at, updated_at)
        VALUES ($1, $2, 'ST1', $1, 'R1', $3, 'CNY', $4, 'wallet_code', $5, 0, NULL, $6, $6)`;
      const at = `${date}T01:00:00.000Z`;
      // 3 × 4,000,000,000,000,001 + 1 = 12,000,000,000,000,004 > 2^53: a float sum would end in ...000 or ...008.
      for (const [i, status, value, refunded] of [
        [1, 'succeeded', 4_000_000_000_000_001, 0],
        [2, 'succeeded', 4_000_000_000_000_001, 0],
        [3, 'refunded', 4_000_000_000_000_001, 4_000_000_000_000_001],
        [4, 'succeeded', 4_000_000_000_000_002, 1],
      ] as const)
        await running.context.db.run(insert, [
          `pay_big_${store}_${i}`,
          store,
          String(value),
          status,
          String(refunded),
          at,
        ]);
      const r = await call('GET', `/v1/reports/settlement?date=${date}`, { token: till.token });
      expect(r.status).toBe(200);
      expect(r.json.net).toEqual({ CNY: '12000000000000003' });
      const succeeded = r.json.rows.find((x: { status: string }) => x.status === 'succeeded');
      expect(succeeded).toMatchObject({ count: 3, amount: '12000000000000004', refunded: 1 });
      const csv = await call('GET', `/v1/reports/settlement?date=${date}&format=csv`, { token: till.token });
      expect(csv.text).toContain(',succeeded,wallet_code,CNY,3,12000000000000004,1');
    });

    it('refuses store and device names with control or invisible characters, naming the field', async () => {
      for (const name of ['Tea\u0000house', 'Bell\u0007', '\u202Eesuoh aeT', 'two\nlines']) {
        const r = await admin('POST', '/v1/stores', { name });
        expect({ name, status: r.status }).toEqual({ name, status: 400 });
        expect(r.json.error.message).toContain('name must be printable text');
      }
      const code = await codeFor(storeA, 'terminal');
      const dev = await call('POST', '/v1/devices/register', {
        body: { code, deviceId: 'TX9', role: 'terminal', name: 'Till\u202E9' },
      });
      expect(dev.status).toBe(400);
      expect(dev.json.error.message).toContain('name must be printable text');
      expect((await admin('POST', '/v1/stores', { name: '茶馆 Tea house №1' })).status).toBe(201);
    });
  });

  describe('payment codes never kept', () => {
    it('no response, pushed frame, or database row holds a full payment code', async () => {
      expect(codesUsed.size).toBeGreaterThan(30);
      const tables = [
        'stores',
        'lan_keys',
        'registration_codes',
        'devices',
        'settings',
        'payments',
        'refunds',
        'idempotency_keys',
        'events',
        'sim_trades',
      ];
      const dump: string[] = [];
      for (const t of tables) {
        const rows = await running.context.db.query(`SELECT * FROM ${t}`);
        dump.push(JSON.stringify(rows));
      }
      const db = dump.join('\n');
      const responses = responseTexts.join('\n');
      expect(db).toContain('*'.repeat(14)); // the masked codes are there
      const leaks = [...codesUsed].filter((c) => db.includes(c) || responses.includes(c));
      expect(leaks).toEqual([]);
    });
  });
});
