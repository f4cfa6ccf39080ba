/*
 * sdk_bridge.c - loads a register vendor's SDK library in a process of the library's own width (a 32-bit
 * DLL cannot be loaded by a 64-bit Node) and calls its functions for payconnect's host-sdk adapter, one
 * JSON object per line over a loopback TCP connection (src/adapters/host-sdk/bridge-protocol.ts).
 *
 * The adapter starts it with PAYCONNECT_BRIDGE_ADDRESS=127.0.0.1:PORT and PAYCONNECT_BRIDGE_TOKEN=<hex> in
 * its environment; it connects there, says hello with the token, and answers requests until the
 * connection closes, then exits. It uses no stdin/stdout: under Wine a Windows program's standard handles
 * to a Linux pipe are unreliable, a socket is the same everywhere.
 *
 * Signatures are limited to what register SDKs need, so calls are made exactly without libffi: an int
 * return, and up to 8 parameters of text in (s), text out of N bytes (bN), 32/64-bit integers in (i4, i8)
 * and out (o4, o8). On x64 (System V and Windows) every such argument is one integer register or 8-byte
 * stack slot, so a call passes 8 of them (the callee reads the ones it declared; the caller cleans up).
 * On 32-bit x86 each is one 4-byte stack slot (two for a 64-bit integer), pushed by a call through a
 * pointer typed with exactly that many slots: __cdecl or __stdcall (which pops its own arguments), as the
 * manifest says. No floating point: money is integer minor units.
 *
 * Exit codes: 0 the connection closed, 2 bad environment, 3 cannot connect, 4 no memory.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/json.h"

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
typedef SOCKET sock_t;
#define CLOSESOCK closesocket
#else
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int sock_t;
#define INVALID_SOCKET (-1)
#define CLOSESOCK close
#endif

#define BRIDGE_VERSION 1
#define MAX_LINE (1024 * 1024)
#define MAX_FUNCS 8
#define MAX_PARAMS 8
#define MAX_BUF 65536
#define MAX_SLOTS 16

enum ptype { P_STR, P_BUF, P_I32, P_I64, P_O32, P_O64 };

struct param {
  enum ptype type;
  int size; /* bytes of a P_BUF */
};

struct func {
  void *addr;
  int nparams;
  struct param params[MAX_PARAMS];
  char name[128];
};

static void *library;
static int stdcall_conv;
static struct func funcs[MAX_FUNCS];
static sock_t sock = INVALID_SOCKET;

/* ---- output ---------------------------------------------------------------------------------- */

static int send_all(const char *p, size_t n) {
  while (n > 0) {
    int w = send(sock, p, (int)(n > 65536 ? 65536 : n), 0);
    if (w <= 0) return 0;
    p += w;
    n -= (size_t)w;
  }
  return 1;
}

static void answer_error(long id, const char *code, const char *message) {
  char quoted[1200], line[1400];
  if (!pcj_quote(message, quoted, sizeof quoted)) strcpy(quoted, "\"(message too long)\"");
  snprintf(line, sizeof line, "{\"id\":%ld,\"ok\":false,\"code\":\"%s\",\"message\":%s}\n", id, code, quoted);
  send_all(line, strlen(line));
}

static void answer_ok(long id) {
  char line[64];
  snprintf(line, sizeof line, "{\"id\":%ld,\"ok\":true}\n", id);
  send_all(line, strlen(line));
}

/* ---- reading requests --------------------------------------------------------------------------- */

/* A string member of the request into out; 0 when absent, not a string or too long. */
static int member_string(const char *line, const char *end, const char *key, char *out, size_t len) {
  const char *v;
  size_t n;
  return pcj_member(line, end, key, &v, &n) && pcj_string(v, n, out, len);
}

