/**
 * `payconnect service install` and `payconnect service uninstall`: the Windows install of a register PC, run
 * by node.exe from the unzipped package (install.ps1 and uninstall.ps1 only check for Administrator and call
 * these with the same options). In Node rather than PowerShell so that the whole of it runs in CI, under
 * Wine (test/windows/service-install-wine.spec.ts), with the same sc.exe, netsh.exe and icacls.exe calls.
 *
 * Install (and upgrade: the same command again), in this order, each step named in its error:
 *   1. check the package          the folder this node.exe runs from holds node.exe, app\ and the wrapper
 *   2. validate the manifest      before anything is changed: a typo leaves the running install alone
 *   3. stop the running service   sc stop, then wait for STOPPED (the wrapper gives the plugin 10 s to close);
 *                                 an older install's scheduled task of the same name is ended and deleted
 *   4. replace the program files  %ProgramFiles%\payconnect removed and copied from the package
 *   5. prepare the data folder    %ProgramData%\payconnect\data and \logs: created, never emptied
 *   6. store the registration code  one use: data\registration-code, for SYSTEM only (icacls); the plugin
 *                                 reads it (--registration-code-file) and deletes it once registered
 *   7. write payconnect-service.conf  what payconnect-service.exe runs (native/service/payconnect_service.c)
 *   8. register the service       sc create (first install) and sc failure (restart the wrapper if it fails)
 *   9. open the firewall          netsh advfirewall rule payconnect-lan-udp: UDP --plugin-port inbound, for
 *                                 this install's node.exe only
 *  10. start the service          sc start, then wait for RUNNING
 * Uninstall reverses 10, 9, 8, 3 and 4; the data folder stays unless --remove-data.
 *
 * Every Windows program is called through `WindowsSystem`, so the spec beside this file checks the exact
 * commands (the firewall's above all: Wine's netsh is a stub) without Windows.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ManifestInvalidError } from '../adapters/field-problems';
import { loadManifestFile, MANIFEST_EXTENSION } from '../adapters/manifest';
import { adapterSpec, availableKinds } from '../adapters/registry';
import { DEFAULT_PLUGIN_PORT, DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { PayconnectError } from '../protocol/errors';
import { Command, intOption, ipv4Option, parse, UsageError } from './args';
import { removeFolderAfterExit } from './remove-later';

export const SERVICE_NAME = 'payconnect';
export const FIREWALL_RULE = 'payconnect-lan-udp';
export const CONF_FILE = 'payconnect-service.conf';
export const CODE_FILE = 'registration-code';
export const LOG_MAX_BYTES = 10 * 1024 * 1024;
export const LOG_KEEP = 5;
/** LocalSystem's SID: icacls takes it in any Windows language, where the name "SYSTEM" may be translated. */
const SYSTEM_SID = '*S-1-5-18';

/** A step of the install that failed: its name, what went wrong and what to do, for the reseller on site. */
export class ServiceStepError extends PayconnectError {
  constructor(
    readonly step: string,
    problem: string,
    todo: string,
  ) {
    super('service.step_failed', `${step} failed: ${problem}. ${todo}`, { subject: step });
  }
}

export interface CommandResult {
  code: number;
  out: string;
}

/** The Windows programs the install runs, and the wait between polls: what the spec replaces. */
export interface WindowsSystem {
  run(exe: string, args: string[]): Promise<CommandResult>;
  sleep(ms: number): Promise<void>;
}

/** One run of a Windows program by name (from System32): no shell, so no quoting beyond CreateProcess's. */
function runOnce(exe: string, args: string[]): Promise<CommandResult & { spawnFailed?: string }> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    } catch (e) {
      resolve({ code: -1, out: '', spawnFailed: (e as Error).message });
      return;
    }
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (e) => resolve({ code: -1, out, spawnFailed: e.message }));
    // On its exit, not only when its output closes: a program it starts (schtasks starting the task
    // scheduler, seen under Wine) can hold the pipe open for ever. A second for the last output to arrive.
    const timer = setTimeout(() => {
      child.kill();
      resolve({ code: -1, out: `${out}\n(${exe}: no answer within ${COMMAND_TIMEOUT_MS / 1000} s)` });
    }, COMMAND_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const done = () => resolve({ code: code ?? -1, out });
      const grace = setTimeout(done, 1000);
      child.once('close', () => {
        clearTimeout(grace);
        done();
      });
    });
  });
}

