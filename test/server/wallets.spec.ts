/**
 * A store's wallet accounts and the routing of its payments, as the admin and a shop's unit see them,
 * against a real server (SQLite file) on a real port. The wallets here are fakes with the real providers'
 * shape (fast; the real Alipay and WeChat Pay providers against their local gateways are tested in
 * test/server/wallet-gateways.spec.ts): what is tested is the server's side — files checked, codes routed by
 * prefix, the provider written with the payment and used for every later call, also after a restart, and the
 * provider's timing rules (a cancel no sooner than its cancelNotBeforeMs).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Payment } from '../../src/protocol/states';
import {
  CancelResult,
  ChargeRequest,
  ChargeResult,
  QueryResult,
  RefundQueryResult,
} from '../../src/server/providers/provider';
import type { ProviderPolicy } from '../../src/server/providers/policy';
import type { WalletFactory } from '../../src/server/providers/wallet-accounts';
import type { BillRow, ProbeResult, WalletProvider } from '../../src/server/providers/wallet';
import { createServerApp, RunningServer } from '../../src/server/server-app';
import { providerCheck } from '../../src/cli/provider';
import { call, createStore, ok, registerDevice, RegisteredDevice, waitFinal } from './support/server-client';

jest.setTimeout(30_000);

const ADMIN = `admin-${randomBytes(8).toString('hex')}`;
/** A fresh Alipay-shaped code (28 and 16 random digits): real codes are good once. */
const ALIPAY_CODE = () => `28${Array.from(randomBytes(16), (b) => b % 10).join('')}`;
const WECHAT_CODE = '134567890123456789';
const UNIONPAY_CODE = '6212345678901234567';

/** A policy with WeChat Pay's shape at test speed: cancel no sooner than 600 ms after the charge. */
const POLICY: ProviderPolicy = {
  firstCheckMs: 100,
  checkEveryMs: [50, 80],
  deadlineMs: 1500,
  cancelNotBeforeMs: 600,
  cancelRetryMs: 50,
  cancelWindowMs: 60_000,
  requestTimeoutMs: 2000,
};

/** A wallet's trades, kept across server restarts (the provider's side outlives the server). */
class FakeWallet implements WalletProvider {
  readonly policy = POLICY;
  readonly trades = new Map<
    string,
    { state: 'paying' | 'paid' | 'closed' | 'reversed'; amount: number; at: number }
  >();
  readonly calls: string[] = [];
  /** What each account was built from (to check the files were read). */
  readonly built: Array<Record<string, string>> = [];
  /** Charges answer "the customer is confirming" (else paid at once). */
  waiting = false;

  constructor(readonly name: string) {}

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    this.calls.push(`charge ${req.outTradeNo}`);
    this.trades.set(req.outTradeNo, {
      state: this.waiting ? 'paying' : 'paid',
      amount: req.amount.value,
      at: Date.now(),
    });
    return this.waiting
      ? { outcome: 'user_paying', tradeNo: `T-${req.outTradeNo}`, brand: this.name }
      : { outcome: 'succeeded', tradeNo: `T-${req.outTradeNo}`, brand: this.name };
  }
  async query(id: string): Promise<QueryResult> {
    this.calls.push(`query ${id}`);
    const t = this.trades.get(id);
    if (!t) return { state: 'not_found' };
    if (t.state === 'paid') return { state: 'succeeded', tradeNo: `T-${id}` };
    if (t.state === 'paying') return { state: 'user_paying' };
    return { state: 'closed' };
  }
  async cancel(id: string): Promise<CancelResult> {
    const t = this.trades.get(id);
    this.calls.push(`cancel ${id} after ${t ? Date.now() - t.at : -1} ms`);
    if (!t) return { reversed: false };
    const reversed = t.state === 'paid';
    t.state = reversed ? 'reversed' : 'closed';
    return { reversed };
  }
  async refund(): Promise<{ refundNo: string }> {
    throw new Error('not used here');
  }
  async queryRefund(): Promise<RefundQueryResult> {
    return { state: 'not_found' };
  }
  /** The bill: every paid trade a payment row, a reversed one a payment and a refund; then `billEdit`. */
  billEdit: (rows: BillRow[]) => BillRow[] = (r) => r;
  async bill(): Promise<BillRow[]> {
    const rows: BillRow[] = [];
    for (const [id, t] of this.trades) {
      const at = new Date(t.at).toISOString();
      if (t.state === 'paid' || t.state === 'reversed')
        rows.push({ kind: 'payment', outTradeNo: id, tradeNo: `T-${id}`, amount: t.amount, at });
      if (t.state === 'reversed')
        rows.push({
          kind: 'refund',
          outTradeNo: id,
          tradeNo: `T-${id}`,
          refundNo: `R-${id}`,
          amount: t.amount,
          at,
        });
    }
    return this.billEdit(rows);
  }
  async probe(): Promise<ProbeResult> {
    return { ok: true, message: `${this.name} answered a signed query: the credentials work` };
  }
}

