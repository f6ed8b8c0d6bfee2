/* Helpers shared by the model-running subcommands: options, default model, JSON lines. */
#ifndef GC_CLI_COMMON_H
#define GC_CLI_COMMON_H

#include <cJSON.h>
#include <stdio.h>

#include "classifier/classifier.h"

typedef struct cli_opts {
    const char *model_dir; /* NULL = the bundled default */
    int batch, threads, max_input_tokens, max_new;
    gc_device device;
    gc_precision precision;
} cli_opts;

/* Parses [MODEL_DIR] --batch N --threads N --device auto|cpu|cuda --precision f32|bf16|int8
 * --max-input-tokens N
 * (--max-new N when allow_max_new). Returns 0, or 2 after printing the problem. */
int cli_parse(int argc, char **argv, const char *usage, int allow_max_new, cli_opts *o);

/* Opens the classifier and a session per the options; prints the error and returns 1 on failure.
 * A precision the CPU cannot run falls back to f32 with a note on stderr. */
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
