/**
 * The folder of the server's SQLite database: made private (0700) only when it is the server's own.
 *
 * The database holds the signing key and every store's LAN keys, so its files are always 0600
 * (private-files.ts). Its folder is made 0700 as well when it is a dedicated data folder: one the server
 * creates, or one that holds nothing but the server's own files and entries already private to their owner
 * (an install from before this rule, a data folder made with a loose umask). Then 0700 takes nothing away
 * from anyone.
 *
 * Any other folder is left exactly as it is, because chmod 0700 there would lock other users and programs
 * out of it (run as root with `--db sqlite:/tmp/x.db` it made /tmp 0700): a sticky folder (mode & 01000,
 * like /tmp), a system folder (/, /tmp, /var/tmp, /home, the user's home…), a folder other users can write
 * to, the folder the server was started in, or one holding other files others may read. There only the
 * database files are made private, and a warning names the folder and says what to do.
 */
import { existsSync, lstatSync, readdirSync, realpathSync, statSync, Stats } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ensurePrivateDir, sqliteFiles } from '../../protocol/private-files';

const warnToStderr = (line: string) => void process.stderr.write(`payconnect: ${line}\n`);

/** Folders of the system or shared by users: never the server's own, whatever they hold. */
export function systemFolders(): Set<string> {
  const list = ['/', '/tmp', '/var/tmp', '/dev/shm', '/home', '/root', '/var', '/var/lib', '/usr', '/etc'];
  list.push('/opt', '/srv', '/mnt', '/media', homedir(), tmpdir());
  const out = new Set<string>();
  for (const f of list) {
    out.add(resolve(f));
    try {
      out.add(realpathSync(f));
    } catch {
      // not on this system
    }
  }
  return out;
}

/** The files the server keeps beside its database `db`: the database and the simulator's ledger. */
export function serverFiles(db: string): Set<string> {
  const names = [...sqliteFiles(db), ...sqliteFiles(`${db}-simulator`)];
  return new Set(names.map((f) => resolve(f)));
}

function isPrivateEntry(st: Stats): boolean {
  return !st.isSymbolicLink() && st.uid === process.getuid!() && (st.mode & 0o077) === 0;
}

/**
 * Why the existing folder `dir` (of the database `db`) is not the server's own to make 0700, or undefined
 * when it is.
 */
export function notDedicatedReason(dir: string, db: string, st: Stats = statSync(dir)): string | undefined {
  const full = resolve(dir);
  let real = full;
  try {
    real = realpathSync(full);
  } catch {
    // compare the path as given
  }
  const shown = (st.mode & 0o7777).toString(8).padStart(3, '0');
  if (st.mode & 0o1000) return `it is a shared folder (sticky bit, mode ${shown}, like /tmp)`;
  const system = systemFolders();
  if (system.has(full) || system.has(real)) return 'it is a system folder or a home folder';
  if (st.mode & 0o022) return `other users can write to it (mode ${shown})`;
  if (full === resolve(process.cwd()) || real === resolve(process.cwd()))
    return 'it is the folder the server was started in';
  const own = serverFiles(db);
  const others: string[] = [];
  for (const name of readdirSync(full)) {
    const path = join(full, name);
    if (own.has(path)) continue;
    let entry: Stats;
    try {
      entry = lstatSync(path);
    } catch {
      continue; // gone meanwhile
    }
    if (!isPrivateEntry(entry)) others.push(name);
  }
  if (others.length) {
    const names = others.slice(0, 3).join(', ') + (others.length > 3 ? `, … (${others.length} in all)` : '');
    return `it holds other files that others may read (${names})`;
  }
  return undefined;
}

/**
 * Makes the folder of the database `db` private if it is the server's own (created now, or dedicated; see
 * above), and otherwise leaves it as it is with a warning. The database files themselves are made private
 * by the caller.
 */
export function ensureServerDataDir(db: string, warn: (line: string) => void = warnToStderr): void {
  const dir = resolve(dirname(db));
  if (!existsSync(dir) || process.platform === 'win32' || typeof process.getuid !== 'function') {
    ensurePrivateDir(dir, warn);
    return;
  }
  const st = statSync(dir);
  if ((st.mode & 0o077) === 0) return; // private already
  const reason = notDedicatedReason(dir, db, st);
  if (reason === undefined) {
    ensurePrivateDir(dir, warn); // tightens, or refuses a folder of another user
    return;
  }
  warn(
    `the folder ${dir} holds the server's database (its signing key and the stores' LAN keys) but ${reason}, ` +
      `so payconnect leaves the folder as it is and makes only the database files private (0600). ` +
      `To keep them in a private folder, give the database a folder of its own, e.g. ` +
      `--db sqlite:${join(dir, 'payconnect', 'server.db')} (the server creates it 0700), and move the ` +
      `database files there while the server is stopped`,
  );
}
