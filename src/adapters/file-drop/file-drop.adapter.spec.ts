import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeClock } from '../../protocol/clock';
import { ManifestError, WriteBackError } from '../../protocol/errors';
import { CapturedOrder, OrderResult, RejectedInput } from '../host-adapter';
import { FileDropManifest, parseManifest } from '../manifest';
import { createAdapter } from '../registry';
import { EMPTY_FILE_GRACE_MS, FileDropAdapter } from './file-drop.adapter';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/adapters');

function manifest(extra: { options?: string; parse?: string; writeBack?: string } = {}): FileDropManifest {
  const yaml = `
id: shop
name: Shop
adapter: file-drop
register: R1
options: ${extra.options ?? '{ inbox: ./in, pattern: "*.json" }'}
parse: ${extra.parse ?? '{ orderId: "$.orderNo", amount: "$.total", currency: CNY }'}
writeBack: ${extra.writeBack ?? '{ outbox: ./out, format: json }'}
dispatch: { mode: broadcast }
`;
  return parseManifest(yaml, 'shop.yaml') as FileDropManifest;
}

const CSV_GB18030 = {
  options: '{ inbox: ./in, pattern: "*.csv", encoding: gb18030 }',
  parse: '{ orderId: 单号, amount: 金额, currency: CNY }',
};

function result(orderId: string, status: OrderResult['status'] = 'paid'): OrderResult {
  return {
    orderId,
    registerId: 'R1',
    status,
    amount: { value: 1250, currency: 'CNY' },
    payment:
      status === 'canceled'
        ? undefined
        : {
            id: 'pay_1',
            orderId,
            registerId: 'R1',
            amount: { value: 1250, currency: 'CNY' },
            status: status === 'paid' ? 'succeeded' : 'failed',
            method: { type: 'wallet_code', code: '280000000000000000' },
            ...(status === 'failed'
              ? { failure: { code: 'insufficient_funds', message: 'Not enough money' } }
              : {}),
            createdAt: '2026-01-01T00:00:00.000Z',
            updatedAt: '2026-01-01T00:00:01.000Z',
          },
    signature: 'sig',
    decidedAt: '2026-01-01T00:00:02.000Z',
  };
}