const COMMAND_TIMEOUT_MS = 120_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const realWindowsSystem: WindowsSystem = {
  async run(exe, args) {
    let r = await runOnce(exe, args);
    // Starting a program can fail for a moment (seen under Wine: spawn UNKNOWN now and then, the same
    // command fine a second later): tried again before the step is failed on it.
    for (let attempt = 1; r.spawnFailed && attempt < 5; attempt++) {
      await sleep(500);
      r = await runOnce(exe, args);
    }
    if (r.spawnFailed) r = { code: -1, out: `${exe} could not be started: ${r.spawnFailed}` };
    // PAYCONNECT_DEBUG=1: every command and its answer, for support on the phone.
    if (process.env.PAYCONNECT_DEBUG)
      process.stderr.write(`> ${exe} ${args.join(' ')}\n  exit ${r.code}: ${r.out.trim()}\n`);
    return { code: r.code, out: r.out };
  },
  sleep,
};

/** Where things go: %ProgramFiles%\payconnect and %ProgramData%\payconnect on a register PC. */
export interface ServiceLayout {
  /** The unzipped package this install copies from. */
  packageDir: string;
  installDir: string;
  /** Holds data\ (registration, journal) and logs\. */
  dataRoot: string;
}

export function windowsLayout(): ServiceLayout {
  const programFiles = process.env.ProgramFiles ?? 'C:\\Program Files';
  const programData = process.env.ProgramData ?? 'C:\\ProgramData';
  return {
    // dist\cli\service.js inside app\ inside the package folder
    packageDir: path.resolve(__dirname, '..', '..', '..'),
    installDir: path.join(programFiles, 'payconnect'),
    dataRoot: path.join(programData, 'payconnect'),
  };
}

export interface InstallOptions {
  manifest: string;
  server: string;
  lanInterface: string;
  registrationCode?: string;
  lanBroadcast?: string;
  port: number;
  lanPort: number;
  pluginPort: number;
  nodeOptions: string[];
  logMaxBytes: number;
  logKeep: number;
}

type Say = (line: string) => void;

/** The service's state from `sc query` (RUNNING, STOPPED, …), or undefined when there is no such service. */
async function serviceState(sys: WindowsSystem): Promise<string | undefined> {
  const q = await sys.run('sc.exe', ['query', SERVICE_NAME]);
  if (q.code !== 0) return undefined;
  return /STATE\s+:\s+\d+\s+(\w+)/.exec(q.out)?.[1] ?? 'UNKNOWN';
}

async function waitForState(
  sys: WindowsSystem,
  wanted: string,
  timeoutMs: number,
): Promise<string | undefined> {
  let state = await serviceState(sys);
  for (let waited = 0; state !== wanted && state !== undefined && waited < timeoutMs; waited += 500) {
    await sys.sleep(500);
    state = await serviceState(sys);
  }
  return state;
}

/** Stops the service (when there is one) and an older install's scheduled task; returns whether the service exists. */
async function stopService(sys: WindowsSystem, step: string, say: Say): Promise<boolean> {
  const state = await serviceState(sys);
  if (state !== undefined && state !== 'STOPPED') {
    // Not its exit code: sc stop also fails for a service already stopping. The state is what counts.
    await sys.run('sc.exe', ['stop', SERVICE_NAME]);
    const now = await waitForState(sys, 'STOPPED', 30_000);
    if (now !== 'STOPPED' && now !== undefined)
      throw new ServiceStepError(
        step,
        `the service ${SERVICE_NAME} is still ${now} after 30 s`,
        'Look at the end of the plugin log, stop it in services.msc (or end node.exe in Task Manager), then run this again',
      );
    say(`stopped the service ${SERVICE_NAME}`);
  }
  // An install from before the service ran the plugin as a scheduled task of the same name.
  // Its name in the answer, not only exit 0: Wine's schtasks answers every /Query with 0 and nothing.
  const task = await sys.run('schtasks.exe', ['/Query', '/TN', SERVICE_NAME]);
  if (task.code === 0 && task.out.toLowerCase().includes(SERVICE_NAME)) {
    await sys.run('schtasks.exe', ['/End', '/TN', SERVICE_NAME]);
    const del = await sys.run('schtasks.exe', ['/Delete', '/TN', SERVICE_NAME, '/F']);
    if (del.code !== 0)
      throw new ServiceStepError(
        step,
        `the old scheduled task ${SERVICE_NAME} could not be deleted (${del.out.trim()})`,
        'Delete it in Task Scheduler, then run this again',
      );
    say(`removed the old scheduled task ${SERVICE_NAME}`);
  }
  return state !== undefined;
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a).toLowerCase() === path.resolve(b).toLowerCase();
}

