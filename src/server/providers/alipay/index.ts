export { AlipayAccount, AlipayProvider, AlipayProviderOptions } from './alipay.provider';
export { ALIPAY_POLICY } from './alipay.policy';
export { alipayWalletFactory } from './alipay.factory';
