/**
 * The payments table: every statement the server runs on it for creating and deciding payments, with
 * named parameters (storage/named-sql.ts): a statement's values are built from an object keyed by column
 * or parameter name, and its `$n` placeholders are derived from those names, so adding a column cannot
 * shift another's value into the wrong place.
 *
 * The hot path keeps its shape: on PostgreSQL a new payment's journal (the key claim and the pending row)
 * and a decision at once (the decision, its event and the completed key) are one statement each (one round
 * trip), each a named prepared statement; on SQLite they are a few statements in one transaction of the
 * group commit (storage/sqlite.ts). On PostgreSQL the journals (and the decisions) that arrive while one is
 * in flight go together as the next one, as one statement over many payments (storage/batcher.ts): the
 * single statement's text is written once, as a function of where its values come from (`:name`
 * parameters, or the columns of the batch's rows).
 */
import { Payment, PaymentStatus } from '../protocol/states';
import { ApiError } from './api-error';
import { PG_EVENT_RESULT, pgEventCtes, pgEventsCtes } from './events.service';
import { ClaimParams, COMPLETE_KEY, CompleteParams } from './idempotency-keys';
import { Batcher } from './storage/batcher';
import { Db, Queryable, SqlValue } from './storage/db';
import { NamedSql, sql } from './storage/named-sql';
import { refusedByPostgres } from './storage/postgres';

export interface PaymentRow {
  id: string;
  store_id: string;
  device_id: string;
  order_id: string;
  register_id: string;
  amount_value: number;
  currency: string;
  status: PaymentStatus;
  method_type: string;
  method_brand: string | null;
  code_hint: string | null;
  /** Which provider the payment was routed to (`simulator`, `alipay`, `wechat`): every query, cancel and
   * refund of it goes there. */
  provider: string;
  provider_trade_no: string | null;
  failure_code: string | null;
  failure_message: string | null;
  refunded_value: number;
  reversed: number;
  deadline_at: number;
  next_check_at: number | null;
  checks: number;
  created_at: string;
  updated_at: string;
}

/** A decision about a pending payment. */
export type Change = {
  status: PaymentStatus;
  tradeNo?: string;
  brand?: string;
  failure?: { code: string; message: string };
  reversed?: boolean;
};

