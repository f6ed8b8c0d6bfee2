/* The model description, written once for gemmaclf_model_info() (SQL) and `gemmaclf info`
 * (CLI), so both show the same keys. */
#ifndef GC_MODEL_INFO_H
#define GC_MODEL_INFO_H

#include "classifier/classifier.h"

/* What only the caller knows: how it opened the classifier and runs it. */
typedef struct gc_model_info_runtime {
    const char *model_path; /* as the user named it; NULL: the classifier's directory */
    gc_device device;       /* where the caller's session runs (resolved: cpu or cuda) */
    gc_precision precision; /* what its CPU engine runs (gc_ctx_precision) */
    int threads;            /* BLAS threads per session (0: the BLAS library's default) */
    int preloaded;          /* 1 when loaded before fork (PostgreSQL shared_preload_libraries) */
    int max_input_tokens;   /* comment tokens kept per text */
    int batch_size;         /* texts per forward pass */
} gc_model_info_runtime;

/* The number of keys gc_model_info_json prints (test_classifier lists them): adding a key means
 * raising it, so that an object cJSON could not complete is never printed. */
#define GC_MODEL_INFO_KEYS 25

/* A JSON object, malloc'd and NUL-terminated (UTF-8; the caller frees it), with the keys
 *   model_path, architecture, parameters, dtype, weight_bytes, layers, hidden_size,
 *   vocab_size, tokenizer_vocab_size, fingerprint (sha256 over the model's files, 64 hex
 *   digits: classifier/fingerprint.h), labels (array), label_token_ids (label -> ids),
 *   prompt_prefix, scoring ("first_token" | "sequence"), cached_prefix_tokens, ngram_weight
 *   (the n-gram head's weight in gemmaclf.json, 0 = none), comment_norm (the rewrite of
 *   comments gemmaclf.json names: "squeeze", or null),
 *   device ("cpu" | "cuda"), precision ("f32" | "bf16" | "int8"), threads, blas_core (the
 *   kernels OpenBLAS chose: model/blas_core.h), load_ms (0.1 ms steps), preloaded (boolean),
 *   max_input_tokens, batch_size.
 * compact: one line (for a SQL value) instead of indented (for a terminal). Returns NULL
 * with e set when out of memory. */
char *gc_model_info_json(const gc_classifier *c, const gc_model_info_runtime *rt, int compact,
                         gc_err *e);

#endif
