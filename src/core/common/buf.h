/* Growable byte buffer (always NUL-terminated after a put). */
#ifndef GC_BUF_H
#define GC_BUF_H

#include <stddef.h>

#include "common/error.h"

typedef struct gc_buf {
    char *p;
    size_t n, cap;
} gc_buf;

gc_status gc_buf_reserve(gc_buf *b, size_t need, gc_err *e);
gc_status gc_buf_put(gc_buf *b, const char *s, size_t n, gc_err *e);
void gc_buf_free(gc_buf *b);

#endif
