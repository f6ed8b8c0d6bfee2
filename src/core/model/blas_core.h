/* Which f32 kernels OpenBLAS runs. It picks them by CPU model when the library loads, before any
 * of our code runs, and a CPU newer than the library gets a generic fallback: Debian 12's
 * OpenBLAS 0.3.21 runs its SSE3 "Prescott" kernels on an Intel Xeon of family 6 model 207,
 * about 4x slower than its AVX-512 ones there. Only OPENBLAS_CORETYPE in the environment of the
 * process (the server's, the shell's) changes the choice; these functions let us say so. */
#ifndef GC_BLAS_CORE_H
#define GC_BLAS_CORE_H

/* The kernel set OpenBLAS chose ("Prescott", "Haswell", "SkylakeX", ...). */
const char *gc_blas_core(void);

/* The OPENBLAS_CORETYPE this process should have had ("SkylakeX" or "Haswell") when OpenBLAS
 * runs kernels without AVX2 on a CPU that has AVX2 (with FMA) or AVX-512; NULL when its choice
 * uses the CPU. */
const char *gc_blas_core_better(void);

/* The rule behind gc_blas_core_better, for a core name and the CPU's instruction sets. */
const char *gc_blas_core_better_for(const char *core, int cpu_avx2_fma, int cpu_avx512);

#endif
