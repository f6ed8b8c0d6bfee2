#include "common/cache_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Header: magic, key, total, then the source directory (NUL-terminated) at CACHE_DIR_OFF. */
typedef struct cache_header {
    char magic[8];
    uint64_t key, total;
} cache_header;
#define CACHE_DIR_OFF 24

/* A temporary file nobody wrote to for this long belongs to a writer that was killed. */
#define CACHE_TMP_ABANDONED_S 3600

gc_status gc_cache_write_at(int fd, const char *path, const char *what, uint64_t off,
                            const void *p, size_t n, gc_err *e)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, (const char *)p + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return gc_fail(e, GC_EIO, "cannot write the %s %s: %s", what, path,
                           r < 0 ? strerror(errno) : "no progress");
        done += (size_t)r;
    }
    return GC_OK;
}

/* Maps path when it is a complete copy for cf (magic, key, size); *ok = 0 (and GC_OK) when it
 * is absent or another file. */
static gc_status map_copy(const gc_cache_file *cf, const char *path, void **map, int *ok,
                          gc_err *e)
{
    *ok = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return GC_OK;
    struct stat sb;
    cache_header h;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size == cf->total &&
        pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h && !memcmp(h.magic, cf->magic, 8) &&
        h.key == cf->key && h.total == cf->total) {
        void *p = mmap(NULL, cf->total, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return gc_fail(e, GC_EIO, "%s: mmap failed: %s", path, strerror(errno));
        }
        *map = p;
        *ok = 1;
    }
    close(fd);
    return GC_OK;
}

static int is_abandoned_tmp(const char *path, const char *name, time_t now)
{
    struct stat lsb;
    return !strncmp(name, GC_CACHE_TMP_PREFIX, strlen(GC_CACHE_TMP_PREFIX)) &&
           lstat(path, &lsb) == 0 && S_ISREG(lsb.st_mode) &&
           lsb.st_mtime < now - CACHE_TMP_ABANDONED_S;
}

/* A stale copy of cf's kind (name pattern, suffix, the magic's first 7 bytes): one made from
 * cf->source in cf's format, or one in an older format version (the magic's last byte) from any
 * source. No build reads an older format, and the first ones (bf16/int8 "W1") did not record
 * their source at all. */
static int stale_of_kind(const gc_cache_file *cf, const char *path, const char *name)
{
    size_t nl = strlen(name), sl = strlen(cf->suffix), dl = strlen(cf->source);
    char head[GC_CACHE_HEADER];

    if (strncmp(name, "gemmaclf-", 9) || nl < 11 + sl || name[nl - sl - 1] != '.' ||
        strcmp(name + nl - sl, cf->suffix) || dl >= sizeof head - CACHE_DIR_OFF)
        return 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    int ok = fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
             pread(fd, head, 8, 0) == 8 && !memcmp(head, cf->magic, 7);
    int stale = ok && (head[7] < cf->magic[7] ||
                       (head[7] == cf->magic[7] &&
                        pread(fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
                        !memcmp(head + CACHE_DIR_OFF, cf->source, dl + 1)));
    if (fd >= 0)
        close(fd);
    return stale;
}

/* Removes the copies of the same kind made for older states of the same source or in an older
 * format (a process that still maps one keeps its pages: unlinking never truncates), and
 * abandoned temporary files. */
static void remove_stale(const gc_cache_file *cf, const char *keep)
{
    DIR *d = opendir(cf->dir);
    struct dirent *de;
    char path[PATH_MAX];
    time_t now = time(NULL);
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, keep) ||
            snprintf(path, sizeof path, "%s/%s", cf->dir, de->d_name) >= (int)sizeof path)
            continue;
        if (is_abandoned_tmp(path, de->d_name, now) || stale_of_kind(cf, path, de->d_name))
            unlink(path);
    }
    closedir(d);
}

static gc_status write_header(const gc_cache_file *cf, int fd, const char *tmp, gc_err *e)
{
    char *h = calloc(1, GC_CACHE_HEADER);
    if (!h)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    cache_header ch = {.key = cf->key, .total = cf->total};
    memcpy(ch.magic, cf->magic, 8);
    memcpy(h, &ch, sizeof ch);
    /* calloc'd: the name stays NUL-terminated (a longer one is cut and never matches in
     * remove_stale) */
    memcpy(h + CACHE_DIR_OFF, cf->source,
           strnlen(cf->source, GC_CACHE_HEADER - CACHE_DIR_OFF - 1));
    gc_status st = gc_cache_write_at(fd, tmp, cf->what, 0, h, GC_CACHE_HEADER, e);
    free(h);
    return st;
}

/* Writes the copy: a temporary file whose space is allocated first, filled with checked writes,
 * given its header last (a torn file never looks complete), fsync'ed and renamed into place; on
 * any failure the temporary file is removed. */
static gc_status write_copy(const gc_cache_file *cf, const char *path, gc_err *e)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/" GC_CACHE_TMP_PREFIX "XXXXXX", cf->dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return gc_fail(e, GC_EIO, "cache directory %s: cannot create a file: %s", cf->dir,
                       strerror(errno));
    gc_status st = GC_OK;
    int err = posix_fallocate(fd, 0, (off_t)cf->total);
    /* Without fallocate support (EOPNOTSUPP) every write below is still checked. */
    if (err && err != EOPNOTSUPP && err != ENOSYS && err != EINVAL)
        st = gc_fail(e, GC_EIO, "cannot allocate %zu bytes for the %s in %s: %s", cf->total,
                     cf->what, cf->dir, strerror(err));
    if (!st)
        st = cf->fill(cf->arg, fd, tmp, e);
    if (!st)
        st = write_header(cf, fd, tmp, e);
    if (!st && (ftruncate(fd, (off_t)cf->total) != 0 || fsync(fd) != 0 ||
                fchmod(fd, 0644) != 0 || rename(tmp, path) != 0))
        st = gc_fail(e, GC_EIO, "cannot write the %s %s: %s", cf->what, path, strerror(errno));
    close(fd);
    if (st) {
        unlink(tmp);
        return st;
    }
    int dfd = open(cf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* make the rename durable; a failure here loses only the copy */
        (void)fsync(dfd);
        close(dfd);
    }
    return GC_OK;
}

gc_status gc_cache_file_map(const gc_cache_file *cf, void **map, gc_err *e)
{
    char path[PATH_MAX], name[96];
    *map = NULL;
    if (cf->total < GC_CACHE_HEADER || strlen(cf->magic) < 8)
        return gc_fail(e, GC_EINVAL, "cache file: bad layout");
    snprintf(name, sizeof name, "gemmaclf-%016llx.%s", (unsigned long long)cf->key, cf->suffix);
    if (snprintf(path, sizeof path, "%s/%s", cf->dir, name) >= (int)sizeof path)
        return gc_fail(e, GC_EINVAL, "cache directory path too long: %s", cf->dir);
    int ok;
    gc_status st = map_copy(cf, path, map, &ok, e);
    if (st || ok)
        return st;
    /* The first user of this state of the source: copy, publish atomically, map. */
    if ((st = write_copy(cf, path, e)) || (st = map_copy(cf, path, map, &ok, e)))
        return st;
    if (!ok)
        return gc_fail(e, GC_EIO, "%s: cache file vanished or is invalid", path);
    remove_stale(cf, name);
    return GC_OK;
}
