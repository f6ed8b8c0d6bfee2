/* A growable array of token ids, owned by whoever declared it; free with gc_ids_free. */
#ifndef GC_IDS_H
#define GC_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct gc_ids {
    int32_t *v;
    size_t n, cap;
} gc_ids;

gc_status gc_ids_push(gc_ids *a, int32_t id, gc_err *e);
gc_status gc_ids_append(gc_ids *a, const int32_t *ids, size_t n, gc_err *e);
void gc_ids_clear(gc_ids *a); /* keeps the buffer */
void gc_ids_free(gc_ids *a);

#endif
