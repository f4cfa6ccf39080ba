/**
 * What the plugin tests share, on top of the terminal harness (payment server process, child processes,
 * HTTP helpers, bounded waits): the plugin as a real `payconnect plugin` process, the register software's
 * side of the HTTP hook (a callback listener that checks each delivery's signature and can be told to
 * answer 503), manifests written into a temp folder, mobile POS units in-process, and a raw TCP receipt
 * printer whose bytes are decoded back to text.
 */
import { writeFileSync } from 'node:fs';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import path from 'node:path';
import { verifyCallbackSignature } from '../../../src/adapters/http-hook/http-hook.adapter';
import { decodeEscPos, DecodedEscPos } from '../../../src/printer/escpos-decode';
import { FakeTcpPrinter } from '../../../src/printer/fake-tcp-printer';
import { createTerminalApp, RunningTerminal } from '../../../src/terminal/terminal-app';
import { ChildProc, expectStatus, http, TestServer, waitFor } from '../../terminal/support/harness';

export type LanPorts = { unitPort: number; pluginPort: number };

// --- the register host's callback listener ----------------------------------------------------------

export interface Delivery {
  orderId: string | undefined;
  status: string | undefined;
  body: Record<string, unknown> | undefined;
  raw: Buffer;
  headers: IncomingHttpHeaders;
  /** X-Payconnect-Signature verifies with the manifest's secret over the raw bytes. */
  verified: boolean;
  /** What the listener answered. */
  answered: number;
}

/** The register software's end of the HTTP hook: every POST is kept; `answer` sets the reply status. */
export class HookHost {
  readonly deliveries: Delivery[] = [];
  answer = 200;

  private readonly server: Server;

  private constructor(readonly secret: string) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        let body: Record<string, unknown> | undefined;
        try {
          body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
        } catch {
          body = undefined;
        }
        const answered = this.answer;
        this.deliveries.push({
          orderId: typeof body?.orderId === 'string' ? body.orderId : undefined,
          status: typeof body?.status === 'string' ? body.status : undefined,
          body,
          raw,
          headers: req.headers,
          verified: verifyCallbackSignature(raw, req.headers['x-payconnect-signature'], secret),
          answered,
        });
        res.writeHead(answered, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: answered }));
      });
    });
  }

  static async start(secret: string): Promise<HookHost> {
    const host = new HookHost(secret);
    await new Promise<void>((r) => host.server.listen(0, '127.0.0.1', () => r()));
    return host;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/payconnect/results`;
  }

  of(orderId: string): Delivery[] {
    return this.deliveries.filter((d) => d.orderId === orderId);
  }

  /** Deliveries of an order that the host accepted (answered 2xx). */
  accepted(orderId: string): Delivery[] {
    return this.of(orderId).filter((d) => d.answered >= 200 && d.answered < 300);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

// --- manifests --------------------------------------------------------------------------------------

/** YAML accepts JSON strings as double-quoted scalars: a safe way to write paths and URLs. */
const q = (s: string) => JSON.stringify(s);

export function writeHookManifest(
  dir: string,
  o: { id: string; callback: string; secret: string; printer?: string },
): string {
  const file = path.join(dir, `${o.id}.yaml`);
  writeFileSync(
    file,
    [
      `id: ${o.id}`,
      'name: Test register posting orders over HTTP',
      'adapter: http-hook',
      'register: R1',
      'options: {}',
      'parse: { currency: CNY }',
      `writeBack: { callback: ${q(o.callback)}, secret: ${q(o.secret)}, timeoutMs: 2000 }`,
      'dispatch: { mode: broadcast }',
      ...(o.printer ? [`receipt: { printer: ${q(o.printer)}, encoding: gb18030, width: 48 }`] : []),
      '',
    ].join('\n'),
  );
  return file;
}

/** A Chinese ERP that writes GB18030 JSON order files with Chinese keys: 单号, 金额, 商品[*].名称 … */
export function writeFileDropManifest(
  dir: string,
  o: { id: string; inbox: string; outbox: string; printer?: string },
): string {
  const file = path.join(dir, `${o.id}.yaml`);
  writeFileSync(
    file,
    [
      `id: ${o.id}`,
      'name: 中文 ERP 订单文件 (GB18030 JSON)',
      'adapter: file-drop',
      'register: R1',
      `options: { inbox: ${q(o.inbox)}, pattern: "*.json", encoding: gb18030, pollMs: 100 }`,
      'parse:',
      '  orderId: "$.单号"',
      '  amount: "$.金额"',
      '  currency: CNY',
      '  items: { name: "$.商品[*].名称", quantity: "$.商品[*].数量", amount: "$.商品[*].小计" }',
      `writeBack: { outbox: ${q(o.outbox)}, format: json }`,
      'dispatch: { mode: broadcast }',
      ...(o.printer ? [`receipt: { printer: ${q(o.printer)}, encoding: gb18030, width: 48 }`] : []),
      '',
    ].join('\n'),
    'utf8',
  );
  return file;
}

// --- the plugin process ---------------------------------------------------------------------------

export interface PluginProcOptions {
  manifest: string;
  serverUrl: string;
  registrationCode?: string;
  port: number;
  dataDir: string;
  lan: LanPorts;
  /** More command-line options, e.g. ['--time-zone', 'Asia/Shanghai']. */
  extraArgs?: string[];
}

/** `payconnect plugin …` as a child process; resolves once its API answers. */
export async function startPluginProc(o: PluginProcOptions): Promise<ChildProc> {
  const proc = ChildProc.spawn('plugin', [
    'plugin',
    '--manifest',
    o.manifest,
    '--server',
    o.serverUrl,
    ...(o.registrationCode ? ['--registration-code', o.registrationCode] : []),
    '--port',
    String(o.port),
    '--data',
    o.dataDir,
    '--lan-port',
    String(o.lan.unitPort),
    '--plugin-port',
    String(o.lan.pluginPort),
    ...(o.extraArgs ?? []),
  ]);
  await proc.waitHttp(`http://127.0.0.1:${o.port}/api/status`);
  return proc;
}

