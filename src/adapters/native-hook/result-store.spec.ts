import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ResultDocument } from '../result-document';
import { KEEP_DELIVERED_MS, orderIdOf, ResultStore } from './result-store';

const doc = (orderId: string, status: ResultDocument['status']): ResultDocument => ({
  orderId,
  registerId: 'R1',
  status,
  amount: { value: 100, currency: 'CNY' },
  paymentId: null,
  method: null,
  decidedAt: '2026-01-01T00:00:00.000Z',
});

describe(ResultStore.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'payconnect-result-store-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('keeps order ids with any character apart, one file each, and reads them back', async () => {
    const ids = ['A/1', 'A:1', '../A', '订单 7', 'a'.repeat(64)];
    const sut = new ResultStore(dir);
    await sut.load();
    for (const id of ids) expect(await sut.add(doc(id, 'paid'), 'now')).toBe(true);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.json'))).toHaveLength(ids.length);
    const again = new ResultStore(dir);
    await again.load();
    for (const id of ids) {
      expect(again.nextUndelivered(id)).toMatchObject({
        orderId: id,
        delivery: `${encodeURIComponent(id)}:paid`,
      });
      expect(orderIdOf(again.nextUndelivered(id)!.delivery)).toBe(id);
    }
  });

  it('serialises writes of one order: concurrent results and acks all land', async () => {
    const sut = new ResultStore(dir);
    await sut.load();
    await Promise.all([sut.add(doc('C', 'failed'), 'now'), sut.add(doc('C', 'paid'), 'now')]);
    await Promise.all([sut.ack('C:failed'), sut.ack('C:paid')]);
    const again = new ResultStore(dir);
    await again.load();
    expect(again.nextUndelivered('C')).toBeUndefined();
    expect(again.has('C')).toBe(true);
  });

  it('forgets orders acknowledged long ago, keeps recent and undelivered ones, removes leftover temp files', async () => {
    const sut = new ResultStore(dir);
    await sut.load();
    await sut.add(doc('OLD', 'paid'), 'now');
    await sut.ack('OLD:paid');
    await sut.add(doc('RECENT', 'paid'), 'now');
    await sut.ack('RECENT:paid');
    await sut.add(doc('WAITING', 'paid'), 'now');
    const longAgo = new Date(Date.now() - KEEP_DELIVERED_MS - 60_000);
    await fs.utimes(sut.fileOf('OLD'), longAgo, longAgo);
    await fs.utimes(sut.fileOf('WAITING'), longAgo, longAgo);
    await fs.writeFile(path.join(dir, '.x.json.1.0.tmp'), '{"half');
    const bad: string[] = [];
    const again = new ResultStore(dir);
    await again.load((f) => void bad.push(f));
    expect([again.has('OLD'), again.has('RECENT'), again.has('WAITING')]).toEqual([false, true, true]);
    expect(bad).toEqual([]);
    expect((await fs.readdir(dir)).sort()).toEqual(
      [path.basename(sut.fileOf('RECENT')), path.basename(sut.fileOf('WAITING'))].sort(),
    );
  });

  it('reports an unreadable file and goes on', async () => {
    await fs.writeFile(path.join(dir, 'broken.json'), 'not json');
    const bad: string[] = [];
    const sut = new ResultStore(dir);
    await sut.load((f) => void bad.push(f));
    expect(bad).toEqual([path.join(dir, 'broken.json')]);
    expect(await sut.add(doc('X', 'paid'), 'now')).toBe(true);
  });
});
