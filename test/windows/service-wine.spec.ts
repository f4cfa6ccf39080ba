/**
 * The Windows service wrapper (native/service/payconnect_service.c, payconnect-service.exe in the zip) under
 * wine64, driven by Wine's own service control manager (services.exe) through its sc.exe and net.exe, as
 * install.ps1 drives Windows': the service is created, started, its plugin answers GET /api/status on
 * 127.0.0.1 (from Linux: Wine's sockets are the host's), node.exe killed from outside is started again by
 * the wrapper (counted in the log), and `net stop` ends the plugin by Ctrl+C (it exits 0, after its close())
 * and leaves no node.exe behind.
 *
 * The service is created here by hand with `start= demand` and a payconnect-service.conf like the one
 * `payconnect service install` writes; the install itself runs in service-install-wine.spec.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeNativeHookManifest } from '../native/support/shop';
import { LanPorts, PluginApi } from '../plugin/support/plugin-harness';
import { waitFor } from '../support/wait';
import { freeTcpPort, killAllChildren, pickLanPorts, TestServer } from '../terminal/support/harness';
import {
  serviceSpecPrerequisites,
  unpackWinZip,
  WINE_KEEPALIVE_SHIM,
  wineCommand,
  WinePrefix,
  winPath,
} from './wine';

jest.setTimeout(420_000);

const gate = serviceSpecPrerequisites();

/** The node.exe processes of this test's unpacked tree, as Linux sees Wine's processes. */
function nodeExePids(root: string): number[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  const exe = winPath(path.join(root, 'node.exe')).toLowerCase();
  return ps.stdout
    .split('\n')
    .filter((l) => l.toLowerCase().includes(exe))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

gate.describe('payconnect-service.exe as the Windows service "payconnect" under Wine', () => {
  let tmp: string;
  let server: TestServer | undefined;
  let prefix: WinePrefix | undefined;
  let root: string;
  let logFile: string;
  let api: PluginApi;
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const wrapperLines = () => log().match(/^.* payconnect-service: .*$/gm) ?? [];
  const sc = (...args: string[]) => wineCommand(prefix!, args);
  /** Polls `sc query payconnect` until its STATE is `state` (RUNNING, STOPPED). */
  const untilState = (state: string, timeoutMs: number) =>
    waitFor(
      `sc query payconnect to say ${state}`,
      async () =>
        new RegExp(`STATE\\s+:\\s+\\d\\s+${state}\\b`).test((await sc('sc', 'query', 'payconnect')).out),
      timeoutMs,
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nlog:\n${log()}`);
    });

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-service-wine-'));
    root = unpackWinZip(tmp);

    server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
    const storeId = await server.createStore('Noodle bar');
    const lan: LanPorts = await pickLanPorts();
    const hookPort = await freeTcpPort();
    const port = await freeTcpPort();
    const manifest = writeNativeHookManifest(tmp, hookPort);
    logFile = path.join(tmp, 'plugin.log');
    // The test-only fetch preload (wine.ts, WINE_KEEPALIVE_SHIM) as a node-option= line: a service's
    // environment is not its caller's (NODE_OPTIONS given to sc.exe / net.exe does not reach it). The zip
    // is not changed for Wine.
    const shim = path.join(tmp, 'wine-keepalive-shim.js');
    writeFileSync(shim, WINE_KEEPALIVE_SHIM);
    // What install.ps1 writes next to payconnect-service.exe: the log, then one argument a line.
    const pluginArgs = [
      ['--manifest', winPath(manifest)],
      ['--server', server.url],
      ['--registration-code', await server.registrationCode(storeId, 'plugin')],
      ['--port', String(port)],
      ['--data', winPath(path.join(tmp, 'plugin-data'))],
      ['--lan-port', String(lan.unitPort)],
      ['--plugin-port', String(lan.pluginPort)],
    ].flat();
    writeFileSync(
      path.join(root, 'payconnect-service.conf'),
      [
        `log=${winPath(logFile)}`,
        'node-option=--require',
        `node-option=${winPath(shim)}`,
        ...pluginArgs.map((a) => `arg=${a}`),
        '',
      ].join('\r\n'),
    );

    prefix = await WinePrefix.create(path.join(tmp, 'wineprefix'), {});
    api = new PluginApi(`http://127.0.0.1:${port}`);
  });

  afterAll(async () => {
    if (prefix) await sc('net', 'stop', 'payconnect').catch(() => undefined);
    await prefix?.remove();
    await server?.proc.stop();
    await killAllChildren();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the zip carries the wrapper next to node.exe', () => {
    expect(existsSync(path.join(root, 'payconnect-service.exe'))).toBe(true);
    expect(existsSync(path.join(root, 'node.exe'))).toBe(true);
  });

  it('is created and started by Wine’s sc.exe / net.exe, and its plugin answers on 127.0.0.1', async () => {
    const exe = winPath(path.join(root, 'payconnect-service.exe'));
    const created = await sc('sc', 'create', 'payconnect', 'binPath=', exe, 'start=', 'demand');
    expect(created).toMatchObject({ code: 0 });
    const started = await sc('net', 'start', 'payconnect');
    expect(started.out).toContain('The payconnect service was started successfully.');
    expect(started.code).toBe(0);
    // Wine's net.exe says "started" once StartService returns, while the service may still be
    // START_PENDING (the wrapper reports RUNNING once node.exe is created).
    await untilState('RUNNING', 30_000);
    const status = await waitFor(
      'the service’s plugin to answer GET /api/status',
      () => api.status().catch(() => undefined),
      120_000,
      500,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nlog:\n${log()}`);
    });
    expect(status).toEqual(expect.objectContaining({}));
    expect(log()).toMatch(/ ready: http:\/\/127\.0\.0\.1:/);
    expect(wrapperLines()).toEqual([
      expect.stringMatching(/payconnect-service: started the plugin, pid \d+$/),
    ]);
    // The journal is on node:sqlite: the wrapper set PAYCONNECT_SQLITE=node as payconnect.cmd does.
    expect(log()).not.toMatch(/better-sqlite3/);
  });

  it('starts node.exe again when it is killed, and counts the restart in the log', async () => {
    const before = nodeExePids(root);
    expect(before).toHaveLength(1);
    const killed = await sc('taskkill', '/F', '/IM', 'node.exe');
    expect(killed.code).toBe(0);
    await waitFor(
      'the wrapper to start the plugin again',
      () => wrapperLines().filter((l) => / started the plugin, pid /.test(l)).length === 2,
      60_000,
      200,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nlog:\n${log()}`);
    });
    expect(wrapperLines()[1]).toMatch(/the plugin exited with code \d+; restart 1 in 1000 ms$/);
    await waitFor('the restarted plugin to answer', () => api.status().catch(() => undefined), 120_000, 500);
    const after = nodeExePids(root);
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    expect((await sc('sc', 'query', 'payconnect')).out).toMatch(/STATE\s+:\s+4\s+RUNNING/);
  });

  it('net stop ends the plugin by Ctrl+C (a clean exit 0), leaves no node.exe and reports STOPPED', async () => {
    const stopped = await sc('net', 'stop', 'payconnect');
    expect(stopped.out).toContain('The payconnect service was stopped successfully.');
    expect(stopped.code).toBe(0);
    await untilState('STOPPED', 20_000);
    const lines = wrapperLines().slice(-3);
    expect(lines[0]).toMatch(/stopping the plugin \(pid \d+\): Ctrl\+C$/);
    expect(lines[1]).toMatch(/the plugin exited with code 0$/); // its close() ran: not terminated (1)
    expect(lines[2]).toMatch(/service stopped$/);
    expect(log()).not.toMatch(/did not exit within/);
    await waitFor('no node.exe left', () => nodeExePids(root).length === 0, 10_000, 200);
    expect(await api.status().catch(() => 'no answer')).toBe('no answer');
  });
});
