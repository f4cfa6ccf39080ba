/**
 * The idempotency-key store (Stripe's semantics), for every scope of requests that carry an
 * Idempotency-Key: `payments` (POST /v1/payments) and `refund:<paymentId>` (its refunds). Keys are per store
 * and scope; a key is claimed `running` with the id of the resource its request makes, and completed `done`
 * with the answer (status and body) that every retry then gets again.
 *
 * - same key, same body: the stored answer again (replay);
 * - same key, other body: 422 idempotency_key_reused;
 * - same key while its request still holds it: 409 idempotency_key_in_use;
 * - same key whose request died (its hold, `locked_until`, has lapsed): the retry takes it over (resume)
 *   and finishes the resource the first one started;
 * - done keys are forgotten after their time to live (24 h).
 *
 * The payment path claims and completes its key inside fused statements (payment-repository.ts): the
 * fragments CLAIM_KEY and COMPLETE_KEY are shared for that, with named parameters.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../protocol/canonical-json';
import { ApiError } from './api-error';
import { Db, Queryable, SqlValue } from './storage/db';
import { sql } from './storage/named-sql';

export interface ApiResponse<T> {
  status: number;
  body: T;
  replayed: boolean;
}

/** What a request whose key was taken already does: answer the stored response, or finish the resource. */
export type KeyStart =
  | { kind: 'replay'; status: number; body: unknown }
  | { kind: 'resume'; resourceId: string }
  /** The key is not there: the claim was refused for another reason (a payment for a closed order). */
  | { kind: 'absent' };

/** The parameters of CLAIM_KEY. `key_created_at` and `locked_until` are epoch ms. */
export type ClaimParams = {
  store_id: string;
  scope: string;
  idem_key: string;
  request_hash: string;
  resource_id: string;
  key_created_at: number;
  locked_until: number;
};

/** Claims a key (`running`); no row when it was taken. A fragment: also used inside fused statements. */
export const CLAIM_KEY = `INSERT INTO idempotency_keys (store_id, scope, idem_key, request_hash, state, resource_id, created_at, locked_until)
  VALUES (:store_id, :scope, :idem_key, :request_hash, 'running', :resource_id, :key_created_at, :locked_until) ON CONFLICT DO NOTHING`;

/** The parameters of COMPLETE_KEY. */
export type CompleteParams = {
  store_id: string;
  scope: string;
  idem_key: string;
  response_status: number;
  response_body: string;
};

/** Completes a key with its answer. A fragment: also used inside fused statements. */
export const COMPLETE_KEY = `UPDATE idempotency_keys SET state = 'done', response_status = :response_status, response_body = :response_body
  WHERE store_id = :store_id AND scope = :scope AND idem_key = :idem_key`;

const CLAIM = sql<ClaimParams>(CLAIM_KEY);
const COMPLETE = sql<CompleteParams>(COMPLETE_KEY);

const COMPLETE_RUNNING_OF = sql<{
  store_id: string;
  scope: string;
  resource_id: string;
  response_status: number;
  response_body: string;
}>(`UPDATE idempotency_keys SET state = 'done', response_status = :response_status, response_body = :response_body
  WHERE store_id = :store_id AND scope = :scope AND resource_id = :resource_id AND state = 'running'`);

type KeyParams = { store_id: string; scope: string; idem_key: string };

const READ = sql<KeyParams>(
  `SELECT request_hash, state, resource_id, response_status, response_body, locked_until
     FROM idempotency_keys WHERE store_id = :store_id AND scope = :scope AND idem_key = :idem_key`,
);

const EXISTS = sql<KeyParams>(
  'SELECT 1 AS k FROM idempotency_keys WHERE store_id = :store_id AND scope = :scope AND idem_key = :idem_key',
);

const TAKE_OVER = sql<KeyParams & { locked_until: number }>(
  `UPDATE idempotency_keys SET locked_until = :locked_until
    WHERE store_id = :store_id AND scope = :scope AND idem_key = :idem_key`,
);

const EXPIRE = sql<{ before: number }>(
  "DELETE FROM idempotency_keys WHERE created_at < :before AND state = 'done'",
);

interface KeyRow {
  request_hash: string;
  state: string;
  resource_id: string;
  response_status: number | null;
  response_body: string | null;
  locked_until: number;
}

/**
 * The hash that tells "same request" from "same key, other request": canonical JSON of the body (plain
 * JSON data, as parsed from the request or built by the caller).
 */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

