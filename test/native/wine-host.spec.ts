/**
 * The x64 DLL in a Windows program, for real: native/test/win_host.c, built with MinGW-w64, loads
 * payconnect-x64.dll by name under Debian's wine64 (a throwaway prefix), submits an order to the payconnect
 * plugin running on Linux (Wine's sockets are the host's, so loopback is shared), waits on a worker thread,
 * and gets the server-signed result after the unit paid it. The token is read through Wine's Z: drive, as a
 * register reads it from the plugin's data folder. The 32-bit DLL cannot run here (Debian's 32-bit Wine
 * does not install on this machine); it is built and its exports checked in windows-dlls.spec.ts.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { systemPrerequisites, WINE64 } from '../support/prerequisites';
import { testCode } from '../terminal/support/harness';
import { WinePrefix, winPath } from '../windows/wine';
import { makeNative, NATIVE_DIR } from './support/native-build';
import { HookShop, startHookShop } from './support/shop';

jest.setTimeout(180_000);

const WIN = path.join(NATIVE_DIR, 'build', 'windows');

const gate = systemPrerequisites([
  'wine64',
  {
    what: 'the Windows builds of the hook library (make -C native windows: MinGW-w64)',
    check: () => {
      const r = makeNative('windows');
      return r.status === 0 || `make -C native windows failed: ${r.stderr.trim().split('\n').pop()}`;
    },
    install: '`apt-get install -y gcc-mingw-w64-x86-64 gcc-mingw-w64-i686`',
  },
]);

/** win_host-x64.exe under Wine; resolves with its exit code and the lines it wrote. */
function runWinHost(
  prefix: WinePrefix,
  args: string[],
  outFile: string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(WINE64, [winPath(path.join(WIN, 'win_host-x64.exe')), ...args, winPath(outFile)], {
      env: prefix.env,
      stdio: 'ignore',
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      let out = '';
      try {
        out = readFileSync(outFile, 'utf8');
      } catch {
        // the program never got to write it: the assertion below shows the empty output
      }
      resolve({ code, out });
    });
  });
}

gate.describe('payconnect-x64.dll in a Windows program under Wine', () => {
  let shop: HookShop;
  let prefix: WinePrefix;

  beforeAll(async () => {
    shop = await startHookShop('wine');
    prefix = await WinePrefix.create(path.join(shop.tmp, 'wineprefix'), {});
  });

  afterAll(async () => {
    await prefix?.remove();
    await shop?.close();
  });

  it('submits an order through the DLL, and gets the signed result once the unit paid', async () => {
    const config = JSON.stringify({
      address: `127.0.0.1:${shop.hookPort}`,
      dataDir: winPath(shop.pluginData),
    });
    const program = runWinHost(
      prefix,
      [winPath(path.join(WIN, 'payconnect-x64.dll')), config, 'WIN-1', '18.80', '60000'],
      path.join(shop.tmp, 'win-1.out'),
    );
    await shop.unit.claimAndPay('WIN-1', testCode('00'));
    const { code, out } = await program;
    expect(out).toMatch(/^loaded 1\.0\.0\nsubmitted WIN-1\nresult \{/);
    expect(code).toBe(0);
    const result = JSON.parse(/^result (.*)$/m.exec(out)![1]) as Record<string, unknown>;
    expect(result).toMatchObject({
      orderId: 'WIN-1',
      status: 'paid',
      amount: { value: 1880, currency: 'CNY' },
      delivery: 'WIN-1:paid',
    });
    expect(result.signature).toEqual(expect.any(String));
    expect(await shop.api.order('WIN-1')).toMatchObject({ status: 'paid', source: 'native-hook' });
  });

  it('says PC_NOT_RUNNING (3) with what to do when nothing listens, at once', async () => {
    const config = JSON.stringify({ address: '127.0.0.1:9', dataDir: winPath(shop.pluginData) });
    const started = Date.now();
    const { code, out } = await runWinHost(
      prefix,
      [winPath(path.join(WIN, 'payconnect-x64.dll')), config, 'WIN-2', '1.00', '1000'],
      path.join(shop.tmp, 'win-2.out'),
    );
    expect(code).toBe(1);
    expect(out).toContain('failed 3 nothing listens at 127.0.0.1:9');
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
