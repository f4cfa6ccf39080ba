/**
 * The chaos harness (test/chaos, `npm run chaos`) on a short fixed set of seeds: each builds a whole shop
 * — plugin with the http-hook and file-drop adapters, units T1 and T2, the payment server, every one a
 * real process from dist/ on a LAN of network namespaces — plays the seed's orders and faults, and checks
 * every invariant (test/chaos/invariants.ts). A failure names the seed; `npm run chaos -- --seed S`
 * replays it with the parts' output.
 *
 * The seeds are chosen so that together they inject each kind of fault (see the plan each one prints
 * with --seed): kill -9 of the plugin, a unit and the server, a graceful server restart, the server cut
 * off the LAN, UDP loss and duplication, a register cancel racing the customer's approval, and the
 * simulator's timeout and unknown-outcome codes.
 */
import { checkInvariants, INVARIANTS, type Evidence } from '../chaos/invariants';
import { makePlan, type Plan } from '../chaos/plan';
import type { OrderOutcome } from '../chaos/run-seed';
import { DEFAULTS, runSeed } from '../chaos/run-seed';
import { systemPrerequisites } from '../support/prerequisites';

const sys = systemPrerequisites(['root', 'ip', 'nft', 'netns', 'socat']);

/**
 * Fixed seeds for CI; together they cover every fault kind (checked below, from their plans). 14 and 15
 * are two that found bugs (docs/BENCHMARKS.md, "Chaos"): 14, the register told "canceled" and then "paid"
 * (a unit's charge reached the server after the register's cancel); 15, orders left "paying" for good
 * after a unit was killed while its charge could not reach the server. They run at the same time, each
 * its own shop in its own namespaces, as `npm run chaos -- --parallel` does.
 */
export const CI_SEEDS = [10, 14, 15, 20, 33];
const OPTIONS = { ...DEFAULTS };

/**
 * The checker itself, on made-up evidence: a run that kept every promise passes, and each way of breaking
 * one is named (so a green chaos run means the checks looked, not that they could not see).
 */
describe('chaos invariants checker', () => {
  const plan: Plan = {
    seed: 0,
    windowMs: 1000,
    faults: [],
    orders: [
      { orderId: 'A', source: 'http-hook', value: 100, at: 0, unit: 'T1', codes: ['280000000000000000'] },
      { orderId: 'B', source: 'http-hook', value: 200, at: 0, unit: 'T2', codes: ['280000000000000005'] },
      { orderId: 'F', source: 'file-drop', value: 300, at: 0, unit: 'T1', codes: ['280000000000000000'] },
    ],
  };
  const outcomes = (): OrderOutcome[] =>
    plan.orders.map((o) => ({
      orderId: o.orderId,
      source: o.source,
      capturedAt: 0,
      finalAt: 1000,
      notes: [],
    }));
  const delivery = (orderId: string, status: string) => ({
    orderId,
    status,
    deliveryId: `${orderId}:${status}`,
    verified: true,
    at: 0,
  });
  const good = (): Evidence => ({
    pluginOrders: [
      { orderId: 'A', status: 'paid', writeBack: 'done' },
      { orderId: 'B', status: 'canceled', writeBack: 'done' },
      { orderId: 'F', status: 'paid', writeBack: 'done' },
    ],
    deliveries: [delivery('A', 'paid'), delivery('A', 'paid'), delivery('B', 'canceled')],
    receipts: { A: 1, B: 0, F: 1 },
    copies: { A: 0, B: 0, F: 0 },
    outbox: { F: 'paid' },
    payments: [
      { id: 'pA', orderId: 'A', status: 'succeeded', reversed: 0 },
      { id: 'pB', orderId: 'B', status: 'failed', reversed: 0 },
      { id: 'pF', orderId: 'F', status: 'succeeded', reversed: 0 },
    ],
    trades: [
      { outTradeNo: 'pA', state: 'succeeded', chargeCalls: 2, scenario: 'alipay:00' },
      { outTradeNo: 'pB', state: 'failed', chargeCalls: 1, scenario: 'alipay:05' },
      { outTradeNo: 'pF', state: 'succeeded', chargeCalls: 1, scenario: 'alipay:00' },
    ],
  });
  const broken = (ev: Evidence, out = outcomes()) =>
    checkInvariants(plan, out, ev, 5000).violations.map((v) => `${v.invariant} ${v.orderId}`);

  it('passes a run that kept every promise (a repeated delivery of one id is harmless)', () => {
    const r = checkInvariants(plan, outcomes(), good(), 5000);
    expect(r.violations).toEqual([]);
    expect(r.stats).toMatchObject({ paid: 2, canceled: 1, redeliveries: 1 });
  });

  it('names each broken promise', () => {
    const undecided = good();
    undecided.pluginOrders[0].status = 'paying';
    expect(broken(undecided)).toContain('final A');
    const late = outcomes();
    late[0].finalAt = 9000;
    expect(broken(good(), late)).toEqual(['final A']);
    const twice = good();
    twice.payments.push({ id: 'pA2', orderId: 'A', status: 'canceled', reversed: 0 });
    twice.trades.push({ outTradeNo: 'pA2', state: 'succeeded', chargeCalls: 1, scenario: 'alipay:00' });
    expect(broken(twice)).toContain('charged-once A');
    const kept = good();
    kept.trades[1].state = 'succeeded';
    expect(broken(kept)).toContain('ledger-agrees B');
    const toldTwice = good();
    toldTwice.deliveries.push(delivery('A', 'failed'));
    expect(broken(toldTwice)).toEqual(expect.arrayContaining(['written-back-once A', 'paid-shown-failed A']));
    const fileWrong = good();
    fileWrong.outbox.F = 'canceled';
    expect(broken(fileWrong)).toEqual(expect.arrayContaining(['written-back-once F', 'paid-shown-failed F']));
    const twoReceipts = good();
    twoReceipts.receipts.A = 2;
    expect(broken(twoReceipts)).toEqual(['printed-once A']);
    const noReceipt = good();
    noReceipt.receipts.F = 0;
    expect(broken(noReceipt)).toEqual(['printed-once F']);
    // A marked copy is allowed only when the plugin was killed (it may have died mid-print), one per kill.
    const copied = good();
    copied.receipts.A = 2;
    copied.copies.A = 1;
    expect(broken(copied)).toEqual(['printed-once A']);
    const killed: Plan = { ...plan, faults: [{ kind: 'kill9', at: 500, part: 'plugin', downMs: 100 }] };
    const brokenIn = (p: Plan, ev: Evidence) =>
      checkInvariants(p, outcomes(), ev, 5000).violations.map((v) => `${v.invariant} ${v.orderId}`);
    expect(brokenIn(killed, copied)).toEqual([]);
    expect(checkInvariants(killed, outcomes(), copied, 5000).stats.copies).toBe(1);
    const onlyCopy = good();
    onlyCopy.copies.A = 1;
    expect(brokenIn(killed, onlyCopy)).toEqual([]);
    const twoOriginals = good();
    twoOriginals.receipts.A = 3;
    twoOriginals.copies.A = 1;
    expect(brokenIn(killed, twoOriginals)).toEqual(['printed-once A']);
    const twoCopies = good();
    twoCopies.receipts.A = 3;
    twoCopies.copies.A = 2;
    expect(brokenIn(killed, twoCopies)).toEqual(['printed-once A']);
    const canceledCopy = good();
    canceledCopy.receipts.B = 1;
    canceledCopy.copies.B = 1;
    expect(brokenIn(killed, canceledCopy)).toEqual(
      expect.arrayContaining(['printed-once B', 'not-paid-shown-paid B']),
    );
    const shownPaid = good();
    shownPaid.deliveries.push(delivery('B', 'paid'));
    expect(broken(shownPaid)).toEqual(expect.arrayContaining(['not-paid-shown-paid B']));
    const forged = good();
    forged.deliveries[0].verified = false;
    expect(broken(forged)).toEqual(['written-back-once A']);
  });
});

