/**
 * Removing the folder this node.exe runs from (the uninstall run by the installed copy, as uninstall.ps1
 * does). Windows cannot delete a running program's file, so a cmd.exe left behind removes node.exe,
 * payconnect.cmd and then the empty folder once node.exe has exited: it tries once a second, for up to a
 * minute, and stops as soon as the two files are gone.
 *
 * The command line is given to cmd.exe as written (`windowsVerbatimArguments`). Node's own quoting of an
 * argument that holds quotes writes them as `\"`, which is the C runtime's escape but not cmd.exe's: the
 * earlier `rmdir /s /q \"C:\Program Files\payconnect\"` that came of it removed nothing, and an uninstall
 * left node.exe and payconnect.cmd behind (found under Wine, and the same on Windows: the quoting is Node's).
 * `/s` makes cmd.exe drop exactly the outer pair of quotes, whatever the command holds.
 *
 * The first try waits a second, so that the cmd.exe running payconnect.cmd has read its last line (it reads
 * a batch file line by line, after node.exe ends) before the file goes. Not seen under Wine, which shows no
 * windows: on Windows the wait's PING.EXE may flash a console window (a detached cmd.exe has no console
 * to lend it), once or twice at the end of an uninstall.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

/** Tries, one second apart. */
export const REMOVE_TRIES = 60;

/** Windows' own programs' folder: cmd.exe and PING.EXE are run from there by full path, never found by name. */
export function system32(): string {
  return path.win32.join(process.env.SystemRoot ?? process.env.windir ?? 'C:\\Windows', 'System32');
}

/** A path cmd.exe takes inside quotes as it is: on a drive, with no `"` or `%` (cmd.exe expands it). */
function plainPath(p: string, what: string): string {
  if (!/^[A-Za-z]:[\\/]/.test(p) || /["%\r\n]/.test(p))
    throw new Error(`cannot remove "${p}" after exit: ${what} is not a plain path on a drive (C:\\…)`);
  return path.win32.resolve(p);
}

/**
 * cmd.exe's arguments that remove node.exe and payconnect.cmd from `dir` (an absolute Windows path) once
 * node.exe has exited, then `dir` itself if nothing else is left in it; or an error saying why this path
 * cannot be put on a cmd.exe line safely. Only those two files, by name: everything else the uninstall
 * removed itself, and a file that appeared since (an install run again meanwhile) is never touched.
 * `/v:off`: no `!…!` expansion, whatever the registry says; `/s`: exactly the outer quotes are dropped.
 */
export function removeLaterArgs(dir: string, windows = system32()): string[] {
  const target = plainPath(dir, 'the folder');
  if (target === path.win32.parse(target).root)
    throw new Error(`cannot remove "${dir}" after exit: it is a drive's root`);
  const ping = `"${plainPath(windows, 'System32')}\\PING.EXE"`;
  const node = `"${target}\\node.exe"`;
  const script = `"${target}\\payconnect.cmd"`;
  const once =
    `${ping} -n 2 127.0.0.1 >nul & del /f /q ${node} ${script} 2>nul & ` +
    `if not exist ${node} if not exist ${script} (rmdir "${target}" 2>nul & exit 0)`;
  return ['/d', '/v:off', '/s', '/c', `"for /l %i in (1,1,${REMOVE_TRIES}) do @(${once})"`];
}

/**
 * Starts the cmd.exe that removes `dir` after this process ends, detached and hidden, from `dir`'s parent
 * (a process's working folder cannot be removed).
 */
export function removeFolderAfterExit(dir: string, start: typeof spawn = spawn, windows = system32()): void {
  const args = removeLaterArgs(dir, windows);
  const later = start(path.win32.join(windows, 'cmd.exe'), args, {
    cwd: path.win32.dirname(path.win32.resolve(dir)),
    detached: true,
    stdio: 'ignore',
    windowsHide: true,
    windowsVerbatimArguments: true,
  });
  later.on('error', () => undefined); // nothing to do: the folder stays, and the uninstall said so
  later.unref();
}
