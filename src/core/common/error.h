/* Error reporting for the gemmaclf core: every fallible call returns a gc_status
 * and fills a caller-owned gc_err with a human-readable message. No globals, so the
 * core is safe to use from several threads/backends at once. */
#ifndef GC_ERROR_H
#define GC_ERROR_H

#include <stddef.h>

typedef enum gc_status {
    GC_OK = 0,
    GC_EINVAL,       /* bad argument or malformed input (text, JSON, ids) */
    GC_EFORMAT,      /* malformed or inconsistent model/tokenizer file */
    GC_EUNSUPPORTED, /* valid but not supported (unknown normalizer, dtype, ...) */
    GC_EIO,          /* file system error */
    GC_ENOMEM,       /* allocation failed */
    GC_ECANCELED,    /* the interrupt callback asked to stop */
    GC_EDEVICE,      /* accelerator missing or failed */
    GC_ENUMERIC      /* the model produced a non-finite score (NaN/Inf): broken weights */
} gc_status;

typedef struct gc_err {
    gc_status code;
    char msg[1024];
} gc_err;

/* Sets e->code and formats e->msg; returns code so callers can `return gc_fail(...)`.
 * e may be NULL. Messages quote bytes of model files and texts; whatever they quote, e->msg is
 * always valid UTF-8 (invalid bytes, also those of a character cut by the buffer's end, become
 * U+FFFD as far as the buffer holds them), so a server can pass it on as an error DETAIL. */
gc_status gc_fail(gc_err *e, gc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to an existing message (e.g. the file name); the result is valid UTF-8
 * as for gc_fail. */
void gc_err_prefix(gc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *gc_status_name(gc_status s);

#endif
