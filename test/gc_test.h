/* Minimal test harness: CHECK counts, every test binary ends with the line
 * "<name>: N passed, M failed" and exits non-zero when anything failed. */
#ifndef GC_TEST_H
#define GC_TEST_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Path of REL relative to the directory of this test binary (built plugins live beside the
 * tests in $(BUILD), not at a fixed path); 1 when that file is readable. */
static inline int gct_beside_exe(const char *rel, char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    snprintf(buf, len, "%s/%s", exe, rel);
    return access(buf, R_OK) == 0;
}

static inline int gct_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, gct_passed, gct_failed);
    return gct_failed ? 1 : 0;
}

#endif
