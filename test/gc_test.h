/* Minimal test harness: CHECK counts, every test binary ends with the line
 * "<name>: N passed, M failed" and exits non-zero when anything failed. */
#ifndef GC_TEST_H
#define GC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gct_passed, gct_failed;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            gct_passed++;                                                       \
        } else {                                                                \
            gct_failed++;                                                       \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* Path of a file under the shared reference folder ($GC_SHARED or ../shared). */
static inline const char *gct_shared(const char *rel)
{
    static char buf[4][4096];
    static int k;
    const char *root = getenv("GC_SHARED");
    char *out = buf[k++ & 3];
    snprintf(out, sizeof buf[0], "%s/%s", root && *root ? root : "../shared", rel);
    return out;
}

static inline int gct_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, gct_passed, gct_failed);
    return gct_failed ? 1 : 0;
}

#endif
