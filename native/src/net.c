/*
 * net.c - see net.h. Sockets are non-blocking from the start and every wait is a poll (POSIX) or a
 * select (Windows: no FD_SETSIZE limit there, and WSAPoll misses failed connects on older Windows)
 * bounded by the step's deadline, so no call of the library can hang a register's thread.
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L
#endif

#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <ws2tcpip.h>
#define PCN_INVALID INVALID_SOCKET
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#define PCN_INVALID (-1)
#endif

int pcn_parse_address(const char *text, pcn_address *out) {
  const char *colon;
  long port;
  char *end;
  memset(out, 0, sizeof *out);
  if (!text) return 0;
  if (strncmp(text, "[::1]:", 6) == 0) {
    out->ipv6 = 1;
    colon = text + 5;
  } else if (strncmp(text, "localhost:", 10) == 0) {
    out->v4[0] = 127;
    out->v4[3] = 1;
    colon = text + 9;
  } else {
    const char *p = text;
    int i;
    for (i = 0; i < 4; i++) {
      long part;
      if (*p < '0' || *p > '9') return 0;
      part = strtol(p, &end, 10);
      if (part > 255 || end - p > 3) return 0;
      out->v4[i] = (unsigned char)part;
      p = end;
      if (i < 3) {
        if (*p != '.') return 0;
        p++;
      }
    }
    if (out->v4[0] != 127 || *p != ':') return 0; /* loopback only */
    colon = p;
  }
  if (colon[1] < '0' || colon[1] > '9') return 0;
  port = strtol(colon + 1, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) return 0;
  out->port = (unsigned short)port;
  return 1;
}

#ifdef _WIN32
int pcn_startup(void) {
  WSADATA data;
  return WSAStartup(MAKEWORD(2, 2), &data) == 0;
}
void pcn_cleanup(void) { WSACleanup(); }
long long pcn_now_ms(void) { return (long long)GetTickCount64(); }
static int last_error_would_block(void) { return WSAGetLastError() == WSAEWOULDBLOCK; }
static void close_socket(pcn_socket s) { closesocket(s); }
#else
int pcn_startup(void) { return 1; }
void pcn_cleanup(void) {}
long long pcn_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int last_error_would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS; }
static void close_socket(pcn_socket s) { close(s); }
#endif