export interface OrderView {
  orderId: string;
  registerId: string;
  amount: { value: number; currency: string };
  amountText: string;
  status: string;
  terminal: string | null;
  payment: { id: string; status: string; orderId: string; updatedAt: string } | null;
  signature: string | null;
  receipt: { state: string; url: string } | null;
  writeBack: string;
  writeBackError: string | null;
  source: string;
  createdAt: string;
  history?: { at: string; event: string; detail: string | null }[];
}

export interface PluginStatus {
  pluginId: string;
  problems: string[];
  counters: {
    forgedResults: number;
    mismatchedResults: number;
    offersFailed: number;
    rejectedInputs: number;
  };
  rejected: { at: string; subject: string; code: string; message: string }[];
  receipts: { jobs: unknown[]; printers: unknown[] };
  adapters: { adapter: string; manifest?: string; capturing: boolean; stats?: Record<string, unknown> }[];
  adapterProblems: { adapter: string; code: string; message: string; count: number }[];
  process: { uptimeSeconds: number; memoryMB: Record<'rss' | 'heapUsed' | 'heapTotal' | 'external', number> };
}

/** The plugin's local API as the register, the status page and a support engineer use it. */
export class PluginApi {
  constructor(readonly url: string) {}

  order(orderId: string): Promise<OrderView> {
    return expectStatus<OrderView>(
      200,
      http(this.url, 'GET', `/api/orders/${encodeURIComponent(orderId)}`),
      `GET plugin order ${orderId}`,
    );
  }

  post(body: unknown) {
    return http<OrderView>(this.url, 'POST', '/api/orders', { body });
  }

  status(): Promise<PluginStatus> {
    return expectStatus<PluginStatus>(200, http(this.url, 'GET', '/api/status'), 'GET plugin status');
  }

  async terminals(): Promise<string[]> {
    const list = await expectStatus<{ id: string }[]>(
      200,
      http(this.url, 'GET', '/api/terminals'),
      'GET plugin terminals',
    );
    return list.map((u) => u.id).sort();
  }

  async waitForUnits(ids: string[], timeoutMs = 10_000): Promise<void> {
    await waitFor(
      `the plugin to see units ${ids.join(', ')}`,
      async () => {
        const seen = await this.terminals();
        return ids.every((id) => seen.includes(id));
      },
      timeoutMs,
      100,
    );
  }