/** Whether this node.exe runs from `dir` (uninstall started from the installed copy). */
function runsFrom(dir: string): boolean {
  return samePath(path.dirname(process.execPath), dir);
}

function removeProgramFiles(dir: string, step: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 500 });
  } catch (e) {
    throw new ServiceStepError(
      step,
      `${dir} could not be removed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      'A program still has a file of it open (node.exe, an Explorer window, an editor): close it, then run this again',
    );
  }
}

/** A manifest name from app\manifests (without .yaml), or a path. Refused with every problem listed. */
async function checkManifest(file: string, step: string): Promise<void> {
  const todo = `Check it with payconnect.cmd manifest validate "${file}", or pick another (payconnect.cmd manifest list)`;
  try {
    const manifest = await loadManifestFile(file);
    if (!adapterSpec(manifest.adapter).available)
      throw new ServiceStepError(
        step,
        `${file}: adapter "${manifest.adapter}" is not in this version (available: ${availableKinds().join(', ')})`,
        todo,
      );
  } catch (e) {
    if (e instanceof ServiceStepError) throw e;
    if (e instanceof ManifestInvalidError)
      throw new ServiceStepError(
        step,
        `${file}: ${e.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
        todo,
      );
    throw new ServiceStepError(step, `${file}: ${(e as Error).message}`, todo);
  }
}

/** payconnect-service.conf: what the wrapper runs, one setting a line (no command-line quoting), UTF-8. */
export function serviceConf(layout: ServiceLayout, o: InstallOptions, manifestPath: string): string {
  const dataDir = path.join(layout.dataRoot, 'data');
  const pluginArgs = [
    ['--manifest', manifestPath],
    ['--server', o.server],
    ['--port', String(o.port)],
    ['--data', dataDir],
    ['--lan-interface', o.lanInterface],
    ['--lan-port', String(o.lanPort)],
    ['--plugin-port', String(o.pluginPort)],
    // Always named: the file is there until the plugin registers, and gone after; an upgrade needs no code.
    ['--registration-code-file', path.join(dataDir, CODE_FILE)],
    ...(o.lanBroadcast ? [['--lan-broadcast', o.lanBroadcast]] : []),
  ].flat();
  return [
    '# written by payconnect service install (install.ps1); read by payconnect-service.exe when it starts',
    `log=${path.join(layout.dataRoot, 'logs', 'plugin.log')}`,
    `log-max-bytes=${o.logMaxBytes}`,
    `log-keep=${o.logKeep}`,
    ...o.nodeOptions.map((n) => `node-option=${n}`),
    ...pluginArgs.map((a) => `arg=${a}`),
    '',
  ].join('\r\n');
}

