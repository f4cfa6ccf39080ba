/**
 * Removing the folder this node.exe runs from (the uninstall run by the installed copy, as uninstall.ps1
 * does). Windows cannot delete a running program's file, so a cmd.exe left behind removes the folder once
 * node.exe has exited: it tries once a second, for up to a minute, and stops as soon as the folder is gone.
 *
 * The command line is given to cmd.exe as written (`windowsVerbatimArguments`). Node's own quoting of an
 * argument that holds quotes writes them as `\"`, which is the C runtime's escape but not cmd.exe's: the
 * earlier `rmdir /s /q \"C:\Program Files\payconnect\"` that came of it removed nothing, and an uninstall
 * left node.exe and payconnect.cmd behind (found under Wine, and the same on Windows: the quoting is Node's).
 * `/s` makes cmd.exe drop exactly the outer pair of quotes, whatever the command holds.
 *
 * The first try waits a second, so that the cmd.exe running payconnect.cmd has read its last line (it reads
 * a batch file line by line, after node.exe ends) before the file goes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

/** Tries, one second apart. */
export const REMOVE_TRIES = 60;

/**
 * cmd.exe's arguments that remove `dir` (an absolute Windows path) once nothing holds it, or an error
 * saying why this path cannot be put on a cmd.exe line safely (`"` cannot be in a Windows path; `%` would be
 * expanded by cmd.exe).
 */
export function removeLaterArgs(dir: string): string[] {
  if (!/^[A-Za-z]:[\\/]/.test(dir) || /["%\r\n]/.test(dir))
    throw new Error(`cannot remove "${dir}" after exit: not a plain path on a drive (C:\\…)`);
  const target = path.win32.resolve(dir);
  if (target === path.win32.parse(target).root)
    throw new Error(`cannot remove "${dir}" after exit: it is a drive's root`);
  const once = `ping -n 2 127.0.0.1 >nul & rmdir /s /q "${target}" 2>nul & if not exist "${target}" exit 0`;
  return ['/d', '/s', '/c', `"for /l %i in (1,1,${REMOVE_TRIES}) do @(${once})"`];
}

/**
 * Starts the cmd.exe that removes `dir` after this process ends, detached and hidden, from `dir`'s parent
 * (a process's working folder cannot be removed).
 */
export function removeFolderAfterExit(dir: string, start: typeof spawn = spawn): void {
  const args = removeLaterArgs(dir);
  const later = start('cmd.exe', args, {
    cwd: path.win32.dirname(path.win32.resolve(dir)),
    detached: true,
    stdio: 'ignore',
    windowsHide: true,
    windowsVerbatimArguments: true,
  });
  later.on('error', () => undefined); // nothing to do: the folder stays, and the uninstall said so
  later.unref();
}
