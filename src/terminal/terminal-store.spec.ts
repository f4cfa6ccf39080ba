import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite, SqliteDatabase } from '../device/sqlite-driver';
import { openDeviceDatabase, saveRegistration } from '../device/device-files';
import { Payment } from '../protocol/states';
import {
  DeviceCredentials,
  PaymentAttempt,
  LATEST_ATTEMPTS_KEPT,
  TERMINAL_STORE_MIGRATIONS,
  TerminalStore,
  attemptIdempotencyKey,
} from './terminal-store';
import { expectNewerJournalRefused } from '../../test/support/newer-journal';
import { fullScans, recordStatements } from '../../test/support/query-plans';

const PLUGIN = { to: 'P1', address: '192.168.1.20', port: 47811 };
const T0 = 1740816000000; // 2025-03-01T08:00:00Z

const SUCCEEDED: Payment = {
  id: 'pay_01HQ7Z',
  orderId: 'A-7',
  registerId: 'R1',
  amount: { value: 1250, currency: 'CNY' },
  status: 'succeeded',
  method: { type: 'wallet_code', brand: 'alipay' },
  createdAt: '2025-03-01T08:00:05.000Z',
  updatedAt: '2025-03-01T08:00:07.000Z',
};
const FAILED: Payment = {
  id: 'pay_01HQ80',
  orderId: '订单-0001',
  registerId: 'R1',
  amount: { value: 123450, currency: 'CNY' },
  status: 'failed',
  method: { type: 'wallet_code', brand: 'wechat' },
  failure: { code: 'code_expired', message: 'the payment code has expired' },
  createdAt: '2025-03-01T08:10:05.000Z',
  updatedAt: '2025-03-01T08:10:06.000Z',
};
const SIGNATURE = 'k2rV3f0yq8cC3Yg0mR8lq6c1oT1oO1aZ9n4nG7p3xJ1m0Q2cE5mRkJvQ9nq7o5bS2B9bHn7qXw2fQ4n0c8yqAw';
const CREDENTIALS: DeviceCredentials = {
  deviceId: 'T1',
  storeId: 'sto_demo',
  token: 'dev_9f8e7d6c5b4a',
  serverUrl: 'https://pay.example.cn',
  serverPublicKey: 'MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=',
  name: 'Till 1',
};
const KEY_V1 = { id: 7, version: 1, key: 'q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=' };
const KEY_V2 = { id: 7, version: 2, key: 'ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=' };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-terminal-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function begin(store: TerminalStore, orderId: string, now: number, registerId = 'R1'): PaymentAttempt {
  return store.beginAttempt({
    orderId,
    registerId,
    plugin: PLUGIN,
    amountValue: 1250,
    currency: 'CNY',
    storeId: 'sto_demo',
    now,
  });
}

