/*
 * json.c - see json.h. Written to the grammar of RFC 8259; nesting is limited to 64 levels so a
 * hostile answer cannot exhaust the stack.
 */
#include "json.h"

#include <limits.h>
#include <string.h>

#define PCJ_MAX_DEPTH 64

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static const char *skip_string(const char *p, const char *end) {
  if (p >= end || *p != '"') return NULL;
  p++;
  while (p < end) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') return p + 1;
    if (c < 0x20) return NULL;
    if (c == '\\') {
      p++;
      if (p >= end) return NULL;
      if (*p == 'u') {
        int i;
        if (end - p < 5) return NULL;
        for (i = 1; i <= 4; i++)
          if (hex_digit(p[i]) < 0) return NULL;
        p += 5;
        continue;
      }
      if (!strchr("\"\\/bfnrt", *p)) return NULL;
    }
    p++;
  }
  return NULL;
}

static const char *skip_number(const char *p, const char *end) {
  const char *start;
  if (p < end && *p == '-') p++;
  if (p >= end) return NULL;
  if (*p == '0') {
    p++;
  } else if (*p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9') p++;
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    start = ++p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    if (p == start) return NULL;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    start = p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    if (p == start) return NULL;
  }
  return p;
}

static const char *skip_word(const char *p, const char *end, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) return NULL;
  return p + n;
}

const char *pcj_skip_value(const char *p, const char *end, int depth) {
  if (depth > PCJ_MAX_DEPTH) return NULL;
  p = skip_ws(p, end);
  if (p >= end) return NULL;
  switch (*p) {
    case '"':
      return skip_string(p, end);
    case 't':
      return skip_word(p, end, "true");
    case 'f':
      return skip_word(p, end, "false");
    case 'n':
      return skip_word(p, end, "null");
    case '[':
      p = skip_ws(p + 1, end);
      if (p < end && *p == ']') return p + 1;
      for (;;) {
        p = pcj_skip_value(p, end, depth + 1);
        if (!p) return NULL;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ']') return p + 1;
        if (*p != ',') return NULL;
        p++;
      }
    case '{':
      p = skip_ws(p + 1, end);
      if (p < end && *p == '}') return p + 1;
      for (;;) {
        p = skip_string(skip_ws(p, end), end);
        if (!p) return NULL;
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return NULL;
        p = pcj_skip_value(p + 1, end, depth + 1);
        if (!p) return NULL;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') return p + 1;
        if (*p != ',') return NULL;
        p++;
      }
    default:
      return skip_number(p, end);
  }
}

int pcj_is_object(const char *p, const char *end) {
  const char *after;
  p = skip_ws(p, end);
  if (p >= end || *p != '{') return 0;
  after = pcj_skip_value(p, end, 0);
  return after != NULL && skip_ws(after, end) == end;
}

int pcj_member(const char *p, const char *end, const char *key, const char **value, size_t *value_len) {
  char name[64];
  if (!pcj_is_object(p, end)) return 0;
  p = skip_ws(p, end) + 1;
  p = skip_ws(p, end);
  if (*p == '}') return 0;
  for (;;) {
    const char *name_end = skip_string(skip_ws(p, end), end);
    const char *v;
    const char *v_end;
    int match;
    p = skip_ws(p, end);
    match = pcj_string(p, (size_t)(name_end - p), name, sizeof name) && strcmp(name, key) == 0;
    p = skip_ws(name_end, end) + 1; /* past ':' (checked by pcj_is_object) */
    v = skip_ws(p, end);
    v_end = pcj_skip_value(v, end, 0);
    if (match) {
      *value = v;
      *value_len = (size_t)(v_end - v);
      return 1;
    }
    p = skip_ws(v_end, end);
    if (*p == '}') return 0;
    p++; /* ',' */
  }
}

static size_t put_utf8(unsigned long cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

static unsigned long hex4(const char *p) {
  return (unsigned long)((hex_digit(p[0]) << 12) | (hex_digit(p[1]) << 8) | (hex_digit(p[2]) << 4) |
                         hex_digit(p[3]));
}

int pcj_string(const char *v, size_t n, char *out, size_t out_len) {
  const char *end = v + n;
  size_t o = 0;
  if (n < 2 || skip_string(v, end) != end) return 0;
  v++;
  end--;
  while (v < end) {
    char tmp[4];
    size_t k;
    if (*v != '\\') {
      tmp[0] = *v++;
      k = 1;
    } else {
      char e = v[1];
      v += 2;
      switch (e) {
        case 'b': tmp[0] = '\b'; k = 1; break;
        case 'f': tmp[0] = '\f'; k = 1; break;
        case 'n': tmp[0] = '\n'; k = 1; break;
        case 'r': tmp[0] = '\r'; k = 1; break;
        case 't': tmp[0] = '\t'; k = 1; break;
        case 'u': {
          unsigned long cp = hex4(v);
          v += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF && end - v >= 6 && v[0] == '\\' && v[1] == 'u') {
            unsigned long lo = hex4(v + 2);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              v += 6;
            }
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* a lone surrogate */
          k = put_utf8(cp, tmp);
          break;
        }
        default: tmp[0] = e; k = 1; break;
      }
    }
    if (o + k >= out_len) return 0;
    memcpy(out + o, tmp, k);
    o += k;
  }
  if (o >= out_len) return 0;
  out[o] = '\0';
  return 1;
}

int pcj_int(const char *v, size_t n, long *out) {
  long x = 0;
  size_t i = 0;
  int neg = 0;
  if (n > 0 && v[0] == '-') {
    neg = 1;
    i = 1;
  }
  if (i >= n) return 0;
  for (; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return 0;
    if (x > (LONG_MAX - (v[i] - '0')) / 10) return 0;
    x = x * 10 + (v[i] - '0');
  }
  *out = neg ? -x : x;
  return 1;
}

size_t pcj_quote(const char *s, char *out, size_t out_len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (out_len < 3) return 0;
  out[o++] = '"';
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char tmp[6];
    size_t k = 0;
    if (c == '"' || c == '\\') {
      tmp[k++] = '\\';
      tmp[k++] = (char)c;
    } else if (c < 0x20) {
      tmp[k++] = '\\';
      tmp[k++] = 'u';
      tmp[k++] = '0';
      tmp[k++] = '0';
      tmp[k++] = hex[c >> 4];
      tmp[k++] = hex[c & 15];
    } else {
      tmp[k++] = (char)c;
    }
    if (o + k + 2 > out_len) return 0;
    memcpy(out + o, tmp, k);
    o += k;
  }
  out[o++] = '"';
  out[o] = '\0';
  return o;
}