/** Waits until the socket can be read (want_write 0) or written (1): 1 ready, 0 deadline, -1 error. */
static int wait_socket(pcn_socket s, int want_write, long long deadline) {
  for (;;) {
    long long left = deadline - pcn_now_ms();
    int r;
    if (left <= 0) return 0;
    if (left > 1000000) left = 1000000;
#ifdef _WIN32
    {
      fd_set set, errs;
      struct timeval tv;
      FD_ZERO(&set);
      FD_ZERO(&errs);
      FD_SET(s, &set);
      FD_SET(s, &errs);
      tv.tv_sec = (long)(left / 1000);
      tv.tv_usec = (long)(left % 1000) * 1000;
      r = select(0, want_write ? NULL : &set, want_write ? &set : NULL, &errs, &tv);
      if (r == SOCKET_ERROR) return -1;
      if (r > 0) return 1; /* an error shows on the next send/recv (or SO_ERROR after a connect) */
    }
#else
    {
      struct pollfd p;
      p.fd = s;
      p.events = want_write ? POLLOUT : POLLIN;
      p.revents = 0;
      r = poll(&p, 1, (int)left);
      if (r < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      if (r > 0) return 1;
    }
#endif
  }
}

pcn_result pcn_connect(pcn_conn *c, const pcn_address *a, long long deadline) {
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
  const struct sockaddr *sa;
  int sa_len, r, err = 0, one = 1;
#ifdef _WIN32
  u_long nb = 1;
  int err_len = sizeof err;
#else
  socklen_t err_len = sizeof err;
#endif
  memset(c, 0, sizeof *c);
  c->s = socket(a->ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (c->s == PCN_INVALID) return PCN_ERROR;
#ifdef _WIN32
  ioctlsocket(c->s, FIONBIO, &nb);
#else
  fcntl(c->s, F_SETFL, fcntl(c->s, F_GETFL) | O_NONBLOCK);
  fcntl(c->s, F_SETFD, FD_CLOEXEC);
#endif
  setsockopt(c->s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
  if (a->ipv6) {
    memset(&v6, 0, sizeof v6);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(a->port);
    v6.sin6_addr = in6addr_loopback;
    sa = (const struct sockaddr *)&v6;
    sa_len = sizeof v6;
  } else {
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(a->port);
    memcpy(&v4.sin_addr, a->v4, 4);
    sa = (const struct sockaddr *)&v4;
    sa_len = sizeof v4;
  }
  r = connect(c->s, sa, sa_len);
  if (r != 0) {
    if (!last_error_would_block()) {
      pcn_close(c);
      return PCN_REFUSED;
    }
    r = wait_socket(c->s, 1, deadline);
    if (r <= 0) {
      pcn_close(c);
      return r == 0 ? PCN_TIMEOUT : PCN_ERROR;
    }
    if (getsockopt(c->s, SOL_SOCKET, SO_ERROR, (char *)&err, &err_len) != 0 || err != 0) {
      pcn_close(c);
      return PCN_REFUSED;
    }
  }
  return PCN_OK;
}

pcn_result pcn_send_all(pcn_conn *c, const char *data, size_t n, long long deadline) {
  while (n > 0) {
#ifdef _WIN32
    int k = send(c->s, data, n > 65536 ? 65536 : (int)n, 0);
#else
    ssize_t k = send(c->s, data, n > 65536 ? 65536 : n, MSG_NOSIGNAL);
#endif
    if (k > 0) {
      data += k;
      n -= (size_t)k;
      continue;
    }
    if (k < 0 && last_error_would_block()) {
      int r = wait_socket(c->s, 1, deadline);
      if (r == 0) return PCN_TIMEOUT;
      if (r < 0) return PCN_ERROR;
      continue;
    }
    return PCN_CLOSED;
  }
  return PCN_OK;
}

pcn_result pcn_read_line(pcn_conn *c, char **line, size_t *line_len, size_t max_len, long long deadline) {
  size_t scanned = 0;
  /* The line returned last time stays valid until now: drop it. */
  if (c->consumed > 0) {
    memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
    c->len -= c->consumed;
    c->consumed = 0;
  }
  for (;;) {
    char *nl = scanned < c->len ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - c->buf);
      if (n > max_len) return PCN_TOO_LONG;
      *nl = '\0';
      if (n > 0 && c->buf[n - 1] == '\r') c->buf[--n] = '\0';
      *line = c->buf;
      *line_len = n;
      c->consumed = (size_t)(nl - c->buf) + 1;
      return PCN_OK;
    }
    scanned = c->len;
    if (c->len > max_len) return PCN_TOO_LONG;
    if (c->cap - c->len < 4096) {
      size_t cap = c->cap ? c->cap * 2 : 8192;
      char *b = realloc(c->buf, cap + 1);
      if (!b) return PCN_ERROR;
      c->buf = b;
      c->cap = cap;
    }
    {
#ifdef _WIN32
      int k = recv(c->s, c->buf + c->len, (int)(c->cap - c->len), 0);
#else
      ssize_t k = recv(c->s, c->buf + c->len, c->cap - c->len, 0);
#endif
      if (k > 0) {
        c->len += (size_t)k;
        continue;
      }
      if (k == 0) return PCN_CLOSED;
      if (last_error_would_block()) {
        int r = wait_socket(c->s, 0, deadline);
        if (r == 0) return PCN_TIMEOUT;
        if (r < 0) return PCN_ERROR;
        continue;
      }
      return PCN_CLOSED;
    }
  }
}

void pcn_close(pcn_conn *c) {
  if (c->s != PCN_INVALID) close_socket(c->s);
  c->s = PCN_INVALID;
  free(c->buf);
  c->buf = NULL;
  c->len = c->cap = c->consumed = 0;
}

#ifdef _WIN32
void pcn_mutex_init(pcn_mutex *m) { InitializeCriticalSection(m); }
void pcn_mutex_lock(pcn_mutex *m) { EnterCriticalSection(m); }
void pcn_mutex_unlock(pcn_mutex *m) { LeaveCriticalSection(m); }
void pcn_mutex_destroy(pcn_mutex *m) { DeleteCriticalSection(m); }
#else
void pcn_mutex_init(pcn_mutex *m) { pthread_mutex_init(m, NULL); }
void pcn_mutex_lock(pcn_mutex *m) { pthread_mutex_lock(m); }
void pcn_mutex_unlock(pcn_mutex *m) { pthread_mutex_unlock(m); }
void pcn_mutex_destroy(pcn_mutex *m) { pthread_mutex_destroy(m); }
#endif

long pcn_read_file(const char *path, char *buf, size_t max) {
  FILE *f;
  size_t n;
#ifdef _WIN32
  wchar_t wpath[1024];
  if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wpath, 1024) == 0) return -2;
  f = _wfopen(wpath, L"rb");
#else
  f = fopen(path, "rb");
#endif
  if (!f) return errno == ENOENT ? -1 : -2;
  n = fread(buf, 1, max, f);
  if (ferror(f)) {
    fclose(f);
    return -2;
  }
  if (n == max && fgetc(f) != EOF) {
    fclose(f);
    return -3;
  }
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}
