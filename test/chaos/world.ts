/**
 * One shop for one chaos run, every part real: a LAN of four hosts in network namespaces
 * (test/support/netns.ts) — `reg` (the register PC: the plugin and the register software's callback
 * receiver), `u1` and `u2` (the mobile POS units T1, T2) and `srv` (the payment server) — and each part a
 * `node bin/payconnect.js …` process from dist/ inside its host.
 *
 * The harness itself stays in the machine's own namespace and never gets a network path into the LAN: it
 * reaches each process's local HTTP API through a Unix socket (socat in the host's namespace forwards
 * it to 127.0.0.1 there; the file system is shared across namespaces), and the register software's
 * callback receiver listens on a Unix socket that socat in `reg` exposes on 127.0.0.1:9100. So the faults
 * injected on the LAN (nft on each host's eth0) hit the parts' own traffic only, never the harness's
 * control of them.
 *
 * Faults this module can inject: UDP loss and duplication per host (nft netdev ingress/egress), the
 * server cut off the LAN (every TCP packet on its card dropped) and kill -9 / graceful restart of any
 * process. Reordering needs a delaying qdisc (netem), which this machine's kernel lacks (`tc qdisc add …
 * netem` says "unknown qdisc kind"): see docs/BENCHMARKS.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import path from 'node:path';
import { DELIVERY_HEADER, verifyCallbackSignature } from '../../src/adapters/http-hook/http-hook.adapter';
import { ChildProc, BIN, REPO_ROOT } from '../support/child-process';
import { cleanupStale, createLan, type Lan } from '../support/netns';
import { waitFor } from '../support/wait';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// --- HTTP over a Unix socket -----------------------------------------------------------------------

export interface Answer<T = unknown> {
  status: number;
  body: T;
}

/** One HTTP request to a process's API through its Unix socket proxy. Rejects on no answer in time. */
export function httpUnix<T = unknown>(
  socketPath: string,
  method: string,
  urlPath: string,
  o: { body?: unknown; token?: string; timeoutMs?: number } = {},
): Promise<Answer<T>> {
  return new Promise((resolve, reject) => {
    const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const req = request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: {
          host: '127.0.0.1',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        },
        timeout: o.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body: body as T });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer in time`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// --- the register software's callback receiver --------------------------------------------------------

export interface Delivery {
  orderId: string | undefined;
  status: string | undefined;
  deliveryId: string | undefined;
  verified: boolean;
  at: number;
}

/**
 * The register software's end of the http-hook: it checks each POST's signature, answers 200, and keeps
 * every delivery. A host applies a delivery id once (the X-Payconnect-Delivery contract), so `applied`
 * is what the register shows; `deliveries` also holds the harmless repeats.
 */
export class HookReceiver {
  readonly deliveries: Delivery[] = [];
  private readonly server: Server;

  constructor(
    readonly socketPath: string,
    private readonly secret: string,
  ) {
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
        const headers: IncomingHttpHeaders = req.headers;
        const id = headers[DELIVERY_HEADER.toLowerCase()];
        this.deliveries.push({
          orderId: typeof body?.orderId === 'string' ? body.orderId : undefined,
          status: typeof body?.status === 'string' ? body.status : undefined,
          deliveryId: typeof id === 'string' ? id : undefined,
          verified: verifyCallbackSignature(raw, headers['x-payconnect-signature'], this.secret),
          at: Date.now(),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(this.socketPath, () => r()));
  }

  of(orderId: string): Delivery[] {
    return this.deliveries.filter((d) => d.orderId === orderId);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

// --- the parts as processes in their hosts ---------------------------------------------------------------

export type PartName = 'server' | 'plugin' | 'T1' | 'T2';

/** One payconnect process in its namespace: started, killed and restarted with the same arguments. */
export class Part {
  proc?: ChildProc;
  /** Every start's output, kept for failure reports. */
  readonly logs: string[] = [];
  starts = 0;
  /** Exits nobody asked for (a crash), with the process's last words. */
  readonly crashes: string[] = [];
  private stopping = false;

  constructor(
    readonly name: PartName,
    private readonly world: World,
    readonly host: string,
    /** Arguments after `node bin/payconnect.js`; `first` are added on the first start only. */
    private readonly args: string[],
    private readonly first: () => string[],
    readonly socket: string,
    private readonly readyPath: string,
    private readonly env: Record<string, string> = {},
  ) {}

  get alive(): boolean {
    return this.proc?.alive ?? false;
  }

  async start(): Promise<void> {
    if (this.alive) return;
    const args = [...this.args, ...(this.starts === 0 ? this.first() : [])];
    this.starts++;
    const root = this.world.root;
    const bin = root === REPO_ROOT ? BIN : path.join(root, 'bin', 'payconnect.js');
    const child = this.world.lan.spawn(this.host, process.execPath, [bin, ...args], {
      cwd: root,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new ChildProc(this.name, child);
    this.proc = proc;
    this.stopping = false;
    void proc.exited.then(({ code, signal }) => {
      this.logs.push(proc.output);
      if (!this.stopping && !this.world.destroying)
        this.crashes.push(
          `${this.name} exited by itself (${signal ?? `code ${code}`}): ${proc.output.slice(-1500)}`,
        );
    });
  }

  /** Waits until the process's API answers 200 through its socket. */
  async ready(timeoutMs = 90_000): Promise<void> {
    await waitFor(
      `${this.name} to answer ${this.readyPath}`,
      async () => {
        if (!this.alive) throw new Error(`${this.name} is not running`);
        const r = await httpUnix(this.socket, 'GET', this.readyPath, { timeoutMs: 1000 });
        return r.status === 200;
      },
      timeoutMs,
      100,
    );
  }

  async kill9(): Promise<void> {
    this.stopping = true;
    await this.proc?.kill9();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.proc?.stop(5000);
  }

  /** What it printed, every start so far (the running one last). */
  output(): string {
    return [...this.logs, this.proc?.alive ? this.proc.output : ''].join('\n--- restart ---\n');
  }
}

export interface WorldOptions {
  /** PAYCONNECT_SIM_SPEED for the server. */
  simSpeed: number;
  /** Where the run's files go (removed by destroy() unless kept). */
  dir: string;
  /**
   * The payconnect tree whose bin/ and dist/ run (default: this repository). A built copy of one commit
   * keeps a long run from testing whatever a colleague's `npm run build` just wrote into dist/.
   */
  root?: string;
}

export const PORTS = { server: 8700, plugin: 8701, unit: 8702, hook: 9100 } as const;

export class World {
  lan!: Lan;
  readonly dir: string;
  readonly root: string;
  readonly adminToken = `admin-${randomBytes(12).toString('hex')}`;
  readonly hookSecret = `hook-${randomBytes(12).toString('hex')}`;
  hook!: HookReceiver;
  parts = {} as Record<PartName, Part>;
  storeId = '';
  destroying = false;
  private readonly socats: ChildProcess[] = [];
  private netFaults = new Map<string, { loss: number; dup: number }>();

  constructor(private readonly o: WorldOptions) {
    this.dir = o.dir;
    this.root = o.root ?? REPO_ROOT;
  }

  get serverDb(): string {
    return path.join(this.dir, 'server.db');
  }
  get printerFile(): string {
    return path.join(this.dir, 'printer.bin');
  }
  get dropPrinterFile(): string {
    return path.join(this.dir, 'printer-drop.bin');
  }
  get inbox(): string {
    return path.join(this.dir, 'inbox');
  }
  get outbox(): string {
    return path.join(this.dir, 'outbox');
  }

  async create(): Promise<void> {
    await cleanupStale();
    mkdirSync(this.dir, { recursive: true });
    for (const d of [this.inbox, this.outbox]) mkdirSync(d, { recursive: true });
    this.lan = await createLan({ hosts: ['reg', 'u1', 'u2', 'srv'] });
    const srvUrl = `http://${this.lan.hosts.srv.address}:${PORTS.server}`;
    const sock = (n: string) => path.join(this.dir, `${n}.sock`);

    // The register software's callback receiver, reached from `reg` at 127.0.0.1:9100.
    this.hook = new HookReceiver(sock('hook'), this.hookSecret);
    await this.hook.listen();
    this.socat('reg', [
      `TCP-LISTEN:${PORTS.hook},bind=127.0.0.1,fork,reuseaddr`,
      `UNIX-CONNECT:${sock('hook')}`,
    ]);
    // The harness's way into each process's API.
    this.socat('srv', [`UNIX-LISTEN:${sock('srv')},fork,unlink-early`, `TCP:127.0.0.1:${PORTS.server}`]);
    this.socat('reg', [`UNIX-LISTEN:${sock('plugin')},fork,unlink-early`, `TCP:127.0.0.1:${PORTS.plugin}`]);
    this.socat('u1', [`UNIX-LISTEN:${sock('T1')},fork,unlink-early`, `TCP:127.0.0.1:${PORTS.unit}`]);
    this.socat('u2', [`UNIX-LISTEN:${sock('T2')},fork,unlink-early`, `TCP:127.0.0.1:${PORTS.unit}`]);

    const hookManifest = path.join(this.dir, 'chaos-hook.yaml');
    const dropManifest = path.join(this.dir, 'chaos-drop.yaml');
    const q = (s: string) => JSON.stringify(s);
    writeFileSync(
      hookManifest,
      [
        'id: chaos-hook',
        'name: Chaos register posting orders over HTTP',
        'adapter: http-hook',
        'register: R1',
        'options: {}',
        'parse: { currency: CNY }',
        `writeBack: { callback: ${q(`http://127.0.0.1:${PORTS.hook}/payconnect/results`)}, secret: ${q(this.hookSecret)}, timeoutMs: 2000 }`,
        'dispatch: { mode: broadcast }',
        `receipt: { printer: ${q(`file:${this.printerFile}`)}, encoding: gb18030, width: 48 }`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      dropManifest,
      [
        'id: chaos-drop',
        'name: Chaos register dropping JSON order files',
        'adapter: file-drop',
        'register: R1',
        `options: { inbox: ${q(this.inbox)}, pattern: "*.json", pollMs: 100 }`,
        "parse: { orderId: '$.orderNo', amount: '$.total', currency: CNY }",
        `writeBack: { outbox: ${q(this.outbox)}, format: json }`,
        'dispatch: { mode: broadcast }',
        `receipt: { printer: ${q(`file:${this.dropPrinterFile}`)}, encoding: gb18030, width: 48 }`,
        '',
      ].join('\n'),
    );

    this.parts.server = new Part(
      'server',
      this,
      'srv',
      ['server', '--port', String(PORTS.server), '--host', '0.0.0.0', '--db', `sqlite:${this.serverDb}`],
      () => [],
      sock('srv'),
      '/healthz',
      { PAYCONNECT_ADMIN_TOKEN: this.adminToken, PAYCONNECT_SIM_SPEED: String(this.o.simSpeed) },
    );
    await this.parts.server.start();
    await this.parts.server.ready();
    this.storeId = (await this.admin<{ id: string }>('POST', '/v1/stores', { name: 'chaos' })).id;
    const lanArgs = (host: string) => [
      '--lan-interface',
      this.lan.hosts[host].address,
      '--lan-broadcast',
      this.lan.broadcastAddress,
    ];
    const code = async (role: 'plugin' | 'terminal') =>
      (
        await this.admin<{ code: string }>('POST', `/v1/stores/${this.storeId}/registration-codes`, {
          role,
        })
      ).code;
    const codes = { plugin: await code('plugin'), T1: await code('terminal'), T2: await code('terminal') };
    this.parts.plugin = new Part(
      'plugin',
      this,
      'reg',
      [
        'plugin',
        '--manifest',
        hookManifest,
        '--also-manifest',
        dropManifest,
        '--server',
        srvUrl,
        '--port',
        String(PORTS.plugin),
        '--data',
        path.join(this.dir, 'plugin'),
        ...lanArgs('reg'),
      ],
      () => ['--registration-code', codes.plugin],
      sock('plugin'),
      '/api/status',
    );
    for (const [id, host] of [
      ['T1', 'u1'],
      ['T2', 'u2'],
    ] as const) {
      this.parts[id] = new Part(
        id,
        this,
        host,
        [
          'terminal',
          '--id',
          id,
          '--server',
          srvUrl,
          '--port',
          String(PORTS.unit),
          '--data',
          path.join(this.dir, id),
          ...lanArgs(host),
        ],
        () => ['--registration-code', codes[id]],
        sock(id),
        '/api/status',
      );
    }
    await Promise.all(['plugin', 'T1', 'T2'].map((n) => this.parts[n as PartName].start()));
    await Promise.all(['plugin', 'T1', 'T2'].map((n) => this.parts[n as PartName].ready()));
    await waitFor(
      'the plugin to hear both units',
      async () => {
        const r = await this.api<{ id: string }[]>('plugin', 'GET', '/api/terminals');
        const ids = r.body.map((u) => u.id);
        return ids.includes('T1') && ids.includes('T2');
      },
      60_000,
      100,
    );
  }

  private socat(host: string, args: string[]): void {
    const child = this.lan.spawn(host, 'socat', args, { stdio: 'ignore' });
    this.socats.push(child);
  }

  async admin<T>(method: string, urlPath: string, body?: unknown): Promise<T> {
    const r = await httpUnix<T>(this.parts.server.socket, method, urlPath, { body, token: this.adminToken });
    if (r.status >= 300) throw new Error(`${method} ${urlPath}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  api<T = unknown>(
    part: PartName,
    method: string,
    urlPath: string,
    o: { body?: unknown; timeoutMs?: number } = {},
  ): Promise<Answer<T>> {
    return httpUnix<T>(this.parts[part].socket, method, urlPath, o);
  }

  /** The register drops an order file into the file-drop inbox (written aside, then renamed in). */
  dropOrderFile(orderId: string, amountText: string): void {
    const tmp = path.join(this.inbox, `${orderId}.tmp`);
    writeFileSync(tmp, JSON.stringify({ orderNo: orderId, total: amountText }));
    renameSync(tmp, path.join(this.inbox, `${orderId}.json`));
  }

  // --- network faults -----------------------------------------------------------------------------------

  /** UDP loss and duplication on a host's card, in and out (0/0 clears). Replaces the host's earlier rule. */
  async setUdpFaults(host: string, loss: number, dup: number): Promise<void> {
    this.netFaults.set(host, { loss, dup });
    const ns = this.lan.hosts[host].ns;
    const drop = loss > 0 ? [`meta l4proto udp numgen random mod 100 < ${loss} drop`] : [];
    // A duplicate is a second copy sent out of the same card; nf_dup_netdev's recursion guard keeps a
    // copy from being copied again without end.
    const dupe = dup > 0 ? [`meta l4proto udp numgen random mod 100 < ${dup} dup to "eth0"`] : [];
    const chain = (hook: string, rules: string[]) =>
      [
        `chain ${hook} {`,
        `type filter hook ${hook} device "eth0" priority 0; policy accept;`,
        ...rules,
        '}',
      ].join('\n');
    await nft(
      ns,
      [
        'table netdev chaos_udp',
        'delete table netdev chaos_udp',
        'table netdev chaos_udp {',
        chain('ingress', drop),
        chain('egress', [...dupe, ...drop]),
        '}',
        '',
      ].join('\n'),
    );
  }

  async clearUdpFaults(): Promise<void> {
    for (const host of Object.keys(this.lan.hosts)) {
      await nft(this.lan.hosts[host].ns, 'table netdev chaos_udp\ndelete table netdev chaos_udp\n');
    }
    this.netFaults.clear();
  }

  /** The server host's card drops every TCP packet (the server is unreachable, connections hang). */
  async cutServer(cut: boolean): Promise<void> {
    const ns = this.lan.hosts.srv.ns;
    await nft(
      ns,
      cut
        ? [
            'table netdev chaos_cut',
            'delete table netdev chaos_cut',
            'table netdev chaos_cut {',
            'chain ingress {',
            'type filter hook ingress device "eth0" priority 0; policy accept;',
            'meta l4proto tcp drop',
            '}',
            'chain egress {',
            'type filter hook egress device "eth0" priority 0; policy accept;',
            'meta l4proto tcp drop',
            '}',
            '}',
            '',
          ].join('\n')
        : 'table netdev chaos_cut\ndelete table netdev chaos_cut\n',
    );
  }

  async destroy(keepFiles: boolean): Promise<void> {
    this.destroying = true;
    await Promise.all(Object.values(this.parts).map((p) => p.kill9().catch(() => undefined)));
    for (const s of this.socats) s.kill('SIGKILL');
    await this.hook?.close().catch(() => undefined);
    await this.lan?.destroy();
    if (!keepFiles) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Feeds a ruleset to `nft -f -` inside a namespace; rejects with nft's complaint. */
function nft(ns: string, ruleset: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`nft in ${ns} failed: ${stderr.trim()}`)),
    );
    child.stdin.end(ruleset);
  });
}

export { sleep };
