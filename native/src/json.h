/*
 * json.h - the little JSON the hook library needs: check that a text is one well-formed JSON value,
 * find a member of a top-level object by name (as the raw text of its value), read a string or an
 * integer value, and write a string escaped. No allocation, no third-party code.
 */
#ifndef PC_JSON_H
#define PC_JSON_H

#include <stddef.h>

/** Past the JSON value starting at p (after leading white space), or NULL when it is not one. */
const char *pcj_skip_value(const char *p, const char *end, int depth);

/** 1 when [p, end) is exactly one JSON object, white space around it allowed. */
int pcj_is_object(const char *p, const char *end);

/**
 * Finds member `key` of the object [p, end): its value's raw text in *value / *value_len. 1 when found,
 * 0 when absent or the text is not an object.
 */
int pcj_member(const char *p, const char *end, const char *key, const char **value, size_t *value_len);

/** Copies the JSON string value [v, v+n) unescaped (UTF-8) into out; 0 when it is not a string or too long. */
int pcj_string(const char *v, size_t n, char *out, size_t out_len);

/** Reads the integer value [v, v+n); 0 when it is not a whole number in range. */
int pcj_int(const char *v, size_t n, long *out);

/** Writes s as a JSON string (quotes included) into out; the length written, or 0 when out is too small. */
size_t pcj_quote(const char *s, char *out, size_t out_len);

#endif
