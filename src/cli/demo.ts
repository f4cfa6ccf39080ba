/**
 * `payconnect demo` (= `npm start`): the whole system on one machine, with embedded SQLite. A payment
 * server on N, a plugin for register R1 on N+1 (HTTP hook; its callback goes to a small stand-in host on
 * N+4), mobile POS units T1 on N+2 and T2 on N+3, all registered to store "demo", LAN on loopback. The data
 * folder keeps everything, so a second start reuses the registrations. Runs until Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { join, resolve } from 'node:path';
import { verifyCallbackSignature } from '../adapters/http-hook/http-hook.adapter';
import { DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { formatMoney } from '../protocol/money';
import { createPluginApp } from '../plugin/plugin-app';
import { createServerApp } from '../server/server-app';
import { createTerminalApp } from '../terminal/terminal-app';
import { Command, intOption, parse, UsageError } from './args';

const DEMO_SECRET = 'demo-only-secret-not-for-shops';

interface DemoState {
  adminToken: string;
  storeId?: string;
}

async function admin(
  url: string,
  token: string,
  path: string,
  body: unknown,
  method = 'POST',
): Promise<Record<string, string>> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as Record<string, string>;
}

/**
 * A stand-in for the register software's side of the HTTP hook: it verifies each signed callback (POST),
 * keeps it, and shows a browser (GET /) the results it received, newest first, as a real register would show
 * them in its own screens.
 */
function standInHost(port: number, log: (s: string) => void): Promise<Server> {
  const received: { at: string; orderId: string; status: string; amount: string; verified: boolean }[] = [];
  const server = createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(hostPage(received));
      return;
    }
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const ok = verifyCallbackSignature(
        body,
        String(req.headers['x-payconnect-signature'] ?? ''),
        DEMO_SECRET,
      );
      let doc: { orderId?: string; status?: string; amount?: { value: number; currency: string } };
      try {
        doc = JSON.parse(body);
      } catch {
        log('  register host: a POST whose body is not JSON was refused');
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"not JSON"}');
        return;
      }
      log(
        `  register host: order ${doc.orderId} is ${doc.status} (signature ${ok ? 'verified' : 'INVALID'})`,
      );
      received.unshift({
        at: new Date().toISOString(),
        orderId: String(doc.orderId ?? '?'),
        status: String(doc.status ?? '?'),
        amount: doc.amount ? formatMoney(doc.amount, { symbol: true, grouping: true }) : '',
        verified: ok,
      });
      received.length = Math.min(received.length, 200);
      res
        .writeHead(ok ? 200 : 401, { 'content-type': 'application/json' })
        .end(ok ? '{"ok":true}' : '{"error":"bad signature"}');
    });
  });
  return new Promise((r) => server.listen(port, '127.0.0.1', () => r(server)));
}

