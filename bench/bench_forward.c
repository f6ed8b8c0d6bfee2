/* bench_forward: throughput and label logits of one forward per prompt, the way a classifier
 * uses the engine: last-position logits restricted to a few vocabulary rows (the labels'
 * first tokens), optionally continuing a shared prompt prefix from its KV cache.
 *
 *   bench_forward MODEL_DIR --ids FILE --rows A,B,C [--device cpu|cuda|auto] [--batch N]
 *                 [--prefix N] [--repeat R] [--limit N] [--threads N] [--out FILE]
 *                 [--precision f32|bf16|int8]
 *
 * FILE holds one JSON array of token ids per line (whole prompts). --prefix N checks that all
 * prompts share their first N ids and computes those once (gc_prefix). --out writes one line
 * per prompt: the logits of the rows, space-separated (%.9g). The last line on stdout is a
 * JSON summary: prompts, tokens, seconds (forward calls only, after one warm-up batch),
 * cpu_seconds (CPU time of the process over the same span: on a shared machine, what the work
 * cost rather than how long it waited),
 * prompts_per_s, precision (on the CPU: the one the engine ran, --precision unless the CPU
 * lacks the instructions). The CUDA precision follows GEMMACLF_CUDA_PRECISION (f32|tf32|bf16). */
#include <cJSON.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/gemma3.h"
#include "common/ids.h"
#include "model/cuda_plugin.h"
#include "model/model.h"

typedef struct prompts {
    gc_ids ids;     /* all prompts concatenated */
    gc_ids len;     /* length of each */
} prompts;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int read_prompts(const char *path, int limit, prompts *p)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    gc_err e = {0};
    int ok = 1;
    while (ok && (limit <= 0 || (int)p->len.n < limit) && getline(&line, &cap, f) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        cJSON *j = cJSON_Parse(line);
        int n = 0;
        ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) > 0;
        for (const cJSON *x = ok ? j->child : NULL; ok && x; x = x->next, n++)
            ok = cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble < 2147483647.0 &&
                 !gc_ids_push(&p->ids, (int32_t)x->valuedouble, &e);
        ok = ok && !gc_ids_push(&p->len, n, &e);
        if (!ok)
            fprintf(stderr, "bench_forward: %s:%ld: expected a JSON array of token ids\n", path,
                    lineno);
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    if (ok && p->len.n == 0) {
        fprintf(stderr, "bench_forward: %s: no prompts\n", path);
        ok = 0;
    }
    return ok;
}