export async function installService(
  layout: ServiceLayout,
  o: InstallOptions,
  sys: WindowsSystem = realWindowsSystem,
  say: Say = (l) => void process.stdout.write(`${l}\n`),
): Promise<void> {
  const { packageDir, installDir, dataRoot } = layout;
  const dataDir = path.join(dataRoot, 'data');
  const logDir = path.join(dataRoot, 'logs');

  let step = 'check the package';
  for (const part of ['node.exe', 'payconnect-service.exe', path.join('app', 'bin', 'payconnect.js')])
    if (!existsSync(path.join(packageDir, part)))
      throw new ServiceStepError(
        step,
        `${path.join(packageDir, part)} is missing`,
        'Unzip payconnect-win-x64.zip again, whole, and run install.ps1 from its payconnect folder',
      );

  step = 'validate the manifest';
  const byName = !/[\\/]/.test(o.manifest) && !o.manifest.endsWith(MANIFEST_EXTENSION);
  const inPackage = byName
    ? path.join(packageDir, 'app', 'manifests', `${o.manifest}${MANIFEST_EXTENSION}`)
    : path.resolve(o.manifest);
  if (!existsSync(inPackage))
    throw new ServiceStepError(
      step,
      `there is no manifest ${inPackage}`,
      'Give a name from app\\manifests without .yaml (payconnect.cmd manifest list), or the path of your own',
    );
  await checkManifest(inPackage, step);
  // A packaged manifest is used from the installed copy, so removing the unzipped folder changes nothing.
  const manifestPath = byName
    ? path.join(installDir, 'app', 'manifests', `${o.manifest}${MANIFEST_EXTENSION}`)
    : inPackage;

  step = 'stop the running service';
  const upgrade = await stopService(sys, step, say);

  step = 'replace the program files';
  if (samePath(packageDir, installDir)) {
    say(`program files: already in ${installDir} (run from the installed copy: settings only)`);
  } else {
    removeProgramFiles(installDir, step);
    try {
      cpSync(packageDir, installDir, { recursive: true });
    } catch (e) {
      throw new ServiceStepError(
        step,
        `copying ${packageDir} to ${installDir}: ${(e as Error).message}`,
        'Check the disk has room and you run as Administrator, then run this again',
      );
    }
    say(`program files copied to ${installDir}`);
  }

  step = 'prepare the data folder';
  try {
    mkdirSync(dataDir, { recursive: true });
    mkdirSync(logDir, { recursive: true });
  } catch (e) {
    throw new ServiceStepError(step, `${dataRoot}: ${(e as Error).message}`, 'Run as Administrator');
  }
  say(`data: ${dataDir}${upgrade ? ' (kept)' : ''}`);

  if (o.registrationCode) {
    step = 'store the registration code';
    const codeFile = path.join(dataDir, CODE_FILE);
    writeFileSync(codeFile, `${o.registrationCode}\r\n`, { mode: 0o600 });
    // LocalSystem only (the service's account): no inherited entries, no Users, no Administrators group.
    const acl = await sys.run('icacls.exe', [codeFile, '/inheritance:r', '/grant:r', `${SYSTEM_SID}:F`]);
    if (acl.code !== 0) {
      rmSync(codeFile, { force: true });
      throw new ServiceStepError(
        step,
        `icacls could not limit ${codeFile} to the service (${acl.out.trim() || `exit ${acl.code}`})`,
        'Run as Administrator, on an NTFS disk',
      );
    }
    say(`registration code stored for the service's first start (deleted once registered)`);
  }

  step = 'write payconnect-service.conf';
  const conf = path.join(installDir, CONF_FILE);
  try {
    writeFileSync(conf, serviceConf(layout, o, manifestPath));
  } catch (e) {
    throw new ServiceStepError(step, `${conf}: ${(e as Error).message}`, 'Run as Administrator');
  }

  step = 'register the service';
  if (!upgrade) {
    const exe = path.join(installDir, 'payconnect-service.exe');
    const created = await sys.run('sc.exe', [
      'create',
      SERVICE_NAME,
      'binPath=',
      `"${exe}"`,
      'start=',
      'auto',
      'DisplayName=',
      'payconnect',
    ]);
    if (created.code !== 0)
      throw new ServiceStepError(
        step,
        `sc create: ${created.out.trim() || `exit ${created.code}`}`,
        'Run as Administrator',
      );
    await sys.run('sc.exe', ['description', SERVICE_NAME, 'payconnect plugin for this register']);
  }
  // If the wrapper itself fails: restart the service after 5 s, 10 s, then every 60 s; the count resets daily.
  const failure = await sys.run('sc.exe', [
    'failure',
    SERVICE_NAME,
    'reset=',
    '86400',
    'actions=',
    'restart/5000/restart/10000/restart/60000',
  ]);
  if (failure.code !== 0)
    throw new ServiceStepError(
      step,
      `sc failure: ${failure.out.trim() || `exit ${failure.code}`}`,
      'Run as Administrator',
    );
  say(`service ${SERVICE_NAME} ${upgrade ? 'kept' : 'created'} (automatic start, restarted if it fails)`);

  step = 'open the firewall';
  // Replaced, not added twice; "no rule matched" on a first install is fine.
  await sys.run('netsh.exe', ['advfirewall', 'firewall', 'delete', 'rule', `name=${FIREWALL_RULE}`]);
  const rule = await sys.run('netsh.exe', [
    'advfirewall',
    'firewall',
    'add',
    'rule',
    `name=${FIREWALL_RULE}`,
    'dir=in',
    'action=allow',
    'protocol=UDP',
    `localport=${o.pluginPort}`,
    `program=${path.join(installDir, 'node.exe')}`,
    'profile=any',
    'enable=yes',
  ]);
  if (rule.code !== 0)
    throw new ServiceStepError(
      step,
      `netsh advfirewall: ${rule.out.trim() || `exit ${rule.code}`}`,
      `Is the Windows Firewall service running? Add an inbound rule for UDP ${o.pluginPort} by hand, or run this again`,
    );
  say(`firewall rule ${FIREWALL_RULE}: UDP ${o.pluginPort} inbound for ${path.join(installDir, 'node.exe')}`);

  step = 'start the service';
  const start = await sys.run('sc.exe', ['start', SERVICE_NAME]);
  const state = await waitForState(sys, 'RUNNING', 30_000);
  if (state !== 'RUNNING')
    throw new ServiceStepError(
      step,
      `the service ${SERVICE_NAME} is ${state ?? 'missing'}, not RUNNING (sc start said: ${start.out.trim() || `exit ${start.code}`})`,
      `Read ${path.join(logDir, 'plugin.log')}: its last payconnect-service: line says why`,
    );
  say(`payconnect installed in ${installDir}; data in ${dataDir}; log ${path.join(logDir, 'plugin.log')}`);
  say(`status page: http://127.0.0.1:${o.port}/`);
}