export class IdempotencyKeys {
  constructor(
    private readonly db: Db,
    private readonly timing: { keyLockMs: number; keyTtlMs: number },
  ) {}

  /** The parameters claiming `key` for a request that makes `resourceId`, held until now + keyLockMs. */
  claimParams(
    storeId: string,
    scope: string,
    key: string,
    hash: string,
    resourceId: string,
    now: number,
  ): ClaimParams {
    return {
      store_id: storeId,
      scope,
      idem_key: key,
      request_hash: hash,
      resource_id: resourceId,
      key_created_at: now,
      locked_until: now + this.timing.keyLockMs,
    };
  }

  /** Claims a key inside the caller's transaction; false when it was taken (nothing written). */
  async claim(q: Queryable, params: ClaimParams): Promise<boolean> {
    return (await q.run(CLAIM.text, CLAIM.params(params))).changes === 1;
  }

  async exists(storeId: string, scope: string, key: string): Promise<boolean> {
    const rows = await this.db.query(EXISTS.text, EXISTS.params({ store_id: storeId, scope, idem_key: key }));
    return rows.length > 0;
  }

  /**
   * A key that was taken: the stored answer (replay), or, if its request died, the resource to finish
   * (resume: the key is held again for keyLockMs). Throws 422 for another body, 409 while it is held.
   */
  async existing(
    q: Queryable,
    storeId: string,
    scope: string,
    key: string,
    hash: string,
    now: number,
  ): Promise<KeyStart> {
    const which = { store_id: storeId, scope, idem_key: key };
    const row = (await q.query<KeyRow>(READ.text, READ.params(which)))[0];
    if (!row) return { kind: 'absent' };
    if (row.request_hash !== hash) {
      throw ApiError.unprocessable(
        'idempotency_key_reused',
        'this Idempotency-Key was used with a different request body; use a new key for a new request',
      );
    }
    if (row.state === 'done')
      return { kind: 'replay', status: Number(row.response_status), body: JSON.parse(row.response_body!) };
    if (Number(row.locked_until) > now) {
      throw ApiError.conflict(
        'idempotency_key_in_use',
        'a request with this Idempotency-Key is still being processed; retry in a moment',
      );
    }
    await q.run(TAKE_OVER.text, TAKE_OVER.params({ ...which, locked_until: now + this.timing.keyLockMs }));
    return { kind: 'resume', resourceId: row.resource_id };
  }

  /**
   * Completes a key with its answer (inside `q`'s transaction if given) and returns that answer. `json`:
   * the body's JSON when the caller has it already.
   */
  async complete<T>(
    storeId: string,
    scope: string,
    key: string,
    status: number,
    body: T,
    q: Queryable = this.db,
    json = JSON.stringify(body),
  ): Promise<ApiResponse<T>> {
    await q.run(COMPLETE.text, this.completeParams(storeId, scope, key, status, json));
    return { status, body, replayed: false };
  }

  completeParams(storeId: string, scope: string, key: string, status: number, body: string): SqlValue[] {
    return COMPLETE.params({
      store_id: storeId,
      scope,
      idem_key: key,
      response_status: status,
      response_body: body,
    });
  }

  /**
   * Completes the key still running whose request makes `resourceId`, inside the caller's transaction:
   * the answer of a resource decided by someone other than its request (the sweeper).
   */
  async completeFor(
    q: Queryable,
    storeId: string,
    scope: string,
    resourceId: string,
    status: number,
    body: unknown,
  ): Promise<void> {
    await q.run(
      COMPLETE_RUNNING_OF.text,
      COMPLETE_RUNNING_OF.params({
        store_id: storeId,
        scope,
        resource_id: resourceId,
        response_status: status,
        response_body: JSON.stringify(body),
      }),
    );
  }

  /** The stored answer of a completed key; undefined while it runs (or if there is none). */
  async answer(
    storeId: string,
    scope: string,
    key: string,
  ): Promise<{ status: number; body: unknown } | undefined> {
    const [row] = await this.db.query<KeyRow>(
      READ.text,
      READ.params({ store_id: storeId, scope, idem_key: key }),
    );
    if (!row || row.state !== 'done') return undefined;
    return { status: Number(row.response_status), body: JSON.parse(row.response_body!) };
  }

  /** Forgets completed keys older than their time to live (run by the sweeper). */
  async expire(now: number): Promise<number> {
    return (await this.db.run(EXPIRE.text, EXPIRE.params({ before: now - this.timing.keyTtlMs }))).changes;
  }
}
