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
 *       log-max-bytes=10485760                            the log is rotated past this size (default 10 MB)
 *       log-keep=5                                        rotated copies kept: plugin.log.1 (newest) … .5
 *     (one argument a line: no quoting rules to get wrong; the wrapper quotes them for CreateProcess);
 *   - starts `node.exe app\bin\payconnect.js plugin <args>` (paths relative to this exe, as payconnect.cmd
 *     does, with PAYCONNECT_SQLITE=node), stdout and stderr appended to the log file (node.exe's stdout to a
 *     pipe fails under Wine, to a file works), in a job object that kills it when the service goes;
 *   - reports SERVICE_RUNNING once the child started; restarts the child when it exits on its own, after
 *     1 s, doubling to 60 s while it keeps exiting within a minute, each restart counted in the log;
 *   - on SERVICE_CONTROL_STOP / SHUTDOWN asks the plugin to stop with Ctrl+C: the child shares a console the
 *     wrapper allocates, and GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) reaches it as SIGINT, which
 *     `payconnect plugin` handles (src/cli/lan-options.ts untilStopped: SIGINT, SIGTERM and SIGBREAK, so a
 *     Ctrl+Break reaches its close() too). After 10 s without an exit the child is terminated; then
 *     SERVICE_STOPPED;
 *   - rotates the log by size (rotate_log below: why here and why by copy and truncate).
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
#define ROTATE_CHECK_MS 1000

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
static unsigned long long log_max_bytes = 10ULL * 1024 * 1024;
static int log_keep = 5;

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
    } else if (strncmp(p, "log-max-bytes=", 14) == 0) {
      char *end2;
      log_max_bytes = strtoull(p + 14, &end2, 10);
      if (end2 == p + 14 || *end2 || log_max_bytes < 256) return "log-max-bytes= is not a number of at least 256";
    } else if (strncmp(p, "log-keep=", 9) == 0) {
      char *end2;
      log_keep = (int)strtol(p + 9, &end2, 10);
      if (end2 == p + 9 || *end2 || log_keep < 1 || log_keep > 99) return "log-keep= is not a number from 1 to 99";
    } else if (strncmp(p, "log=", 4) == 0) {
      wchar_t *w = wide(p + 4, -1);
      if (!w || wcslen(w) >= MAX_PATH) return "log= path too long";
      wcscpy(log_path, w);
      free(w);
    } else if (*p && *p != '#') {
      return "a line that is not log=, log-max-bytes=, log-keep=, arg=, node-option= or a # comment";
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

/*
 * Log rotation by size: plugin.log past log_max_bytes is copied to plugin.log.1 (older copies shifted to .2
 * … log_keep, the oldest deleted), then emptied in place.
 *
 * The wrapper owns it, not the plugin: node.exe's stdout and stderr are this wrapper's handle to the log,
 * inherited, so the plugin cannot reopen its own output; only the wrapper knows the file. And it copies and
 * truncates instead of renaming: Windows renames an open file only if every handle to it was opened with
 * FILE_SHARE_DELETE, and even then node.exe would go on writing into the renamed plugin.log.1 until its next
 * restart. A pipe from node.exe through the wrapper would let the wrapper reopen freely, but node.exe's stdout
 * to a pipe fails under Wine (EBADF), where CI runs this. The handles write with FILE_APPEND_DATA only, so
 * after the truncation node.exe's next line goes to the new end, offset 0. The cost: a line written between
 * the copy's last read and the truncation (microseconds) is lost; the copy reads to the end just before.
 */
static void log_name(wchar_t *out, int n) {
  if (n == 0) swprintf(out, MAX_PATH, L"%ls", log_path);
  else swprintf(out, MAX_PATH, L"%ls.%d", log_path, n);
}

static void rotate_log(void) {
  LARGE_INTEGER size;
  wchar_t from[MAX_PATH], to[MAX_PATH];
  HANDLE src, dst;
  static char buf[65536];
  DWORD got, put;
  int i;
  if (log_file == INVALID_HANDLE_VALUE || !GetFileSizeEx(log_file, &size)) return;
  if ((unsigned long long)size.QuadPart <= log_max_bytes) return;
  log_name(to, log_keep);
  DeleteFileW(to);
  for (i = log_keep - 1; i >= 1; i--) {
    log_name(from, i);
    log_name(to, i + 1);
    MoveFileExW(from, to, MOVEFILE_REPLACE_EXISTING);
  }
  log_name(to, 1);
  src = CreateFileW(log_path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                    OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  if (src == INVALID_HANDLE_VALUE) {
    logf_("log rotation: cannot open the log (error %lu); not rotated", GetLastError());
    return;
  }
  dst = CreateFileW(to, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  if (dst == INVALID_HANDLE_VALUE) {
    logf_("log rotation: cannot create %s (error %lu); not rotated", utf8(to), GetLastError());
    CloseHandle(src);
    return;
  }
  while (ReadFile(src, buf, sizeof buf, &got, NULL) && got > 0)
    if (!WriteFile(dst, buf, got, &put, NULL) || put != got) break;
  CloseHandle(dst);
  /* Emptied through this handle: the wrapper's and node.exe's append-only handles carry on at offset 0. */
  SetFilePointer(src, 0, NULL, FILE_BEGIN);
  if (!SetEndOfFile(src)) logf_("log rotation: cannot empty the log (error %lu)", GetLastError());
  CloseHandle(src);
  logf_("log rotated at %llu bytes: the previous lines are in %s", (unsigned long long)size.QuadPart, utf8(to));
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

  rotate_log();
  if (!start_child(job, &pi)) {
    report(SERVICE_STOPPED, ERROR_SERVICE_NO_THREAD, 0);
    return;
  }
  report(SERVICE_RUNNING, NO_ERROR, 0);

  for (;;) {
    HANDLE waits[2] = {stop_event, pi.hProcess};
    DWORD started = GetTickCount(), code = 0, w;
    while ((w = WaitForMultipleObjects(2, waits, FALSE, ROTATE_CHECK_MS)) == WAIT_TIMEOUT) rotate_log();
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
