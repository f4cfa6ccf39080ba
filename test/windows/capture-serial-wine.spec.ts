/**
 * `payconnect capture watch` on Windows, for real: Node.js 22 for Windows (node.exe) runs the built CLI
 * under Wine, and serialport's Windows binding opens COM ports by name, as on a register PC. What a
 * reseller checks at the shop after setting up the com0com pair (docs/windows-serial.md):
 *   - the register's display bytes for a sale, written to its COM port, come out as one order with the
 *     right amount in minor units;
 *   - with the real display on another COM port, it receives every byte unchanged, and what the display
 *     answers reaches the register.
 *
 *   register (Linux side) ⇄ socat pty pair ⇄ COM7 ─ payconnect (node.exe, Wine) ─ COM8 ⇄ socat pty pair ⇄ display
 *
 * The pty pairs play com0com's part (a kernel driver, which Wine cannot load): this proves payconnect's
 * Windows build and the COMx path, not com0com itself. One Wine prefix for the file (made in beforeAll,
 * deleted in afterAll). Without wine64, node.exe or socat this is skipped, and fails under CI=true.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../support/child-process';
import { systemPrerequisites } from '../support/prerequisites';
import { FarEnd, PtyPair } from '../support/pty';
import { waitFor } from '../support/wait';
import { WinePrefix, WindowsProcess } from './wine';

// Wine boots a prefix in ~6-10 s, and node.exe starts `capture watch` (~155 modules since the CLI loads
// only the command it runs; ~1,500 before) through Wine's file layer in about a second or more on a busy
// machine: slower than on Windows, so the waits are generous.
jest.setTimeout(120_000);
const STARTUP_MS = 60_000;

const sys = systemPrerequisites(['socat', 'wine64', 'nodeWin']);

const MANIFEST = path.join('manifests', 'display-led8-hisense-vc110.yaml');

/** An annotated hex fixture (test/fixtures/display/README.md) as bytes. */
function hex(name: string): Buffer {
  const text = readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'display', name), 'utf8');
  return Buffer.from(
    text
      .split('\n')
      .map((l) => l.replace(/#.*$/, ''))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
}

function orders(watch: WindowsProcess): Array<Record<string, unknown>> {
  return watch.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

sys.describe('capture watch on Windows (node.exe under Wine) on COM ports', () => {
  let tmp: string;
  let registerLine: PtyPair; // near: the plugin's COM7 (com0com's CNCB0), far: the register's side
  let displayLine: PtyPair; // near: the plugin's COM8, far: the customer display
  let prefix: WinePrefix | undefined;
  let register: FarEnd | undefined;
  let display: FarEnd | undefined;
  let watch: WindowsProcess | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-wine-serial-'));
    registerLine = await PtyPair.open(tmp, 'COM7');
    displayLine = await PtyPair.open(tmp, 'COM8');
    prefix = await WinePrefix.create(path.join(tmp, 'wine'), {
      COM7: registerLine.near,
      COM8: displayLine.near,
    });
  }, 120_000);

  afterEach(async () => {
    await watch?.stop();
    watch = undefined;
    await register?.close();
    await display?.close();
    register = display = undefined;
  });

  afterAll(async () => {
    await prefix?.remove();
    await registerLine?.stop();
    await displayLine?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** `payconnect capture watch` in the prefix; resolves once it says it is watching. */
  async function captureWatch(name: string, forward: string): Promise<WindowsProcess> {
    const w = prefix!.nodeWin(
      name,
      [
        path.join('bin', 'payconnect.js'),
        'capture',
        'watch',
        '--manifest',
        MANIFEST,
        '--input',
        'serial:COM7?baud=9600',
        '--forward',
        forward,
      ],
      REPO_ROOT,
      tmp,
    );
    watch = w;
    let exited = false;
    void w.exited.then(() => (exited = true));
    await waitFor(
      'capture watch to start under Wine',
      () => {
        if (exited) throw new Error(`it exited:\n${w.stdout}${w.stderr}`);
        return w.stderr.includes('watching display-led8-hisense-vc110');
      },
      STARTUP_MS,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nstdout:\n${w.stdout}\nstderr:\n${w.stderr}`);
    });
    return w;
  }

  it('prints one order for the total of an LED-display sale read from COM7 (--forward none)', async () => {
    const w = await captureWatch('watch-none', 'none');
    register = await FarEnd.open(registerLine.far);
    await register.write(hex('led8-binary-sale.hex'));

    await waitFor('the captured order', () => orders(w).length > 0, 15_000);
    expect(orders(w)).toEqual([
      {
        orderId: expect.stringMatching(/^R1-\d{8}-\d+$/),
        amount: 1250,
        currency: 'CNY',
        source: 'serial:COM7',
      },
    ]);
    // Ctrl+C stops it cleanly (the ports closed, the scratch state removed), as at the shop.
    expect(await w.stop()).toEqual({ code: 0, signal: null });
    expect(w.stderr).not.toMatch(/problem|rejected/);
  });

  it('passes every byte on to the display on COM8 unchanged, and the display’s answers back, while capturing', async () => {
    display = await FarEnd.open(displayLine.far);
    const w = await captureWatch('watch-forward', 'serial:COM8');
    register = await FarEnd.open(registerLine.far);
    const sale = hex('led8-binary-sale.hex');
    await register.write(sale);

    expect((await display.waitFor(sale.length, 10_000)).equals(sale)).toBe(true);
    await waitFor('the captured order', () => orders(w).length > 0, 15_000);
    expect(orders(w)).toEqual([expect.objectContaining({ amount: 1250, currency: 'CNY' })]);

    // Some displays answer (status bytes): the register gets them as over a direct cable.
    const answer = Buffer.from([0x06, 0x00, 0xff, 0x1b]);
    await display.write(answer);
    expect((await register.waitFor(answer.length, 10_000)).equals(answer)).toBe(true);
    // Nothing more arrived at the display than the register sent.
    expect(display.received.equals(sale)).toBe(true);
    expect(await w.stop()).toEqual({ code: 0, signal: null });
  });
});
