/* Prefill throughput of the CPU engine against OpenBLAS' own sgemm on the same shapes.
 *
 *   bench_prefill MODEL_DIR [threads] [prompt_len] [iterations]
 *
 * For batches of 1, 8 and 64 prompts (prompt_len tokens each, random ids) it times gc_forward
 * as a classifier uses it (logits of the last position, 3 vocabulary rows) and reports tokens/s
 * and GFLOP/s, counting 2*M*N*K for every matrix product issued (projections, attention scores
 * and values, LM head rows). In the same run it times cblas_sgemm alone on the projection shapes
 * of the largest batch (M = 64*prompt_len), interleaved with the batch-64 runs, and prints the
 * ratio. Best of `iterations` runs (after one warm-up) for each. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/gemma3.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* FLOPs issued by one forward over n_seq sequences of L tokens with 3 output rows per
 * sequence: every layer in full except the last, which (only the last position of each
 * sequence being wanted) projects keys/values of all tokens but runs queries, attention,
 * o_proj and the MLP for one row per sequence. */
static double model_flops(const gc_config *c, int n_seq, int L)
{
    double T = (double)n_seq * L, H = c->hidden_size, F = c->intermediate_size;
    double QD = (double)c->n_heads * c->head_dim, KD = (double)c->n_kv_heads * c->head_dim;
    double proj = 2 * T * (H * QD + 2 * H * KD + QD * H + 3 * H * F);
    double attn = (double)n_seq * c->n_heads * 2 * (2.0 * L * L * c->head_dim);
    double last = 2 * T * 2 * H * KD + 2.0 * n_seq * (H * QD + QD * H + 3 * H * F) +
                  (double)n_seq * c->n_heads * 2 * (2.0 * L * c->head_dim);
    return (c->n_layers - 1) * (proj + attn) + last + 2.0 * n_seq * 3 * H;
}

/* GFLOP/s of cblas_sgemm on the projection shapes of one layer at M tokens (as the engine
 * calls it: activations x weights^T, weights row-major [out, in]). */
