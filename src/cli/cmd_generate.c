/* gemmaclf generate: what the seed's transformers pipeline prints — greedy generation from the
 * classification prompt, stopped at <end_of_turn>/eos, decoded without special tokens, stripped. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "common/utf8.h"
#include "commands.h"

static void print_json(const char *key, const char *val)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, key, val);
    cli_print_json_line(o);
}

/* Generates for one text; returns 0, or 1 after printing the error. */
static int generate_one(gc_classifier *c, gc_session *s, const cli_opts *o, const char *text)
{
    gc_ids prompt = {0};
    gc_err e = {0};
    int32_t stop[16], *out = malloc((size_t)o->max_new * sizeof *out);
    int n_stop = gc_classifier_stop_ids(c, stop, 16), n_out = 0, rc = 1;
    char *dec = NULL;
    size_t dlen;
    if (!out)
        gc_fail(&e, GC_ENOMEM, "out of memory");
    else if (!gc_session_prompt(s, text, strlen(text), &prompt, &e) &&
             !gc_generate_greedy(gc_session_ctx(s), prompt.v, (int)prompt.n, o->max_new, stop,
                                 n_stop, out, &n_out, &e) &&
             !gc_tokenizer_decode(gc_classifier_tokenizer(c), out, (size_t)n_out, 1, &dec, &dlen,
                                  &e)) {
        /* What Python's str.strip() leaves of the decoded text (as the reference scripts). */
        size_t a, b;
        gc_utf8_trim(dec, dlen, gc_python_is_space, 1, 1, &a, &b);
        dec[b] = '\0';
        print_json("generated", dec + a);
        rc = 0;
    }
    if (rc) {
        fprintf(stderr, "gemmaclf: %s\n", e.msg);
        print_json("error", e.msg);
    }
    free(dec);
    free(out);
    gc_ids_free(&prompt);
    return rc;
}

static int run(int argc, char **argv)
{
    cli_opts o;
    gc_classifier *c;
    gc_session *s;
    int rc = cli_start(argc, argv, gc_cmd_generate.usage, 1, &o, &c, &s);
    if (rc)
        return rc;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) >= 0) {
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        const char *why = NULL;
        char *text = cli_line_text(line, &why);
        if (!text) {
            print_json("error", why);
            rc = 1;
            continue;
        }
        rc |= generate_one(c, s, &o, text);
        free(text);
        fflush(stdout);
    }
    free(line);
    gc_session_free(s);
    gc_classifier_free(c);
    return rc;
}

const gc_command gc_cmd_generate = {
    "generate", "[MODEL_DIR] [--max-new N] [--threads N (default 1; 0 = OpenBLAS default)] [--device auto|cpu|cuda] [--precision f32|bf16|int8] [--cuda-device N] [--cuda-precision f32|tf32|bf16]",
    "read JSON lines, print {\"generated\": ...}: greedy generation from the classification "
    "prompt (default 8 new tokens), as the transformers pipeline prints it",
    run};
