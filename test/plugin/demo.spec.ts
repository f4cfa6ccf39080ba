/**
 * `npm start` on a clean clone: `payconnect demo` runs the whole system on one machine, prints where each
 * part is, and a payment goes through it end to end; Ctrl-C stops it cleanly. `npm start` uses the default
 * ports (8700…, LAN 47810), which may be taken on a shared machine, so this runs the same command with
 * ports of its own and a fresh data folder.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import path from 'node:path';
import {
  ChildProc,
  expectStatus,
  http,
  killAllChildren,
  pickLanPorts,
  REPO_ROOT,
  testCode,
  waitFor,
} from '../terminal/support/harness';
import { PluginApi } from './support/plugin-harness';

jest.setTimeout(60_000);

async function tcpPortFree(port: number): Promise<boolean> {
  const srv = createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A base N with N…N+span free (server, plugin, T1, T2, the stand-in register host; the gateways). */
async function pickPortBase(span = 4): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    let free = true;
    for (let p = base; p <= base + span && free; p++) free = await tcpPortFree(p);
    if (free) return base;
  }
  throw new Error('no 5 free TCP ports in a row found in 20000-40000');
}

let tmp: string;
let demo: ChildProc | undefined;

afterAll(async () => {
  await killAllChildren();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('payconnect demo (npm start)', () => {
  it('prints the URLs, takes a payment end to end, and stops on Ctrl-C', async () => {
    // What `npm start` runs: this command, with the default ports.
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.start).toBe('node bin/payconnect.js demo');
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-demo-'));
    const base = await pickPortBase();
    const lan = await pickLanPorts();
    demo = ChildProc.spawn(
      'demo',
      [
        'demo',
        '--port-base',
        String(base),
        '--data',
        path.join(tmp, 'demo'),
        '--lan-port',
        String(lan.unitPort),
      ],
      { PAYCONNECT_SIM_SPEED: '50' },
    );
    const proc = demo;

    const urls = await waitFor(
      'the demo to print its URLs',
      () => {
        if (!proc.alive) throw new Error(`the demo exited:\n${proc.output}`);
        const out = proc.output;
        const url = (label: string) =>
          new RegExp(`${label}\\s+(http://127\\.0\\.0\\.1:\\d+)/`).exec(out)?.[1];
        const found = {
          server: url('payment server'),
          plugin: url('plugin \\(R1\\)'),
          t1: url('unit T1'),
          t2: url('unit T2'),
          host: url('register host'),
        };
        return Object.values(found).every(Boolean) && (found as Record<keyof typeof found, string>);
      },
      30_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${proc.output}`);
    });
    expect(urls).toEqual({
      server: `http://127.0.0.1:${base}`,
      plugin: `http://127.0.0.1:${base + 1}`,
      t1: `http://127.0.0.1:${base + 2}`,
      t2: `http://127.0.0.1:${base + 3}`,
      host: `http://127.0.0.1:${base + 4}`,
    });
    expect(proc.output).toContain('payconnect demo is running');

    // Each part answers where the demo said.
    await expectStatus(200, http(urls.server, 'GET', '/healthz'), 'server /healthz');
    const plugin = new PluginApi(urls.plugin);
    await plugin.waitForUnits(['T1', 'T2']);

    const posted = await plugin.post({ orderId: 'D-1', amount: '12.50' });
    expect(posted.status).toBe(202);
    await waitFor('the offer of D-1 on T1', async () => {
      const offers = await expectStatus<{ orderId: string }[]>(
        200,
        http(urls.t1, 'GET', '/api/offers'),
        'T1 offers',
      );
      return offers.some((o) => o.orderId === 'D-1');
    });
    await expectStatus(200, http(urls.t1, 'POST', '/api/offers/D-1/claim'), 'claim D-1 on T1');
    const paid = await expectStatus<{ status: string }>(
      200,
      http(urls.t1, 'POST', '/api/offers/D-1/pay', { body: { paymentCode: testCode('00') } }),
      'pay D-1 on T1',
    );
    expect(paid.status).toBe('succeeded');
    await plugin.waitOrder('D-1', 'to be paid', (o) => o.status === 'paid');
    await waitFor('the stand-in register host to verify the paid callback', () =>
      proc.output.includes('register host: order D-1 is paid (signature verified)'),
    );
    // A browser opening the stand-in register sees what it was told (not a 401 and a false log line).
    const hostPage = await fetch(urls.host + '/');
    expect(hostPage.status).toBe(200);
    expect(hostPage.headers.get('content-type')).toContain('text/html');
    const html = await hostPage.text();
    expect(html).toMatch(/<td>D-1<\/td><td>¥12\.50<\/td><td><b>paid<\/b><\/td><td>verified<\/td>/);
    expect(proc.output).not.toContain('not JSON');
    // The plugin's status page offers the demo register form here (and only in the demo).
    const status = await expectStatus<{ demoRegister: boolean }>(
      200,
      http(urls.plugin, 'GET', '/api/status'),
      'status',
    );
    expect(status.demoRegister).toBe(true);

    // The same register takes order files too: one dropped into the inbox is offered, paid on T2, and
    // answered with a result file in the outbox.
    const demoDir = path.join(tmp, 'demo');
    writeFileSync(path.join(demoDir, 'inbox', 'f-1.tmp'), JSON.stringify({ orderNo: 'F-1', total: '9.90' }));
    renameSync(path.join(demoDir, 'inbox', 'f-1.tmp'), path.join(demoDir, 'inbox', 'f-1.json'));
    await waitFor('the offer of F-1 on T2', async () =>
      (
        await expectStatus<Array<{ orderId: string }>>(200, http(urls.t2, 'GET', '/api/offers'), 'T2 offers')
      ).some((o) => o.orderId === 'F-1'),
    );
    await expectStatus(200, http(urls.t2, 'POST', '/api/offers/F-1/claim'), 'claim F-1 on T2');
    await expectStatus(
      200,
      http(urls.t2, 'POST', '/api/offers/F-1/pay', { body: { paymentCode: testCode('00', '13') } }),
      'pay F-1 on T2',
    );
    const resultFile = path.join(demoDir, 'outbox', 'F-1.result.json');
    const result = await waitFor(
      'the result file of F-1',
      () => existsSync(resultFile) && JSON.parse(readFileSync(resultFile, 'utf8')),
    );
    expect(result).toMatchObject({ orderId: 'F-1', status: 'paid', amount: { value: 990, currency: 'CNY' } });

    // Ctrl-C: everything closes and the command exits 0 by itself (waitExit kills it and fails after
    // 10 s), saying nothing went wrong on the way out.
    const before = proc.output.length;
    proc.child.kill('SIGINT');
    const exit = await proc.waitExit(10_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(proc.output.slice(before)).not.toMatch(/error|exception|unhandled|warn/i);
  });

  it('--providers gateways: the local Alipay and WeChat Pay gateways take the payments, and the plugin names who took the money', async () => {
    tmp = tmp ?? mkdtempSync(path.join(tmpdir(), 'payconnect-demo-'));
    const base = await pickPortBase(6);
    const lan = await pickLanPorts();
    const dir = path.join(tmp, 'demo-gateways');
    const proc = ChildProc.spawn(
      'demo-gateways',
      [
        'demo',
        '--port-base',
        String(base),
        '--data',
        dir,
        '--lan-port',
        String(lan.unitPort),
        '--providers',
        'gateways',
      ],
      { PAYCONNECT_WALLET_SPEED: '20' },
    );
    await waitFor(
      'the demo to start',
      () => {
        if (!proc.alive) throw new Error(`the demo exited:\n${proc.output}`);
        return proc.output.includes('payconnect demo is running') && proc.output.includes('Try:');
      },
      45_000,
      100,
    );
    expect(proc.output).toMatch(
      new RegExp(`Alipay gateway\\s+http://127\\.0\\.0\\.1:${base + 5}/gateway\\.do`),
    );
    expect(proc.output).toMatch(new RegExp(`WeChat gateway\\s+https://127\\.0\\.0\\.1:${base + 6}`));
    const plugin = new PluginApi(`http://127.0.0.1:${base + 1}`);
    const t1 = `http://127.0.0.1:${base + 2}`;
    await plugin.waitForUnits(['T1', 'T2']);
    const codes = {
      alipay: `28${String(Date.now()).padStart(16, '0').slice(-16)}`,
      wechat: `13${String(Date.now() + 1)
        .padStart(16, '0')
        .slice(-16)}`,
    };
    for (const [wallet, order] of [
      ['alipay', 'G-1'],
      ['wechat', 'G-2'],
    ] as const) {
      expect((await plugin.post({ orderId: order, amount: '12.50' })).status).toBe(202);
      await waitFor(`the offer of ${order} on T1`, async () =>
        (await expectStatus<{ orderId: string }[]>(200, http(t1, 'GET', '/api/offers'), 'offers')).some(
          (o) => o.orderId === order,
        ),
      );
      await expectStatus(200, http(t1, 'POST', `/api/offers/${order}/claim`), `claim ${order}`);
      const paid = await expectStatus<{ status: string }>(
        200,
        http(t1, 'POST', `/api/offers/${order}/pay`, { body: { paymentCode: codes[wallet] } }),
        `pay ${order}`,
      );
      expect(paid.status).toBe('succeeded');
      const o = await plugin.waitOrder(order, 'to be paid', (x) => x.status === 'paid');
      expect((o as unknown as { payment: { method: { provider: string } } }).payment.method.provider).toBe(
        wallet,
      );
      // The gateway's own ledger has the trade (kept in the demo's data folder).
      const ledger = readFileSync(path.join(dir, 'gateways', wallet, 'ledger.jsonl'), 'utf8');
      expect(ledger).toContain((o as unknown as { payment: { id: string } }).payment.id);
    }
    // A code is good once, at the gateway as at the provider: the same Alipay code again is declined.
    expect((await plugin.post({ orderId: 'G-3', amount: '3.00' })).status).toBe(202);
    await waitFor('the offer of G-3 on T1', async () =>
      (await expectStatus<{ orderId: string }[]>(200, http(t1, 'GET', '/api/offers'), 'offers')).some(
        (o) => o.orderId === 'G-3',
      ),
    );
    await expectStatus(200, http(t1, 'POST', '/api/offers/G-3/claim'), 'claim G-3');
    const again = await http(t1, 'POST', '/api/offers/G-3/pay', { body: { paymentCode: codes.alipay } });
    expect(JSON.stringify(again.body)).toMatch(/failed|invalid_code/);
    // Every scenario of the gateways through the real unit and plugin, at both providers (the demo's
    // wallets run PAYCONNECT_WALLET_SPEED=20 times faster here: the customer's password, the deadlines).
    // What the shop sees at the register: paid, or not paid with the provider's reason.
    const fresh = (p: string) => `${p}${Array.from(randomBytes(16), (b) => b % 10).join('')}`;
    const scenarios: Array<[string, string, 'paid' | 'failed', string?]> = [
      ['91.01', 'wait_then_success', 'paid'],
      ['91.02', 'wait_then_timeout', 'failed', 'customer_timeout'],
      ['91.03', 'insufficient_funds', 'failed', 'insufficient_funds'],
      ['91.04', 'code_invalid', 'failed', 'invalid_code'],
      ['91.05', 'system_error_then_success', 'paid'],
      ['91.06', 'system_error_not_created', 'failed'],
      ['91.07', 'duplicate_order_no', 'failed'],
      ['91.09', 'no_answer_then_success', 'paid'],
    ];
    let n = 10;
    for (const prefix of ['28', '13']) {
      for (const [amount, scenario, status, failure] of scenarios) {
        const order = `S-${n++}`;
        expect((await plugin.post({ orderId: order, amount })).status).toBe(202);
        await waitFor(`the offer of ${order} on T1`, async () =>
          (await expectStatus<{ orderId: string }[]>(200, http(t1, 'GET', '/api/offers'), 'offers')).some(
            (o) => o.orderId === order,
          ),
        );
        await expectStatus(200, http(t1, 'POST', `/api/offers/${order}/claim`), `claim ${order}`);
        await http(t1, 'POST', `/api/offers/${order}/pay`, { body: { paymentCode: fresh(prefix) } });
        const o = (await plugin.waitOrder(
          order,
          `(${prefix === '28' ? 'Alipay' : 'WeChat Pay'} ${scenario}) to end ${status}`,
          (x) => x.status === 'paid' || x.status === 'failed' || x.status === 'canceled',
          60_000,
        )) as unknown as {
          status: string;
          payment?: { failure?: { code: string }; method: { provider: string } };
        };
        expect({ scenario, status: o.status }).toEqual({ scenario, status });
        expect(o.payment?.method.provider).toBe(prefix === '28' ? 'alipay' : 'wechat');
        if (failure) expect({ scenario, failure: o.payment?.failure?.code }).toEqual({ scenario, failure });
      }
    }
    proc.child.kill('SIGINT');
    expect(await proc.waitExit(10_000)).toEqual({ code: 0, signal: null });
  });
});