describe('TerminalStore', () => {
  let store: TerminalStore;
  beforeEach(() => {
    store = new TerminalStore(dir);
  });
  afterEach(() => store.close());

  it('numbers attempts per order, journaling each as paying before anything is sent', () => {
    expect(begin(store, 'A-7', T0)).toEqual({
      orderId: 'A-7',
      attempt: 1,
      registerId: 'R1',
      plugin: PLUGIN,
      amountValue: 1250,
      currency: 'CNY',
      idempotencyKey: attemptIdempotencyKey('sto_demo', 'R1', 'A-7', 1),
      paymentId: null,
      status: 'paying',
      payment: null,
      signature: null,
      relayed: false,
      createdAt: T0,
      updatedAt: T0,
    });
    expect(begin(store, 'A-7', T0 + 1).attempt).toBe(2);
    expect(begin(store, '订单-0001', T0 + 2).attempt).toBe(1);
    expect(begin(store, 'A-7', T0 + 3).attempt).toBe(3);
  });

  it('keeps each attempt’s idempotency key, the same after a restart, so a retry is the same request', () => {
    const first = begin(store, '订单-0001', T0);
    const second = begin(store, '订单-0001', T0 + 1);
    expect(first.idempotencyKey).toBe('pc1-I4P9ZJrskTPqysszDvGyVtYEIrIjilAmvMkWsrbzWU4-1');
    expect(second.idempotencyKey).toBe('pc1-I4P9ZJrskTPqysszDvGyVtYEIrIjilAmvMkWsrbzWU4-2');
    store.close();
    store = new TerminalStore(dir);
    expect(store.attempt('订单-0001', 1)?.idempotencyKey).toBe(first.idempotencyKey);
    expect(store.latest('订单-0001')?.idempotencyKey).toBe(second.idempotencyKey);
  });

  it('updates only what changed and ignores an attempt it does not hold', () => {
    begin(store, 'A-7', T0);
    store.update('A-7', 1, { paymentId: 'pay_01HQ7Z', status: 'pending' }, T0 + 10);
    store.update('A-7', 1, { status: 'succeeded', payment: SUCCEEDED, signature: SIGNATURE }, T0 + 20);
    expect(store.attempt('A-7', 1)).toMatchObject({
      paymentId: 'pay_01HQ7Z',
      status: 'succeeded',
      payment: SUCCEEDED,
      signature: SIGNATURE,
      relayed: false,
      createdAt: T0,
      updatedAt: T0 + 20,
    });
    store.update('A-7', 1, { relayed: true }, T0 + 30);
    expect(store.attempt('A-7', 1)).toMatchObject({
      payment: SUCCEEDED,
      signature: SIGNATURE,
      relayed: true,
    });

    store.update('A-7', 2, { status: 'failed' }, T0 + 40);
    store.update('nope', 1, { status: 'failed' }, T0 + 40);
    expect(store.attempt('A-7', 2)).toBeUndefined();
    expect(store.since(0)).toHaveLength(1);
  });

  it('answers latest, unfinished, unrelayed and since from the journal', () => {
    begin(store, 'A-7', T0); // succeeded, not yet relayed
    begin(store, 'B-8', T0 + 1, 'R2'); // pending at the server
    begin(store, '订单-0001', T0 + 2); // failed and relayed, then retried
    begin(store, '订单-0001', T0 + 3); // paying
    store.update(
      'A-7',
      1,
      { paymentId: 'pay_01HQ7Z', status: 'succeeded', payment: SUCCEEDED, signature: SIGNATURE },
      T0 + 9,
    );
    store.update('B-8', 1, { paymentId: 'pay_01HQ81', status: 'pending' }, T0 + 9);
    store.update(
      '订单-0001',
      1,
      { paymentId: 'pay_01HQ80', status: 'failed', payment: FAILED, signature: SIGNATURE, relayed: true },
      T0 + 9,
    );

    expect(store.latest('订单-0001')).toMatchObject({ attempt: 2, status: 'paying' });
    expect(store.latest('Z-0')).toBeUndefined();
    const key = (a: PaymentAttempt) => `${a.orderId}#${a.attempt}`;
    expect(store.unfinished().map(key)).toEqual(['B-8#1', '订单-0001#2']);
    expect(store.unrelayed().map(key)).toEqual(['A-7#1']);
    expect(store.since(T0 + 1).map(key)).toEqual(['订单-0001#2', '订单-0001#1', 'B-8#1']);
    expect(store.since(T0 + 4)).toEqual([]);
  });

  it('answers latest from memory as the journal holds it: after each write, after a retry, and for an order never paid', () => {
    expect(store.latest('A-7')).toBeUndefined(); // asked before its first attempt: the answer must not stick
    begin(store, 'A-7', T0);
    expect(store.latest('A-7')).toMatchObject({ attempt: 1, status: 'paying', paymentId: null });
    store.update('A-7', 1, { paymentId: 'pay_01HQ7Z', status: 'pending' }, T0 + 1);
    expect(store.latest('A-7')).toMatchObject({ attempt: 1, status: 'pending', paymentId: 'pay_01HQ7Z' });
    store.update('A-7', 1, { status: 'failed', payment: FAILED, signature: SIGNATURE }, T0 + 2);
    begin(store, 'A-7', T0 + 3);
    expect(store.latest('A-7')).toMatchObject({ attempt: 2, status: 'paying' });
    // What a caller does to its answer is its own: the next answer is the journal's.
    const a = store.latest('A-7')!;
    a.status = 'succeeded';
    a.plugin.port = 1;
    expect(store.latest('A-7')).toMatchObject({ status: 'paying', plugin: PLUGIN });
    // More orders than are kept in memory: each still reads as the journal holds it, and a reopened store
    // (nothing in memory) answers the same.
    for (let i = 0; i < LATEST_ATTEMPTS_KEPT + 50; i++) begin(store, `B-${i}`, T0 + 10 + i);
    for (let i = 0; i < LATEST_ATTEMPTS_KEPT + 50; i++) store.latest(`B-${i}`);
    store.update('B-0', 1, { status: 'canceled' }, T0 + 9999);
    expect(store.latest('B-0')).toMatchObject({ attempt: 1, status: 'canceled' });
    expect(store.latest(`B-${LATEST_ATTEMPTS_KEPT + 49}`)).toMatchObject({ attempt: 1, status: 'paying' });
    const before = store.latest('A-7');
    store.close();
    store = new TerminalStore(dir);
    expect(store.latest('A-7')).toEqual(before);
    expect(store.latest('B-0')).toMatchObject({ status: 'canceled' });
  });

  it("reads no table whole for a day's work: what a restart resumes, what the plugin still has to hear, today's history", () => {
    const db = (store as unknown as { db: SqliteDatabase }).db;
    const ran = recordStatements(db);
    begin(store, 'A-7', T0);
    store.update(
      'A-7',
      1,
      { paymentId: 'pay_01HQ7Z', status: 'succeeded', payment: SUCCEEDED, signature: SIGNATURE },
      T0 + 1,
    );
    store.update('A-7', 1, { relayed: true }, T0 + 2);
    begin(store, '订单-0001', T0 + 3);
    store.latest('订单-0001');
    store.attempt('A-7', 1);
    store.unfinished();
    store.unrelayed();
    store.since(T0);
    expect(ran.size).toBeGreaterThan(6);
    expect(fullScans(db, ran, ['attempts'])).toEqual([]);
  });

  it('keeps small facts in its meta table across a restart', () => {
    expect(store.meta('event_cursor')).toBeUndefined();
    store.setMeta('event_cursor', '17');
    store.setMeta('event_cursor', '18');
    store.close();
    store = new TerminalStore(dir);
    expect(store.meta('event_cursor')).toBe('18');
  });

  it('saves the registration and LAN keys and reads them back; a rotation replaces the keys', () => {
    expect(store.credentials()).toBeUndefined();
    store.saveCredentials(CREDENTIALS, [KEY_V1]);
    expect(store.credentials()).toEqual(CREDENTIALS);
    expect(store.lanKeys()).toEqual([KEY_V1]);
    store.saveLanKeys([KEY_V2, KEY_V1]);
    expect(store.lanKeys()).toEqual([KEY_V2, KEY_V1]);
    expect(JSON.parse(readFileSync(join(dir, 'lan-key.json'), 'utf8'))).toEqual(KEY_V2);
    store.close();
    store = new TerminalStore(dir);
    expect(store.credentials()).toEqual(CREDENTIALS);
  });

  (process.platform === 'win32' ? it.skip : it)(
    'keeps the journal, its -wal and -shm, and the key files readable by their owner only',
    () => {
      begin(store, 'A-7', T0); // a write, so the -wal and -shm files exist
      store.saveCredentials(CREDENTIALS, [KEY_V1]);
      const mode = (f: string) => (statSync(join(dir, f)).mode & 0o777).toString(8);
      expect(mode('.')).toBe('700');
      for (const f of ['terminal.db', 'terminal.db-wal', 'terminal.db-shm']) {
        expect(existsSync(join(dir, f))).toBe(true);
        expect({ f, mode: mode(f) }).toEqual({ f, mode: '600' });
      }
      for (const f of ['device.json', 'lan-key.json', 'lan-keys.json'])
        expect({ f, mode: mode(f) }).toEqual({ f, mode: '600' });
    },
  );
});

