/* Which library computes the f32 engine's big products (the linear layers and the LM head).
 *
 * OpenBLAS picks its kernels by CPU model when it loads; a CPU newer than the library gets a
 * generic fallback (model/blas_core.h): Debian 12's OpenBLAS runs its SSE3 "Prescott" kernels on
 * this project's Xeon, 4-7x slower than oneDNN's sgemm there (bench/bench_f32_gemm.c). oneDNN
 * (already linked for the bf16 / int8 engines) dispatches on the CPU's instruction sets itself.
 * So, by default, oneDNN computes these products exactly when OpenBLAS runs a fallback on a CPU
 * that could do better, and OpenBLAS otherwise (and always for the small attention products).
 * GEMMACLF_F32_GEMM=openblas|onednn in the environment overrides the choice (comparisons). */
#ifndef GC_F32_GEMM_H
#define GC_F32_GEMM_H

typedef enum { GC_F32_GEMM_OPENBLAS, GC_F32_GEMM_ONEDNN } gc_f32_gemm;

/* This process's choice (environment and CPU, decided on the first call). */
gc_f32_gemm gc_f32_gemm_choice(void);
const char *gc_f32_gemm_name(gc_f32_gemm g);

/* Tests: use g from now on in this process. */
void gc_f32_gemm_set(gc_f32_gemm g);

/* A server's postmaster must not start oneDNN's OpenMP threads before it forks: while held
 * (hold = 1), gc_f32_gemm_xwt uses OpenBLAS whatever the choice. */
void gc_f32_gemm_hold(int hold);

/* y[T, n] = x[T, k] . W[n, k]^T (W row-major, as stored), on `threads` threads (0 = all). */
void gc_f32_gemm_xwt(float *y, const float *x, const float *w, int T, int n, int k, int threads);

/* Whether gc_f32_gemm_xwt runs on oneDNN now (then OpenBLAS keeps one thread for the rest). */
int gc_f32_gemm_onednn_now(void);

#endif
