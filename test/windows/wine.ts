/**
 * Windows programs in tests, on Linux: a throwaway Wine prefix (a Windows installation in a folder) whose
 * COM ports are Linux devices, and payconnect run in it by Node.js for Windows (node.exe), as on a register
 * PC. Specs check `systemPrerequisites(['wine64', 'nodeWin', ...])` first (test/support/prerequisites.ts).
 *
 * Wine facts this relies on (Debian bookworm, Wine 8.0):
 * - `HKLM\Software\Wine\Ports`, value `COM7` = a device path, maps COM7 to that device. Wine's mount
 *   manager reads the key when the prefix's wineserver starts and makes `dosdevices/com7` a link to it, so
 *   ports are set before the programs that open them start (the prefix is restarted after setting them).
 * - A new prefix says it is Windows 7, which Node 22 refuses to start on: the prefix is set to Windows 10.
 * - node.exe under Wine cannot write its stdout to a pipe (EBADF when the stream is created), but can to a
 *   file: output goes to files, read back here.
 * - SIGINT reaches the Windows program as Ctrl+C (payconnect stops gracefully); SIGTERM kills it outright.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../support/child-process';
import { makeNative } from '../native/support/native-build';
import { NODE_WIN_EXE, systemPrerequisites, WINE64, WINESERVER } from '../support/prerequisites';

/** A Linux path as Wine's drive Z: (the Linux root) shows it to a Windows program. */
export function winPath(linuxPath: string): string {
  return `Z:${path.resolve(linuxPath).replace(/\//g, '\\')}`;
}

/** Runs one Wine command in the prefix to its end; rejects with its output on a non-zero exit or timeout. */
function wine(env: NodeJS.ProcessEnv, command: string, args: string[], timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited ${code ?? signal}:\n${out}`));
    });
  });
}

export class WinePrefix {
  readonly env: NodeJS.ProcessEnv;

  private constructor(readonly dir: string) {
    this.env = {
      ...process.env,
      WINEPREFIX: dir,
      WINEDEBUG: '-all',
      // No Mono (.NET) or Gecko (HTML) installers: they would be downloaded, and nothing here needs them.
      WINEDLLOVERRIDES: 'mscoree,mshtml=',
    };
  }

  /**
   * Makes a Windows 10 prefix in `dir` (which must not exist) with `ports` mapped (`{ COM7: '/dev/pts/4' }`).
   * Takes some seconds: Wine boots a whole Windows user space.
   */
  static async create(dir: string, ports: Record<string, string>): Promise<WinePrefix> {
    const prefix = new WinePrefix(dir);
    const reg = path.join(path.dirname(dir), `${path.basename(dir)}.reg`);
    try {
      await wine(prefix.env, WINE64, ['wineboot', '--init']);
      const lines = ['REGEDIT4', '', '[HKEY_CURRENT_USER\\Software\\Wine]', '"Version"="win10"', ''];
      lines.push('[HKEY_LOCAL_MACHINE\\Software\\Wine\\Ports]');
      for (const [com, device] of Object.entries(ports)) lines.push(`"${com}"="${device}"`);
      writeFileSync(reg, `${lines.join('\r\n')}\r\n`);
      await wine(prefix.env, WINE64, ['reg', 'import', winPath(reg)]);
      // The ports are read when the wineserver starts: end this one so the next program gets them.
      await prefix.shutdown();
      return prefix;
    } catch (e) {
      await prefix.remove(); // no wineserver left running for a prefix nobody will use
      throw e;
    } finally {
      rmSync(reg, { force: true });
    }
  }

  /** Ends every Windows process of the prefix and waits for its wineserver to exit. */
  async shutdown(): Promise<void> {
    await wine(this.env, WINESERVER, ['--kill']).catch(() => undefined); // none running is fine
    await wine(this.env, WINESERVER, ['--wait']).catch(() => undefined);
  }

  /** shutdown(), then the prefix is deleted. */
  async remove(): Promise<void> {
    await this.shutdown();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * `node.exe args…` in the prefix, from `cwd` (seen as Z:\…), with stdout and stderr to files in `logDir`.
   */
  nodeWin(name: string, args: string[], cwd: string, logDir: string): WindowsProcess {
    mkdirSync(logDir, { recursive: true });
    const stdout = path.join(logDir, `${name}.stdout`);
    const stderr = path.join(logDir, `${name}.stderr`);
    const out = openSync(stdout, 'w');
    const err = openSync(stderr, 'w');
    try {
      const child = spawn(WINE64, [NODE_WIN_EXE, ...args], {
        cwd,
        env: this.env,
        stdio: ['ignore', out, err],
      });
      return new WindowsProcess(child, stdout, stderr);
    } finally {
      closeSync(out);
      closeSync(err);
    }
  }
}

/**
 * Any Windows program (`exe`, a Linux path) with `args` in `prefix`, from `cwd`, stdout and stderr to files
 * in `logDir`, with `env` added to the prefix's environment (Wine passes it on to the program): e.g.
 * `cmd.exe /c payconnect.cmd …` from an unpacked install, or a node.exe other than NODE_WIN_EXE.
 */
export function windowsProgram(
  prefix: WinePrefix,
  name: string,
  exe: string,
  args: string[],
  o: { cwd: string; logDir: string; env?: NodeJS.ProcessEnv },
): WindowsProcess {
  mkdirSync(o.logDir, { recursive: true });
  const stdout = path.join(o.logDir, `${name}.stdout`);
  const stderr = path.join(o.logDir, `${name}.stderr`);
  const out = openSync(stdout, 'w');
  const err = openSync(stderr, 'w');
  try {
    const child = spawn(WINE64, [exe, ...args], {
      cwd: o.cwd,
      env: { ...prefix.env, ...o.env },
      stdio: ['ignore', out, err],
    });
    return new WindowsProcess(child, stdout, stderr);
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

export class WindowsProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private done = false;

  constructor(
    readonly child: ChildProcess,
    private readonly stdoutFile: string,
    private readonly stderrFile: string,
  ) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      }),
    );
  }

  get stdout(): string {
    return readFileSync(this.stdoutFile, 'utf8');
  }

  get stderr(): string {
    return readFileSync(this.stderrFile, 'utf8');
  }

  /** Ctrl+C (SIGINT, which Wine hands to the program as such), then a kill after `graceMs`. */
  async stop(graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.done) {
      this.child.kill('SIGINT');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      void this.exited.then(() => clearTimeout(timer));
    }
    return this.exited;
  }
}

/**
 * One of Wine's own programs (`sc`, `net`, `taskkill`, `tasklist`, …) in `prefix` to its end: its exit code
 * and output (stdout and stderr together; these write to a pipe fine), never a rejection but on a timeout.
 */
export function wineCommand(
  prefix: WinePrefix,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(WINE64, args, {
      env: { ...prefix.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wine ${args.join(' ')}: no exit within ${o.timeoutMs ?? 60_000} ms:\n${out}`));
    }, o.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/**
 * Wine 8 only: Winsock refuses keep-alive on a socket that is still connecting (libuv says UNKNOWN, -4094),
 * which Node's fetch (undici) sets right after connect(), so every fetch fails under Wine while http.get
 * works; Windows itself accepts it. This test-only preload defers that call to 'connect'. The zip is not
 * changed for Wine.
 */
