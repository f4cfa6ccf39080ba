/**
 * The files a registered device (plugin or unit) keeps in its data folder, readable only by its owner:
 * `device.json` (its registration: id, store, bearer token, server URL, the server key it pinned),
 * `lan-key.json` (the key it seals with, in the format the `payconnect lan` tools read) and
 * `lan-keys.json` (every key it accepts, newest first, for key rotation). Written atomically.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LanKeyJson } from '../lan/lan-keyring';

export function writeSecretFile(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function readDeviceFile<T>(dir: string): T | undefined {
  const path = join(dir, 'device.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : undefined;
}

export function saveLanKeys(dir: string, keys: LanKeyJson[]): void {
  writeSecretFile(join(dir, 'lan-key.json'), JSON.stringify(keys[0]) + '\n');
  writeSecretFile(join(dir, 'lan-keys.json'), JSON.stringify(keys) + '\n');
}

/** Saves a registration: keys first, device.json last, so a crash in between leaves the device unregistered. */
export function saveRegistration<T>(dir: string, device: T, keys: LanKeyJson[]): void {
  saveLanKeys(dir, keys);
  writeSecretFile(join(dir, 'device.json'), JSON.stringify(device, null, 2) + '\n');
}

export function readLanKeys(dir: string): LanKeyJson[] {
  const all = join(dir, 'lan-keys.json');
  if (existsSync(all)) return JSON.parse(readFileSync(all, 'utf8')) as LanKeyJson[];
  return [JSON.parse(readFileSync(join(dir, 'lan-key.json'), 'utf8')) as LanKeyJson];
}
