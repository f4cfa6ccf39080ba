/**
 * The files a registered device (plugin or unit) keeps in its data folder, readable only by its owner:
 * `device.json` (its registration: id, store, bearer token, server URL, the server key it pinned),
 * `lan-key.json` (the key it seals with, in the format the `payconnect lan` tools read) and
 * `lan-keys.json` (every key it accepts, newest first, for key rotation). Written atomically.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LanKeyJson } from '../lan/lan-keyring';
import { ensurePrivateDir, ensurePrivateFiles, sqliteFiles } from '../protocol/private-files';
import { openSqlite, SqliteDatabase } from './sqlite-driver';

const SECRET_FILES = ['device.json', 'lan-key.json', 'lan-keys.json'];

/**
 * Opens a device's journal (`dir/name`, SQLite in WAL mode, through the storage seam: sqlite-driver.ts) in a data folder that is its owner's alone:
 * the folder 0700, the journal and the registration files 0600 — created so, and an existing too-open one
 * tightened with a warning or refused (src/protocol/private-files.ts). The journal is created under a
 * umask of 077, so its -wal and -shm files are never readable by others either.
 */
export function openDeviceDatabase(dir: string, name: string, warn?: (line: string) => void): SqliteDatabase {
  ensurePrivateDir(dir, warn);
  const path = join(dir, name);
  ensurePrivateFiles([...sqliteFiles(path), ...SECRET_FILES.map((f) => join(dir, f))], warn);
  const umask = process.umask(0o077);
  try {
    const db = openSqlite(path);
    try {
      // The answer is the mode now in force: a driver or file system that cannot do WAL must not run a
      // journal in another mode unnoticed.
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`${path}: journal_mode is ${String(mode)} after setting WAL`);
    } catch (e) {
      db.close();
      throw e;
    }
    return db;
  } finally {
    process.umask(umask);
  }
}

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
