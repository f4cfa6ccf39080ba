import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite, SqliteDatabase } from '../device/sqlite-driver';
import { openDeviceDatabase } from '../device/device-files';
import { Payment } from '../protocol/states';
import { EVENT_CURSOR_KEY } from '../device/event-cursor';
import { OrderRecord, PLUGIN_JOURNAL_MIGRATIONS, PluginJournal, receiptJobId } from './plugin-journal';
import { expectNewerJournalRefused } from '../../test/support/newer-journal';
import { fullScans, recordStatements } from '../../test/support/query-plans';
import { walCommits } from '../../test/support/wal-commits';

/**
 * The journal's schema as the plugin created it before versioned migrations (plugin-journal.ts and
 * meta-table.ts at commit 10cc474), run on every start. Frozen here on purpose: it is what journals in
 * shops hold today, whatever the code says later.
 */
const TODAYS_SCHEMA = `
      CREATE TABLE IF NOT EXISTS orders (
        order_id TEXT PRIMARY KEY,
        register_id TEXT NOT NULL,
        amount_value INTEGER NOT NULL,
        currency TEXT NOT NULL,
        items TEXT,
        source TEXT NOT NULL,
        adapter TEXT NOT NULL,
        dispatch TEXT NOT NULL,
        status TEXT NOT NULL,
        terminal TEXT,
        claim_closed INTEGER NOT NULL DEFAULT 0,
        progress TEXT,
        payment TEXT,
        signature TEXT,
        result_via TEXT,
        write_back TEXT NOT NULL DEFAULT 'none',
        write_back_error TEXT,
        write_back_attempts INTEGER NOT NULL DEFAULT 0,
        receipt TEXT NOT NULL DEFAULT 'none',
        receipt_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS order_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id TEXT NOT NULL,
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT
      );
      CREATE TABLE IF NOT EXISTS print_jobs (id TEXT PRIMARY KEY, job TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);`;

const PAID: Payment = {
  id: 'pay_01HQ7Z',
  orderId: 'A-1001',
  registerId: 'R1',
  amount: { value: 1250, currency: 'CNY' },
  status: 'succeeded',
  method: { type: 'wallet_code', brand: 'alipay' },
  createdAt: '2025-03-01T08:00:05.000Z',
  updatedAt: '2025-03-01T08:00:07.000Z',
};
const FAILED: Payment = {
  id: 'pay_01HQ80',
  orderId: '订单-0002',
  registerId: 'R1',
  amount: { value: 123450, currency: 'CNY' },
  status: 'failed',
  method: { type: 'wallet_code', brand: 'wechat' },
  failure: { code: 'insufficient_funds', message: 'the customer has not enough money' },
  createdAt: '2025-03-01T08:10:05.000Z',
  updatedAt: '2025-03-01T08:10:06.000Z',
};
const SIGNATURE = 'k2rV3f0yq8cC3Yg0mR8lq6c1oT1oO1aZ9n4nG7p3xJ1m0Q2cE5mRkJvQ9nq7o5bS2B9bHn7qXw2fQ4n0c8yqAw';
const RECEIPT_BYTES = Buffer.from([0x1b, 0x40, 0x41, 0x2d, 0x31, 0x30, 0x30, 0x31, 0x0a, 0x1d, 0x56, 0x00]);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-plugin-journal-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A plugin.db as today's plugin leaves it in a shop, with the rows its work produces; without the print
 * queue, as the plugin made it before receipts were queued (commit 238bc26).
 */
