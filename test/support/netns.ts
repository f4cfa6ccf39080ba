// A throwaway LAN of real network hosts for system tests, made of Linux network namespaces:
//
//   namespace pct-<run>-sw:   bridge br0 (the "switch"), with one port p<i> per host
//   namespace pct-<run>-<h>:  eth0 (the other end of the veth pair p<i>), lo up, address <subnet>.(10+i)
//
// Everything, the bridge and both ends of every veth pair included, lives inside namespaces this module
// creates; nothing is added to the machine's own (root) namespace, so deleting the namespaces removes it
// all and a run can't disturb the machine's real network. Traffic in these tests goes only to the hosts'
// own addresses, which exist nowhere but in these namespaces.
//
// Needs root, `ip` (Debian package iproute2) and, for setLoss, `nft` (nftables). Guard specs with
// systemPrerequisites(['root', 'ip', 'nft', 'netns']) from prerequisites.ts.
import { spawn as spawnChild, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Every namespace we create starts with this, so leftovers of a crashed run can be found. */
export const PREFIX = 'pct-';

/**
 * Namespace names are `pct-<pid in base 36>_<4 random chars>-<host>`. The pid of the creating process is
 * in the name so that cleanupStale() can tell a crashed run's leftovers (pid gone) from those of a run
 * still going in parallel (pid alive); the random part keeps two LANs of one process apart.
 */
const NAME = /^pct-([0-9a-z]+)_([0-9a-z]+)-([a-z0-9]+)$/;

export function newRunId(): string {
  return `${process.pid.toString(36)}_${randomBytes(3).toString('hex').slice(0, 4)}`;
}

export function namespaceName(runId: string, host: string): string {
  return `${PREFIX}${runId}-${host}`;
}

export interface Host {
  /** The name the test gave it, e.g. "a". */
  name: string;
  /** Its network namespace, for `ip netns exec <ns>`. */
  ns: string;
  /** Its IPv4 address on the LAN. */
  address: string;
  /** Its network card inside its namespace (always "eth0"). */
  iface: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed by a signal. */
  code: number | null;
}

export interface Lan {
  runId: string;
  subnet: string;
  prefixLength: number;
  broadcastAddress: string;
  hosts: Record<string, Host>;
  /** The namespace holding the bridge. */
  switchNs: string;
  /** Runs a command in the host's namespace to its end. Resolves also on a non-zero exit code. */
  exec(host: string, command: string, args?: string[]): Promise<ExecResult>;
  /** Starts a long-running command in the host's namespace. destroy() kills it. */
  spawn(host: string, command: string, args?: string[], opts?: SpawnOptions): ChildProcess;
  /** Drops `percent` % of the host's UDP packets, in and out, at random (0 clears). Replaces earlier loss. */
  setLoss(host: string, percent: number): Promise<void>;
  clearLoss(host: string): Promise<void>;
  /** Kills what spawn() started and deletes every namespace of this LAN. Safe to call twice. */
  destroy(): Promise<void>;
  /** The same at once, for a process about to exit: SIGKILL, then the namespaces, synchronously. */
  destroyNow(): void;
}

/** Every LAN being made or in use by this process, for `destroyAllLansNow`. */
const liveLans = new Set<() => void>();

/**
 * Removes every LAN of this process at once, also one still being set up: for a harness that is told to
 * quit (a second Ctrl-C, SIGTERM) and exits right after, so no process or namespace stays behind.
 */
export function destroyAllLansNow(): void {
  for (const destroyNow of [...liveLans]) destroyNow();
}

/** Runs a command to its end; never rejects on a non-zero exit (callers decide), only if it can't start. */
export function run(command: string, args: string[]): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
  });
}