static int member_int(const char *line, const char *end, const char *key, long *out) {
  const char *v;
  size_t n;
  return pcj_member(line, end, key, &v, &n) && pcj_int(v, n, out);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A decimal 64-bit integer token; 0 when it is not one (or out of range). */
static int parse_i64(const char *t, int64_t *out) {
  int neg = 0;
  uint64_t v = 0;
  if (*t == '-') neg = 1, t++;
  if (!*t) return 0;
  for (; *t; t++) {
    if (*t < '0' || *t > '9') return 0;
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(*t - '0');
  }
  if (!neg && v > (uint64_t)INT64_MAX) return 0;
  if (neg && v > (uint64_t)INT64_MAX + 1) return 0;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 1;
}

/* ---- load and resolve ----------------------------------------------------------------------------- */

static void do_load(long id, const char *line, const char *end) {
  char path[4096], conv[16], msg[5000];
  if (!member_string(line, end, "library", path, sizeof path) || !member_string(line, end, "convention", conv, sizeof conv)) {
    answer_error(id, "bad_request", "load needs library and convention");
    return;
  }
  if (strcmp(conv, "cdecl") != 0 && strcmp(conv, "stdcall") != 0) {
    answer_error(id, "bad_request", "convention is cdecl or stdcall");
    return;
  }
  if (library) {
    answer_error(id, "bad_request", "a library is loaded already");
    return;
  }
  stdcall_conv = strcmp(conv, "stdcall") == 0;
#ifdef _WIN32
  wchar_t wpath[4096];
  if (!MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, 4096)) {
    answer_error(id, "no_library", "the library path is not valid UTF-8");
    return;
  }
  library = (void *)LoadLibraryW(wpath);
  if (!library) {
    DWORD err = GetLastError();
    snprintf(msg, sizeof msg,
             "LoadLibrary failed with Windows error %lu%s", (unsigned long)err,
             err == 193 ? " (ERROR_BAD_EXE_FORMAT: the DLL is of the other width; use the bridge for its width, bridge: x86 or x64)"
             : err == 126 ? " (ERROR_MOD_NOT_FOUND: the file, or a DLL it needs, is missing)" : "");
    answer_error(id, "no_library", msg);
    return;
  }
#else
  library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *e = dlerror();
    snprintf(msg, sizeof msg, "dlopen failed: %s", e ? e : "unknown error");
    answer_error(id, "no_library", msg);
    return;
  }
#endif
  answer_ok(id);
}

static void *find_symbol(const char *name) {
#ifdef _WIN32
  return (void *)GetProcAddress((HMODULE)library, name);
#else
  return dlsym(library, name);
#endif
}

#if defined(_WIN32) && !defined(_WIN64)
static int slots_of(const struct func *f) {
  int n = 0;
  for (int i = 0; i < f->nparams; i++) n += f->params[i].type == P_I64 ? 2 : 1;
  return n;
}
#endif

static void do_resolve(long id, const char *line, const char *end) {
  char name[128], codes[256], msg[600];
  long fn;
  if (!library) {
    answer_error(id, "bad_request", "load a library first");
    return;
  }
  if (!member_int(line, end, "fn", &fn) || fn < 0 || fn >= MAX_FUNCS ||
      !member_string(line, end, "name", name, sizeof name) || !member_string(line, end, "params", codes, sizeof codes)) {
    answer_error(id, "bad_request", "resolve needs fn (0-7), name and params");
    return;
  }
  struct func f;
  memset(&f, 0, sizeof f);
  strcpy(f.name, name);
  char *save = codes;
  for (char *tok = codes; *save; tok = save) {
    char *sp = strchr(tok, ' ');
    save = sp ? sp + 1 : tok + strlen(tok);
    if (sp) *sp = '\0';
    if (*tok == '\0') continue;
    if (f.nparams == MAX_PARAMS) {
      answer_error(id, "bad_signature", "more than 8 parameters");
      return;
    }
    struct param *p = &f.params[f.nparams++];
    if (strcmp(tok, "s") == 0) p->type = P_STR;
    else if (strcmp(tok, "i4") == 0) p->type = P_I32;
    else if (strcmp(tok, "i8") == 0) p->type = P_I64;
    else if (strcmp(tok, "o4") == 0) p->type = P_O32;
    else if (strcmp(tok, "o8") == 0) p->type = P_O64;
    else if (tok[0] == 'b' && atoi(tok + 1) >= 1 && atoi(tok + 1) <= MAX_BUF) p->type = P_BUF, p->size = atoi(tok + 1);
    else {
      snprintf(msg, sizeof msg, "parameter code \"%.20s\" is not supported (s, bN, i4, i8, o4, o8; no floating point)", tok);
      answer_error(id, "bad_signature", msg);
      return;
    }
  }
  f.addr = find_symbol(name);
#if defined(_WIN32) && !defined(_WIN64)
  if (!f.addr && stdcall_conv) {
    /* A 32-bit __stdcall export without a .def file is decorated with its argument bytes: name@N. */
    char decorated[160];
    int bytes = slots_of(&f) * 4;
    snprintf(decorated, sizeof decorated, "%s@%d", name, bytes);
    f.addr = find_symbol(decorated);
    if (!f.addr) {
      snprintf(decorated, sizeof decorated, "_%s@%d", name, bytes);
      f.addr = find_symbol(decorated);
    }
    if (!f.addr) {
      for (int other = 0; other <= 64; other += 4) {
        snprintf(decorated, sizeof decorated, "%s@%d", name, other);
        if (other != bytes && find_symbol(decorated)) {
          snprintf(msg, sizeof msg,
                   "exports %s: the function takes %d bytes of arguments, the declaration gives %d; correct the declaration",
                   decorated, other, bytes);
          answer_error(id, "bad_signature", msg);
          return;
        }
      }
    }
  }
#endif
  if (!f.addr) {
    snprintf(msg, sizeof msg, "the library has no function %s (names are case-sensitive)", name);
    answer_error(id, "no_symbol", msg);
    return;
  }
  funcs[fn] = f;
  answer_ok(id);
}

