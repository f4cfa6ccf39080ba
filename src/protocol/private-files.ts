/**
 * Secrets at rest: the server's database holds its Ed25519 signing key and every store's LAN keys, and a
 * plugin's or unit's data folder holds its device token and the store LAN key. Anyone who can read them can
 * forge a signed "paid" or seal datagrams as the store, so they are for their owner alone: data folders
 * 0700, databases (with their -wal and -shm) and key files 0600.
 *
 * Set on create, and checked at every start: a folder or file we own that others can read is tightened,
 * with a warning naming it (an install from before this rule, or a copy made with a loose umask); one we do
 * not own cannot be tightened by us, so the start refuses and says which chmod/chown to run. On Windows the
 * mode bits mean nothing (NTFS ACLs decide; the install puts the data under the service's own profile), so
 * nothing is checked there.
 *
 * The one place under src/protocol that touches the file system: it is the contract for keys at rest that
 * the server and both device apps follow, and they may share nothing else.
 */
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

export class PrivateFileError extends Error {}

const warnToStderr = (line: string) => void process.stderr.write(`payconnect: ${line}\n`);

function checksModes(): boolean {
  return process.platform !== 'win32' && typeof process.getuid === 'function';
}

/** Creates `dir` (0700) if missing; tightens or refuses an existing one that others can read or enter. */
export function ensurePrivateDir(dir: string, warn: (line: string) => void = warnToStderr): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  tighten(dir, PRIVATE_DIR_MODE, 'folder', warn);
}

/** Tightens (or refuses) each existing file of `files` to 0600; missing ones are skipped. */
export function ensurePrivateFiles(files: string[], warn: (line: string) => void = warnToStderr): void {
  for (const f of files) if (existsSync(f)) tighten(f, PRIVATE_FILE_MODE, 'file', warn);
}

/** A SQLite database and the files SQLite keeps beside it. */
export function sqliteFiles(db: string): string[] {
  return [db, `${db}-wal`, `${db}-shm`, `${db}-journal`];
}

function tighten(path: string, mode: number, kind: 'folder' | 'file', warn: (line: string) => void): void {
  if (!checksModes()) return;
  const st = statSync(path);
  const loose = st.mode & 0o077;
  if (loose === 0) return;
  const shown = (st.mode & 0o777).toString(8).padStart(3, '0');
  if (st.uid !== process.getuid!()) {
    throw new PrivateFileError(
      `the ${kind} ${path} holds secrets but others may read it (mode ${shown}) and it belongs to another user, ` +
        `so payconnect cannot fix it: run  chown $(id -u) ${path} && chmod ${mode.toString(8)} ${path}  and start again`,
    );
  }
  chmodSync(path, mode);
  warn(
    `the ${kind} ${path} holds secrets and was readable by others (mode ${shown}); it is now ${mode.toString(8)}`,
  );
}
