/* bench_ops: nanoseconds per element of the engine's element-wise kernels (ops.c) on the
 * shapes of one batch of 64 prompts of the gemma-3-270m shape (~1,100 rows; hidden 640,
 * intermediate 2048), inputs N(0, SCALE). Best of R rounds; each round starts from the same
 * input (copied in, not timed). Used to check that the kernels vectorise: the MLP's
 * gc_gelu_tanh_mul runs once per decoder layer over rows x 2048 values, as many as the
 * largest matrix product has outputs.
 *
 *   bench_ops [ROWS] [SCALE] [ROUNDS]      (defaults 1024 1.0 20) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/ops.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Box-Muller from a fixed LCG: the same inputs on every run */
static void fill_normal(float *x, size_t n, float scale)
{
    unsigned long long s = 42;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u1 = ((double)(s >> 11) + 1.0) / 9007199254740993.0;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u2 = (double)(s >> 11) / 9007199254740992.0;
        x[i] = (float)(scale * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

typedef struct bufs {
    float *a0, *a, *b, *w;
    size_t rows;
    int dim;
} bufs;

static void run_gelu(bufs *p) { gc_gelu_tanh_mul(p->a, p->b, p->rows * (size_t)p->dim); }
static void run_rmsnorm(bufs *p) { gc_rmsnorm(p->a, p->a, p->w, p->rows, p->dim, p->dim, 1e-6f); }
static void run_add(bufs *p) { gc_add(p->a, p->b, p->rows * (size_t)p->dim); }

static void report(const char *name, void (*fn)(bufs *), bufs *p, int rounds)
{
    size_t n = p->rows * (size_t)p->dim;
    double best = INFINITY;
    for (int r = 0; r < rounds; r++) {
        memcpy(p->a, p->a0, n * sizeof(float));
        double t = now_s();
        fn(p);
        t = now_s() - t;
        best = t < best ? t : best;
    }
    /* a checksum keeps the work from being optimised away and shows that it ran */
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p->a[i];
    printf("{\"op\": \"%s\", \"rows\": %zu, \"dim\": %d, \"ns_per_element\": %.3f, "
           "\"checksum\": %.6g}\n", name, p->rows, p->dim, best / (double)n * 1e9, sum);
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    float scale = argc > 2 ? (float)atof(argv[2]) : 1.0f;
    int rounds = argc > 3 ? atoi(argv[3]) : 20;
    const int dims[2] = {2048, 640};
    if (rows == 0 || rounds <= 0 || !(scale > 0)) {
        fprintf(stderr, "usage: bench_ops [ROWS > 0] [SCALE > 0] [ROUNDS > 0]\n");
        return 2;
    }
    for (int d = 0; d < 2; d++) {
        size_t n = rows * (size_t)dims[d];
        bufs p = {malloc(n * sizeof(float)), malloc(n * sizeof(float)),
                  malloc(n * sizeof(float)), malloc((size_t)dims[d] * sizeof(float)), rows,
                  dims[d]};
        if (!p.a0 || !p.a || !p.b || !p.w) {
            fprintf(stderr, "bench_ops: out of memory\n");
            return 1;
        }
        fill_normal(p.a0, n, scale);
        fill_normal(p.b, n, 1.0f);
        fill_normal(p.w, (size_t)dims[d], 0.1f);
        if (dims[d] == 2048) {
            report("gelu_tanh_mul", run_gelu, &p, rounds);
        } else {
            report("rmsnorm", run_rmsnorm, &p, rounds);
            report("add", run_add, &p, rounds);
        }
        free(p.a0), free(p.a), free(p.b), free(p.w);
    }
    return 0;
}