static double sgemm_gflops(const gc_config *c, int M, int iters)
{
    int H = c->hidden_size, F = c->intermediate_size, QD = c->n_heads * c->head_dim,
        KD = c->n_kv_heads * c->head_dim;
    int shapes[][2] = {{QD, H}, {KD, H}, {KD, H}, {H, QD}, {F, H}, {F, H}, {H, F}}; /* N, K */
    size_t maxk = F > QD ? F : QD, maxn = F > QD ? F : QD;
    maxk = maxk > (size_t)H ? maxk : (size_t)H;
    maxn = maxn > (size_t)H ? maxn : (size_t)H;
    float *a = malloc((size_t)M * maxk * 4), *b = malloc(maxn * maxk * 4), *y = malloc((size_t)M * maxn * 4);
    for (size_t i = 0; i < (size_t)M * maxk; i++)
        a[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < maxn * maxk; i++)
        b[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
    double best = 1e30, flops = 0;
    for (int s = 0; s < 7; s++)
        flops += 2.0 * M * shapes[s][0] * shapes[s][1];
    for (int it = 0; it < iters + 1; it++) {
        double t0 = now();
        for (int s = 0; s < 7; s++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, shapes[s][0], shapes[s][1],
                        1.0f, a, shapes[s][1], b, shapes[s][1], 0.0f, y, shapes[s][0]);
        double dt = now() - t0;
        if (it > 0 && dt < best) /* first run warms up */
            best = dt;
    }
    free(a);
    free(b);
    free(y);
    return flops / best / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_prefill MODEL_DIR [threads] [prompt_len] [iterations]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 2, L = argc > 3 ? atoi(argv[3]) : 34,
        iters = argc > 4 ? atoi(argv[4]) : 3;
    gc_err e = {0};
    gc_model *m = NULL;
    double t0 = now();
    if (gc_model_load(argv[1], &(gc_model_opts){.map_files = 1}, &m, &e)) {
        fprintf(stderr, "bench_prefill: %s\n", e.msg);
        return 1;
    }
    printf("model %s: %.1fM parameters, loaded in %.2f s\n", argv[1],
           gc_model_param_count(m) / 1e6, now() - t0);
    gc_ctx *ctx = NULL;
    gc_ctx_opts co = {.threads = threads, .device = GC_DEVICE_CPU};
    if (gc_ctx_new(m, &co, &ctx, &e)) {
        fprintf(stderr, "bench_prefill: %s\n", e.msg);
        return 1;
    }
    const gc_config *c = gc_model_config(m);
    int batches[] = {1, 8, 64};
    int32_t rows[3] = {4348, 236814, 136074};
    for (int r = 0; r < 3; r++)
        rows[r] %= c->vocab_size;
    printf("threads %d, prompt length %d, best of %d\n", threads, L, iters);
    /* sgemm is timed before and after the model runs (the machine may be shared) */
    double sg_best = 0, model_gf64 = 0;
    for (int bi = 0; bi < 3; bi++) {
        int n = batches[bi], T = n * L;
        int32_t *tok = malloc(T * sizeof *tok), *lens = malloc(n * sizeof *lens),
                *outs = malloc(n * sizeof *outs);
        float *lg = malloc(n * 3 * sizeof *lg);
        uint32_t s = 12345;
        for (int i = 0; i < T; i++)
            tok[i] = (int32_t)((s = s * 1664525u + 1013904223u) >> 8) % c->vocab_size;
        for (int i = 0; i < n; i++) {
            lens[i] = L;
            outs[i] = (i + 1) * L - 1;
        }
        gc_batch b = {.n_seq = n, .tokens = tok, .seq_len = lens, .n_out = n, .out_idx = outs,
                      .n_rows = 3, .rows = rows, .logits = lg};
        double best = 1e30;
        for (int it = 0; it < iters + 1; it++) {
            if (n == 64) { /* interleaved with the model runs: the machine may be shared */
                double g = sgemm_gflops(c, 64 * L, 1);
                sg_best = g > sg_best ? g : sg_best;
            }
            double t1 = now();
            if (gc_forward(ctx, NULL, &b, &e)) {
                fprintf(stderr, "bench_prefill: %s\n", e.msg);
                return 1;
            }
            double dt = now() - t1;
            if (it > 0 && dt < best)
                best = dt;
        }
        double gf = model_flops(c, n, L) / best / 1e9;
        if (n == 64)
            model_gf64 = gf;
        printf("prefill batch %2d x %d tokens: %8.1f ms, %8.0f tokens/s, %6.1f prompts/s, %6.1f GFLOP/s\n",
               n, L, best * 1e3, T / best, n / best, gf);
        free(tok);
        free(lens);
        free(outs);
        free(lg);
    }
    /* The classifier's shape: a shared prompt prefix (half of each prompt) computed once,
     * then 64 continuations of the other half. */
    {
        int P = L / 2, R = L - P, n = 64;
        int32_t *pre = malloc(P * sizeof *pre), *tok = malloc(n * R * sizeof *tok),
                *lens = malloc(n * sizeof *lens), *outs = malloc(n * sizeof *outs);
        float *lg = malloc(n * 3 * sizeof *lg);
        for (int i = 0; i < P; i++)
            pre[i] = (7 + 31 * i) % c->vocab_size;
        for (int i = 0; i < n * R; i++)
            tok[i] = (int32_t)((1103515245u * (unsigned)i + 12345u) >> 8) % c->vocab_size;
        for (int i = 0; i < n; i++) {
            lens[i] = R;
            outs[i] = (i + 1) * R - 1;
        }
        gc_prefix *px = NULL;
        double t1 = now();
        if (gc_prefix_new(ctx, pre, P, &px, &e)) {
            fprintf(stderr, "bench_prefill: %s\n", e.msg);
            return 1;
        }
        double tp = now() - t1, best = 1e30;
        gc_batch b = {.n_seq = n, .tokens = tok, .seq_len = lens, .n_out = n, .out_idx = outs,
                      .n_rows = 3, .rows = rows, .logits = lg};
        for (int it = 0; it < iters + 1; it++) {
            t1 = now();
            if (gc_forward(ctx, px, &b, &e)) {
                fprintf(stderr, "bench_prefill: %s\n", e.msg);
                return 1;
            }
            double dt = now() - t1;
            if (it > 0 && dt < best)
                best = dt;
        }
        printf("with a %d-token prefix cache (%.1f ms once): batch 64 x %d tokens: %8.1f ms, "
               "%6.1f prompts/s\n", P, tp * 1e3, R, best * 1e3, n / best);
        gc_prefix_free(px);
        free(pre);
        free(tok);
        free(lens);
        free(outs);
        free(lg);
    }
    double sg = sg_best;
    printf("OpenBLAS sgemm on one layer's projection shapes at M=%d (q,k,v,o,gate,up,down), "
           "interleaved with the batch-64 runs: %.1f GFLOP/s\n", 64 * L, sg);
    printf("ratio (batch 64 prefill / sgemm): %.0f%%\n", 100.0 * model_gf64 / sg);
    gc_ctx_free(ctx);
    gc_model_free(m);
    return 0;
}
