/**
 * What the terminal tests share: the payment server and mobile POS units as real child processes
 * (`node bin/payconnect.js …`, the built dist/), the reseller's admin calls, the register's side of the LAN
 * (a plugin-like endpoint with a UnitDirectory and an OfferDispatcher on real loopback sockets), small HTTP
 * helpers and bounded waits. Every process started here is remembered, so a spec's afterAll can make sure
 * none is left behind (`killAllChildren`).
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  LanEndpoint,
  LanInbound,
  LanKeyring,
  lanKeyFromJson,
  LanKeyJson,
  OfferDispatcher,
  UdpLanTransport,
  UnitDirectory,
} from '../../../src/lan';
import { verifyPaymentResult } from '../../../src/protocol/payment-signature';
import { Payment } from '../../../src/protocol/states';
import { simulatorLedgerPath } from '../../../src/server/providers/simulator.provider';

import { createTerminalApp, RunningTerminal, TerminalConfig } from '../../../src/terminal/terminal-app';
import { ChildProc, freeTcpPort, freeUdpPortPair, killAllChildren } from '../../support/child-process';
import { waitFor as waitUntil } from '../../support/wait';

export { BIN, ChildProc, freeTcpPort, killAllChildren, REPO_ROOT } from '../../support/child-process';

// --- waiting --------------------------------------------------------------------------------------

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls a condition until it holds, failing with what was awaited: test/support/wait.ts (every 50 ms here). */
export function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  return waitUntil(what, probe, timeoutMs, everyMs);
}

// --- ports ----------------------------------------------------------------------------------------

/**
 * A LAN port pair of this test file's own: the units' shared port N (SO_REUSEADDR, so a collision with
 * another file would not fail but mix traffic) and the register's port N+1, from the ports this process
 * hands out (test/support/child-process.ts freePort: checked free, its own per Jest worker).
 */
export async function pickLanPorts(): Promise<{ unitPort: number; pluginPort: number }> {
  const [unitPort, pluginPort] = await freeUdpPortPair();
  return { unitPort, pluginPort };
}

// --- HTTP -----------------------------------------------------------------------------------------

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export async function http<T = unknown>(
  baseUrl: string,
  method: string,
  urlPath: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 20_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (the touch page)
  }
  return { status: res.status, headers: res.headers, body: body as T };
}

/** Insists on `status`, with the answer in the error otherwise. */
export async function expectStatus<T>(status: number, answer: Promise<HttpAnswer<T>>, what: string) {
  const r = await answer;
  if (r.status !== status)
    throw new Error(`${what}: expected HTTP ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

// --- child processes ------------------------------------------------------------------------------

// --- the payment server ---------------------------------------------------------------------------

export class TestServer {
  private constructor(
    readonly proc: ChildProc,
    readonly url: string,
    readonly dbPath: string,
    readonly adminToken: string,
  ) {}

  /** `payconnect server` on a free port with a SQLite file, the given simulator speed and admin token. */
  static async start(opts: { dbPath: string; simSpeed: number }): Promise<TestServer> {
    const port = await freeTcpPort();
    const adminToken = `admin-${randomBytes(12).toString('hex')}`;
    const proc = ChildProc.spawn(
      'server',
      ['server', '--port', String(port), '--db', `sqlite:${opts.dbPath}`],
      {
        PAYCONNECT_ADMIN_TOKEN: adminToken,
        PAYCONNECT_SIM_SPEED: String(opts.simSpeed),
      },
    );
    const url = `http://127.0.0.1:${port}`;
    await proc.waitHttp(`${url}/healthz`);
    return new TestServer(proc, url, opts.dbPath, adminToken);
  }

  async createStore(name: string): Promise<string> {
    const s = await expectStatus<{ id: string }>(
      201,
      http(this.url, 'POST', '/v1/stores', { token: this.adminToken, body: { name } }),
      'create store',
    );
    return s.id;
  }

  /** A one-use registration code, as the reseller gets it from the admin API. */
  async registrationCode(storeId: string, role: 'terminal' | 'plugin'): Promise<string> {
    const r = await expectStatus<{ code: string }>(
      201,
      http(this.url, 'POST', `/v1/stores/${storeId}/registration-codes`, {
        token: this.adminToken,
        body: { role },
      }),
      'registration code',
    );
    return r.code;
  }

  /** Registers a plugin (the register's side): its token, the store LAN key and the server's public key. */
  async registerPlugin(
    storeId: string,
    deviceId: string,
  ): Promise<{ token: string; storeId: string; lanKey: LanKeyJson; serverPublicKey: string }> {
    const code = await this.registrationCode(storeId, 'plugin');
    return expectStatus(
      201,
      http(this.url, 'POST', '/v1/devices/register', {
        body: { code, deviceId, role: 'plugin', name: deviceId },
      }),
      'register plugin',
    );
  }

  /** Every payment the server holds for an order (GET /v1/payments?orderId=), as a device of the store. */
  async paymentsOf(orderId: string, deviceToken: string): Promise<Payment[]> {
    return expectStatus<Payment[]>(
      200,
      http(this.url, 'GET', `/v1/payments?orderId=${encodeURIComponent(orderId)}`, { token: deviceToken }),
      `payments of ${orderId}`,
    );
  }

  /** The simulator's record of a trade (its out_trade_no is the payment id), read-only from its ledger file. */
  simTrade(paymentId: string): { charge_calls: number; state: string; scenario: string } | undefined {
    const db = new Database(simulatorLedgerPath(this.dbPath), { readonly: true, fileMustExist: true });
    try {
      return db
        .prepare('SELECT charge_calls, state, scenario FROM sim_trades WHERE out_trade_no = ?')
        .get(paymentId) as { charge_calls: number; state: string; scenario: string } | undefined;
    } finally {
      db.close();
    }
  }
}

