#include "common/ids.h"

#include <stdlib.h>
#include <string.h>

static gc_status reserve(gc_ids *a, size_t need, gc_err *e)
{
    if (need <= a->cap)
        return GC_OK;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < need)
        cap *= 2;
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v)
        return gc_fail(e, GC_ENOMEM, "out of memory growing an id array to %zu", cap);
    a->v = v;
    a->cap = cap;
    return GC_OK;
}

gc_status gc_ids_push(gc_ids *a, int32_t id, gc_err *e)
{
    gc_status s = reserve(a, a->n + 1, e);
    if (s == GC_OK)
        a->v[a->n++] = id;
    return s;
}

gc_status gc_ids_append(gc_ids *a, const int32_t *ids, size_t n, gc_err *e)
{
    gc_status s = reserve(a, a->n + n, e);
    if (s == GC_OK && n) {
        memcpy(a->v + a->n, ids, n * sizeof *ids);
        a->n += n;
    }
    return s;
}

void gc_ids_clear(gc_ids *a) { a->n = 0; }

void gc_ids_free(gc_ids *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}
