/* JSON string literals with exact bytes: cJSON's strings are NUL-terminated, so text holding
 * U+0000 (a valid comment character) needs this reader/writer. */
#ifndef GC_JSON_H
#define GC_JSON_H

#include <stddef.h>

#include "common/error.h"

/* Parses the JSON string literal starting at s[0] == '"' (n bytes available). The decoded
 * UTF-8 bytes go to a malloc'd, NUL-terminated *out of *out_len bytes (may contain NULs);
 * *consumed gets the literal's length including quotes. Lone surrogates are GC_EINVAL. */
gc_status gc_json_parse_string(const char *s, size_t n, size_t *consumed, char **out,
                               size_t *out_len, gc_err *e);

/* The same into dst (room for n bytes suffices; not NUL-terminated); 0 if malformed. */
int gc_json_decode_into(const char *s, size_t n, size_t *consumed, char *dst, size_t *dst_len);

/* Writes s[0..n) as a JSON string literal (ASCII control characters escaped, other bytes as
 * they are) into a malloc'd, NUL-terminated *out of *out_len bytes. */
gc_status gc_json_quote(const char *s, size_t n, char **out, size_t *out_len, gc_err *e);

#endif
