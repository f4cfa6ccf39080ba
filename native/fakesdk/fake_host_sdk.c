/*
 * fake_host_sdk.c - what a register vendor's payment SDK looks like to payconnect's host-sdk adapter, for
 * tests: a library exporting "get the current order" and "set the pay result" calls, __stdcall on 32-bit
 * Windows (names undecorated, as vendors ship them with a .def file) and the platform's C convention
 * elsewhere.
 *
 * The register's state lives in files in the folder named by the environment variable FAKESDK_DIR, so a
 * test plays the register from any process, whichever process loaded the library (the test itself through
 * koffi, or the sdk bridge, natively or under Wine):
 *   orders         lines "<orderNo>\t<amount in fen>" appended by the test; the register's current sale is
 *                  the LAST line, until a result for it was set (then there is none until the next line).
 *   results        lines "<orderNo>\t<status>\t<paymentId>" appended by SetPayResult, one per call that
 *                  returned 0: what the register was told.
 *   set-return     optional: an integer SetPayResult returns instead of recording (a refusing register).
 *   delay-ms       optional: every call sleeps this long first (a register SDK that blocks).
 *   calls          one line per call of GetCurrentOrder / SetPayResult ("get" / "set"), for the tests.
 * Lines end in \n on every platform (files appended in binary mode), so a test reads them the same way.
 * FakeSdk_SetDir names the folder from inside the process; FakeSdk_PushOrder and FakeSdk_LastResult do
 * the test's part through the library too.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#define SDK_API __declspec(dllexport)
#define SDK_CALL __stdcall
static void sleep_ms(int ms) { Sleep((DWORD)ms); }
#else
#include <time.h>
#define SDK_API __attribute__((visibility("default")))
#ifdef FAKESDK_STDCALL /* a 32-bit Linux build with the Windows SDKs' convention, to test the x86 bridge's __stdcall calls */
#define SDK_CALL __attribute__((stdcall))
#else
#define SDK_CALL
#endif
static void sleep_ms(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}
#endif

#define LINE_MAX_BYTES 512

/* Status codes of SetPayResult, as a vendor documents them. */
#define SDK_PAID 1
#define SDK_FAILED 2
#define SDK_CANCELED 3

/* Set by FakeSdk_SetDir: a test that loaded the library into its own process (koffi) names the folder
   there, as a test runner's copy of the environment may not be the C library's. */
static char dir_override[1024];

static const char *state_dir(void) { return dir_override[0] ? dir_override : getenv("FAKESDK_DIR"); }

static int state_file(const char *name, char *out, size_t len) {
  const char *dir = state_dir();
  if (!dir || !*dir) return 0;
  int n = snprintf(out, len, "%s/%s", dir, name);
  return n > 0 && (size_t)n < len;
}

static int read_int_file(const char *name, int *value) {
  char file[1024];
  if (!state_file(name, file, sizeof file)) return 0;
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  int ok = fscanf(f, "%d", value) == 1;
  fclose(f);
  return ok;
}

static void note_call(const char *what) {
  char file[1024];
  int delay = 0;
  if (read_int_file("delay-ms", &delay) && delay > 0) sleep_ms(delay);
  if (!state_file("calls", file, sizeof file)) return;
  FILE *f = fopen(file, "ab");
  if (!f) return;
  fprintf(f, "%s\n", what);
  fclose(f);
}

static void chomp(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

/* The last line of a state file, or 0 when there is none. */
static int last_line(const char *name, char *out, size_t len) {
  char file[1024], line[LINE_MAX_BYTES];
  int found = 0;
  if (!state_file(name, file, sizeof file)) return 0;
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) {
    chomp(line);
    if (line[0] == '\0') continue;
    strncpy(out, line, len - 1);
    out[len - 1] = '\0';
    found = 1;
  }
  fclose(f);
  return found;
}

/* 1 when the results file holds a line for this order number. */
static int has_result(const char *order_no) {
  char file[1024], line[LINE_MAX_BYTES];
  size_t n = strlen(order_no);
  int found = 0;
  if (!state_file("results", file, sizeof file)) return 0;
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  while (!found && fgets(line, sizeof line, f)) {
    if (strncmp(line, order_no, n) == 0 && line[n] == '\t') found = 1;
  }
  fclose(f);
  return found;
}

/*
 * The register's current sale: 0 and its order number and amount (fen) when one waits for payment,
 * 1 when none does, -2 when orderNo cannot hold the order number, -1 when the SDK is not set up.
 */
SDK_API int SDK_CALL GetCurrentOrder(char *orderNo, int orderNoLen, long long *amountFen) {
  char line[LINE_MAX_BYTES];
  note_call("get");
  if (!state_dir()) return -1;
  if (!last_line("orders", line, sizeof line)) return 1;
  char *tab = strchr(line, '\t');
  if (!tab) return 1;
  *tab = '\0';
  if (has_result(line)) return 1;
  if (orderNoLen <= 0 || strlen(line) + 1 > (size_t)orderNoLen) return -2;
  memcpy(orderNo, line, strlen(line) + 1);
  *amountFen = strtoll(tab + 1, NULL, 10);
  return 0;
}

/* Tells the register an order's result: 0 when taken, the set-return file's code when it refuses. */
SDK_API int SDK_CALL SetPayResult(const char *orderNo, int status, const char *paymentId) {
  char file[1024];
  int refuse = 0;
  note_call("set");
  if (read_int_file("set-return", &refuse) && refuse != 0) return refuse;
  if (!orderNo || !*orderNo) return -3;
  if (status != SDK_PAID && status != SDK_FAILED && status != SDK_CANCELED) return -4;
  if (!state_file("results", file, sizeof file)) return -1;
  FILE *f = fopen(file, "ab");
  if (!f) return -1;
  fprintf(f, "%s\t%d\t%s\n", orderNo, status, paymentId ? paymentId : "");
  fclose(f);
  return 0;
}

/* Test control: the state folder, in place of FAKESDK_DIR (NULL or "" goes back to it). */
SDK_API void SDK_CALL FakeSdk_SetDir(const char *dir) {
  if (!dir) dir = "";
  strncpy(dir_override, dir, sizeof dir_override - 1);
  dir_override[sizeof dir_override - 1] = '\0';
}

/* Test control: the register rings up a sale (appends it to the orders file). 0 when written. */
SDK_API int SDK_CALL FakeSdk_PushOrder(const char *orderNo, long long amountFen) {
  char file[1024];
  if (!state_file("orders", file, sizeof file)) return -1;
  FILE *f = fopen(file, "ab");
  if (!f) return -1;
  fprintf(f, "%s\t%lld\n", orderNo, amountFen);
  fclose(f);
  return 0;
}

/* Test control: the last result the register was told, "<orderNo>\t<status>\t<paymentId>"; 1 when none. */
SDK_API int SDK_CALL FakeSdk_LastResult(char *out, int outLen) {
  char line[LINE_MAX_BYTES];
  if (!last_line("results", line, sizeof line)) return 1;
  if (outLen <= 0 || strlen(line) + 1 > (size_t)outLen) return -2;
  memcpy(out, line, strlen(line) + 1);
  return 0;
}
