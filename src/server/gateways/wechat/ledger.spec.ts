/**
 * The gateway ledger's durability: every change is a line, the last line of a key wins, and a torn last
 * line (a crash mid-write) is skipped without swallowing the next record.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayTrade, WechatLedger } from './ledger';

const trade = (no: string, state: GatewayTrade['state']): GatewayTrade => ({
  mchId: '1900000001',
  appId: 'wx1',
  outTradeNo: no,
  transactionId: '4200',
  amount: 100,
  state,
  api: 'v2',
  createdAt: 1,
  refunds: [],
});

describe(WechatLedger.name, () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'wx-ledger-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reopens with the latest record of every trade and the codes seen', () => {
    const file = join(dir, 'ledger.jsonl');
    const a = new WechatLedger(file);
    a.put(trade('pay_1', 'USERPAYING'));
    a.put(trade('pay_1', 'SUCCESS'));
    a.useCode('digest');
    a.close();
    const b = new WechatLedger(file);
    expect(b.get('1900000001', 'pay_1')?.state).toBe('SUCCESS');
    expect(b.codeSeen('digest')).toBe(true);
    b.close();
  });

  it('skips a torn last line and keeps the records written after it', () => {
    const file = join(dir, 'ledger.jsonl');
    const a = new WechatLedger(file);
    a.put(trade('pay_1', 'SUCCESS'));
    a.close();
    appendFileSync(file, '{"t":{"mchId":"19000');
    const b = new WechatLedger(file);
    b.put(trade('pay_2', 'SUCCESS'));
    b.close();
    const c = new WechatLedger(file);
    expect(
      c
        .all()
        .map((t) => t.outTradeNo)
        .sort(),
    ).toEqual(['pay_1', 'pay_2']);
    c.close();
  });
});
