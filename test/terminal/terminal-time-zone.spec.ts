/**
 * `payconnect terminal --time-zone AREA/CITY`, as a reseller starts a unit (a real process of the built
 * command and a real payment server): the zone the touch page shows times in is the one given, else the
 * machine's; a zone the machine does not know is refused at start with a one-line reason (exit 2).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ChildProc,
  freeTcpPort,
  http,
  killAllChildren,
  pickLanPorts,
  TestServer,
  waitFor,
} from './support/harness';

jest.setTimeout(60_000);

describe('payconnect terminal --time-zone', () => {
  let tmp: string;
  let server: TestServer;
  let storeId: string;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-time-zone-'));
    server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
    storeId = await server.createStore('Dumplings');
  });

  afterAll(async () => {
    await server?.proc.stop();
    await killAllChildren();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Starts unit `id` with `extra` arguments and environment; answers its GET /api/status. */
  async function unitStatus(id: string, extra: string[], env: Record<string, string> = {}) {
    const port = await freeTcpPort();
    const ports = await pickLanPorts();
    const proc = ChildProc.spawn(
      id,
      [
        'terminal',
        ...['--id', id, '--server', server.url, '--port', String(port), '--data', path.join(tmp, id)],
        ...['--registration-code', await server.registrationCode(storeId, 'terminal')],
        ...['--lan-port', String(ports.unitPort), '--plugin-port', String(ports.pluginPort)],
        ...extra,
      ],
      env,
    );
    try {
      const r = await waitFor(`unit ${id} to answer`, async () => {
        const a = await http<{ timeZone: string }>(`http://127.0.0.1:${port}`, 'GET', '/api/status');
        return a.status === 200 && a.body;
      });
      return r;
    } finally {
      await proc.stop();
    }
  }

  it('says how long it has run and the memory it holds, for support and the e2e bench', async () => {
    const s = (await unitStatus('T3', [])) as unknown as {
      process: {
        uptimeSeconds: number;
        memoryMB: Record<'rss' | 'heapUsed' | 'heapTotal' | 'external', number>;
      };
    };
    const m = s.process.memoryMB;
    expect(Number.isInteger(s.process.uptimeSeconds) && s.process.uptimeSeconds >= 0).toBe(true);
    expect(s.process.uptimeSeconds).toBeLessThan(120); // it was just started
    // A Node process holds some MB of live objects, V8 at least that for them, and RSS more than both.
    expect(m.heapUsed).toBeGreaterThan(1);
    expect(m.heapTotal).toBeGreaterThanOrEqual(m.heapUsed);
    expect(m.rss).toBeGreaterThan(m.heapTotal);
    expect(m.external).toBeGreaterThanOrEqual(0);
  });

  it("shows times in the zone given, else in the machine's", async () => {
    expect((await unitStatus('T1', ['--time-zone', 'Asia/Shanghai'])).timeZone).toBe('Asia/Shanghai');
    expect((await unitStatus('T2', [], { TZ: 'America/New_York' })).timeZone).toBe('America/New_York');
  });

  it('refuses a zone it does not know, naming the option', async () => {
    for (const zone of ['Mars/Olympus_Mons', 'GMT+8; rm -rf /', '']) {
      const proc = ChildProc.spawn('bad-zone', [
        'terminal',
        ...['--id', 'T9', '--server', server.url, '--data', path.join(tmp, 'T9')],
        ...['--time-zone', zone],
      ]);
      const { code } = await proc.waitExit(20_000);
      expect(code).toBe(2);
      const lines = proc.output.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('--time-zone must be an IANA zone name such as Asia/Shanghai');
      expect(lines[0]).toContain(`"${zone}"`);
    }
  });
});
