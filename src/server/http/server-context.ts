import { Clock } from '../../protocol/clock';
import { EventsService } from '../events.service';
import { Metrics } from '../metrics';
import { PaymentSweeper } from '../payment-sweeper';
import { PaymentsService } from '../payments.service';
import { WalletAccounts } from '../providers/wallet-accounts';
import { RefundsService } from '../refunds.service';
import { ReportsService } from '../reports.service';
import { ServerDb } from '../storage/open';
import { StoresService } from '../stores.service';

/** Everything the HTTP layer needs, built once by createServerApp and handed to Nest as one value. */
export interface ServerContext {
  db: ServerDb;
  clock: Clock;
  stores: StoresService;
  payments: PaymentsService;
  refunds: RefundsService;
  wallets: WalletAccounts;
  events: EventsService;
  reports: ReportsService;
  sweeper: PaymentSweeper;
  metrics: Metrics;
  adminTokenHash: string;
  serverPublicKey: string;
}

export const SERVER_CONTEXT = Symbol('ServerContext');
