/* UTF-8 validation, decoding and repair, and the two whitespace classes the tokenizer and the
 * prompt need. */
#ifndef GC_UTF8_H
#define GC_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..n) is valid UTF-8 as Rust's str accepts it (no overlongs, no surrogates, <= U+10FFFF). */
int gc_utf8_valid(const char *s, size_t n);
/* Length in bytes of the (valid) UTF-8 character starting with lead byte c. */
static inline size_t gc_utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
/* Decodes the valid UTF-8 character at s (n bytes left); *len gets its length. */
uint32_t gc_utf8_decode(const char *s, size_t n, size_t *len);
/* Unicode White_Space (Rust char::is_whitespace, regex \s). */
int gc_unicode_is_white_space(uint32_t cp);
/* Python str.isspace() (what str.strip() removes). */
int gc_python_is_space(uint32_t cp);

#endif
