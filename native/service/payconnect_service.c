/*
 * payconnect-service.exe: runs the payconnect plugin as the Windows service "payconnect".
 *
 * node.exe does not answer the service control manager, so this wrapper does: registered as a service
 * (install.ps1: sc.exe create payconnect binPath= "...\payconnect-service.exe" start= auto), it
 *   - reads payconnect-service.conf next to itself (UTF-8, one setting a line, '#' starts a comment):
 *       log=C:\ProgramData\payconnect\logs\plugin.log     where the plugin's output goes (appended);
 *                                                         default %ProgramData%\payconnect\logs\plugin.log
 *       arg=--manifest                                    one argument a line, in order, after `plugin`
 *       arg=C:\Program Files\payconnect\app\manifests\x.yaml
 *       node-option=--max-old-space-size=256                 an option for node.exe itself, before the script
 *     (one argument a line: no quoting rules to get wrong; the wrapper quotes them for CreateProcess);
 *   - starts `node.exe app\bin\payconnect.js plugin <args>` (paths relative to this exe, as payconnect.cmd
 *     does, with PAYCONNECT_SQLITE=node), stdout and stderr appended to the log file (node.exe's stdout to a
 *     pipe fails under Wine, to a file works), in a job object that kills it when the service goes;
 *   - reports SERVICE_RUNNING once the child started; restarts the child when it exits on its own, after
 *     1 s, doubling to 60 s while it keeps exiting within a minute, each restart counted in the log;
 *   - on SERVICE_CONTROL_STOP / SHUTDOWN asks the plugin to stop with Ctrl+C: the child shares a console the
 *     wrapper allocates, and GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) reaches it as SIGINT, which
 *     `payconnect plugin` handles (src/cli/lan-options.ts untilStopped: SIGINT, SIGTERM). It does not handle
 *     SIGBREAK, so CTRL_BREAK to its own process group would end node.exe without its close(). After 10 s
 *     without an exit the child is terminated; then SERVICE_STOPPED.
 *
 * Every line the wrapper writes to the log starts with "payconnect-service:".
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define SERVICE_NAME L"payconnect"
#define STOP_WAIT_MS 10000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define STABLE_RUN_MS 60000
#define MAX_ARGS 64
#define CMDLINE_MAX 32768

static SERVICE_STATUS_HANDLE status_handle;
static SERVICE_STATUS status;
static HANDLE stop_event;
static HANDLE log_file = INVALID_HANDLE_VALUE;

static wchar_t exe_dir[MAX_PATH];
static wchar_t log_path[MAX_PATH];
static wchar_t *args[MAX_ARGS];
static int nargs;
static wchar_t *node_options[MAX_ARGS];
static int nnode_options;

static void report(DWORD state, DWORD exit_code, DWORD wait_hint) {
  static DWORD checkpoint = 1;
  status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  status.dwCurrentState = state;
  status.dwWin32ExitCode = exit_code;
  status.dwServiceSpecificExitCode = 0;
  status.dwWaitHint = wait_hint;
  status.dwControlsAccepted =
      state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
  status.dwCheckPoint = (state == SERVICE_RUNNING || state == SERVICE_STOPPED) ? 0 : checkpoint++;
  SetServiceStatus(status_handle, &status);
}

/* One line in the log, UTF-8, after a timestamp. */
static void logf_(const char *fmt, ...) {
  char line[1024];
  SYSTEMTIME t;
  int n;
  va_list ap;
  DWORD written;
  if (log_file == INVALID_HANDLE_VALUE) return;
  GetSystemTime(&t);
  n = snprintf(line, sizeof line, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ payconnect-service: ", t.wYear,
               t.wMonth, t.wDay, t.wHour, t.wMinute, t.wSecond, t.wMilliseconds);
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 3, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 3) n = (int)sizeof line - 3;
  line[n++] = '\r';
  line[n++] = '\n';
  WriteFile(log_file, line, (DWORD)n, &written, NULL);
}

static char *utf8(const wchar_t *w) {
  static char buf[4 * MAX_PATH];
  if (!WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, sizeof buf, NULL, NULL)) strcpy(buf, "?");
  return buf;
}

static wchar_t *wide(const char *s, int len) {
  int n = MultiByteToWideChar(CP_UTF8, 0, s, len, NULL, 0);
  wchar_t *w = (wchar_t *)calloc((size_t)n + 1, sizeof(wchar_t));
  if (w) MultiByteToWideChar(CP_UTF8, 0, s, len, w, n);
  return w;
}

