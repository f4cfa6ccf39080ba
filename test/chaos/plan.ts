/**
 * What one seed means: the orders (source, amount, the codes the customer shows, whether the register
 * cancels while the customer approves) and the faults (what, where, when, for how long). Pure: the same
 * seed gives the same plan, which `describePlan` prints for a failure report.
 */
import { Rng } from './rng';
import type { PartName } from './world';

/** Code endings (DESIGN.md "Test payment codes"): what the simulator does with each. */
export const ENDINGS = {
  '00': 'succeeds at once',
  '05': 'declined (insufficient funds)',
  '10': 'customer confirming, then succeeds',
  '11': 'customer never confirms: the server cancels at its deadline',
  '20': 'provider times out; a query shows it succeeded',
  '21': 'provider server error; a query shows no trade',
  '30': 'invalid code',
} as const;
export type Ending = keyof typeof ENDINGS;
const FAILING: Ending[] = ['05', '11', '21', '30'];

export interface OrderPlan {
  orderId: string;
  source: 'http-hook' | 'file-drop';
  /** Minor units (fen). */
  value: number;
  /** ms after the chaos starts that the register captures it. */
  at: number;
  /** The unit whose clerk takes it first. */
  unit: 'T1' | 'T2';
  /** Each code the customer shows, in turn, while the earlier one failed. */
  codes: string[];
  /** The register cancels this many ms after the first scan (may be negative: before it). */
  cancelAfterScanMs?: number;
}

export type Fault =
  | { kind: 'udp'; at: number; host: string; loss: number; dup: number; forMs: number }
  | { kind: 'kill9'; at: number; part: PartName; downMs: number }
  | { kind: 'server-restart'; at: number; downMs: number }
  | { kind: 'server-cut'; at: number; forMs: number };

export interface Plan {
  seed: number;
  orders: OrderPlan[];
  faults: Fault[];
  /** How long orders keep coming and faults keep happening, ms. */
  windowMs: number;
}

export function code(ending: Ending, rng: Rng): string {
  const prefix = rng.pick(['28', '13']);
  let digits = '';
  for (let i = 0; i < 14; i++) digits += String(rng.int(0, 9));
  return `${prefix}${digits}${ending}`;
}

export function makePlan(seed: number, o: { orders: number; windowMs: number }): Plan {
  const rng = new Rng(seed);
  const orders: OrderPlan[] = [];
  for (let i = 0; i < o.orders; i++) {
    const first = rng.weighted<Ending>([
      ['00', 5],
      ['10', 2],
      ['20', 2],
      ['05', 1],
      ['11', 1],
      ['21', 1],
      ['30', 1],
    ]);
    const endings: Ending[] = [first];
    // After a failed code the customer shows another (most of the time) or the register gives up.
    if (FAILING.includes(first) && rng.chance(0.7)) endings.push(rng.pick<Ending>(['00', '10', '20']));
    const order: OrderPlan = {
      orderId: `C${seed.toString(36)}-${String(i + 1).padStart(3, '0')}`,
      source: rng.chance(0.25) ? 'file-drop' : 'http-hook',
      value: rng.int(1, 99_999),
      at: Math.floor((i / o.orders) * o.windowMs * 0.6) + rng.int(0, 500),
      unit: rng.pick(['T1', 'T2'] as const),
      codes: endings.map((e) => code(e, rng)),
    };
    if (rng.chance(0.2)) order.cancelAfterScanMs = rng.int(-300, 1500);
    orders.push(order);
  }

  const faults: Fault[] = [];
  const count = rng.int(2, 6);
  for (let i = 0; i < count; i++) {
    const at = rng.int(500, o.windowMs - 1000);
    const kind = rng.weighted<Fault['kind']>([
      ['udp', 3],
      ['kill9', 4],
      ['server-restart', 1],
      ['server-cut', 2],
    ]);
    if (kind === 'udp')
      faults.push({
        kind,
        at,
        host: rng.pick(['reg', 'u1', 'u2', 'srv']),
        loss: rng.pick([0, 10, 30, 50]),
        dup: rng.pick([0, 10, 30]),
        forMs: rng.int(1000, 8000),
      });
    else if (kind === 'kill9')
      faults.push({
        kind,
        at,
        part: rng.pick<PartName>(['plugin', 'T1', 'T2', 'server']),
        downMs: rng.int(0, 3000),
      });
    else if (kind === 'server-restart') faults.push({ kind, at, downMs: rng.int(0, 2000) });
    else faults.push({ kind, at, forMs: rng.int(1000, 6000) });
  }
  faults.sort((a, b) => a.at - b.at);
  return { seed, orders, faults, windowMs: o.windowMs };
}

export function describePlan(p: Plan): string {
  const lines = [
    `seed ${p.seed}: ${p.orders.length} orders, ${p.faults.length} faults over ${p.windowMs} ms`,
  ];
  for (const o of p.orders)
    lines.push(
      `  order ${o.orderId} ${o.source} ${o.value} fen at ${o.at} ms on ${o.unit}, codes ${o.codes
        .map((c) => `…${c.slice(-2)}`)
        .join(
          ' then ',
        )}${o.cancelAfterScanMs === undefined ? '' : `, register cancels ${o.cancelAfterScanMs} ms after the scan`}`,
    );
  for (const f of p.faults) lines.push(`  fault at ${f.at} ms: ${JSON.stringify(f)}`);
  return lines.join('\n');
}
