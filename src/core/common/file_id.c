/* File identities and watch lists (see file_id.h). */
#include <stdlib.h>
#include <string.h>

#include "common/file_id.h"

void gc_file_id_from_stat(const struct stat *sb, gc_file_id *id)
{
    id->exists = 1;
    id->dev = (uint64_t)sb->st_dev;
    id->ino = (uint64_t)sb->st_ino;
    id->size = (uint64_t)sb->st_size;
    id->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    id->ctime_ns = (int64_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec;
}

void gc_file_id_of_path(const char *path, gc_file_id *id)
{
    struct stat sb;
    memset(id, 0, sizeof *id);
    if (stat(path, &sb) == 0)
        gc_file_id_from_stat(&sb, id);
}

int gc_file_id_same(const gc_file_id *a, const gc_file_id *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
           a->size == b->size && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

gc_status gc_file_watch_add(gc_file_watch *w, const char *path, const gc_file_id *id, gc_err *e)
{
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 8;
        char **p = realloc(w->paths, (size_t)cap * sizeof *p);
        if (p)
            w->paths = p;
        gc_file_id *d = p ? realloc(w->ids, (size_t)cap * sizeof *d) : NULL;
        if (!d)
            return gc_fail(e, GC_ENOMEM, "out of memory");
        w->ids = d;
        w->cap = cap;
    }
    if (!(w->paths[w->n] = strdup(path)))
        return gc_fail(e, GC_ENOMEM, "out of memory");
    if (id)
        w->ids[w->n] = *id;
    else
        gc_file_id_of_path(path, &w->ids[w->n]);
    w->n++;
    return GC_OK;
}

int gc_file_watch_changed(const gc_file_watch *w)
{
    for (int i = 0; i < w->n; i++) {
        gc_file_id now;
        gc_file_id_of_path(w->paths[i], &now);
        if (!gc_file_id_same(&now, &w->ids[i]))
            return 1;
    }
    return 0;
}

void gc_file_watch_free(gc_file_watch *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->paths[i]);
    free(w->paths);
    free(w->ids);
    memset(w, 0, sizeof *w);
}
