/**
 * Real wallet providers end to end: the payment server (real HTTP, SQLite file) charging the Alipay and
 * WeChat Pay (API v2 and v3) providers against the local gateways (`payconnect gateway`), which check every
 * signature as the providers do, sign their answers and keep their own ledger. A shop's unit pays through
 * the server's API, as in a shop.
 *
 * For every scenario of the gateways (src/server/gateways/scenarios.ts) and every provider, the payment ends
 * in the state a shop expects, and the gateway's ledger agrees: the customer's money stays with the shop
 * exactly when the payment succeeded, and never more than one trade per payment. Then the dangerous cases:
 * a forged gateway (answers signed with the wrong key) never makes a payment paid, and the server killed -9
 * while a charge or a query is in flight comes back and finishes the payment right, with one charge.
 *
 * The providers' timing rules run WALLET_SPEED times faster, as do the gateways' delays (the customer's
 * confirmation, auto-close), so the whole matrix takes seconds; the rules' order is unchanged.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Payment } from '../../src/protocol/states';
import { AlipayGateway, startAlipayGateway } from '../../src/server/gateways/alipay';
import { SCENARIO_AMOUNTS } from '../../src/server/gateways/scenarios';
import { writeAlipayWalletFiles, writeWechatWalletFiles } from '../../src/server/gateways/wallet-files';
import { startWechatGateway, WechatGateway } from '../../src/server/gateways/wechat/wechat.gateway';
import { alipayWalletFactory } from '../../src/server/providers/alipay';
import { wechatWalletFactory } from '../../src/server/providers/wallet-factories';
import { WECHAT_POLICY } from '../../src/server/providers/wechat/wechat.provider';
import { createServerApp, RunningServer } from '../../src/server/server-app';
import { freePort, killAllServers, ServerProcess } from './support/server-process';
import {
  call,
  createStore,
  ok,
  registerDevice,
  RegisteredDevice,
  sleep,
  waitFinal,
} from './support/server-client';

jest.setTimeout(120_000);

const ADMIN = `admin-${randomBytes(8).toString('hex')}`;
const WALLET_SPEED = 20;
/** One HTTP call to a gateway that takes longer is an unknown outcome (the no-answer scenario). */
const CALL_TIMEOUT_MS = 1000;

type Wallet = 'alipay' | 'wechat-v2' | 'wechat-v3';

/** A fresh payment code of the wallet (codes are good once, at the gateways as at the providers). */
function codeOf(wallet: Wallet): string {
  const digits = Array.from(randomBytes(16), (b) => b % 10).join('');
  return wallet === 'alipay' ? `28${digits}` : `13${digits}`;
}

/** What the customer has paid the shop for this payment, by the gateway's own ledger (fen). */
function heldAtGateway(
  gw: { alipay: AlipayGateway; wechat: WechatGateway },
  wallet: Wallet,
  id: string,
): { trades: number; held: number } {
  if (wallet === 'alipay') {
    const t = gw.alipay.trades().filter((x) => x.outTradeNo === id);
    const held = t.reduce(
      (sum, x) => sum + (x.paidAt !== undefined ? x.totalFen - x.refunds.reduce((r, f) => r + f.fen, 0) : 0),
      0,
    );
    return { trades: t.length, held };
  }
  const t = gw.wechat.trades().filter((x) => x.outTradeNo === id && x.amount > 0);
  const held = t.reduce(
    (sum, x) =>
      sum +
      (x.state === 'SUCCESS' || x.state === 'REFUND'
        ? x.amount - x.refunds.reduce((r, f) => r + f.amount, 0)
        : 0),
    0,
  );
  return { trades: t.length, held };
}

