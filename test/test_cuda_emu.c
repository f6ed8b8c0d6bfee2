/* The CUDA plugin's code, run on the CPU through test/cuda_emu (the plugin sources compiled with
 * g++ against a CPU stand-in for the CUDA runtime and cuBLAS), against the CPU engine on the
 * tiny fixtures: packed sequences longer than the sliding windows, GQA and MQA, linear RoPE
 * scaling, final soft-capping, untied lm_head; every position over the whole vocabulary, label
 * rows after a cached prefix, the BF16 mode, shared device weights, and the refusals. This is
 * what CI can check of the GPU path without a GPU; scripts/gpu-check.sh checks the rest. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/cuda_plugin.h"
#include "gc_test.h"
#include "model/gemma3.h"
#include "model/model.h"

#define N_SEQ 4
static const int32_t lens[N_SEQ] = {1, 7, 13, 40}; /* 40 > every fixture's sliding window */

static void make_tokens(int vocab, int32_t *tok, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        tok[i] = (int32_t)(3 + (seed >> 8) % (unsigned)(vocab - 3));
    }
}

/* max |a - b| / max(1, max |b|) and whether every row has the same argmax */
static double rel_err(const float *a, const float *b, int rows, int cols, int *same_argmax)
{
    double worst = 0, big = 1;
    *same_argmax = 1;
    for (int r = 0; r < rows; r++) {
        int ia = 0, ib = 0;
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            double d = fabs((double)a[i] - (double)b[i]);
            worst = d > worst || d != d ? d : worst;
            big = fabs(b[i]) > big ? fabs(b[i]) : big;
            ia = a[i] > a[(size_t)r * cols + ia] ? c : ia;
            ib = b[i] > b[(size_t)r * cols + ib] ? c : ib;
        }
        *same_argmax &= ia == ib;
    }
    return worst / big;
}

static gc_ctx *ctx_prec(const gc_model *m, gc_device d, int precision)
{
    gc_err e = {0};
    gc_ctx *c = NULL;
    gc_ctx_opts o = {.device = d, .cuda_precision = precision};
    CHECK(gc_ctx_new(m, &o, &c, &e) == GC_OK, "ctx (device %d): %s", (int)d, e.msg);
    CHECK(!c || gc_ctx_device(c) == (d == GC_DEVICE_CUDA ? GC_DEVICE_CUDA : GC_DEVICE_CPU),
          "device chosen");
    return c;
}

static gc_ctx *ctx(const gc_model *m, gc_device d) { return ctx_prec(m, d, GC_CUDA_F32); }

/* Every position of N_SEQ packed sequences, whole vocabulary. The plugin's logits are returned
 * in *keep (malloc'ed) when keep is not NULL. */
static void all_positions(const char *name, gc_ctx *cpu, gc_ctx *gpu, int vocab, double tol,
                          int want_argmax, float **keep)
{
    int T = 0;
    for (int i = 0; i < N_SEQ; i++)
        T += lens[i];
    int32_t *tok = malloc((size_t)T * sizeof *tok);
    float *a = malloc((size_t)T * vocab * sizeof *a), *b = malloc((size_t)T * vocab * sizeof *b);
    make_tokens(vocab, tok, T, 7);
    gc_batch bc = {.n_seq = N_SEQ, .tokens = tok, .seq_len = lens, .n_out = -1, .logits = a};
    gc_batch bg = bc;
    bg.logits = b;
    gc_err e = {0};
    CHECK(gc_forward(cpu, NULL, &bc, &e) == GC_OK, "%s cpu forward: %s", name, e.msg);
    CHECK(gc_forward(gpu, NULL, &bg, &e) == GC_OK, "%s emulated cuda forward: %s", name, e.msg);
    int same;
    double err = rel_err(b, a, T, vocab, &same);
    CHECK(err <= tol, "%s all positions: relative error %.3g > %.3g", name, err, tol);
    if (want_argmax)
        CHECK(same, "%s all positions: argmax differs", name);
    printf("%s: all positions x vocab, relative error %.3g\n", name, err);
    free(tok);
    free(a);
    if (keep)
        *keep = b;
    else
        free(b);
}

/* A reduced-precision mode: within `tol` of the CPU, and not the F32 plugin's result (a
 * precision setting that is ignored would pass the bound alone). */
