/* The core's one whole-file reader (config.json, tokenizer.json, the shard index,
 * gemmaclf.json). Model directories may be pointed at anything by a superuser, so it refuses
 * what is not a regular file (a FIFO would block the backend forever, a device would never
 * end) and anything larger than the caller's cap, before allocating. */
#ifndef GC_FILE_READ_H
#define GC_FILE_READ_H

#include <stddef.h>

#include "common/error.h"

/* Reads the regular file at path (at most max_bytes) into a malloc'd buffer with a NUL after
 * the last byte: *data (owned by the caller) and *len. On failure *data is NULL and e names
 * the file; a missing file is GC_EIO with errno left at ENOENT, so callers can treat an
 * optional file's absence apart from other errors (errno is 0 after failures on a file that
 * exists: not regular, too large, unreadable). */
gc_status gc_read_file(const char *path, size_t max_bytes, char **data, size_t *len, gc_err *e);

#endif
