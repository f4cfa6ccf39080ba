/**
 * The plugin with a Chinese ERP that talks through files, end to end: the plugin as a real
 * `payconnect plugin` process with a file-drop manifest (GB18030 JSON order files with Chinese keys and
 * item names), a real payment server process, units T1 and T2 in-process and a raw TCP receipt printer.
 * What the reseller checks: an order file dropped into the inbox is offered, paid, answered by a result
 * file in the outbox and moved to processed/; files that cannot be orders go to rejected/ with a note
 * saying why, show on the status API, and do not hold up the next good file.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { orderFileStem } from '../../src/adapters/file-drop/file-names';
import * as iconv from 'iconv-lite';
import { FakeTcpPrinter } from '../../src/printer/fake-tcp-printer';
import {
  ChildProc,
  freeTcpPort,
  killAllChildren,
  pickLanPorts,
  REPO_ROOT,
  testCode,
  TestServer,
  waitFor,
} from '../terminal/support/harness';
import {
  LanPorts,
  PluginApi,
  receiptsOf,
  startPluginProc,
  Unit,
  writeFileDropManifest,
} from './support/plugin-harness';

jest.setTimeout(60_000);

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'adapters');

let tmp: string;
let inbox: string;
let outbox: string;
let server: TestServer;
let lan: LanPorts;
let printer: FakeTcpPrinter;
let plugin: ChildProc;
let api: PluginApi;
const units: Record<string, Unit> = {};

/** An order as the ERP writes it: Chinese keys and item names. */
function orderText(orderId: string): string {
  const doc = {
    单号: orderId,
    金额: '38.00',
    收银员: '王芳',
    商品: [
      { 名称: '珍珠奶茶', 数量: 2, 小计: '30.00' },
      { 名称: '蛋挞', 数量: 1, 小计: '8.00' },
    ],
  };
  return JSON.stringify(doc, null, 2);
}

/** …in GB18030 bytes, as a Chinese Windows register writes "ANSI" text. */
const orderBytes = (orderId: string): Buffer => iconv.encode(orderText(orderId), 'gb18030');

/** Drops a file the safe way hosts are told to: write `<name>.tmp`, then rename (atomic). */
function drop(name: string, bytes: Buffer): void {
  const tmpName = path.join(inbox, `${name}.tmp`);
  writeFileSync(tmpName, bytes);
  renameSync(tmpName, path.join(inbox, name));
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-plugin-file-drop-'));
  inbox = path.join(tmp, 'inbox');
  outbox = path.join(tmp, 'outbox');
  mkdirSync(inbox);
  mkdirSync(outbox);
  server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
  const storeId = await server.createStore('茶馆');
  lan = await pickLanPorts();
  printer = new FakeTcpPrinter();
  await printer.listen(0);
  const manifest = writeFileDropManifest(tmp, { id: 'erp-zh', inbox, outbox, printer: printer.target });
  const port = await freeTcpPort();
  plugin = await startPluginProc({
    manifest,
    serverUrl: server.url,
    registrationCode: await server.registrationCode(storeId, 'plugin'),
    port,
    dataDir: path.join(tmp, 'plugin'),
    lan,
  });
  api = new PluginApi(`http://127.0.0.1:${port}`);
  for (const id of ['T1', 'T2'])
    units[id] = await Unit.start({ id, server, storeId, dataDir: path.join(tmp, id), lan });
  await api.waitForUnits(['T1', 'T2']);
});

