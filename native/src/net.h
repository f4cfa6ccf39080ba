/*
 * net.h - what the hook library needs from the operating system, the same on POSIX and Windows:
 * a loopback TCP connection with deadlines on every step, a mutex, a monotonic clock, and reading a
 * small file by a UTF-8 path.
 */
#ifndef PC_NET_H
#define PC_NET_H

#include <stddef.h>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
typedef SOCKET pcn_socket;
typedef CRITICAL_SECTION pcn_mutex;
#else
#include <pthread.h>
typedef int pcn_socket;
typedef pthread_mutex_t pcn_mutex;
#endif

/** What a step ended with. */
typedef enum { PCN_OK = 0, PCN_TIMEOUT, PCN_REFUSED, PCN_CLOSED, PCN_TOO_LONG, PCN_ERROR } pcn_result;

/** A loopback address: "127.x.y.z:PORT", "localhost:PORT" or "[::1]:PORT". */
typedef struct {
  int ipv6;
  unsigned char v4[4];
  unsigned short port;
} pcn_address;

/** 1 when text is a loopback address with a port (1 to 65535). */
int pcn_parse_address(const char *text, pcn_address *out);

/** Starts the socket layer (Winsock); 0 on failure. Each successful call is paired with pcn_cleanup. */
int pcn_startup(void);
void pcn_cleanup(void);

/** Milliseconds of a monotonic clock. */
long long pcn_now_ms(void);

typedef struct {
  pcn_socket s;
  char *buf; /* bytes read past the last line returned */
  size_t len, cap;
  size_t consumed; /* bytes of the line returned last, dropped on the next read */
} pcn_conn;

/** Connects before the deadline (pcn_now_ms() time). */
pcn_result pcn_connect(pcn_conn *c, const pcn_address *a, long long deadline);
/** Sends all of data before the deadline. */
pcn_result pcn_send_all(pcn_conn *c, const char *data, size_t n, long long deadline);
/**
 * Reads one line (without its \n, NUL-terminated) before the deadline; *line points into the
 * connection's buffer and stays valid until the next read. Lines longer than max_len are PCN_TOO_LONG.
 */
pcn_result pcn_read_line(pcn_conn *c, char **line, size_t *line_len, size_t max_len, long long deadline);
void pcn_close(pcn_conn *c);

void pcn_mutex_init(pcn_mutex *m);
void pcn_mutex_lock(pcn_mutex *m);
void pcn_mutex_unlock(pcn_mutex *m);
void pcn_mutex_destroy(pcn_mutex *m);

/**
 * Reads up to max bytes of the file at the UTF-8 path into buf (NUL-terminated). Returns the length, or
 * -1 when it does not exist, -2 when it cannot be read, -3 when it is longer than max.
 */
long pcn_read_file(const char *path, char *buf, size_t max);

#endif
