/*
 * payconnect.c - the hook library (payconnect.h): the register's end of the plugin's native-hook
 * adapter. Each call opens its own loopback connection, presents the token, sends one request line and
 * reads one answer line (docs/adapters/native-hook.md, "Wire format"):
 *
 *   -> {"op":"hello","token":"<64 hex>","client":"payconnect-c/1.0.0"}
 *   <- {"ok":true,"protocol":1}                   or {"ok":false,"error":"bad_token","message":"..."}
 *   -> {"op":"submit","order":{...}}              <- {"ok":true,"orderId":"A-1"}
 *   -> {"op":"wait","orderId":"A-1","timeoutMs":N} <- {"ok":true,"delivery":"A-1:paid","result":{...}}
 *   -> {"op":"ack","delivery":"A-1:paid"}         <- {"ok":true}
 *   -> {"op":"cancel","orderId":"A-1"}            <- {"ok":true,"outcome":"canceled"}
 *
 * A connection per call keeps threads independent (a long wait on one never holds up a submit on
 * another) and leaves no half-read connection behind a timeout. The handle's mutex guards the handle's
 * own state: the calls running on it, and the results it has returned (so a result whose ack was lost
 * and that the plugin offers again is acknowledged without being returned twice).
 */
#define PC_BUILDING_DLL
#include "../include/payconnect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "net.h"

#if defined(_MSC_VER)
#define PC_TLS __declspec(thread)
#else
#define PC_TLS __thread
#endif

#define PC_PROTOCOL_VERSION 1
#define PC_TOKEN_FILE_NAME "native-hook.token"
#define PC_TOKEN_HEX 64
#define PC_MAX_ANSWER (1024 * 1024)
#define PC_MAX_PATH 1024
#define PC_MAX_ORDER_ID 64
#define PC_REMEMBERED 1024
/* The longest wait the plugin takes in one request (line-protocol.ts MAX_WAIT_MS). */
#define PC_MAX_WAIT_MS 600000
/* Time allowed, past a wait's own timeout, for the plugin's answer to arrive. */
#define PC_ANSWER_GRACE_MS 1000

struct pc_handle {
  pcn_mutex mu;
  pcn_address address;
  char token_file[PC_MAX_PATH];
  long connect_ms;
  long call_ms;
  int in_flight;
  int closing;
  /* FNV-1a hashes of the delivery ids this handle returned, newest overwriting oldest. */
  unsigned long long returned[PC_REMEMBERED];
  size_t returned_next;
};

/* The calling thread's last error, and the handle it was on (NULL: pc_open). */
static PC_TLS const pc_handle *err_handle;
static PC_TLS char err_text[2048];

static pc_status fail(const pc_handle *h, pc_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_text, sizeof err_text, fmt, ap);
  va_end(ap);
  err_handle = h;
  return code;
}

static pc_status copy_out(const char *text, size_t n, char *buf, size_t len, size_t *needed) {
  if (n + 1 > len || !buf) {
    if (buf && len > 0) buf[0] = '\0';
    if (needed) *needed = n + 1;
    return PC_BUFFER_TOO_SMALL;
  }
  memcpy(buf, text, n);
  buf[n] = '\0';
  if (needed) *needed = n;
  return PC_OK;
}