afterAll(async () => {
  for (const u of Object.values(units)) await u.close().catch(() => undefined);
  await plugin?.stop();
  await server?.proc.stop();
  await killAllChildren();
  await printer?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the plugin with a file-drop host writing GB18030 order files', () => {
  it('offers a dropped Chinese order, and answers the paid result in the outbox', async () => {
    drop('ZH-0001.json', orderBytes('ZH-0001'));

    const offer = await units.T1.waitOffer('ZH-0001');
    expect(offer).toMatchObject({
      registerId: 'R1',
      amount: { value: 3800, currency: 'CNY' },
      status: 'open',
    });
    const offered = await api.waitOrder('ZH-0001', 'to be offered', (o) => o.status === 'offered');
    expect(offered.source).toBe('ZH-0001.json');

    const paid = await units.T1.claimAndPay('ZH-0001', testCode('00', '13'));
    expect(paid.status).toBe('succeeded');
    await api.waitOrder(
      'ZH-0001',
      'to be paid and written back',
      (o) => o.status === 'paid' && o.writeBack === 'done',
    );

    const resultFile = path.join(outbox, 'ZH-0001.result.json');
    expect(existsSync(resultFile)).toBe(true);
    const result = JSON.parse(readFileSync(resultFile, 'utf8'));
    expect(result).toMatchObject({
      orderId: 'ZH-0001',
      registerId: 'R1',
      status: 'paid',
      amount: { value: 3800, currency: 'CNY' },
      paymentId: paid.paymentId,
    });
    expect(typeof result.signature).toBe('string');
    expect(existsSync(path.join(inbox, 'processed', 'ZH-0001.json'))).toBe(true);
    expect(existsSync(path.join(inbox, 'ZH-0001.json'))).toBe(false);

    // The receipt prints the Chinese item names, as a GB18030 printer reads them.
    await waitFor('the receipt of ZH-0001', () => receiptsOf(printer, 'ZH-0001').length > 0);
    const [receipt] = receiptsOf(printer, 'ZH-0001');
    expect(receipt.text).toContain('珍珠奶茶');
    expect(receipt.text).toContain('蛋挞');
    expect(receipt.text).toContain('38.00');
  });

  it('pays an order whose number is Chinese (销售-0003) end to end: offer, payment, result file, receipt', async () => {
    drop('销售-0003.json', orderBytes('销售-0003'));
    await units.T2.waitOffer('销售-0003');
    const paid = await units.T2.claimAndPay('销售-0003', testCode('00'));
    expect(paid.status).toBe('succeeded');
    await api.waitOrder(
      '销售-0003',
      'to be paid and written back',
      (o) => o.status === 'paid' && o.writeBack === 'done',
    );
    const resultFile = path.join(outbox, `${orderFileStem('销售-0003')}.result.json`);
    const result = JSON.parse(readFileSync(resultFile, 'utf8'));
    expect(result).toMatchObject({ orderId: '销售-0003', status: 'paid', paymentId: paid.paymentId });
    await waitFor('the receipt of 销售-0003', () => receiptsOf(printer, '销售-0003').length > 0);
    expect(receiptsOf(printer, '销售-0003')[0].text).toContain('珍珠奶茶');
  });

  it('moves garbage, truncated and huge files to rejected/ with the reason, and goes on with the next', async () => {
    const good = orderBytes('ZH-0002');
    const half = orderText('ZH-0002');
    const huge = Buffer.concat([
      Buffer.from('{"单号":"ZH-9999","金额":"1.00","备注":"'),
      Buffer.alloc(300 * 1024, 'x'),
      Buffer.from('"}'),
    ]);
    drop('garbage.json', readFileSync(path.join(FIXTURES, 'garbage.bin')));
    // Cut short between characters, as a host that stopped writing half-way leaves it: valid GB18030 text,
    // not a whole JSON document.
    drop('truncated.json', iconv.encode(half.slice(0, Math.floor(half.length / 2)), 'gb18030'));
    drop('huge.json', huge);
    // Copy a real file in place too (not via a .tmp name): still read whole, after it stops changing.
    copyFileSync(path.join(FIXTURES, 'garbage.bin'), path.join(inbox, 'binary.json'));

    const reasons: Record<string, RegExp> = {
      'garbage.json': /Code: +file_drop\.(bad_encoding|bad_json)/,
      'binary.json': /Code: +file_drop\.(bad_encoding|bad_json)/,
      'truncated.json': /Problem: .*not valid JSON.*cut short[\s\S]*Code: +file_drop\.bad_json/,
      'huge.json': /Problem: .*at most 262144 bytes[\s\S]*Code: +file_drop\.too_large/,
    };
    for (const [name, reason] of Object.entries(reasons)) {
      const note = path.join(inbox, 'rejected', `${name}.error.txt`);
      await waitFor(`${name} to be rejected`, () => existsSync(note), 10_000);
      expect(existsSync(path.join(inbox, 'rejected', name))).toBe(true);
      expect(existsSync(path.join(inbox, name))).toBe(false);
      const text = readFileSync(note, 'utf8');
      expect(text).toContain(`payconnect could not take the order file "${name}"`);
      expect(text).toMatch(reason);
      expect(text).toContain('has NOT been offered');
    }

    // The next good file goes through as usual.
    drop('ZH-0002.json', good);
    const paid = await units.T2.claimAndPay('ZH-0002', testCode('00'));
    expect(paid.status).toBe('succeeded');
    await api.waitOrder(
      'ZH-0002',
      'to be paid and written back',
      (o) => o.status === 'paid' && o.writeBack === 'done',
    );
    expect(JSON.parse(readFileSync(path.join(outbox, 'ZH-0002.result.json'), 'utf8'))).toMatchObject({
      orderId: 'ZH-0002',
      status: 'paid',
      paymentId: paid.paymentId,
    });
    expect(existsSync(path.join(inbox, 'processed', 'ZH-0002.json'))).toBe(true);

    // The support engineer sees each rejected file, and nothing of the huge file was taken as an order.
    const status = await api.status();
    const rejected = new Map(status.rejected.map((r) => [r.subject, r]));
    for (const name of Object.keys(reasons)) expect(rejected.has(name)).toBe(true);
    expect(rejected.get('huge.json')).toMatchObject({ code: 'file_drop.too_large' });
    expect(rejected.get('truncated.json')).toMatchObject({ code: 'file_drop.bad_json' });
    expect(status.counters.rejectedInputs).toBeGreaterThanOrEqual(4);
    // …and "Needs attention" says so, with what to do.
    expect(status.problems.join('\n')).toMatch(
      /\d+ order input\(s\) rejected, the last: .+; those orders were not offered: fix the register's export/,
    );
    expect((await api.post({ orderId: 'ZH-9999', amount: '1.00' })).status).toBe(409); // no HTTP hook here
    const orders = await (await fetch(`${api.url}/api/orders`)).json();
    expect((orders as { orderId: string }[]).map((o) => o.orderId).sort()).toEqual([
      'ZH-0001',
      'ZH-0002',
      '销售-0003',
    ]);
  });
});
