/* JSON string literals read and written byte-exactly (see json_string.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_string.h"
#include "common/buf.h"

static int hex4(const char *s, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return 0;
        *v = *v << 4 | (uint32_t)d;
    }
    return 1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int gc_json_decode_into(const char *s, size_t n, size_t *consumed, char *o, size_t *out_len)
{
    if (!n || s[0] != '"')
        return 0;
    size_t k = 0, i = 1;
    while (i < n && s[i] != '"') {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20)
            return 0;
        if (c != '\\') {
            o[k++] = (char)c;
            i++;
            continue;
        }
        if (i + 1 >= n)
            return 0;
        char x = s[i + 1];
        static const char esc[] = "\"\\/bfnrt", map[] = "\"\\/\b\f\n\r\t";
        const char *simple = x ? strchr(esc, x) : NULL;
        if (simple) {
            o[k++] = map[simple - esc];
            i += 2;
            continue;
        }
        uint32_t cp, lo;
        if (x != 'u' || n - i < 6 || !hex4(s + i + 2, &cp))
            return 0;
        i += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return 0;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u' || !hex4(s + i + 2, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                return 0;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        k += put_utf8(o + k, cp);
    }
    if (i >= n)
        return 0;
    *out_len = k;
    *consumed = i + 1;
    return 1;
}

gc_status gc_json_parse_string(const char *s, size_t n, size_t *consumed, char **out,
                               size_t *out_len, gc_err *e)
{
    *out = NULL;
    char *o = malloc(n + 1); /* decoding never grows the text */
    if (!o)
        return gc_fail(e, GC_ENOMEM, "JSON: out of memory");
    if (!gc_json_decode_into(s, n, consumed, o, out_len)) {
        free(o);
        return gc_fail(e, GC_EINVAL, "JSON: malformed string literal");
    }
    o[*out_len] = 0;
    *out = o;
    return GC_OK;
}

gc_status gc_json_quote(const char *s, size_t n, char **out, size_t *out_len, gc_err *e)
{
    gc_buf b = {0};
    gc_status st = gc_buf_put(&b, "\"", 1, e);
    for (size_t i = 0; i < n && st == GC_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            st = gc_buf_put(&b, esc, 2, e);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            st = gc_buf_put(&b, esc, 6, e);
        } else {
            st = gc_buf_put(&b, s + i, 1, e);
        }
    }
    if (st == GC_OK)
        st = gc_buf_put(&b, "\"", 1, e);
    if (st != GC_OK) {
        gc_buf_free(&b);
        return st;
    }
    *out = b.p;
    *out_len = b.n;
    return GC_OK;
}
