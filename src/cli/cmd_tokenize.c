/* bin/gemmaclf tokenize: JSON lines in, JSON lines out, for comparing with Hugging Face
 * tokenizers. Each input line is a JSON string; each output line the JSON array of ids of
 * Tokenizer.encode(text, add_special_tokens=False) (--add-special: True; --plain: special
 * tokens are not recognised, i.e. encode_special_tokens=True; --chat PREFIX: the Gemma chat
 * prompt of the comment). --decode reads arrays of ids and writes JSON strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "commands.h"
#include "common/json_string.h"
#include "classifier/prompt.h"
#include "tokenizer/tokenizer.h"

static int encode_line(const gc_tokenizer *t, const char *line, size_t n, int flags,
                       const char *chat, gc_ids *ids, FILE *out, gc_err *e)
{
    char *text;
    size_t len, used;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (gc_json_parse_string(line, n, &used, &text, &len, e) != GC_OK)
        return 0;
    if (used != n) {
        free(text);
        gc_fail(e, GC_EINVAL, "each line must be one JSON string");
        return 0;
    }
    ids->n = 0;
    gc_status st = chat ? gc_prompt_encode(t, chat, text, len, ids, e)
                        : gc_tokenizer_encode(t, text, len, flags, ids, e);
    free(text);
    if (st != GC_OK)
        return 0;
    fputc('[', out);
    for (size_t i = 0; i < ids->n; i++)
        fprintf(out, i ? ", %d" : "%d", ids->v[i]);
    fputs("]\n", out);
    return 1;
}

static int decode_line(const gc_tokenizer *t, const char *line, int skip, gc_ids *ids,
                       FILE *out, gc_err *e)
{
    cJSON *j = cJSON_Parse(line), *it;
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        gc_fail(e, GC_EINVAL, "each line must be a JSON array of ids");
        return 0;
    }
    ids->n = 0;
    int ok = 1;
    cJSON_ArrayForEach(it, j)
    {
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int32_t)it->valuedouble) {
            gc_fail(e, GC_EINVAL, "ids must be integers");
            ok = 0;
            break;
        }
        if (gc_ids_push(ids, (int32_t)it->valuedouble, e) != GC_OK) {
            ok = 0;
            break;
        }
    }
    cJSON_Delete(j);
    char *text = NULL, *q = NULL;
    size_t len, qlen;
    if (!ok || gc_tokenizer_decode(t, ids->v, ids->n, skip, &text, &len, e) != GC_OK ||
        gc_json_quote(text, len, &q, &qlen, e) != GC_OK) {
        free(text);
        return 0;
    }
    fwrite(q, 1, qlen, out);
    fputc('\n', out);
    free(text);
    free(q);
    return 1;
}

static int run(int argc, char **argv)
{
    const char *dir = NULL, *chat = NULL;
    int flags = 0, decode = 0, skip = 0, timing = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--plain"))
            flags |= GC_TOK_PLAIN;
        else if (!strcmp(argv[i], "--add-special"))
            flags |= GC_TOK_ADD_SPECIAL;
        else if (!strcmp(argv[i], "--decode"))
            decode = 1;
        else if (!strcmp(argv[i], "--skip-special"))
            skip = 1;
        else if (!strcmp(argv[i], "--time"))
            timing = 1;
        else if (!strcmp(argv[i], "--chat") && i + 1 < argc)
            chat = argv[++i];
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fprintf(stderr, "tokenize: unknown argument '%s'\nusage: gemmaclf tokenize %s\n",
                    argv[i], gc_cmd_tokenize.usage);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: gemmaclf tokenize %s\n", gc_cmd_tokenize.usage);
        return 2;
    }
    gc_err e = {0};
    gc_tokenizer *t;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (gc_tokenizer_load(dir, &t, &e) != GC_OK) {
        fprintf(stderr, "tokenize: %s\n", e.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (timing)
        fprintf(stderr, "tokenize: loaded in %.1f ms\n",
                (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    gc_ids ids = {0};
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        int ok = decode ? decode_line(t, line, skip, &ids, stdout, &e)
                        : encode_line(t, line, (size_t)n, flags, chat, &ids, stdout, &e);
        if (!ok) {
            fprintf(stderr, "tokenize: line %zu: %s\n", lineno, e.msg);
            rc = 1;
            break;
        }
    }
    free(line);
    gc_ids_free(&ids);
    gc_tokenizer_free(t);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

const gc_command gc_cmd_tokenize = {
    "tokenize",
    "MODEL_DIR [--plain] [--add-special] [--chat PREFIX] [--decode [--skip-special]] [--time]",
    "JSON-string lines on stdin -> JSON id arrays (HF Tokenizer.encode), or back with --decode",
    run,
};
