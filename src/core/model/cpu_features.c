#include "model/cpu_features.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    unsigned bit;
    const char *name;
} names[] = {
    {GC_CPU_AVX512_BF16, "avx512_bf16"},
    {GC_CPU_AVX512_VNNI, "avx512_vnni"},
    {GC_CPU_AMX_BF16, "amx_bf16"},
    {GC_CPU_AMX_INT8, "amx_int8"},
};

static unsigned detected(void)
{
    unsigned f = 0;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    /* libgcc's checks include the OS-enabled register state (XCR0): AVX-512 state for the
     * first two, the tile state for AMX. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16"))
        f |= GC_CPU_AVX512_BF16;
    if (__builtin_cpu_supports("avx512vnni"))
        f |= GC_CPU_AVX512_VNNI;
    if (__builtin_cpu_supports("amx-bf16"))
        f |= GC_CPU_AMX_BF16;
    if (__builtin_cpu_supports("amx-int8"))
        f |= GC_CPU_AMX_INT8;
#endif
    return f;
}

/* The features GEMMACLF_CPU_FEATURES lets through (all when unset). */
static unsigned allowed(void)
{
    const char *env = getenv("GEMMACLF_CPU_FEATURES");
    if (!env)
        return ~0u;
    unsigned f = 0;
    const char *p = env;
    while (*p) {
        size_t n = strcspn(p, ", ");
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n && !strncmp(p, names[i].name, n))
                f |= names[i].bit;
        p += n;
        p += strspn(p, ", ");
    }
    return f; /* "none", "" and unknown names keep nothing */
}

unsigned gc_cpu_features(void) { return detected() & allowed(); }

const char *gc_cpu_feature_names(unsigned f, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (f & names[i].bit) {
            int w = snprintf(buf + len, cap > len ? cap - len : 0, "%s%s", len ? "," : "",
                             names[i].name);
            len += w > 0 ? (size_t)w : 0;
        }
    if (!len && cap)
        snprintf(buf, cap, "none");
    return buf;
}