/** Like run(), but a non-zero exit is an error naming the command and what it printed. */
async function must(command: string, args: string[]): Promise<string> {
  const r = await run(command, args);
  if (r.code !== 0) {
    throw new Error(
      `\`${command} ${args.join(' ')}\` failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  return r.stdout;
}

/** Our namespaces that exist now (all of them, any run). */
export function listOurNamespaces(): string[] {
  // `ip netns list` prints "name" or "name (id: 3)", one per line.
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => name.startsWith(PREFIX));
}

/**
 * Deletes a namespace for good: first kills every process still inside it (our children, and anything
 * they started), because a namespace with a process in it outlives `ip netns del` and keeps its
 * addresses alive.
 */
async function deleteNamespace(ns: string): Promise<void> {
  const pids = await run('ip', ['netns', 'pids', ns]);
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const r = await run('ip', ['netns', 'del', ns]);
  // "No such file" means it is already gone: fine, destroy() is idempotent.
  if (r.code !== 0 && !/No such file|not found|does not exist/i.test(r.stderr)) {
    throw new Error(`ip netns del ${ns} failed: ${r.stderr.trim()}`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it's just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes our namespaces left over by earlier runs that died before destroy() (a killed jest, a crash).
 * Only those whose creating pid no longer exists: a parallel run's namespaces are left alone. (If the
 * pid has since been reused, the leftover is kept until a later cleanup: harmless.) Returns the names.
 */
export async function cleanupStale(): Promise<string[]> {
  const stale = listOurNamespaces().filter((ns) => {
    const m = NAME.exec(ns);
    return m !== null && !alive(parseInt(m[1], 36));
  });
  for (const ns of stale) await deleteNamespace(ns);
  return stale;
}

function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface CreateLanOptions {
  /** Host names: lowercase letters and digits, at most 8 characters (e.g. "plugin", "t1"). */
  hosts: string[];
  /**
   * IPv4 subnet in CIDR form. Default "10.231.<random>.0/24". The random third octet and the random
   * run id keep parallel runs apart; the addresses exist only inside this LAN's namespaces anyway.
   */
  subnet?: string;
}

export async function createLan(opts: CreateLanOptions): Promise<Lan> {
  const subnet = opts.subnet ?? `10.231.${randomBytes(1)[0]}.0/24`;
  const [base, lenText] = subnet.split('/');
  const prefixLength = Number(lenText);
  if (!(prefixLength >= 8 && prefixLength <= 30)) throw new Error(`subnet ${subnet}: prefix must be /8../30`);
  const mask = (0xffffffff << (32 - prefixLength)) >>> 0;
  const network = (ipToInt(base) & mask) >>> 0;
  const broadcast = (network | ~mask) >>> 0;
  if (network + 10 + opts.hosts.length >= broadcast) throw new Error(`subnet ${subnet} too small`);
  for (const h of opts.hosts) {
    if (!/^[a-z0-9]{1,8}$/.test(h) || h === 'sw')
      throw new Error(`bad host name "${h}" (a-z0-9, max 8, not "sw")`);
  }
  if (new Set(opts.hosts).size !== opts.hosts.length) throw new Error('host names must be unique');

  const runId = newRunId();
  const switchNs = namespaceName(runId, 'sw');
  const hosts: Record<string, Host> = {};
  opts.hosts.forEach((name, i) => {
    hosts[name] = { name, ns: namespaceName(runId, name), address: intToIp(network + 10 + i), iface: 'eth0' };
  });
  const created: string[] = [];
  const children = new Set<ChildProcess>();
  let destroyed = false;

  const hostOf = (name: string): Host => {
    const h = hosts[name];
    if (!h) throw new Error(`no host "${name}" in this LAN (hosts: ${Object.keys(hosts).join(', ')})`);
    return h;
  };
  // Every set-up step checks, once it is done, whether destroyNow() came meanwhile: a namespace whose
  // `ip netns add` was still running then is made after it, so it is removed here, and set-up stops.
  const setupStep = async (command: string, args: string[]): Promise<void> => {
    await must(command, args);
    if (destroyed) {
      for (const ns of created.reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      created.length = 0;
      throw new Error('the LAN was destroyed while it was being set up');
    }
  };
  const inNs = (ns: string, ...args: string[]) => setupStep('ip', ['-n', ns, ...args]);
  const addNamespace = async (ns: string) => {
    // Counted as made before the command runs: destroyNow() deletes it if it is there by then, and
    // setupStep deletes it if it came after.
    created.push(ns);
    await setupStep('ip', ['netns', 'add', ns]);
  };

  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    liveLans.delete(destroyNow);
    // Children first, politely, so they can flush; whatever is left is SIGKILLed by deleteNamespace.
    await Promise.all([...children].map((c) => stopChild(c)));
    children.clear();
    for (const ns of created.reverse()) await deleteNamespace(ns);
  };
  function destroyNow(): void {
    liveLans.delete(destroyNow);
    destroyed = true;
    for (const c of children) c.kill('SIGKILL');
    children.clear();
    // A namespace already gone answers an error: nothing to do.
    for (const ns of created.reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    created.length = 0;
  }
  liveLans.add(destroyNow);

  try {
    // The switch: a bridge in a namespace of its own.
    await addNamespace(switchNs);
    await inNs(switchNs, 'link', 'set', 'lo', 'up');
    await inNs(switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    // IGMP snooping off: the bridge floods multicast to every port, like a cheap unmanaged switch. With
    // snooping on it would forward a group only to ports it saw join, and the join reports can race a
    // test's first datagram.
    await inNs(switchNs, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    await inNs(switchNs, 'link', 'set', 'br0', 'up');

    for (const [i, name] of opts.hosts.entries()) {
      const h = hosts[name];
      await addNamespace(h.ns);
      // The veth pair is born in the switch namespace, and its far end is moved straight into the host's
      // namespace as eth0. Interface names are per namespace, so short fixed names can't collide with a
      // parallel run (and stay under the kernel's 15-character limit).
      await inNs(switchNs, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', h.iface, 'netns', h.ns);
      await inNs(switchNs, 'link', 'set', `p${i}`, 'master', 'br0');
      await inNs(switchNs, 'link', 'set', `p${i}`, 'up');
      await inNs(h.ns, 'link', 'set', 'lo', 'up');
      // `brd +` sets the broadcast address (all host bits 1), so `<subnet>.255` reaches every host.
      await inNs(h.ns, 'addr', 'add', `${h.address}/${prefixLength}`, 'brd', '+', 'dev', h.iface);
      await inNs(h.ns, 'link', 'set', h.iface, 'up');
      // Multicast goes out eth0 even when a socket doesn't name an interface. The namespace has no
      // default route, so without this sending to 239.x fails with ENETUNREACH.
      await inNs(h.ns, 'route', 'add', '224.0.0.0/4', 'dev', h.iface);
    }
  } catch (err) {
    // Half a LAN is no use to anyone: remove what was made, then report.
    await destroy();
    throw err;
  }

  const spawn = (
    host: string,
    command: string,
    args: string[] = [],
    opts: SpawnOptions = {},
  ): ChildProcess => {
    if (destroyed) throw new Error('LAN already destroyed');
    // `ip netns exec` enters the namespace and then execs the command, so the child's pid is the
    // command's own and signals reach it directly.
    const child = spawnChild('ip', ['netns', 'exec', hostOf(host).ns, command, ...args], opts);
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  };

  const setLoss = async (host: string, percent: number): Promise<void> => {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100)
      throw new Error(`loss must be 0..100: ${percent}`);
    if (percent === 0) return clearLoss(host);
    // A `netdev` table hooked on the host's card: `ingress` sees packets as they arrive from the wire,
    // `egress` as they leave for it. Why not the usual `inet` input/output hooks: a packet dropped in
    // `output` makes the sender's send() fail with EPERM, which real packet loss never does (and the app
    // might react to). A drop at `egress` is silent, like a lost frame. Loopback traffic is untouched:
    // the loss stands for a bad network card/link, not for the host talking to itself.
    // For 100 % the numgen test is left out: nft types `numgen random mod 100` as 0..99 and rejects the
    // constant in `< 100`.
    // One nft transaction: "table …" creates the table if missing, "delete table" removes it with any
    // old rules, then the new one is added; so setLoss replaces earlier loss atomically.
    const { ns, iface } = hostOf(host);
    const drop = `meta l4proto udp ${percent === 100 ? '' : `numgen random mod 100 < ${percent} `}drop`;
    const ruleset = `
      table netdev pct_loss
      delete table netdev pct_loss
      table netdev pct_loss {
        chain ingress {
          type filter hook ingress device "${iface}" priority 0; policy accept;
          ${drop}
        }
        chain egress {
          type filter hook egress device "${iface}" priority 0; policy accept;
          ${drop}
        }
      }
    `;
    await nft(ns, ruleset);
  };

  const clearLoss = async (host: string): Promise<void> => {
    await nft(hostOf(host).ns, 'table netdev pct_loss\ndelete table netdev pct_loss\n');
  };

  return {
    runId,
    subnet,
    prefixLength,
    broadcastAddress: intToIp(broadcast),
    hosts,
    switchNs,
    exec: (host, command, args = []) => run('ip', ['netns', 'exec', hostOf(host).ns, command, ...args]),
    spawn,
    setLoss,
    clearLoss,
    destroy,
    destroyNow,
  };
}

/** Feeds a ruleset to `nft -f -` inside a namespace. */
function nft(ns: string, ruleset: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnChild('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`nft in ${ns} failed: ${stderr.trim()}`)),
    );
    child.stdin.end(ruleset);
  });
}

/** SIGTERM, then SIGKILL if it hasn't exited after a second. Resolves when it has exited. */
export function stopChild(child: ChildProcess, graceMs = 1000): Promise<void> {
  // No pid: it never started. Exit code or signal set: it has already exited.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