describe(FileDropAdapter.name, () => {
  let root: string;
  let inbox: string;
  let outbox: string;
  let clock: FakeClock;
  let orders: CapturedOrder[];
  let rejects: RejectedInput[];
  let errors: Error[];
  let onOrder: (order: CapturedOrder) => Promise<void>;
  let sut: FileDropAdapter;

  async function make(m = manifest()): Promise<FileDropAdapter> {
    const adapter = createAdapter(m, {
      baseDir: root,
      clock,
      onError: (e) => errors.push(e),
    }) as FileDropAdapter;
    await adapter.start({ onOrder: (o) => onOrder(o), onReject: (r) => rejects.push(r) });
    return adapter;
  }

  /** Two polls: the first sees the files, the second takes those whose size did not change. */
  async function settle(adapter = sut): Promise<void> {
    await adapter.pollOnce();
    await adapter.pollOnce();
  }

  const list = async (dir: string): Promise<string[]> => (await fs.readdir(dir)).sort();
  const drop = (name: string, content: string | Buffer): Promise<void> =>
    fs.writeFile(path.join(inbox, name), content);

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'payconnect-file-drop-'));
    inbox = path.join(root, 'in');
    outbox = path.join(root, 'out');
    await fs.mkdir(inbox);
    await fs.mkdir(outbox);
    clock = new FakeClock();
    orders = [];
    rejects = [];
    errors = [];
    onOrder = async (o) => {
      orders.push(o);
    };
    sut = await make();
  });

  afterEach(async () => {
    await sut.stop();
    await fs.rm(root, { recursive: true, force: true });
  });

  describe('capture', () => {
    it('hands a good JSON order over once, in exact minor units, then moves the file to processed/', async () => {
      await drop('A-1.json', '{"orderNo":"A-1","total":"12.50"}');
      await sut.pollOnce();
      expect(orders).toEqual([]); // seen once: not yet known to be complete
      await sut.pollOnce();
      expect(orders).toEqual([
        { orderId: 'A-1', registerId: 'R1', amount: { value: 1250, currency: 'CNY' }, source: 'A-1.json' },
      ]);
      expect(await list(inbox)).toEqual(['processed', 'rejected']);
      expect(await list(path.join(inbox, 'processed'))).toEqual(['A-1.json']);
      await settle();
      expect(orders).toHaveLength(1);
      expect(rejects).toEqual([]);
    });

    it('moves the file only once onOrder has resolved', async () => {
      let release!: () => void;
      onOrder = (o) =>
        new Promise<void>((resolve) => {
          orders.push(o);
          release = resolve;
        });
      await drop('A-1.json', '{"orderNo":"A-1","total":"12.50"}');
      await sut.pollOnce();
      const taking = sut.pollOnce();
      await until(() => orders.length === 1, 'onOrder called with A-1');
      expect(await list(inbox)).toContain('A-1.json');
      release();
      await taking;
      expect(await list(inbox)).not.toContain('A-1.json');
    });

    it('keeps the file and tries again when onOrder fails (the plugin could not journal it)', async () => {
      let fail = true;
      onOrder = async (o) => {
        if (fail) throw new Error('journal is full');
        orders.push(o);
      };
      await drop('A-1.json', '{"orderNo":"A-1","total":"12.50"}');
      await settle();
      expect(await list(inbox)).toContain('A-1.json');
      expect(errors.map((e) => e.message)).toEqual(['journal is full']);
      fail = false;
      await sut.pollOnce();
      expect(orders.map((o) => o.orderId)).toEqual(['A-1']);
      expect(await list(path.join(inbox, 'processed'))).toEqual(['A-1.json']);
    });

    it.each([
      ['GB18030', 'order-gb18030.csv', CSV_GB18030],
      ['UTF-8', 'order-utf8-bom.csv', { ...CSV_GB18030, options: '{ inbox: ./in, pattern: "*.csv" }' }],
    ])('reads a Chinese CSV in %s', async (_name, file, m) => {
      await sut.stop();
      sut = await make(manifest(m));
      await drop('XS0001.csv', readFileSync(path.join(FIXTURES, file)));
      await settle();
      expect(orders).toEqual([
        {
          orderId: 'XS20250131-0001',
          registerId: 'R1',
          amount: { value: 123450, currency: 'CNY' },
          source: 'XS0001.csv',
        },
      ]);
    });

    it.each([
      [
        'garbage',
        readFileSync(path.join(FIXTURES, 'garbage.bin')),
        'file_drop.bad_encoding',
        'not valid utf8 text',
      ],
      [
        'truncated JSON',
        readFileSync(path.join(FIXTURES, 'truncated-order.txt')),
        'file_drop.bad_json',
        'not valid JSON',
      ],
      ['a huge file', Buffer.alloc(300 * 1024, 0x20), 'file_drop.too_large', 'at most 262144 bytes'],
      [
        'amount "12.505"',
        '{"orderNo":"B","total":"12.505"}',
        'money.ambiguous',
        'amount ($.total): The amount "12.505" is ambiguous',
      ],
      [
        'amount "abc"',
        '{"orderNo":"B","total":"abc"}',
        'money.not_a_number',
        'amount ($.total): The amount "abc" has no digits',
      ],
      [
        'amount "-1"',
        '{"orderNo":"B","total":"-1"}',
        'money.negative',
        'amount ($.total): The amount "-1" is negative',
      ],
    ])(
      'rejects %s into rejected/ with a note saying why, and takes the next good file',
      async (_n, content, code, reason) => {
        await drop('0-bad.json', content);
        await drop('1-good.json', '{"orderNo":"G","total":"1.00"}');
        await settle();
        expect(await list(path.join(inbox, 'rejected'))).toEqual(['0-bad.json', '0-bad.json.error.txt']);
        const note = await fs.readFile(path.join(inbox, 'rejected', '0-bad.json.error.txt'), 'utf8');
        expect(note).toContain('payconnect could not take the order file "0-bad.json"');
        expect(note).toContain(reason);
        expect(note).toContain(`Code:    ${code}`);
        expect(note).toContain('What to do');
        expect(rejects).toEqual([{ subject: '0-bad.json', code, message: expect.stringContaining(reason) }]);
        expect(orders.map((o) => o.orderId)).toEqual(['G']);
        expect(await list(path.join(inbox, 'processed'))).toEqual(['1-good.json']);
      },
    );

    it('does not read a file while it is still being written', async () => {
      const file = path.join(inbox, 'slow.json');
      await fs.writeFile(file, '{"orderNo":"S",');
      await sut.pollOnce();
      await fs.appendFile(file, '"total":');
      await sut.pollOnce(); // the size changed: still being written
      expect(orders).toEqual([]);
      expect(rejects).toEqual([]);
      await fs.appendFile(file, '"3.00"}');
      await sut.pollOnce();
      expect(orders).toEqual([]);
      await sut.pollOnce();
      expect(orders.map((o) => o.amount.value)).toEqual([300]);
      expect(rejects).toEqual([]);
    });

    it('ignores *.tmp files (the write-then-rename convention) until they are renamed', async () => {
      await drop('T.json.tmp', '{"orderNo":"T","total":"1"}');
      await settle();
      expect(orders).toEqual([]);
      await fs.rename(path.join(inbox, 'T.json.tmp'), path.join(inbox, 'T.json'));
      await settle();
      expect(orders.map((o) => o.orderId)).toEqual(['T']);
    });

    it('gives an empty file time to get its content, then rejects it', async () => {
      await drop('E.json', '');
      await settle();
      clock.advance(EMPTY_FILE_GRACE_MS - 1);
      await sut.pollOnce();
      expect(rejects).toEqual([]);
      clock.advance(1);
      await sut.pollOnce();
      expect(rejects.map((r) => r.code)).toEqual(['file_drop.empty']);
    });

    it('keeps every copy when the host reuses a file name', async () => {
      await drop('order.json', '{"orderNo":"1","total":"1"}');
      await settle();
      await drop('order.json', '{"orderNo":"2","total":"2"}');
      await settle();
      expect(orders.map((o) => o.orderId)).toEqual(['1', '2']);
      expect(await list(path.join(inbox, 'processed'))).toEqual(['order.json', 'order~2.json']);
    });

    it('polls on its own every pollMs until stopped', async () => {
      await sut.stop();
      const clock = new FakeClock();
      const live = createAdapter(manifest({ options: '{ inbox: ./in, pattern: "*.json", pollMs: 50 }' }), {
        baseDir: root,
        clock,
      }) as FileDropAdapter;
      await live.start({ onOrder: async (o) => void orders.push(o), onReject: (r) => void rejects.push(r) });
      await drop('L.json', '{"orderNo":"L","total":"1"}');
      // Nothing but the adapter's own timer moves it: each 50 ms of clock is one poll.
      await until(() => {
        clock.advance(50);
        return orders.length > 0;
      }, 'the adapter to poll L.json in on its own');
      await until(() => clock.pending() === 1, 'the next poll to be scheduled');
      await live.stop();
      expect(orders.map((o) => o.orderId)).toEqual(['L']);
      // Stopped: no poll is scheduled any more, so however much time passes, nothing more is taken.
      expect(clock.pending()).toBe(0);
    });
  });

  describe('writeBack', () => {
    const resultFile = (stem: string, ext = 'json') => path.join(outbox, `${stem}.result.${ext}`);

    it('writes <orderId>.result.json with the documented fields, and no temporary file is left', async () => {
      await sut.writeBack(result('A-1'));
      expect(JSON.parse(await fs.readFile(resultFile('A-1'), 'utf8'))).toEqual({
        orderId: 'A-1',
        registerId: 'R1',
        status: 'paid',
        amount: { value: 1250, currency: 'CNY' },
        paymentId: 'pay_1',
        method: 'wallet_code',
        decidedAt: '2026-01-01T00:00:02.000Z',
        signature: 'sig',
      });
      expect(await list(outbox)).toEqual(['A-1.result.json']);
      // The customer's wallet code never reaches the host.
      expect(await fs.readFile(resultFile('A-1'), 'utf8')).not.toContain('280000000000000000');
    });

    it('is idempotent: the same status again leaves the file untouched', async () => {
      await sut.writeBack(result('A-1'));
      const before = await fs.stat(resultFile('A-1'));
      await sut.writeBack(result('A-1'));
      const after = await fs.stat(resultFile('A-1'));
      expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    });

    it('replaces a failed result by a paid one atomically (a new file renamed over the old)', async () => {
      await sut.writeBack(result('A-1', 'failed'));
      const failed = JSON.parse(await fs.readFile(resultFile('A-1'), 'utf8'));
      expect(failed).toMatchObject({ status: 'failed', failure: { code: 'insufficient_funds' } });
      const before = await fs.stat(resultFile('A-1'));
      await sut.writeBack(result('A-1', 'paid'));
      const after = await fs.stat(resultFile('A-1'));
      expect(after.ino).not.toBe(before.ino);
      expect(JSON.parse(await fs.readFile(resultFile('A-1'), 'utf8')).status).toBe('paid');
      expect(await list(outbox)).toEqual(['A-1.result.json']);
    });

    it('never replaces a paid result with another status', async () => {
      await sut.writeBack(result('A-1', 'paid'));
      await expect(sut.writeBack(result('A-1', 'canceled'))).rejects.toThrow(WriteBackError);
      expect(JSON.parse(await fs.readFile(resultFile('A-1'), 'utf8')).status).toBe('paid');
    });

    it('rewrites a damaged result file', async () => {
      await fs.writeFile(resultFile('A-1'), '{"status":"pa');
      await sut.writeBack(result('A-1'));
      expect(JSON.parse(await fs.readFile(resultFile('A-1'), 'utf8')).status).toBe('paid');
    });

    it('writes CSV results when the manifest says so', async () => {
      await sut.stop();
      sut = await make(manifest({ writeBack: '{ outbox: ./out, format: csv }' }));
      await sut.writeBack(result('单-1', 'canceled'));
      expect(await fs.readFile(resultFile('%E5%8D%95-1', 'csv'), 'utf8')).toBe(
        'orderId,registerId,status,amount,currency,amountMinor,paymentId,method,decidedAt,signature,failureCode,failureMessage\r\n' +
          '单-1,R1,canceled,12.50,CNY,1250,,,2026-01-01T00:00:02.000Z,sig,,\r\n',
      );
      await sut.writeBack(result('单-1', 'canceled'));
      expect(await list(outbox)).toEqual(['%E5%8D%95-1.result.csv']);
    });

    it('keeps an order id like ../../etc/x inside the outbox', async () => {
      await sut.writeBack(result('../../etc/x'));
      await sut.writeBack(result('..\\..\\win'));
      await sut.writeBack(result('.hidden'));
      expect(await list(outbox)).toEqual([
        '%2E.%2F..%2Fetc%2Fx.result.json',
        '%2E.%5C..%5Cwin.result.json',
        '%2Ehidden.result.json',
      ]);
      expect(await list(root)).toEqual(['in', 'out']);
      expect(
        JSON.parse(await fs.readFile(path.join(outbox, '%2E.%2F..%2Fetc%2Fx.result.json'), 'utf8')).orderId,
      ).toBe('../../etc/x');
    });

    it('throws WriteBackError naming the file when the outbox is gone', async () => {
      await fs.rm(outbox, { recursive: true });
      await expect(sut.writeBack(result('A-1'))).rejects.toMatchObject({
        code: 'file_drop.write_failed',
        message: expect.stringContaining(resultFile('A-1')),
      });
    });
  });

  describe('probe', () => {
    it('makes processed/ and rejected/', async () => {
      expect(await list(inbox)).toEqual(['processed', 'rejected']);
    });

    it.each([
      ['the inbox is missing', 'in', 'options.inbox'],
      ['the outbox is missing', 'out', 'writeBack.outbox'],
    ])('throws a ManifestError naming the field when %s', async (_n, dir, field) => {
      await fs.rm(path.join(root, dir), { recursive: true });
      const error = await sut.probe().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ManifestError);
      expect(error).toMatchObject({ subject: field, message: expect.stringContaining(path.join(root, dir)) });
    });

    it('refuses a file where a folder should be', async () => {
      await fs.rm(outbox, { recursive: true });
      await fs.writeFile(outbox, '');
      await expect(sut.probe()).rejects.toMatchObject({ code: 'file_drop.outbox_not_folder' });
    });
  });
});

/** Polls `done` (on real time: file I/O is involved) until it holds; fails naming `what` after 5 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 5000; !done();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