function createTodaysJournal(withPrintQueue = true): void {
  const db = openDeviceDatabase(dir, 'plugin.db');
  db.exec(
    withPrintQueue ? TODAYS_SCHEMA : TODAYS_SCHEMA.replace(/CREATE TABLE IF NOT EXISTS print_jobs[^;]*;/, ''),
  );
  const order = db.prepare(
    `INSERT INTO orders (order_id, register_id, amount_value, currency, items, source, adapter, dispatch, status,
       terminal, claim_closed, progress, payment, signature, result_via, write_back, write_back_error,
       write_back_attempts, receipt, receipt_error, created_at, updated_at)
     VALUES (@order_id, @register_id, @amount_value, @currency, @items, @source, @adapter, @dispatch, @status,
       @terminal, @claim_closed, @progress, @payment, @signature, @result_via, @write_back, @write_back_error,
       @write_back_attempts, @receipt, @receipt_error, @created_at, @updated_at)`,
  );
  const base = {
    register_id: 'R1',
    currency: 'CNY',
    items: null,
    source: 'http',
    adapter: 'http-hook',
    dispatch: '{"mode":"broadcast"}',
    terminal: null,
    claim_closed: 0,
    progress: null,
    payment: null,
    signature: null,
    result_via: null,
    write_back: 'none',
    write_back_error: null,
    write_back_attempts: 0,
    receipt: 'none',
    receipt_error: null,
  };
  // Paid, written back, its receipt still due (the printer was off when the plugin stopped).
  order.run({
    ...base,
    order_id: 'A-1001',
    amount_value: 1250,
    items: JSON.stringify([{ name: '拿铁', quantity: 2, amount: { value: 1250, currency: 'CNY' } }]),
    dispatch: '{"mode":"unicast","terminal":"T1"}',
    status: 'paid',
    terminal: 'T1',
    claim_closed: 1,
    progress: 'paying',
    payment: JSON.stringify(PAID),
    signature: SIGNATURE,
    result_via: 'push',
    write_back: 'done',
    receipt: 'due',
    receipt_error: 'printer tcp://10.0.0.9:9100 refused the connection',
    created_at: '2025-03-01T08:00:00.000Z',
    updated_at: '2025-03-01T08:00:08.000Z',
  });
  // Failed, and the host has not been told yet: three write-backs failed.
  order.run({
    ...base,
    order_id: '订单-0002',
    amount_value: 123450,
    source: 'orders/订单-0002.json',
    adapter: 'file-drop',
    status: 'failed',
    terminal: 'T2',
    claim_closed: 1,
    progress: 'paying',
    payment: JSON.stringify(FAILED),
    signature: SIGNATURE,
    result_via: 'lan',
    write_back: 'due',
    write_back_error: 'EACCES: permission denied, open C:\\POS\\results\\订单-0002.json',
    write_back_attempts: 3,
    created_at: '2025-03-01T08:10:00.000Z',
    updated_at: '2025-03-01T08:10:09.000Z',
  });
  // Offered to every unit, not claimed yet.
  order.run({
    ...base,
    order_id: 'B-3',
    amount_value: 5,
    status: 'offered',
    created_at: '2025-03-01T08:20:00.000Z',
    updated_at: '2025-03-01T08:20:01.000Z',
  });
  // Claimed by T1, the clerk still waiting for the customer's code.
  order.run({
    ...base,
    order_id: 'C-4',
    amount_value: 9900,
    status: 'claimed',
    terminal: 'T1',
    progress: 'waiting_for_code',
    created_at: '2025-03-01T08:30:00.000Z',
    updated_at: '2025-03-01T08:30:02.000Z',
  });
  const log = db.prepare('INSERT INTO order_log (order_id, at, event, detail) VALUES (?, ?, ?, ?)');
  log.run('A-1001', '2025-03-01T08:00:00.000Z', 'captured', 'http');
  log.run('A-1001', '2025-03-01T08:00:01.000Z', 'offered', 'unicast to T1');
  log.run('A-1001', '2025-03-01T08:00:07.000Z', 'paid', 'payment pay_01HQ7Z succeeded (via push)');
  log.run('A-1001', '2025-03-01T08:00:08.000Z', 'written back', null);
  if (withPrintQueue)
    db.prepare('INSERT INTO print_jobs (id, job) VALUES (?, ?)').run(
      'receipt-A-1001',
      JSON.stringify({
        id: 'receipt-A-1001',
        orderId: 'A-1001',
        bytes: RECEIPT_BYTES.toString('base64'),
        target: 'tcp://10.0.0.9:9100',
        enqueuedAt: 1740816008000,
        attempts: 4,
        lastError: { code: 'ECONNREFUSED', message: 'connection refused', at: 1740816060000 },
      }),
    );
  db.prepare('INSERT INTO meta (name, value) VALUES (?, ?)').run('event_cursor', '4711');
  db.close();
}

