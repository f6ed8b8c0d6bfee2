/* Whole-file reader (see file_read.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_read.h"

/* Reads up to want bytes; fewer only at end of file (a file that shrank meanwhile). */
static gc_status read_all(int fd, const char *path, char *buf, size_t want, size_t *got,
                          gc_err *e)
{
    size_t n = 0;
    while (n < want) {
        ssize_t r = read(fd, buf + n, want - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return gc_fail(e, GC_EIO, "%s: read error: %s", path, strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return GC_OK;
}

gc_status gc_read_file(const char *path, size_t max_bytes, char **data, size_t *len, gc_err *e)
{
    *data = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        gc_fail(e, GC_EIO, "%s: cannot open: %s", path, strerror(err));
        errno = err;
        return GC_EIO;
    }
    struct stat sb;
    gc_status st = GC_OK;
    char *buf = NULL;
    if (fstat(fd, &sb) != 0)
        st = gc_fail(e, GC_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = gc_fail(e, GC_EIO, "%s: not a regular file", path);
    else if ((unsigned long long)sb.st_size > max_bytes)
        st = gc_fail(e, GC_EIO, "%s: larger than %zu bytes", path, max_bytes);
    else if (!(buf = malloc((size_t)sb.st_size + 1)))
        st = gc_fail(e, GC_ENOMEM, "%s: out of memory (%lld bytes)", path,
                     (long long)sb.st_size);
    else
        st = read_all(fd, path, buf, (size_t)sb.st_size, len, e);
    close(fd);
    if (st != GC_OK) {
        free(buf);
        *len = 0;
        errno = 0; /* it is there: never mistaken for a missing file (ENOENT) */
        return st;
    }
    buf[*len] = '\0';
    *data = buf;
    return GC_OK;
}
