/* UTF-8 validation and repair for text that may come from anywhere (a SQL_ASCII database,
 * a file): invalid bytes become U+FFFD, as Python's errors="replace" does per byte. */
#ifndef GC_UTF8_H
#define GC_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 when s[0] does not start one
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
size_t gc_utf8_seq_len(const unsigned char *s, size_t avail);

/* 1 when s[0..len) is valid UTF-8 without NUL bytes. */
int gc_utf8_valid(const char *s, size_t len);

/* Copy of s with every invalid byte (and NUL) replaced by U+FFFD; malloc'd, NUL-terminated.
 * Returns NULL when out of memory. */
char *gc_utf8_repair(const char *s, size_t len, size_t *out_len);

/* Largest n <= len such that s[0..n) does not end inside a UTF-8 sequence. */
size_t gc_utf8_cut(const char *s, size_t len);

#endif