function schemaMigrations(): { version: number; name: string }[] {
  const db = openSqlite(join(dir, 'plugin.db'), { readonly: true });
  try {
    return db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as {
      version: number;
      name: string;
    }[];
  } finally {
    db.close();
  }
}

const LATEST = PLUGIN_JOURNAL_MIGRATIONS.map((m) => m.version);

describe('PluginJournal migrations', () => {
  it("upgrades today's journal in place: every order, its due work, the log, print jobs and the cursor read back", () => {
    createTodaysJournal();
    const journal = new PluginJournal(dir, () => Date.parse('2025-03-02T09:00:00.000Z'));
    try {
      const paid: OrderRecord = {
        orderId: 'A-1001',
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
        items: [{ name: '拿铁', quantity: 2, amount: { value: 1250, currency: 'CNY' } }],
        source: 'http',
        adapter: 'http-hook',
        dispatch: { mode: 'unicast', terminal: 'T1' },
        status: 'paid',
        terminal: 'T1',
        progress: 'paying',
        payment: PAID,
        signature: SIGNATURE,
        resultVia: 'push',
        writeBack: 'done',
        writeBackError: null,
        writeBackAttempts: 0,
        receipt: 'due',
        receiptError: 'printer tcp://10.0.0.9:9100 refused the connection',
        createdAt: '2025-03-01T08:00:00.000Z',
        updatedAt: '2025-03-01T08:00:08.000Z',
      };
      const failed: OrderRecord = {
        orderId: '订单-0002',
        registerId: 'R1',
        amount: { value: 123450, currency: 'CNY' },
        items: undefined,
        source: 'orders/订单-0002.json',
        adapter: 'file-drop',
        dispatch: { mode: 'broadcast' },
        status: 'failed',
        terminal: 'T2',
        progress: 'paying',
        payment: FAILED,
        signature: SIGNATURE,
        resultVia: 'lan',
        writeBack: 'due',
        writeBackError: 'EACCES: permission denied, open C:\\POS\\results\\订单-0002.json',
        writeBackAttempts: 3,
        receipt: 'none',
        receiptError: null,
        createdAt: '2025-03-01T08:10:00.000Z',
        updatedAt: '2025-03-01T08:10:09.000Z',
      };
      expect(journal.get('A-1001')).toEqual(paid);
      expect(journal.get('订单-0002')).toEqual(failed);
      expect(journal.get('B-3')).toMatchObject({ status: 'offered', amount: { value: 5, currency: 'CNY' } });
      expect(journal.list().map((o) => o.orderId)).toEqual(['C-4', 'B-3', '订单-0002', 'A-1001']);

      // The work a restart finishes: exactly what was due before the upgrade.
      expect(journal.due('write_back').map((o) => o.orderId)).toEqual(['订单-0002']);
      expect(journal.due('receipt').map((o) => o.orderId)).toEqual(['A-1001']);
      expect(journal.byStatus(['claimed', 'offered']).map((o) => o.orderId)).toEqual(['B-3', 'C-4']);

      expect(journal.history('A-1001')).toEqual([
        { at: '2025-03-01T08:00:00.000Z', event: 'captured', detail: 'http' },
        { at: '2025-03-01T08:00:01.000Z', event: 'offered', detail: 'unicast to T1' },
        { at: '2025-03-01T08:00:07.000Z', event: 'paid', detail: 'payment pay_01HQ7Z succeeded (via push)' },
        { at: '2025-03-01T08:00:08.000Z', event: 'written back', detail: null },
      ]);
      expect(journal.printJobs.load()).toEqual([
        {
          id: 'receipt-A-1001',
          orderId: 'A-1001',
          bytes: RECEIPT_BYTES,
          target: 'tcp://10.0.0.9:9100',
          enqueuedAt: 1740816008000,
          attempts: 4,
          lastError: { code: 'ECONNREFUSED', message: 'connection refused', at: 1740816060000 },
        },
      ]);
      expect(journal.meta('event_cursor')).toBe('4711');

      // The claim book carries on: the open offer goes to the first claimant, the held one stays held.
      expect(journal.claim('C-4', 'T2')).toEqual({ granted: false, reason: 'taken', holder: 'T1' });
      expect(journal.claim('A-1001', 'T2')).toEqual({ granted: false, reason: 'taken', holder: 'T1' });
      expect(journal.claim('B-3', 'T2')).toEqual({ granted: true });
      expect(journal.holder('B-3')).toBe('T2');
      // A paid order is never decided again; the due write-back can still be done.
      expect(
        journal.decide('A-1001', 'failed', FAILED, SIGNATURE, 'poll', { writeBack: true, receipt: false }),
      ).toBe(false);
      journal.workDone('订单-0002', 'write_back');
      expect(journal.due('write_back')).toEqual([]);
    } finally {
      journal.closeDb();
    }
    expect(schemaMigrations()).toEqual([
      {
        version: 1,
        name: 'orders, order_log, print_jobs, meta (found in place: created before versioned migrations)',
      },
      ...PLUGIN_JOURNAL_MIGRATIONS.slice(1).map((m) => ({ version: m.version, name: m.name })),
    ]);
  });

  it('adds the print queue table to a journal from before the print queue (it had none)', () => {
    createTodaysJournal(false);
    const journal = new PluginJournal(dir);
    try {
      expect(journal.get('A-1001')?.payment).toEqual(PAID);
      expect(journal.printJobs.load()).toEqual([]);
      journal.printJobs.save({
        id: 'j1',
        orderId: 'A-1001',
        bytes: RECEIPT_BYTES,
        target: 'file:/tmp/r',
        enqueuedAt: 1,
        attempts: 0,
      });
      expect(journal.printJobs.load().map((j) => j.id)).toEqual(['j1']);
    } finally {
      journal.closeDb();
    }
  });

  it('gives a new journal every migration, and opening it again changes nothing', () => {
    const first = new PluginJournal(dir, () => Date.parse('2025-03-01T08:00:00.000Z'));
    first.capture(
      { orderId: 'N-1', registerId: 'R1', amount: { value: 100, currency: 'CNY' }, source: 'http' },
      'http-hook',
      {
        mode: 'multicast',
      },
    );
    first.setMeta('event_cursor', '3');
    first.closeDb();
    const recorded = schemaMigrations();
    expect(recorded.map((r) => r.version)).toEqual(LATEST);

    const again = new PluginJournal(dir);
    try {
      expect(again.get('N-1')).toMatchObject({ status: 'captured', amount: { value: 100, currency: 'CNY' } });
      expect(again.meta('event_cursor')).toBe('3');
    } finally {
      again.closeDb();
    }
    expect(schemaMigrations()).toEqual(recorded);
  });

  it('refuses a journal written by a newer payconnect, naming the file and both versions, and leaves it as it was', () => {
    createTodaysJournal();
    new PluginJournal(dir).closeDb();
    expectNewerJournalRefused({
      file: join(dir, 'plugin.db'),
      open: () => {
        const j = new PluginJournal(dir);
        return { close: () => j.closeDb() };
      },
      latest: LATEST.length,
    });
  });
});