/* ---- calling ------------------------------------------------------------------------------------- */

#if defined(_WIN32) && !defined(_WIN64) || defined(__i386__)
typedef uint32_t slot_t;
#define U uint32_t
#define SLOTS_DECL(X)                                                                                   \
  X(0, (void), ())                                                                                       \
  X(1, (U), (s[0]))                                                                                      \
  X(2, (U, U), (s[0], s[1]))                                                                             \
  X(3, (U, U, U), (s[0], s[1], s[2]))                                                                    \
  X(4, (U, U, U, U), (s[0], s[1], s[2], s[3]))                                                           \
  X(5, (U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4]))                                                  \
  X(6, (U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5]))                                         \
  X(7, (U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6]))                                \
  X(8, (U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]))                       \
  X(9, (U, U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]))              \
  X(10, (U, U, U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9]))    \
  X(11, (U, U, U, U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10])) \
  X(12, (U, U, U, U, U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11])) \
  X(13, (U, U, U, U, U, U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12])) \
  X(14, (U, U, U, U, U, U, U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13])) \
  X(15, (U, U, U, U, U, U, U, U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13], s[14])) \
  X(16, (U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U), (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13], s[14], s[15]))

#ifdef _WIN32
#define BR_STDCALL __stdcall
#define BR_CDECL __cdecl
#else
#define BR_STDCALL __attribute__((stdcall))
#define BR_CDECL __attribute__((cdecl))
#endif
/*
 * One function per convention, kept apart (noinline, no cloning): inside one function GCC merged the
 * two conventions' calls of a count into one call site with the cdecl stack clean-up, which corrupted the
 * stack after a __stdcall call (seen with i686 gcc 12 at -O2, tested in sdk-bridge32 on Linux).
 */
#define CASE_STDCALL(n, types, args) \
  case n:                            \
    return ((int(BR_STDCALL *) types)addr) args;
#define CASE_CDECL(n, types, args) \
  case n:                          \
    return ((int(BR_CDECL *) types)addr) args;

static __attribute__((noinline, noclone)) int call_stdcall(void *addr, int n, const slot_t *s) {
  switch (n) { SLOTS_DECL(CASE_STDCALL) }
  return 0;
}

static __attribute__((noinline, noclone)) int call_cdecl(void *addr, int n, const slot_t *s) {
  switch (n) { SLOTS_DECL(CASE_CDECL) }
  return 0;
}

static int call_slots(void *addr, int n, const slot_t *s) {
  return stdcall_conv ? call_stdcall(addr, n, s) : call_cdecl(addr, n, s);
}
#define X86 1
#else
typedef int64_t slot_t;
typedef int (*call8)(slot_t, slot_t, slot_t, slot_t, slot_t, slot_t, slot_t, slot_t);
#define X86 0
#endif

