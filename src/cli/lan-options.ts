/**
 * The LAN options every `payconnect lan …` tool shares, and opening an endpoint from them. The store LAN key
 * comes from `--key FILE` (JSON `{id, version, key}` as `lan keygen` writes it) or from a device's data
 * folder (`--data DIR`, file `lan-key.json`), which is where registered plugins and terminals keep it;
 * without either, from the default data folders (DEFAULT_KEY_FOLDERS).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
// Not the '../lan' index: it also exports the Nest transport, which would load Nest for a LAN check.
import { LanEndpoint, LanTarget } from '../lan/lan-endpoint';
import { LanKeyring, lanKeyFromJson } from '../lan/lan-keyring';
import {
  DEFAULT_MULTICAST_GROUP,
  DEFAULT_PLUGIN_PORT,
  DEFAULT_UNIT_PORT,
  UdpLanTransport,
} from '../lan/lan-transport';
import { LanKey } from '../protocol/lan-envelope';
import { intOption, ipv4Option, Options, UsageError } from './args';

/**
 * The data folders looked in when neither --key nor --data is given, relative to the working folder: where
 * the README's plugin command and `payconnect demo` keep theirs. A support engineer on the phone runs the
 * tool from the install folder and should not need to know where the key lives.
 */
export const DEFAULT_KEY_FOLDERS = ['var/plugin', 'var/demo/plugin'];

const KEY_FILE = 'lan-key.json';

export const LAN_OPTIONS: Options = {
  key: { type: 'string' },
  data: { type: 'string' },
  interface: { type: 'string' },
  broadcast: { type: 'string' },
  multicast: { type: 'string' },
  'unit-port': { type: 'string' },
  port: { type: 'string' },
};

export const LAN_OPTIONS_HELP = `  --key FILE          store LAN key file ({id, version, key}); or
  --data DIR          a plugin's or terminal's data folder (uses DIR/lan-key.json);
                      default: the first of ${DEFAULT_KEY_FOLDERS.map((d) => `./${d}`).join(', ')} that has one
  --interface ADDR    this PC's address on the shop network (multicast is sent from it)
  --broadcast ADDR    broadcast address (default 255.255.255.255)
  --multicast GROUP   also use multicast (default group ${DEFAULT_MULTICAST_GROUP} when --interface is set)
  --unit-port N       the units' shared port (default ${DEFAULT_UNIT_PORT})
  --port N            this tool's own UDP port (default: any free port)`;

export interface LanCliValues {
  key?: string;
  data?: string;
  interface?: string;
  broadcast?: string;
  multicast?: string;
  'unit-port'?: string;
  port?: string;
}

/**
 * The store LAN key, from --key FILE, from --data DIR, or else from the first default data folder that
 * holds one. Every failure says which files were looked at and what to give instead.
 */