static void reduced_precision(const char *fx, const char *prec, double tol, const gc_model *m,
                              gc_ctx *cpu, const float *f32, int vocab)
{
    char name[128];
    snprintf(name, sizeof name, "%s %s", fx, prec);
    int pv = GC_CUDA_F32;
    CHECK(gc_cuda_precision_parse(prec, &pv) == 0, "precision name %s", prec);
    gc_ctx *g = ctx_prec(m, GC_DEVICE_CUDA, pv);
    float *got = NULL;
    if (g)
        all_positions(name, cpu, g, vocab, tol, 0, &got);
    if (got && f32) {
        size_t T = 0;
        for (int i = 0; i < N_SEQ; i++)
            T += (size_t)lens[i];
        int same;
        double d = rel_err(got, f32, (int)T, vocab, &same);
        CHECK(d > 0, "%s: logits identical to the F32 mode (precision ignored?)", name);
        printf("%s: relative difference to the F32 mode %.3g\n", name, d);
    }
    free(got);
    gc_ctx_free(g);
}

/* The last token of each sequence over the whole vocabulary (what generation asks for): the
 * plugin then runs the last layer for those tokens only. */
static void last_positions(const char *name, gc_ctx *cpu, gc_ctx *gpu, int vocab)
{
    int32_t tok[64], last[N_SEQ];
    int T = 0;
    for (int i = 0; i < N_SEQ; i++) {
        T += lens[i];
        last[i] = T - 1;
    }
    make_tokens(vocab, tok, T, 17);
    float *a = malloc((size_t)N_SEQ * vocab * sizeof *a);
    float *b = malloc((size_t)N_SEQ * vocab * sizeof *b);
    gc_batch bc = {.n_seq = N_SEQ, .tokens = tok, .seq_len = lens, .n_out = N_SEQ,
                   .out_idx = last, .logits = a};
    gc_batch bg = bc;
    bg.logits = b;
    gc_err e = {0};
    CHECK(gc_forward(cpu, NULL, &bc, &e) == GC_OK, "%s cpu forward: %s", name, e.msg);
    CHECK(gc_forward(gpu, NULL, &bg, &e) == GC_OK, "%s cuda forward: %s", name, e.msg);
    int same;
    double err = rel_err(b, a, N_SEQ, vocab, &same);
    CHECK(err <= 1e-4 && same, "%s last positions: relative error %.3g", name, err);
    printf("%s: last positions x vocab, relative error %.3g\n", name, err);
    free(a);
    free(b);
}

/* Sequences continuing a cached prefix; logits of their last tokens for three rows. */
static void prefix_rows(const char *name, gc_ctx *cpu, gc_ctx *gpu, int vocab)
{
    enum { P = 9 };
    int32_t pre_ids[P], tok[64], last[N_SEQ];
    int32_t rows[3] = {0, 17 % vocab, vocab - 1};
    int T = 0;
    make_tokens(vocab, pre_ids, P, 11);
    for (int i = 0; i < N_SEQ; i++) {
        T += lens[i];
        last[i] = T - 1;
    }
    make_tokens(vocab, tok, T, 13);
    float a[N_SEQ * 3], b[N_SEQ * 3];
    gc_err e = {0};
    gc_prefix *pc = NULL, *pg = NULL;
    CHECK(gc_prefix_new(cpu, pre_ids, P, &pc, &e) == GC_OK, "%s cpu prefix: %s", name, e.msg);
    CHECK(gc_prefix_new(gpu, pre_ids, P, &pg, &e) == GC_OK, "%s cuda prefix: %s", name, e.msg);
    gc_batch bc = {.n_seq = N_SEQ, .tokens = tok, .seq_len = lens, .n_out = N_SEQ,
                   .out_idx = last, .n_rows = 3, .rows = rows, .logits = a};
    gc_batch bg = bc;
    bg.logits = b;
    if (pc && pg) {
        CHECK(gc_forward(cpu, pc, &bc, &e) == GC_OK, "%s cpu forward: %s", name, e.msg);
        CHECK(gc_forward(gpu, pg, &bg, &e) == GC_OK, "%s cuda forward: %s", name, e.msg);
        int same;
        double err = rel_err(b, a, N_SEQ, 3, &same);
        CHECK(err <= 1e-4 && same, "%s prefix + rows: relative error %.3g", name, err);
        printf("%s: prefix of %d + label rows, relative error %.3g\n", name, P, err);
        /* a CPU prefix on a CUDA context is refused, not misread */
        CHECK(gc_forward(gpu, pc, &bg, &e) != GC_OK, "%s: CPU prefix on a CUDA context", name);
    }
    gc_prefix_free(pc);
    gc_prefix_free(pg);
}

