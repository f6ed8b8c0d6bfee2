#include "model/blas_core.h"

#include <cblas.h>
#include <string.h>

const char *gc_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

/* OpenBLAS' x86-64 kernel sets that use AVX2 and FMA (its DYNAMIC_ARCH targets from Haswell
 * on): any other on an AVX2 CPU is a fallback for a CPU the library does not know. */
static int core_uses_avx2(const char *core)
{
    static const char *const avx2[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake",
                                       "SapphireRapids"};
    for (size_t i = 0; i < sizeof avx2 / sizeof avx2[0]; i++)
        if (strcmp(core, avx2[i]) == 0)
            return 1;
    return 0;
}

const char *gc_blas_core_better_for(const char *core, int cpu_avx2_fma, int cpu_avx512)
{
    if (!core || core_uses_avx2(core) || !(cpu_avx2_fma || cpu_avx512))
        return NULL;
    return cpu_avx512 ? "SkylakeX" : "Haswell";
}

const char *gc_blas_core_better(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    /* SkylakeX's kernels need F, BW, DQ and VL */
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return gc_blas_core_better_for(gc_blas_core(), avx2, avx512);
#else
    return NULL;
#endif
}
