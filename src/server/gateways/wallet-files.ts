/**
 * A local gateway's demo merchant as files, the way a shop receives its credentials from Alipay or WeChat Pay:
 * key and certificate files (secrets mode 0600) in a folder, plus the JSON body that points a store's wallet
 * account at them (PUT /v1/stores/:id/wallets/:provider). Used by `payconnect gateway` and the demo.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AlipayWalletConfig, WechatWalletConfig } from '../providers/wallet-accounts';
import type { WechatGatewayMerchant } from './wechat/wechat.gateway';

function put(dir: string, name: string, text: string, secret: boolean): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode: secret ? 0o600 : 0o644 });
  return file;
}

export function writeAlipayWalletFiles(
  folder: string,
  gatewayUrl: string,
  merchant: { appId: string; appPrivateKeyPem: string; alipayPublicKeyPem: string },
): AlipayWalletConfig {
  const dir = resolve(folder);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const config: AlipayWalletConfig = {
    appId: merchant.appId,
    gatewayUrl,
    appPrivateKeyFile: put(dir, 'app-private-key.pem', merchant.appPrivateKeyPem, true),
    alipayPublicKeyFile: put(dir, 'alipay-public-key.pem', merchant.alipayPublicKeyPem, false),
  };
  put(dir, 'wallet-alipay.json', JSON.stringify(config, null, 2) + '\n', false);
  return config;
}

/** Writes the files and both accounts' bodies (API v2 and v3); returns them. */
export function writeWechatWalletFiles(
  folder: string,
  baseUrl: string,
  caPem: string,
  m: WechatGatewayMerchant,
): { v2: WechatWalletConfig; v3: WechatWalletConfig } {
  const dir = resolve(folder);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const common = {
    appId: m.appId,
    mchId: m.mchId,
    baseUrl,
    merchantCertFile: put(dir, 'apiclient_cert.pem', m.merchantCertPem, false),
    merchantKeyFile: put(dir, 'apiclient_key.pem', m.merchantKeyPem, true),
    merchantCertSerial: m.merchantCertSerial,
    caFile: put(dir, 'gateway-ca.pem', caPem, false),
  };
  const v2: WechatWalletConfig = {
    api: 'v2',
    ...common,
    apiKeyFile: put(dir, 'api-key.txt', m.apiKey, true),
    signType: 'HMAC-SHA256',
  };
  const v3: WechatWalletConfig = {
    api: 'v3',
    ...common,
    apiV3KeyFile: put(dir, 'apiv3-key.txt', m.apiV3Key, true),
    platformCertFile: put(dir, 'wechatpay-platform-cert.pem', m.platformCertPem, false),
    publicKeyFile: put(dir, 'wechatpay-public-key.pem', m.publicKeyPem, false),
    publicKeyId: m.publicKeyId,
  };
  put(dir, 'wallet-wechat-v2.json', JSON.stringify(v2, null, 2) + '\n', false);
  put(dir, 'wallet-wechat-v3.json', JSON.stringify(v3, null, 2) + '\n', false);
  return { v2, v3 };
}
