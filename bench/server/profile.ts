// Where the time of one payment goes, in this process and with no HTTP: used by run.ts after the load
// test.
//
// 1. The service layer alone: PaymentsService.create (simulator provider, code …00) called directly, one at a
//    time and with as many in flight as the load test has connections, on each engine. This is the
//    ceiling the HTTP server cannot beat, whatever the framework; the database work per payment is counted
//    through a wrapper of the Db.
// 2. Single steps inside create(), each the median of 5 batches, as wall time and as this process's CPU
//    time (they differ where a step waits for the disk: SQLite's fsync at COMMIT).
import 'reflect-metadata';
import { createHash, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson } from '../../src/protocol/canonical-json';
import { SystemClock } from '../../src/protocol/clock';
import { signPaymentResult } from '../../src/protocol/payment-signature';
import { EventsService } from '../../src/server/events.service';
import { ShapePipe } from '../../src/server/http/body-shape';
import { CREATE_PAYMENT_SHAPE } from '../../src/server/http/dto';
import { PaymentsService, type CreatePaymentInput } from '../../src/server/payments.service';
import { openSimulatorLedger, SimulatorProvider } from '../../src/server/providers/simulator.provider';
import { loadServerKeys } from '../../src/server/server-crypto';
import type { Db, DbUrl, Queryable, SqlValue } from '../../src/server/storage/db';
import { openServerDb, type ServerDb } from '../../src/server/storage/open';
import { PostgresDb } from '../../src/server/storage/postgres';
import { StoresService, type Device } from '../../src/server/stores.service';
import { BENCH_PAYMENT_CODE } from './common';

export interface CostRow {
  step: string;
  wallMicros: number;
  cpuMicros: number;
  note?: string;
}

/** Database work of one PaymentsService.create. */
export interface DbWork {
  /** db.tx calls: one COMMIT each. */
  transactions: number;
  /** Statements outside any db.tx: on both engines each is its own (auto-committed) transaction. */
  outsideTransactions: number;
  writesOutside: number;
  statements: number;
}

export interface ServiceRow {
  engine: string;
  /** One create at a time: µs per payment. */
  sequentialMicros: number;
  sequentialCpuMicros: number;
  /** `concurrency` creates in flight for `seconds`. */
  concurrency: number;
  perSecond: number;
  cpuCores: number;
  work: DbWork;
}

export interface ServerProfile {
  service: ServiceRow[];
  rows: CostRow[];
}

/**
 * In-process work on SQLite runs on promises that are already resolved, which would keep the event loop
 * from ever handling a signal or the time limit: let it turn now and then (outside what is timed).
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median over `batches` of µs per op, wall and CPU, after one unmeasured batch. */
async function time(
  n: number,
  fn: (i: number) => unknown,
  batches = 5,
): Promise<{ wall: number; cpu: number }> {
  let i = 0;
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let b = -1; b < batches; b++) {
    await yieldToEventLoop();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < n; k++) await fn(i++);
    const wall = Number(process.hrtime.bigint() - t0) / 1e3 / n;
    const c = process.cpuUsage(c0);
    if (b >= 0) {
      walls.push(wall);
      cpus.push((c.user + c.system) / n);
    }
  }
  return { wall: median(walls), cpu: median(cpus) };
}

function input(i: number): CreatePaymentInput {
  return {
    orderId: `P-${i}`,
    registerId: 'R1',
    amount: { value: 4200, currency: 'EUR' },
    method: { type: 'wallet_code', code: BENCH_PAYMENT_CODE },
  };
}

const isWrite = (sql: string) => !/^\s*SELECT\b/i.test(sql);

/** Counts what goes to the database, inside and outside transactions. */
function counting(db: ServerDb, work: DbWork): Db {
  const inner = (q: Queryable): Queryable => ({
    query: <T>(sql: string, params?: SqlValue[]) => {
      work.statements++;
      return q.query<T>(sql, params);
    },
    run: (sql: string, params?: SqlValue[]) => {
      work.statements++;
      return q.run(sql, params);
    },
  });
  const outside = (sql: string) => {
    work.statements++;
    work.outsideTransactions++;
    if (isWrite(sql)) work.writesOutside++;
  };
  return {
    kind: db.kind,
    where: db.where,
    query: <T>(sql: string, params?: SqlValue[]) => {
      outside(sql);
      return db.query<T>(sql, params);
    },
    run: (sql: string, params?: SqlValue[]) => {
      outside(sql);
      return db.run(sql, params);
    },
    tx: <T>(fn: (q: Queryable) => Promise<T>) => {
      work.transactions++;
      return db.tx((q) => fn(inner(q)));
    },
    close: () => db.close(),
  };
}

/**
 * A PaymentsService wired as createServerApp wires it (the simulator on its own ledger), with a store and a
 * terminal of its own. `work` counts the server database's work only: the ledger is the provider's.
 */
async function paymentsOn(db: ServerDb, ledger: Db, work?: DbWork) {
  const clock = new SystemClock();
  const keys = await loadServerKeys(db);
  const store = await new StoresService(db, clock, keys.publicKey).createStore('profile');
  const used: Db = work ? counting(db, work) : db;
  const provider = new SimulatorProvider({ db: ledger, clock, speed: 1 });
  const events = new EventsService(used, db, keys.privateKey, db.kind);
  const payments = new PaymentsService(used, clock, provider, events);
  const device: Device = {
    storeId: store.id,
    deviceId: 'T1',
    role: 'terminal',
    name: 'profile',
    maxPaymentValue: store.maxPaymentValue,
  };
  return { payments, device, keys };
}

