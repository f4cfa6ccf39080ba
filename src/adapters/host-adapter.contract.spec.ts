/**
 * The HostAdapter contract as one test suite, run against the fake and every real adapter (as
 * node-serialport runs one suite against its real and mock bindings), so the plugin can rely on the
 * obligations in host-adapter.ts whichever adapter a manifest names: file-drop on a real temp folder,
 * http-hook against a real callback server on 127.0.0.1, serial-display between socat pseudo-terminal pairs
 * (skipped without socat on a developer's machine, a failure under CI=true). Each harness plays the host: it records orders
 * the host's way (a dropped file, a POST) and reports what the host has been told, the way that host
 * would see it (a result file appearing under its name, a callback with a new delivery id).
 */
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { AddressInfo } from 'node:net';
import * as iconv from 'iconv-lite';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeClock, SystemClock } from '../protocol/clock';
import { FakeAdapter } from './fake/fake.adapter';
import { FileDropAdapter } from './file-drop/file-drop.adapter';
import { orderFileStem } from './file-drop/file-names';
import { CapturedOrder, HostAdapter, OrderResult, RejectedInput } from './host-adapter';
import { FakeHidBinding } from './hid/hid-binding';
import { createHidAdapter, HidAdapterManifest } from './hid/hid.adapter';
import { HttpHookAdapter } from './http-hook/http-hook.adapter';
import { PrinterTapAdapter } from './printer-tap/printer-tap.adapter';
import { parseManifest } from './manifest';
import { createAdapter } from './registry';
import { SerialDisplayAdapter } from './serial-display/serial-display.adapter';
import { systemPrerequisites } from '../../test/support/prerequisites';
import { FarEnd, PtyPair } from '../../test/support/pty';
import { HookClient } from '../../test/support/hook-client';
import koffi from 'koffi';
import { parseAmount } from '../protocol/money';
import { HostSdkAdapter } from './host-sdk/host-sdk.adapter';
import { FAKE_SDK_SO, FakeRegister, makeSdk } from '../../test/native/support/sdk-build';
import { nativeGate } from '../../test/native/support/native-build';
import { requireSystem } from '../../test/support/prerequisites';