static void do_call(long id, const char *line, const char *end) {
  static char args[MAX_LINE];
  long fn;
  if (!member_int(line, end, "fn", &fn) || fn < 0 || fn >= MAX_FUNCS || !funcs[fn].addr) {
    answer_error(id, "bad_request", "call needs fn, a function resolved before");
    return;
  }
  if (!member_string(line, end, "args", args, sizeof args)) {
    answer_error(id, "bad_request", "call needs args");
    return;
  }
  struct func *f = &funcs[fn];
  void *mem[MAX_PARAMS] = {0};
  int64_t ints[MAX_PARAMS] = {0};
  int ok = 1, count = 0;
  char msg[300];
  char *cursor = args;
  for (int i = 0; i < f->nparams && ok; i++) {
    char *tok = cursor;
    char *sp = strchr(tok, ' ');
    if (sp) *sp = '\0', cursor = sp + 1;
    else cursor = tok + strlen(tok);
    if (*tok == '\0' && !sp && i < f->nparams) {
      ok = 0;
      break;
    }
    count++;
    struct param *p = &f->params[i];
    switch (p->type) {
      case P_STR: {
        size_t n = strcmp(tok, "-") == 0 ? 0 : strlen(tok);
        if (n % 2) { ok = 0; break; }
        char *s = calloc(n / 2 + 1, 1);
        if (!s) exit(4);
        for (size_t k = 0; k < n / 2 && ok; k++) {
          int hi = hexval(tok[2 * k]), lo = hexval(tok[2 * k + 1]);
          if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) ok = 0;
          else s[k] = (char)(hi * 16 + lo);
        }
        mem[i] = s;
        break;
      }
      case P_BUF:
        if (strcmp(tok, "_") != 0) ok = 0;
        else if (!(mem[i] = calloc((size_t)p->size + 1, 1))) exit(4);
        break;
      case P_O32:
      case P_O64:
        if (strcmp(tok, "_") != 0) ok = 0;
        else if (!(mem[i] = calloc(1, 8))) exit(4);
        break;
      case P_I32:
        if (!parse_i64(tok, &ints[i]) || ints[i] < INT32_MIN || ints[i] > INT32_MAX) ok = 0;
        break;
      case P_I64:
        if (!parse_i64(tok, &ints[i])) ok = 0;
        break;
    }
  }
  if (ok && (count != f->nparams || *cursor != '\0')) ok = 0;
  if (!ok) {
    snprintf(msg, sizeof msg, "args for %s do not fit its %d parameters (hex text, decimal integers, _ for outs)", f->name, f->nparams);
    answer_error(id, "bad_request", msg);
    for (int i = 0; i < MAX_PARAMS; i++) free(mem[i]);
    return;
  }
  int ret;
#if X86
  slot_t s[MAX_SLOTS] = {0};
  int nslots = 0;
  for (int i = 0; i < f->nparams; i++) {
    if (mem[i]) s[nslots++] = (slot_t)(uintptr_t)mem[i];
    else if (f->params[i].type == P_I64) {
      s[nslots++] = (slot_t)((uint64_t)ints[i] & 0xffffffffu);
      s[nslots++] = (slot_t)((uint64_t)ints[i] >> 32);
    } else s[nslots++] = (slot_t)(int32_t)ints[i];
  }
  ret = call_slots(f->addr, nslots, s);
#else
  slot_t s[8] = {0};
  for (int i = 0; i < f->nparams; i++) s[i] = mem[i] ? (slot_t)(intptr_t)mem[i] : ints[i];
  ret = ((call8)f->addr)(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
#endif
  /* The answer: hex of each out text up to its NUL (within its size), decimal out integers, _ otherwise. */
  static char out[MAX_LINE];
  size_t o = 0;
  for (int i = 0; i < f->nparams; i++) {
    struct param *p = &f->params[i];
    if (i) out[o++] = ' ';
    if (p->type == P_BUF) {
      const unsigned char *b = mem[i];
      size_t n = 0;
      while (n < (size_t)p->size && b[n]) n++;
      if (n == 0) out[o++] = '-';
      for (size_t k = 0; k < n; k++) o += (size_t)sprintf(out + o, "%02x", b[k]);
    } else if (p->type == P_O32) {
      int32_t v;
      memcpy(&v, mem[i], 4);
      o += (size_t)sprintf(out + o, "%ld", (long)v);
    } else if (p->type == P_O64) {
      int64_t v;
      memcpy(&v, mem[i], 8);
      o += (size_t)sprintf(out + o, "%lld", (long long)v);
    } else out[o++] = '_';
  }
  out[o] = '\0';
  for (int i = 0; i < MAX_PARAMS; i++) free(mem[i]);
  char head[96];
  snprintf(head, sizeof head, "{\"id\":%ld,\"ok\":true,\"ret\":%d,\"out\":\"", id, ret);
  if (send_all(head, strlen(head)) && send_all(out, o)) send_all("\"}\n", 3);
}

