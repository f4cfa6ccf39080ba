/**
 * Builds an AlipayProvider from a store's account as wallet-accounts.ts keeps it (ids and paths in the
 * database, the files' checked contents in `material`).
 */
import { WalletFactory } from '../wallet-accounts';
import { AlipayProvider, AlipayProviderOptions } from './alipay.provider';
import { ALIPAY_POLICY } from './alipay.policy';

export function alipayWalletFactory(opts: AlipayProviderOptions = {}): WalletFactory {
  return {
    policy: ALIPAY_POLICY,
    create(config, material) {
      if (config.provider !== 'alipay')
        throw new Error(`the Alipay factory cannot build a ${config.provider} account`);
      return new AlipayProvider(
        {
          appId: config.appId,
          gatewayUrl: config.gatewayUrl,
          appPrivateKeyPem: material.appPrivateKeyFile,
          alipayPublicKeyPem: material.alipayPublicKeyFile,
          ...(material.caFile ? { caPem: material.caFile } : {}),
        },
        opts,
      );
    },
  };
}
