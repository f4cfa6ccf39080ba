/**
 * One chaos run: build the shop (world.ts), play the seed's plan (plan.ts) — the register captures
 * orders, clerks scan the customers' codes, the register cancels some while the customer approves, and
 * the faults happen on schedule — then heal everything, let every order settle, and check the invariants
 * (invariants.ts) against what each part and the provider's ledger hold.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkInvariants, type Evidence, type InvariantReport } from './invariants';
import { makePlan, describePlan, type Fault, type OrderPlan, type Plan } from './plan';
import { sleep, World, type PartName } from './world';

export interface RunOptions {
  orders: number;
  windowMs: number;
  /** Every order must be paid or canceled this long after its capture. */
  orderDeadlineMs: number;
  simSpeed: number;
  /** The payconnect tree to run (world.ts WorldOptions.root); default this repository's dist/. */
  root?: string;
  /** Keep the run's folder (logs, databases) even when it passed. */
  keep?: boolean;
  log?: (line: string) => void;
}

export const DEFAULTS: RunOptions = { orders: 8, windowMs: 12_000, orderDeadlineMs: 120_000, simSpeed: 10 };

export interface OrderOutcome {
  orderId: string;
  source: OrderPlan['source'];
  capturedAt?: number;
  finalAt?: number;
  finalStatus?: string;
  notes: string[];
}

export interface SeedResult {
  seed: number;
  plan: Plan;
  ms: number;
  outcomes: OrderOutcome[];
  report?: InvariantReport;
  /** A failure of the harness itself (the shop never came up, …), not of an invariant. */
  error?: string;
  faultsDone: string[];
  dir: string;
}

const FINAL = new Set(['paid', 'canceled']);

interface PluginOrder {
  orderId: string;
  status: string;
  terminal: string | null;
  writeBack: string;
  receipt: { state: string } | null;
  payment: { id: string; status: string } | null;
}
interface UnitOffer {
  orderId: string;
  status: string;
  takenBy: string | null;
  payment: { status: string; paymentId: string | null } | null;
}

export async function runSeed(seed: number, opts: RunOptions = DEFAULTS): Promise<SeedResult> {
  const log = opts.log ?? (() => undefined);
  const plan = makePlan(seed, { orders: opts.orders, windowMs: opts.windowMs });
  const dir = mkdtempSync(path.join(tmpdir(), `pcc-${seed}-`));
  const world = new World({ simSpeed: opts.simSpeed, dir, root: opts.root });
  const t0 = Date.now();
  const outcomes = plan.orders.map<OrderOutcome>((o) => ({
    orderId: o.orderId,
    source: o.source,
    notes: [],
  }));
  const faultsDone: string[] = [];
  let result: SeedResult | undefined;
  try {
    await world.create();
    log(`seed ${seed}: shop up in ${Date.now() - t0} ms`);
    const start = Date.now();
    const faults = new FaultPlayer(world, start, faultsDone, log);
    const faultRuns = plan.faults.map((f) => faults.play(f));
    const clerks = plan.orders.map((o, i) => clerk(world, o, outcomes[i], start, opts, faults));
    await Promise.all(faultRuns);
    // Heal: the LAN clean, the server reachable, every part running.
    await world.clearUdpFaults();
    await world.cutServer(false);
    await faults.allUp();
    log(`seed ${seed}: faults over at ${Date.now() - start} ms; settling`);
    await Promise.all(clerks);
    const evidence = await collectEvidence(world, plan);
    const crashes = Object.values(world.parts).flatMap((p) => p.crashes);
    const starts = Object.values(world.parts).reduce((n, p) => n + p.starts, 0);
    const report = checkInvariants(plan, outcomes, evidence, opts.orderDeadlineMs, { crashes, starts });
    result = { seed, plan, ms: Date.now() - t0, outcomes, report, faultsDone, dir };
  } catch (e) {
    result = {
      seed,
      plan,
      ms: Date.now() - t0,
      outcomes,
      error: (e as Error).stack ?? String(e),
      faultsDone,
      dir,
    };
  }
  const failed = result.error !== undefined || (result.report?.violations.length ?? 0) > 0;
  if (failed) {
    log(describePlan(plan));
    for (const p of Object.values(world.parts)) log(`--- ${p.name} output ---\n${p.output().slice(-6000)}`);
  }
  await world.destroy(Boolean(opts.keep) || failed).catch((e) => log(`cleanup: ${(e as Error).message}`));
  return result;
}

/** Plays faults at their times; keeps each part's restarts in order and knows when all are up again. */
class FaultPlayer {
  private locks = new Map<PartName, Promise<void>>();
  private cuts = 0;
  private udpToken = new Map<string, number>();
  /** While a part is down on purpose, clerks know not to count its silence as a failure. */

  constructor(
    private readonly world: World,
    private readonly start: number,
    private readonly done: string[],
    private readonly log: (l: string) => void,
  ) {}