interface ContractHarness {
  adapter: HostAdapter;
  /** The host records an order; resolves when the adapter has had its chance to take it. */
  hostRecords(order: { orderId: string; amount: string }): Promise<void>;
  /** The host produces input that is not an order. */
  hostSendsGarbage(): Promise<void>;
  /**
   * Every state the host has been told for the order, in order, each once per time it was told anew.
   * Absent for a capture-only adapter (a printer tap, a scanner), which has no way to tell the host.
   */
  hostSaw?(orderId: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

function result(orderId: string, status: OrderResult['status']): OrderResult {
  return {
    orderId,
    registerId: 'R1',
    status,
    amount: { value: 1250, currency: 'CNY' },
    decidedAt: '2026-01-01T00:00:00.000Z',
  };
}

function describeHostAdapterContract(name: string, makeHarness: () => Promise<ContractHarness>): void {
  describe(`HostAdapter contract: ${name}`, () => {
    let h: ContractHarness;
    let orders: CapturedOrder[];
    let rejects: RejectedInput[];
    const ctx = () => ({
      onOrder: async (o: CapturedOrder) => void orders.push(o),
      onReject: (r: RejectedInput) => void rejects.push(r),
    });

    beforeEach(async () => {
      orders = [];
      rejects = [];
      h = await makeHarness();
    });
    afterEach(async () => {
      await h.adapter.stop();
      await h.cleanup();
    });

    it('probes a working setup without taking orders', async () => {
      await h.adapter.probe();
      expect(orders).toEqual([]);
    });

    it('hands each order over once, in exact minor units', async () => {
      await h.adapter.start(ctx());
      await h.hostRecords({ orderId: 'C-1', amount: '12.50' });
      expect(orders).toEqual([
        expect.objectContaining({ orderId: 'C-1', amount: { value: 1250, currency: 'CNY' } }),
      ]);
    });

    it('reports input it cannot read and keeps going', async () => {
      await h.adapter.start(ctx());
      await h.hostSendsGarbage();
      expect(rejects).toHaveLength(1);
      expect(rejects[0].code).toEqual(expect.any(String));
      await h.hostRecords({ orderId: 'C-2', amount: '1.00' });
      expect(orders.map((o) => o.orderId)).toEqual(['C-2']);
    });

    it('refuses a second start', async () => {
      await h.adapter.start(ctx());
      await expect(h.adapter.start(ctx())).rejects.toThrow();
    });

    it('takes no orders after stop', async () => {
      await h.adapter.start(ctx());
      await h.adapter.stop();
      await h.hostRecords({ orderId: 'C-3', amount: '1.00' });
      expect(orders).toEqual([]);
    });

    it('tells the host each final state exactly once, however often it is called', async () => {
      await h.adapter.writeBack(result('C-4', 'failed'));
      await h.adapter.writeBack(result('C-4', 'failed'));
      await h.adapter.writeBack(result('C-4', 'paid'));
      await h.adapter.writeBack(result('C-4', 'paid'));
      // A capture-only adapter accepts every write-back (the plugin's work loop must not retry forever)
      // and has nothing to tell the host: its result shows on the status page and the unit.
      if (h.hostSaw) expect(await h.hostSaw('C-4')).toEqual(['failed', 'paid']);
    });
  });
}

describeHostAdapterContract('fake', async () => {
  const adapter = new FakeAdapter('R1');
  return {
    adapter,
    async hostRecords({ orderId, amount }) {
      const [major, minor = ''] = amount.split('.');
      const value = Number(major) * 100 + Number(minor.padEnd(2, '0'));
      await adapter.push({ orderId, amount: { value, currency: 'CNY' } }).catch(() => undefined);
    },
    async hostSendsGarbage() {
      adapter.pushGarbage({ subject: 'fake', code: 'fake.garbage', message: 'not an order' });
    },
    async hostSaw(orderId) {
      return adapter.delivered.filter((r) => r.orderId === orderId).map((r) => r.status);
    },
    async cleanup() {},
  };
});

describeHostAdapterContract('file-drop', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'payconnect-contract-'));
  await fs.mkdir(path.join(root, 'in'));
  await fs.mkdir(path.join(root, 'out'));
  const manifest = parseManifest(
    `id: c
name: c
adapter: file-drop
register: R1
options: { inbox: ./in, pattern: "*.json" }
parse: { orderId: "$.id", amount: "$.amount", currency: CNY }
writeBack: { outbox: ./out, format: json }
dispatch: { mode: broadcast }
`,
    'c.yaml',
  );
  const adapter = createAdapter(manifest, { baseDir: root, clock: new FakeClock() }) as FileDropAdapter;
  // The host watches its outbox: it notices a result each time a new file appears under the name.
  const seen = new Map<string, { ino: number; statuses: string[] }>();
  const observe = async (orderId: string): Promise<void> => {
    const file = path.join(root, 'out', `${orderFileStem(orderId)}.result.json`);
    const st = await fs.stat(file);
    const entry = seen.get(orderId) ?? { ino: -1, statuses: [] };
    if (st.ino !== entry.ino) entry.statuses.push(JSON.parse(await fs.readFile(file, 'utf8')).status);
    seen.set(orderId, { ino: st.ino, statuses: entry.statuses });
  };
  const writeBack = adapter.writeBack.bind(adapter);
  adapter.writeBack = async (r: OrderResult) => {
    await writeBack(r);
    await observe(r.orderId);
  };
  const poll = async () => {
    await adapter.pollOnce().catch(() => undefined);
    await adapter.pollOnce().catch(() => undefined);
  };
  let n = 0;
  const harness: ContractHarness = {
    adapter,
    async hostRecords({ orderId, amount }) {
      await fs.writeFile(path.join(root, 'in', `${n++}.json`), JSON.stringify({ id: orderId, amount }));
      await poll();
    },
    async hostSendsGarbage() {
      await fs.writeFile(path.join(root, 'in', `${n++}.json`), '\u0000\u0001 not json');
      await poll();
    },
    async hostSaw(orderId) {
      return seen.get(orderId)?.statuses ?? [];
    },
    cleanup: () => fs.rm(root, { recursive: true, force: true }),
  };
  return harness;
});