describe('real wallet providers against the local gateways (server, unit API, gateway ledgers)', () => {
  let dir: string;
  let gw: { alipay: AlipayGateway; wechat: WechatGateway };
  let server: RunningServer;
  let base: string;
  const units = {} as Record<Wallet, RegisteredDevice>;
  /** The register's plugin of each store: refunds are made at the register. */
  const plugins = {} as Record<Wallet, RegisteredDevice>;

  const admin = (method: string, path: string, body?: unknown) =>
    call(base, method, path, { token: ADMIN, body });

  async function storeFor(wallet: Wallet): Promise<{ unit: RegisteredDevice; plugin: RegisteredDevice }> {
    const store = await createStore(base, ADMIN, `店 ${wallet}`);
    if (wallet === 'alipay') {
      const account = writeAlipayWalletFiles(join(dir, 'ali-merchant'), gw.alipay.url, gw.alipay.merchant());
      await ok(200, admin('PUT', `/v1/stores/${store}/wallets/alipay`, account), 'alipay account');
    } else {
      const accounts = writeWechatWalletFiles(
        join(dir, 'wx-merchant'),
        gw.wechat.url,
        gw.wechat.caPem,
        gw.wechat.merchant(),
      );
      await ok(
        200,
        admin(
          'PUT',
          `/v1/stores/${store}/wallets/wechat`,
          wallet === 'wechat-v2' ? accounts.v2 : accounts.v3,
        ),
        'wechat account',
      );
    }
    return {
      unit: await registerDevice(base, ADMIN, store, 'T1'),
      plugin: await registerDevice(base, ADMIN, store, 'R1', 'plugin'),
    };
  }

  function pay(unit: RegisteredDevice, wallet: Wallet, amount: number, code = codeOf(wallet)) {
    return call<Payment>(base, 'POST', '/v1/payments', {
      token: unit.token,
      headers: { 'idempotency-key': `k-${randomBytes(6).toString('hex')}` },
      body: {
        orderId: `收银-${randomBytes(3).toString('hex')}`,
        registerId: 'R1',
        amount: { value: amount, currency: 'CNY' },
        method: { type: 'wallet_code', code },
      },
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-wallet-gw-'));
    gw = {
      alipay: await startAlipayGateway({ dataDir: join(dir, 'alipay-gw'), speed: WALLET_SPEED }),
      wechat: await startWechatGateway({ dataDir: join(dir, 'wechat-gw'), speed: WALLET_SPEED }),
    };
    server = await createServerApp({
      port: 0,
      db: { kind: 'sqlite', path: join(dir, 'server.db') },
      adminToken: ADMIN,
      logger: false,
      sweeperTickMs: 20,
      walletTimeScale: WALLET_SPEED,
      walletFactories: {
        alipay: alipayWalletFactory({ timeoutMs: CALL_TIMEOUT_MS }),
        wechat: wechatWalletFactory({
          timeoutMs: CALL_TIMEOUT_MS,
          cancelNotBeforeMs: WECHAT_POLICY.cancelNotBeforeMs / WALLET_SPEED,
        }),
      },
    });
    base = server.url;
    for (const w of ['alipay', 'wechat-v2', 'wechat-v3'] as Wallet[])
      ({ unit: units[w], plugin: plugins[w] } = await storeFor(w));
  });

  afterAll(async () => {
    await server?.close();
    await gw?.alipay.close();
    await gw?.wechat.close();
    await killAllServers();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What a shop expects of each scenario: the payment's end state (and failure code), and money kept. */
  const EXPECTED: Record<string, { status: string; failure?: string; kept: boolean; reversed?: boolean }> = {
    paid_at_once: { status: 'succeeded', kept: true },
    wait_then_success: { status: 'succeeded', kept: true },
    wait_then_timeout: { status: 'canceled', failure: 'customer_timeout', kept: false },
    insufficient_funds: { status: 'failed', failure: 'insufficient_funds', kept: false },
    code_invalid: { status: 'failed', failure: 'invalid_code', kept: false },
    system_error_then_success: { status: 'succeeded', kept: true },
    system_error_not_created: { status: 'failed', kept: false },
    duplicate_order_no: { status: 'failed', kept: false },
    no_answer_then_success: { status: 'succeeded', kept: true },
  };
  const AMOUNT: Record<string, number> = { paid_at_once: 1250 };
  for (const [fen, name] of Object.entries(SCENARIO_AMOUNTS)) AMOUNT[name] = Number(fen);

  describe.each(['alipay', 'wechat-v2', 'wechat-v3'] as Wallet[])('%s', (wallet) => {
    // Each scenario is its own order, code and payment: they run at the same time (mostly waiting on the
    // gateways' scaled delays), as a shop's several registers would.
    it.concurrent.each(Object.keys(EXPECTED))(
      'scenario %s ends as a shop expects, and the gateway ledger agrees',
      async (scenario) => {
        const unit = units[wallet];
        const r = await pay(unit, wallet, AMOUNT[scenario]);
        expect(r.status).toBe(201);
        const final = r.body.status === 'pending' ? await waitFinal(base, unit, r.body.id, 30_000) : r.body;
        const want = EXPECTED[scenario];
        expect({ status: final.status, failure: final.failure?.code }).toEqual({
          status: want.status,
          failure: want.failure ?? final.failure?.code,
        });
        expect(final.method).toMatchObject({ provider: wallet.startsWith('wechat') ? 'wechat' : 'alipay' });
        // The gateway's ledger: at most one trade for the payment, and the shop holds the money exactly when
        // the payment succeeded. (A late auto-close or reverse at the gateway must not be pending either.)
        await sleep(200);
        const ledger = heldAtGateway(gw, wallet, final.id);
        expect(ledger.trades).toBeLessThanOrEqual(1);
        expect(ledger.held).toBe(want.kept ? AMOUNT[scenario] : 0);
      },
    );

    it('cancel race: the register cancels as the customer confirms; the cancel wins and the money goes back', async () => {
      const unit = units[wallet];
      const r = await pay(unit, wallet, AMOUNT.cancel_race);
      expect(r.body.status).toBe('pending');
      const c = await call<Payment & { error?: { code: string } }>(
        base,
        'POST',
        `/v1/payments/${r.body.id}/cancel`,
        { token: unit.token },
      );
      // WeChat Pay takes no reverse in the first 15 s: the cancel is journaled and done by the server then.
      expect([200, 502]).toContain(c.status);
      if (c.status === 502) expect(c.body.error?.code).toBe('cancel_pending');
      const final = await waitFinal(base, unit, r.body.id, 30_000);
      expect(final.status).toBe('canceled');
      await sleep(200);
      const ledger = heldAtGateway(gw, wallet, final.id);
      expect(ledger.held).toBe(0);
      // If the customer's money moved, the payment says it was returned.
      if (final.reversed) expect(final.failure?.code).toBe('reversed');
    });
  });

  it('keeps no key, API key or payment code in its database (a dump shows paths and masked codes only)', async () => {
    const m = gw.wechat.merchant();
    const secrets = [
      gw.alipay.merchant().appPrivateKeyPem.split('\n')[1],
      m.merchantKeyPem.split('\n')[1],
      m.apiKey,
      m.apiV3Key,
      'PRIVATE KEY',
    ];
    const code = codeOf('alipay');
    const r = await pay(units.alipay, 'alipay', 1250, code);
    expect(r.body.status).toBe('succeeded');
    // Everything the database holds, as a dump would: the file and its write-ahead log, as bytes.
    const bytes = Buffer.concat(
      ['server.db', 'server.db-wal']
        .filter((f) => existsSync(join(dir, f)))
        .map((f) => readFileSync(join(dir, f))),
    ).toString('latin1');
    for (const secret of secrets) expect(bytes.includes(secret)).toBe(false);
    expect(bytes.includes(code)).toBe(false);
    expect(bytes).toContain('app-private-key.pem'); // the path is there, the key is not
  });

  it('provider check: the right credentials work; a wrong key, an unknown app and a stopped gateway are named plainly', async () => {
    type Line = { provider: string; result: { ok: boolean; problem?: string; message: string } };
    const check = async (store: string) =>
      ok<Line[]>(
        200,
        call<Line[]>(base, 'POST', `/v1/stores/${store}/wallets/check`, { token: ADMIN }),
        'check',
      );
    // The stores set up above: every account works.
    for (const w of ['alipay', 'wechat-v2', 'wechat-v3'] as Wallet[]) {
      const [line] = await check(units[w].storeId);
      expect(line.result).toMatchObject({ ok: true });
    }
    // Alipay: the app key is not the one uploaded for this app id.
    const store = await createStore(base, ADMIN, '错误密钥');
    const good = writeAlipayWalletFiles(join(dir, 'ali-merchant'), gw.alipay.url, gw.alipay.merchant());
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const wrongKey = join(dir, 'wrong-app-key.pem');
    writeFileSync(wrongKey, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    await ok(
      200,
      admin('PUT', `/v1/stores/${store}/wallets/alipay`, { ...good, appPrivateKeyFile: wrongKey }),
      'account',
    );
    let [line] = await check(store);
    expect(line.result).toMatchObject({ ok: false, problem: 'wrong_key' });
    expect(line.result.message).not.toContain('PRIVATE KEY');
    // An app id the gateway does not know.
    await ok(
      200,
      admin('PUT', `/v1/stores/${store}/wallets/alipay`, { ...good, appId: '2021000000009999' }),
      'account',
    );
    [line] = await check(store);
    expect(line.result).toMatchObject({ ok: false, problem: 'unknown_account' });
    // WeChat Pay v2: an API key that is not the merchant's.
    const wx = writeWechatWalletFiles(
      join(dir, 'wx-merchant'),
      gw.wechat.url,
      gw.wechat.caPem,
      gw.wechat.merchant(),
    );
    const wrongApiKey = join(dir, 'wrong-api-key.txt');
    writeFileSync(wrongApiKey, 'A'.repeat(32), { mode: 0o600 });
    const wxStore = await createStore(base, ADMIN, '错误API密钥');
    await ok(
      200,
      admin('PUT', `/v1/stores/${wxStore}/wallets/wechat`, { ...wx.v2, apiKeyFile: wrongApiKey }),
      'account',
    );
    [line] = await check(wxStore);
    expect(line.result).toMatchObject({ ok: false, problem: 'wrong_key' });
    // Nothing listens where the account points.
    await ok(
      200,
      admin('PUT', `/v1/stores/${store}/wallets/alipay`, {
        ...good,
        gatewayUrl: 'http://127.0.0.1:9/gateway.do',
      }),
      'account',
    );
    [line] = await check(store);
    expect(line.result).toMatchObject({ ok: false, problem: 'unreachable' });
  });

  it("reconciles the day at both providers: our ledger and the gateways' bills agree, trade by trade", async () => {
    const day = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    for (const wallet of ['alipay', 'wechat-v2', 'wechat-v3'] as Wallet[]) {
      // At least one paid and one refunded payment of the day, whatever ran before.
      const paid = await ok<Payment>(201, pay(units[wallet], wallet, 1999), 'pay');
      expect(paid.status).toBe('succeeded');
      const refunded = await ok<Payment>(201, pay(units[wallet], wallet, 2888), 'pay');
      await ok(
        201,
        call(base, 'POST', `/v1/payments/${refunded.id}/refunds`, {
          token: plugins[wallet].token,
          headers: { 'idempotency-key': `r-${refunded.id}` },
          body: { amount: { value: 888, currency: 'CNY' } },
        }),
        'refund',
      );
      const report = await ok<{
        providers: Array<{
          provider: string;
          differences: unknown[];
          error?: string;
          ours: { received: number };
        }>;
      }>(
        200,
        call(base, 'GET', `/v1/reports/reconciliation?date=${day}`, { token: units[wallet].token }),
        'reconciliation',
      );
      expect(report.providers).toHaveLength(1);
      expect(report.providers[0].error).toBeUndefined();
      expect(report.providers[0].differences).toEqual([]);
      expect(report.providers[0].ours.received).toBeGreaterThan(0);
    }
  });
});

describe('a forged gateway and a server killed -9 (server as a real process)', () => {
  let dir: string;
  afterEach(async () => {
    await killAllServers();
  });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pc-wallet-kill-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function serverProcess(db: string, port: number): Promise<ServerProcess> {
    return ServerProcess.start({
      port,
      db,
      adminToken: ADMIN,
      simSpeed: 1,
      env: { PAYCONNECT_WALLET_SPEED: String(WALLET_SPEED) },
    });
  }

  it('answers signed with the wrong key never make a payment paid, although the gateway charged', async () => {
    const forged = await startWechatGateway({ dataDir: join(dir, 'wx-forged'), speed: WALLET_SPEED });
    const port = await freePort();
    const server = await serverProcess(`sqlite:${join(dir, 'forged.db')}`, port);
    try {
      const store = await createStore(server.url, ADMIN, '伪造测试');
      const accounts = writeWechatWalletFiles(
        join(dir, 'wx-forged-merchant'),
        forged.url,
        forged.caPem,
        forged.merchant(),
      );
      await ok(
        200,
        call(server.url, 'PUT', `/v1/stores/${store}/wallets/wechat`, { token: ADMIN, body: accounts.v3 }),
        'account',
      );
      const unit = await registerDevice(server.url, ADMIN, store, 'T1');
      forged.testMode.forged = true;
      const r = await ok<Payment>(
        201,
        call(server.url, 'POST', '/v1/payments', {
          token: unit.token,
          headers: { 'idempotency-key': 'forged-1' },
          body: {
            orderId: 'F-1',
            registerId: 'R1',
            amount: { value: 1250, currency: 'CNY' },
            method: { type: 'wallet_code', code: codeOf('wechat-v3') },
          },
        }),
        'pay',
      );
      // The gateway took the money, but every answer is forged: unknown, never "paid". Past the deadline
      // the server keeps trying to cancel; the payment stays pending, never succeeded.
      expect(r.status).toBe('pending');
      await sleep((40_000 / WALLET_SPEED) * 2);
      const now = await ok<Payment>(
        200,
        call(server.url, 'GET', `/v1/payments/${r.id}`, { token: unit.token }),
        'get',
      );
      expect(now.status).toBe('pending');
      expect(forged.trades().find((t) => t.outTradeNo === r.id)?.state).toBe('SUCCESS');
      // Genuine answers again. The deadline has passed, but no cancel got through: the next genuine answer
      // decides — the query says paid (the payment succeeds), or the cancel goes first (reversed). Either
      // way the payment and the gateway agree on where the money is.
      forged.testMode.forged = false;
      const final = await waitFinal(server.url, unit, r.id, 30_000);
      await sleep(200);
      const trade = forged.trades().find((t) => t.outTradeNo === r.id)!;
      if (final.status === 'succeeded') expect(trade.state).toBe('SUCCESS');
      else {
        expect(final).toMatchObject({ status: 'canceled', reversed: true });
        expect(trade.state).not.toBe('SUCCESS');
      }
    } finally {
      await server.stop();
      await forged.close();
    }
  });

  it.each([
    ['while the charge is in flight (no answer yet)', 'no_answer_then_success', 9109],
    ['while the customer confirms (the server is querying)', 'wait_then_success', 9101],
  ])('kill -9 %s: after the restart the payment succeeds, charged once', async (_what, _scenario, amount) => {
    const gateway = await startAlipayGateway({ dataDir: join(dir, `ali-${amount}`), speed: WALLET_SPEED });
    const port = await freePort();
    const db = `sqlite:${join(dir, `kill-${amount}.db`)}`;
    let server = await serverProcess(db, port);
    try {
      const store = await createStore(server.url, ADMIN, '断电测试');
      const account = writeAlipayWalletFiles(
        join(dir, `ali-merchant-${amount}`),
        gateway.url,
        gateway.merchant(),
      );
      await ok(
        200,
        call(server.url, 'PUT', `/v1/stores/${store}/wallets/alipay`, { token: ADMIN, body: account }),
        'account',
      );
      const unit = await registerDevice(server.url, ADMIN, store, 'T1');
      const code = codeOf('alipay');
      const request = call<Payment>(server.url, 'POST', '/v1/payments', {
        token: unit.token,
        headers: { 'idempotency-key': `kill-${amount}` },
        body: {
          orderId: `K-${amount}`,
          registerId: 'R1',
          amount: { value: amount, currency: 'CNY' },
          method: { type: 'wallet_code', code },
        },
      }).catch(() => undefined);
      // Wait until the gateway has the trade (the charge reached it), then cut the power.
      const until = Date.now() + 10_000;
      while (!gateway.trades().length && Date.now() < until) await sleep(10);
      expect(gateway.trades()).toHaveLength(1);
      await server.kill9();
      await request;
      server = await serverProcess(db, port);
      // The unit asks by its key (it never got the answer) and waits for the decision.
      const found = await ok<Payment[]>(
        200,
        call(server.url, 'GET', `/v1/payments?idempotencyKey=kill-${amount}`, { token: unit.token }),
        'find',
      );
      expect(found).toHaveLength(1);
      const final = await waitFinal(server.url, unit, found[0].id, 30_000);
      expect(final.status).toBe('succeeded');
      const trades = gateway.trades();
      expect(trades).toHaveLength(1);
      expect(trades[0]).toMatchObject({ outTradeNo: found[0].id, status: 'TRADE_SUCCESS', refunds: [] });
    } finally {
      await server.stop();
      await gateway.close();
    }
  });
});
