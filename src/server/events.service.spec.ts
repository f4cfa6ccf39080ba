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