export const WINE_KEEPALIVE_SHIM = `'use strict';
const net = require('node:net');
const setKeepAlive = net.Socket.prototype.setKeepAlive;
net.Socket.prototype.setKeepAlive = function (enable, delay) {
  if (this.connecting) {
    this.once('connect', () => setKeepAlive.call(this, enable, delay));
    return this;
  }
  return setKeepAlive.call(this, enable, delay);
};
`;

/**
 * payconnect-win-x64.zip unpacked into `dir`; returns the unpacked payconnect\ folder. Uses the zip named by
 * PAYCONNECT_WIN_ZIP (one already built, while working on a spec), else runs package:win — once per test run:
 * the Windows specs run in parallel workers, so the build holds a lock (flock), and a zip newer than dist/
 * (which `npm test` rebuilds before the specs, and package:win before zipping) is this run's and is reused.
 * Without that, each spec rebuilt dist/ and the zip while the others were reading them.
 */
const WIN_ZIP = 'var/package/payconnect-win-x64.zip';

export function unpackWinZip(dir: string): string {
  let zip = process.env.PAYCONNECT_WIN_ZIP;
  if (!zip) {
    const built = Date.now();
    const script = `z=${WIN_ZIP}; [ -f "$z" ] && [ "$z" -nt dist/cli/main.js ] && { echo "$z"; echo "package:win: reused $z, newer than dist/" >&2; exit 0; }; exec bash scripts/package-win.sh`;
    mkdirSync(path.join(REPO_ROOT, 'var'), { recursive: true });
    const pkg = spawnSync('flock', [path.join(REPO_ROOT, 'var', 'package-win.lock'), 'bash', '-c', script], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (pkg.status !== 0) throw new Error(`package:win failed:\n${pkg.stdout}\n${pkg.stderr}`);
    zip = path.join(REPO_ROOT, pkg.stdout.trim().split('\n').pop()!);
    console.log(`package:win: ${pkg.stderr.trim().split('\n').pop()} (${Date.now() - built} ms here)`);
  }
  const unzip = spawnSync('unzip', ['-q', zip, '-d', dir], { encoding: 'utf8' });
  if (unzip.status !== 0) throw new Error(`unzip failed: ${unzip.stderr}`);
  return path.join(dir, 'payconnect');
}

/** What the specs of the Windows service need: Wine, Node for Windows, zip tools and the service wrapper
 * (payconnect-service.exe, built with MinGW-w64). */
export function serviceSpecPrerequisites(): ReturnType<typeof systemPrerequisites> {
  return systemPrerequisites([
    'wine64',
    'nodeWin',
    'zip',
    'unzip',
    {
      what: 'the Windows service wrapper (make -C native service: MinGW-w64)',
      check: () => {
        const r = makeNative('service');
        return r.status === 0 || `make -C native service failed: ${r.stderr.trim().split('\n').pop()}`;
      },
      install: '`apt-get install -y gcc-mingw-w64-x86-64 gcc-mingw-w64-i686`',
    },
  ]);
}