/* payconnect-service.conf: log=… and arg=… lines. Returns NULL or what is wrong (a static string). */
static const char *read_config(void) {
  wchar_t path[MAX_PATH];
  HANDLE f;
  char *text;
  DWORD size, got;
  char *p;
  swprintf(path, MAX_PATH, L"%ls\\payconnect-service.conf", exe_dir);
  f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
  if (f == INVALID_HANDLE_VALUE) return "cannot open payconnect-service.conf next to the exe";
  size = GetFileSize(f, NULL);
  text = (char *)malloc((size_t)size + 1);
  if (!text || !ReadFile(f, text, size, &got, NULL)) {
    CloseHandle(f);
    return "cannot read payconnect-service.conf";
  }
  CloseHandle(f);
  text[got] = 0;
  p = text;
  if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF) p += 3;
  while (*p) {
    char *end = p + strcspn(p, "\r\n");
    char *next = *end ? end + 1 : end;
    *end = 0;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, "arg=", 4) == 0) {
      if (nargs >= MAX_ARGS) return "more than 64 arg= lines";
      args[nargs++] = wide(p + 4, -1);
    } else if (strncmp(p, "node-option=", 12) == 0) {
      if (nnode_options >= MAX_ARGS) return "more than 64 node-option= lines";
      node_options[nnode_options++] = wide(p + 12, -1);
    } else if (strncmp(p, "log=", 4) == 0) {
      wchar_t *w = wide(p + 4, -1);
      if (!w || wcslen(w) >= MAX_PATH) return "log= path too long";
      wcscpy(log_path, w);
      free(w);
    } else if (*p && *p != '#') {
      return "a line that is not log=, arg=, node-option= or a # comment";
    }
    p = next;
  }
  free(text);
  return NULL;
}

/* Appends `arg` to `cmd` quoted as CommandLineToArgvW / the C runtime read it back. */
static void append_arg(wchar_t *cmd, const wchar_t *arg) {
  size_t n = wcslen(cmd);
  const wchar_t *a;
  if (n) cmd[n++] = L' ';
  cmd[n++] = L'"';
  for (a = arg; *a && n < CMDLINE_MAX - 8; a++) {
    size_t slashes = 0;
    while (*a == L'\\') a++, slashes++;
    if (!*a) {
      while (slashes--) cmd[n++] = L'\\', cmd[n++] = L'\\';
      break;
    }
    if (*a == L'"') {
      while (slashes--) cmd[n++] = L'\\', cmd[n++] = L'\\';
      cmd[n++] = L'\\';
    } else {
      while (slashes--) cmd[n++] = L'\\';
    }
    cmd[n++] = *a;
  }
  cmd[n++] = L'"';
  cmd[n] = 0;
}

/* The wrapper's own console handler: the Ctrl+C it sends to the child must not end the wrapper. */
static BOOL WINAPI ignore_ctrl(DWORD type) {
  (void)type;
  return TRUE;
}

static DWORD WINAPI control(DWORD code, DWORD type, LPVOID data, LPVOID ctx) {
  (void)type, (void)data, (void)ctx;
  if (code == SERVICE_CONTROL_STOP || code == SERVICE_CONTROL_SHUTDOWN) {
    report(SERVICE_STOP_PENDING, NO_ERROR, STOP_WAIT_MS + 5000);
    SetEvent(stop_event);
    return NO_ERROR;
  }
  if (code == SERVICE_CONTROL_INTERROGATE) return NO_ERROR;
  return ERROR_CALL_NOT_IMPLEMENTED;
}

static BOOL start_child(HANDLE job, PROCESS_INFORMATION *pi) {
  static wchar_t cmd[CMDLINE_MAX];
  wchar_t node[MAX_PATH], script[MAX_PATH];
  STARTUPINFOW si;
  SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
  HANDLE nul;
  BOOL ok;
  int i;
  swprintf(node, MAX_PATH, L"%ls\\node.exe", exe_dir);
  swprintf(script, MAX_PATH, L"%ls\\app\\bin\\payconnect.js", exe_dir);
  cmd[0] = 0;
  append_arg(cmd, node);
  for (i = 0; i < nnode_options; i++) append_arg(cmd, node_options[i]);
  append_arg(cmd, script);
  append_arg(cmd, L"plugin");
  for (i = 0; i < nargs; i++) append_arg(cmd, args[i]);
  nul = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0, NULL);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = nul;
  si.hStdOutput = log_file;
  si.hStdError = log_file;
  memset(pi, 0, sizeof *pi);
  /* Suspended until it is in the job, so nothing it starts escapes the job. No CREATE_NEW_PROCESS_GROUP:
     it shares the wrapper's console so Ctrl+C reaches it. */
  ok = CreateProcessW(node, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, exe_dir, &si, pi);
  if (nul != INVALID_HANDLE_VALUE) CloseHandle(nul);
  if (!ok) {
    logf_("cannot start %s (error %lu)", utf8(node), GetLastError());
    return FALSE;
  }
  if (!AssignProcessToJobObject(job, pi->hProcess))
    logf_("the plugin is not in the job object (error %lu)", GetLastError());
  ResumeThread(pi->hThread);
  CloseHandle(pi->hThread);
  logf_("started the plugin, pid %lu", pi->dwProcessId);
  return TRUE;
}

