/* UTF-8 for the whole core: one validator (what Rust's str accepts: no overlongs, no
 * surrogates, nothing above U+10FFFF), decoding, repair of text that may come from anywhere
 * (a SQL_ASCII database, a file), cutting on character boundaries, and trimming by the two
 * whitespace classes the tokenizer and the chat prompt need. */
#ifndef GC_UTF8_H
#define GC_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..n) is valid UTF-8. */
int gc_utf8_valid(const char *s, size_t n);

/* Length in bytes of the (valid) UTF-8 character starting with lead byte c. */
static inline size_t gc_utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Decodes the valid UTF-8 character at s (n bytes left); *len gets its length. */
uint32_t gc_utf8_decode(const char *s, size_t n, size_t *len);

/* Copy of s with every invalid byte replaced by U+FFFD (as Python's errors="replace" does
 * per byte); malloc'd, NUL-terminated. Returns NULL when out of memory. */
char *gc_utf8_repair(const char *s, size_t len, size_t *out_len);

/* How many bytes of s[0..len) gc_utf8_repair may take so that its output stays within
 * max_out bytes: the repair of that prefix is the repair of the whole text cut on a character
 * boundary at max_out. Reads only as far as needed, so a huge text costs nothing beyond. */
size_t gc_utf8_repaired_prefix(const char *s, size_t len, size_t max_out);

/* Makes the NUL-terminated s (in a buffer of cap bytes) valid UTF-8 in place: invalid bytes
 * become U+FFFD, and what no longer fits is cut on a character boundary. */
void gc_utf8_sanitize(char *s, size_t cap);

/* Largest n <= len such that s[0..n) does not end inside a UTF-8 sequence. */
size_t gc_utf8_cut(const char *s, size_t len);

/* Unicode White_Space (Rust char::is_whitespace, regex \s): added-token lstrip/rstrip and
 * the Strip normalizer. */
int gc_unicode_is_white_space(uint32_t cp);
/* Python str.isspace() (what str.strip() removes: the chat template's `| trim`). */
int gc_python_is_space(uint32_t cp);

/* The range [*a, *b) of valid UTF-8 s[0..n) left after removing the characters for which
 * is_space() holds from the start (when left) and from the end (when right). */
void gc_utf8_trim(const char *s, size_t n, int (*is_space)(uint32_t), int left, int right,
                  size_t *a, size_t *b);

#endif
