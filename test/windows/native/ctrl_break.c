/*
 * ctrl-break.exe: a test helper for test/windows/signals-wine.spec.ts. Starts a program on a console of its
 * own (this program's, as payconnect-service.exe shares its console with node.exe), waits until a file
 * appears (the spec creates it once the program is ready), sends CTRL_BREAK_EVENT to the console's
 * processes, as Ctrl+Break on the keyboard does (ignoring it itself), and writes the program's exit code
 * to stdout ("exit N"). CTRL_BREAK_EVENT to the child's own process group (CREATE_NEW_PROCESS_GROUP) is
 * what Windows allows too; Wine 8 did not deliver that one here.
 *
 *   ctrl-break.exe OUTPUT_FILE GO_FILE PROGRAM.EXE [ARGS…]   (the program's stdout and stderr: OUTPUT_FILE)
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

static BOOL WINAPI ignore_ctrl(DWORD type) {
  (void)type;
  return TRUE;
}

int wmain(int argc, wchar_t **argv) {
  static wchar_t cmd[32768];
  SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  HANDLE out;
  DWORD code = 0;
  int i, waited;
  if (argc < 4) {
    fprintf(stderr, "usage: ctrl-break.exe OUTPUT_FILE GO_FILE PROGRAM.EXE [ARGS...]\n");
    return 2;
  }
  cmd[0] = 0;
  for (i = 3; i < argc; i++) {
    if (i > 3) wcscat(cmd, L" ");
    wcscat(cmd, L"\"");
    wcscat(cmd, argv[i]);
    wcscat(cmd, L"\"");
  }
  /* The console it was started with (under Wine: a terminal, see the spec); a program without one gets its
     own. */
  if (!GetConsoleWindow() && !AttachConsole(ATTACH_PARENT_PROCESS)) AllocConsole();
  SetConsoleCtrlHandler(ignore_ctrl, TRUE);
  out = CreateFileW(argv[1], GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, CREATE_ALWAYS, 0, NULL);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
  si.hStdOutput = out;
  si.hStdError = out;
  if (!CreateProcessW(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
    printf("cannot start: error %lu\n", GetLastError());
    return 1;
  }
  for (waited = 0; GetFileAttributesW(argv[2]) == INVALID_FILE_ATTRIBUTES; waited += 100) {
    if (waited > 300000 || WaitForSingleObject(pi.hProcess, 100) == WAIT_OBJECT_0) {
      GetExitCodeProcess(pi.hProcess, &code);
      printf("ended before the break: exit %lu\n", code);
      return 1;
    }
  }
  if (!GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, 0)) {
    printf("GenerateConsoleCtrlEvent failed: error %lu\n", GetLastError());
    TerminateProcess(pi.hProcess, 1);
    return 1;
  }
  if (WaitForSingleObject(pi.hProcess, 30000) != WAIT_OBJECT_0) {
    printf("no exit within 30 s of the break\n");
    TerminateProcess(pi.hProcess, 1);
    return 1;
  }
  GetExitCodeProcess(pi.hProcess, &code);
  printf("exit %lu\n", code);
  return 0;
}