static void refusals(const char *name, gc_ctx *gpu, int vocab, int layers, int hidden)
{
    int32_t tok[3] = {2, 5, 9}, len = 3;
    float *h = malloc((size_t)(layers + 1) * 3 * hidden * sizeof *h);
    float lg[3];
    int32_t last = 2, bad_row = vocab;
    gc_err e = {0};
    gc_batch b = {.n_seq = 1, .tokens = tok, .seq_len = &len, .n_out = 0, .hidden = h};
    gc_status st = gc_forward(gpu, NULL, &b, &e);
    CHECK(st == GC_EDEVICE && strstr(e.msg, "hidden"), "%s hidden on CUDA: %s", name, e.msg);
    gc_batch b2 = {.n_seq = 1, .tokens = tok, .seq_len = &len, .n_out = 1, .out_idx = &last,
                   .n_rows = 1, .rows = &bad_row, .logits = lg};
    memset(&e, 0, sizeof e);
    CHECK(gc_forward(gpu, NULL, &b2, &e) != GC_OK, "%s row outside the vocabulary accepted", name);
    free(h);
}

static int plugin_path(char *buf, size_t len)
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
    snprintf(buf, len, "%s/../cuda-emu/gemmaclf_cuda.so", exe);
    return access(buf, R_OK) == 0;
}

int main(void)
{
#ifdef __SANITIZE_ADDRESS__
    /* the emulator switches stacks with longjmp, which AddressSanitizer cannot follow */
    printf("skipped: test_cuda_emu under AddressSanitizer\n");
    return gct_finish("test_cuda_emu");
#endif
    char path[PATH_MAX + 64];
    /* make unittest builds it (no CUDA toolkit needed): missing is a failure, not a skip */
    CHECK(plugin_path(path, sizeof path), "build/cuda-emu/gemmaclf_cuda.so not built (make cuda-emu)");
    if (!plugin_path(path, sizeof path))
        return gct_finish("test_cuda_emu");
    setenv("GEMMACLF_CUDA_PLUGIN", path, 1);
    unsetenv(GC_CUDA_PRECISION_ENV);
    unsetenv("GCU_EMU_DEVICES");
    unsetenv("GCU_EMU_FREE_MB");
    const char *fixtures[] = {"tiny_gqa_f32", "tiny_mqa_bf16_scaled", "tiny_untied_tok4k"};
    for (int f = 0; f < 3; f++) {
        char dir[512];
        snprintf(dir, sizeof dir, "reference/hf-tiny/%s", fixtures[f]);
        gc_err e = {0};
        gc_model *m = NULL;
        if (gc_model_load(gct_shared(dir), NULL, &m, &e)) {
            CHECK(0, "load %s: %s", fixtures[f], e.msg);
            continue;
        }
        const gc_config *cfg = gc_model_config(m);
        gc_ctx *cpu = ctx(m, GC_DEVICE_CPU), *gpu = ctx(m, GC_DEVICE_CUDA);
        if (cpu && gpu) {
            all_positions(fixtures[f], cpu, gpu, cfg->vocab_size, 1e-4, 1, NULL);
            last_positions(fixtures[f], cpu, gpu, cfg->vocab_size);
            prefix_rows(fixtures[f], cpu, gpu, cfg->vocab_size);
            refusals(fixtures[f], gpu, cfg->vocab_size, cfg->n_layers, cfg->hidden_size);
            /* a second context shares the uploaded weights; freeing it leaves the first intact */
            gc_ctx *gpu2 = ctx(m, GC_DEVICE_CUDA);
            gc_ctx_free(gpu2);
            float *f32 = NULL;
            all_positions(fixtures[f], cpu, gpu, cfg->vocab_size, 1e-4, 1, &f32);
            /* TF32 and BF16 products: close, not equal */
            reduced_precision(fixtures[f], "tf32", 1e-2, m, cpu, f32, cfg->vocab_size);
            reduced_precision(fixtures[f], "bf16", 5e-2, m, cpu, f32, cfg->vocab_size);
            free(f32);
        }
        gc_ctx_free(gpu);
        gc_ctx_free(cpu);
        gc_model_free(m);
    }
    return gct_finish("test_cuda_emu");
}
