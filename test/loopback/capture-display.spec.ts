/**
 * `payconnect capture watch` on a real serial line: a socat pseudo-terminal pair stands in for the
 * register's COM port (on Windows, one end of a com0com pair). The register's display bytes for a whole
 * sale on a Hisense-type LED display go in; one order for the total (12.50 = 1250 fen) comes out, with the
 * shipped manifest and the line settings given on --input. Without socat this fails under CI=true.
 */
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChildProc, killAllChildren, REPO_ROOT } from '../support/child-process';
import { systemPrerequisites } from '../support/prerequisites';
import { PtyPair } from '../support/pty';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

const sys = systemPrerequisites(['socat']);

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

sys.describe('capture watch on a serial customer-display line', () => {
  let tmp: string;
  let pair: PtyPair | undefined;
  let register: string;
  let plugin: string;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-capture-display-'));
    // The plugin opens the near end (its COM port); the register writes to the far end.
    pair = await PtyPair.open(tmp, 'REGISTER');
    register = pair.far;
    plugin = pair.near;
  });

  afterAll(async () => {
    await killAllChildren();
    await pair?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('prints one order for the total of a whole LED-display sale', async () => {
    const watch = ChildProc.spawn('capture-display', [
      'capture',
      'watch',
      '--manifest',
      path.join(REPO_ROOT, 'manifests', 'display-led8-hisense-vc110.yaml'),
      '--input',
      `serial:${plugin}?baud=9600`,
      '--forward',
      'none',
    ]);
    await waitFor(
      'the watch to start',
      () => watch.output.includes('watching display-led8-hisense-vc110'),
      15_000,
    );
    // The register writes the sale to its display port, as it would to the real display.
    const fd = openSync(register, 'w');
    writeSync(fd, hex('led8-binary-sale.hex'));
    closeSync(fd);
    await waitFor('the captured total', () => watch.output.includes('"amount":1250'), 15_000);
    const lines = watch.output.split('\n').filter((l) => l.startsWith('{'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ amount: 1250, currency: 'CNY' });
    expect(JSON.parse(lines[0]).orderId).toMatch(/^R1-\d{8}-\d+$/);
    await watch.stop();
  });
});
