/* Comment classification by label scoring.
 *
 * A gc_classifier (read-only once opened, shareable by threads and forked processes) holds the
 * model, the tokenizer and the label configuration (gemmaclf.json). A gc_session holds what a
 * caller mutates: the forward context (threads, device, interrupt callback), the cached key/values
 * of the prompt ids that every comment shares, scratch buffers.
 *
 * Scoring: each label is a continuation of the chat prompt (its plain token ids). When the
 * labels' first tokens differ, one forward pass over the prompt gives the logits of those first
 * tokens at the last position; otherwise the log-probabilities of each label's full token sequence
 * followed by <end_of_turn> (what generation would produce) are summed. probabilities =
 * softmax((score + bias) / temperature) over the labels (bias and temperature from gemmaclf.json;
 * the temperature calibrates the probabilities and never moves the arg-max), so they sum to 1,
 * and the label is the arg-max — what greedy generation answers when it produces a label.
 *
 * Truncation: the comment's tokens are capped at max_input_tokens (the first ones are kept), and
 * so that the prompt fits the model's max_position_embeddings; the chat markers before and after
 * the comment are always kept. Texts are cut to
 * max(4096, 64 * max_input_tokens) bytes before tokenizing so that huge inputs cost little.
 * Invalid UTF-8 bytes are replaced by U+FFFD. Results never depend on the other texts of a batch. */
#ifndef GC_CLASSIFIER_H
#define GC_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/gemma3.h"
#include "classifier/labels_config.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#define GC_DEFAULT_MAX_INPUT_TOKENS 512
#define GC_DEFAULT_BATCH_SIZE 64

typedef struct gc_classifier_opts {
    const char *cache_dir; /* gc_model_opts.cache_dir: shared F32 copies; NULL = none */
    int map_files;         /* gc_model_opts.map_files (without cache_dir) */
} gc_classifier_opts;

typedef struct gc_classifier gc_classifier;

gc_status gc_classifier_open(const char *model_dir, const gc_classifier_opts *opts,
                             gc_classifier **out, gc_err *e);
void gc_classifier_free(gc_classifier *c);
/* 1 when any file the classifier was loaded from (config, weights, shard index, tokenizer,
 * tokenizer config, label config) has changed on disk since, appeared or disappeared: a server
 * then loads the directory again. Costs one stat() per file. */
int gc_classifier_files_changed(const gc_classifier *c);

int gc_classifier_n_labels(const gc_classifier *c);
const char *gc_classifier_label(const gc_classifier *c, int i);
const gc_labels_config *gc_classifier_labels_config(const gc_classifier *c);
const gc_model *gc_classifier_model(const gc_classifier *c);
const gc_tokenizer *gc_classifier_tokenizer(const gc_classifier *c);
const char *gc_classifier_dir(const gc_classifier *c);
double gc_classifier_load_ms(const gc_classifier *c); /* wall time of gc_classifier_open */
/* sha256 over the model's files (64 hex digits; classifier/fingerprint.h), computed on the
 * first call and kept; NULL with e set when a file cannot be read. Not thread-safe. */
const char *gc_classifier_fingerprint(const gc_classifier *c, gc_err *e);
int gc_classifier_first_token_scoring(const gc_classifier *c); /* 1: one pass, first tokens */
int gc_classifier_shared_prefix_len(const gc_classifier *c);  /* ids cached per session */
/* Token ids scored for label i: its plain encoding (+ <end_of_turn> in sequence scoring). */
const int32_t *gc_classifier_label_ids(const gc_classifier *c, int i, int *n);

/* Stop ids for generation: config eos ids, the tokenizer's eos and <end_of_turn>. */
int gc_classifier_stop_ids(const gc_classifier *c, int32_t *ids, int cap);

typedef struct gc_session_opts {
    gc_ctx_opts ctx;
    int batch_size;       /* texts per forward pass; <= 0 = GC_DEFAULT_BATCH_SIZE */
    int max_input_tokens; /* comment tokens kept; <= 0 = GC_DEFAULT_MAX_INPUT_TOKENS */
} gc_session_opts;

typedef struct gc_session gc_session;

gc_status gc_session_new(const gc_classifier *c, const gc_session_opts *opts, gc_session **out,
                         gc_err *e);
void gc_session_free(gc_session *s);
gc_ctx *gc_session_ctx(gc_session *s);
void gc_session_set_limits(gc_session *s, int batch_size, int max_input_tokens);

/* The prompt ids of one comment, truncated as described above (appended to out). */
gc_status gc_session_prompt(gc_session *s, const char *text, size_t len, gc_ids *out, gc_err *e);

/* Classifies n texts (lens[i] bytes each; lens may be NULL for NUL-terminated texts).
 * probs: [n][n_labels] caller-owned; labels (optional): [n] arg-max label indices.
 * GC_ENUMERIC when the model computes a NaN or infinite score (broken weights): then no
 * label is given for any text of the call. */
gc_status gc_classify(gc_session *s, int n, const char *const *texts, const size_t *lens,
                      float *probs, int *labels, gc_err *e);

#endif
