/**
 * The real wallets this server charges through, by name: each one's timing policy and how an account's
 * loaded files become a provider object (wallet-accounts.ts).
 */
import { WalletFactory, WalletName } from './wallet-accounts';

export function defaultWalletFactories(): Partial<Record<WalletName, WalletFactory>> {
  return {};
}