sys.describe('chaos: the whole chain under injected faults', () => {
  it('the CI seeds inject every kind of fault between them', () => {
    const plans = CI_SEEDS.map((s) => makePlan(s, OPTIONS));
    const kinds = new Set(
      plans.flatMap((p) => p.faults.map((f) => (f.kind === 'kill9' ? `kill9 ${f.part}` : f.kind))),
    );
    const codes = new Set(plans.flatMap((p) => p.orders.flatMap((o) => o.codes.map((c) => c.slice(-2)))));
    expect([...kinds].sort()).toEqual(
      expect.arrayContaining(['kill9 plugin', 'kill9 server', 'server-cut', 'udp', 'server-restart']),
    );
    expect([...kinds].some((k) => k === 'kill9 T1' || k === 'kill9 T2')).toBe(true);
    expect(plans.some((p) => p.orders.some((o) => o.cancelAfterScanMs !== undefined))).toBe(true);
    expect([...codes]).toEqual(expect.arrayContaining(['00', '20']));
    expect(plans.some((p) => p.orders.some((o) => o.source === 'file-drop'))).toBe(true);
  });

  it.concurrent.each(CI_SEEDS)(
    'seed %i: every invariant holds',
    async (seed) => {
      const lines: string[] = [];
      const r = await runSeed(seed, { ...OPTIONS, log: (l) => lines.push(l) });
      if (r.error) throw new Error(`seed ${seed}: the harness failed: ${r.error}\n${lines.join('\n')}`);
      const report = r.report!;
      const broken = report.violations.map((v) => `${v.invariant} ${v.orderId}: ${v.detail}`);
      if (broken.length)
        throw new Error(
          `seed ${seed} (replay: npm run chaos -- --seed ${seed} --orders ${OPTIONS.orders} --window ${OPTIONS.windowMs}):\n` +
            `${broken.join('\n')}\n${lines.join('\n')}`,
        );
      for (const i of INVARIANTS.filter((x) => x !== 'parts-stay-up'))
        expect(report.checked[i]).toBe(OPTIONS.orders);
    },
    150_000,
  );
});
