/*
 * submit_test.c - a register's use of the hook library, driven by the specs in test/native/ against a
 * running plugin (the real payconnect plugin process with a native-hook manifest).
 *
 *   submit_test CONFIG pay ORDER_ID AMOUNT TIMEOUT_MS
 *       submits {"orderId":ORDER_ID,"amount":AMOUNT}, prints "submitted", then waits (in a worker
 *       thread, as a register would) for the result, and prints "result <json>". Exit 0 when paid.
 *   submit_test CONFIG threads N PREFIX AMOUNT
 *       N threads submit PREFIX-1 .. PREFIX-N at the same moment through one handle; prints one line
 *       "ORDER status" per order, then "ok K" with the number of PC_OK. Exit 0 when all were PC_OK.
 *   submit_test CONFIG status
 *       prints the status a submit of a valid order gets, and the last error (for wrong-token checks).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payconnect.h"

static pc_handle *handle;

static void print_error(const char *what, pc_status st) {
  char msg[1024];
  if (pc_last_error(handle, msg, sizeof msg, NULL) != PC_OK) strcpy(msg, "(message too long)");
  printf("%s failed: status %d: %s\n", what, (int)st, msg);
  fflush(stdout);
}

struct waiter {
  const char *order_id;
  int timeout_ms;
  pc_status status;
  char result[PC_RESULT_BUFFER_SIZE];
};

static void *wait_worker(void *arg) {
  struct waiter *w = arg;
  size_t needed = 0;
  /* A register polls in slices so it can notice a closing sale; here until the overall timeout. */
  int left = w->timeout_ms;
  do {
    int slice = left > 2000 ? 2000 : left;
    w->status = pc_wait_result(handle, w->order_id, slice, w->result, sizeof w->result, &needed);
    left -= slice;
  } while (w->status == PC_TIMEOUT && left > 0);
  return NULL;
}

static int pay(const char *order_id, const char *amount, int timeout_ms) {
  char order[256];
  pthread_t t;
  struct waiter w;
  pc_status st;
  snprintf(order, sizeof order, "{\"orderId\":\"%s\",\"amount\":\"%s\"}", order_id, amount);
  st = pc_submit_order(handle, order);
  if (st != PC_OK) {
    print_error("submit", st);
    return 1;
  }
  printf("submitted %s\n", order_id);
  fflush(stdout);
  memset(&w, 0, sizeof w);
  w.order_id = order_id;
  w.timeout_ms = timeout_ms;
  pthread_create(&t, NULL, wait_worker, &w);
  pthread_join(t, NULL);
  if (w.status != PC_OK) {
    print_error("wait", w.status);
    return 1;
  }
  printf("result %s\n", w.result);
  fflush(stdout);
  return strstr(w.result, "\"status\":\"paid\"") ? 0 : 1;
}

struct submitter {
  char order_id[64];
  const char *amount;
  pthread_mutex_t *gate;
  pc_status status;
};

static void *submit_worker(void *arg) {
  struct submitter *s = arg;
  char order[256];
  /* Every thread waits at the gate, so all submits start together. */
  pthread_mutex_lock(s->gate);
  pthread_mutex_unlock(s->gate);
  snprintf(order, sizeof order, "{\"orderId\":\"%s\",\"amount\":\"%s\"}", s->order_id, s->amount);
  s->status = pc_submit_order(handle, order);
  return NULL;
}

static int threads(int n, const char *prefix, const char *amount) {
  pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
  struct submitter *s = calloc((size_t)n, sizeof *s);
  pthread_t *t = calloc((size_t)n, sizeof *t);
  int i, ok = 0;
  pthread_mutex_lock(&gate);
  for (i = 0; i < n; i++) {
    snprintf(s[i].order_id, sizeof s[i].order_id, "%s-%d", prefix, i + 1);
    s[i].amount = amount;
    s[i].gate = &gate;
    pthread_create(&t[i], NULL, submit_worker, &s[i]);
  }
  pthread_mutex_unlock(&gate);
  for (i = 0; i < n; i++) pthread_join(t[i], NULL);
  for (i = 0; i < n; i++) {
    printf("%s %d\n", s[i].order_id, (int)s[i].status);
    if (s[i].status == PC_OK) ok++;
  }
  printf("ok %d\n", ok);
  free(s);
  free(t);
  return ok == n ? 0 : 1;
}

int main(int argc, char **argv) {
  pc_status st;
  int rc = 2;
  if (argc < 3) {
    fprintf(stderr, "usage: submit_test CONFIG pay|threads|status ...\n");
    return 2;
  }
  st = pc_open(argv[1], &handle);
  if (st != PC_OK) {
    char msg[1024];
    pc_open_error(msg, sizeof msg, NULL);
    printf("open failed: status %d: %s\n", (int)st, msg);
    return 1;
  }
  printf("version %s\n", pc_version());
  if (strcmp(argv[2], "pay") == 0 && argc == 6) {
    rc = pay(argv[3], argv[4], atoi(argv[5]));
  } else if (strcmp(argv[2], "threads") == 0 && argc == 6) {
    rc = threads(atoi(argv[3]), argv[4], argv[5]);
  } else if (strcmp(argv[2], "status") == 0) {
    st = pc_submit_order(handle, "{\"orderId\":\"S-1\",\"amount\":\"1.00\"}");
    printf("status %d\n", (int)st);
    if (st != PC_OK) print_error("submit", st);
    rc = 0;
  } else {
    fprintf(stderr, "usage: submit_test CONFIG pay ORDER AMOUNT TIMEOUT | threads N PREFIX AMOUNT | status\n");
  }
  if (pc_close(handle) != PC_OK) rc = 1;
  return rc;
}