describeHostAdapterContract('http-hook', async () => {
  // The host's callback endpoint; like a careful host it acts once per delivery id.
  const deliveries: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      deliveries.push(String(req.headers['x-payconnect-delivery']));
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const manifest = parseManifest(
    `id: c
name: c
adapter: http-hook
register: R1
options: {}
parse: { currency: CNY }
writeBack: { callback: "http://127.0.0.1:${port}/results", secret: contract-test-secret }
dispatch: { mode: broadcast }
`,
    'c.yaml',
  );
  const adapter = createAdapter(manifest, { baseDir: '/', clock: new SystemClock() }) as HttpHookAdapter;
  return {
    adapter,
    async hostRecords({ orderId, amount }) {
      await adapter.accept({ orderId, amount }).catch(() => undefined);
    },
    async hostSendsGarbage() {
      await adapter.accept({ orderId: 'G', amount: 'twelve' }).catch(() => undefined);
    },
    async hostSaw(orderId) {
      const prefix = `${encodeURIComponent(orderId)}:`;
      const unique = [...new Set(deliveries.filter((d) => d.startsWith(prefix)))];
      return unique.map((d) => d.slice(prefix.length));
    },
    cleanup: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
});

describeHostAdapterContract('printer-tap', async () => {
  // A fixed port, so a job printed after stop goes where the tap listened and finds nobody taking it.
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  const manifest = parseManifest(
    `id: c
name: c
adapter: printer-tap
register: R1
options: { listen: "tcp://127.0.0.1:${port}", forward: none }
parse: { encoding: gb18030, currency: CNY }
writeBack: {}
dispatch: { mode: broadcast }
`,
    'c.yaml',
  );
  const adapter = createAdapter(manifest, {
    baseDir: os.tmpdir(),
    clock: new SystemClock(),
  }) as PrinterTapAdapter;
  /** Prints one job the way a register does (one connection, a cut, hang up); resolves once the tap read it. */
  const print = async (text: string) => {
    const jobsBefore = adapter.stats().jobs;
    let connected = false;
    const job = Buffer.concat([
      Buffer.from([0x1b, 0x40, 0x1c, 0x26]),
      iconv.encode(text, 'gb18030'),
      Buffer.from([0x1d, 0x56, 0x00]),
    ]);
    await new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        connected = true;
        socket.end(job);
      });
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
      socket.resume();
    });
    for (let i = 0; connected && i < 200 && adapter.stats().jobs === jobsBefore; i++)
      await new Promise((r) => setTimeout(r, 10));
  };
  return {
    adapter,
    hostRecords: ({ orderId, amount }) => print(`好又多超市\n单号: ${orderId}\n应收: ${amount}\n`),
    hostSendsGarbage: () => print('欢迎光临\n谢谢惠顾\n'),
    async cleanup() {},
  };
});

describeHostAdapterContract('native-hook', async () => {
  // The register's hook library: each call one authenticated connection, as payconnect.c makes them.
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pc-contract-hook-'));
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  const manifest = parseManifest(
    `id: c
name: c
adapter: native-hook
register: R1
options: { listen: "tcp://127.0.0.1:${port}" }
parse: { currency: CNY }
writeBack: {}
dispatch: { mode: broadcast }
`,
    'c.yaml',
  );
  const adapter = createAdapter(manifest, { baseDir: stateDir, stateDir, clock: new SystemClock() });
  const clients: HookClient[] = [];
  /** One call of the library: hello with the plugin's token, then the request; undefined when nobody listens. */
  const call = async (req: unknown): Promise<Record<string, unknown> | undefined> => {
    const client = await HookClient.connect(port).catch(() => undefined);
    if (!client) return undefined;
    clients.push(client);
    try {
      const token = (await fs.readFile(path.join(stateDir, 'native-hook.token'), 'utf8')).trim();
      await client.request({ op: 'hello', token });
      return await client.request(req);
    } catch {
      return undefined;
    } finally {
      client.close();
    }
  };
  return {
    adapter,
    hostRecords: async ({ orderId, amount }) =>
      void (await call({ op: 'submit', order: { orderId, amount } })),
    hostSendsGarbage: async () =>
      void (await call({ op: 'submit', order: { orderId: 'G', amount: 'twelve' } })),
    async hostSaw(orderId) {
      // The library waits and acknowledges until nothing new is queued for the order: what the register saw.
      // The write-backs came before any start: the library can ask once the plugin serves it.
      if (!(await call({ op: 'ping' }))) await adapter.start({ onOrder: async () => {}, onReject: () => {} });
      const seen: string[] = [];
      for (;;) {
        const a = await call({ op: 'wait', orderId, timeoutMs: 0 });
        if (!a?.ok) return seen;
        const delivery = String(a.delivery);
        seen.push(String((a.result as { status: string }).status));
        await call({ op: 'ack', delivery });
      }
    },
    async cleanup() {
      for (const c of clients) c.close();
      await fs.rm(stateDir, { recursive: true, force: true });
    },
  };
});