export function loadLanKey(values: LanCliValues, note: (line: string) => void = () => {}): LanKey {
  let file: string;
  if (values.key) file = values.key;
  else if (values.data) file = join(values.data, KEY_FILE);
  else {
    const tried = DEFAULT_KEY_FOLDERS.map((dir) => resolve(dir, KEY_FILE));
    const found = tried.find((f) => existsSync(f));
    if (!found)
      throw new UsageError(
        `the store LAN key is needed: give --key FILE or --data DIR (a plugin's or unit's data folder); ` +
          `looked in ${tried.join(', ')}`,
      );
    file = found;
    note(`using the store LAN key in ${file}`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const hint =
      code === 'ENOENT'
        ? values.key
          ? `; a registered plugin or unit keeps it as ${KEY_FILE} in its data folder: give --data DIR`
          : `; is ${values.data} a plugin's or unit's data folder, and has that device registered?`
        : '';
    throw new UsageError(`cannot read the LAN key file ${resolve(file)}: ${code}${hint}`);
  }
  try {
    return lanKeyFromJson(JSON.parse(text), file);
  } catch (e) {
    throw new UsageError(`${file} is not a valid LAN key file: ${(e as Error).message}`);
  }
}

export const toStderr = (line: string): void => void process.stderr.write(`${line}\n`);

/** Where to look for units: broadcast always, multicast when an interface (or a group) is given. */
export function unitTargets(values: LanCliValues): LanTarget[] {
  const port = intOption(values['unit-port'], 'unit-port', DEFAULT_UNIT_PORT, 1);
  const targets: LanTarget[] = [
    { kind: 'broadcast', address: ipv4Option(values.broadcast, 'broadcast') ?? '255.255.255.255', port },
  ];
  const group =
    ipv4Option(values.multicast, 'multicast') ?? (values.interface ? DEFAULT_MULTICAST_GROUP : undefined);
  if (group) {
    if (!values.interface)
      throw new UsageError('--multicast needs --interface ADDR (the card that faces the units)');
    targets.push({ kind: 'multicast', group, port });
  }
  return targets;
}

export async function openToolEndpoint(values: LanCliValues, deviceId: string): Promise<LanEndpoint> {
  const key = loadLanKey(values, toStderr);
  const transport = await UdpLanTransport.open({
    port: intOption(values.port, 'port', 0),
    interfaceAddress: ipv4Option(values.interface, 'interface'),
  });
  return new LanEndpoint({ deviceId, keyring: new LanKeyring(key), transport });
}

/** The LAN options of the two device apps (`plugin`, `terminal`): the shop network they use. */
export const DEVICE_LAN_OPTIONS: Options = {
  'lan-interface': { type: 'string' },
  'lan-broadcast': { type: 'string' },
  'lan-port': { type: 'string' },
  'plugin-port': { type: 'string' },
  multicast: { type: 'boolean' },
  'allowed-hosts': { type: 'string' },
};

export interface DeviceLanConfig {
  interfaceAddress: string;
  broadcastAddress: string;
  unitPort: number;
  pluginPort: number;
  multicast: boolean;
  /** Extra host names the local HTTP API answers to (--allowed-hosts a,b), besides its own addresses. */
  allowedHosts: string[];
}

/** Loopback by default (the demo, a first try); a shop names its card and its broadcast address. */
export function deviceLanConfig(values: Record<string, unknown>): DeviceLanConfig {
  const iface = ipv4Option(values['lan-interface'] as string | undefined, 'lan-interface') ?? '127.0.0.1';
  return {
    interfaceAddress: iface,
    broadcastAddress:
      ipv4Option(values['lan-broadcast'] as string | undefined, 'lan-broadcast') ??
      (iface.startsWith('127.') ? '127.255.255.255' : '255.255.255.255'),
    unitPort: intOption(values['lan-port'] as string | undefined, 'lan-port', DEFAULT_UNIT_PORT, 1),
    pluginPort: intOption(values['plugin-port'] as string | undefined, 'plugin-port', DEFAULT_PLUGIN_PORT, 1),
    multicast: values.multicast === true,
    allowedHosts: allowedHostsOption(values['allowed-hosts'] as string | undefined),
  };
}

/** `--allowed-hosts a,b`: host names (no port, no scheme) a shop points at this PC, e.g. `kasse-1.lan`. */
export function allowedHostsOption(value: string | undefined): string[] {
  if (value === undefined) return [];
  const names = value.split(',').map((n) => n.trim().toLowerCase());
  for (const n of names)
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(n))
      throw new UsageError(
        `--allowed-hosts: '${n}' is not a host name; give names separated by commas, without port or scheme, e.g. --allowed-hosts kasse-1.lan`,
      );
  return names;
}

/**
 * The signals that ask a long-running command to stop: Ctrl+C (SIGINT), SIGTERM, and on Windows Ctrl+Break
 * (SIGBREAK, which Node raises for CTRL_BREAK_EVENT: a console's Ctrl+Break, or a service wrapper stopping a
 * child it started in its own process group). Without a listener, SIGBREAK ends node.exe at once, without
 * close(): a journal left mid-write and the LAN port held until Windows reclaims it.
 */
export const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGBREAK'];

/** Resolves with the first stop signal; its listeners are removed then, so a second Ctrl+C still kills. */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      for (const s of STOP_SIGNALS) process.removeListener(s, on);
      resolve(signal);
    };
    for (const s of STOP_SIGNALS) process.on(s, on);
  });
}

/** Runs until Ctrl+C, Ctrl+Break or SIGTERM, then closes what was started. */
export async function untilStopped(close: () => Promise<void>): Promise<void> {
  await stopSignal();
  await close();
}
