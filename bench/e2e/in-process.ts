/**
 * The one-process variant of bench/e2e/run.ts, kept for comparison: `npm run bench:e2e -- --in-process …`
 * (run.ts hands over to this file). Results go to bench/e2e/results/e2e-in-process-<minutes>min.json.
 *
 * The whole chain, end to end (issue 14): registers → plugin → LAN offer → unit pays → server → signed result
 * → plugin → write-back to the host, with its raw floor measured beside it in the same run.
 *
 * Everything runs in this one process on 127.0.0.0/8, as bench/capture/chain.ts does: the payment server
 * (createServerApp, SQLite in a scratch folder, simulator), `--registers` real plugins (createPluginApp) and
 * `--units` real units (createTerminalApp). A plugin serves exactly one register (AdapterHost refuses an
 * extra manifest that names another register, `setup.register_differs`), so each simulated register Rnn has
 * its own plugin Pnn, as a shop has one plugin beside each register. Each plugin runs manifests/http-hook.yaml
 * as its main manifest (the hook takes POSTs only there) and manifests/display-led8-hisense-vc110.yaml beside
 * it, on a socat pty pair per register (the register writes its far end; the plugin passes the bytes on to a
 * second pair whose far end is read and dropped: the customer display). Register Rnn dispatches unicast to
 * unit T((n-1) mod units + 1).
 *
 * Each register loops: one sale by the hook (POST /api/orders), the next on the display (led8 total, the
 * clock starting before the CR that completes it), and so on, one sale open at a time, starting a sale every
 * `--interval` ms (a paced load: 50 registers at 1 s is 50 orders/s offered). When the offer reaches its unit
 * (OfferInbox 'new'), the unit pays it with an immediate-success simulator code (18 digits ending 00,
 * docs/server-api.md) through TerminalService.pay, as its touch page's POST does. Write-back: for the hook,
 * when the register host's callback server receives the signed result; for the display (which cannot be told
 * a result: its writeBack is a no-op), when the plugin's call to the adapter's writeBack resolves.
 *
 * Floor, sampled in the same run between the sales (one every `--floor-every` ms): a sealed LAN round trip
 * (a LanEndpoint offer to another LanEndpoint and its ack, on their own loopback sockets with the store's
 * key) plus the server call alone (createPayment with a success code and the signed result, as a unit
 * does, over the unit's own ServerClient). The chain's ratios are to that floor.
 *
 * Memory: process.memoryUsage() every `--sample` s (RSS, heap used, external); the trend is a least-squares
 * slope over the run after the first minute (warm-up), with first- and last-minute means. Plugins, units and
 * the server share this process, so the figures are theirs together (see docs/BENCHMARKS.md).
 *
 *   npm run bench:e2e -- --in-process --minutes 1        (short run)
 *   npm run bench:e2e -- --in-process --minutes 10       (the full run; options: --registers 50 --units 5 --interval 1000
 *                                            --burst 20 (seconds with no pause, for orders/s at saturation)
 *                                            --floor-every 200 --sample 5)
 */
