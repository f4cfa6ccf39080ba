/*
 * json_test.c - the library's JSON scanner on hand-picked inputs (json.c). Prints "N passed, N failed".
 */
#include <stdio.h>
#include <string.h>

#include "../src/json.h"

static int passed, failed;

static void check(int ok, const char *what) {
  if (ok) {
    passed++;
  } else {
    failed++;
    printf("FAIL %s\n", what);
  }
}

static int is_object(const char *s) { return pcj_is_object(s, s + strlen(s)); }

static int member_is(const char *obj, const char *key, const char *raw) {
  const char *v;
  size_t n;
  if (!pcj_member(obj, obj + strlen(obj), key, &v, &n)) return raw == NULL;
  return raw != NULL && n == strlen(raw) && memcmp(v, raw, n) == 0;
}

int main(void) {
  char out[64];
  const char *uni = "\"a\\u00e9\\ud83d\\ude00\"";
  long x;
  check(is_object("{}"), "empty object");
  check(is_object(" {\"a\":[1,2,{\"b\":null}],\"c\":\"x\\\"y\"} "), "nested object");
  check(!is_object("{\"a\":1,}"), "trailing comma");
  check(!is_object("{\"a\":01}"), "leading zero");
  check(!is_object("{\"a\":\"\x01\"}"), "control character in a string");
  check(!is_object("[1]"), "array is not an object");
  check(!is_object("{\"a\":1} x"), "garbage after the object");
  check(!is_object("{\"a\":\"\\q\"}"), "bad escape");
  check(member_is("{\"ok\":true,\"result\":{\"a\":\"}\"},\"delivery\":\"A:paid\"}", "result", "{\"a\":\"}\"}"),
        "member object with a brace in a string");
  check(member_is("{\"ok\":true}", "missing", NULL), "absent member");
  check(member_is("{\"x\":{\"ok\":1},\"ok\":false}", "ok", "false"), "top-level member only");
  check(pcj_string(uni, strlen(uni), out, sizeof out) &&
            strcmp(out, "a\xc3\xa9\xf0\x9f\x98\x80") == 0,
        "unicode escapes to UTF-8");
  check(!pcj_string("\"abcdef\"", 8, out, 4), "string longer than the buffer");
  check(pcj_int("-1250", 5, &x) && x == -1250, "integer");
  check(!pcj_int("1.5", 3, &x), "not an integer");
  check(!pcj_int("99999999999999999999", 20, &x), "integer overflow");
  check(pcj_quote("a\"b\n", out, sizeof out) > 0 && strcmp(out, "\"a\\\"b\\u000a\"") == 0, "quote");
  check(pcj_quote("abcdef", out, 5) == 0, "quote into a small buffer");
  {
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 99);
    deep[199] = '\0';
    check(pcj_skip_value(deep, deep + 199, 0) == NULL, "nesting deeper than 64 refused");
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
