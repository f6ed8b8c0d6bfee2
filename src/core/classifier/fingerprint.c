/* The model's content fingerprint (see fingerprint.h). */
#include "classifier/fingerprint.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/sha256.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* SHA-256 of one file, read in 1 MiB steps (a weight file may be gigabytes). */
static gc_status hash_file(const char *path, unsigned char *buf, size_t cap, char hex[65],
                           gc_err *e)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    gc_sha256 s;
    size_t got;

    if (!f)
        return gc_fail(e, GC_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return gc_fail(e, GC_EIO, "%s: not a regular file", path);
    }
    if (gc_sha256_init(&s) != 0) {
        fclose(f);
        return gc_fail(e, GC_ENOMEM, "out of memory hashing %s", path);
    }
    while ((got = fread(buf, 1, cap, f)) > 0)
        gc_sha256_update(&s, buf, got);
    if (ferror(f)) {
        fclose(f);
        gc_sha256_discard(&s);
        return gc_fail(e, GC_EIO, "%s: read error", path);
    }
    fclose(f);
    if (gc_sha256_hex(&s, hex) != 0)
        return gc_fail(e, GC_ENOMEM, "could not hash %s (libcrypto failed)", path);
    return GC_OK;
}

gc_status gc_fingerprint_files(const char *dir, const char **names, int n, char out[65],
                               gc_err *e)
{
    enum { CAP = 1 << 20 };
    const char **sorted = malloc(sizeof *sorted * (n > 0 ? n : 1));
    unsigned char *buf = malloc(CAP);
    gc_status st = GC_OK;
    gc_sha256 all;

    if (!sorted || !buf || gc_sha256_init(&all) != 0) {
        free(sorted);
        free(buf);
        return gc_fail(e, GC_ENOMEM, "out of memory");
    }
    memcpy(sorted, names, sizeof *sorted * n);
    qsort(sorted, n, sizeof *sorted, by_name);
    for (int i = 0; i < n && !st; i++) {
        char path[PATH_MAX], hex[65];
        snprintf(path, sizeof path, "%s/%s", dir, sorted[i]);
        st = hash_file(path, buf, CAP, hex, e);
        if (!st) { /* the line sha256sum prints for it */
            gc_sha256_update(&all, hex, 64);
            gc_sha256_update(&all, "  ", 2);
            gc_sha256_update(&all, sorted[i], strlen(sorted[i]));
            gc_sha256_update(&all, "\n", 1);
        }
    }
    if (st)
        gc_sha256_discard(&all);
    else if (gc_sha256_hex(&all, out) != 0)
        st = gc_fail(e, GC_ENOMEM, "could not hash the model's file list (libcrypto failed)");
    free(sorted);
    free(buf);
    return st;
}
