import { promises as fs, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';
import { MANIFESTS_DIR } from './manifest';

const FIXTURES = path.resolve(__dirname, '../../test/fixtures/adapters');

/** Runs `payconnect …` in-process and captures what it prints. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
}

describe('payconnect manifest', () => {
  const shipped = readdirSync(MANIFESTS_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => path.join(MANIFESTS_DIR, f));

  it('validate: exit 0 and "ok FILE" for each valid manifest', async () => {
    const r = await run('manifest', 'validate', ...shipped);
    expect(r).toEqual({ code: 0, out: shipped.map((f) => `ok ${f}\n`).join(''), err: '' });
  });

  it('validate: exit 1 naming each bad field, and still "ok" for the good files', async () => {
    const bad = path.join(FIXTURES, 'bad-manifest.yaml');
    const r = await run('manifest', 'validate', shipped[0], bad);
    expect(r.code).toBe(1);
    expect(r.out).toBe(`ok ${shipped[0]}\n`);
    expect(r.err).toBe(
      `${bad}: 2 problems\n` +
        '  adapter: unknown adapter "fax"; known: file-drop, http-hook, serial-display, printer-tap, hid, native-hook, host-sdk, native\n' +
        '  dispatch.terminal: is required for a unicast dispatch: the id of the terminal, e.g. T1\n',
    );
  });

  it('validate: exit 1 for a manifest whose adapter this version does not ship (a plugin could not run it)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'payconnect-cli-'));
    try {
      const file = path.join(dir, 'usb-scanner.yaml');
      await fs.writeFile(
        file,
        [
          'id: usb-scanner',
          'name: USB order scanner',
          'adapter: native',
          'register: R1',
          'options: {}',
          'parse: {}',
          'writeBack: {}',
          'dispatch: { mode: broadcast }',
        ].join('\n'),
      );
      const r = await run('manifest', 'validate', file);
      expect(r).toEqual({
        code: 1,
        out: '',
        err:
          `${file}: 1 problem\n` +
          '  adapter: "native" is not available in this version of payconnect; available: file-drop, http-hook, serial-display, printer-tap, hid, native-hook, host-sdk\n',
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('validate: exit 1 for a file that is not there', async () => {
    const r = await run('manifest', 'validate', '/nonexistent/x.yaml');
    expect(r.code).toBe(1);
    expect(r.err).toContain('/nonexistent/x.yaml: cannot read the manifest /nonexistent/x.yaml: ENOENT');
  });

  it('validate: exit 2 without files or with an unknown option', async () => {
    expect(await run('manifest', 'validate')).toMatchObject({
      code: 2,
      err: 'payconnect manifest validate: name at least one manifest file\n',
    });
    expect((await run('manifest', 'validate', '--strict', 'x.yaml')).code).toBe(2);
  });

  it('list: one line per manifest in manifests/: id, adapter, name, and the path to use', async () => {
    const r = await run('manifest', 'list');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toHaveLength(shipped.length);
    expect(lines).toContainEqual(expect.stringMatching(/^demo +http-hook +payconnect demo/));
    const json = path.join(MANIFESTS_DIR, 'file-drop-json.yaml');
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`^file-drop-json +file-drop +Generic JSON order files +${escape(json)}$`),
      ),
    );
    // The path printed is the file: it validates as it is.
    const listed = lines.map((l) => l.split(/ {2,}/).pop() as string);
    expect(listed.sort()).toEqual([...shipped].sort());
  });

  it('list --dir: an invalid manifest is listed as such, with exit 1', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'payconnect-cli-'));
    try {
      await fs.copyFile(path.join(FIXTURES, 'bad-manifest.yaml'), path.join(dir, 'bad-manifest.yaml'));
      await fs.copyFile(path.join(MANIFESTS_DIR, 'demo.yaml'), path.join(dir, 'demo.yaml'));
      const r = await run('manifest', 'list', '--dir', dir);
      expect(r.code).toBe(1);
      expect(r.out).toBe(
        `bad-manifest  (invalid)  2 problems; run payconnect manifest validate  ${path.join(dir, 'bad-manifest.yaml')}\n` +
          `demo          http-hook  payconnect demo (HTTP hook, every terminal)   ${path.join(dir, 'demo.yaml')}\n`,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('--help prints the usage', async () => {
    const r = await run('manifest', 'validate', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: payconnect manifest validate FILE…/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