describe('PluginJournal print jobs', () => {
  it('marks an order’s receipt done in the same transaction that keeps its print job', () => {
    const journal = new PluginJournal(dir, () => Date.parse('2025-03-01T08:00:00.000Z'));
    try {
      for (const orderId of ['A-1001', '收银-0042']) {
        journal.capture(
          { orderId, registerId: 'R1', amount: { value: 1250, currency: 'CNY' }, source: 'http' },
          'http-hook',
          { mode: 'multicast' },
        );
        journal.decide(orderId, 'paid', { ...PAID, orderId }, SIGNATURE, 'push', {
          writeBack: true,
          receipt: true,
        });
      }
      expect(journal.due('receipt').map((o) => o.orderId)).toEqual(['A-1001', '收银-0042']);

      // Once the job is kept the receipt is no longer due: a crash now cannot queue it a second time.
      journal.printJobs.save({
        id: receiptJobId('收银-0042'),
        orderId: '收银-0042',
        bytes: RECEIPT_BYTES,
        target: 'tcp://127.0.0.1:9100',
        enqueuedAt: 0,
        attempts: 0,
      });
      expect(journal.due('receipt').map((o) => o.orderId)).toEqual(['A-1001']);
      expect(journal.get('收银-0042')).toMatchObject({ receipt: 'done', receiptError: null });

      // Another job for the order (not its receipt) changes nothing.
      journal.printJobs.save({
        id: 'note:A-1001',
        orderId: 'A-1001',
        bytes: RECEIPT_BYTES,
        target: 'tcp://127.0.0.1:9100',
        enqueuedAt: 0,
        attempts: 0,
      });
      expect(journal.due('receipt').map((o) => o.orderId)).toEqual(['A-1001']);
      expect(journal.printJobs.load().map((j) => j.id)).toEqual([receiptJobId('收银-0042'), 'note:A-1001']);

      // The sending mark survives the round trip through the table.
      journal.printJobs.save({ ...journal.printJobs.load()[0], sending: true });
      expect(journal.printJobs.load()[0]).toMatchObject({ id: receiptJobId('收银-0042'), sending: true });
    } finally {
      journal.closeDb();
    }
  });
});