static int parse_rows(const char *s, gc_ids *rows)
{
    gc_err e = {0};
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 2147483647L || gc_ids_push(rows, (int32_t)v, &e))
            return 0;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return 0;
    }
    return rows->n > 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_forward MODEL_DIR --ids FILE --rows A,B,C [--device cpu|cuda|auto]"
                    " [--batch N] [--prefix N] [--repeat R] [--limit N] [--threads N] [--out FILE]"
                    " [--precision f32|bf16|int8]\n");
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *ids_path = NULL, *out_path = NULL, *rows_arg = NULL;
    int batch = 64, prefix_n = 0, repeat = 1, limit = 0, threads = 0;
    gc_device dev = GC_DEVICE_AUTO;
    gc_precision prec = GC_PRECISION_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--ids") && v)
            ids_path = argv[++i];
        else if (!strcmp(a, "--rows") && v)
            rows_arg = argv[++i];
        else if (!strcmp(a, "--out") && v)
            out_path = argv[++i];
        else if (!strcmp(a, "--batch") && v)
            batch = atoi(argv[++i]);
        else if (!strcmp(a, "--prefix") && v)
            prefix_n = atoi(argv[++i]);
        else if (!strcmp(a, "--repeat") && v)
            repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--limit") && v)
            limit = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--precision") && v) {
            if (gc_precision_parse(argv[++i], &prec)) {
                usage();
                return 2;
            }
        }
        else if (!strcmp(a, "--device") && v) {
            v = argv[++i];
            if (!strcmp(v, "cpu"))
                dev = GC_DEVICE_CPU;
            else if (!strcmp(v, "cuda"))
                dev = GC_DEVICE_CUDA;
            else if (!strcmp(v, "auto"))
                dev = GC_DEVICE_AUTO;
            else {
                usage();
                return 2;
            }
        } else if (a[0] != '-' && !dir)
            dir = a;
        else {
            usage();
            return 2;
        }
    }
    gc_ids rows = {0};
    if (!dir || !ids_path || !rows_arg || batch < 1 || repeat < 1 || prefix_n < 0 ||
        !parse_rows(rows_arg, &rows)) {
        usage();
        return 2;
    }
    prompts p = {0};
    if (!read_prompts(ids_path, limit, &p))
        return 1;
    const int np = (int)p.len.n, nr = (int)rows.n;
    size_t *start = calloc((size_t)np, sizeof *start);
    for (int i = 1; i < np; i++)
        start[i] = start[i - 1] + (size_t)p.len.v[i - 1];
    for (int i = 0; i < np && prefix_n > 0; i++) {
        if (p.len.v[i] <= prefix_n ||
            memcmp(p.ids.v + start[i], p.ids.v, (size_t)prefix_n * sizeof(int32_t))) {
            fprintf(stderr, "bench_forward: prompt %d does not continue the %d-token prefix\n", i,
                    prefix_n);
            return 1;
        }
    }

    gc_err e = {0};
    gc_model *m = NULL;
    if (gc_model_load(dir, &(gc_model_opts){.map_files = 1}, &m, &e)) {
        fprintf(stderr, "bench_forward: %s\n", e.msg);
        return 1;
    }
    gc_ctx *ctx = NULL;
    const char *prec_env = getenv(GC_CUDA_PRECISION_ENV);
    int cuda_prec = GC_CUDA_F32;
    if (prec_env && *prec_env && gc_cuda_precision_parse(prec_env, &cuda_prec)) {
        fprintf(stderr, "bench_forward: %s=%s: expected f32, tf32 or bf16\n",
                GC_CUDA_PRECISION_ENV, prec_env);
        return 2;
    }
    gc_ctx_opts co = {.threads = threads, .device = dev, .cuda_precision = cuda_prec,
                      .precision = prec};
    if (gc_ctx_new(m, &co, &ctx, &e)) {
        fprintf(stderr, "bench_forward: %s\n", e.msg);
        return 1;
    }
    const char *note;
    prec = gc_ctx_precision(ctx, &note);
    if (*note)
        fprintf(stderr, "bench_forward: %s\n", note);
    gc_prefix *pre = NULL;
    if (prefix_n > 0 && gc_prefix_new(ctx, p.ids.v, prefix_n, &pre, &e)) {
        fprintf(stderr, "bench_forward: prefix: %s\n", e.msg);
        return 1;
    }

    /* batches of prompts, each packed without padding (minus the prefix when cached) */
    float *logits = malloc((size_t)np * nr * sizeof *logits);
    int32_t *toks = malloc(p.ids.n * sizeof *toks), *lens = malloc((size_t)batch * sizeof *lens);
    int32_t *outi = malloc((size_t)batch * sizeof *outi);
    if (!logits || !toks || !lens || !outi) {
        fprintf(stderr, "bench_forward: out of memory\n");
        return 1;
    }
    double t0 = 0, t_end = 0, cpu0 = 0, cpu_end = 0;
    long long tokens = 0;
    for (int r = -1; r < repeat; r++) { /* r = -1: warm-up on the first batch */
        if (r == 0)
            t0 = now(), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        for (int b0 = 0; b0 < np; b0 += batch) {
            int nb = np - b0 < batch ? np - b0 : batch, T = 0;
            for (int i = 0; i < nb; i++) {
                int L = p.len.v[b0 + i] - prefix_n;
                memcpy(toks + T, p.ids.v + start[b0 + i] + prefix_n, (size_t)L * sizeof *toks);
                lens[i] = L;
                T += L;
                outi[i] = T - 1;
            }
            gc_batch bt = {.n_seq = nb, .tokens = toks, .seq_len = lens, .n_out = nb,
                           .out_idx = outi, .n_rows = nr, .rows = rows.v,
                           .logits = logits + (size_t)b0 * nr};
            if (gc_forward(ctx, pre, &bt, &e)) {
                fprintf(stderr, "bench_forward: forward: %s\n", e.msg);
                return 1;
            }
            if (r >= 0)
                tokens += T;
            if (r < 0)
                break;
        }
    }
    t_end = now(), cpu_end = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (out_path) {
        FILE *f = fopen(out_path, "w");
        if (!f) {
            perror(out_path);
            return 1;
        }
        for (int i = 0; i < np; i++)
            for (int j = 0; j < nr; j++)
                fprintf(f, j + 1 < nr ? "%.9g " : "%.9g\n", logits[(size_t)i * nr + j]);
        if (fclose(f)) {
            perror(out_path);
            return 1;
        }
    }
    double secs = t_end - t0;
    static const char *const cuda_prec_names[] = {"f32", "tf32", "bf16"};
    printf("{\"device\": \"%s\", \"precision\": \"%s\", \"blas_core\": \"%s\", "
           "\"batch\": %d, \"prefix\": %d, "
           "\"prompts\": %lld, \"tokens\": %lld, \"seconds\": %.4f, \"cpu_seconds\": %.4f, "
           "\"prompts_per_s\": %.1f}\n",
           gc_ctx_device(ctx) == GC_DEVICE_CUDA ? "cuda" : "cpu",
           gc_ctx_device(ctx) == GC_DEVICE_CUDA ? cuda_prec_names[cuda_prec]
                                                 : gc_precision_name(prec),
           openblas_get_corename(), batch,
           prefix_n, (long long)np * repeat, tokens, secs, cpu_end - cpu0,
           secs > 0 ? np * repeat / secs : 0.0);
    gc_prefix_free(pre);
    gc_ctx_free(ctx);
    gc_model_free(m);
    free(logits);
    free(toks);
    free(lens);
    free(outi);
    free(start);
    gc_ids_free(&p.ids);
    gc_ids_free(&p.len);
    gc_ids_free(&rows);
    return 0;
}
