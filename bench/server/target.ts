// One server under load in the server benchmark, run as a child process by run.ts, so that autocannon's
// own CPU is not in the server's process. JSON lines on stdin/stdout (test/support/agents/agent-io.ts);
// the target exits when its stdin closes, so it never outlives the orchestrator.
//
//   target.ts nest --db <url> [--stores <n>]
//       The real payment server: createServerApp (NestJS on Fastify, ValidationPipe, guards, the
//       PaymentsService with the simulator provider, signed events, the sweeper), on 127.0.0.1, port 0.
//
//   target.ts bare --db <url> [--stores <n>]
//       The baseline: a bare Fastify app with one route, POST /v1/payments, that does "the same insert"
//       and nothing else: finds the device by the SHA-256 of its bearer token, then inserts an
//       idempotency row, a payment row (already succeeded) and an event row in one transaction through the
//       repo's Db layer (openServerDb, the same engine and schema), and answers 201 with the payment as
//       JSON. No DTO validation, no provider, no signature, no metrics.
//
// Both create --stores stores (default 1) with one terminal each through StoresService and print
// {"event":"ready","port","tokens"}. Commands: usage (CPU µs and GC so far), count (payments by status).
//
// With BENCH_SERVER_CPU_PROFILE=<dir> in the environment the target writes a V8 CPU profile of its whole
// life to <dir>/<kind>-<pid>.cpuprofile when it ends (open it in Chrome DevTools): a diagnostic, off by
// default.
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import { SystemClock } from '../../src/protocol/clock';
import { codeHint } from '../../src/server/payments.service';
import { createServerApp } from '../../src/server/server-app';
import { loadServerKeys, newId, newToken, sha256 } from '../../src/server/server-crypto';
import { parseDbUrl } from '../../src/server/storage/db';
import { openServerDb, ServerDb } from '../../src/server/storage/open';
import { StoresService } from '../../src/server/stores.service';
import { arg, emit, onCommand } from '../../test/support/agents/agent-io';
import type { Kind } from './common';
import { cpuMicros, startCpuProfile, watchGc } from '../support/bench-kit';

const { gc } = watchGc();

/** `count` stores with one terminal each; returns the terminals' bearer tokens. */
async function registerTerminals(stores: StoresService, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const store = await stores.createStore(`Benchmark store ${i + 1}`);
    const { code } = await stores.createRegistrationCode(store.id, 'terminal');
    const reg = await stores.register({ code, deviceId: 'T1', role: 'terminal', name: 'bench terminal' });
    tokens.push(reg.token);
  }
  return tokens;
}

interface Target {
  port: number;
  tokens: string[];
  db: Pick<ServerDb, 'query'>;
  close(): Promise<void>;
}

async function nest(dbText: string, storeCount: number): Promise<Target> {
  const running = await createServerApp({
    port: 0,
    host: '127.0.0.1',
    db: parseDbUrl(dbText),
    adminToken: newToken(),
    logger: false,
  });
  const tokens = await registerTerminals(running.context.stores, storeCount);
  return { port: running.port, tokens, db: running.context.db, close: () => running.close() };
}

interface PaymentBody {
  orderId: string;
  registerId: string;
  amount: { value: number; currency: string };
  method: { type: string; code: string };
}

async function bare(dbText: string, storeCount: number): Promise<Target> {
  const clock = new SystemClock();
  const db = await openServerDb(parseDbUrl(dbText));
  const keys = await loadServerKeys(db);
  const tokens = await registerTerminals(new StoresService(db, clock, keys.publicKey), storeCount);

  const app = Fastify({ bodyLimit: 16 * 1024 });
  app.post('/v1/payments', async (req, reply) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const device = m
      ? (
          await db.query<{ store_id: string; id: string }>(
            'SELECT store_id, id FROM devices WHERE token_hash = $1',
            [sha256(m[1])],
          )
        )[0]
      : undefined;
    if (!device) return reply.code(401).send({ error: { code: 'unauthorized' } });
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string') return reply.code(400).send({ error: { code: 'idempotency_key_required' } });
    const body = req.body as PaymentBody;
    const now = clock.now();
    const iso = new Date(now).toISOString();
    const payment = {
      id: newId('pay'),
      orderId: body.orderId,
      registerId: body.registerId,
      amount: { value: body.amount.value, currency: body.amount.currency },
      status: 'succeeded',
      method: { type: 'wallet_code', code: codeHint(body.method.code) },
      createdAt: iso,
      updatedAt: iso,
    };
    const json = JSON.stringify(payment);
    const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    const created = await db.tx(async (q) => {
      const claimed = await q.run(
        `INSERT INTO idempotency_keys (store_id, scope, idem_key, request_hash, state, resource_id, response_status, response_body, created_at, locked_until)
         VALUES ($1, 'payments', $2, $3, 'done', $4, 201, $5, $6, $6) ON CONFLICT DO NOTHING`,
        [device.store_id, key, hash, payment.id, json, now],
      );
      if (claimed.changes === 0) return false;
      await q.run(
        `INSERT INTO payments (id, store_id, device_id, order_id, register_id, amount_value, currency, status, method_type,
           code_hint, deadline_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'succeeded', 'wallet_code', $8, $9, $10, $10)`,
        [
          payment.id,
          device.store_id,
          device.id,
          payment.orderId,
          payment.registerId,
          payment.amount.value,
          payment.amount.currency,
          payment.method.code,
          now,
          iso,
        ],
      );
      await q.query(
        'INSERT INTO events (store_id, payment_id, body, signature, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING seq',
        [device.store_id, payment.id, json, '', iso],
      );
      return true;
    });
    if (!created) return reply.code(409).send({ error: { code: 'idempotency_key_in_use' } });
    return reply.code(201).send(payment);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    tokens,
    db,
    async close() {
      await app.close();
      await db.close();
    },
  };
}

async function main(): Promise<void> {
  const kind = process.argv[2] as Kind;
  if (kind !== 'nest' && kind !== 'bare') throw new Error(`target.ts nest|bare --db <url>, not ${kind}`);
  const stopProfile = startCpuProfile('BENCH_SERVER_CPU_PROFILE', kind);
  const storeCount = Number(arg('stores', '1'));
  if (!Number.isInteger(storeCount) || storeCount < 1) throw new Error('--stores needs a whole number ≥ 1');
  const target = await (kind === 'nest' ? nest : bare)(arg('db'), storeCount);
  onCommand(
    async (cmd) => {
      switch (cmd.cmd) {
        case 'usage':
          emit({ event: 'usage', micros: cpuMicros(), gc: { ...gc } });
          return;
        case 'count': {
          const rows = await target.db.query<{ status: string; n: number }>(
            'SELECT status, COUNT(*) AS n FROM payments GROUP BY status',
          );
          emit({ event: 'count', byStatus: Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) });
          return;
        }
        default:
          emit({ event: 'error', message: `unknown command ${String(cmd.cmd)}` });
      }
    },
    async () => {
      await stopProfile();
      await target.close().catch(() => undefined);
    },
  );
  emit({ event: 'ready', port: target.port, tokens: target.tokens, pid: process.pid });
}

main().catch((e) => {
  emit({ event: 'fatal', message: (e as Error).stack ?? String(e) });
  process.exit(1);
});
