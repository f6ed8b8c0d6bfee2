/* Growable byte buffer (see buf.h). */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

gc_status gc_buf_reserve(gc_buf *b, size_t need, gc_err *e)
{
    if (need <= b->cap)
        return GC_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return GC_OK;
}

gc_status gc_buf_put(gc_buf *b, const char *s, size_t n, gc_err *e)
{
    gc_status st = gc_buf_reserve(b, b->n + n + 1, e);
    if (st != GC_OK)
        return st;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return GC_OK;
}

void gc_buf_free(gc_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