import {
  mkdirSync,
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { Agent, createServer, request, Server } from 'node:http';
import net from 'node:net';
import tty from 'node:tty';
import { randomBytes } from 'node:crypto';
import { execSync } from 'node:child_process';
import dgram from 'node:dgram';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import YAML from 'yaml';
import { SerialDisplayAdapter } from '../../src/adapters/serial-display/serial-display.adapter';
import {
  LanEndpoint,
  LanKeyring,
  lanKeyFromJson,
  UdpLanTransport,
  type HeldOffer,
  type OfferInbox,
} from '../../src/lan';
import type { ServerClient } from '../../src/device/server-client';
import { createPluginApp, RunningPlugin } from '../../src/plugin/plugin-app';
import { createServerApp, RunningServer } from '../../src/server/server-app';
import { createTerminalApp, RunningTerminal } from '../../src/terminal/terminal-app';
import type { TerminalStore } from '../../src/terminal/terminal-store';
import { freeUdpPort } from '../../test/support/child-process';
import { PtyPair } from '../../test/support/pty';
import { REPO_ROOT } from '../../test/support/node-runner';
import { pickLanPorts } from '../../test/terminal/support/harness';
import {
  Cleanups,
  commandLine,
  isLoopback,
  numberOption,
  startCpuProfile,
  stopOnSignalsOrAfter,
  summarize,
  watchGc,
  writeJson,
} from '../support/bench-kit';

const HOST = '127.0.0.1';
const BROADCAST = '127.255.255.255';
const ADMIN = 'bench-e2e-admin-token';
const HOOK_SECRET = 'bench-e2e-hook-secret-0123456789';
const SAMPLE_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;
const ESC = 0x1b;
const CR = Buffer.from([0x0d]);
const CLR = Buffer.from([0x0c]);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const yuan = (fen: number) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
const ms = (from: bigint, to: bigint) => Number(to - from) / 1e6;
const now = () => process.hrtime.bigint();
/** An Alipay-like simulator code that succeeds at once (last two digits 00). */
const successCode = () => `28${String(randomBytes(7).readUIntBE(0, 6) % 1e14).padStart(14, '0')}00`;

function led8(lamp: number, text: string): Buffer {
  return Buffer.concat([Buffer.from([ESC, 0x73, lamp, ESC, 0x51, 0x41]), Buffer.from(text, 'latin1')]);
}

function manifestCopy(dir: string, file: string, change: (m: Record<string, unknown>) => void) {
  const m = YAML.parse(readFileSync(path.join(REPO_ROOT, 'manifests', file), 'utf8')) as Record<
    string,
    unknown
  >;
  change(m);
  const to = path.join(dir, file);
  writeFileSync(to, YAML.stringify(m));
  return to;
}

function call(
  agent: Agent,
  base: URL,
  method: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path: urlPath,
        headers: {
          ...headers,
          ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${urlPath}: no answer`)));
    req.end(data);
  });
}

/** Promises keyed by a string, resolved with the moment the event happened; late arrivals are kept briefly. */
class Waits {
  private readonly waiting = new Map<string, (at: bigint) => void>();
  private readonly early = new Map<string, bigint>();
  wait(key: string): Promise<bigint | undefined> {
    const got = this.early.get(key);
    if (got !== undefined) {
      this.early.delete(key);
      return Promise.resolve(got);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        resolve(undefined);
      }, SAMPLE_TIMEOUT_MS);
      this.waiting.set(key, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
  hit(key: string, at: bigint): void {
    const w = this.waiting.get(key);
    if (w) {
      this.waiting.delete(key);
      w(at);
    } else if (this.early.size < 10_000) this.early.set(key, at);
  }
  forget(key: string): void {
    this.early.delete(key);
  }
}

/** The LAN counters that say whether datagrams were lost or retried. */
function lanBrief(st: LanEndpoint['stats']) {
  const dropped = Object.values(st.dropped).reduce((a, b) => a + b, 0);
  return {
    messagesSent: st.messagesSent,
    retransmissions: st.retransmissions,
    datagramsIn: st.datagramsIn,
    datagramsOut: st.datagramsOut,
    duplicates: st.duplicates,
    expired: st.expired,
    dropped,
  };
}

/** Least-squares slope of y over x (per unit of x). */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return num / den;
}

const uptime = () => {
  try {
    return execSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `loadavg ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`;
  }
};

interface Sample {
  kind: 'http' | 'display';
  offerMs: number;
  writeBackMs: number;
  /** Capture → the plugin journaled the order (its first `change` event for the order id). */
  journaledMs?: number;
  /** Capture → the unit's pay() answered (the payment decided at the unit). */
  paidMs: number;
  at: number;
}

const cleanups = new Cleanups();

async function main(): Promise<void> {
  const minutes = numberOption('minutes', 1);
  const registers = numberOption('registers', 50);
  const units = numberOption('units', 5);
  const intervalMs = numberOption('interval', 1000);
  const burstS = process.argv.includes('--no-burst') ? 0 : numberOption('burst', 20);
  const floorEveryMs = numberOption('floor-every', 200);
  const sampleS = numberOption('sample', 5);
  const limitMs = (minutes * 60 + burstS + 180) * 1000;
  const debug = (m: string) => process.env.BENCH_DEBUG && console.error(m);
  stopOnSignalsOrAfter(limitMs, () => cleanups.runAll(), 'the shop and its scratch folder');
  const loadAtStart = uptime();
  console.error(`start: ${loadAtStart}`);

  const tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-bench-e2e-'));
  cleanups.add(async () => rmSync(tmp, { recursive: true, force: true }));
  const lan = await pickLanPorts();
  for (const a of [HOST, BROADCAST]) if (!isLoopback(a)) throw new Error(`${a} is not loopback`);

  const server: RunningServer = await createServerApp({
    port: 0,
    host: HOST,
    db: { kind: 'sqlite', path: path.join(tmp, 'server.db') },
    adminToken: ADMIN,
    simSpeed: 50,
    logger: false,
  });
  cleanups.add(() => server.close());
  const serverUrl = new URL(server.url);
  if (!isLoopback(serverUrl.hostname)) throw new Error(`the server is on ${serverUrl.hostname}`);
  const adminAgent = new Agent({ keepAlive: true });
  const admin = async (p: string, body: unknown) => {
    const a = await call(adminAgent, serverUrl, 'POST', p, body, { authorization: `Bearer ${ADMIN}` });
    if (a.status !== 201) throw new Error(`${p}: HTTP ${a.status} ${a.body}`);
    return JSON.parse(a.body) as Record<string, string>;
  };
  const storeId = (await admin('/v1/stores', { name: 'Bench shop' })).id;
  const code = async (role: 'plugin' | 'terminal') =>
    (await admin(`/v1/stores/${storeId}/registration-codes`, { role })).code;

  // Write-backs: the hook host's callback (one server for every register), the display adapter's writeBack.
  const writeBacks = new Waits();
  const hook: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      const at = now();
      try {
        const b = JSON.parse(text) as { orderId?: string; result?: { orderId?: string } };
        const id = b.orderId ?? b.result?.orderId;
        if (id) writeBacks.hit(id, at);
      } catch {
        // not JSON: not counted
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => hook.listen(0, HOST, () => r()));
  cleanups.add(() => new Promise<void>((r) => hook.close(() => r())));
  const proto = SerialDisplayAdapter.prototype as unknown as Record<
    string,
    (...a: unknown[]) => Promise<unknown>
  >;
  const displayWriteBack = proto['writeBack'];
  proto['writeBack'] = async function (this: unknown, ...a: unknown[]) {
    const r = await displayWriteBack.apply(this, a);
    writeBacks.hit((a[0] as { orderId: string }).orderId, now());
    return r;
  };

  const lanConfig = { interfaceAddress: HOST, broadcastAddress: BROADCAST, ...lan };
  const unitIds = Array.from({ length: units }, (_, i) => `T${i + 1}`);
  const started0 = Date.now();
  const unitApps: RunningTerminal[] = [];
  for (const id of unitIds) {
    const u = await createTerminalApp({
      id,
      serverUrl: server.url,
      registrationCode: await code('terminal'),
      port: 0,
      host: HOST,
      dataDir: path.join(tmp, id),
      lan: lanConfig,
      logger: false,
    });
    cleanups.add(() => u.close());
    unitApps.push(u);
    debug(`unit ${id} up`);
  }

  // Offers by register: one sale open per register at a time, so the register id names it.
  const offers = new Waits();
  const journaled = new Map<string, bigint>();
  const offerIds = new Map<string, string>();
  unitApps.forEach((u, i) => {
    const inbox = (u.service['o'] as { inbox: OfferInbox }).inbox;
    inbox.onChange((offer: HeldOffer, event) => {
      const at = now();
      if (event !== 'new') return;
      offerIds.set(offer.registerId, offer.orderId);
      offers.hit(offer.registerId, at);
      void i;
    });
  });

  interface Register {
    id: string;
    plugin: RunningPlugin;
    url: URL;
    agent: Agent;
    fd: number;
    unit: RunningTerminal;
  }
  // A plugin binds its LAN port on the wildcard address alone (UdpLanTransport: no SO_REUSEADDR on the
  // plugin's one socket), so one host holds one plugin per port: in a shop each register is its own PC.
  // Here each plugin gets its own port, and a relay on the shared plugin port copies every unit beacon to
  // each of them, as the shop LAN's broadcast reaches every register PC. Beacons carry the unit's own port
  // and address, so offers and claims then go straight between plugin and unit, not through the relay.
  const pluginPorts: number[] = [];
  for (let n = 1; n <= registers; n++) pluginPorts.push(await freeUdpPort());
  const relay = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => relay.bind(lan.pluginPort, '0.0.0.0', () => r()));
  relay.on('message', (msg) => {
    for (const port of pluginPorts) relay.send(msg, port, HOST);
  });
  cleanups.add(() => new Promise<void>((r) => relay.close(() => r())));
  const regs: Register[] = [];
  for (let n = 1; n <= registers; n++) {
    const id = `R${String(n).padStart(2, '0')}`;
    const unit = unitApps[(n - 1) % units];
    const unicast = { mode: 'unicast', terminal: unitIds[(n - 1) % units] };
    const registerLine = await PtyPair.open(tmp, `${id}reg`);
    cleanups.add(() => registerLine.stop());
    const displayLine = await PtyPair.open(tmp, `${id}disp`);
    cleanups.add(() => displayLine.stop());
    const displayFd = openSync(displayLine.far, 'r+');
    // A tty stream (libuv's non-blocking tty handle), not fs.createReadStream: a blocking fs read on a pty
    // holds one of libuv's four pool threads for good, and the fifth register's line would never open.
    const reader = new tty.ReadStream(displayFd);
    reader.on('error', () => undefined);
    reader.on('data', () => undefined);
    const fd = openSync(registerLine.far, 'r+');
    cleanups.add(async () => closeSync(fd));
    const dir = path.join(tmp, id);
    mkdirSync(dir);
    const hookManifest = manifestCopy(dir, 'http-hook.yaml', (m) => {
      m.register = id;
      m.writeBack = {
        callback: `http://${HOST}:${(hook.address() as net.AddressInfo).port}/payconnect/results/${id}`,
        secret: HOOK_SECRET,
        timeoutMs: 2000,
      };
      m.dispatch = unicast;
    });
    const displayManifest = manifestCopy(dir, 'display-led8-hisense-vc110.yaml', (m) => {
      m.register = id;
      const o = m.options as Record<string, unknown>;
      o.input = `serial:${registerLine.near}`;
      o.display = `serial:${displayLine.near}`;
      m.dispatch = unicast;
    });
    debug(`${id}: lines open, starting its plugin`);
    const plugin = await createPluginApp({
      manifestPath: hookManifest,
      alsoManifests: [displayManifest],
      id: `P${String(n).padStart(2, '0')}`,
      serverUrl: server.url,
      registrationCode: await code('plugin'),
      port: 0,
      host: HOST,
      dataDir: path.join(tmp, `P${n}`),
      lan: { ...lanConfig, pluginPort: pluginPorts[n - 1] },
      logger: false,
      watchManifest: false,
    });
    cleanups.add(() => plugin.close());
    plugin.service.on('change', (c: { kind: string; orderId?: string }) => {
      if (c.kind === 'order' && c.orderId && !journaled.has(c.orderId) && journaled.size < 100_000)
        journaled.set(c.orderId, now());
    });
    debug(`plugin of ${id} up`);
    regs.push({
      id,
      plugin,
      url: new URL(plugin.url),
      agent: new Agent({ keepAlive: true, maxSockets: 2 }),
      fd,
      unit,
    });
  }
  // Every plugin has heard its unit's beacon.
  for (const r of regs) {
    const want = unitIds[regs.indexOf(r) % units];
    for (let i = 0; ; i++) {
      const t = await call(r.agent, r.url, 'GET', '/api/terminals');
      if ((JSON.parse(t.body) as { id: string }[]).some((u) => u.id === want)) break;
      if (i > 400) throw new Error(`plugin of ${r.id} never heard unit ${want}`);
      await sleep(50);
    }
  }
  const setupS = (Date.now() - started0) / 1000;
  console.error(`shop up in ${setupS.toFixed(1)} s: ${registers} registers/plugins, ${units} units`);

  const failures: string[] = [];
  const fail = (s: string) => {
    if (failures.length < 200) failures.push(s);
  };
  let seq = 0;

  /** One sale at register r; resolves with its sample or undefined (the failure noted). */
  const sale = async (r: Register, kind: 'http' | 'display'): Promise<Sample | undefined> => {
    const i = ++seq;
    const fen = 100 + (i % 9000);
    offerIds.delete(r.id);
    let t0: bigint;
    let wait: Promise<bigint | undefined>;
    let posted: Promise<{ status: number; body: string }> | undefined;
    if (kind === 'display') {
      writeSync(r.fd, Buffer.concat([led8(1, yuan(fen)), CR, led8(2, yuan(fen))]));
      await sleep(5);
      wait = offers.wait(r.id);
      t0 = now();
      writeSync(r.fd, CR);
    } else {
      const orderId = `HH-${r.id}-${i}`;
      wait = offers.wait(r.id);
      t0 = now();
      posted = call(r.agent, r.url, 'POST', '/api/orders', { orderId, amount: yuan(fen) });
    }
    const offered = await wait;
    if (posted) {
      const a = await posted.catch((e: Error) => ({ status: 0, body: e.message }));
      if (a.status !== 202) fail(`${r.id} POST: HTTP ${a.status} ${a.body}`);
    }
    const orderId = offerIds.get(r.id);
    if (offered === undefined || !orderId) {
      fail(`${r.id} ${kind} sale ${i}: no offer within ${SAMPLE_TIMEOUT_MS} ms`);
      if (kind === 'display') writeSync(r.fd, CLR);
      return undefined;
    }
    const written = writeBacks.wait(orderId);
    try {
      const paid = await r.unit.service.pay(orderId, successCode());
      if (paid.attempt.status !== 'succeeded') fail(`${orderId}: payment ${paid.attempt.status}`);
    } catch (e) {
      fail(`${orderId}: pay: ${(e as Error).message}`);
    }
    const paidAt = now();
    const journaledAt = journaled.get(orderId);
    journaled.delete(orderId);
    const wb = await written;
    writeBacks.forget(orderId);
    if (kind === 'display') writeSync(r.fd, CLR); // the sale is over at the register
    if (wb === undefined) {
      fail(`${orderId}: no write-back within ${SAMPLE_TIMEOUT_MS} ms`);
      return undefined;
    }
    return {
      kind,
      offerMs: ms(t0, offered),
      writeBackMs: ms(t0, wb),
      ...(journaledAt !== undefined ? { journaledMs: ms(t0, journaledAt) } : {}),
      paidMs: ms(t0, paidAt),
      at: Date.now(),
    };
  };

  // The floor: a sealed LAN round trip on its own endpoints, plus the unit's server call alone.
  const key = lanKeyFromJson((unitApps[0].service['o'] as { store: TerminalStore }).store.lanKeys()[0], 'T1');
  const floorA = new LanEndpoint({
    deviceId: 'FA',
    keyring: new LanKeyring(key),
    transport: await UdpLanTransport.open({ bindAddress: HOST, port: 0 }),
  });
  const floorBTransport = await UdpLanTransport.open({ bindAddress: HOST, port: 0 });
  const floorB = new LanEndpoint({
    deviceId: 'FB',
    keyring: new LanKeyring(key),
    transport: floorBTransport,
  });
  floorB.onMessage(() => undefined);
  cleanups.add(async () => {
    await floorA.close?.();
    await floorB.close?.();
  });
  const floorTarget = {
    kind: 'unicast' as const,
    to: 'FB',
    address: HOST,
    port: floorBTransport.port,
  };
  const floorServer = (unitApps[0].service['o'] as unknown as { server: ServerClient }).server;
  let floorSeq = 0;
  const floorOnce = async () => {
    const n = ++floorSeq;
    const t0 = now();
    await floorA.send(
      'offer',
      {
        orderId: `FL-${n}`,
        registerId: 'RF',
        amount: { value: 100, currency: 'CNY' },
        mode: 'unicast',
        expiresAt: Date.now() + 600_000,
      },
      floorTarget,
      { deadlineMs: 5_000 },
    );
    const t1 = now();
    const p = await floorServer.createPayment(`floor-${process.pid}-${n}`, {
      orderId: `FL-${n}`,
      registerId: 'RF',
      amount: { value: 100, currency: 'CNY' },
      method: { type: 'wallet_code', code: successCode() },
    });
    await floorServer.signed(p.id);
    const t2 = now();
    return { lanMs: ms(t0, t1), serverMs: ms(t1, t2), totalMs: ms(t0, t2) };
  };
  debug('floor warm-up');
  // Warm-up of the floor and of each register.
  for (let i = 0; i < 20; i++) await floorOnce();
  await Promise.all(
    regs.map(async (r) => {
      await sale(r, 'http');
      await sale(r, 'display');
    }),
  );
  debug(`warm-up failures: ${JSON.stringify(failures.slice(0, 5))}`);
  failures.length = 0;

  const samples: Sample[] = [];
  const floor: { lanMs: number; serverMs: number; totalMs: number; at: number }[] = [];
  const memory: { s: number; rss: number; heapUsed: number; heapTotal: number; external: number }[] = [];
  const loads: string[] = [uptime()];
  const gc = watchGc();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const stopProfile = startCpuProfile('BENCH_E2E_CPU_PROFILE', 'e2e');
  const t0 = Date.now();
  const endAt = t0 + minutes * 60_000;
  let stop = false;
  const memTimer = setInterval(() => {
    const m = process.memoryUsage();
    memory.push({
      s: (Date.now() - t0) / 1000,
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
    });
    if (memory.length % Math.max(1, Math.round(60 / sampleS)) === 0) {
      loads.push(uptime());
      const last = samples.slice(-500);
      const s = summarize(last.map((x) => x.offerMs));
      console.error(
        `${((Date.now() - t0) / 60000).toFixed(1)} min: ${samples.length} sales, offer p99 (last 500) ${s.p99.toFixed(2)} ms, rss ${(m.rss / 2 ** 20).toFixed(0)} MB, heap ${(m.heapUsed / 2 ** 20).toFixed(0)} MB; ${loads[loads.length - 1]}`,
      );
    }
  }, sampleS * 1000);
  const floorLoop = (async () => {
    while (!stop) {
      try {
        floor.push({ ...(await floorOnce()), at: Date.now() });
      } catch (e) {
        fail(`floor: ${(e as Error).message}`);
      }
      await sleep(floorEveryMs);
    }
  })();
  const registerLoop = async (r: Register, k: number, until: () => boolean, pace: number, into: Sample[]) => {
    // Registers start spread over one interval so their sales do not all begin together.
    await sleep((k / regs.length) * pace);
    let kind: 'http' | 'display' = k % 2 ? 'display' : 'http';
    while (!until()) {
      const start = Date.now();
      const s = await sale(r, kind);
      if (s) into.push(s);
      kind = kind === 'http' ? 'display' : 'http';
      const rest = pace - (Date.now() - start);
      if (rest > 0) await sleep(rest);
    }
  };
  await Promise.all(regs.map((r, k) => registerLoop(r, k, () => Date.now() >= endAt, intervalMs, samples)));
  const paced = { seconds: (Date.now() - t0) / 1000 };
  stop = true;
  await floorLoop;
  clearInterval(memTimer);
  await stopProfile();
  loopDelay.disable();
  gc.stop();

  // Saturation: no pause between a register's sales, for orders/s.
  const burst: Sample[] = [];
  let burstSeconds = 0;
  if (burstS > 0) {
    const b0 = Date.now();
    await Promise.all(
      regs.map((r, k) => registerLoop(r, k, () => Date.now() >= b0 + burstS * 1000, 1, burst)),
    );
    burstSeconds = (Date.now() - b0) / 1000;
  }
  const loadAtEnd = uptime();

  const pick = (xs: Sample[], kind?: string) => (kind ? xs.filter((s) => s.kind === kind) : xs);
  const figs = (xs: number[]) => {
    const s = summarize(xs);
    return { n: s.n, p50: s.p50, p99: s.p99, max: s.max, mean: s.mean };
  };
  const chain = (xs: Sample[]) => ({
    captureToOfferMs: figs(xs.map((s) => s.offerMs)),
    captureToWriteBackMs: figs(xs.map((s) => s.writeBackMs)),
    stagesMs: {
      captureToJournaled: figs(xs.filter((s) => s.journaledMs !== undefined).map((s) => s.journaledMs!)),
      journaledToOffer: figs(
        xs.filter((s) => s.journaledMs !== undefined).map((s) => s.offerMs - s.journaledMs!),
      ),
      offerToPaidAtUnit: figs(xs.map((s) => s.paidMs - s.offerMs)),
      paidAtUnitToWriteBack: figs(xs.map((s) => s.writeBackMs - s.paidMs)),
    },
  });
  const floorFig = {
    lanRoundTripMs: figs(floor.map((f) => f.lanMs)),
    serverCallMs: figs(floor.map((f) => f.serverMs)),
    totalMs: figs(floor.map((f) => f.totalMs)),
  };
  const all = chain(samples);
  // Memory trend after the first minute (or the first fifth of a short run).
  const warm = Math.min(60, (minutes * 60) / 5);
  const mem = memory.filter((m) => m.s >= warm);
  const mb = (b: number) => b / 2 ** 20;
  const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const window = (from: number, to: number) => mem.filter((m) => m.s >= from && m.s < to);
  const lastS = mem.length ? mem[mem.length - 1].s : 0;
  const firstW = window(warm, warm + 60);
  const lastW = window(lastS - 60, lastS + 1);
  const trend = (f: (m: (typeof mem)[number]) => number) => ({
    slopeMBPerMin: slope(
      mem.map((m) => m.s / 60),
      mem.map((m) => mb(f(m))),
    ),
    firstMinuteMeanMB: mb(meanOf(firstW.map(f))),
    lastMinuteMeanMB: mb(meanOf(lastW.map(f))),
    minMB: mb(Math.min(...mem.map(f))),
    maxMB: mb(Math.max(...mem.map(f))),
  });
  const result = {
    command: commandLine(),
    at: new Date().toISOString(),
    node: process.version,
    load: { atStart: loadAtStart, duringEachMinute: loads, atEnd: loadAtEnd },
    setup: { registers, pluginsOnePerRegister: registers, units, intervalMs, setupSeconds: setupS },
    paced: {
      seconds: paced.seconds,
      sales: samples.length,
      ordersPerSecond: samples.length / paced.seconds,
      all,
      http: chain(pick(samples, 'http')),
      display: chain(pick(samples, 'display')),
    },
    burst: {
      seconds: burstSeconds,
      sales: burst.length,
      ordersPerSecond: burstSeconds ? burst.length / burstSeconds : 0,
      ...chain(burst),
    },
    floor: floorFig,
    ratios: {
      writeBackToFloor: {
        p50: all.captureToWriteBackMs.p50 / floorFig.totalMs.p50,
        p99: all.captureToWriteBackMs.p99 / floorFig.totalMs.p99,
      },
      offerToLanRoundTrip: {
        p50: all.captureToOfferMs.p50 / floorFig.lanRoundTripMs.p50,
        p99: all.captureToOfferMs.p99 / floorFig.lanRoundTripMs.p99,
      },
    },
    goals: {
      captureToOfferP99Under10Ms: all.captureToOfferMs.p99 < 10,
      chainUnder2xFloorP50: all.captureToWriteBackMs.p50 < 2 * floorFig.totalMs.p50,
      chainUnder2xFloorP99: all.captureToWriteBackMs.p99 < 2 * floorFig.totalMs.p99,
    },
    memory: {
      note: 'one process: the server, every plugin and every unit together',
      fromSecond: warm,
      samples: mem.length,
      rss: trend((m) => m.rss),
      heapUsed: trend((m) => m.heapUsed),
      external: trend((m) => m.external),
      series: memory.map((m) => ({
        s: Math.round(m.s),
        rssMB: +mb(m.rss).toFixed(1),
        heapMB: +mb(m.heapUsed).toFixed(1),
      })),
    },
    process: {
      gcPauses: gc.gc.count,
      gcMsPerSecond: gc.gc.ms / paced.seconds,
      eventLoopDelayMs: {
        p50: loopDelay.percentile(50) / 1e6,
        p99: loopDelay.percentile(99) / 1e6,
        max: loopDelay.max / 1e6,
      },
    },
    lan: {
      units: Object.fromEntries(unitApps.map((u, i) => [unitIds[i], lanBrief(u.service.lanStats())])),
      pluginsSummed: regs
        .map((r) => lanBrief((r.plugin.service['o'] as unknown as { endpoint: LanEndpoint }).endpoint.stats))
        .reduce(
          (a, b) => {
            for (const k of Object.keys(b) as (keyof typeof b)[]) a[k] = (a[k] ?? 0) + b[k];
            return a;
          },
          {} as Record<string, number>,
        ),
    },
    failures,
  };
  const { series, ...memShort } = result.memory;
  void series;
  console.log(JSON.stringify({ ...result, memory: memShort }, null, 2));
  const name = process.env.BENCH_E2E_NAME ?? `e2e-in-process-${minutes}min`;
  await writeJson(path.join(REPO_ROOT, 'bench', 'e2e', 'results', `${name}.json`), result);
  for (const r of regs) r.agent.destroy();
  adminAgent.destroy();
  await cleanups.runAll();
  process.exit(0);
}

main().catch(async (e) => {
  console.error(e);
  await cleanups.runAll();
  process.exit(1);
});
