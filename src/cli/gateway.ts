/**
 * `payconnect gateway alipay|wechat`: a local wallet gateway for tests, demos and a reseller's dry run. It
 * behaves like the provider's real one — its own keys, signatures checked as the provider checks them, a
 * ledger kept in the data folder, and scenarios chosen by amount (src/server/gateways/scenarios.ts) — and
 * writes its demo merchant's credentials as files, with the JSON body that points a store's wallet account
 * at them. Runs until Ctrl-C.
 */
import { join, resolve } from 'node:path';
import { SCENARIO_AMOUNTS } from '../server/gateways/scenarios';
import { Command, intOption, parse, UsageError } from './args';
import { stopSignal } from './lan-options';

const OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  data: { type: 'string' },
  speed: { type: 'string' },
} as const;

function common(argv: string[], name: string, defaultPort: number) {
  const { values } = parse(argv, OPTIONS);
  const port = intOption(values.port as string | undefined, 'port', defaultPort, 0);
  const host = (values.host as string | undefined) ?? '127.0.0.1';
  const dataDir = resolve((values.data as string | undefined) ?? `./var/gateway-${name}`);
  const speedText = values.speed as string | undefined;
  const speed = speedText === undefined ? 1 : Number(speedText);
  if (!(speed > 0) || !Number.isFinite(speed))
    throw new UsageError(`--speed must be a number above 0, got "${speedText}"`);
  return { port, host, dataDir, speed };
}

function scenarioLines(): string {
  return Object.entries(SCENARIO_AMOUNTS)
    .map(([fen, name]) => `    ¥${(Number(fen) / 100).toFixed(2)}  ${name}`)
    .join('\n');
}

const USAGE_TAIL = `
  --port P      port to listen on
  --host ADDR   address to listen on (default 127.0.0.1)
  --data DIR    keys, the demo merchant's files and the ledger (kept across restarts)
  --speed S     divides every scenario delay (default 1: real time)

Scenarios by amount (every other amount is paid at once):
${scenarioLines()}`;

async function untilStopped(close: () => Promise<void>): Promise<number> {
  await stopSignal();
  await close();
  return 0;
}

export const gatewayAlipay: Command = {
  usage: `payconnect gateway alipay [--port P] [--data DIR] [--speed S]

A local Alipay OpenAPI gateway (alipay.trade.pay / query / cancel / refund, refund query, bill download)
with RSA2 signatures both ways. Its demo merchant's app key and "Alipay's" public key are written to
DIR/merchant, with wallet-alipay.json to PUT to /v1/stores/:id/wallets/alipay.
${USAGE_TAIL}`,
  async run(argv) {
    const o = common(argv, 'alipay', 8710);
    const { startAlipayGateway } = await import('../server/gateways/alipay');
    const { writeAlipayWalletFiles } = await import('../server/gateways/wallet-files');
    const gw = await startAlipayGateway({ host: o.host, port: o.port, dataDir: o.dataDir, speed: o.speed });
    const folder = join(o.dataDir, 'merchant');
    writeAlipayWalletFiles(folder, gw.url, gw.merchant());
    process.stdout.write(
      `payconnect Alipay gateway listening on ${gw.url}\n` +
        `demo merchant: app ${gw.merchant().appId}; its files and wallet-alipay.json are in ${folder}\n` +
        `point a store at it: curl -X PUT -H "authorization: Bearer $PAYCONNECT_ADMIN_TOKEN" -H "content-type: application/json" ` +
        `--data @${join(folder, 'wallet-alipay.json')} http://127.0.0.1:8700/v1/stores/STORE/wallets/alipay\n`,
    );
    return untilStopped(() => gw.close());
  },
};

export const gatewayWechat: Command = {
  usage: `payconnect gateway wechat [--port P] [--data DIR] [--speed S]

A local WeChat Pay gateway over HTTPS with its own CA: API v2 (micropay, orderquery, reverse and refund
behind mutual TLS, downloadbill) and API v3 (codepay, query, reverse, refunds, tradebill), signatures
checked both ways. Its demo merchant's certificate, keys and WeChat Pay's platform certificate and public
key are written to DIR/merchant, with wallet-wechat-v2.json and wallet-wechat-v3.json to PUT to
/v1/stores/:id/wallets/wechat.
${USAGE_TAIL}`,
  async run(argv) {
    const o = common(argv, 'wechat', 8711);
    const { startWechatGateway } = await import('../server/gateways/wechat/wechat.gateway');
    const { writeWechatWalletFiles } = await import('../server/gateways/wallet-files');
    const gw = await startWechatGateway({ host: o.host, port: o.port, dataDir: o.dataDir, speed: o.speed });
    const folder = join(o.dataDir, 'merchant');
    writeWechatWalletFiles(folder, gw.url, gw.caPem, gw.merchant());
    process.stdout.write(
      `payconnect WeChat Pay gateway listening on ${gw.url}\n` +
        `demo merchant: ${gw.merchant().mchId} (app ${gw.merchant().appId}); files, wallet-wechat-v2.json and wallet-wechat-v3.json are in ${folder}\n`,
    );
    return untilStopped(() => gw.close());
  },
};
