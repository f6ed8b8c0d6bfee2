/* The model description as JSON (see model_info.h). */
#include <cJSON.h>
#include <math.h>

#include "classifier/model_info.h"
#include "model/blas_core.h"

static const char *device_name(gc_device d) { return d == GC_DEVICE_CUDA ? "cuda" : "cpu"; }

static void add_model_facts(cJSON *j, const gc_classifier *c, const char *fp)
{
    const gc_model *m = gc_classifier_model(c);
    const gc_config *cfg = gc_model_config(m);
    cJSON_AddStringToObject(j, "architecture", cfg->architecture);
    cJSON_AddNumberToObject(j, "parameters", (double)gc_model_param_count(m));
    cJSON_AddStringToObject(j, "dtype", cfg->dtype);
    cJSON_AddNumberToObject(j, "weight_bytes", (double)gc_model_weight_bytes(m));
    cJSON_AddNumberToObject(j, "layers", cfg->n_layers);
    cJSON_AddNumberToObject(j, "hidden_size", cfg->hidden_size);
    cJSON_AddNumberToObject(j, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(j, "tokenizer_vocab_size",
                            gc_tokenizer_vocab_size(gc_classifier_tokenizer(c)));
    cJSON_AddStringToObject(j, "fingerprint", fp);
}

static void add_labels(cJSON *j, const gc_classifier *c)
{
    const gc_labels_config *lc = gc_classifier_labels_config(c);
    cJSON *labels = cJSON_AddArrayToObject(j, "labels");
    cJSON *label_ids = cJSON_AddObjectToObject(j, "label_token_ids");
    for (int l = 0; l < lc->n_labels && labels && label_ids; l++) {
        int n;
        const int32_t *ids = gc_classifier_label_ids(c, l, &n);
        cJSON_AddItemToArray(labels, cJSON_CreateString(lc->labels[l]));
        cJSON *a = cJSON_AddArrayToObject(label_ids, lc->labels[l]);
        for (int k = 0; k < n && a; k++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[k]));
    }
    cJSON_AddStringToObject(j, "prompt_prefix", lc->prompt_prefix);
    cJSON_AddStringToObject(j, "scoring",
                            gc_classifier_first_token_scoring(c) ? "first_token" : "sequence");
    cJSON_AddNumberToObject(j, "cached_prefix_tokens", gc_classifier_shared_prefix_len(c));
    cJSON_AddNumberToObject(j, "ngram_weight", lc->ngram_weight);
    const char *norm = gc_comment_norm_name(lc->comment_norm);
    if (norm)
        cJSON_AddStringToObject(j, "comment_norm", norm);
    else
        cJSON_AddNullToObject(j, "comment_norm");
}

static void add_runtime(cJSON *j, const gc_classifier *c, const gc_model_info_runtime *rt)
{
    cJSON_AddStringToObject(j, "device", device_name(rt->device));
    cJSON_AddStringToObject(j, "precision", gc_precision_name(rt->precision));
    cJSON_AddNumberToObject(j, "threads", rt->threads);
    cJSON_AddStringToObject(j, "blas_core", gc_blas_core());
    cJSON_AddNumberToObject(j, "load_ms", round(gc_classifier_load_ms(c) * 10) / 10);
    cJSON_AddBoolToObject(j, "preloaded", rt->preloaded != 0);
    cJSON_AddNumberToObject(j, "max_input_tokens", rt->max_input_tokens);
    cJSON_AddNumberToObject(j, "batch_size", rt->batch_size);
}

char *gc_model_info_json(const gc_classifier *c, const gc_model_info_runtime *rt, int compact,
                         gc_err *e)
{
    const char *fp = gc_classifier_fingerprint(c, e);
    if (!fp)
        return NULL;
    cJSON *j = cJSON_CreateObject();
    char *out = NULL;
    if (j) {
        cJSON_AddStringToObject(j, "model_path",
                                rt->model_path ? rt->model_path : gc_classifier_dir(c));
        add_model_facts(j, c, fp);
        add_labels(j, c);
        add_runtime(j, c, rt);
        /* cJSON leaves out what it could not allocate; print only a complete object. */
        if (cJSON_GetArraySize(j) == GC_MODEL_INFO_KEYS)
            out = compact ? cJSON_PrintUnformatted(j) : cJSON_Print(j);
        cJSON_Delete(j);
    }
    if (!out)
        gc_fail(e, GC_ENOMEM, "out of memory describing the model");
    return out;
}