export async function uninstallService(
  layout: ServiceLayout,
  o: { removeData: boolean },
  sys: WindowsSystem = realWindowsSystem,
  say: Say = (l) => void process.stdout.write(`${l}\n`),
): Promise<void> {
  let step = 'stop the running service';
  const existed = await stopService(sys, step, say);

  step = 'delete the service';
  if (existed) {
    const del = await sys.run('sc.exe', ['delete', SERVICE_NAME]);
    if (del.code !== 0)
      throw new ServiceStepError(
        step,
        `sc delete: ${del.out.trim() || `exit ${del.code}`}`,
        'Run as Administrator',
      );
    say(`service ${SERVICE_NAME} deleted`);
  } else {
    say(`no service ${SERVICE_NAME} (already removed)`);
  }

  step = 'close the firewall';
  // By its exact name: no other rule is touched. None there is fine (already removed).
  await sys.run('netsh.exe', ['advfirewall', 'firewall', 'delete', 'rule', `name=${FIREWALL_RULE}`]);
  say(`firewall rule ${FIREWALL_RULE} removed`);

  step = 'remove the program files';
  if (runsFrom(layout.installDir)) {
    // node.exe cannot delete itself on Windows, and cmd.exe still reads payconnect.cmd after node.exe
    // exits: everything else now, those two by a cmd.exe that waits for this process to end.
    for (const name of readdirSync(layout.installDir))
      if (!['node.exe', 'payconnect.cmd'].includes(name.toLowerCase()))
        rmSync(path.join(layout.installDir, name), { recursive: true, force: true });
    try {
      removeFolderAfterExit(layout.installDir);
      say(`${layout.installDir} removed (node.exe and payconnect.cmd a few seconds after this ends)`);
    } catch (e) {
      say(`${(e as Error).message}: delete ${layout.installDir} by hand once this has ended`);
    }
  } else {
    removeProgramFiles(layout.installDir, step);
    say(`${layout.installDir} removed`);
  }

  if (o.removeData) {
    step = 'remove the data';
    removeProgramFiles(layout.dataRoot, step);
    say(`payconnect removed, with its data (${layout.dataRoot}); the PC must be registered again`);
  } else {
    say(`payconnect removed; its data is kept in ${layout.dataRoot} (--remove-data deletes it)`);
  }
}

