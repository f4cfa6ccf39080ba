/**
 * The hook library as the native tests use it: built from native/ with make and gcc (what `npm run
 * build:native` runs), gated by test/support/prerequisites.ts (skipped without gcc on a developer's
 * machine, a failure under CI=true), and its functions declared for koffi exactly as payconnect.h does.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../support/child-process';
import { requireSystem, systemPrerequisites } from '../../support/prerequisites';

export const NATIVE_DIR = path.join(REPO_ROOT, 'native');
export const LINUX_BUILD = path.join(NATIVE_DIR, 'build', 'linux-x64');
export const LIBRARY = path.join(LINUX_BUILD, 'libpayconnect.so');
export const SUBMIT_TEST = path.join(LINUX_BUILD, 'submit_test');

function runs(command: string, args: string[]): true | string {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error)
    return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${command}: not found` : r.error.message;
  return r.status === 0 || `${command} exited ${r.status}`;
}

export const nativeGate = systemPrerequisites([
  requireSystem('`gcc` (C compiler)', () => runs('gcc', ['--version']), '`apt-get install -y gcc`'),
  requireSystem('`make`', () => runs('make', ['--version']), '`apt-get install -y make`'),
  requireSystem(
    '`flock` (util-linux)',
    () => runs('flock', ['--version']),
    '`apt-get install -y util-linux`',
  ),
]);

/**
 * `make -C native TARGET`, one at a time across jest workers (flock): two specs building at once would
 * write the same output files together. Make only rebuilds what changed.
 */
export function makeNative(target: 'all' | 'windows' | 'service'): {
  status: number | null;
  stdout: string;
  stderr: string;
} {
  const lock = path.join(os.tmpdir(), 'payconnect-native-build.lock');
  const r = spawnSync('flock', [lock, 'make', '-C', NATIVE_DIR, target], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

/** Builds the .so and the test programs; throws with make's output. */
export function buildNative(): void {
  const r = makeNative('all');
  if (r.status !== 0) throw new Error(`make -C native all failed:\n${r.stdout}\n${r.stderr}`);
}

/** pc_status values, as in payconnect.h. */
export const PC = {
  OK: 0,
  TIMEOUT: 1,
  BUFFER_TOO_SMALL: 2,
  NOT_RUNNING: 3,
  BAD_TOKEN: 4,
  BAD_INPUT: 5,
  REJECTED: 6,
  PROTOCOL: 7,
  UNKNOWN_ORDER: 8,
  ORDER_STANDS: 9,
  BUSY: 10,
  SYSTEM: 11,
} as const;
