/* UTF-8 validation and repair for text that may come from anywhere (a SQL_ASCII database,
 * a file): invalid bytes become U+FFFD, as Python's errors="replace" does per byte. */
#ifndef GC_UTF8_REPAIR_H
#define GC_UTF8_REPAIR_H

#include <stddef.h>

/* 1 when s[0..len) is valid UTF-8. */
int gc_utf8_clean(const char *s, size_t len);

/* Copy of s with every invalid byte replaced by U+FFFD; malloc'd, NUL-terminated.
 * Returns NULL when out of memory. */
char *gc_utf8_repair(const char *s, size_t len, size_t *out_len);

/* Largest n <= len such that s[0..n) does not end inside a UTF-8 sequence. */
size_t gc_utf8_cut(const char *s, size_t len);

#endif