describe('PluginJournal queries', () => {
  it("reads no table whole for a day's work: every query a sale makes, the work loop's and the status page's use an index", () => {
    const journal = new PluginJournal(dir, () => Date.parse('2025-03-01T08:00:00.000Z'));
    try {
      const db = (journal as unknown as { db: SqliteDatabase }).db;
      const ran = recordStatements(db);
      // A paid sale, a failed then canceled one, and one still offered, as the plugin's service drives them.
      const capture = (orderId: string) =>
        journal.capture(
          { orderId, registerId: 'R1', amount: { value: 1250, currency: 'CNY' }, source: 'http' },
          'http-hook',
          { mode: 'multicast' },
        );
      for (const orderId of ['A-1', '收银-0002', 'A-3']) {
        capture(orderId);
        journal.setStatus(orderId, 'offered');
        journal.open(orderId);
      }
      expect(journal.claim('A-1', 'T1')).toEqual({ granted: true });
      journal.setProgress('A-1', 'waiting_for_code', 'T1');
      journal.setStatus('A-1', 'paying', { progress: 'paying', terminal: 'T1' }, 'T1');
      journal.decide('A-1', 'paid', { ...PAID, orderId: 'A-1' }, SIGNATURE, 'push', {
        writeBack: true,
        receipt: true,
      });
      journal.close('A-1');
      expect(journal.claim('收银-0002', 'T2')).toEqual({ granted: true });
      journal.decide('收银-0002', 'failed', { ...FAILED, orderId: '收银-0002' }, SIGNATURE, 'lan', {
        writeBack: true,
        receipt: false,
      });
      journal.cancel('收银-0002');
      // The work loop and the status page.
      journal.byStatus(['claimed', 'paying', 'failed', 'offered']);
      journal.byStatus(['captured', 'offered']);
      for (const kind of ['write_back', 'receipt'] as const) journal.due(kind);
      journal.workFailed('A-1', 'write_back', 'the register did not answer');
      journal.workDone('A-1', 'write_back', 'paid');
      journal.workDone('A-1', 'receipt');
      journal.requeueReceipt('A-1');
      journal.list(50);
      journal.history('A-1');
      journal.get('A-3');
      journal.registerOf('A-3');
      journal.holder('A-1');
      expect(ran.size).toBeGreaterThan(15);
      expect(fullScans(db, ran, ['orders', 'order_log'])).toEqual([]);
    } finally {
      journal.closeDb();
    }
  });
});

