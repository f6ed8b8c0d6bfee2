/* Helpers shared by the model-running subcommands: options, default model, JSON lines. */
#ifndef GC_CLI_COMMON_H
#define GC_CLI_COMMON_H

#include <cJSON.h>
#include <stdio.h>

#include "classifier/classifier.h"

typedef struct cli_opts {
    const char *model_dir; /* NULL = the bundled default */
    const char *cache_dir; /* --cache-dir: weights copied there as F32 (see gc_model_opts) */
    int batch, threads, max_input_tokens, max_new;
    gc_device device;
    gc_precision precision;     /* --precision f32|bf16|int8 (the CPU engine's linear layers) */
    int cuda_device;            /* --cuda-device N (default 0) */
    const char *cuda_precision; /* --cuda-precision f32|tf32|bf16; NULL: the environment */
} cli_opts;

/* The CUDA precision: name (--cuda-precision), else $GEMMACLF_CUDA_PRECISION, else f32.
 * Returns 0, or 2 after printing the problem. */
int cli_cuda_precision(const char *name, int *out);

/* gc_ctx_opts.notice for the command line: the message on stderr. */
void cli_notice(void *arg, const char *msg);

/* Parses [MODEL_DIR] --batch N --threads N --device auto|cpu|cuda --precision f32|bf16|int8
 * --cuda-device N --cuda-precision f32|tf32|bf16 --max-input-tokens N --cache-dir DIR
 * (--max-new N when allow_max_new). Returns 0, or 2 after printing the problem. */
int cli_parse(int argc, char **argv, const char *usage, int allow_max_new, cli_opts *o);

/* Opens the classifier and a session per the options; prints the error and returns 1 on failure.
 * Without --cache-dir the model files are mapped (F32 used in place): a one-shot process, so a
 * file truncated meanwhile can fault only this process; with it, they are read into the shared
 * F32 copy in DIR and never mapped, as the server does. A precision the CPU cannot run falls
 * back to f32 with a note on stderr. */
int cli_open(const cli_opts *o, gc_classifier **c, gc_session **s);

/* cli_parse, then cli_open: 0 with *c and *s open, else the exit code (2: usage, 1: open). */
int cli_start(int argc, char **argv, const char *usage, int allow_max_new, cli_opts *o,
              gc_classifier **c, gc_session **s);

/* Prints o as one JSON line on stdout and frees it. */
void cli_print_json_line(cJSON *o);

/* One input line -> malloc'd UTF-8 text: a JSON string, or an object's "text" field.
 * Returns NULL (and sets *why) when the line is neither. */
char *cli_line_text(const char *line, const char **why);

#endif
