/* gemmaclf info: what a model directory holds, as JSON. */
#include <stdio.h>
#include <stdlib.h>

#include "cli_common.h"
#include "classifier/model_info.h"
#include "commands.h"

static int run(int argc, char **argv)
{
    cli_opts o;
    gc_classifier *c;
    gc_session *s;
    int rc = cli_start(argc, argv, gc_cmd_info.usage, 0, &o, &c, &s);
    if (rc)
        return rc;
    gc_model_info_runtime rt = {
        .device = gc_ctx_device(gc_session_ctx(s)),
        .precision = gc_ctx_precision(gc_session_ctx(s), NULL),
        .threads = o.threads,
        .max_input_tokens = o.max_input_tokens > 0 ? o.max_input_tokens
                                                   : GC_DEFAULT_MAX_INPUT_TOKENS,
        .batch_size = o.batch > 0 ? o.batch : GC_DEFAULT_BATCH_SIZE,
    };
    gc_err e = {0};
    char *out = gc_model_info_json(c, &rt, 0, &e);
    if (out)
        puts(out);
    else
        fprintf(stderr, "gemmaclf: %s\n", e.msg);
    free(out);
    gc_session_free(s);
    gc_classifier_free(c);
    return out ? 0 : 1;
}

const gc_command gc_cmd_info = {"info", "[MODEL_DIR] [--device auto|cpu|cuda] [--precision f32|bf16|int8] [--cuda-device N] [--cuda-precision f32|tf32|bf16]",
                                "print what the model directory holds (JSON)", run};
