/**
 * The server's schema: one migration set for both engines. Each migration is SQL both engines accept,
 * except where a column type must differ (the auto-increment event sequence), which a migration spells
 * per engine. Applied in order, each once, recorded in `schema_migrations`; on PostgreSQL under an
 * advisory lock so several instances starting together do not race.
 *
 * Conventions: money is BIGINT minor units; instants we compute with are BIGINT epoch ms; instants we only
 * show are ISO-8601 TEXT (UTC), which sort correctly as text.
 */
import { Db, Queryable } from './db';

interface Migration {
  version: number;
  name: string;
  sql: string | { sqlite: string; postgres: string };
}

const eventsTable = (seq: string) => `
CREATE TABLE events (
  seq ${seq},
  store_id TEXT NOT NULL,
  payment_id TEXT NOT NULL,
  body TEXT NOT NULL,
  signature TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX events_store ON events (store_id, seq);`;

/**
 * The simulator's refunds, one per refund id (a provider takes a refund id once): like sim_trades, in the
 * server's database on PostgreSQL and in the simulator's own ledger on SQLite.
 */
export function simRefundsTable(opts: { ifNotExists?: boolean; withoutRowid?: boolean } = {}): string {
  return `CREATE TABLE ${opts.ifNotExists ? 'IF NOT EXISTS ' : ''}sim_refunds (
  refund_no TEXT PRIMARY KEY,
  out_trade_no TEXT NOT NULL,
  amount_value BIGINT NOT NULL,
  currency TEXT NOT NULL,
  created_at BIGINT NOT NULL
)${opts.withoutRowid ? ' WITHOUT ROWID' : ''};`;
}

const paymentHistoryTable = (seq: string) => `
CREATE TABLE payment_history (
  seq ${seq},
  payment_id TEXT NOT NULL REFERENCES payments(id),
  store_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX payment_history_payment ON payment_history (payment_id, seq);`;

/**
 * The simulator provider's trades. In the server's database on PostgreSQL (shared by every instance); on
 * SQLite the simulator keeps them in a ledger file of its own (providers/simulator.provider.ts; there
 * WITHOUT ROWID, one B-tree instead of two), and this table, created by migration 1, stays empty.
 */
export function simTradesTable(opts: { ifNotExists?: boolean; withoutRowid?: boolean } = {}): string {
  return `CREATE TABLE ${opts.ifNotExists ? 'IF NOT EXISTS ' : ''}sim_trades (
  out_trade_no TEXT PRIMARY KEY,
  scenario TEXT NOT NULL,
  amount_value BIGINT NOT NULL,
  currency TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  succeeds_at BIGINT,
  charge_calls INTEGER NOT NULL,
  query_calls INTEGER NOT NULL DEFAULT 0,
  cancel_calls INTEGER NOT NULL DEFAULT 0,
  refunded_value BIGINT NOT NULL DEFAULT 0
)${opts.withoutRowid ? ' WITHOUT ROWID' : ''};`;
}