export const serviceInstall: Command = {
  usage: `payconnect service install --manifest NAME --server URL --lan-interface ADDR [--registration-code CODE] [options]

Installs or upgrades payconnect on this Windows PC (as Administrator; install.ps1 calls this): stops the
running service, copies this package to %ProgramFiles%\\payconnect, keeps %ProgramData%\\payconnect (data,
logs), validates the manifest, writes payconnect-service.conf, registers and starts the Windows service
"payconnect", and opens the firewall rule ${FIREWALL_RULE} for the plugin's UDP port. A failed step is named,
with what to do.

  --manifest NAME          a name from app\\manifests (without .yaml), or a path
  --server URL             the payment server URL
  --lan-interface ADDR     this PC's address on the shop network
  --registration-code CODE first install only: kept for the service alone and deleted once registered
  --lan-broadcast ADDR     the shop network's broadcast address (default: derived by the plugin)
  --port P                 local API and status page on 127.0.0.1 (default 8701)
  --lan-port N             the units' UDP port (default ${DEFAULT_UNIT_PORT})
  --plugin-port N          the plugin's UDP port, opened in the firewall (default ${DEFAULT_PLUGIN_PORT})
  --node-option OPT        an option for node.exe itself, e.g. --max-old-space-size=256; repeatable
  --log-max-bytes N        plugin.log is rotated at this size (default ${LOG_MAX_BYTES})
  --log-keep N             rotated logs kept, plugin.log.1 the newest (default ${LOG_KEEP})`,
  async run(argv) {
    const { values } = parse(argv, {
      manifest: { type: 'string' },
      server: { type: 'string' },
      'lan-interface': { type: 'string' },
      'registration-code': { type: 'string' },
      'lan-broadcast': { type: 'string' },
      port: { type: 'string' },
      'lan-port': { type: 'string' },
      'plugin-port': { type: 'string' },
      'node-option': { type: 'string', multiple: true },
      'log-max-bytes': { type: 'string' },
      'log-keep': { type: 'string' },
    });
    const v = (name: string) => values[name] as string | undefined;
    if (!v('manifest')) throw new UsageError('--manifest NAME is needed (see payconnect manifest list)');
    const server = v('server');
    if (!server || !/^https?:\/\/.+/.test(server))
      throw new UsageError('--server must be the payment server URL, e.g. https://pay.example.com');
    const lanInterface = ipv4Option(v('lan-interface'), 'lan-interface');
    if (!lanInterface)
      throw new UsageError("--lan-interface ADDR is needed: this PC's address on the shop network");
    await installService(windowsLayout(), {
      manifest: v('manifest')!,
      server: server.replace(/\/+$/, ''),
      lanInterface,
      registrationCode: v('registration-code')?.trim() || undefined,
      lanBroadcast: ipv4Option(v('lan-broadcast'), 'lan-broadcast'),
      port: intOption(v('port'), 'port', 8701, 1),
      lanPort: intOption(v('lan-port'), 'lan-port', DEFAULT_UNIT_PORT, 1),
      pluginPort: intOption(v('plugin-port'), 'plugin-port', DEFAULT_PLUGIN_PORT, 1),
      nodeOptions: (values['node-option'] as string[] | undefined) ?? [],
      logMaxBytes: intOption(v('log-max-bytes'), 'log-max-bytes', LOG_MAX_BYTES, 256, 2 ** 31 - 1),
      logKeep: intOption(v('log-keep'), 'log-keep', LOG_KEEP, 1, 99),
    });
    return 0;
  },
};

export const serviceUninstall: Command = {
  usage: `payconnect service uninstall [--remove-data]

Removes what service install made (as Administrator; uninstall.ps1 calls this): the service "payconnect"
(stopped, then deleted), the firewall rule ${FIREWALL_RULE} (by that exact name) and %ProgramFiles%\\payconnect.
%ProgramData%\\payconnect (registration, order journal, logs) is kept unless --remove-data.`,
  async run(argv) {
    const { values } = parse(argv, { 'remove-data': { type: 'boolean' } });
    await uninstallService(windowsLayout(), { removeData: values['remove-data'] === true });
    return 0;
  },
};