describe('PluginJournal commits', () => {
  it('a paid sale commits once per state change; a stage or work the journal holds already commits nothing', () => {
    const journal = new PluginJournal(dir, () => Date.parse('2025-03-01T08:00:00.000Z'));
    const path = join(dir, 'plugin.db');
    try {
      // Each step as the plugin's service drives it, and the commits (each an fsync) it made.
      let before = walCommits(path);
      const commits = (step: () => unknown): number => {
        step();
        const after = walCommits(path);
        const n = after - before;
        before = after;
        return n;
      };
      const orderId = '收银-0001';
      const job = {
        id: receiptJobId(orderId),
        orderId,
        bytes: RECEIPT_BYTES,
        target: 'tcp://127.0.0.1:9100',
        enqueuedAt: 1740816000000,
        attempts: 0,
      };
      /** The paid result as the push brings it, with its event's cursor. */
      const decidePaid = (cursor: string) =>
        journal.decide(
          orderId,
          'paid',
          { ...PAID, orderId },
          SIGNATURE,
          'push',
          { writeBack: true, receipt: true },
          { name: EVENT_CURSOR_KEY, value: cursor },
        );
      const steps: Array<[string, () => unknown, number]> = [
        [
          'captured',
          () =>
            journal.capture(
              { orderId, registerId: 'R1', amount: { value: 1250, currency: 'CNY' }, source: 'http' },
              'http-hook',
              { mode: 'broadcast' },
            ),
          1,
        ],
        ['offered', () => journal.setStatus(orderId, 'offered'), 1],
        ['the claim book opened (open already)', () => journal.open(orderId), 0],
        ['claimed', () => expect(journal.claim(orderId, 'T1')).toEqual({ granted: true }), 1],
        [
          "the unit's 'claimed' (recorded by the claim)",
          () => journal.setProgress(orderId, 'claimed', 'T1'),
          0,
        ],
        [
          'paying',
          () => journal.setStatus(orderId, 'paying', { progress: 'paying', terminal: 'T1' }, 'T1'),
          1,
        ],
        ['paid, with the push cursor of the event that brought it', () => decidePaid('42'), 1],
        ["the unit's 'done' (recorded by the decision)", () => journal.setProgress(orderId, 'done', 'T1'), 0],
        ['written back', () => journal.workDone(orderId, 'write_back', 'paid'), 1],
        ['the receipt queued (marks the receipt done)', () => journal.printJobs.save(job), 1],
        ['the receipt done (done already)', () => journal.workDone(orderId, 'receipt'), 0],
        ['the receipt sending', () => journal.printJobs.save({ ...job, sending: true }), 1],
        ['the receipt printed', () => journal.printJobs.remove(job.id), 1],
      ];
      const made = steps.map(([name, step]) => [name, commits(step)]);
      expect(made).toEqual(steps.map(([name, , n]) => [name, n]));

      // Nothing was lost by writing less: the order and its history are as before, and the cursor is stored.
      expect(journal.meta(EVENT_CURSOR_KEY)).toBe('42');
      // The same result again (a later push of it): refused, nothing written, the cursor not moved.
      expect(commits(() => expect(decidePaid('43')).toBe(false))).toBe(0);
      expect(journal.meta(EVENT_CURSOR_KEY)).toBe('42');
      expect(journal.get(orderId)).toMatchObject({
        status: 'paid',
        terminal: 'T1',
        progress: 'done',
        writeBack: 'done',
        receipt: 'done',
      });
      expect(journal.history(orderId).map((h) => h.event)).toEqual([
        'captured',
        'offered',
        'claimed',
        'paying',
        'paid',
        'written back',
        'receipt queued',
      ]);
      expect(journal.printJobs.load()).toEqual([]);

      // A stage that is new is written; so is work done after it failed (its error is cleared).
      expect(commits(() => journal.setProgress(orderId, 'waiting_for_code', 'T1'))).toBe(1);
      expect(journal.get(orderId)!.progress).toBe('waiting_for_code');
      expect(commits(() => journal.workFailed(orderId, 'write_back', 'the register did not answer'))).toBe(1);
      expect(journal.get(orderId)!.writeBackError).toBe('the register did not answer');
      expect(commits(() => journal.workDone(orderId, 'write_back', 'paid'))).toBe(1);
      expect(journal.get(orderId)!.writeBackError).toBeNull();
    } finally {
      journal.closeDb();
    }
  });
});
