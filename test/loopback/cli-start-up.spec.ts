/**
 * The reseller's tools start fast: `payconnect manifest validate` and `capture watch` load only what they
 * use, never Nest, fastify or pg (about 1,500 modules; seconds on a slow register PC, 8–16 s under Wine).
 * src/cli/main.ts loads a command's module only when that command runs. Checked on real processes of the
 * built command (npm test builds dist/ first), with a preload that writes the loaded modules at exit.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '../..');
const BIN = join(ROOT, 'bin/payconnect.js');
const HEAVY = ['@nestjs/core', '@nestjs/common', 'fastify', 'pg'];
/** Native modules only the adapter that needs one loads (koffi for host-sdk: absent under Wine). */
const NATIVE = ['koffi'];

let dir: string;
let preload: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'payconnect-cli-start-up-'));
  preload = join(dir, 'record-modules.js');
  writeFileSync(
    preload,
    "process.on('exit', () => require('fs').writeFileSync(process.env.MODULES_OUT, " +
      'JSON.stringify(Object.keys(require.cache))));\n',
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `payconnect …`; returns its exit code, output and the files of every module it loaded. */
function run(args: string[]): { code: number | null; stdout: string; stderr: string; modules: string[] } {
  const out = join(dir, `modules-${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(process.execPath, ['-r', preload, BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, MODULES_OUT: out },
  });
  const modules = JSON.parse(readFileSync(out, 'utf8')) as string[];
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, modules };
}

/** The packages among `modules` that are in HEAVY. */
function heavy(modules: string[], packages = HEAVY): string[] {
  return packages.filter((p) =>
    modules.some((m) => m.split(/[\\/]/).join('/').includes(`/node_modules/${p}/`)),
  );
}

describe('payconnect start-up', () => {
  it('manifest validate of the shipped manifests loads neither Nest, fastify nor pg', () => {
    const shipped = readdirSync(join(ROOT, 'manifests'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => `manifests/${f}`);
    const r = run(['manifest', 'validate', ...shipped]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(shipped.map((f) => `ok ${f}\n`).join(''));
    expect(heavy(r.modules, [...HEAVY, ...NATIVE])).toEqual([]);
    expect(r.modules.length).toBeLessThan(400);
  });

  it('capture watch --help and the lan tools load none of them either', () => {
    for (const args of [['capture', 'watch', '--help'], ['lan', 'keygen', '--help'], ['--help']]) {
      const r = run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^usage: payconnect /);
      expect({ args, heavy: heavy(r.modules, [...HEAVY, ...NATIVE]) }).toEqual({ args, heavy: [] });
    }
  });

  it('the recording sees Nest where a command does use it (the check above is not blind)', () => {
    const r = run(['server', '--help']);
    expect(r.code).toBe(0);
    expect(heavy(r.modules)).toEqual(HEAVY);
  });
});
