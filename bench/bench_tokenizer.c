/* Tokenizer benchmark: load time of a tokenizer folder, then single-thread encoding
 * throughput over the "text" fields of a JSON-lines file (plain encode and the Gemma chat
 * prompt), and one long comment (BPE over a single word).
 *   bench_tokenizer MODEL_DIR FILE.jsonl [REPEATS] [LONG_BYTES] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_string.h"
#include "classifier/prompt.h"
#include "tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU time of this thread: on a shared machine it is steadier than wall time. */
static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct text {
    char *s;
    size_t n;
} text;

static text *read_texts(const char *path, size_t *count, size_t *bytes)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    text *v = NULL;
    size_t cap = 0, n = 0, cap_line = 0;
    char *line = NULL;
    *bytes = 0;
    while (getline(&line, &cap_line, f) > 0) {
        const char *p = strstr(line, "\"text\": \"");
        if (!p)
            continue;
        p += 8;
        size_t used;
        gc_err e;
        text t;
        if (gc_json_parse_string(p, strlen(p), &used, &t.s, &t.n, &e) != GC_OK)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            v = realloc(v, cap * sizeof *v);
        }
        v[n++] = t;
        *bytes += t.n;
    }
    free(line);
    fclose(f);
    *count = n;
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR FILE.jsonl [REPEATS] [LONG_BYTES]\n", argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    size_t long_bytes = argc > 4 ? (size_t)atol(argv[4]) : 1u << 20;
    gc_err e;
    gc_tokenizer *t = NULL;
    double best_load = 1e9, best_load_cpu = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now(), c0 = cpu();
        if (gc_tokenizer_load(argv[1], &t, &e) != GC_OK) {
            fprintf(stderr, "load: %s\n", e.msg);
            return 1;
        }
        double dt = now() - t0, dc = cpu() - c0;
        if (dt < best_load)
            best_load = dt;
        if (dc < best_load_cpu)
            best_load_cpu = dc;
        if (r < 4)
            gc_tokenizer_free(t);
    }
    printf("gemmaclf load: %.1f ms wall, %.1f ms CPU (best of 5)\n", best_load * 1e3,
           best_load_cpu * 1e3);

    size_t n, bytes;
    text *tx = read_texts(argv[2], &n, &bytes);
    if (!tx || !n) {
        fprintf(stderr, "no texts in %s\n", argv[2]);
        return 1;
    }
    gc_ids ids = {0};
    for (int mode = 0; mode < 2; mode++) {
        double best = 1e9, best_cpu = 1e9;
        size_t tokens = 0;
        for (int r = 0; r < reps; r++) {
            tokens = 0;
            double t0 = now(), c0 = cpu();
            for (size_t i = 0; i < n; i++) {
                ids.n = 0;
                gc_status st = mode == 0
                                   ? gc_tokenizer_encode(t, tx[i].s, tx[i].n, 0, &ids, &e)
                                   : gc_prompt_encode(
                                         t, "classify the following comment into Hate, Extreme "
                                            "Hate or Not Hate: ",
                                         tx[i].s, tx[i].n, &ids, &e);
                if (st != GC_OK) {
                    fprintf(stderr, "encode: %s\n", e.msg);
                    return 1;
                }
                tokens += ids.n;
            }
            double dt = now() - t0, dc = cpu() - c0;
            if (dt < best)
                best = dt;
            if (dc < best_cpu)
                best_cpu = dc;
        }
        printf("gemmaclf %s: %zu comments, %.2f MB, %zu tokens: %.0f comments/s, %.2f MB/s wall; "
               "%.0f comments/s, %.2f MB/s CPU (best of %d, 1 thread)\n",
               mode == 0 ? "encode" : "chat prompt", n, bytes / 1e6, tokens, n / best,
               bytes / 1e6 / best, n / best_cpu, bytes / 1e6 / best_cpu, reps);
    }
    /* one long comment: all texts joined by spaces until long_bytes (one BPE word for
     * Gemma 3, whose pre-tokenizer never splits) */
    char *big = malloc(long_bytes + 1);
    size_t k = 0;
    for (size_t i = 0; k < long_bytes; i = (i + 1) % n) {
        size_t m = tx[i].n < long_bytes - k ? tx[i].n : long_bytes - k;
        /* cut at a character boundary */
        while (m && m < tx[i].n && ((unsigned char)tx[i].s[m] & 0xC0) == 0x80)
            m--;
        if (!m)
            break;
        memcpy(big + k, tx[i].s, m);
        k += m;
        if (k < long_bytes)
            big[k++] = ' ';
    }
    ids.n = 0;
    double t0 = now(), c0 = cpu();
    if (gc_tokenizer_encode(t, big, k, 0, &ids, &e) != GC_OK) {
        fprintf(stderr, "long: %s\n", e.msg);
        return 1;
    }
    printf("gemmaclf one %.2f MB comment: %.1f ms wall, %.1f ms CPU, %zu tokens\n", k / 1e6,
           (now() - t0) * 1e3, (cpu() - c0) * 1e3, ids.n);
    free(big);
    gc_ids_free(&ids);
    for (size_t i = 0; i < n; i++)
        free(tx[i].s);
    free(tx);
    gc_tokenizer_free(t);
    return 0;
}
