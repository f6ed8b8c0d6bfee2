/* gemmaclf logits MODEL_DIR: JSON lines of token ids in, JSON lines of per-position logits out
 * (positions x vocab). Meant for parity checks against transformers and for scripting. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "model/gemma3.h"
#include "common/ids.h"

typedef struct pending {
    gc_ids tokens;   /* concatenated */
    int32_t *lens;
    int n, cap;
} pending;

static int parse_line(const char *line, long lineno, int vocab, pending *p)
{
    cJSON *j = cJSON_Parse(line);
    int ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) > 0;
    if (!ok) {
        fprintf(stderr, "gemmaclf logits: line %ld: expected a non-empty JSON array of token ids\n",
                lineno);
        cJSON_Delete(j);
        return 0;
    }
    int n = 0;
    gc_err e = {0};
    for (const cJSON *x = j->child; x; x = x->next, n++) {
        double v = cJSON_IsNumber(x) ? x->valuedouble : -1;
        if (!cJSON_IsNumber(x) || v != (double)(int32_t)v || v < 0 || v >= vocab) {
            fprintf(stderr,
                    "gemmaclf logits: line %ld: entry %d is not a token id in [0, %d)\n", lineno,
                    n, vocab);
            cJSON_Delete(j);
            return 0;
        }
        if (gc_ids_push(&p->tokens, (int32_t)v, &e)) {
            fprintf(stderr, "gemmaclf logits: %s\n", e.msg);
            cJSON_Delete(j);
            return 0;
        }
    }
    cJSON_Delete(j);
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->lens = realloc(p->lens, (size_t)p->cap * sizeof *p->lens);
        if (!p->lens) {
            fprintf(stderr, "gemmaclf logits: out of memory\n");
            return 0;
        }
    }
    p->lens[p->n++] = n;
    return 1;
}

/* Runs the pending sequences as one batch and prints one line per sequence. */
static int flush(gc_ctx *ctx, int vocab, pending *p)
{
    if (!p->n)
        return 1;
    size_t T = p->tokens.n;
    float *lg = malloc(T * (size_t)vocab * sizeof(float));
    if (!lg) {
        fprintf(stderr, "gemmaclf logits: out of memory for %zu x %d logits\n", T, vocab);
        return 0;
    }
    gc_batch b = {.n_seq = p->n, .tokens = p->tokens.v, .seq_len = p->lens, .n_out = -1,
                  .logits = lg};
    gc_err e = {0};
    if (gc_forward(ctx, NULL, &b, &e)) {
        fprintf(stderr, "gemmaclf logits: %s\n", e.msg);
        free(lg);
        return 0;
    }
    size_t t = 0;
    for (int s = 0; s < p->n; s++) {
        putchar('[');
        for (int i = 0; i < p->lens[s]; i++, t++) {
            fputs(i ? ",[" : "[", stdout);
            const float *row = lg + t * (size_t)vocab;
            for (int v = 0; v < vocab; v++)
                printf(v ? ",%.9g" : "%.9g", row[v]);
            putchar(']');
        }
        fputs("]\n", stdout);
    }
    free(lg);
    gc_ids_clear(&p->tokens);
    p->n = 0;
    return fflush(stdout) == 0;
}

static int run(int argc, char **argv)
{
    const char *dir = NULL, *cache = NULL;
    int threads = 0, batch = 16;
    gc_device dev = GC_DEVICE_CPU;
    const char *prec_name = NULL;
    int cuda_device = 0, prec = 0;
    gc_precision precision = GC_PRECISION_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cache-dir") && i + 1 < argc)
            cache = argv[++i];
        else if (!strcmp(argv[i], "--cuda-device") && i + 1 < argc)
            cuda_device = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cuda-precision") && i + 1 < argc)
            prec_name = argv[++i];
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            if (gc_precision_parse(argv[++i], &precision)) {
                fprintf(stderr, "gemmaclf logits: --precision must be f32, bf16 or int8\n");
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            const char *d = argv[++i];
            if (!strcmp(d, "cpu"))
                dev = GC_DEVICE_CPU;
            else if (!strcmp(d, "cuda"))
                dev = GC_DEVICE_CUDA;
            else if (!strcmp(d, "auto"))
                dev = GC_DEVICE_AUTO;
            else {
                fprintf(stderr, "gemmaclf logits: --device must be cpu, cuda or auto\n");
                return 2;
            }
        } else if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "usage: gemmaclf logits %s\n", gc_cmd_logits.usage);
            return 2;
        } else
            dir = argv[i];
    }
    if (cli_cuda_precision(prec_name, &prec))
        return 2;
    if (!dir || batch < 1 || cuda_device < 0) {
        fprintf(stderr, "usage: gemmaclf logits %s\n", gc_cmd_logits.usage);
        return 2;
    }
    gc_err e = {0};
    gc_model *m = NULL;
    gc_model_opts mo = {.cache_dir = cache, .map_files = 1};
    if (gc_model_load(dir, &mo, &m, &e)) {
        fprintf(stderr, "gemmaclf logits: %s\n", e.msg);
        return 1;
    }
    gc_ctx *ctx = NULL;
    gc_ctx_opts co = {.threads = threads, .device = dev, .cuda_device = cuda_device,
                      .cuda_precision = prec, .notice = cli_notice, .precision = precision};
    if (gc_ctx_new(m, &co, &ctx, &e)) {
        fprintf(stderr, "gemmaclf logits: %s\n", e.msg);
        gc_model_free(m);
        return 1;
    }
    const char *note;
    gc_ctx_precision(ctx, &note);
    if (*note)
        fprintf(stderr, "gemmaclf logits: %s\n", note);
    const int vocab = gc_model_config(m)->vocab_size;
    pending p = {0};
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int ok = 1;
    while (ok && getline(&line, &cap, stdin) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        ok = parse_line(line, lineno, vocab, &p) && (p.n < batch || flush(ctx, vocab, &p));
    }
    ok = ok && flush(ctx, vocab, &p);
    free(line);
    free(p.lens);
    gc_ids_free(&p.tokens);
    gc_ctx_free(ctx);
    gc_model_free(m);
    return ok ? 0 : 1;
}

const gc_command gc_cmd_logits = {
    "logits",
    "MODEL_DIR [--threads N] [--batch N] [--device cpu|cuda|auto] [--precision f32|bf16|int8] "
    "[--cuda-device N] [--cuda-precision f32|tf32|bf16] [--cache-dir DIR]",
    "read JSON arrays of token ids (one per line), print each position's logits as JSON",
    run,
};
