/* The CPU instruction sets the reduced-precision matrix products need, detected at run time
 * (the build may target an older CPU than the one it runs on, and the reverse). */
#ifndef GC_CPU_FEATURES_H
#define GC_CPU_FEATURES_H

#include <stddef.h>

enum {
    GC_CPU_AVX512_BF16 = 1u << 0, /* vdpbf16ps: bf16 dot products, f32 accumulation */
    GC_CPU_AVX512_VNNI = 1u << 1, /* vpdpbusd: int8 dot products, int32 accumulation */
    GC_CPU_AMX_BF16 = 1u << 2,    /* AMX tiles (usable: the OS enabled their state) */
    GC_CPU_AMX_INT8 = 1u << 3,
};

/* What this CPU has, minus what the environment variable GEMMACLF_CPU_FEATURES hides: "none"
 * (or empty) hides all; otherwise a comma-separated list of the names below to keep
 * (avx512_bf16, avx512_vnni, amx_bf16, amx_int8). Unset: everything detected. A test hook that
 * simulates an older CPU; it can only remove features, never add them. */
unsigned gc_cpu_features(void);

/* Names of the features in f, comma-separated ("none" when f is 0). */
const char *gc_cpu_feature_names(unsigned f, char *buf, size_t cap);

#endif
