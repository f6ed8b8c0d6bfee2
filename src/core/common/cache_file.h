/* Copies in a cache directory shared by processes (the server's $PGDATA/gemmaclf_cache), made
 * once and mapped read-only by every process that needs them, so that their pages are shared
 * and the user's own files are never mapped (rewriting a mapped file faults the process).
 *
 * A copy is one file, gemmaclf-<key, 16 hex digits>.<suffix>: a GC_CACHE_HEADER-byte header
 * (magic, key, total size, the source directory it was made from) and a body. It is written
 * under a temporary name (space allocated first, so a full disk is a clean error and never a
 * SIGBUS later; every write checked; fsync'ed), renamed into place, then mapped. Once a new
 * copy is in place, the older copies of the same kind (magic, suffix) made from the same source
 * directory are removed, so are copies of the same kind in an older format version (the magic's
 * last byte) from any source, and temporary files abandoned by killed writers. */
#ifndef GC_CACHE_FILE_H
#define GC_CACHE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define GC_CACHE_HEADER 4096
#define GC_CACHE_TMP_PREFIX ".gemmaclf-tmp-"

typedef struct gc_cache_file {
    const char *dir;    /* the cache directory */
    const char *magic;  /* 8 bytes: the kind of copy (7) and its format version (the last) */
    const char *suffix; /* the file name's, e.g. "f32" */
    const char *what;   /* for messages, e.g. "weight cache" */
    uint64_t key;       /* identity of what the copy is made from (also names it) */
    size_t total;       /* file size, header included */
    const char *source; /* the directory it is made from */
    /* Writes the body (offsets >= GC_CACHE_HEADER) into fd with gc_cache_write_at; an error
     * (a source that changed while being read, a bad value) abandons the copy. */
    gc_status (*fill)(void *arg, int fd, const char *path, gc_err *e);
    void *arg;
} gc_cache_file;

/* *map = a read-only shared mapping of the copy (cf->total bytes; munmap when done), written
 * first when there is none. */
gc_status gc_cache_file_map(const gc_cache_file *cf, void **map, gc_err *e);

/* pwrite of all n bytes at off, retried on EINTR; what names the cache in the message. */
gc_status gc_cache_write_at(int fd, const char *path, const char *what, uint64_t off,
                            const void *p, size_t n, gc_err *e);

#endif
