import { ManifestError, WriteBackError } from '../../protocol/errors';
import { OrderResult } from '../host-adapter';
import { FakeAdapter } from './fake.adapter';

const result = (status: OrderResult['status']): OrderResult => ({
  orderId: 'A-1',
  registerId: 'R1',
  status,
  amount: { value: 100, currency: 'CNY' },
  decidedAt: '2026-01-01T00:00:00.000Z',
});

describe(FakeAdapter.name, () => {
  it('pushes orders through onOrder and counts them taken only when it resolves', async () => {
    const sut = new FakeAdapter();
    let fail = true;
    await sut.start({
      onOrder: async () => {
        if (fail) throw new Error('journal down');
      },
      onReject: () => undefined,
    });
    await expect(sut.push({ orderId: 'A-1', amount: { value: 100, currency: 'CNY' } })).rejects.toThrow(
      'journal down',
    );
    fail = false;
    await sut.push({
      orderId: 'A-1',
      amount: { value: 100, currency: 'CNY' },
      dispatch: { mode: 'broadcast' },
    });
    expect(sut.offered).toHaveLength(2);
    expect(sut.taken).toEqual([
      {
        orderId: 'A-1',
        registerId: 'R1',
        amount: { value: 100, currency: 'CNY' },
        dispatch: { mode: 'broadcast' },
        source: 'fake',
      },
    ]);
  });

  it('refuses orders a real adapter would refuse', async () => {
    const sut = new FakeAdapter();
    await sut.start({ onOrder: async () => undefined, onReject: () => undefined });
    await expect(sut.push({ orderId: '', amount: { value: 1, currency: 'CNY' } })).rejects.toMatchObject({
      code: 'order.bad_id',
    });
    await expect(sut.push({ orderId: 'A', amount: { value: 0, currency: 'CNY' } })).rejects.toMatchObject({
      code: 'money.zero',
    });
  });

  it('fails probes and write-backs on request, then recovers', async () => {
    const sut = new FakeAdapter();
    sut.failProbe();
    await expect(sut.probe()).rejects.toThrow(ManifestError);
    await expect(sut.start({ onOrder: async () => undefined, onReject: () => undefined })).rejects.toThrow(
      ManifestError,
    );
    sut.fixProbe();
    await sut.probe();
    sut.failWriteBack(2);
    await expect(sut.writeBack(result('paid'))).rejects.toThrow(WriteBackError);
    await expect(sut.writeBack(result('paid'))).rejects.toThrow(WriteBackError);
    await sut.writeBack(result('paid'));
    expect(sut.writeBackCalls).toHaveLength(3);
    expect(sut.delivered).toHaveLength(1);
    expect(sut.statusOf('A-1')).toBe('paid');
  });

  it('never replaces a final result, like the real adapters', async () => {
    const sut = new FakeAdapter();
    await sut.writeBack(result('canceled'));
    await expect(sut.writeBack(result('paid'))).rejects.toMatchObject({ code: 'fake.conflicting_result' });
  });
});
