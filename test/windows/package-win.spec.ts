/**
 * The Windows install zip (`npm run package:win`, scripts/package-win.sh), as a reseller's register PC gets
 * it.
 *
 * 1. The install scripts (packaging/*.ps1) cannot run here (no PowerShell under Wine), so they are read:
 *    they only check for Administrator and pass their parameters on to `payconnect.cmd service
 *    install|uninstall` (src/cli/service.ts), whose defaults are the plugin's. The install itself runs
 *    under Wine in service-install-wine.spec.ts.
 * 2. Under wine64 (a throwaway prefix): the zip is built and unpacked, the plugin is started from the
 *    unpacked tree by its payconnect.cmd (the zip's node.exe, the journal on node:sqlite), with a payment
 *    server and mobile POS unit T1 on Linux (loopback; Wine's sockets are the host's). The MinGW-built
 *    Windows test host (native/test/win_host.c) loads the zip's hook\payconnect-x64.dll, submits an order,
 *    the unit pays it with an immediate-success test code, and the host gets the server-signed result.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_PLUGIN_PORT, DEFAULT_UNIT_PORT } from '../../src/lan/lan-transport';
import { plugin as pluginCommand } from '../../src/cli/plugin';
import { FIREWALL_RULE, serviceInstall, serviceUninstall } from '../../src/cli/service';
import { makeNative, NATIVE_DIR } from '../native/support/native-build';
import { writeNativeHookManifest } from '../native/support/shop';
import { LanPorts, PluginApi, Unit } from '../plugin/support/plugin-harness';
import { REPO_ROOT } from '../support/child-process';
import { systemPrerequisites } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import {
  freeTcpPort,
  killAllChildren,
  pickLanPorts,
  TestServer,
  testCode,
} from '../terminal/support/harness';
import {
  unpackWinZip,
  WINE_KEEPALIVE_SHIM,
  WinePrefix,
  windowsProgram,
  WindowsProcess,
  winPath,
} from './wine';

const PACKAGING = path.join(REPO_ROOT, 'packaging');
const read = (name: string) => readFileSync(path.join(PACKAGING, name), 'utf8');

/** A PowerShell param's `[int]$Name = 1` default. */
function assigned(script: string, name: string): string {
  const m = new RegExp(`^\\s*(?:\\[\\w+\\])?\\$${name} = '?([^'\\s,]+)'?`, 'm').exec(script);
  if (!m) throw new Error(`no $${name} = … in the script`);
  return m[1];
}

