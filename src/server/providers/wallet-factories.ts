/**
 * The real wallets this server charges through, by name: each one's timing policy and how an account's
 * loaded files become a provider object (wallet-accounts.ts). Both provider modules load only when the
 * server starts, never for the CLI's other commands.
 */
import { alipayWalletFactory } from './alipay';
import { WalletFactory, WalletName } from './wallet-accounts';
import { WECHAT_POLICY, WechatProvider, WechatProviderOptions } from './wechat/wechat.provider';

export function wechatWalletFactory(opts: WechatProviderOptions = {}): WalletFactory {
  return {
    policy: WECHAT_POLICY,
    create(config, material) {
      if (config.provider !== 'wechat')
        throw new Error(`the WeChat Pay factory cannot build a ${config.provider} account`);
      return new WechatProvider(
        {
          api: config.api,
          appId: config.appId,
          mchId: config.mchId,
          baseUrl: config.baseUrl,
          merchantCertPem: material.merchantCertFile,
          merchantKeyPem: material.merchantKeyFile,
          merchantCertSerial: config.merchantCertSerial,
          ...(material.caFile ? { caPem: material.caFile } : {}),
          ...(config.api === 'v2'
            ? { v2: { apiKey: material.apiKeyFile, signType: config.signType ?? 'HMAC-SHA256' } }
            : {
                v3: {
                  apiV3Key: material.apiV3KeyFile,
                  ...(material.platformCertFile ? { platformCertPem: material.platformCertFile } : {}),
                  ...(material.publicKeyFile
                    ? { publicKeyPem: material.publicKeyFile, publicKeyId: config.publicKeyId }
                    : {}),
                },
              }),
        },
        opts,
      );
    },
  };
}

/**
 * Alipay and WeChat Pay. `timeScale` (PAYCONNECT_WALLET_SPEED, local gateways only) also shortens the
 * WeChat Pay provider's own guard against a reverse sooner than 15 s after its charge, as the server's
 * policy is shortened; 1 in production.
 */
export function defaultWalletFactories(timeScale = 1): Partial<Record<WalletName, WalletFactory>> {
  return {
    alipay: alipayWalletFactory(),
    wechat: wechatWalletFactory({ cancelNotBeforeMs: WECHAT_POLICY.cancelNotBeforeMs / timeScale }),
  };
}