/* Ctrl+C, up to STOP_WAIT_MS for the exit, then TerminateProcess. */
static void stop_child(PROCESS_INFORMATION *pi) {
  DWORD code = 0;
  logf_("stopping the plugin (pid %lu): Ctrl+C", pi->dwProcessId);
  if (!GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0))
    logf_("GenerateConsoleCtrlEvent failed (error %lu)", GetLastError());
  if (WaitForSingleObject(pi->hProcess, STOP_WAIT_MS) != WAIT_OBJECT_0) {
    logf_("the plugin did not exit within %d s: terminated", STOP_WAIT_MS / 1000);
    TerminateProcess(pi->hProcess, 1);
    WaitForSingleObject(pi->hProcess, 5000);
  }
  GetExitCodeProcess(pi->hProcess, &code);
  logf_("the plugin exited with code %lu", code);
  CloseHandle(pi->hProcess);
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv) {
  const char *problem;
  HANDLE job;
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
  PROCESS_INFORMATION pi;
  DWORD backoff = BACKOFF_MIN_MS, restarts = 0;
  (void)argc, (void)argv;

  status_handle = RegisterServiceCtrlHandlerExW(SERVICE_NAME, control, NULL);
  if (!status_handle) return;
  report(SERVICE_START_PENDING, NO_ERROR, 10000);
  stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);

  problem = read_config();
  if (!log_path[0]) {
    wchar_t pd[MAX_PATH];
    if (!GetEnvironmentVariableW(L"ProgramData", pd, MAX_PATH)) wcscpy(pd, L"C:\\ProgramData");
    swprintf(log_path, MAX_PATH, L"%ls\\payconnect\\logs\\plugin.log", pd);
  }
  {
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    log_file = CreateFileW(log_path, FILE_APPEND_DATA | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                           OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  }
  if (log_file == INVALID_HANDLE_VALUE) {
    report(SERVICE_STOPPED, ERROR_PATH_NOT_FOUND, 0);
    return;
  }
  if (problem) {
    logf_("not started: %s", problem);
    report(SERVICE_STOPPED, ERROR_BAD_CONFIGURATION, 0);
    return;
  }

  job = CreateJobObjectW(NULL, NULL);
  memset(&limits, 0, sizeof limits);
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits))
    logf_("no job object (error %lu): the plugin may outlive the service", GetLastError());

  /* A console of our own (a service has none) for the child to share, for the Ctrl+C on stop. */
  if (AllocConsole()) {
    HWND w = GetConsoleWindow();
    if (w) ShowWindow(w, SW_HIDE);
  } else {
    logf_("AllocConsole failed (error %lu)", GetLastError());
  }
  SetConsoleCtrlHandler(ignore_ctrl, TRUE);
  SetEnvironmentVariableW(L"PAYCONNECT_SQLITE", L"node");

  if (!start_child(job, &pi)) {
    report(SERVICE_STOPPED, ERROR_SERVICE_NO_THREAD, 0);
    return;
  }
  report(SERVICE_RUNNING, NO_ERROR, 0);

  for (;;) {
    HANDLE waits[2] = {stop_event, pi.hProcess};
    DWORD started = GetTickCount(), code = 0, w;
    w = WaitForMultipleObjects(2, waits, FALSE, INFINITE);
    if (w == WAIT_OBJECT_0) {
      stop_child(&pi);
      break;
    }
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    if (GetTickCount() - started >= STABLE_RUN_MS) backoff = BACKOFF_MIN_MS;
    restarts++;
    logf_("the plugin exited with code %lu; restart %lu in %lu ms", code, restarts, backoff);
    if (WaitForSingleObject(stop_event, backoff) == WAIT_OBJECT_0) break;
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    while (!start_child(job, &pi)) {
      if (WaitForSingleObject(stop_event, backoff) == WAIT_OBJECT_0) goto stopped;
      backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
  }
stopped:
  logf_("service stopped");
  if (job) CloseHandle(job);
  CloseHandle(log_file);
  log_file = INVALID_HANDLE_VALUE;
  report(SERVICE_STOPPED, NO_ERROR, 0);
}

int main(void) {
  wchar_t *slash;
  SERVICE_TABLE_ENTRYW table[] = {{(LPWSTR)SERVICE_NAME, service_main}, {NULL, NULL}};
  GetModuleFileNameW(NULL, exe_dir, MAX_PATH);
  slash = wcsrchr(exe_dir, L'\\');
  if (slash) *slash = 0;
  if (!StartServiceCtrlDispatcherW(table)) {
    fprintf(stderr,
            "payconnect-service.exe runs as the Windows service \"payconnect\" (install.ps1 registers it); "
            "it is not started by hand (error %lu)\n",
            GetLastError());
    return 1;
  }
  return 0;
}
