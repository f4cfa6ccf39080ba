/**
 * The support tools as a support engineer runs them: `payconnect lan keygen`, a stand-in unit
 * (`lan unit`), then `lan discover` and `lan ping` against it, all over loopback, as real processes of
 * the built command (npm test builds dist/ first).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/wait';

const BIN = join(__dirname, '../../bin/payconnect.js');
const UNIT_PORT = String(20000 + Math.floor(Math.random() * 20000));
const LAN = ['--broadcast', '127.255.255.255', '--unit-port', UNIT_PORT];

function run(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000, cwd });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('payconnect lan tools', () => {
  let dir: string;
  let keyFile: string;
  let unit: ChildProcess;
  let unitOut = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'payconnect-lan-cli-'));
    keyFile = join(dir, 'lan-key.json');
    expect(run(['lan', 'keygen', '--out', keyFile]).code).toBe(0);
    unit = spawn(
      process.execPath,
      [BIN, 'lan', 'unit', '--id', 'T5', '--name', 'Counter 5', '--key', keyFile, ...LAN],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    unit.stdout!.on('data', (d) => (unitOut += d));
    unit.stderr!.on('data', (d) => (unitOut += d));
    let exited: number | null | undefined;
    unit.once('exit', (code) => (exited = code));
    await waitFor(
      'the stand-in unit to listen',
      () => {
        if (exited !== undefined) throw new Error(`lan unit exited with ${exited}`);
        return unitOut.includes('listening');
      },
      5000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${unitOut}`);
    });
    expect(unitOut).toContain('unit T5 on UDP port');
  });

  afterAll(() => {
    unit?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('keygen writes a 32-byte key readable only by its owner', () => {
    const json = JSON.parse(readFileSync(keyFile, 'utf8'));
    expect(Buffer.from(json.key, 'base64')).toHaveLength(32);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
  });

  it('discover lists the unit with its address', () => {
    const r = run(['lan', 'discover', '--key', keyFile, '--wait', '600', ...LAN]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ID\s+NAME\s+ADDRESS\s+STATUS\s+LAST BEACON$/m);
    expect(r.stdout).toMatch(/^T5\s+Counter 5\s+127\.0\.0\.1:\d+\s+idle\s+\d+\.\d s ago$/m);
  });

  it('discover finds the key in a data folder: --data DIR, or ./var/plugin when nothing is given', () => {
    const install = join(dir, 'install');
    mkdirSync(join(install, 'var', 'plugin'), { recursive: true });
    copyFileSync(keyFile, join(install, 'var', 'plugin', 'lan-key.json'));
    const byData = run([
      'lan',
      'discover',
      '--data',
      join(install, 'var', 'plugin'),
      '--wait',
      '600',
      ...LAN,
    ]);
    expect(byData.code).toBe(0);
    expect(byData.stdout).toMatch(/^T5\s+Counter 5\s/m);
    const byDefault = run(['lan', 'discover', '--wait', '600', ...LAN], install);
    expect(byDefault.code).toBe(0);
    expect(byDefault.stdout).toMatch(/^T5\s+Counter 5\s/m);
    expect(byDefault.stderr).toContain(
      `using the store LAN key in ${join(install, 'var', 'plugin', 'lan-key.json')}`,
    );
  });

  it('a key that is not where it was said to be: the error names the file and what to give instead', () => {
    const nowhere = join(dir, 'nowhere');
    mkdirSync(nowhere);
    const byKey = run(['lan', 'discover', '--key', 'lan-key.json', ...LAN], nowhere);
    expect(byKey.code).toBe(2);
    expect(byKey.stderr).toContain(`cannot read the LAN key file ${join(nowhere, 'lan-key.json')}: ENOENT`);
    expect(byKey.stderr).toContain('give --data DIR');
    const byNothing = run(['lan', 'discover', ...LAN], nowhere);
    expect(byNothing.code).toBe(2);
    expect(byNothing.stderr).toContain(`looked in ${join(nowhere, 'var/plugin/lan-key.json')}`);
  });

  it('ping gets answers from the unit', () => {
    const r = run(['lan', 'ping', 'T5', '--key', keyFile, '--count', '2', ...LAN]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pong from T5 at 127\.0\.0\.1:\d+: \d+ ms, idle/);
    expect(r.stdout).toContain('2 of 2 answered');
  });

  it('ping of a unit that is not there fails with what to check', () => {
    const r = run(['lan', 'ping', 'T6', '--key', keyFile, '--count', '1', ...LAN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unit T6 did not answer discovery');
  });

  it('a tool holding another store key sees no unit', () => {
    const otherKey = join(dir, 'other.json');
    run(['lan', 'keygen', '--out', otherKey]);
    const r = run(['lan', 'discover', '--key', otherKey, '--wait', '600', ...LAN]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('no units answered');
  });

  it('bad arguments exit 2 with a one-line reason', () => {
    const missingKey = run(['lan', 'discover', ...LAN], dir);
    expect(missingKey.code).toBe(2);
    expect(missingKey.stderr.trim().split('\n')).toHaveLength(1);
    expect(missingKey.stderr).toContain('--key FILE or --data DIR');
    const badPort = run(['lan', 'discover', '--key', keyFile, '--unit-port', 'abc']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toContain('--unit-port must be a whole number');
    expect(run(['lan', 'discover', '--bogus']).code).toBe(2);
    expect(run(['frobnicate']).code).toBe(2);
    const help = run(['lan', 'ping', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('payconnect lan ping ID');
  });
});
