/**
 * Builds and starts the payment server: database (migrated), signing keys, admin token, services, the
 * NestJS app on Fastify, the events WebSocket, and the sweeper that finishes pending payments.
 */
import 'reflect-metadata';
import { FailureLimit } from './failure-limiter';
import { DynamicModule, Logger, Module, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { ValidationError } from 'class-validator';
import { Clock, SystemClock } from '../protocol/clock';
import { ApiError } from './api-error';
import { EventsService } from './events.service';
import { AdminGuard, AdminOrDeviceGuard, DeviceGuard } from './http/auth';
import {
  DevicesController,
  HealthController,
  OrdersController,
  PaymentHistoryController,
  PaymentsController,
  ReportsController,
  StoresController,
} from './http/controllers';
import { ErrorFilter } from './http/error.filter';
import { EventsGateway } from './http/events.gateway';
import { SERVER_CONTEXT, ServerContext } from './http/server-context';
import { Metrics } from './metrics';
import { PaymentSweeper } from './payment-sweeper';
import { PaymentsService, scaledTiming } from './payments.service';
import { PaymentProvider } from './providers/provider';
import { ProviderRouter } from './providers/router';
import { WalletAccounts, WalletFactory, WalletName } from './providers/wallet-accounts';
import { defaultWalletFactories } from './providers/wallet-factories';
import { openSimulatorLedger, SimulatorProvider } from './providers/simulator.provider';
import { redact } from './redact';
import { RefundsService } from './refunds.service';
import { ReportsService } from './reports.service';
import { adminTokenHash, loadServerKeys } from './server-crypto';
import { DbUrl } from './storage/db';
import { openServerDb } from './storage/open';
import { SqliteDb } from './storage/sqlite';
import { StoresService } from './stores.service';
import { closeWithGrace } from '../protocol/close-grace';

export interface ServerConfig {
  port: number;
  host?: string;
  db: DbUrl;
  /** PAYCONNECT_ADMIN_TOKEN; when unset one is generated on first start and returned once. */
  adminToken?: string;
  /** PAYCONNECT_SIM_SPEED: divides the simulator's delays and the wallet timing rules. */
  simSpeed?: number;
  /** Largest request body, bytes. */
  bodyLimit?: number;
  clock?: Clock;
  provider?: (ctx: { db: ServerContext['db']; clock: Clock; speed: number }) => PaymentProvider;
  /** Nest's logger: false in tests. */
  logger?: boolean;
  sweeperTickMs?: number;
  /** Refused registrations allowed per client address and window (default REGISTRATION_FAILURE_LIMIT). */
  registrationLimit?: FailureLimit;
  /** The real wallets this server can charge (default: Alipay and WeChat Pay). */
  walletFactories?: Partial<Record<WalletName, WalletFactory>>;
  /** PAYCONNECT_WALLET_SPEED: divides the real wallets' timing rules. Only for tests and demos against the
   * local gateways (`payconnect gateway`); 1 in production, where the providers' rules must hold. */
  walletTimeScale?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  context: ServerContext;
  /** The admin token generated on this first start (print it once), if one was generated. */
  generatedAdminToken?: string;
  close(): Promise<void>;
}

function validationError(errors: ValidationError[]): ApiError {
  const messages: string[] = [];
  const walk = (list: ValidationError[], prefix: string) => {
    for (const e of list) {
      const path = prefix ? `${prefix}.${e.property}` : e.property;
      if (e.constraints) {
        for (const [rule, m] of Object.entries(e.constraints)) {
          messages.push(
            rule === 'whitelistValidation'
              ? `${path} is not a known field`
              : m.startsWith(path)
                ? m
                : `${path}: ${m}`,
          );
        }
      }
      if (e.children?.length) walk(e.children, path);
    }
  };
  walk(errors, '');
  return ApiError.badRequest('validation_failed', messages.join('; ') || 'the request body is not valid');
}

export async function createServerApp(config: ServerConfig): Promise<RunningServer> {
  const clock = config.clock ?? new SystemClock();
  const speed = config.simSpeed ?? 1;
  const db = await openServerDb(config.db);
  const keys = await loadServerKeys(db);
  const admin = await adminTokenHash(db, config.adminToken);
  const metrics = new Metrics();
  metrics.describe(
    'payconnect_payments_created_total',
    'counter',
    'Payments created (not counting idempotent replays)',
  );
  metrics.describe(
    'payconnect_payment_decisions_total',
    'counter',
    'Payments that reached a final status, by status',
  );
  metrics.describe(
    'payconnect_idempotent_replays_total',
    'counter',
    'Requests answered from a stored idempotent response',
  );
  metrics.describe(
    'payconnect_cancels_refused_total',
    'counter',
    'Payments decided after the provider refused their cancel for good, by outcome (charge_kept: the trade was paid, the payment succeeded; see GET /v1/payments/:id/history)',
  );
  metrics.describe('payconnect_http_responses_total', 'counter', 'HTTP responses by status class');
  metrics.describe(
    'payconnect_db_commits_total',
    'gauge',
    'SQLite group commits (one fsync each) since start; transactions_total / commits_total = callers per fsync',
  );
  metrics.describe(
    'payconnect_db_transactions_total',
    'gauge',
    'SQLite transactions committed since start (several share one group commit)',
  );
  metrics.describe('payconnect_push_connections_total', 'counter', 'Event WebSocket connections accepted');
  metrics.describe('payconnect_push_frames_total', 'counter', 'payment.updated frames pushed');
  metrics.describe('payconnect_push_connections', 'gauge', 'Event WebSocket connections open now');
  metrics.describe('payconnect_payments_pending', 'gauge', 'Payments not yet decided');
  metrics.describe(
    'payconnect_sweeper_checks_total',
    'gauge',
    'Provider queries made by the sweeper since start',
  );

  // A provider given by the caller (tests) keeps its own state; the built-in simulator gets its ledger.
  const ledger = config.provider ? undefined : await openSimulatorLedger(config.db);
  const simulator =
    config.provider?.({ db, clock, speed }) ?? new SimulatorProvider({ db: ledger!.db, clock, speed });
  const events = new EventsService(db, db, keys.privateKey, db.kind);
  const timing = scaledTiming(speed);
  const logger = new Logger('payconnect-server');
  // Stores with wallet accounts charge real providers; the rest the simulator (providers/router.ts).
  const wallets = new WalletAccounts(
    db,
    clock,
    config.walletFactories ?? defaultWalletFactories(config.walletTimeScale ?? 1),
    (m) => logger.warn(redact(m)),
  );
  for (const w of await wallets.loadAll()) {
    if (w.usable)
      logger.log(
        `wallet account ready: ${w.provider} (${w.config.provider === 'alipay' ? `app ${w.config.appId}` : `merchant ${w.config.mchId}`})`,
      );
  }
  const router = new ProviderRouter({
    simulator,
    simulatorTiming: timing,
    wallets,
    lookup: async (id) => {
      const r = await db.query<{ store_id: string; provider: string }>(
        'SELECT store_id, provider FROM payments WHERE id = $1',
        [id],
      );
      return r[0] ? { storeId: r[0].store_id, provider: r[0].provider } : undefined;
    },
    walletTimeScale: config.walletTimeScale,
  });
  const provider: PaymentProvider = router;
  const payments = new PaymentsService(
    db,
    clock,
    provider,
    events,
    timing,
    (p) => metrics.inc('payconnect_payment_decisions_total', { status: p.status }),
    (outcome, note) => {
      metrics.inc('payconnect_cancels_refused_total', { outcome });
      logger.warn(redact(`payment ${note.paymentId}: ${note.message}`));
    },
    router,
  );
  const refunds = new RefundsService(db, clock, provider, events, timing);
  const sweeper = new PaymentSweeper(
    db,
    clock,
    provider,
    payments,
    timing,
    {
      tickMs: config.sweeperTickMs ?? Math.max(20, Math.min(250, 1000 / speed)),
      leaseMs: 30_000,
      batch: 50,
      log: (m) => logger.warn(redact(m)),
    },
    refunds,
    router,
  );
  const stores = new StoresService(db, clock, keys.publicKey, db, config.registrationLimit);
  await stores.watchDevices();
  const context: ServerContext = {
    db,
    clock,
    stores,
    payments,
    refunds,
    wallets,
    events,
    reports: new ReportsService(db),
    sweeper,
    metrics,
    adminTokenHash: admin.hash,
    serverPublicKey: keys.publicKey,
  };

  @Module({
    controllers: [
      StoresController,
      DevicesController,
      PaymentsController,
      OrdersController,
      PaymentHistoryController,
      ReportsController,
      HealthController,
    ],
    providers: [{ provide: SERVER_CONTEXT, useValue: context }, AdminGuard, DeviceGuard, AdminOrDeviceGuard],
  })
  class ServerModule {}
  const root: DynamicModule = { module: ServerModule };

  const adapter = new FastifyAdapter({ bodyLimit: config.bodyLimit ?? 16 * 1024 });
  const app = await NestFactory.create<NestFastifyApplication>(root, adapter, {
    logger: config.logger === false ? false : undefined,
  });
  app.useGlobalFilters(new ErrorFilter());
  app.useGlobalPipes(
    new ValidationPipe({
      transform: true,
      whitelist: true,
      forbidNonWhitelisted: true,
      exceptionFactory: validationError,
    }),
  );
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onResponse', (_req, reply, done) => {
    metrics.inc('payconnect_http_responses_total', { class: `${Math.floor(reply.statusCode / 100)}xx` });
    done();
  });
  const gateway = new EventsGateway(stores, events, metrics);
  gateway.attach(app.getHttpServer());
  metrics.collect(async () => {
    metrics.set('payconnect_push_connections', {}, gateway.connections());
    const pending = await db.query<{ n: number }>(
      "SELECT COUNT(*) AS n FROM payments WHERE status = 'pending'",
    );
    metrics.set('payconnect_payments_pending', {}, Number(pending[0].n));
    metrics.set('payconnect_sweeper_checks_total', {}, sweeper.stats.checks);
    if (db instanceof SqliteDb) {
      metrics.set('payconnect_db_commits_total', {}, db.stats.commits);
      metrics.set('payconnect_db_transactions_total', {}, db.stats.transactions);
    }
  });

  await app.listen(config.port, config.host ?? '127.0.0.1');
  sweeper.start();
  const address = fastify.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    url: `http://${config.host ?? '127.0.0.1'}:${port}`,
    port,
    context,
    generatedAdminToken: admin.generated,
    async close() {
      sweeper.stop();
      await gateway.close();
      // A request still open after the grace (a client's long wait for a result) is cut rather than
      // holding the stop: every client call is retried under its idempotency key, as after a crash.
      await closeWithGrace(app);
      await ledger?.close();
      await db.close();
    },
  };
}