describeHostAdapterContract('hid', async () => {
  const scanner = { vendorId: 0x0c2e, productId: 0x0b61, path: '/dev/hidraw3', usagePage: 0x8c, usage: 0x02 };
  const binding = new FakeHidBinding([scanner]);
  const manifest = parseManifest(
    `id: c
name: c
adapter: hid
register: R1
options: { device: { vendorId: "0x0c2e", productId: "0x0b61" }, usagePage: "0x8c" }
parse: { report: hid-pos, endOfMessage: CR, amount: "AMT:([^;]+)", orderId: "ORD:([^;]+)", currency: CNY }
writeBack: {}
dispatch: { mode: broadcast }
`,
    'c.yaml',
  );
  const adapter = createHidAdapter(
    manifest as unknown as HidAdapterManifest,
    { baseDir: os.tmpdir(), clock: new FakeClock() },
    binding,
  );
  /** What the scanner sends for one scanned code: HID-POS reports (id 2, length, data), ending in CR. */
  const scan = async (text: string) => {
    if (binding.openHandles(scanner.path).length === 0) return; // not started, or stopped: nobody listens
    const data = Buffer.from(`${text}\r`, 'utf8');
    const reports: Uint8Array[] = [];
    for (let i = 0; i < data.length; i += 20) {
      const chunk = data.subarray(i, i + 20);
      reports.push(
        Buffer.concat([Buffer.from([0x02, chunk.length]), chunk, Buffer.alloc(20 - chunk.length)]),
      );
    }
    binding.play(scanner.path, reports);
    await new Promise((r) => setImmediate(r));
  };
  return {
    adapter,
    hostRecords: ({ orderId, amount }) => scan(`AMT:${amount};ORD:${orderId}`),
    hostSendsGarbage: () => scan('hello, not an order'),
    async cleanup() {},
  };
});