/** The terminal's own bearer token, from the registration it keeps in its data folder. */
export function deviceToken(dataDir: string): string {
  return (JSON.parse(readFileSync(path.join(dataDir, 'device.json'), 'utf8')) as { token: string }).token;
}

/** An 18-digit test payment code (DESIGN.md "Test payment codes"): `28…` Alipay-like, `13…` WeChat-like. */
export const testCode = (ending: string, prefix = '28') =>
  `${prefix}${'1234567890123456'.slice(prefix.length)}${ending}`;

// --- the register's side of the LAN ----------------------------------------------------------------

/**
 * What the plugin beside the cash register does on the LAN, reduced to the library parts: an endpoint on
 * the plugins' port (bound to 0.0.0.0 so it hears the units' broadcast beacons), a UnitDirectory fed by
 * those beacons, and an OfferDispatcher that broadcasts to the units' shared port and grants the first
 * claim. Every message it receives is kept for the assertions.
 */
export class RegisterSide {
  readonly received: Array<LanInbound & { at: number }> = [];

  private constructor(
    readonly endpoint: LanEndpoint,
    readonly directory: UnitDirectory,
    readonly dispatcher: OfferDispatcher,
    readonly serverPublicKey: string,
    readonly storeId: string,
  ) {
    endpoint.onMessage((m) => void this.received.push({ ...m, at: Date.now() }));
  }

  static async open(opts: {
    deviceId: string;
    lanKey: LanKeyJson;
    serverPublicKey: string;
    /** The store whose signed results it believes. */
    storeId: string;
    unitPort: number;
    pluginPort: number;
  }): Promise<RegisterSide> {
    const transport = await UdpLanTransport.open({
      bindAddress: '0.0.0.0',
      port: opts.pluginPort,
      interfaceAddress: '127.0.0.1',
    });
    const endpoint = new LanEndpoint({
      deviceId: opts.deviceId,
      keyring: new LanKeyring(lanKeyFromJson(opts.lanKey)),
      transport,
    });
    const directory = new UnitDirectory(endpoint);
    directory.start();
    const dispatcher = new OfferDispatcher({
      endpoint,
      directory,
      broadcast: { kind: 'broadcast', address: '127.255.255.255', port: opts.unitPort },
    });
    dispatcher.start();
    return new RegisterSide(endpoint, directory, dispatcher, opts.serverPublicKey, opts.storeId);
  }