describe('wallet accounts and routing (real server, fake wallets)', () => {
  let dir: string;
  let server: RunningServer;
  let base: string;
  let store: string;
  let unit: RegisteredDevice;
  const alipay = new FakeWallet('alipay');
  const wechat = new FakeWallet('wechat');
  const factory = (w: FakeWallet): WalletFactory => ({
    policy: POLICY,
    create: (_config, material) => {
      w.built.push(material);
      return w;
    },
  });
  const admin = (method: string, path: string, body?: unknown) =>
    call(base, method, path, { token: ADMIN, body });

  async function start(): Promise<void> {
    server = await createServerApp({
      port: 0,
      db: { kind: 'sqlite', path: join(dir, 'server.db') },
      adminToken: ADMIN,
      logger: false,
      sweeperTickMs: 20,
      walletFactories: { alipay: factory(alipay), wechat: factory(wechat) },
    });
    base = server.url;
  }

  function pay(code: string, amount = 1250) {
    return call<Payment & { error?: { code: string; message: string } }>(base, 'POST', '/v1/payments', {
      token: unit.token,
      headers: { 'idempotency-key': `k-${randomBytes(6).toString('hex')}` },
      body: {
        orderId: `单-${randomBytes(3).toString('hex')}`,
        registerId: 'R1',
        amount: { value: amount, currency: 'CNY' },
        method: { type: 'wallet_code', code },
      },
    });
  }

  function keyFile(name: string, mode = 0o600): string {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const file = join(dir, name);
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    chmodSync(file, mode);
    return file;
  }

  function publicKeyFile(name: string): string {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const file = join(dir, name);
    writeFileSync(file, publicKey.export({ type: 'spki', format: 'pem' }) as string);
    return file;
  }

  function alipayAccount(over: Record<string, unknown> = {}) {
    return {
      appId: '2021000000000001',
      gatewayUrl: 'http://127.0.0.1:9/gateway.do',
      appPrivateKeyFile: keyFile(`app-${randomBytes(3).toString('hex')}.pem`),
      alipayPublicKeyFile: publicKeyFile(`alipay-${randomBytes(3).toString('hex')}.pem`),
      ...over,
    };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-wallets-'));
    await start();
    store = await createStore(base, ADMIN, '收银台测试店');
    unit = await registerDevice(base, ADMIN, store, 'T1');
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a store without a wallet account charges the simulator, as before', async () => {
    const r = await pay('281234567890123400');
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ status: 'succeeded', method: { provider: 'simulator' } });
    expect(alipay.calls).toEqual([]);
  });

  it('refuses an account whose files are wrong, naming the field and the file, and keeps nothing', async () => {
    const missing = await admin(
      'PUT',
      `/v1/stores/${store}/wallets/alipay`,
      alipayAccount({ appPrivateKeyFile: join(dir, 'nope.pem') }),
    );
    expect(missing.status).toBe(422);
    expect(JSON.stringify(missing.body)).toMatch(/appPrivateKeyFile: no file .*nope\.pem/);

    const open = keyFile('open.pem', 0o644);
    const world = await admin(
      'PUT',
      `/v1/stores/${store}/wallets/alipay`,
      alipayAccount({ appPrivateKeyFile: open }),
    );
    expect(world.status).toBe(422);
    expect(JSON.stringify(world.body)).toContain(`other users may read it (mode 644); run chmod 600 ${open}`);

    const swapped = await admin(
      'PUT',
      `/v1/stores/${store}/wallets/alipay`,
      alipayAccount({ alipayPublicKeyFile: keyFile('priv-as-pub.pem') }),
    );
    expect(swapped.status).toBe(422);
    expect(JSON.stringify(swapped.body)).toMatch(
      /alipayPublicKeyFile: .* holds a private key, not a PEM public key or certificate/,
    );

    const relative = await admin(
      'PUT',
      `/v1/stores/${store}/wallets/alipay`,
      alipayAccount({ appPrivateKeyFile: 'app.pem' }),
    );
    expect(relative.status).toBe(400);
    expect(JSON.stringify(relative.body)).toContain('appPrivateKeyFile must be an absolute path');

    const extra = await admin(
      'PUT',
      `/v1/stores/${store}/wallets/alipay`,
      alipayAccount({ privateKey: 'MIIE…' }),
    );
    expect(extra.status).toBe(400);
    expect((extra.body as { error: { message: string } }).error.message).toBe('unknown field "privateKey"');

    const unknown = await admin('PUT', `/v1/stores/${store}/wallets/unionpay`, alipayAccount());
    expect(unknown.status).toBe(404);

    expect((await admin('GET', `/v1/stores/${store}/wallets`)).body).toEqual([]);
    // Still the simulator's store.
    expect((await pay('281234567890123400')).body.status).toBe('succeeded');
  });

  it('routes Alipay codes to the Alipay account once it is set; other wallets are refused before any charge', async () => {
    const account = alipayAccount();
    const put = await admin('PUT', `/v1/stores/${store}/wallets/alipay`, account);
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      provider: 'alipay',
      usable: true,
      config: { appId: '2021000000000001' },
    });
    // The view names files, never their content.
    const listed = JSON.stringify((await admin('GET', `/v1/stores/${store}/wallets`)).body);
    expect(listed).toContain(account.appPrivateKeyFile);
    expect(listed).not.toContain('PRIVATE KEY');
    expect(alipay.built.at(-1)?.appPrivateKeyFile).toContain('BEGIN PRIVATE KEY');

    const code = ALIPAY_CODE();
    const paid = await pay(code);
    expect(paid.status).toBe(201);
    expect(paid.body).toMatchObject({ status: 'succeeded', method: { brand: 'alipay', provider: 'alipay' } });
    expect(alipay.calls).toContain(`charge ${paid.body.id}`);
    const row = await server.context.db.query<{ provider: string }>(
      'SELECT provider FROM payments WHERE id = $1',
      [paid.body.id],
    );
    expect(row[0].provider).toBe('alipay');

    const before = alipay.calls.length + wechat.calls.length;
    const wx = await pay(WECHAT_CODE);
    expect(wx.status).toBe(422);
    expect(wx.body.error?.code).toBe('wallet_unavailable');
    expect(wx.body.error?.message).toMatch(/cannot take WeChat Pay now .*no wechat account/);
    const up = await pay(UNIONPAY_CODE);
    expect(up.status).toBe(422);
    expect(up.body.error?.code).toBe('unsupported_payment_code');
    const product = await pay('690123456789012345');
    expect(product.status).toBe(422);
    expect(product.body.error?.message).toContain('not an Alipay');
    expect(alipay.calls.length + wechat.calls.length).toBe(before);
    const stored = await server.context.db.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM payments WHERE store_id = $1 AND (code_hint LIKE '13%' OR code_hint LIKE '62%' OR code_hint LIKE '69%')`,
      [store],
    );
    expect(Number(stored[0].n)).toBe(0);

    const check = await admin('POST', `/v1/stores/${store}/wallets/check`);
    expect(check.body).toEqual([
      { provider: 'alipay', result: { ok: true, message: expect.stringContaining('credentials work') } },
    ]);
  });

  it('payconnect provider check prints each account plainly, and exits 1 when one does not work', async () => {
    const printed: string[] = [];
    const write = jest
      .spyOn(process.stdout, 'write')
      .mockImplementation((t) => (printed.push(String(t)), true));
    process.env.PAYCONNECT_ADMIN_TOKEN = ADMIN;
    try {
      expect(await providerCheck.run(['--store', store, '--server', base])).toBe(0);
      expect(printed.join('')).toBe('Alipay: OK — alipay answered a signed query: the credentials work\n');
      printed.length = 0;
      const probe = alipay.probe;
      alipay.probe = async () => ({
        ok: false,
        problem: 'clock_skew',
        message: "Alipay refused the request's time: set this server's clock",
      });
      expect(await providerCheck.run(['--store', store, '--server', base])).toBe(1);
      expect(printed.join('')).toContain(
        "Alipay: NOT WORKING (clock_skew) — Alipay refused the request's time",
      );
      alipay.probe = probe;
    } finally {
      write.mockRestore();
      delete process.env.PAYCONNECT_ADMIN_TOKEN;
    }
  });

  it('keeps asking the same provider after a restart, and decides the payment from its answer', async () => {
    alipay.waiting = true;
    const r = await pay(ALIPAY_CODE());
    expect(r.body.status).toBe('pending');
    await server.close();
    alipay.trades.get(r.body.id)!.state = 'paid'; // the customer confirmed while the server was down
    await start();
    const final = await waitFinal(base, unit, r.body.id, 5000);
    expect(final.status).toBe('succeeded');
    expect(alipay.calls).toContain(`query ${r.body.id}`);
    alipay.waiting = false;
  });

  it("holds a register's cancel until the provider takes one (cancelNotBeforeMs), then cancels", async () => {
    alipay.waiting = true;
    const r = await pay(ALIPAY_CODE());
    expect(r.body.status).toBe('pending');
    const c = await call<{ error: { code: string; message: string } }>(
      base,
      'POST',
      `/v1/payments/${r.body.id}/cancel`,
      { token: unit.token },
    );
    expect(c.status).toBe(502);
    expect(c.body.error.code).toBe('cancel_pending');
    expect(c.body.error.message).toMatch(
      /alipay takes a cancel only 1 s after the charge; .* cannot succeed any more/,
    );
    // The customer confirms now: the payment may not succeed any more; the cancel, when it goes, reverses.
    alipay.trades.get(r.body.id)!.state = 'paid';
    const final = await waitFinal(base, unit, r.body.id, 5000);
    expect(final).toMatchObject({ status: 'canceled', reversed: true });
    const cancel = alipay.calls.find((c) => c.startsWith(`cancel ${r.body.id}`))!;
    expect(Number(/after (\d+) ms/.exec(cancel)![1])).toBeGreaterThanOrEqual(POLICY.cancelNotBeforeMs);
    alipay.waiting = false;
  });

  it('gives every payment routed to a wallet its policy deadline, then cancels', async () => {
    alipay.waiting = true;
    const r = await pay(ALIPAY_CODE());
    const row = await server.context.db.query<{ deadline_at: number; created_at: string }>(
      'SELECT deadline_at, created_at FROM payments WHERE id = $1',
      [r.body.id],
    );
    expect(Number(row[0].deadline_at) - Date.parse(row[0].created_at)).toBe(POLICY.deadlineMs);
    const final = await waitFinal(base, unit, r.body.id, 5000);
    expect(final).toMatchObject({ status: 'canceled', failure: { code: 'customer_timeout' } });
    alipay.waiting = false;
  });

  it("reconciles the day's ledger against the provider's bill, trade by trade, naming each difference", async () => {
    const day = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    const clean = await admin('GET', `/v1/reports/reconciliation?storeId=${store}&date=${day}`);
    expect(clean.status).toBe(200);
    const ali = (clean.body as { providers: Array<Record<string, unknown>> }).providers[0];
    // Paid at once (1), confirmed during the restart (1), reversed by the register's cancel (1 in, 1 out).
    expect(ali).toMatchObject({
      provider: 'alipay',
      ours: { payments: 3, received: 3 * 1250, refunds: 1, paidOut: 1250 },
      theirs: { payments: 3, received: 3 * 1250, refunds: 1, paidOut: 1250 },
      differences: [],
    });
    // The provider books a charge we never recorded, and misses one we have.
    const ours = [...alipay.trades].find(([, t]) => t.state === 'paid')![0];
    alipay.billEdit = (rows) => [
      ...rows.filter((r) => r.outTradeNo !== ours),
      {
        kind: 'payment',
        outTradeNo: 'pay_0000000000ghostTrade00000',
        tradeNo: 'T-ghost',
        amount: 990,
        at: new Date().toISOString(),
      },
    ];
    const off = await admin('GET', `/v1/reports/reconciliation?storeId=${store}&date=${day}`);
    const diffs = (
      off.body as {
        providers: Array<{
          differences: Array<{ outTradeNo: string; ours: number; theirs: number; what: string }>;
        }>;
      }
    ).providers[0].differences;
    expect(diffs).toHaveLength(2);
    expect(diffs.find((d) => d.outTradeNo === ours)).toMatchObject({
      ours: 1250,
      theirs: 0,
      what: expect.stringContaining("that alipay's bill does not show"),
    });
    expect(diffs.find((d) => d.outTradeNo.includes('ghost'))).toMatchObject({
      ours: 0,
      theirs: 990,
      what: expect.stringContaining('refund it at alipay'),
    });
    alipay.billEdit = (r) => r;
    const bad = await admin('GET', `/v1/reports/reconciliation?storeId=${store}&date=29-11-2026`);
    expect(bad.status).toBe(400);
  });

  it("the admin removes the account; the store is the simulator's again", async () => {
    expect((await admin('DELETE', `/v1/stores/${store}/wallets/alipay`)).status).toBe(204);
    expect((await admin('DELETE', `/v1/stores/${store}/wallets/alipay`)).status).toBe(404);
    expect((await ok(201, pay('281234567890123400'))).status).toBe('succeeded');
  });
});
