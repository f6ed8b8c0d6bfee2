/* gemmaclf classify: JSON lines in, {"label": ..., "scores": {...}} lines out. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"

/* Probabilities with 6 significant digits: the float's noise digits say nothing. */
static double six_digits(float x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", (double)x);
    return strtod(buf, NULL);
}

static void print_result(const gc_classifier *c, const float *p, int label)
{
    cJSON *o = cJSON_CreateObject(), *sc = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "label", gc_classifier_label(c, label));
    for (int l = 0; l < gc_classifier_n_labels(c); l++)
        cJSON_AddNumberToObject(sc, gc_classifier_label(c, l), six_digits(p[l]));
    cJSON_AddItemToObject(o, "scores", sc);
    cli_print_json_line(o);
}

static void print_error(const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    cli_print_json_line(o);
}

/* Classifies the pending texts (NULL entries are lines that did not parse) and prints in order.
 * Returns 0, 1 when some line was bad (an {"error"} line was printed), 2 when classification
 * failed, 3 when it failed because the model computes non-finite scores. */
static int flush(gc_session *s, const gc_classifier *c, char **texts, const char **why, int n)
{
    int L = gc_classifier_n_labels(c), rc = 0, m = 0;
    const char **ok = malloc((size_t)n * sizeof *ok);
    float *probs = malloc((size_t)n * L * sizeof *probs);
    int *labels = malloc((size_t)n * sizeof *labels);
    gc_err e = {0};
    if (!ok || !probs || !labels) {
        fprintf(stderr, "gemmaclf: out of memory\n");
        rc = 2;
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (texts[i])
            ok[m++] = texts[i];
    gc_status st = gc_classify(s, m, ok, NULL, probs, labels, &e);
    if (st) {
        fprintf(stderr, "gemmaclf: %s\n", e.msg);
        rc = st == GC_ENUMERIC ? 3 : 2; /* 3: broken weights, not a bad input */
        goto done;
    }
    for (int i = 0, k = 0; i < n; i++) {
        if (texts[i]) {
            print_result(c, probs + (size_t)k * L, labels[k]);
            k++;
        } else {
            print_error(why[i]);
            rc = 1;
        }
    }
done:
    free(ok);
    free(probs);
    free(labels);
    return rc;
}

static int run(int argc, char **argv)
{
    cli_opts o;
    gc_classifier *c;
    gc_session *s;
    int rc = cli_start(argc, argv, gc_cmd_classify.usage, 0, &o, &c, &s);
    if (rc)
        return rc;
    char **texts = calloc((size_t)o.batch, sizeof *texts);
    const char **why = calloc((size_t)o.batch, sizeof *why);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, fatal = 0;
    while (!fatal && texts && why && getline(&line, &cap, stdin) >= 0) {
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        texts[n] = cli_line_text(line, &why[n]);
        if (++n == o.batch) {
            int r = flush(s, c, texts, why, n);
            fatal = r >= 2;
            rc = r == 3 ? 3 : rc | (r ? 1 : 0);
            for (int i = 0; i < n; i++)
                free(texts[i]), texts[i] = NULL;
            n = 0;
            fflush(stdout);
        }
    }
    if (n && !fatal) {
        int r = flush(s, c, texts, why, n);
        rc = r == 3 ? 3 : rc | (r ? 1 : 0);
    }
    for (int i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(why);
    free(line);
    gc_session_free(s);
    gc_classifier_free(c);
    return rc;
}

const gc_command gc_cmd_classify = {
    "classify", "[MODEL_DIR] [--batch N] [--threads N (default 1; 0 = OpenBLAS default)] [--device auto|cpu|cuda] [--precision f32|bf16|int8] [--cuda-device N] [--cuda-precision f32|tf32|bf16] [--max-input-tokens N] [--cache-dir DIR]",
    "read JSON lines (strings, or objects with \"text\"), print {\"label\", \"scores\"} per line "
    "(default model: $GEMMACLF_MODEL or the bundled one); exit status 1 on errors, 3 when the model "
    "computes NaN/Inf scores (broken weights)",
    run};