/* ---- the loop ------------------------------------------------------------------------------------ */

/* The adapter is JavaScript: an id above 2^53-1 would come back to it as another number, so it is refused
 * like a missing one (found by the fuzz spec). Where long is 32 bits every id fits. */
static int id_readable(long id) {
#if LONG_MAX > 9007199254740991LL
  return id <= 9007199254740991L;
#else
  (void)id;
  return 1;
#endif
}

static void handle(char *line, size_t len) {
  const char *end = line + len;
  long id = 0;
  char op[16];
  if (len > 0 && line[len - 1] == '\r') end--;
  if (!pcj_is_object(line, end)) {
    answer_error(0, "bad_request", "a request is one JSON object on one line");
    return;
  }
  if (!member_int(line, end, "id", &id) || id < 0 || !id_readable(id)) {
    answer_error(0, "bad_request", "a request needs a whole number id from 0 to 2^53-1");
    return;
  }
  if (!member_string(line, end, "op", op, sizeof op)) {
    answer_error(id, "bad_request", "a request needs op: load, resolve or call");
    return;
  }
  if (strcmp(op, "load") == 0) do_load(id, line, end);
  else if (strcmp(op, "resolve") == 0) do_resolve(id, line, end);
  else if (strcmp(op, "call") == 0) do_call(id, line, end);
  else answer_error(id, "bad_request", "op is load, resolve or call");
}

int main(void) {
  const char *address = getenv("PAYCONNECT_BRIDGE_ADDRESS");
  const char *token = getenv("PAYCONNECT_BRIDGE_TOKEN");
  char host[64];
  int port = 0;
  if (!address || !token || strlen(token) > 128 || sscanf(address, "%63[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535) {
    fprintf(stderr, "sdk_bridge: set PAYCONNECT_BRIDGE_ADDRESS=127.0.0.1:PORT and PAYCONNECT_BRIDGE_TOKEN; the host-sdk adapter starts it\n");
    return 2;
  }
#ifdef _WIN32
  WSADATA wsa;
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) return 3;
#endif
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "sdk_bridge: %s is not a loopback address\n", host);
    return 2;
  }
  sock = socket(AF_INET, SOCK_STREAM, 0);
  if (sock == INVALID_SOCKET || connect(sock, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fprintf(stderr, "sdk_bridge: cannot connect to %s\n", address);
    return 3;
  }
  int one = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
  char hello[300];
  snprintf(hello, sizeof hello, "{\"bridge\":\"payconnect-sdk-bridge\",\"version\":%d,\"token\":\"%s\",\"bits\":%d}\n",
           BRIDGE_VERSION, token, (int)(sizeof(void *) * 8));
  if (!send_all(hello, strlen(hello))) return 3;

  char *buf = malloc(MAX_LINE + 1);
  if (!buf) return 4;
  size_t have = 0;
  int skipping = 0; /* inside a line longer than MAX_LINE: dropped up to its end, answered once */
  for (;;) {
    int r = recv(sock, buf + have, (int)(MAX_LINE - have), 0);
    if (r <= 0) break;
    size_t total = have + (size_t)r, start = 0;
    for (size_t i = have; i < total; i++) {
      if (buf[i] != '\n') continue;
      if (skipping) skipping = 0;
      else {
        buf[i] = '\0';
        handle(buf + start, i - start);
      }
      start = i + 1;
    }
    if (start < total) memmove(buf, buf + start, total - start);
    have = total - start;
    if (have == MAX_LINE) {
      if (!skipping) answer_error(0, "bad_request", "a request line is longer than 1 MiB");
      skipping = 1;
      have = 0;
    }
  }
  CLOSESOCK(sock);
  return 0;
}
