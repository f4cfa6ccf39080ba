/**
 * A store's events reach a device whose cursor only moves forward: every event, once, in order. On
 * PostgreSQL seq is handed out at insert and transactions commit in any order, so this holds only because
 * record() takes the store's lock before it takes a seq (a transaction-scoped advisory lock). The test
 * holds each transaction open for a random while after recording, so that without the lock later seqs
 * would commit first and a reader would move its cursor past an event still uncommitted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock } from '../protocol/clock';
import { verifyPaymentResult } from '../protocol/payment-signature';
import { Payment } from '../protocol/states';
import { EventsService } from './events.service';
import { loadServerKeys } from './server-crypto';
import { openServerDb, ServerDb } from './storage/open';
import { SqlValue } from './storage/db';
import { PostgresDb } from './storage/postgres';
import { StoresService } from './stores.service';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function payment(i: number): Payment {
  const at = new Date(Date.UTC(2026, 10, 26, 12, 0, 0, i)).toISOString();
  return {
    id: `pay_order${i}`,
    orderId: `O-${i}`,
    registerId: 'R1',
    amount: { value: 100 + i, currency: 'CNY' },
    status: 'succeeded',
    method: { type: 'wallet_code', code: '28**************00' },
    createdAt: at,
    updatedAt: at,
  };
}

describe.each(['sqlite', 'postgres'] as const)('EventsService on %s', (engine) => {
  let db: ServerDb;
  let dir: string | undefined;
  let events: EventsService;
  let publicKey: string;
  let storeId: string;
  let otherStore: string;

  beforeAll(async () => {
    if (engine === 'sqlite') {
      dir = mkdtempSync(join(tmpdir(), 'pc-events-'));
      db = await openServerDb({ kind: 'sqlite', path: join(dir, 'server.db') });
    } else {
      db = await openServerDb({
        kind: 'postgres',
        url: `${PG_URL}?schema=pc_ev_${randomBytes(6).toString('hex')}`,
      });
    }
    const keys = await loadServerKeys(db);
    publicKey = keys.publicKey;
    const stores = new StoresService(db, new SystemClock(), keys.publicKey);
    storeId = (await stores.createStore('Order shop')).id;
    otherStore = (await stores.createStore('Other shop')).id;
    events = new EventsService(db, db, keys.privateKey, db.kind);
  });

  afterAll(async () => {
    if (db instanceof PostgresDb) await db.dropSchema();
    await db.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a reader that only moves its cursor forward gets every event of a store once, in order', async () => {
    const count = 60;
    const seen: number[] = [];
    let writing = true;
    const reader = (async () => {
      let cursor = await events.latestSeq(storeId);
      const start = cursor;
      for (;;) {
        const last = !writing;
        for (const e of await events.since(storeId, cursor)) {
          seen.push(e.seq);
          cursor = e.seq;
        }
        if (last) return start;
        await sleep(1);
      }
    })();
    const written = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        db.tx(async (q) => {
          const seq = await events.record(q, storeId, payment(i));
          // Another store's events never wait for this one's.
          if (i % 10 === 0) await events.record(q, otherStore, payment(1000 + i));
          // Hold the transaction open after taking the seq (PostgreSQL only: a SQLite transaction must not
          // wait, it holds the one connection).
          if (engine === 'postgres') await sleep(Math.floor(Math.random() * 8));
          return seq;
        }),
      ),
    );
    writing = false;
    await reader;
    const mine = [...written].sort((a, b) => a - b);
    expect(seen).toEqual(mine);
  });

  it('frames(): each push frame is the text of the event since() gives, Chinese, emoji and quotes alike', async () => {
    const odd = ['取餐号-零零七', 'A🍜B', 'say "hi" \\ back', '\u0001控制'];
    const first = await events.latestSeq(storeId);
    for (const [i, orderId] of odd.entries())
      await db.tx((q) => events.record(q, storeId, { ...payment(700 + i), orderId }));
    const parsed = await events.since(storeId, first, 100);
    const frames = await events.frames(storeId, first, 100);
    expect(frames.map((f) => f.seq)).toEqual(parsed.map((e) => e.seq));
    expect(frames.map((f) => f.text)).toEqual(parsed.map((e) => JSON.stringify(e)));
    expect(parsed.map((e) => e.payment.orderId)).toEqual(odd);
    // The limit holds, and another store's events never show.
    expect(await events.frames(storeId, first, 2)).toEqual(frames.slice(0, 2));
    expect(
      (await events.frames(otherStore, 0, 10_000)).every((f) => !frames.some((g) => g.seq === f.seq)),
    ).toBe(true);
  });

  it('frames(): readers at one cursor share one read; a fresh read, or one after it ended, sees newer events', async () => {
    // Reads of events are counted, and each one's answer is held back until `release` (the read itself has
    // run by `done`): a read that has taken its snapshot but not answered yet.
    let reads = 0;
    let done: Promise<unknown> = Promise.resolve();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const counted = new EventsService(
      {
        query: <T>(sql: string, params?: SqlValue[]) => {
          if (!sql.startsWith('SELECT seq, body')) return db.query<T>(sql, params);
          reads++;
          const read = db.query<T>(sql, params);
          done = read;
          return gate.then(() => read);
        },
        run: (sql, params) => db.run(sql, params),
      },
      db,
      (await loadServerKeys(db)).privateKey,
      db.kind,
    );
    const cursor = await counted.latestSeq(storeId);
    // Ten devices told of news at once: one read.
    const shared = Array.from({ length: 10 }, () => counted.frames(storeId, cursor, 200));
    expect(reads).toBe(1);
    await done;
    // An event committed after that read ran, before it answered...
    const seq = await db.tx((q) => counted.record(q, storeId, payment(800)));
    // ...is not in it, nor for a device that joins it now; a fresh read, started now, sees it.
    const late = counted.frames(storeId, cursor, 200);
    const fresh = counted.frames(storeId, cursor, 200, true);
    expect(reads).toBe(2);
    release();
    const results = await Promise.all(shared);
    for (const r of results) expect(r).toBe(results[0]);
    expect(results[0].map((f) => f.seq)).not.toContain(seq);
    expect(await late).toBe(results[0]);
    expect((await fresh).map((f) => f.seq)).toContain(seq);
    // Once a read has answered, the next one at the same cursor starts anew and sees the event.
    expect((await counted.frames(storeId, cursor, 200)).map((f) => f.seq)).toContain(seq);
    expect(reads).toBe(3);
  });

  it('stores each event with the server signature of exactly its payment', async () => {
    const p = payment(500);
    const seq = await db.tx((q) => events.record(q, storeId, p));
    const [e] = await events.since(storeId, seq - 1, 1);
    expect(e).toEqual({ type: 'payment.updated', seq, payment: p, signature: expect.any(String) });
    expect(verifyPaymentResult(e.payment, e.signature, publicKey, storeId)).toBe(true);
    expect(
      verifyPaymentResult({ ...p, amount: { value: 1, currency: 'CNY' } }, e.signature, publicKey, storeId),
    ).toBe(false);
  });
});
