/* The identity of a file as the file system reports it: device, inode, size, and modification
 * and status-change times. A loaded model remembers the identity of every file it was built
 * from, so that a server can tell that the model directory changed on disk (a file replaced,
 * rewritten in place by cp, truncated, touched) and load it again, and the weight cache can
 * name its copy after exactly the files it was made from. The status-change time (ctime) is
 * part of it because no user can set it: `cp -p` over a file keeps its size and mtime but not
 * its ctime. */
#ifndef GC_FILE_ID_H
#define GC_FILE_ID_H

#include <stdint.h>
#include <sys/stat.h>

#include "common/error.h"

typedef struct gc_file_id {
    int exists; /* 0: stat failed (missing file, broken link, ...); the rest is then 0 */
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} gc_file_id;

void gc_file_id_from_stat(const struct stat *sb, gc_file_id *id);
/* stat(2) of path (following symbolic links); id->exists = 0 when that fails. */
void gc_file_id_of_path(const char *path, gc_file_id *id);
int gc_file_id_same(const gc_file_id *a, const gc_file_id *b);

/* The files a loaded object was built from, with their identities at that time. */
typedef struct gc_file_watch {
    char **paths;
    gc_file_id *ids;
    int n, cap;
} gc_file_watch;

/* Adds path with identity id (NULL: its identity now). An absent file is watched too: its
 * appearing is a change. */
gc_status gc_file_watch_add(gc_file_watch *w, const char *path, const gc_file_id *id, gc_err *e);
/* 1 when any watched file's identity differs from the recorded one (one stat per file). */
int gc_file_watch_changed(const gc_file_watch *w);
void gc_file_watch_free(gc_file_watch *w);

#endif