/**
 * The journal's schema as the unit created it before versioned migrations (terminal-store.ts and
 * meta-table.ts at commit 10cc474), run on every start. Frozen here on purpose: it is what journals on
 * units in shops hold today, whatever the code says later.
 */
const TODAYS_SCHEMA = `
      CREATE TABLE IF NOT EXISTS attempts (
        order_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        register_id TEXT NOT NULL,
        plugin TEXT NOT NULL,
        amount_value INTEGER NOT NULL,
        currency TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        payment_id TEXT,
        status TEXT NOT NULL,
        payment TEXT,
        signature TEXT,
        relayed INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (order_id, attempt)
      );
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);`;

/** A terminal.db (and registration) as today's unit leaves it, mid-shift, with the rows its work produces. */
function createTodaysJournal(): void {
  const db = openDeviceDatabase(dir, 'terminal.db');
  db.exec(TODAYS_SCHEMA);
  const insert = db.prepare(
    `INSERT INTO attempts (order_id, attempt, register_id, plugin, amount_value, currency, idempotency_key,
       payment_id, status, payment, signature, relayed, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const plugin = JSON.stringify(PLUGIN);
  // Declined, relayed to the plugin; then a second attempt the unit was killed in the middle of.
  insert.run(
    '订单-0001',
    1,
    'R1',
    plugin,
    123450,
    'CNY',
    'pc1-I4P9ZJrskTPqysszDvGyVtYEIrIjilAmvMkWsrbzWU4-1',
    'pay_01HQ80',
    'failed',
    JSON.stringify(FAILED),
    SIGNATURE,
    1,
    T0,
    T0 + 6000,
  );
  insert.run(
    '订单-0001',
    2,
    'R1',
    plugin,
    123450,
    'CNY',
    'pc1-I4P9ZJrskTPqysszDvGyVtYEIrIjilAmvMkWsrbzWU4-2',
    null,
    'paying',
    null,
    null,
    0,
    T0 + 60000,
    T0 + 60000,
  );
  // Paid; the plugin has not acknowledged the signed result yet.
  insert.run(
    'A-7',
    1,
    'R1',
    plugin,
    1250,
    'CNY',
    'pc1-fCq-oxIAIyfuIk-csbYl_nkQDFv1AliP6OW9XVwkh1c-1',
    'pay_01HQ7Z',
    'succeeded',
    JSON.stringify(SUCCEEDED),
    SIGNATURE,
    0,
    T0 + 120000,
    T0 + 127000,
  );
  // Pending at the server: a restart must ask about it.
  insert.run(
    'B-8',
    1,
    'R2',
    plugin,
    99,
    'CNY',
    'pc1-UXN5HhBD3xz-gUtN4mMgndPyeLnQgbH28Xz5HIc5ZCM-1',
    'pay_01HQ81',
    'pending',
    null,
    null,
    0,
    T0 + 180000,
    T0 + 181000,
  );
  db.prepare('INSERT INTO meta (name, value) VALUES (?, ?)').run('event_cursor', '4711');
  db.close();
  saveRegistration(dir, CREDENTIALS, [KEY_V2, KEY_V1]);
}

function schemaMigrations(): { version: number; name: string }[] {
  const db = openSqlite(join(dir, 'terminal.db'), { readonly: true });
  try {
    return db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as {
      version: number;
      name: string;
    }[];
  } finally {
    db.close();
  }
}

const LATEST = TERMINAL_STORE_MIGRATIONS.map((m) => m.version);

describe('TerminalStore migrations', () => {
  it("upgrades today's journal in place: every attempt, its key and the work a restart resumes read back", () => {
    createTodaysJournal();
    const store = new TerminalStore(dir);
    try {
      expect(store.attempt('订单-0001', 1)).toEqual({
        orderId: '订单-0001',
        attempt: 1,
        registerId: 'R1',
        plugin: PLUGIN,
        amountValue: 123450,
        currency: 'CNY',
        idempotencyKey: 'pc1-I4P9ZJrskTPqysszDvGyVtYEIrIjilAmvMkWsrbzWU4-1',
        paymentId: 'pay_01HQ80',
        status: 'failed',
        payment: FAILED,
        signature: SIGNATURE,
        relayed: true,
        createdAt: T0,
        updatedAt: T0 + 6000,
      });
      expect(store.attempt('A-7', 1)).toEqual({
        orderId: 'A-7',
        attempt: 1,
        registerId: 'R1',
        plugin: PLUGIN,
        amountValue: 1250,
        currency: 'CNY',
        idempotencyKey: 'pc1-fCq-oxIAIyfuIk-csbYl_nkQDFv1AliP6OW9XVwkh1c-1',
        paymentId: 'pay_01HQ7Z',
        status: 'succeeded',
        payment: SUCCEEDED,
        signature: SIGNATURE,
        relayed: false,
        createdAt: T0 + 120000,
        updatedAt: T0 + 127000,
      });
      // The attempt interrupted mid-payment is retried with the key it was first sent with.
      expect(store.latest('订单-0001')).toMatchObject({
        attempt: 2,
        status: 'paying',
        paymentId: null,
        idempotencyKey: attemptIdempotencyKey('sto_demo', 'R1', '订单-0001', 2),
      });
      const key = (a: PaymentAttempt) => `${a.orderId}#${a.attempt}`;
      expect(store.unfinished().map(key)).toEqual(['订单-0001#2', 'B-8#1']);
      expect(store.unfinished()[1]).toMatchObject({
        registerId: 'R2',
        amountValue: 99,
        paymentId: 'pay_01HQ81',
      });
      expect(store.unrelayed().map(key)).toEqual(['A-7#1']);
      expect(store.since(T0).map(key)).toEqual(['B-8#1', 'A-7#1', '订单-0001#2', '订单-0001#1']);
      expect(store.meta('event_cursor')).toBe('4711');
      expect(store.credentials()).toEqual(CREDENTIALS);
      expect(store.lanKeys()).toEqual([KEY_V2, KEY_V1]);
      // Numbering carries on after the old rows.
      expect(begin(store, '订单-0001', T0 + 240000).attempt).toBe(3);
    } finally {
      store.close();
    }
    expect(schemaMigrations()).toEqual([
      { version: 1, name: 'attempts, meta (found in place: created before versioned migrations)' },
      ...TERMINAL_STORE_MIGRATIONS.slice(1).map((m) => ({ version: m.version, name: m.name })),
    ]);
  });

  it('gives a new journal every migration, and opening it again changes nothing', () => {
    const first = new TerminalStore(dir);
    begin(first, 'A-7', T0);
    first.close();
    const recorded = schemaMigrations();
    expect(recorded.map((r) => r.version)).toEqual(LATEST);
    const again = new TerminalStore(dir);
    try {
      expect(again.latest('A-7')).toMatchObject({ attempt: 1, status: 'paying' });
    } finally {
      again.close();
    }
    expect(schemaMigrations()).toEqual(recorded);
  });

  it('refuses a journal written by a newer payconnect, naming the file and both versions, and leaves it as it was', () => {
    createTodaysJournal();
    new TerminalStore(dir).close();
    expectNewerJournalRefused({
      file: join(dir, 'terminal.db'),
      open: () => {
        const j = new TerminalStore(dir);
        return { close: () => j.close() };
      },
      latest: LATEST.length,
    });
  });
});