  private async at(ms: number): Promise<void> {
    const wait = this.start + ms - Date.now();
    if (wait > 0) await sleep(wait);
  }

  private note(f: string): void {
    const line = `+${Date.now() - this.start} ms ${f}`;
    this.done.push(line);
    this.log(`  ${line}`);
  }

  private withPart(part: PartName, fn: () => Promise<void>): Promise<void> {
    const next = (this.locks.get(part) ?? Promise.resolve()).then(fn, fn);
    this.locks.set(
      part,
      next.catch(() => undefined),
    );
    return next;
  }

  async play(f: Fault): Promise<void> {
    await this.at(f.at);
    const w = this.world;
    switch (f.kind) {
      case 'udp': {
        const token = (this.udpToken.get(f.host) ?? 0) + 1;
        this.udpToken.set(f.host, token);
        this.note(`udp on ${f.host}: ${f.loss}% loss, ${f.dup}% duplicated, for ${f.forMs} ms`);
        await w.setUdpFaults(f.host, f.loss, f.dup);
        await sleep(f.forMs);
        if (this.udpToken.get(f.host) === token) await w.setUdpFaults(f.host, 0, 0);
        return;
      }
      case 'server-cut': {
        this.cuts++;
        this.note(`server cut off the LAN for ${f.forMs} ms`);
        await w.cutServer(true);
        await sleep(f.forMs);
        if (--this.cuts === 0) await w.cutServer(false);
        return;
      }
      case 'kill9':
        return this.withPart(f.part, async () => {
          const p = w.parts[f.part];
          this.note(`kill -9 ${f.part}, down ${f.downMs} ms`);
          await p.kill9();
          await sleep(f.downMs);
          await p.start();
          await p.ready().catch((e: Error) => this.note(`not ready again: ${e.message}`));
          this.note(`${f.part} back`);
        });
      case 'server-restart':
        return this.withPart('server', async () => {
          const p = w.parts.server;
          this.note(`server graceful restart, down ${f.downMs} ms`);
          await p.stop();
          await sleep(f.downMs);
          await p.start();
          await p.ready().catch((e: Error) => this.note(`not ready again: ${e.message}`));
          this.note('server back');
        });
    }
  }

  async allUp(): Promise<void> {
    await Promise.all([...this.locks.values()]);
    for (const p of Object.values(this.world.parts)) {
      if (!p.alive) {
        this.note(`${p.name} found dead: restarted`);
        await p.start();
      }
      await p.ready();
    }
  }
}

/**
 * The register and the clerks for one order: capture it (POST to the hook or a dropped file, again until
 * the plugin has it), scan the customer's codes on a unit in turn while the previous failed, cancel at
 * the register when the plan says so or when the customer has no code left, and watch the plugin until
 * the order is paid or canceled or the deadline passes.
 */
