/**
 * Small HTTP helpers for tests that talk to a running payment server (in-process or a child process):
 * JSON calls, a store with a registered device, payments, polling until a payment is decided, and
 * PostgreSQL test schemas.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { Payment } from '../../../src/protocol/states';

export const PG_BASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface JsonResponse<T = unknown> {
  status: number;
  body: T;
}

export async function call<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: res.status, body: body as T };
}

/** Calls and insists on the expected status, with the body in the error otherwise. */
export async function ok<T>(
  status: number,
  response: Promise<JsonResponse<T>>,
  what = 'request',
): Promise<T> {
  const r = await response;
  if (r.status !== status) {
    throw new Error(`${what}: expected HTTP ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  }
  return r.body;
}

export interface RegisteredDevice {
  deviceId: string;
  storeId: string;
  token: string;
  serverPublicKey: string;
}

export async function createStore(baseUrl: string, adminToken: string, name = 'Test shop'): Promise<string> {
  const store = await ok<{ id: string }>(
    201,
    call(baseUrl, 'POST', '/v1/stores', { token: adminToken, body: { name } }),
    'create store',
  );
  return store.id;
}

export async function registerDevice(
  baseUrl: string,
  adminToken: string,
  storeId: string,
  deviceId: string,
  role: 'terminal' | 'plugin' = 'terminal',
): Promise<RegisteredDevice> {
  const { code } = await ok<{ code: string }>(
    201,
    call(baseUrl, 'POST', `/v1/stores/${storeId}/registration-codes`, { token: adminToken, body: { role } }),
    'registration code',
  );
  return ok<RegisteredDevice>(
    201,
    call(baseUrl, 'POST', '/v1/devices/register', { body: { code, deviceId, role, name: deviceId } }),
    'register device',
  );
}

/** An 18-digit Alipay-like test code with the given ending (DESIGN.md "Test payment codes"). */
export const testCode = (ending: string) => `2812345678901234${ending}`;

export async function createPayment(
  baseUrl: string,
  device: RegisteredDevice,
  ending: string,
  orderId = `order-${randomBytes(4).toString('hex')}`,
): Promise<Payment> {
  return ok<Payment>(
    201,
    call(baseUrl, 'POST', '/v1/payments', {
      token: device.token,
      headers: { 'idempotency-key': `key-${randomBytes(8).toString('hex')}` },
      body: {
        orderId,
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
        method: { type: 'wallet_code', code: testCode(ending) },
      },
    }),
    'create payment',
  );
}

/** Polls GET /v1/payments/:id until it is no longer pending; throws after `timeoutMs`. */
export async function waitFinal(
  baseUrl: string,
  device: RegisteredDevice,
  id: string,
  timeoutMs: number,
): Promise<Payment> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const r = await call<Payment>(baseUrl, 'GET', `/v1/payments/${id}`, { token: device.token });
      last = r.body;
      if (r.status === 200 && r.body.status !== 'pending') return r.body;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`payment ${id} still not final after ${timeoutMs} ms: ${JSON.stringify(last)}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A private schema name (`?schema=` in a PostgreSQL URL). */
export function newSchema(prefix = 'pc_x'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

export function pgUrl(schema: string): string {
  return `${PG_BASE_URL}?schema=${schema}`;
}

/** Runs `fn` with a client whose search_path is `schema`. */
export async function withPg<T>(schema: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: PG_BASE_URL });
  await c.connect();
  try {
    await c.query(`SET search_path TO ${schema}`);
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new Client({ connectionString: PG_BASE_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}