function hostPage(
  rows: { at: string; orderId: string; status: string; amount: string; verified: boolean }[],
): string {
  const esc = (s: string) =>
    s.replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
    );
  const body = rows.length
    ? rows
        .map(
          (r) =>
            `<tr><td>${esc(r.at.slice(11, 19))} UTC</td><td>${esc(r.orderId)}</td><td>${esc(r.amount)}</td><td><b>${esc(r.status)}</b></td><td>${r.verified ? 'verified' : '<b style="color:#b91c1c">INVALID signature</b>'}</td></tr>`,
        )
        .join('')
    : '<tr><td colspan="5">No results yet: pay an order on a unit.</td></tr>';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3"><title>Stand-in register</title>
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:20px}td,th{padding:4px 10px;text-align:left;border-bottom:1px solid #ddd}</style></head>
<body><h1>Stand-in register (payconnect demo)</h1><p>What the plugin told this register, newest first. A real register shows these in its own screens.</p>
<table><thead><tr><th>Received</th><th>Order</th><th>Amount</th><th>Result</th><th>Signature</th></tr></thead><tbody>${body}</tbody></table></body></html>`;
}

export const demo: Command = {
  usage: `payconnect demo [--port-base N] [--data DIR] [--lan-port N] [--providers simulator|gateways]

Runs payconnect on this machine with embedded SQLite: a payment server on N, a plugin for register R1 on
N+1, mobile POS units T1 on N+2 and T2 on N+3 (and a stand-in register host on N+4 that receives the
plugin's signed callbacks), all registered to store "demo", LAN on loopback. Stops on Ctrl-C.

  --port-base N   first HTTP port (default 8700)
  --data DIR      where everything is kept (default ./var/demo)
  --lan-port N    the units' LAN port (default ${DEFAULT_UNIT_PORT}; the plugin uses N+1)
  --providers P   simulator (default): the built-in simulator decides every payment (test codes 28… / 13…,
                  ending 00 paid, see docs/server-api.md); gateways: local Alipay (N+5) and WeChat Pay (N+6)
                  gateways with their own keys and ledgers take the payments as the real providers would —
                  Alipay codes 25–30…, WeChat Pay codes 10–15…, each code good once; ¥91.01–¥91.09 play the
                  scenarios (payconnect gateway alipay --help)`,
  async run(argv) {
    const { values } = parse(argv, {
      'port-base': { type: 'string' },
      data: { type: 'string' },
      'lan-port': { type: 'string' },
      providers: { type: 'string' },
    });
    const providers = (values.providers as string | undefined) ?? 'simulator';
    if (providers !== 'simulator' && providers !== 'gateways')
      throw new UsageError(`--providers must be simulator or gateways, got "${providers}"`);
    const base = intOption(values['port-base'] as string | undefined, 'port-base', 8700, 1, 65530);
    const unitPort = intOption(
      values['lan-port'] as string | undefined,
      'lan-port',
      DEFAULT_UNIT_PORT,
      1,
      65534,
    );
    const dir = resolve((values.data as string | undefined) ?? './var/demo');
    const walletSpeed = Number(process.env.PAYCONNECT_WALLET_SPEED ?? 1);
    if (!(walletSpeed > 0) || !Number.isFinite(walletSpeed))
      throw new UsageError(
        `PAYCONNECT_WALLET_SPEED must be a number above 0, got "${process.env.PAYCONNECT_WALLET_SPEED}"`,
      );
    mkdirSync(dir, { recursive: true });
    const out = (s: string) => process.stdout.write(s + '\n');
    const stateFile = join(dir, 'demo.json');
    const state: DemoState = existsSync(stateFile)
      ? (JSON.parse(readFileSync(stateFile, 'utf8')) as DemoState)
      : { adminToken: randomBytes(24).toString('base64url') };
    writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });

    const server = await createServerApp({
      port: base,
      db: { kind: 'sqlite', path: join(dir, 'server.db') },
      adminToken: process.env.PAYCONNECT_ADMIN_TOKEN || state.adminToken,
      simSpeed: Number(process.env.PAYCONNECT_SIM_SPEED ?? 1) || 1,
      // Tests of the demo against its local gateways only (the gateways below run as fast).
      walletTimeScale: walletSpeed,
    });
    const adminToken = process.env.PAYCONNECT_ADMIN_TOKEN || state.adminToken;
    if (!state.storeId) {
      state.storeId = (await admin(server.url, adminToken, '/v1/stores', { name: 'demo' })).id;
      writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
    }
    // Real-provider mode: the local gateways take the store's payments through its wallet accounts; in
    // simulator mode a wallet account left by an earlier gateways run is removed.
    const gateways: Array<{ close(): Promise<void> }> = [];
    const walletLines: string[] = [];
    if (providers === 'gateways') {
      const { startAlipayGateway } = await import('../server/gateways/alipay');
      const { startWechatGateway } = await import('../server/gateways/wechat/wechat.gateway');
      const { writeAlipayWalletFiles, writeWechatWalletFiles } =
        await import('../server/gateways/wallet-files');
      const ali = await startAlipayGateway({
        port: base + 5,
        dataDir: join(dir, 'gateways', 'alipay'),
        speed: walletSpeed,
      });
      gateways.push(ali);
      const wx = await startWechatGateway({
        port: base + 6,
        dataDir: join(dir, 'gateways', 'wechat'),
        speed: walletSpeed,
      });
      gateways.push(wx);
      const aliAccount = writeAlipayWalletFiles(
        join(dir, 'gateways', 'alipay', 'merchant'),
        ali.url,
        ali.merchant(),
      );
      const wxAccounts = writeWechatWalletFiles(
        join(dir, 'gateways', 'wechat', 'merchant'),
        wx.url,
        wx.caPem,
        wx.merchant(),
      );
      await admin(server.url, adminToken, `/v1/stores/${state.storeId}/wallets/alipay`, aliAccount, 'PUT');
      await admin(server.url, adminToken, `/v1/stores/${state.storeId}/wallets/wechat`, wxAccounts.v3, 'PUT');
      walletLines.push(
        `  Alipay gateway   ${ali.url}   (app ${aliAccount.appId}; ledger in ${join(dir, 'gateways', 'alipay')})`,
        `  WeChat gateway   ${wx.url}   (merchant ${wxAccounts.v3.mchId}, API v3)`,
      );
    } else {
      for (const p of ['alipay', 'wechat']) {
        const r = await fetch(`${server.url}/v1/stores/${state.storeId}/wallets/${p}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${adminToken}` },
        });
        if (r.status !== 204 && r.status !== 404)
          throw new Error(`removing the demo's ${p} account: ${r.status}`);
      }
    }
    const codeFor = async (role: 'plugin' | 'terminal', folder: string) =>
      existsSync(join(folder, 'device.json'))
        ? undefined
        : (await admin(server.url, adminToken, `/v1/stores/${state.storeId}/registration-codes`, { role }))
            .code;

    const host = await standInHost(base + 4, out);
    const manifestPath = join(dir, 'demo-manifest.yaml');
    writeFileSync(
      manifestPath,
      [
        '# Written by payconnect demo: the HTTP hook, offers to every unit, receipts to a file.',
        'id: demo-manifest',
        'name: payconnect demo (HTTP hook, every terminal)',
        'adapter: http-hook',
        'register: R1',
        'options: { path: /api/orders }',
        'parse: { currency: CNY }',
        'writeBack:',
        `  callback: "http://127.0.0.1:${base + 4}/results"`,
        `  secret: ${DEMO_SECRET}`,
        'dispatch: { mode: broadcast }',
        'receipt: { printer: "file:./receipts.bin", encoding: gb18030, width: 48 }',
        '',
      ].join('\n'),
    );
    // The same register also takes orders as files (JSON, like many ERPs write them): the file-drop adapter.
    const inbox = join(dir, 'inbox');
    const outbox = join(dir, 'outbox');
    mkdirSync(inbox, { recursive: true });
    mkdirSync(outbox, { recursive: true });
    const filesManifest = join(dir, 'demo-files.yaml');
    writeFileSync(
      filesManifest,
      [
        '# Written by payconnect demo: order files dropped into ./inbox, results written to ./outbox.',
        'id: demo-files',
        'name: payconnect demo (order files)',
        'adapter: file-drop',
        'register: R1',
        'options: { inbox: ./inbox, pattern: "*.json" }',
        'parse: { orderId: "$.orderNo", amount: "$.total", currency: CNY }',
        'writeBack: { outbox: ./outbox, format: json }',
        'dispatch: { mode: broadcast }',
        '',
      ].join('\n'),
    );
    const lan = {
      interfaceAddress: '127.0.0.1',
      broadcastAddress: '127.255.255.255',
      unitPort,
      pluginPort: unitPort + 1,
    };
    const plugin = await createPluginApp({
      manifestPath,
      alsoManifests: [filesManifest],
      serverUrl: server.url,
      registrationCode: await codeFor('plugin', join(dir, 'plugin')),
      port: base + 1,
      dataDir: join(dir, 'plugin'),
      lan,
      storeName: 'payconnect demo',
      watchManifest: false,
      demoRegister: true,
    });
    const units = [];
    for (const [i, id] of ['T1', 'T2'].entries()) {
      units.push(
        await createTerminalApp({
          id,
          name: `Demo unit ${id}`,
          serverUrl: server.url,
          registrationCode: await codeFor('terminal', join(dir, id)),
          port: base + 2 + i,
          dataDir: join(dir, id),
          lan,
        }),
      );
    }
    out('payconnect demo is running (Ctrl-C stops it):');
    out(`  payment server   ${server.url}/healthz   (admin token in ${stateFile})`);
    out(`  plugin (R1)      ${plugin.url}/   status page with a demo register form`);
    out(`  unit T1          ${units[0].url}/`);
    out(`  unit T2          ${units[1].url}/`);
    out(`  register host    http://127.0.0.1:${base + 4}/ (receives the plugin's signed results)`);
    out(
      `  order files      drop {"orderNo": "F-1", "total": "9.90"} as a .json file into ${inbox}; results appear in ${outbox}`,
    );
    for (const l of walletLines) out(l);
    out(
      providers === 'gateways'
        ? 'Try: post an order on the plugin page, take it on T1 or T2, and scan a new code each time: 28 and 16 more digits (Alipay) or 13 and 16 more (WeChat Pay). ¥91.01 waits for the customer, ¥91.03 is declined.'
        : 'Try: post an order on the plugin page, take it on T1 or T2, scan 280000000000000000.',
    );
    await new Promise<void>((r) => {
      process.once('SIGINT', r);
      process.once('SIGTERM', r);
    });
    for (const u of units) await u.close();
    await plugin.close();
    host.close();
    await server.close();
    for (const g of gateways) await g.close();
    return 0;
  },
};