static unsigned long long fnv1a(const char *s) {
  unsigned long long h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

/* 1 when this handle had not returned the delivery yet (and now counts it returned), 0 when it had. */
static int claim_returned(pc_handle *h, unsigned long long id) {
  size_t i;
  int seen = 0;
  pcn_mutex_lock(&h->mu);
  for (i = 0; i < PC_REMEMBERED && !seen; i++) seen = h->returned[i] == id;
  if (!seen) {
    h->returned[h->returned_next] = id;
    h->returned_next = (h->returned_next + 1) % PC_REMEMBERED;
  }
  pcn_mutex_unlock(&h->mu);
  return !seen;
}

/* A call begins: refused on a handle being closed. */
static pc_status enter(pc_handle *h) {
  int closing;
  if (!h) return fail(NULL, PC_BAD_INPUT, "the handle is NULL: call pc_open first");
  pcn_mutex_lock(&h->mu);
  closing = h->closing;
  if (!closing) h->in_flight++;
  pcn_mutex_unlock(&h->mu);
  if (closing) return fail(h, PC_BAD_INPUT, "the handle is being closed");
  return PC_OK;
}

static pc_status leave(pc_handle *h, pc_status status) {
  pcn_mutex_lock(&h->mu);
  h->in_flight--;
  pcn_mutex_unlock(&h->mu);
  return status;
}

/* --- pc_open ----------------------------------------------------------------------------------- */

static int config_string(const char *cfg, const char *end, const char *key, char *out, size_t out_len,
                         int *bad) {
  const char *v;
  size_t n;
  if (!pcj_member(cfg, end, key, &v, &n)) return 0;
  if (!pcj_string(v, n, out, out_len) || out[0] == '\0') {
    *bad = 1;
    return 0;
  }
  return 1;
}

static int config_ms(const char *cfg, const char *end, const char *key, long *out, int *bad) {
  const char *v;
  size_t n;
  if (!pcj_member(cfg, end, key, &v, &n)) return 0;
  if (!pcj_int(v, n, out) || *out < 1 || *out > 600000) {
    *bad = 1;
    return 0;
  }
  return 1;
}

PC_API pc_status PC_CALL pc_open(const char *config_json, pc_handle **out) {
  const char *end;
  char address[128], data_dir[PC_MAX_PATH];
  int bad = 0;
  pc_handle *h;
  if (!out) return fail(NULL, PC_BAD_INPUT, "pc_open: out is NULL; pass the address of a pc_handle*");
  *out = NULL;
  if (!config_json) return fail(NULL, PC_BAD_INPUT, "pc_open: the config is NULL; pass a JSON object");
  end = config_json + strlen(config_json);
  if (!pcj_is_object(config_json, end))
    return fail(NULL, PC_BAD_INPUT,
                "pc_open: the config is not a JSON object, e.g. {\"dataDir\":\"C:\\\\ProgramData\\\\payconnect\"}");
  h = calloc(1, sizeof *h);
  if (!h) return fail(NULL, PC_SYSTEM, "pc_open: out of memory");
  h->connect_ms = 2000;
  h->call_ms = 10000;

  if (!config_string(config_json, end, "address", address, sizeof address, &bad)) {
    if (bad) {
      free(h);
      return fail(NULL, PC_BAD_INPUT, "pc_open: \"address\" must be text like \"%s\"", PC_DEFAULT_ADDRESS);
    }
    strcpy(address, PC_DEFAULT_ADDRESS);
  }
  if (!pcn_parse_address(address, &h->address)) {
    free(h);
    return fail(NULL, PC_BAD_INPUT,
                "pc_open: \"address\" is \"%s\"; it must be a loopback address with a port, like \"%s\" "
                "(the plugin listens on this PC only)",
                address, PC_DEFAULT_ADDRESS);
  }
  if (!config_string(config_json, end, "tokenFile", h->token_file, sizeof h->token_file, &bad)) {
    if (!bad && config_string(config_json, end, "dataDir", data_dir, sizeof data_dir, &bad)) {
      size_t n = strlen(data_dir);
      const char *sep = (n > 0 && (data_dir[n - 1] == '/' || data_dir[n - 1] == '\\')) ? "" : "/";
      if ((size_t)snprintf(h->token_file, sizeof h->token_file, "%s%s%s", data_dir, sep,
                           PC_TOKEN_FILE_NAME) >= sizeof h->token_file)
        bad = 1;
    } else if (!bad) {
      free(h);
      return fail(NULL, PC_BAD_INPUT,
                  "pc_open: the config names no token: give \"tokenFile\" (the plugin's "
                  "<data folder>/" PC_TOKEN_FILE_NAME ") or \"dataDir\" (the plugin's data folder)");
    }
  }
  if (bad) {
    free(h);
    return fail(NULL, PC_BAD_INPUT, "pc_open: \"tokenFile\" or \"dataDir\" must be a non-empty path");
  }
  bad = 0;
  config_ms(config_json, end, "connectTimeoutMs", &h->connect_ms, &bad);
  config_ms(config_json, end, "callTimeoutMs", &h->call_ms, &bad);
  if (bad) {
    free(h);
    return fail(NULL, PC_BAD_INPUT,
                "pc_open: \"connectTimeoutMs\" and \"callTimeoutMs\" must be whole milliseconds, 1 to 600000");
  }
  if (!pcn_startup()) {
    free(h);
    return fail(NULL, PC_SYSTEM, "pc_open: the socket layer (Winsock 2.2) could not be started");
  }
  pcn_mutex_init(&h->mu);
  *out = h;
  return PC_OK;
}

PC_API pc_status PC_CALL pc_open_error(char *buf, size_t len, size_t *needed) {
  const char *text = err_handle == NULL ? err_text : "";
  return copy_out(text, strlen(text), buf, len, needed);
}

/* --- one call: connect, hello, request, answer ------------------------------------------------- */

/* Reads the token; PC_OK with 64 hex digits in token. */
static pc_status read_token(pc_handle *h, char token[PC_TOKEN_HEX + 1]) {
  char raw[256];
  long n = pcn_read_file(h->token_file, raw, sizeof raw - 1);
  long i, start = 0, len;
  if (n == -1)
    return fail(h, PC_BAD_TOKEN,
                "the token file %s does not exist: start the plugin with the native-hook manifest (it writes "
                "the file), or point \"tokenFile\" at <the plugin's data folder>/" PC_TOKEN_FILE_NAME,
                h->token_file);
  if (n < 0)
    return fail(h, PC_BAD_TOKEN,
                "the token file %s cannot be read: let the register's user account read it (only it and the "
                "plugin should)",
                h->token_file);
  while (start < n && (raw[start] == ' ' || raw[start] == '\r' || raw[start] == '\n' || raw[start] == '\t'))
    start++;
  len = n - start;
  while (len > 0 && (raw[start + len - 1] == ' ' || raw[start + len - 1] == '\r' ||
                     raw[start + len - 1] == '\n' || raw[start + len - 1] == '\t'))
    len--;
  if (len != PC_TOKEN_HEX)
    return fail(h, PC_BAD_TOKEN, "the token file %s does not hold a payconnect token (64 hex digits)",
                h->token_file);
  for (i = 0; i < len; i++) {
    char c = raw[start + i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return fail(h, PC_BAD_TOKEN, "the token file %s does not hold a payconnect token (64 hex digits)",
                  h->token_file);
    token[i] = c;
  }
  token[PC_TOKEN_HEX] = '\0';
  return PC_OK;
}

static void address_text(const pc_handle *h, char *out, size_t n) {
  if (h->address.ipv6)
    snprintf(out, n, "[::1]:%u", h->address.port);
  else
    snprintf(out, n, "%u.%u.%u.%u:%u", h->address.v4[0], h->address.v4[1], h->address.v4[2],
             h->address.v4[3], h->address.port);
}

/* The status an answer line stands for; its message becomes the thread's last error. */
static pc_status answer_status(pc_handle *h, const char *line, size_t n) {
  const char *end = line + n, *v;
  size_t vn;
  char error[64], *message;
  pc_status st;
  if (!pcj_is_object(line, end))
    return fail(h, PC_PROTOCOL, "the plugin answered something that is not a JSON object (%.80s)", line);
  if (pcj_member(line, end, "ok", &v, &vn) && vn == 4 && memcmp(v, "true", 4) == 0) return PC_OK;
  if (!pcj_member(line, end, "error", &v, &vn) || !pcj_string(v, vn, error, sizeof error))
    return fail(h, PC_PROTOCOL, "the plugin answered without \"ok\" or \"error\" (%.80s)", line);
  /* The message is never longer than its JSON text; it is cut to the error buffer by fail(). */
  message = malloc(n + 1);
  if (!message) return fail(h, PC_SYSTEM, "out of memory");
  if (!pcj_member(line, end, "message", &v, &vn) || !pcj_string(v, vn, message, n + 1))
    strcpy(message, "(no message)");
  if (strcmp(error, "bad_token") == 0) st = PC_BAD_TOKEN;
  else if (strcmp(error, "rejected") == 0) st = PC_REJECTED;
  else if (strcmp(error, "timeout") == 0) st = PC_TIMEOUT;
  else if (strcmp(error, "unknown_order") == 0) st = PC_UNKNOWN_ORDER;
  else if (strcmp(error, "stands") == 0) st = PC_ORDER_STANDS;
  else if (strcmp(error, "unavailable") == 0) st = PC_NOT_RUNNING;
  else if (strcmp(error, "bad_request") == 0) st = PC_BAD_INPUT;
  else st = PC_PROTOCOL;
  if (st == PC_PROTOCOL)
    fail(h, st, "the plugin answered %s: %s", error, message);
  else
    fail(h, st, "%s", message);
  free(message);
  return st;
}

/* Reads one answer line before the deadline, naming what was awaited when it does not come. */
static pc_status read_answer(pc_handle *h, pcn_conn *c, const char *what, long long deadline, char **line,
                             size_t *n) {
  pcn_result r = pcn_read_line(c, line, n, PC_MAX_ANSWER, deadline);
  char where[64];
  address_text(h, where, sizeof where);
  switch (r) {
    case PCN_OK:
      return PC_OK;
    case PCN_TIMEOUT:
      return fail(h, PC_TIMEOUT, "the plugin at %s did not answer %s in time", where, what);
    case PCN_TOO_LONG:
      return fail(h, PC_PROTOCOL, "the plugin's answer to %s is longer than %d bytes", what, PC_MAX_ANSWER);
    default:
      return fail(h, PC_NOT_RUNNING,
                  "the plugin at %s closed the connection before it answered %s: is it stopping?", where, what);
  }
}

static pc_status send_line(pc_handle *h, pcn_conn *c, const char *line, long long deadline) {
  char where[64];
  pcn_result r = pcn_send_all(c, line, strlen(line), deadline);
  if (r == PCN_OK) return PC_OK;
  address_text(h, where, sizeof where);
  if (r == PCN_TIMEOUT) return fail(h, PC_TIMEOUT, "the plugin at %s took no request in time", where);
  return fail(h, PC_NOT_RUNNING, "the connection to the plugin at %s broke: is it stopping?", where);
}

/* Connects and authenticates; on PC_OK the caller closes c. */
static pc_status session_open(pc_handle *h, pcn_conn *c, long long deadline) {
  char token[PC_TOKEN_HEX + 1], hello[160], where[64];
  char *line;
  size_t n;
  long long connect_deadline = pcn_now_ms() + h->connect_ms;
  pc_status st = read_token(h, token);
  pcn_result r;
  if (st != PC_OK) return st;
  if (connect_deadline > deadline) connect_deadline = deadline;
  address_text(h, where, sizeof where);
  r = pcn_connect(c, &h->address, connect_deadline);
  if (r == PCN_TIMEOUT)
    return fail(h, PC_NOT_RUNNING,
                "nothing answered at %s within %ld ms: is the payconnect plugin running with the native-hook "
                "manifest?",
                where, h->connect_ms);
  if (r != PCN_OK)
    return fail(h, PC_NOT_RUNNING,
                "nothing listens at %s: start the payconnect plugin with the native-hook manifest (its "
                "options.listen must be this address)",
                where);
  snprintf(hello, sizeof hello, "{\"op\":\"hello\",\"token\":\"%s\",\"client\":\"payconnect-c/%s\"}\n", token,
           PC_VERSION_STRING);
  st = send_line(h, c, hello, deadline);
  if (st == PC_OK) st = read_answer(h, c, "the token", deadline, &line, &n);
  if (st == PC_OK) st = answer_status(h, line, n);
  if (st == PC_BAD_TOKEN)
    fail(h, PC_BAD_TOKEN,
         "the plugin at %s refused the token in %s: the plugin was reinstalled or its data folder moved; "
         "point \"tokenFile\" at the plugin's current <data folder>/" PC_TOKEN_FILE_NAME,
         where, h->token_file);
  if (st != PC_OK) pcn_close(c);
  return st;
}

static pc_status check_order_id(pc_handle *h, const char *order_id) {
  size_t n;
  if (!order_id) return fail(h, PC_BAD_INPUT, "the order id is NULL");
  n = strlen(order_id);
  if (n == 0 || n > PC_MAX_ORDER_ID * 4)
    return fail(h, PC_BAD_INPUT, "the order id must be 1 to %d characters", PC_MAX_ORDER_ID);
  return PC_OK;
}

/* --- the calls ---------------------------------------------------------------------------------- */

PC_API pc_status PC_CALL pc_submit_order(pc_handle *h, const char *order_json) {
  pc_status st = enter(h);
  pcn_conn c;
  char *request, *line;
  size_t n, i;
  long long deadline;
  if (st != PC_OK) return st;
  if (!order_json || !pcj_is_object(order_json, order_json + strlen(order_json)))
    return leave(h, fail(h, PC_BAD_INPUT,
                         "the order is not a JSON object; send e.g. {\"orderId\":\"A-1\",\"amount\":\"12.50\"}"));
  n = strlen(order_json);
  request = malloc(n + 32);
  if (!request) return leave(h, fail(h, PC_SYSTEM, "out of memory"));
  /* One line on the wire: line breaks in a JSON text can only be white space between tokens. */
  memcpy(request, "{\"op\":\"submit\",\"order\":", 23);
  for (i = 0; i < n; i++) request[23 + i] = (order_json[i] == '\n' || order_json[i] == '\r') ? ' ' : order_json[i];
  memcpy(request + 23 + n, "}\n", 3);
  deadline = pcn_now_ms() + h->call_ms;
  st = session_open(h, &c, deadline);
  if (st == PC_OK) {
    st = send_line(h, &c, request, deadline);
    if (st == PC_OK) st = read_answer(h, &c, "the order", deadline, &line, &n);
    if (st == PC_OK) st = answer_status(h, line, n);
    pcn_close(&c);
  }
  free(request);
  return leave(h, st);
}

PC_API pc_status PC_CALL pc_wait_result(pc_handle *h, const char *order_id, int timeout_ms, char *buf,
                                        size_t len, size_t *needed) {
  pc_status st = enter(h);
  pcn_conn c;
  char quoted[PC_MAX_ORDER_ID * 4 * 6 + 3], request[sizeof quoted + 64];
  long long until;
  if (st != PC_OK) return st;
  if ((st = check_order_id(h, order_id)) != PC_OK) return leave(h, st);
  if (timeout_ms < 0) return leave(h, fail(h, PC_BAD_INPUT, "timeout_ms is negative; use 0 to just look"));
  if (!buf && len > 0) return leave(h, fail(h, PC_BAD_INPUT, "buf is NULL but len is %lu", (unsigned long)len));
  pcj_quote(order_id, quoted, sizeof quoted);
  until = pcn_now_ms() + timeout_ms;
  st = session_open(h, &c, pcn_now_ms() + h->connect_ms + PC_ANSWER_GRACE_MS);
  if (st != PC_OK) return leave(h, st);
  for (;;) {
    char *line, delivery[1024], ack[sizeof delivery * 6 + 64], dq[sizeof delivery * 6 + 3];
    const char *result, *v;
    int fresh;
    size_t n, result_n, vn;
    long long left = until - pcn_now_ms(), answer_by;
    if (left < 0) left = 0;
    if (left > PC_MAX_WAIT_MS) left = PC_MAX_WAIT_MS; /* the plugin's limit per request: ask again after */
    answer_by = pcn_now_ms() + left + PC_ANSWER_GRACE_MS;
    snprintf(request, sizeof request, "{\"op\":\"wait\",\"orderId\":%s,\"timeoutMs\":%lld}\n", quoted, left);
    st = send_line(h, &c, request, answer_by);
    if (st == PC_OK) st = read_answer(h, &c, "the wait", answer_by, &line, &n);
    if (st == PC_OK) st = answer_status(h, line, n);
    if (st == PC_TIMEOUT && pcn_now_ms() < until) continue;
    if (st != PC_OK) break;
    if (!pcj_member(line, line + n, "result", &result, &result_n) || result_n == 0 || result[0] != '{' ||
        !pcj_member(line, line + n, "delivery", &v, &vn) || !pcj_string(v, vn, delivery, sizeof delivery)) {
      st = fail(h, PC_PROTOCOL, "the plugin's result has no \"result\" object or \"delivery\" id (%.80s)", line);
      break;
    }
    if (result_n + 1 > len) {
      copy_out(result, result_n, buf, len, needed);
      st = fail(h, PC_BUFFER_TOO_SMALL, "the result of order %s needs a buffer of %lu bytes; this one has %lu",
                order_id, (unsigned long)(result_n + 1), (unsigned long)len);
      break; /* not acknowledged: the next wait gets it again */
    }
    fresh = claim_returned(h, fnv1a(delivery));
    if (fresh) copy_out(result, result_n, buf, len, needed);
    /* Acknowledge: the plugin then stops offering this result. A lost ack only means the plugin offers it
       again, and this handle acknowledges it again without returning it twice. */
    pcj_quote(delivery, dq, sizeof dq);
    snprintf(ack, sizeof ack, "{\"op\":\"ack\",\"delivery\":%s}\n", dq);
    if (send_line(h, &c, ack, pcn_now_ms() + h->call_ms) == PC_OK &&
        read_answer(h, &c, "the acknowledgement", pcn_now_ms() + h->call_ms, &line, &n) == PC_OK)
      answer_status(h, line, n);
    if (fresh) {
      st = PC_OK;
      break;
    }
    if (pcn_now_ms() >= until) {
      st = fail(h, PC_TIMEOUT, "no new result for order %s within %d ms", order_id, timeout_ms);
      break;
    }
  }
  pcn_close(&c);
  return leave(h, st);
}

PC_API pc_status PC_CALL pc_cancel(pc_handle *h, const char *order_id) {
  pc_status st = enter(h);
  pcn_conn c;
  char quoted[PC_MAX_ORDER_ID * 4 * 6 + 3], request[sizeof quoted + 64], *line;
  size_t n;
  long long deadline;
  if (st != PC_OK) return st;
  if ((st = check_order_id(h, order_id)) != PC_OK) return leave(h, st);
  pcj_quote(order_id, quoted, sizeof quoted);
  snprintf(request, sizeof request, "{\"op\":\"cancel\",\"orderId\":%s}\n", quoted);
  deadline = pcn_now_ms() + h->call_ms;
  st = session_open(h, &c, deadline);
  if (st != PC_OK) return leave(h, st);
  st = send_line(h, &c, request, deadline);
  if (st == PC_OK) st = read_answer(h, &c, "the cancel", deadline, &line, &n);
  if (st == PC_OK) st = answer_status(h, line, n);
  pcn_close(&c);
  return leave(h, st);
}

PC_API pc_status PC_CALL pc_last_error(pc_handle *h, char *buf, size_t len, size_t *needed) {
  const char *text = (h != NULL && err_handle == h) ? err_text : "";
  return copy_out(text, strlen(text), buf, len, needed);
}

PC_API const char *PC_CALL pc_version(void) { return PC_VERSION_STRING; }

PC_API pc_status PC_CALL pc_close(pc_handle *h) {
  if (!h) return PC_OK;
  pcn_mutex_lock(&h->mu);
  if (h->in_flight > 0) {
    pcn_mutex_unlock(&h->mu);
    return fail(h, PC_BUSY, "calls on this handle are still running (%d); close it after they return",
                h->in_flight);
  }
  h->closing = 1;
  pcn_mutex_unlock(&h->mu);
  pcn_mutex_destroy(&h->mu);
  if (err_handle == h) { /* a later handle may get this address: its last error must not be this one's */
    err_handle = NULL;
    err_text[0] = '\0';
  }
  free(h);
  pcn_cleanup();
  return PC_OK;
}