  async waitForUnits(ids: string[], timeoutMs = 10_000, seenAfter = 0): Promise<void> {
    await waitFor(
      `units ${ids.join(', ')} to beacon to the register`,
      () => ids.every((id) => (this.directory.get(id)?.lastSeen ?? -1) >= seenAfter),
      timeoutMs,
    );
  }

  /** Offers 12.50 CNY (or `value` fen) for an order, broadcast to all units or to one. */
  offer(orderId: string, to: 'broadcast' | string, value = 1250) {
    return this.dispatcher.offer(
      { orderId, registerId: 'R1', amount: { value, currency: 'CNY' } },
      to === 'broadcast' ? { mode: 'broadcast' } : { mode: 'unicast', terminal: to },
    );
  }

  /** `result` messages for an order whose server signature verifies with the pinned public key. */
  verifiedResults(orderId: string): Array<{ payment: Payment; signature: string; at: number }> {
    return this.received
      .filter((m) => m.type === 'result')
      .map((m) => ({ ...(m.body as { payment: Payment; signature: string }), at: m.at }))
      .filter(
        (r) =>
          r.payment?.orderId === orderId &&
          verifyPaymentResult(r.payment, r.signature, this.serverPublicKey, this.storeId),
      );
  }

  /** The `result` messages for an order, verified or not. */
  allResults(orderId: string): Array<{ payment: Payment; signature: string }> {
    return this.received
      .filter((m) => m.type === 'result' && (m.body as { payment?: Payment }).payment?.orderId === orderId)
      .map((m) => m.body as { payment: Payment; signature: string });
  }

  /** The progress stages a unit reported for an order, in arrival order. */
  progress(orderId: string): string[] {
    return this.received
      .filter((m) => m.type === 'progress' && (m.body as { orderId: string }).orderId === orderId)
      .map((m) => (m.body as { stage: string }).stage);
  }

  async close(): Promise<void> {
    this.dispatcher.stop();
    this.directory.stop();
    await this.endpoint.close();
  }
}

// --- a whole shop ----------------------------------------------------------------------------------

export interface Shop {
  tmp: string;
  server: TestServer;
  storeId: string;
  register: RegisterSide;
  /** The unit T1, in this process (createTerminalApp). */
  unit: RunningTerminal;
  ports: { unitPort: number; pluginPort: number };
  /** Stops the unit, the register's side and the server, and removes the folder. */
  close(): Promise<void>;
}

/**
 * One shop on loopback, as most terminal specs need it: the payment server (a child process, SQLite in a
 * fresh folder), a store, the register's side of the LAN registered as plugin P1, and unit T1 running in
 * this process, heard by the register before this returns.
 */
export async function startShop(o: {
  name: string;
  storeName: string;
  simSpeed: number;
  unit?: Partial<Omit<TerminalConfig, 'id' | 'serverUrl' | 'registrationCode' | 'dataDir' | 'lan'>>;
}): Promise<Shop> {
  const tmp = mkdtempSync(path.join(tmpdir(), `payconnect-${o.name}-`));
  const server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: o.simSpeed });
  const storeId = await server.createStore(o.storeName);
  const plugin = await server.registerPlugin(storeId, 'P1');
  const ports = await pickLanPorts();
  const register = await RegisterSide.open({
    deviceId: 'P1',
    lanKey: plugin.lanKey,
    serverPublicKey: plugin.serverPublicKey,
    storeId: plugin.storeId,
    ...ports,
  });
  const unit = await createTerminalApp({
    port: 0,
    logger: false,
    ...o.unit,
    id: 'T1',
    serverUrl: server.url,
    registrationCode: await server.registrationCode(storeId, 'terminal'),
    dataDir: path.join(tmp, 'T1'),
    lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', ...ports },
  });
  await register.waitForUnits(['T1']);
  return {
    tmp,
    server,
    storeId,
    register,
    unit,
    ports,
    async close() {
      await unit.close().catch(() => undefined);
      await register.close();
      await server.proc.stop();
      await killAllChildren();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