systemPrerequisites(['socat']).describe('on socat pseudo-terminal pairs', () => {
  jest.setTimeout(30_000);
  describeHostAdapterContract('serial-display', async () => {
    // register ⇄ [pty pair] ⇄ adapter ⇄ [pty pair] ⇄ display; the quiet time runs on a FakeClock.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'payconnect-contract-display-'));
    const pairs = await Promise.all([PtyPair.open(dir, 'REGISTER'), PtyPair.open(dir, 'DISPLAY')]);
    const [registerPair, displayPair] = pairs;
    const register = await FarEnd.open(registerPair.far);
    const display = await FarEnd.open(displayPair.far);
    const clock = new FakeClock();
    const manifest = parseManifest(
      `id: c
name: c
adapter: serial-display
register: R1
options: { input: "serial:${registerPair.near}", display: "serial:${displayPair.near}", protocol: epson }
parse: { amountLine: 'TOTAL\\s+([\\d.,]+)', orderId: 'NO\\.(\\S+)', quietMs: 800, currency: CNY }
writeBack: {}
dispatch: { mode: broadcast }
`,
      'c.yaml',
    );
    const adapter = createAdapter(manifest, { baseDir: dir, stateDir: dir, clock }) as SerialDisplayAdapter;
    const settled = async (check: () => boolean, ms: number) => {
      for (let waited = 0; !check() && waited < ms; waited += 5) await new Promise((r) => setTimeout(r, 5));
      return check();
    };
    /**
     * The register shows one sale on its Epson display: ESC @, CLR, the order number on line 1, the total
     * on line 2 (US $ 1 2). It stays up past the quiet time; resolves once the adapter has had its chance
     * to take it (read it, then a hand-over or a reject), or at once when nobody reads the line.
     */
    const showSale = async (orderId: string, total: string) => {
      const bytes = Buffer.from(`\x1b@\x0cNO.${orderId}\x1f\x24\x01\x02TOTAL ${total}`, 'latin1');
      const before = adapter.stats();
      const read = (before.decoder?.bytes ?? 0) + bytes.length;
      await register.write(bytes);
      if (!(await settled(() => (adapter.stats().decoder?.bytes ?? 0) >= read, 1_000))) return;
      clock.advance(800);
      const outcomes = (st: typeof before) => st.orders + st.rejected;
      await settled(() => outcomes(adapter.stats()) > outcomes(before), 2_000);
    };
    return {
      adapter,
      hostRecords: ({ orderId, amount }) => showSale(orderId, amount),
      // A total with more decimals than CNY has cannot be an amount: reported, never rounded.
      hostSendsGarbage: () => showSale('G', '12.505'),
      async cleanup() {
        await register.close();
        await display.close();
        for (const pair of pairs) await pair.stop();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  });
});

systemPrerequisites([
  requireSystem(
    'the fake host SDK (make -C native sdk)',
    () => {
      if (!nativeGate.ok) return nativeGate.missing.join('; ');
      const r = makeSdk('sdk');
      return r.status === 0 || `make -C native sdk failed: ${r.out.trim().split('\n').pop()}`;
    },
    '`apt-get install -y gcc make util-linux`',
  ),
]).describe('on the fake host SDK (gcc)', () => {
  describeHostAdapterContract('host-sdk', async () => {
    // The register behind the fake SDK (native/fakesdk/), loaded into this process with koffi.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pc-contract-sdk-'));
    const register = await FakeRegister.create(dir);
    koffi.load(FAKE_SDK_SO).func('void FakeSdk_SetDir(const char *dir)')(register.dir);
    const manifest = parseManifest(
      `id: c
name: c
adapter: host-sdk
register: R1
options: { library: "${FAKE_SDK_SO}", convention: cdecl, pollMs: 50 }
parse: { function: "int GetCurrentOrder(char orderNo[64], int orderNoLen, int64_t *amountFen)", args: { orderNoLen: 64 }, ready: 0, orderId: orderNo, amount: amountFen, currency: CNY }
writeBack: { function: "int SetPayResult(const char *orderNo, int status, const char *paymentId)", args: { orderNo: $orderId, status: $status, paymentId: $paymentId }, status: { paid: 1, failed: 2, canceled: 3 }, ok: 0 }
dispatch: { mode: broadcast }
`,
      'c.yaml',
    );
    const adapter = createAdapter(manifest, {
      baseDir: dir,
      stateDir: dir,
      clock: new SystemClock(),
    }) as HostSdkAdapter;
    /** The cashier rings up a sale; resolves once the adapter polled it twice more (or at once when it is not polling). */
    const ring = async (orderNo: string, fen: number) => {
      await register.ring(orderNo, fen);
      const polls = adapter.stats().polls;
      for (let i = 0; i < 100 && adapter.stats().polls < polls + 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
        if (i === 10 && adapter.stats().polls === polls) return; // stopped or never started
      }
    };
    const names: Record<number, string> = { 1: 'paid', 2: 'failed', 3: 'canceled' };
    return {
      adapter,
      hostRecords: ({ orderId, amount }) => ring(orderId, parseAmount(amount, 'CNY').value),
      // A negative amount from the SDK cannot be an order: reported, never charged.
      hostSendsGarbage: () => ring('G', -100),
      async hostSaw(orderId) {
        return (await register.results())
          .filter(([o]) => o === orderId)
          .map(([, s]) => names[s] ?? String(s));
      },
      async cleanup() {
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  });
});
