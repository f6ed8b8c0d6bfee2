/* UTF-8 validation, decoding, repair, cutting and trimming (see utf8.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

/* Length of the valid UTF-8 sequence at s (avail bytes left), 0 if it is not one. The
 * second byte's range rules out overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4). */
static size_t seq_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : lo;
        hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

int gc_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        /* ASCII fast path, 8 bytes at a time: tokenizer.json files are tens of MB, mostly ASCII */
        uint64_t w;
        if (i + 8 <= n && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ULL))) {
            i += 8;
            continue;
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = seq_len(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

uint32_t gc_utf8_decode(const char *str, size_t n, size_t *len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t k = gc_utf8_len(s[0]);
    if (k > n)
        k = n;
    *len = k;
    switch (k) {
    case 1: return s[0];
    case 2: return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    case 3: return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    default:
        return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
               (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    }
}

char *gc_utf8_repair(const char *s, size_t len, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len > ((size_t)-1 - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1); /* worst case: every byte becomes 3 bytes */
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = seq_len(p + i, len - i);
        if (k) {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

size_t gc_utf8_repaired_prefix(const char *s, size_t len, size_t max_out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t k = seq_len(p + i, len - i), out = k ? k : 3; /* U+FFFD is 3 bytes */
        if (o + out > max_out)
            break;
        o += out;
        i += k ? k : 1;
    }
    return i;
}

void gc_utf8_sanitize(char *s, size_t cap)
{
    if (!cap)
        return;
    size_t n = strnlen(s, cap - 1);
    if (gc_utf8_valid(s, n)) {
        s[n] = '\0';
        return;
    }
    size_t take = gc_utf8_repaired_prefix(s, n, cap - 1), m;
    char *r = gc_utf8_repair(s, take, &m);
    if (r) {
        memcpy(s, r, m + 1);
        free(r);
        return;
    }
    for (size_t i = 0; i < n; i++) /* out of memory: ASCII is valid UTF-8 */
        if ((unsigned char)s[i] >= 0x80)
            s[i] = '?';
    s[n] = '\0';
}

size_t gc_utf8_cut(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = len;
    /* Step back over continuation bytes to the start of the last sequence. */
    while (n > 0 && (p[n - 1] & 0xC0) == 0x80 && len - n < 3)
        n--;
    if (n == 0)
        return len;
    unsigned c = p[n - 1];
    size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return (len - (n - 1) >= need) ? len : n - 1;
}

static int space_common(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

int gc_unicode_is_white_space(uint32_t c) { return space_common(c); }

/* Python adds the information separators U+001C..U+001F (bidi class B/S). */
int gc_python_is_space(uint32_t c) { return space_common(c) || (c >= 0x1C && c <= 0x1F); }

void gc_utf8_trim(const char *s, size_t n, int (*is_space)(uint32_t), int left, int right,
                  size_t *a, size_t *b)
{
    size_t i = 0, j = n, l;
    while (left && i < j && is_space(gc_utf8_decode(s + i, j - i, &l)))
        i += l;
    while (right && j > i) {
        size_t p = j - 1;
        while (p > i && ((unsigned char)s[p] & 0xC0) == 0x80)
            p--;
        if (!is_space(gc_utf8_decode(s + p, j - p, &l)))
            break;
        j = p;
    }
    *a = i;
    *b = j;
}
