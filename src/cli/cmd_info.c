/* gemmaclf info: what a model directory holds, as JSON. */
#include <cJSON.h>
#include <stdlib.h>

#include "cli_common.h"
#include "commands.h"

static const char *device_name(gc_device d)
{
    return d == GC_DEVICE_CUDA ? "cuda" : d == GC_DEVICE_CPU ? "cpu" : "auto";
}

static int run(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse(argc, argv, gc_cmd_info.usage, 0, &o);
    if (rc)
        return rc;
    gc_classifier *c;
    gc_session *s;
    if (cli_open(&o, &c, &s))
        return 1;
    const gc_model *m = gc_classifier_model(c);
    const gc_config *cfg = gc_model_config(m);
    const gc_labels_config *lc = gc_classifier_labels_config(c);
    cJSON *j = cJSON_CreateObject(), *labels = cJSON_CreateArray(), *lids = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model_path", gc_classifier_dir(c));
    cJSON_AddStringToObject(j, "architecture", cfg->architecture);
    cJSON_AddNumberToObject(j, "parameters", (double)gc_model_param_count(m));
    cJSON_AddStringToObject(j, "dtype", cfg->dtype);
    cJSON_AddNumberToObject(j, "weight_bytes", (double)gc_model_weight_bytes(m));
    cJSON_AddNumberToObject(j, "layers", cfg->n_layers);
    cJSON_AddNumberToObject(j, "hidden_size", cfg->hidden_size);
    cJSON_AddNumberToObject(j, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(j, "tokenizer_vocab_size",
                            gc_tokenizer_vocab_size(gc_classifier_tokenizer(c)));
    for (int l = 0; l < lc->n_labels; l++) {
        int n;
        const int32_t *ids = gc_classifier_label_ids(c, l, &n);
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(labels, cJSON_CreateString(lc->labels[l]));
        for (int k = 0; k < n; k++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[k]));
        cJSON_AddItemToObject(lids, lc->labels[l], a);
    }
    cJSON_AddItemToObject(j, "labels", labels);
    cJSON_AddItemToObject(j, "label_token_ids", lids);
    cJSON_AddStringToObject(j, "prompt_prefix", lc->prompt_prefix);
    cJSON_AddStringToObject(j, "scoring", gc_classifier_first_token_scoring(c) ? "first_token"
                                                                               : "sequence");
    cJSON_AddNumberToObject(j, "cached_prefix_tokens", gc_classifier_shared_prefix_len(c));
    cJSON_AddStringToObject(j, "device", device_name(gc_ctx_device(gc_session_ctx(s))));
    cJSON_AddNumberToObject(j, "load_ms", gc_classifier_load_ms(c));
    char *out = cJSON_Print(j);
    if (out)
        puts(out);
    free(out);
    cJSON_Delete(j);
    gc_session_free(s);
    gc_classifier_free(c);
    return 0;
}

const gc_command gc_cmd_info = {"info", "[MODEL_DIR] [--device auto|cpu|cuda]",
                                "print what the model directory holds (JSON)", run};