async function clerk(
  world: World,
  o: OrderPlan,
  out: OrderOutcome,
  start: number,
  opts: RunOptions,
  faults: FaultPlayer,
): Promise<void> {
  void faults;
  const wait = start + o.at - Date.now();
  if (wait > 0) await sleep(wait);
  const amountText = `${Math.floor(o.value / 100)}.${String(o.value % 100).padStart(2, '0')}`;
  const note = (n: string): void => void out.notes.push(`+${Date.now() - start} ${n}`);
  // Capture: the host retries until the plugin has the order (it may be down).
  const captureDeadline = Date.now() + opts.orderDeadlineMs;
  if (o.source === 'file-drop') {
    world.dropOrderFile(o.orderId, amountText);
    out.capturedAt = Date.now();
  }
  while (out.capturedAt === undefined && Date.now() < captureDeadline) {
    try {
      const r = await world.api('plugin', 'POST', '/api/orders', {
        body: { orderId: o.orderId, amount: amountText, currency: 'CNY' },
        timeoutMs: 3000,
      });
      if (r.status === 202 || r.status === 200) out.capturedAt = Date.now();
      else note(`post answered ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    } catch {
      // plugin down: the register tries again
    }
    if (out.capturedAt === undefined) await sleep(300);
  }
  if (out.capturedAt === undefined) {
    note('never captured');
    return;
  }
  const deadline = out.capturedAt + opts.orderDeadlineMs;

  let unit: 'T1' | 'T2' = o.unit;
  let codeIndex = 0;
  let scannedAt: number | undefined;
  let cancelDone = o.cancelAfterScanMs === undefined;
  let givingUp = false;
  let lastAttemptSeen: string | undefined;
  let noOfferSince = Date.now();
  while (Date.now() < deadline) {
    const order = await world
      .api<PluginOrder>('plugin', 'GET', `/api/orders/${encodeURIComponent(o.orderId)}`, { timeoutMs: 3000 })
      .then((r) => (r.status === 200 ? r.body : undefined))
      .catch(() => undefined);
    if (order && FINAL.has(order.status)) {
      out.finalAt = Date.now();
      out.finalStatus = order.status;
      return;
    }
    // The register's cancel: planned (racing the customer's approval) or because the customer gave up.
    const cancelDue =
      (!cancelDone && scannedAt !== undefined && Date.now() >= scannedAt + (o.cancelAfterScanMs ?? 0)) ||
      givingUp;
    if (cancelDue) {
      const r = await world
        .api('plugin', 'POST', `/api/orders/${encodeURIComponent(o.orderId)}/cancel`, { timeoutMs: 5000 })
        .catch((e: Error) => ({ status: 0, body: e.message }));
      note(`register cancel: ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
      // 409 order_paid: the charge stands, nothing more to cancel. 503: try again (the register would).
      if (r.status === 200 || r.status === 409) cancelDone = true;
      if (r.status === 200 || r.status === 409) givingUp = false;
      await sleep(300);
      continue;
    }
    if (order?.status === 'failed' && codeIndex >= o.codes.length) givingUp = true;

    const offers = await world
      .api<UnitOffer[]>(unit, 'GET', '/api/offers', { timeoutMs: 3000 })
      .then((r) => (r.status === 200 ? r.body : undefined))
      .catch(() => undefined);
    const offer = offers?.find((x) => x.orderId === o.orderId);
    if (!offer) {
      // Not (yet) offered here: after a while, the other unit's clerk looks.
      if (Date.now() - noOfferSince > 15_000) {
        unit = unit === 'T1' ? 'T2' : 'T1';
        noOfferSince = Date.now();
        note(`no offer yet: trying ${unit}`);
      }
      await sleep(250);
      continue;
    }
    noOfferSince = Date.now();
    if (offer.status === 'taken' && offer.takenBy && offer.takenBy !== unit) {
      unit = offer.takenBy as 'T1' | 'T2';
      note(`taken by ${unit}: its clerk carries on`);
      continue;
    }
    if (offer.status !== 'open' && offer.status !== 'claimed') {
      await sleep(300);
      continue;
    }
    const p = offer.payment;
    // The attempt this clerk last saw is over and failed: the customer shows the next code, if any.
    if (p && (p.status === 'failed' || p.status === 'canceled')) {
      const id = `${p.paymentId}:${p.status}`;
      if (id !== lastAttemptSeen) {
        lastAttemptSeen = id;
        codeIndex++;
        note(`attempt ${p.paymentId ?? '(no payment)'} ${p.status}`);
      }
    }
    if (p && (p.status === 'paying' || p.status === 'pending' || p.status === 'succeeded')) {
      await sleep(300);
      continue;
    }
    if (codeIndex >= o.codes.length) {
      if (!givingUp && order?.status !== 'paid') givingUp = true;
      await sleep(200);
      continue;
    }
    // Scan. The answer may take up to 30 s (pending); a short wait, then the loop watches.
    const codeNow = o.codes[codeIndex];
    scannedAt ??= Date.now();
    note(`scan …${codeNow.slice(-2)} on ${unit}`);
    const r = await world
      .api<{ status?: string; error?: { code: string } }>(
        unit,
        'POST',
        `/api/offers/${encodeURIComponent(o.orderId)}/pay`,
        { body: { paymentCode: codeNow }, timeoutMs: 1500 },
      )
      .catch((e: Error) => ({ status: 0, body: { error: { code: e.message } } }));
    note(`pay answered ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
    if (r.status === 409 && r.body?.error?.code === 'taken') unit = unit === 'T1' ? 'T2' : 'T1';
    await sleep(200);
  }
  note('deadline passed');
}

/** What every part holds once the run has settled. */
async function collectEvidence(world: World, plan: Plan): Promise<Evidence> {
  // Let write-backs and receipts drain: until no final order has work due and nothing changes for a while.
  let stableSince = Date.now();
  let last = '';
  const until = Date.now() + 60_000;
  let orders: PluginOrder[] = [];
  while (Date.now() < until) {
    orders = await world
      .api<PluginOrder[]>('plugin', 'GET', '/api/orders', { timeoutMs: 5000 })
      .then((r) => r.body)
      .catch(() => []);
    const snapshot =
      JSON.stringify(orders.map((o) => [o.orderId, o.status, o.writeBack, o.receipt?.state])) +
      world.hook.deliveries.length;
    const due = orders.some((o) => o.writeBack === 'due' || o.receipt?.state === 'due');
    if (snapshot !== last) {
      last = snapshot;
      stableSince = Date.now();
    } else if (!due && Date.now() - stableSince > 2000) break;
    await sleep(250);
  }
  const { readServer } = await import('./ledger');
  const server = readServer(
    world.serverDb,
    plan.orders.map((o) => o.orderId),
  );
  const { readReceipts, readOutbox } = await import('./ledger');
  return {
    pluginOrders: orders,
    deliveries: world.hook.deliveries,
    ...readReceipts(
      [world.printerFile, world.dropPrinterFile],
      plan.orders.map((o) => o.orderId),
    ),
    outbox: readOutbox(world.outbox),
    ...server,
  };
}
