/**
 * The cmd.exe line that removes the program folder after the uninstalling node.exe has exited
 * (remove-later.ts). That it works is shown under Wine (test/windows/remove-later-wine.spec.ts); here, the
 * line itself and the paths refused, as a support engineer reading the uninstall's words would need them.
 */
import { EventEmitter } from 'node:events';
import type { spawn } from 'node:child_process';
import { removeFolderAfterExit, removeLaterArgs, REMOVE_TRIES } from './remove-later';

describe('removeLaterArgs', () => {
  it('quotes the folder for cmd.exe itself, and tries once a second to remove the two files, then the folder', () => {
    const dir = 'C:\\Program Files (x86)\\收银 支付';
    expect(removeLaterArgs(`${dir}\\`, 'C:\\Windows\\System32')).toEqual([
      '/d',
      '/v:off',
      '/s',
      '/c',
      `"for /l %i in (1,1,${REMOVE_TRIES}) do @("C:\\Windows\\System32\\PING.EXE" -n 2 127.0.0.1 >nul & ` +
        `del /f /q "${dir}\\node.exe" "${dir}\\payconnect.cmd" 2>nul & ` +
        `if not exist "${dir}\\node.exe" if not exist "${dir}\\payconnect.cmd" (rmdir "${dir}" 2>nul & exit 0))"`,
    ]);
  });

  it('refuses a Windows folder that cmd.exe would not take as written', () => {
    expect(() => removeLaterArgs('C:\\payconnect', 'C:\\%SystemRoot%')).toThrow(
      'System32 is not a plain path',
    );
  });

  it.each([
    ['relative', 'payconnect'],
    ['on no drive', '\\payconnect'],
    ['a network share', '\\\\server\\share\\payconnect'],
    ['with %', 'C:\\pay%PATH%connect'],
    ['with a quote', 'C:\\pay"connect'],
    ['with a line break', 'C:\\pay\r\nconnect'],
  ])('refuses a path %s, naming it', (_, dir) => {
    expect(() => removeLaterArgs(dir)).toThrow(`cannot remove "${dir}" after exit`);
  });

  it('never removes a drive', () => {
    expect(() => removeLaterArgs('C:\\')).toThrow("it is a drive's root");
    expect(() => removeLaterArgs('D:/')).toThrow("it is a drive's root");
  });
});

describe('removeFolderAfterExit', () => {
  it('starts System32’s cmd.exe detached and hidden, with the line as written, from the folder’s parent', () => {
    const calls: unknown[][] = [];
    const child = Object.assign(new EventEmitter(), { unref: jest.fn() });
    const start = ((...args: unknown[]) => {
      calls.push(args);
      return child;
    }) as unknown as typeof spawn;
    removeFolderAfterExit('C:\\Program Files\\payconnect', start, 'C:\\Windows\\System32');
    expect(calls).toEqual([
      [
        'C:\\Windows\\System32\\cmd.exe',
        removeLaterArgs('C:\\Program Files\\payconnect', 'C:\\Windows\\System32'),
        {
          cwd: 'C:\\Program Files',
          detached: true,
          stdio: 'ignore',
          windowsHide: true,
          windowsVerbatimArguments: true,
        },
      ],
    ]);
    expect(child.unref).toHaveBeenCalled();
    // A cmd.exe that cannot start is no crash of the uninstall.
    expect(() => child.emit('error', new Error('spawn cmd.exe ENOENT'))).not.toThrow();
  });
});
