/* The f32 products of the bundled model's shapes on OpenBLAS and on oneDNN (not a test): what
 * model/f32_gemm.h's choice is based on.
 *   make build/bench/bench_f32_gemm && build/bench/bench_f32_gemm
 *   OPENBLAS_CORETYPE=SkylakeX build/bench/bench_f32_gemm     (OpenBLAS' AVX-512 kernels)
 * One thread. y[T, n] = x[T, k] . W[n, k]^T for a 48-token prompt through the bundled model's
 * layers (hidden 256, q 256, kv 64, intermediate 512), its LM head (4,096) and a batch of 300
 * tokens. Prints microseconds per product on each library and their largest difference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/blas_core.h"
#include "model/f32_gemm.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Microseconds per product on g; y gets the last result. */
static double time_on(gc_f32_gemm g, float *y, const float *x, const float *w, int T, int n, int k)
{
    gc_f32_gemm_set(g);
    gc_f32_gemm_xwt(y, x, w, T, n, k, 1); /* first call: oneDNN builds its kernel */
    int reps = (int)(2e8 / ((double)T * n * k)) + 5;
    double t0 = now_s();
    for (int r = 0; r < reps; r++)
        gc_f32_gemm_xwt(y, x, w, T, n, k, 1);
    return (now_s() - t0) / reps * 1e6;
}

int main(void)
{
    static const int shapes[][3] = {{48, 256, 256}, {48, 64, 256},   {48, 512, 256},
                                    {48, 256, 512}, {48, 4096, 256}, {300, 512, 256}};
    printf("OpenBLAS kernels: %s; default choice: %s\n", gc_blas_core(),
           gc_f32_gemm_name(gc_f32_gemm_choice()));
    srand(1);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *x = malloc(sizeof(float) * T * k), *w = malloc(sizeof(float) * n * k);
        float *y1 = malloc(sizeof(float) * T * n), *y2 = malloc(sizeof(float) * T * n);
        if (!x || !w || !y1 || !y2)
            return 1;
        for (int i = 0; i < T * k; i++)
            x[i] = (float)rand() / RAND_MAX - 0.5f;
        for (int i = 0; i < n * k; i++)
            w[i] = (float)rand() / RAND_MAX - 0.5f;
        double a = time_on(GC_F32_GEMM_OPENBLAS, y1, x, w, T, n, k);
        double b = time_on(GC_F32_GEMM_ONEDNN, y2, x, w, T, n, k);
        double md = 0;
        for (int i = 0; i < T * n; i++)
            md = fabsf(y1[i] - y2[i]) > md ? fabsf(y1[i] - y2[i]) : md;
        printf("T %3d  n %4d  k %3d: OpenBLAS %8.1f us, oneDNN %8.1f us (%.1fx), max diff %.1e\n",
               T, n, k, a, b, a / b, md);
        free(x);
        free(w);
        free(y1);
        free(y2);
    }
    return 0;
}