export function toPayment(r: PaymentRow): Payment {
  const p: Payment = {
    id: r.id,
    orderId: r.order_id,
    registerId: r.register_id,
    amount: { value: Number(r.amount_value), currency: r.currency },
    status: r.status,
    method: {
      type: r.method_type,
      ...(r.method_brand ? { brand: r.method_brand } : {}),
      ...(r.code_hint ? { code: r.code_hint } : {}),
      // Which provider took the payment (`simulator`, `alipay`, `wechat`): signed with the rest, so the plugin
      // and the shop's reports can tell a real charge from a demo one.
      ...(r.provider ? { provider: r.provider } : {}),
    },
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
  if (r.failure_code) p.failure = { code: r.failure_code, message: r.failure_message ?? '' };
  if (Number(r.refunded_value) > 0) p.refunded = { value: Number(r.refunded_value), currency: r.currency };
  if (Number(r.reversed)) p.reversed = true;
  return p;
}

/** The columns a new payment is inserted with (the rest have their defaults or constants). */
type PendingParams = {
  id: string;
  store_id: string;
  device_id: string;
  order_id: string;
  register_id: string;
  amount_value: number;
  currency: string;
  code_hint: string | null;
  provider: string;
  deadline_at: number;
  next_check_at: number | null;
  created_at: string;
};

/** A new payment, pending, leased to its request until its deadline, its `pending` event not written. */
const PENDING_INTO = `INSERT INTO payments (id, store_id, device_id, order_id, register_id, amount_value, currency,
    status, method_type, code_hint, provider, deadline_at, next_check_at, lease_until, pending_event, created_at, updated_at)`;

/** SQLite: the pending payment, after CLAIM_KEY in the same transaction. */
const INSERT_PENDING = sql<PendingParams>(`${PENDING_INTO}
  VALUES (:id, :store_id, :device_id, :order_id, :register_id, :amount_value, :currency, 'pending', 'wallet_code',
    :code_hint, :provider, :deadline_at, :next_check_at, :deadline_at, 0, :created_at, :created_at)`);

/** Where a statement's values come from: `:name` parameters (one payment), or a batch's rows (`i.name`). */
type Values = (name: string) => string;
const PARAMS: Values = (name) => `:${name}`;
const ROWS: Values = (name) => `i.${name}`;

/**
 * The key claim of a new payment, taken only while its order is open: no row when the key was taken or the
 * register canceled the order (closed_orders). The fragment PG_JOURNAL embeds; on SQLite a statement of its
 * own. The casts keep PostgreSQL from reading the epoch-ms values of a SELECT list as text. `from`: the
 * batch's rows (PG_JOURNAL_MANY).
 */
const claimKeyOpenOrder = (
  v: Values,
  from = '',
) => `INSERT INTO idempotency_keys (store_id, scope, idem_key, request_hash, state, resource_id, created_at, locked_until)
  SELECT ${v('store_id')}, ${v('scope')}, ${v('idem_key')}, ${v('request_hash')}, 'running', ${v('resource_id')}, CAST(${v('key_created_at')} AS BIGINT), CAST(${v('locked_until')} AS BIGINT) ${from}
  WHERE NOT EXISTS (SELECT 1 FROM closed_orders c WHERE c.store_id = ${v('store_id')} AND c.order_id = ${v('order_id')})
  ON CONFLICT DO NOTHING`;
const CLAIM_KEY_OPEN_ORDER = claimKeyOpenOrder(PARAMS);

/** SQLite: the key claim of a new payment (CLAIM_KEY_OPEN_ORDER). */
const CLAIM_KEY_SQLITE = sql<ClaimParams & { order_id: string }>(CLAIM_KEY_OPEN_ORDER);

/** The values PG_JOURNAL inserts the pending payment with, after the key's resource (its id). */
const pendingValues = (
  v: Values,
) => `${v('store_id')}, ${v('device_id')}, ${v('order_id')}, ${v('register_id')},
    CAST(${v('amount_value')} AS BIGINT), ${v('currency')}, 'pending', 'wallet_code', ${v('code_hint')}, ${v('provider')},
    CAST(${v('deadline_at')} AS BIGINT), CAST(${v('next_check_at')} AS BIGINT), CAST(${v('deadline_at')} AS BIGINT), 0,
    ${v('created_at')}, ${v('created_at')}`;

/** The parameters of PG_JOURNAL, and the fields of each row of PG_JOURNAL_MANY. */
type JournalParams = ClaimParams & Omit<PendingParams, 'id'>;

/** PostgreSQL: CLAIM_KEY_OPEN_ORDER and the pending payment as one statement; no row when the key was taken
 * or the order closed. The payment's id is the key's resource, its store the key's store. */
const PG_JOURNAL = sql<JournalParams>(`WITH k AS (${CLAIM_KEY_OPEN_ORDER} RETURNING resource_id)
  ${PENDING_INTO}
  SELECT k.resource_id, ${pendingValues(PARAMS)} FROM k
  RETURNING id`);

/**
 * The rows of a batch of `single` (its many-payments form): `$1` is a JSON array of objects with exactly
 * `single`'s parameters, typed here. A parameter added to `single` and not here fails at load.
 */
function batchRows<P extends Record<string, SqlValue>>(
  single: NamedSql<P>,
  types: Record<keyof P & string, string>,
): string {
  const fields = Object.keys(types);
  if ([...single.names].sort().join() !== [...fields].sort().join())
    throw new Error(`a batch's fields (${fields.join(', ')}) are not its statement's parameters`);
  return `i AS (SELECT * FROM json_to_recordset($1::json) AS i(${fields
    .map((name) => `${name} ${types[name as keyof P & string]}`)
    .join(', ')}))`;
}

/** PostgreSQL: PG_JOURNAL for many payments at once (`$1`: JSON array of PG_JOURNAL's parameters, one
 * object per payment); the ids of the payments journaled. Two claims of one key: the first is taken. */
const PG_JOURNAL_MANY = `WITH ${batchRows(PG_JOURNAL, {
  store_id: 'text',
  scope: 'text',
  idem_key: 'text',
  request_hash: 'text',
  resource_id: 'text',
  key_created_at: 'bigint',
  locked_until: 'bigint',
  device_id: 'text',
  order_id: 'text',
  register_id: 'text',
  amount_value: 'bigint',
  currency: 'text',
  code_hint: 'text',
  provider: 'text',
  deadline_at: 'bigint',
  next_check_at: 'bigint',
  created_at: 'text',
})},
  k AS (${claimKeyOpenOrder(ROWS, 'FROM i')} RETURNING resource_id)
  ${PENDING_INTO}
  SELECT k.resource_id, ${pendingValues(ROWS)} FROM k JOIN i ON i.resource_id = k.resource_id
  RETURNING id`;

/** The values of a decision (DECIDE, DECIDE_AT_ONCE). */
type DecideParams = {
  id: string;
  status: PaymentStatus;
  trade_no: string | null;
  brand: string | null;
  failure_code: string | null;
  failure_message: string | null;
  reversed: number;
  updated_at: string;
};

function decideParams(id: string, change: Change, nowIso: string): DecideParams {
  return {
    id,
    status: change.status,
    trade_no: change.tradeNo ?? null,
    brand: change.brand ?? null,
    failure_code: change.failure?.code ?? null,
    failure_message: change.failure?.message ?? null,
    reversed: change.reversed ? 1 : 0,
    updated_at: nowIso,
  };
}

/** Decides a pending payment (the first decision stands); never `succeeded` once a cancel was asked for. */
const DECIDE = sql<DecideParams>(`UPDATE payments SET status = :status,
    provider_trade_no = COALESCE(:trade_no, provider_trade_no), method_brand = COALESCE(:brand, method_brand),
    failure_code = :failure_code, failure_message = :failure_message, reversed = :reversed,
    next_check_at = NULL, lease_until = NULL, updated_at = :updated_at
  WHERE id = :id AND status = 'pending' AND (cancel_requested = 0 OR :status <> 'succeeded') RETURNING *`);

/** A payment no one has touched since create() journaled it: pending, no event written, no cancel asked. */
const decideAtOnceSql = (v: Values, from = '') => `UPDATE payments SET status = ${v('status')},
    provider_trade_no = ${v('trade_no')}, method_brand = ${v('brand')}, failure_code = ${v('failure_code')},
    failure_message = ${v('failure_message')}, reversed = ${v('reversed')}, next_check_at = NULL, lease_until = NULL,
    updated_at = ${v('updated_at')} ${from}
  WHERE payments.id = ${v('id')} AND payments.status = 'pending' AND payments.pending_event = 0
    AND payments.cancel_requested = 0`;
const DECIDE_AT_ONCE_SQL = decideAtOnceSql(PARAMS);
const DECIDE_AT_ONCE = sql<DecideParams>(DECIDE_AT_ONCE_SQL);

/** The parameters of PG_DECIDE_AT_ONCE, and the fields of each row of PG_DECIDE_AT_ONCE_MANY. */
type DecideAtOnceParams = DecideParams & CompleteParams & { signature: string };

/** PostgreSQL: the decision, its event (lock, insert, NOTIFY) and the completed key as one statement. The
 * event's body is the key's answer (the decided payment). */
const PG_DECIDE_AT_ONCE = sql<DecideAtOnceParams>(
  `WITH p AS (${DECIDE_AT_ONCE_SQL} RETURNING store_id),
    ${pgEventCtes('p', { paymentId: ':id', body: ':response_body', signature: ':signature', at: ':updated_at' })},
    k AS (${COMPLETE_KEY} AND EXISTS (SELECT 1 FROM p))
  SELECT ${PG_EVENT_RESULT} FROM e`,
);

/** PostgreSQL: PG_DECIDE_AT_ONCE for many payments at once (`$1`: JSON array of its parameters, one object
 * per payment); the ids of the payments decided. */
const PG_DECIDE_AT_ONCE_MANY = `WITH ${batchRows(PG_DECIDE_AT_ONCE, {
  id: 'text',
  status: 'text',
  trade_no: 'text',
  brand: 'text',
  failure_code: 'text',
  failure_message: 'text',
  reversed: 'integer',
  updated_at: 'text',
  store_id: 'text',
  scope: 'text',
  idem_key: 'text',
  response_status: 'integer',
  response_body: 'text',
  signature: 'text',
})},
    p AS (${decideAtOnceSql(ROWS, 'FROM i')}
      RETURNING payments.store_id, payments.id AS payment_id, i.response_body AS body, i.signature, i.updated_at AS at,
        i.scope, i.idem_key, i.response_status),
    ${pgEventsCtes('p')},
    k AS (UPDATE idempotency_keys SET state = 'done', response_status = p.response_status, response_body = p.body
      FROM p WHERE idempotency_keys.store_id = p.store_id AND idempotency_keys.scope = p.scope
        AND idempotency_keys.idem_key = p.idem_key)
  SELECT e.payment_id, ${PG_EVENT_RESULT} FROM e`;

const MARK_PENDING_EVENT = sql<{ id: string }>(
  "UPDATE payments SET pending_event = 1 WHERE id = :id AND status = 'pending' AND pending_event = 0 RETURNING *",
);
const SET_TRADE = sql<{ id: string; trade_no: string; brand: string }>(
  'UPDATE payments SET provider_trade_no = :trade_no, method_brand = :brand WHERE id = :id',
);
const RELEASE_LEASE = sql<{ id: string; lease_until: number }>(
  "UPDATE payments SET lease_until = NULL WHERE id = :id AND status = 'pending' AND lease_until = :lease_until",
);
const REQUEST_CANCEL = sql<{ id: string }>(
  "UPDATE payments SET cancel_requested = 1 WHERE id = :id AND status = 'pending'",
);
const CLEAR_CANCEL = sql<{ id: string }>(
  "UPDATE payments SET cancel_requested = 0 WHERE id = :id AND status = 'pending'",
);
const CHECK_AT = sql<{ id: string; next_check_at: number }>(
  "UPDATE payments SET next_check_at = :next_check_at WHERE id = :id AND status = 'pending'",
);
const BY_ID = sql<{ id: string }>('SELECT * FROM payments WHERE id = :id');
const BY_ID_LOCKED = sql<{ id: string }>('SELECT * FROM payments WHERE id = :id FOR UPDATE');
const IN_STORE = sql<{ id: string; store_id: string }>(
  'SELECT * FROM payments WHERE id = :id AND store_id = :store_id',
);
const BY_KEY = sql<{ store_id: string; idem_key: string }>(
  `SELECT p.* FROM idempotency_keys k JOIN payments p ON p.id = k.resource_id
    WHERE k.store_id = :store_id AND k.scope = 'payments' AND k.idem_key = :idem_key AND p.store_id = :store_id`,
);
const BY_ORDER = sql<{ store_id: string; order_id: string }>(
  'SELECT * FROM payments WHERE store_id = :store_id AND order_id = :order_id ORDER BY created_at',
);
const CLOSE_ORDER = sql<{ store_id: string; order_id: string; device_id: string; closed_at: string }>(
  `INSERT INTO closed_orders (store_id, order_id, device_id, closed_at)
   VALUES (:store_id, :order_id, :device_id, :closed_at) ON CONFLICT DO NOTHING`,
);
const CLOSED_AT = sql<{ store_id: string; order_id: string }>(
  'SELECT closed_at FROM closed_orders WHERE store_id = :store_id AND order_id = :order_id',
);
const ADD_REFUNDED = sql<{ id: string; value: number; updated_at: string }>(
  `UPDATE payments SET refunded_value = refunded_value + :value,
     status = CASE WHEN refunded_value + :value >= amount_value THEN 'refunded' ELSE status END, updated_at = :updated_at
   WHERE id = :id RETURNING *`,
);

export class PaymentRepository {
  /** PostgreSQL: journals and decisions at once that arrive while one is in flight go as one statement. */
  private readonly journals: Batcher<JournalParams, boolean>;
  private readonly decisions: Batcher<DecideAtOnceParams, boolean>;

  constructor(private readonly db: Db) {
    this.journals = new Batcher(
      async (j) => (await db.query(PG_JOURNAL.text, PG_JOURNAL.params(j))).length === 1,
      (js) => this.many(PG_JOURNAL_MANY, js, 'id', (j) => j.resource_id),
      refusedByPostgres,
    );
    this.decisions = new Batcher(
      async (d) => (await db.query(PG_DECIDE_AT_ONCE.text, PG_DECIDE_AT_ONCE.params(d))).length > 0,
      (ds) => this.many(PG_DECIDE_AT_ONCE_MANY, ds, 'payment_id', (d) => d.id),
      refusedByPostgres,
    );
  }

  /** How the PostgreSQL batches went so far (tests and diagnostics). */
  get batching(): {
    journals: Batcher<unknown, unknown>['stats'];
    decisions: Batcher<unknown, unknown>['stats'];
  } {
    return { journals: this.journals.stats, decisions: this.decisions.stats };
  }

  /** One statement over a batch's rows (`$1`, JSON); for each row whether its payment came back. */
  private async many<T>(
    text: string,
    rows: T[],
    column: string,
    idOf: (row: T) => string,
  ): Promise<boolean[]> {
    const back = new Set(
      (await this.db.query<Record<string, string>>(text, [JSON.stringify(rows)])).map((r) => r[column]),
    );
    return rows.map((r) => back.has(idOf(r)));
  }

  /**
   * The journal of a new payment: claims its Idempotency-Key (whose resource is the payment) and inserts
   * the payment, pending, in one commit. False if the key was taken (nothing is written). On PostgreSQL one
   * statement (one round trip, committed on its own); on SQLite two in one transaction of the group commit.
   */
  async journalNew(row: PaymentRow, claim: ClaimParams): Promise<boolean> {
    const payment = {
      store_id: row.store_id,
      device_id: row.device_id,
      order_id: row.order_id,
      register_id: row.register_id,
      amount_value: row.amount_value,
      currency: row.currency,
      code_hint: row.code_hint,
      provider: row.provider,
      deadline_at: row.deadline_at,
      next_check_at: row.next_check_at,
      created_at: row.created_at,
    };
    if (claim.resource_id !== row.id || claim.store_id !== row.store_id) {
      throw new Error(`the key of payment ${row.id} must name it and its store`);
    }
    if (this.db.kind === 'postgres') return this.journals.run({ ...claim, ...payment });
    return this.db.tx(async (q) => {
      const open = { ...claim, order_id: row.order_id };
      if ((await q.run(CLAIM_KEY_SQLITE.text, CLAIM_KEY_SQLITE.params(open))).changes === 0) return false;
      await q.run(INSERT_PENDING.text, INSERT_PENDING.params({ ...payment, id: row.id }));
      return true;
    });
  }

  /** Decides a pending payment inside the caller's transaction; the decided row, or undefined. */
  async decide(q: Queryable, id: string, change: Change, nowIso: string): Promise<PaymentRow | undefined> {
    return (await q.query<PaymentRow>(DECIDE.text, DECIDE.params(decideParams(id, change, nowIso))))[0];
  }

  /** SQLite: decides a payment no one has touched since its journal, inside the caller's transaction. */
  async decideAtOnce(q: Queryable, id: string, change: Change, nowIso: string): Promise<boolean> {
    const r = await q.run(DECIDE_AT_ONCE.text, DECIDE_AT_ONCE.params(decideParams(id, change, nowIso)));
    return r.changes === 1;
  }

  /**
   * PostgreSQL: decides a payment no one has touched since its journal, records its event (the key's
   * answer `key.response_body` is the event's body) and completes its key, in one statement. True if
   * decided.
   */
  async decideAtOncePg(
    id: string,
    change: Change,
    nowIso: string,
    key: CompleteParams,
    signature: string,
  ): Promise<boolean> {
    return this.decisions.run({ ...decideParams(id, change, nowIso), ...key, signature });
  }

  /** Marks the `pending` event of a pending payment as written (once); the row if this call did. */
  async markPendingEvent(q: Queryable, id: string): Promise<PaymentRow | undefined> {
    return (await q.query<PaymentRow>(MARK_PENDING_EVENT.text, MARK_PENDING_EVENT.params({ id })))[0];
  }

  async setTrade(q: Queryable, id: string, tradeNo: string, brand: string): Promise<void> {
    await q.run(SET_TRADE.text, SET_TRADE.params({ id, trade_no: tradeNo, brand }));
  }

  /** Ends the lease create() held while its charge was in flight (if it still holds it). */
  async releaseLease(id: string, leaseUntil: number): Promise<void> {
    await this.db.run(RELEASE_LEASE.text, RELEASE_LEASE.params({ id, lease_until: leaseUntil }));
  }

  /** Journals a cancel of a pending payment; false if it is not pending. */
  async requestCancel(id: string): Promise<boolean> {
    return (await this.db.run(REQUEST_CANCEL.text, REQUEST_CANCEL.params({ id }))).changes === 1;
  }

  async clearCancelRequest(q: Queryable, id: string): Promise<void> {
    await q.run(CLEAR_CANCEL.text, CLEAR_CANCEL.params({ id }));
  }

  /** When the sweeper next checks a pending payment. */
  async checkAt(id: string, at: number): Promise<void> {
    await this.db.run(CHECK_AT.text, CHECK_AT.params({ id, next_check_at: at }));
  }

  async row(id: string, q: Queryable = this.db): Promise<PaymentRow | undefined> {
    return (await q.query<PaymentRow>(BY_ID.text, BY_ID.params({ id })))[0];
  }

  /** The payment's row inside the caller's transaction, locked against other writers (PostgreSQL). */
  async lockedRow(q: Queryable, id: string): Promise<PaymentRow | undefined> {
    const s = this.db.kind === 'postgres' ? BY_ID_LOCKED : BY_ID;
    return (await q.query<PaymentRow>(s.text, s.params({ id })))[0];
  }

  async load(id: string): Promise<Payment> {
    const row = await this.row(id);
    if (!row) throw ApiError.notFound(`payment ${id}`);
    return toPayment(row);
  }

  /** A payment of this store; another store's is simply not found (undefined). */
  async inStore(storeId: string, id: string): Promise<PaymentRow | undefined> {
    return (await this.db.query<PaymentRow>(IN_STORE.text, IN_STORE.params({ id, store_id: storeId })))[0];
  }

  /** The payment a create request with this Idempotency-Key made, if any. */
  async byIdempotencyKey(storeId: string, key: string): Promise<PaymentRow[]> {
    return this.db.query<PaymentRow>(BY_KEY.text, BY_KEY.params({ store_id: storeId, idem_key: key }));
  }

  async byOrder(storeId: string, orderId: string): Promise<PaymentRow[]> {
    return this.db.query<PaymentRow>(
      BY_ORDER.text,
      BY_ORDER.params({ store_id: storeId, order_id: orderId }),
    );
  }

  /**
   * Closes an order to new payments (the register canceled it) and returns when it was closed (the first
   * close's time) and its payments as they stand. Atomic against a payment being journaled for it at the
   * same moment: either that payment's journal saw the close and was refused (journalNew: the claim is
   * taken only while the order is open), or the payment is in the list. SQLite: one transaction of the
   * single writer. PostgreSQL: the transaction first takes a lock on payments that waits for every
   * transaction writing payments to end and holds off new ones until this commit, so a journal statement
   * running now either committed before the list is read or starts (and reads closed_orders) after the
   * close is committed. Closes are rare (a register's cancel); the lock lasts one short transaction.
   */
  async closeOrder(
    storeId: string,
    orderId: string,
    deviceId: string,
    nowIso: string,
  ): Promise<{ closedAt: string; rows: PaymentRow[] }> {
    const which = { store_id: storeId, order_id: orderId };
    return this.db.tx(async (q) => {
      if (this.db.kind === 'postgres') await q.query('LOCK TABLE payments IN SHARE ROW EXCLUSIVE MODE');
      await q.run(CLOSE_ORDER.text, CLOSE_ORDER.params({ ...which, device_id: deviceId, closed_at: nowIso }));
      const [closed] = await q.query<{ closed_at: string }>(CLOSED_AT.text, CLOSED_AT.params(which));
      const rows = await q.query<PaymentRow>(BY_ORDER.text, BY_ORDER.params(which));
      return { closedAt: closed.closed_at, rows };
    });
  }

  /** When the register canceled this order (closeOrder), if it did. */
  async closedAt(storeId: string, orderId: string): Promise<string | undefined> {
    const [row] = await this.db.query<{ closed_at: string }>(
      CLOSED_AT.text,
      CLOSED_AT.params({ store_id: storeId, order_id: orderId }),
    );
    return row?.closed_at;
  }

  /** Adds a refund paid out to its payment (refunded once all is refunded), in the caller's transaction. */
  async addRefunded(q: Queryable, id: string, value: number, nowIso: string): Promise<PaymentRow> {
    return (
      await q.query<PaymentRow>(ADD_REFUNDED.text, ADD_REFUNDED.params({ id, value, updated_at: nowIso }))
    )[0];
  }
}
