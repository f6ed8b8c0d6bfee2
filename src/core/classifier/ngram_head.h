/* The n-gram head: a hashed bag-of-n-grams logistic regression whose label log-probabilities
 * gemmaclf mixes with the Gemma model's (gemmaclf.json "ngram_weight"; train/ngram_head.py trains
 * it and defines the features, which this file reproduces byte for byte).
 *
 * Features of a text's bytes (after the input cap): A-Z lower-cased; "chars" = the byte 2..5-grams
 * of each whitespace-separated word with a space added on both sides; "words" = runs of bytes in
 * [0-9a-z_] or >= 0x80 of >= 2 bytes, and each pair of neighbouring runs joined by a space. Each
 * n-gram counts in bucket FNV-1a-64(kind + bytes) mod B; per part (1 + ln count) * idf, scaled to
 * unit L2 norm; log-probabilities = log_softmax(weight @ [chars; words] + bias).
 *
 * The file (ngram_head.safetensors) is read once with read(), never mapped: a file rewritten
 * later cannot fault a process that uses it (the classifier reloads on change). With a cache
 * directory the checked values are copied once into a file there (common/cache_file.h) that every
 * process maps, so backends share one copy, as they share the model's weights; without one they
 * go into memory of the head's own. */
#ifndef GC_NGRAM_HEAD_H
#define GC_NGRAM_HEAD_H

#include <stddef.h>

#include "common/error.h"

#define GC_NGRAM_HEAD_FILE "ngram_head.safetensors"
#define GC_NGRAM_FORMAT "gemmaclf-ngram-1"

typedef struct gc_ngram_head gc_ngram_head;

/* Loads path; labels[0..n_labels) must equal the file's "labels" metadata, in order.
 * cache_dir: NULL or "" = no shared copy. */
gc_status gc_ngram_head_load(const char *path, const char *const *labels, int n_labels,
                             const char *cache_dir, gc_ngram_head **out, gc_err *e);
void gc_ngram_head_free(gc_ngram_head *h);

/* Scratch for one text of up to max_len bytes (owned by the caller: gc_ngram_scratch_free). */
typedef struct gc_ngram_scratch {
    unsigned *keys;
    size_t cap;
} gc_ngram_scratch;
void gc_ngram_scratch_free(gc_ngram_scratch *s);

/* The head's label log-probabilities of text[0..len) into out[n_labels]. */
gc_status gc_ngram_head_log_probs(const gc_ngram_head *h, const char *text, size_t len,
                                  gc_ngram_scratch *s, double *out, gc_err *e);

#endif