describe('the install scripts are thin wrappers of payconnect service install|uninstall (read, not run)', () => {
  const install = read('install.ps1');
  const uninstall = read('uninstall.ps1');
  const readme = read('README-windows.txt');

  it('install.ps1 passes each of its parameters to the same option, with the plugin’s defaults', () => {
    expect(Number(assigned(install, 'LanPort'))).toBe(DEFAULT_UNIT_PORT);
    expect(Number(assigned(install, 'PluginPort'))).toBe(DEFAULT_PLUGIN_PORT);
    const apiDefault = /--port P\s+local API and status page \(default (\d+)\)/.exec(pluginCommand.usage);
    expect(Number(assigned(install, 'Port'))).toBe(Number(apiDefault![1]));
    for (const [option, variable] of [
      ['--manifest', 'Manifest'],
      ['--server', 'Server'],
      ['--lan-interface', 'LanInterface'],
      ['--registration-code', 'RegistrationCode'],
      ['--lan-broadcast', 'LanBroadcast'],
      ['--port', 'Port'],
      ['--lan-port', 'LanPort'],
      ['--plugin-port', 'PluginPort'],
    ]) {
      expect(install).toMatch(new RegExp(`'${option}', \\$${variable}\\b`));
      expect(serviceInstall.usage).toContain(`  ${option} `);
    }
    expect(install).toMatch(/@\('service', 'install'/);
    expect(install).toMatch(/& \(Join-Path \$Here 'payconnect\.cmd'\) @CliArgs/);
    expect(install).toMatch(/exit \$LASTEXITCODE/);
  });

  it('uninstall.ps1 passes -RemoveData as --remove-data, and nothing deletes data otherwise', () => {
    expect(uninstall).toMatch(/param\(\[switch\]\$RemoveData\)/);
    expect(uninstall).toMatch(/if \(\$RemoveData\) \{ \$CliArgs \+= '--remove-data' \}/);
    expect(uninstall).toMatch(/@\('service', 'uninstall'\)/);
    expect(serviceUninstall.usage).toContain('--remove-data');
    for (const script of [install, uninstall]) {
      expect(script).toMatch(/IsInRole\(\[Security\.Principal\.WindowsBuiltInRole\]::Administrator\)/);
      expect(script).not.toMatch(/Remove-Item|New-Service|sc\.exe|NetFirewallRule/); // all in service.ts
    }
  });

  it('the README names the firewall rule and its port as service.ts opens it', () => {
    expect(readme).toContain(FIREWALL_RULE);
    expect(readme).toContain(`UDP ${DEFAULT_PLUGIN_PORT}`);
  });

  it('payconnect.cmd runs the zip’s node.exe with the app, journals on node:sqlite', () => {
    const cmd = read('payconnect.cmd');
    expect(cmd).toContain('set "PAYCONNECT_SQLITE=node"');
    expect(cmd).toContain('"%~dp0node.exe" "%~dp0app\\bin\\payconnect.js" %*');
    expect(cmd).toMatch(/\r\n/); // CRLF: cmd.exe reads LF-only batch files wrongly around labels
  });
});

// Building the zip (tsc, the DLLs, copying node_modules, zip -9) takes about a minute; Wine boots a prefix
// in ~6-10 s and node.exe starts the plugin through Wine's file layer in several seconds more.
jest.setTimeout(420_000);

const WIN_BUILD = path.join(NATIVE_DIR, 'build', 'windows');

const gate = systemPrerequisites([
  'wine64',
  'nodeWin',
  'zip',
  'unzip',
  {
    what: 'the Windows builds of the hook library (make -C native windows: MinGW-w64)',
    check: () => {
      const r = makeNative('windows');
      return r.status === 0 || `make -C native windows failed: ${r.stderr.trim().split('\n').pop()}`;
    },
    install: '`apt-get install -y gcc-mingw-w64-x86-64 gcc-mingw-w64-i686`',
  },
]);

gate.describe('payconnect-win-x64.zip under Wine: plugin from the zip, an order through its x64 DLL', () => {
  let tmp: string;
  let server: TestServer | undefined;
  let unit: Unit | undefined;
  let prefix: WinePrefix | undefined;
  let pluginProc: WindowsProcess | undefined;
  let api: PluginApi;
  let hookPort: number;
  let pluginData: string;
  let root: string; // the unpacked payconnect\ folder

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-package-win-'));
    // PAYCONNECT_WIN_ZIP: a zip already built (while working on this spec); otherwise package:win runs.
    root = unpackWinZip(tmp);

    server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
    const storeId = await server.createStore('Noodle bar');
    const lan: LanPorts = await pickLanPorts();
    hookPort = await freeTcpPort();
    const manifest = writeNativeHookManifest(tmp, hookPort);
    prefix = await WinePrefix.create(path.join(tmp, 'wineprefix'), {});

    // Wine 8's keep-alive refusal breaks fetch: the test-only preload (wine.ts, WINE_KEEPALIVE_SHIM).
    const shim = path.join(tmp, 'wine-keepalive-shim.js');
    writeFileSync(shim, WINE_KEEPALIVE_SHIM);

    const port = await freeTcpPort();
    pluginData = path.join(tmp, 'plugin-data');
    const started = Date.now();
    pluginProc = windowsProgram(
      prefix,
      'plugin',
      'cmd.exe',
      [
        '/d',
        '/c',
        winPath(path.join(root, 'payconnect.cmd')),
        'plugin',
        '--manifest',
        winPath(manifest),
        '--server',
        server.url,
        '--registration-code',
        await server.registrationCode(storeId, 'plugin'),
        '--port',
        String(port),
        '--data',
        winPath(pluginData),
        '--lan-port',
        String(lan.unitPort),
        '--plugin-port',
        String(lan.pluginPort),
      ],
      { cwd: tmp, logDir: tmp, env: { NODE_OPTIONS: `--require ${winPath(shim)}` } },
    );
    let exited = false;
    void pluginProc.exited.then(() => (exited = true));
    const p = pluginProc;
    const ready = () => p.stdout.includes(' ready: ');
    await waitFor(
      'the plugin from the zip to say it is ready under Wine',
      () => exited || ready(),
      120_000,
      100,
    )
      .then(() => {
        if (!ready()) throw new Error('the plugin from the zip exited');
      })
      .catch((e: Error) => {
        throw new Error(`${e.message}\nstdout:\n${p.stdout}\nstderr:\n${p.stderr}`);
      });
    console.log(`plugin from the zip under Wine: start to ready in ${Date.now() - started} ms`);
    api = new PluginApi(`http://127.0.0.1:${port}`);
    unit = await Unit.start({ id: 'T1', server, storeId, dataDir: path.join(tmp, 'T1'), lan });
    await api.waitForUnits(['T1'], 30_000);
  });

  afterAll(async () => {
    await unit?.close().catch(() => undefined);
    await pluginProc?.stop(5_000);
    await prefix?.remove();
    await server?.proc.stop();
    await killAllChildren();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('holds what a register PC needs and nothing built for Linux', () => {
    const files = (readdirSync(root, { recursive: true }) as string[]).map((f) => f.replace(/\\/g, '/'));
    const needed = [
      'node.exe',
      'payconnect.cmd',
      'payconnect-service.exe',
      'install.ps1',
      'uninstall.ps1',
      'README-windows.txt',
      'hook/payconnect-x64.dll',
      'hook/payconnect-x86.dll',
      'hook/payconnect.h',
      // Where the host-sdk adapter looks for its bridges by default (src/adapters/host-sdk/sdk-bridge.ts).
      'app/native/build/windows/sdk-bridge-x64.exe',
      'app/native/build/windows/sdk-bridge-x86.exe',
      'app/bin/payconnect.js',
      'app/dist/cli/main.js',
      'app/manifests/native-hook.yaml',
      'app/node_modules/@serialport/bindings-cpp/prebuilds/win32-x64/@serialport+bindings-cpp.node',
      'app/node_modules/@koromix/koffi-win32-x64/win32_x64/koffi.node',
    ];
    expect(needed.filter((f) => !files.includes(f))).toEqual([]);
    // dist/ holds the storage seam's better-sqlite3 driver (not loaded without the addon), not the addon.
    expect(
      files.filter((f) => /node_modules\/(better-sqlite3|@koromix\/koffi-(?!win32-x64))|\.so$/.test(f)),
    ).toEqual([]);
    expect(files.filter((f) => f.endsWith('.node') && !/win32[-_]x64/.test(f))).toEqual([]);
  });

  it('the Windows test host completes an order through the zip’s x64 DLL, and gets the signed result', async () => {
    const outFile = path.join(tmp, 'win-host.out');
    const config = JSON.stringify({ address: `127.0.0.1:${hookPort}`, dataDir: winPath(pluginData) });
    const host = windowsProgram(
      prefix!,
      'win-host',
      path.join(WIN_BUILD, 'win_host-x64.exe'),
      [
        winPath(path.join(root, 'hook', 'payconnect-x64.dll')),
        config,
        'ZIP-1',
        '18.80',
        '60000',
        winPath(outFile),
      ],
      { cwd: tmp, logDir: tmp },
    );
    await unit!.claimAndPay('ZIP-1', testCode('00'));
    const { code } = await host.exited;
    const out = readFileSync(outFile, 'utf8');
    expect(out).toMatch(/^loaded 1\.0\.0\nsubmitted ZIP-1\nresult \{/);
    expect(code).toBe(0);
    const result = JSON.parse(/^result (.*)$/m.exec(out)![1]) as Record<string, unknown>;
    expect(result).toMatchObject({
      orderId: 'ZIP-1',
      status: 'paid',
      amount: { value: 1880, currency: 'CNY' },
      delivery: 'ZIP-1:paid',
    });
    expect(result.signature).toEqual(expect.any(String));
    expect(await api.order('ZIP-1')).toMatchObject({ status: 'paid', source: 'native-hook' });
    // The journal is node:sqlite's: the zip has no better-sqlite3 to fall back on.
    expect(pluginProc!.stderr).not.toMatch(/better-sqlite3/);
  });
});
