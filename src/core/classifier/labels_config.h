/* gemmaclf.json beside a model: which labels the classifier scores, the prompt prefix and
 * per-label score biases, the temperature of the probabilities, the weight of the n-gram head and the rewrite of
 * comments the model expects (classifier/comment_norm.h). Absent file = the defaults of the seed's hate-speech classifier
 * (its prompt prefix: GC_DEFAULT_PROMPT_PREFIX in classifier/prompt.h). */
#ifndef GC_LABELS_CONFIG_H
#define GC_LABELS_CONFIG_H

#include "classifier/comment_norm.h"
#include "common/error.h"

#define GC_MAX_LABELS 32

typedef struct gc_labels_config {
    int n_labels;
    char *labels[GC_MAX_LABELS]; /* malloc'd, UTF-8, distinct, non-empty */
    float bias[GC_MAX_LABELS];   /* added to the label's log-score before the softmax */
    double temperature;          /* probabilities = softmax((score + bias) / temperature); finite,
                                  * > 0, default 1; it never changes the arg-max label */
    char *prompt_prefix;         /* malloc'd */
    double ngram_weight;         /* > 0: scores = (1 - w) log_softmax(model scores) + w n-gram head
                                  * log-probabilities (classifier/ngram_head.h); in [0, 1], default 0 */
    gc_comment_norm comment_norm; /* the rewrite of each comment the model was trained on */
} gc_labels_config;

/* Reads <model_dir>/gemmaclf.json when present, else fills the defaults. */
gc_status gc_labels_config_load(const char *model_dir, gc_labels_config *cfg, gc_err *e);
/* Parses gemmaclf.json text (fields all optional). */
gc_status gc_labels_config_parse(const char *json, gc_labels_config *cfg, gc_err *e);
void gc_labels_config_free(gc_labels_config *cfg);

#endif
