/*
 * win_host.c - a Windows register program in miniature, for the tests under Wine: it loads
 * payconnect-x64.dll (or -x86) at run time by name, as register software does, finds every function of
 * payconnect.h by its plain exported name, submits one order and waits for its result on a worker thread
 * (never the "UI" thread), then writes what happened to OUT_FILE (Wine cannot always hand a Windows
 * program's stdout to a Linux pipe).
 *
 *   win_host.exe DLL_PATH CONFIG_JSON ORDER_ID AMOUNT TIMEOUT_MS OUT_FILE
 *
 * OUT_FILE gets "loaded <version>", "submitted <order>", then "result <json>" or "failed <status> <message>".
 * Exit 0 when the order was paid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "payconnect.h"

typedef pc_status(PC_CALL *open_fn)(const char *, pc_handle **);
typedef pc_status(PC_CALL *open_error_fn)(char *, size_t, size_t *);
typedef pc_status(PC_CALL *submit_fn)(pc_handle *, const char *);
typedef pc_status(PC_CALL *wait_fn)(pc_handle *, const char *, int, char *, size_t, size_t *);
typedef pc_status(PC_CALL *last_error_fn)(pc_handle *, char *, size_t, size_t *);
typedef const char *(PC_CALL *version_fn)(void);
typedef pc_status(PC_CALL *close_fn)(pc_handle *);

static wait_fn pc_wait;
static last_error_fn pc_err;
static pc_handle *handle;

struct job {
  const char *order_id;
  int timeout_ms;
  pc_status status;
  char result[PC_RESULT_BUFFER_SIZE];
};

static DWORD WINAPI waiter(LPVOID arg) {
  struct job *j = arg;
  size_t needed;
  int left = j->timeout_ms;
  do {
    int slice = left > 2000 ? 2000 : left;
    j->status = pc_wait(handle, j->order_id, slice, j->result, sizeof j->result, &needed);
    left -= slice;
  } while (j->status == PC_TIMEOUT && left > 0);
  return 0;
}

static FARPROC need(HMODULE dll, const char *name, FILE *out) {
  FARPROC f = GetProcAddress(dll, name);
  if (!f) {
    fprintf(out, "missing export %s\n", name);
    fclose(out);
    exit(3);
  }
  return f;
}

int main(int argc, char **argv) {
  HMODULE dll;
  FILE *out;
  open_fn pc_open_;
  open_error_fn pc_open_error_;
  submit_fn pc_submit;
  version_fn pc_version_;
  close_fn pc_close_;
  char order[256], msg[1024];
  pc_status st;
  struct job j;
  HANDLE t;
  if (argc != 7) {
    fprintf(stderr, "usage: win_host DLL CONFIG ORDER_ID AMOUNT TIMEOUT_MS OUT_FILE\n");
    return 2;
  }
  out = fopen(argv[6], "wb"); /* binary: lines end in \n, as on Linux */
  if (!out) return 2;
  dll = LoadLibraryA(argv[1]);
  if (!dll) {
    fprintf(out, "cannot load %s: error %lu\n", argv[1], (unsigned long)GetLastError());
    fclose(out);
    return 3;
  }
  pc_open_ = (open_fn)(void (*)(void))need(dll, "pc_open", out);
  pc_open_error_ = (open_error_fn)(void (*)(void))need(dll, "pc_open_error", out);
  pc_submit = (submit_fn)(void (*)(void))need(dll, "pc_submit_order", out);
  pc_wait = (wait_fn)(void (*)(void))need(dll, "pc_wait_result", out);
  pc_err = (last_error_fn)(void (*)(void))need(dll, "pc_last_error", out);
  pc_version_ = (version_fn)(void (*)(void))need(dll, "pc_version", out);
  pc_close_ = (close_fn)(void (*)(void))need(dll, "pc_close", out);
  need(dll, "pc_cancel", out);
  fprintf(out, "loaded %s\n", pc_version_());
  st = pc_open_(argv[2], &handle);
  if (st != PC_OK) {
    pc_open_error_(msg, sizeof msg, NULL);
    fprintf(out, "failed %d %s\n", (int)st, msg);
    fclose(out);
    return 1;
  }
  snprintf(order, sizeof order, "{\"orderId\":\"%s\",\"amount\":\"%s\"}", argv[3], argv[4]);
  st = pc_submit(handle, order);
  if (st != PC_OK) {
    pc_err(handle, msg, sizeof msg, NULL);
    fprintf(out, "failed %d %s\n", (int)st, msg);
    fclose(out);
    return 1;
  }
  fprintf(out, "submitted %s\n", argv[3]);
  fflush(out);
  memset(&j, 0, sizeof j);
  j.order_id = argv[3];
  j.timeout_ms = atoi(argv[5]);
  t = CreateThread(NULL, 0, waiter, &j, 0, NULL);
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
  if (j.status == PC_OK) {
    fprintf(out, "result %s\n", j.result);
  } else {
    pc_err(handle, msg, sizeof msg, NULL);
    fprintf(out, "failed %d %s\n", (int)j.status, msg);
  }
  pc_close_(handle);
  fclose(out);
  return j.status == PC_OK && strstr(j.result, "\"status\":\"paid\"") ? 0 : 1;
}