  /** Waits until the order satisfies `ok`; names the last state seen when it times out. */
  async waitOrder(orderId: string, what: string, ok: (o: OrderView) => boolean, timeoutMs = 10_000) {
    let last: OrderView | undefined;
    try {
      return await waitFor(
        `order ${orderId} ${what}`,
        async () => {
          last = await this.order(orderId).catch(() => undefined);
          return last && ok(last) ? last : undefined;
        },
        timeoutMs,
        100,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}; last seen: ${JSON.stringify(last)}`);
    }
  }
}

// --- mobile POS units (in-process) ------------------------------------------------------------------

export interface OfferJson {
  orderId: string;
  registerId: string;
  amount: { value: number; currency: string };
  status: string;
  takenBy: string | null;
}

export interface PaymentJson {
  orderId: string;
  status: string;
  paymentId: string | null;
  failure: { code: string; message: string } | null;
}

export class Unit {
  private constructor(
    readonly id: string,
    readonly app: RunningTerminal,
  ) {}

  static async start(o: {
    id: string;
    server: TestServer;
    storeId: string;
    dataDir: string;
    lan: LanPorts;
  }): Promise<Unit> {
    const app = await createTerminalApp({
      id: o.id,
      name: `Unit ${o.id}`,
      serverUrl: o.server.url,
      registrationCode: await o.server.registrationCode(o.storeId, 'terminal'),
      port: 0,
      dataDir: o.dataDir,
      lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', ...o.lan },
      logger: false,
    });
    return new Unit(o.id, app);
  }

  offers(): Promise<OfferJson[]> {
    return expectStatus<OfferJson[]>(200, http(this.app.url, 'GET', '/api/offers'), `offers on ${this.id}`);
  }

  async offersOf(orderId: string): Promise<OfferJson[]> {
    return (await this.offers()).filter((o) => o.orderId === orderId);
  }

  waitOffer(orderId: string, timeoutMs = 15_000): Promise<OfferJson> {
    return waitFor(
      `the offer of ${orderId} on ${this.id}`,
      async () => (await this.offersOf(orderId))[0],
      timeoutMs,
      100,
    );
  }

  claim(orderId: string) {
    return http<{ granted?: boolean; error?: { code: string; message: string } }>(
      this.app.url,
      'POST',
      `/api/offers/${encodeURIComponent(orderId)}/claim`,
    );
  }

  pay(orderId: string, paymentCode: string) {
    return http<PaymentJson & { error?: { code: string; message: string } }>(
      this.app.url,
      'POST',
      `/api/offers/${encodeURIComponent(orderId)}/pay`,
      { body: { paymentCode } },
    );
  }

  /** Claims and pays an order with the code; insists on both answers and on a final payment. */
  async claimAndPay(orderId: string, paymentCode: string): Promise<PaymentJson> {
    await this.waitOffer(orderId);
    await expectStatus(200, this.claim(orderId), `claim ${orderId} on ${this.id}`);
    return expectStatus<PaymentJson>(200, this.pay(orderId, paymentCode), `pay ${orderId} on ${this.id}`);
  }

  close(): Promise<void> {
    return this.app.close();
  }
}

// --- the receipt printer ------------------------------------------------------------------------------

/** Every receipt the printer got, decoded as a GB18030 printer reads it. */
export function decodedReceipts(printer: FakeTcpPrinter): DecodedEscPos[] {
  return printer.receipts.map((bytes) => decodeEscPos(bytes, { encoding: 'gb18030' }));
}

/** The receipts that name the order. */
export function receiptsOf(printer: FakeTcpPrinter, orderId: string): DecodedEscPos[] {
  return decodedReceipts(printer).filter((r) => r.text.includes(orderId));
}

/**
 * Waits for `closing` at most `ms`: 'closed', or 'still closing after N s', so a stop that hangs fails the
 * spec by name instead of as its timeout.
 */
export async function closedWithin(closing: Promise<void>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      closing.then(() => 'closed'),
      new Promise<string>((r) => (timer = setTimeout(() => r(`still closing after ${ms / 1000} s`), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
