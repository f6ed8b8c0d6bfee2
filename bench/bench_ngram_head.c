/* The n-gram head's cost per comment (not a test): features + logistic regression, no model.
 *   make build/bench/bench_ngram_head
 *   build/bench/bench_ngram_head HEAD.safetensors TEXTS.txt [REPEAT]
 * TEXTS.txt: one comment per line (the labels are the bundled model's). Prints microseconds per
 * comment over REPEAT (default 20) passes, and a checksum of the log-probabilities. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier/ngram_head.h"

int main(int argc, char **argv)
{
    static const char *const labels[3] = {"Not Hate", "Hate", "Extreme Hate"};
    if (argc < 3) {
        fprintf(stderr, "usage: %s HEAD.safetensors TEXTS.txt [REPEAT]\n", argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 20;
    gc_ngram_head *h = NULL;
    gc_err e = {0};
    FILE *f = fopen(argv[2], "r");
    if (!f || gc_ngram_head_load(argv[1], labels, 3, NULL, &h, &e)) {
        fprintf(stderr, "%s\n", f ? e.msg : "cannot open the texts");
        return 1;
    }
    char **lines = NULL, *l = NULL;
    size_t n = 0, cap = 0;
    ssize_t r;
    while ((r = getline(&l, &cap, f)) > 0) {
        l[strcspn(l, "\n")] = 0;
        lines = realloc(lines, (n + 1) * sizeof *lines);
        lines[n++] = strdup(l);
    }
    fclose(f);
    gc_ngram_scratch s = {0};
    double out[3], sum = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int k = 0; k < reps; k++)
        for (size_t i = 0; i < n; i++) {
            gc_ngram_head_log_probs(h, lines[i], strlen(lines[i]), &s, out, &e);
            sum += out[0];
        }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / ((double)reps * n);
    printf("%zu comments x %d: %.2f us per comment (checksum %.3f)\n", n, reps, us, sum);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(l);
    gc_ngram_scratch_free(&s);
    gc_ngram_head_free(h);
    return 0;
}
