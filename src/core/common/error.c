#include "common/error.h"

#include "common/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

gc_status gc_fail(gc_err *e, gc_status code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        gc_utf8_sanitize(e->msg, sizeof e->msg);
        e->code = code;
    }
    return code;
}

void gc_err_prefix(gc_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char head[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(head, sizeof head - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t hl = strlen(head);
    memcpy(head + hl, ": ", 3);
    hl += 2;
    /* Shift the old message right (truncating its tail) and put the context in front. */
    size_t ol = strnlen(e->msg, sizeof e->msg - 1);
    if (hl >= sizeof e->msg)
        hl = sizeof e->msg - 1;
    if (hl + ol >= sizeof e->msg)
        ol = sizeof e->msg - 1 - hl;
    memmove(e->msg + hl, e->msg, ol);
    memcpy(e->msg, head, hl);
    e->msg[hl + ol] = '\0';
    gc_utf8_sanitize(e->msg, sizeof e->msg);
}

const char *gc_status_name(gc_status s)
{
    switch (s) {
    case GC_OK: return "ok";
    case GC_EINVAL: return "invalid input";
    case GC_EFORMAT: return "bad file format";
    case GC_EUNSUPPORTED: return "unsupported";
    case GC_EIO: return "I/O error";
    case GC_ENOMEM: return "out of memory";
    case GC_ECANCELED: return "canceled";
    case GC_EDEVICE: return "device error";
    case GC_ENUMERIC: return "non-finite score";
    }
    return "unknown";
}