/** create() on one engine: counted once, then one at a time, then `concurrency` in flight. */
async function serviceOn(
  engine: string,
  url: DbUrl,
  concurrency: number,
  seconds: number,
): Promise<ServiceRow> {
  const db = await openServerDb(url);
  const ledger = await openSimulatorLedger(url);
  try {
    const work: DbWork = { transactions: 0, outsideTransactions: 0, writesOutside: 0, statements: 0 };
    const counted = await paymentsOn(db, ledger.db, work);
    await counted.payments.create(counted.device, 'warm', input(0));
    for (const k of Object.keys(work) as (keyof DbWork)[]) work[k] = 0;
    await counted.payments.create(counted.device, 'count', input(1));
    const { payments, device } = await paymentsOn(db, ledger.db);
    const seq = await time(20, (i) => payments.create(device, `s${i}`, input(i)), 3);
    let n = 0;
    const c0 = process.cpuUsage();
    const t0 = Date.now();
    const end = t0 + seconds * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        for (let i = 0; Date.now() < end; i++) {
          await payments.create(device, `c${w}-${i}`, input(i));
          n++;
          if (i % 20 === 19) await yieldToEventLoop();
        }
      }),
    );
    const wall = (Date.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    return {
      engine,
      sequentialMicros: seq.wall,
      sequentialCpuMicros: seq.cpu,
      concurrency,
      perSecond: n / wall,
      cpuCores: (cpu.user + cpu.system) / 1e6 / wall,
      work,
    };
  } finally {
    await ledger.close();
    if (db instanceof PostgresDb) await db.dropSchema().catch(() => undefined);
    await db.close();
  }
}

/**
 * `dir`: an empty scratch directory for SQLite files; `pgUrl`: PostgreSQL with `?schema=` naming a private
 * schema, which is dropped at the end. The caller removes both on an early exit too.
 */
export async function profileServer(opts: {
  dir: string;
  sqlite: boolean;
  pgUrl?: string;
  concurrency: number;
  seconds: number;
}): Promise<ServerProfile> {
  const rows: CostRow[] = [];
  const service: ServiceRow[] = [];
  const add = (step: string, t: { wall: number; cpu: number }, note?: string) =>
    rows.push({ step, wallMicros: t.wall, cpuMicros: t.cpu, ...(note ? { note } : {}) });
  const dir = opts.dir;
  try {
    if (opts.sqlite) {
      service.push(
        await serviceOn(
          'sqlite (file, synchronous=FULL)',
          { kind: 'sqlite', path: path.join(dir, 'service.db') },
          opts.concurrency,
          opts.seconds,
        ),
      );
      service.push(
        await serviceOn(
          'sqlite in memory (no disk: CPU only)',
          { kind: 'sqlite', path: ':memory:' },
          opts.concurrency,
          opts.seconds,
        ),
      );
    }
    if (opts.pgUrl) {
      service.push(
        await serviceOn('postgres', { kind: 'postgres', url: opts.pgUrl }, opts.concurrency, opts.seconds),
      );
    }

    // One commit on this disk: the bare baseline's transaction, through the repo's SqliteDb.
    const file = await openServerDb({ kind: 'sqlite', path: path.join(dir, 'steps.db') });
    const now = Date.now();
    add(
      'SQLite: SqliteDb.tx with one INSERT, synchronous=FULL',
      await time(100, (i) =>
        file.tx((q) =>
          q.run(
            `INSERT INTO idempotency_keys (store_id, scope, idem_key, request_hash, state, created_at, locked_until)
             VALUES ('s', 'profile', $1, '', 'done', $2, $2)`,
            [`c${i}`, now],
          ),
        ),
      ),
      'COMMIT waits for the fsync of the WAL on the event-loop thread',
    );
    const raw = new Database(path.join(dir, 'normal.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)');
    const ins = raw.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    add(
      '  for comparison: the same with synchronous=NORMAL',
      await time(100, (i) => {
        raw.exec('BEGIN IMMEDIATE');
        ins.run(`n${i}`, 'x');
        raw.exec('COMMIT');
      }),
      'not durable at a power cut: reference only',
    );
    raw.close();

    const ledger = await openSimulatorLedger({ kind: 'sqlite', path: path.join(dir, 'steps.db') });
    const m = await paymentsOn(file, ledger.db);
    const payment = (await m.payments.create(m.device, 'sign', input(0))).body;
    add(
      'signPaymentResult, key as base64 text (what EventsService passed before it parsed the key once)',
      await time(200, () => signPaymentResult(payment, m.device.storeId, m.keys.privateKey)),
      'once per payment decided within its request; twice if it stays pending',
    );
    const der = () => ({
      key: Buffer.from(m.keys.privateKey, 'base64'),
      format: 'der' as const,
      type: 'pkcs8' as const,
    });
    add('  of which createPrivateKey (PKCS #8 DER parse)', await time(200, () => createPrivateKey(der())));
    const keyObject = createPrivateKey(der());
    add(
      'signPaymentResult, key as a KeyObject parsed once',
      await time(500, () => signPaymentResult(payment, m.device.storeId, keyObject)),
    );
    add(
      'request hash: canonical JSON + SHA-256',
      await time(2000, (i) =>
        createHash('sha256')
          .update(canonicalJson(JSON.parse(JSON.stringify(input(i)))))
          .digest('hex'),
      ),
    );
    const pipe = new ShapePipe(CREATE_PAYMENT_SHAPE);
    add(
      'ShapePipe on the payment body (replaced the ValidationPipe there)',
      await time(5000, (i) => pipe.transform(input(i))),
    );
    await ledger.close();
    await file.close();
    return { service, rows };
  } finally {
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  }
}
