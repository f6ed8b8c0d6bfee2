/* Comment normalization a model asks for in gemmaclf.json (see comment_norm.h). */
#include "classifier/comment_norm.h"

#include <string.h>

#include "common/utf8.h"

gc_status gc_comment_norm_parse(const char *name, gc_comment_norm *out, gc_err *e)
{
    if (!strcmp(name, "squeeze")) {
        *out = GC_COMMENT_NORM_SQUEEZE;
        return GC_OK;
    }
    return gc_fail(e, GC_EUNSUPPORTED,
                   "\"comment_norm\" \"%s\" is not supported (supported: \"squeeze\")", name);
}

const char *gc_comment_norm_name(gc_comment_norm k)
{
    return k == GC_COMMENT_NORM_SQUEEZE ? "squeeze" : NULL;
}

/* Bytes of the character at s (n > 0 bytes left): a valid UTF-8 sequence, else 1. */
static size_t char_len(const char *s, size_t n)
{
    size_t l = gc_utf8_len((unsigned char)s[0]);
    return l <= n && gc_utf8_valid(s, l) ? l : 1;
}

gc_status gc_comment_squeeze(const char *s, size_t n, gc_buf *out, gc_err *e)
{
    out->n = 0;
    gc_status st = gc_buf_reserve(out, n + 1, e);
    if (st)
        return st;
    /* prev: the last character written (in out, already lower-cased), run: how many times in a
     * row; comparing the written bytes makes "Aa" one run, as lower-casing first does. */
    size_t prev_at = 0, prev_len = 0;
    int run = 0;
    for (size_t i = 0; i < n;) {
        size_t l = char_len(s + i, n - i);
        char c[4];
        memcpy(c, s + i, l);
        if (l == 1 && c[0] >= 'A' && c[0] <= 'Z')
            c[0] = (char)(c[0] + ('a' - 'A'));
        i += l;
        if (l == prev_len && !memcmp(out->p + prev_at, c, l)) {
            if (++run > 2)
                continue;
        } else {
            run = 1;
        }
        prev_at = out->n;
        prev_len = l;
        memcpy(out->p + out->n, c, l);
        out->n += l;
    }
    out->p[out->n] = '\0';
    return GC_OK;
}