const BASE = `
CREATE TABLE stores (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE lan_keys (
  store_id TEXT NOT NULL REFERENCES stores(id),
  key_id BIGINT NOT NULL,
  version INTEGER NOT NULL,
  secret TEXT NOT NULL,
  created_at TEXT NOT NULL,
  retired_at TEXT,
  PRIMARY KEY (store_id, version)
);
CREATE TABLE registration_codes (
  lookup TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  store_id TEXT NOT NULL REFERENCES stores(id),
  role TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE TABLE devices (
  store_id TEXT NOT NULL REFERENCES stores(id),
  id TEXT NOT NULL,
  role TEXT NOT NULL,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  PRIMARY KEY (store_id, id)
);
CREATE TABLE settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE server_keys (
  id INTEGER PRIMARY KEY,
  public_key TEXT NOT NULL,
  private_key TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  store_id TEXT NOT NULL REFERENCES stores(id),
  device_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  register_id TEXT NOT NULL,
  amount_value BIGINT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  method_type TEXT NOT NULL,
  method_brand TEXT,
  code_hint TEXT,
  provider_trade_no TEXT,
  failure_code TEXT,
  failure_message TEXT,
  refunded_value BIGINT NOT NULL DEFAULT 0,
  reversed INTEGER NOT NULL DEFAULT 0,
  deadline_at BIGINT NOT NULL,
  next_check_at BIGINT,
  checks INTEGER NOT NULL DEFAULT 0,
  lease_until BIGINT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX payments_due ON payments (status, next_check_at);
CREATE INDEX payments_order ON payments (store_id, order_id);
CREATE INDEX payments_created ON payments (store_id, created_at);
CREATE TABLE refunds (
  id TEXT PRIMARY KEY,
  payment_id TEXT NOT NULL REFERENCES payments(id),
  amount_value BIGINT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE idempotency_keys (
  store_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  state TEXT NOT NULL,
  resource_id TEXT,
  response_status INTEGER,
  response_body TEXT,
  created_at BIGINT NOT NULL,
  locked_until BIGINT NOT NULL,
  PRIMARY KEY (store_id, scope, idem_key)
);
CREATE INDEX idempotency_age ON idempotency_keys (created_at);
${simTradesTable()}`;

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'stores, devices, keys, payments, refunds, idempotency, events, simulator',
    sql: {
      sqlite: BASE + eventsTable('INTEGER PRIMARY KEY AUTOINCREMENT'),
      postgres: BASE + eventsTable('BIGSERIAL PRIMARY KEY'),
    },
  },
  {
    // 0 while a payment's `pending` event is not written yet: create() writes it only when the charge does
    // not decide the payment at once (PaymentsService.ensurePendingEvent). Rows from before are 1.
    version: 2,
    name: 'payments.pending_event',
    sql: 'ALTER TABLE payments ADD COLUMN pending_event INTEGER NOT NULL DEFAULT 1',
  },
  {
    // The sweeper looks only for pending payments that are due. Indexing only those keeps the index small
    // and saves writing an entry for every decided payment (a decision now only removes one).
    version: 3,
    name: 'payments_due holds pending payments only; idempotency_keys pages keep room for updates',
    sql: {
      sqlite: `DROP INDEX payments_due;
CREATE INDEX payments_due ON payments (next_check_at) WHERE status = 'pending'`,
      // PostgreSQL: room left in each page of idempotency_keys, so that completing a key (which changes no
      // indexed column) can be a HOT update, writing no index entries.
      postgres: `DROP INDEX payments_due;
CREATE INDEX payments_due ON payments (next_check_at) WHERE status = 'pending';
ALTER TABLE idempotency_keys SET (fillfactor = 70)`,
    },
  },
  {
    // 1 once someone asked to cancel a pending payment: journaled before the provider is asked to close or
    // reverse the trade, and from then on no answer may decide the payment `succeeded` (the cancel reverses
    // it); only the cancel, or the sweeper finishing it, decides it. See PaymentsService.cancel.
    version: 4,
    name: 'payments.cancel_requested',
    sql: 'ALTER TABLE payments ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0',
  },
  {
    // A store's largest single payment in minor units; NULL = DEFAULT_MAX_PAYMENT_VALUE (stores.service.ts).
    version: 5,
    name: 'stores.max_payment_value',
    sql: 'ALTER TABLE stores ADD COLUMN max_payment_value BIGINT',
  },
  {
    // What happened to a payment that its status alone does not tell, for the admin and support (e.g. a
    // cancel the provider refused, so the charge was kept): see payment-history.ts. Not signed, not pushed.
    version: 6,
    name: 'payment_history',
    sql: {
      sqlite: paymentHistoryTable('INTEGER PRIMARY KEY AUTOINCREMENT'),
      postgres: paymentHistoryTable('BIGSERIAL PRIMARY KEY'),
    },
  },
  {
    // The simulator takes a refund id once, as real providers do (a retried refund pays out nothing more).
    version: 7,
    name: 'sim_refunds',
    sql: simRefundsTable(),
  },
  {
    // Why the provider refused a refund: the 422 a resumed Idempotency-Key answers (PaymentsService.refund).
    version: 8,
    name: 'refunds.failure_message',
    sql: 'ALTER TABLE refunds ADD COLUMN failure_message TEXT',
  },
  {
    // When the sweeper next asks the provider about a refund still pending (its answer was lost, or its
    // request died): set at insert to when the request's hold on its key lapses. Pending refunds from
    // before are due at once. See PaymentsService.resolvePendingRefunds.
    version: 9,
    name: 'refunds.next_check_at',
    sql: `ALTER TABLE refunds ADD COLUMN next_check_at BIGINT;
UPDATE refunds SET next_check_at = 0 WHERE status = 'pending';
CREATE INDEX refunds_due ON refunds (next_check_at) WHERE status = 'pending'`,
  },
  {
    // Real wallets (issue 13). payments.provider: which provider the payment was routed to, written with the
    // payment before the charge goes out, so every later query, cancel and refund goes to the same one
    // (`simulator` for payments from before and for stores without a wallet). store_wallets: a store's
    // wallet account per provider — ids and the paths of the files holding its keys, never a key itself
    // (wallet-accounts.ts).
    version: 10,
    name: 'payments.provider, store_wallets',
    sql: `ALTER TABLE payments ADD COLUMN provider TEXT NOT NULL DEFAULT 'simulator';
CREATE TABLE store_wallets (
  store_id TEXT NOT NULL REFERENCES stores(id),
  provider TEXT NOT NULL,
  config TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (store_id, provider)
)`,
  },
  {
    // An order the register canceled: no new payment is taken for it in its store (a unit's charge still on
    // its way, through a server outage or a lossy LAN, is refused instead of charging a canceled order).
    version: 11,
    name: 'closed_orders',
    sql: `CREATE TABLE closed_orders (
  store_id TEXT NOT NULL REFERENCES stores(id),
  order_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  closed_at TEXT NOT NULL,
  PRIMARY KEY (store_id, order_id)
)`,
  },
];

export interface MigratableDb extends Db {
  exec(sql: string): Promise<void>;
}

const TRACK =
  'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)';

/**
 * Applies what is missing; returns the versions applied now. `upTo` stops after that version (tests of an
 * upgrade from an older schema).
 */
export async function migrate(db: MigratableDb, upTo = Infinity): Promise<number[]> {
  const applied: number[] = [];
  const pending = async (q: Queryable) => {
    const done = new Set(
      (await q.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) =>
        Number(r.version),
      ),
    );
    return MIGRATIONS.filter((m) => !done.has(m.version) && m.version <= upTo);
  };
  const sqlOf = (m: Migration) => (typeof m.sql === 'string' ? m.sql : m.sql[db.kind]);
  if (db.kind === 'postgres') {
    // One transaction holding a transaction-scoped advisory lock: instances starting together queue here.
    await db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock(47812)');
      await q.query(TRACK);
      for (const m of await pending(q)) {
        await q.query(sqlOf(m));
        await q.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
          m.version,
          new Date().toISOString(),
        ]);
        applied.push(m.version);
      }
    });
    return applied;
  }
  await db.exec(TRACK);
  for (const m of await pending(db)) {
    await db.exec(
      `BEGIN;\n${sqlOf(m)};\nINSERT INTO schema_migrations (version, applied_at) VALUES (${m.version}, '${new Date().toISOString()}');\nCOMMIT;`,
    );
    applied.push(m.version);
  }
  return applied;
}
