/**
 * What an intruder on the network tries against registration and the server's open doors, on a real server
 * (SQLite) with the default limits: guessing codes, taking over a device id with another role's code,
 * reading /metrics, fishing a token back out of an error.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerApp, RunningServer } from '../../src/server/server-app';

jest.setTimeout(30_000);
const ADMIN = `admin-${randomBytes(12).toString('hex')}`;

describe('registration and the server’s open doors, against an intruder', () => {
  let dir: string;
  let running: RunningServer;
  let store: string;

  async function call(method: string, path: string, opts: { token?: string; body?: unknown } = {}) {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(running.url + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }
  const code = async (role: 'terminal' | 'plugin') =>
    (await call('POST', `/v1/stores/${store}/registration-codes`, { token: ADMIN, body: { role } })).json
      .code as string;
  const register = (c: string, deviceId: string, role: 'terminal' | 'plugin') =>
    call('POST', '/v1/devices/register', { body: { code: c, deviceId, role, name: deviceId } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-guard-'));
    running = await createServerApp({
      port: 0,
      db: { kind: 'sqlite', path: join(dir, 'server.db') },
      adminToken: ADMIN,
      logger: false,
    });
    store = (await call('POST', '/v1/stores', { token: ADMIN, body: { name: 'Guarded shop' } })).json.id;
  });
  afterAll(async () => {
    await running?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a unit code cannot take over the plugin’s device id (nor revoke its token); the code stays good', async () => {
    const plugin = await register(await code('plugin'), 'plugin-R1', 'plugin');
    expect(plugin.status).toBe(201);
    const unitCode = await code('terminal');
    const takeover = await register(unitCode, 'plugin-R1', 'terminal');
    expect(takeover.status).toBe(400);
    expect(takeover.json.error.message).toContain("device id plugin-R1 belongs to this store's plugin");
    expect((await call('GET', '/v1/devices/me', { token: plugin.json.token })).json).toMatchObject({
      deviceId: 'plugin-R1',
      role: 'plugin',
    });
    expect((await register(unitCode, 'T1', 'terminal')).status).toBe(201);
  });

  it('turns a code guesser away after 10 refusals a minute (429, Retry-After), even with a right code', async () => {
    const live = await code('terminal');
    const answers: number[] = [];
    for (let i = 0; i < 12; i++) {
      const guess = `${live.slice(0, 5)}${randomBytes(6)
        .toString('hex')
        .toUpperCase()
        .replace(/[01IO]/g, 'A')
        .slice(0, 4)}-AAAA-AAAA`;
      answers.push((await register(guess, `G${i}`, 'terminal')).status);
    }
    // 10 refusals from this address in the minute (the takeover above was one), then 429 only.
    const first429 = answers.indexOf(429);
    expect(first429).toBe(9);
    expect(answers.slice(0, first429).every((s) => s === 400)).toBe(true);
    expect(answers.slice(first429).every((s) => s === 429)).toBe(true);
    const blocked = await register(live, 'T2', 'terminal');
    expect(blocked.status).toBe(429);
    expect(blocked.json.error.code).toBe('too_many_attempts');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(blocked.json.error.message).toMatch(/try again in \d+ s/);
    // The guessing stopped at 10, before the live code's five-try lock: the admin sees it open.
    const listed = (await call('GET', `/v1/stores/${store}/registration-codes`, { token: ADMIN })).json;
    expect(listed.find((c: { code: string }) => c.code.startsWith(live.slice(0, 4)))).toMatchObject({
      state: expect.stringMatching(/open|locked/),
    });
  });

  it('/metrics needs the admin token', async () => {
    expect((await call('GET', '/metrics')).status).toBe(401);
    const ok = await call('GET', '/metrics', { token: ADMIN });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('payconnect_payments_created_total');
  });

  it('never echoes a token: a plain GET of /v1/events?token=… is a 404 naming the path only', async () => {
    const secret = `tok_${randomBytes(16).toString('hex')}`;
    const r = await call('GET', `/v1/events?token=${secret}`);
    expect(r.status).toBe(404);
    expect(r.text).not.toContain(secret);
    expect(r.json.error.message).toContain('/v1/events');
    const other = await call('GET', `/v1/nowhere?token=${secret}&x=1`);
    expect(other.text).not.toContain(secret);
  });
});
