#include "classifier/labels_config.h"

#include "classifier/prompt.h"
#include "common/file_read.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_labels[] = {"Not Hate", "Hate", "Extreme Hate"};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void gc_labels_config_free(gc_labels_config *cfg)
{
    for (int i = 0; i < cfg->n_labels; i++)
        free(cfg->labels[i]);
    free(cfg->prompt_prefix);
    memset(cfg, 0, sizeof *cfg);
}

static gc_status set_defaults(gc_labels_config *cfg, gc_err *e)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->temperature = 1.0;
    for (int i = 0; i < 3; i++) {
        if (!(cfg->labels[i] = dup_str(default_labels[i])))
            goto nomem;
        cfg->n_labels = i + 1;
    }
    if (!(cfg->prompt_prefix = dup_str(GC_DEFAULT_PROMPT_PREFIX)))
        goto nomem;
    return GC_OK;
nomem:
    gc_labels_config_free(cfg);
    return gc_fail(e, GC_ENOMEM, "out of memory");
}

static gc_status parse_labels(const cJSON *arr, gc_labels_config *cfg, gc_err *e)
{
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n < 2 || n > GC_MAX_LABELS)
        return gc_fail(e, GC_EFORMAT, "\"labels\" must be an array of 2 to %d strings",
                       GC_MAX_LABELS);
    for (int i = 0; i < cfg->n_labels; i++)
        free(cfg->labels[i]);
    cfg->n_labels = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(arr, i);
        if (!cJSON_IsString(it) || !it->valuestring[0])
            return gc_fail(e, GC_EFORMAT, "\"labels\"[%d] must be a non-empty string", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(cfg->labels[j], it->valuestring))
                return gc_fail(e, GC_EFORMAT, "label \"%s\" is listed twice", it->valuestring);
        if (!(cfg->labels[i] = dup_str(it->valuestring)))
            return gc_fail(e, GC_ENOMEM, "out of memory");
        cfg->n_labels = i + 1;
    }
    return GC_OK;
}

static gc_status parse_bias(const cJSON *obj, gc_labels_config *cfg, gc_err *e)
{
    if (!cJSON_IsObject(obj))
        return gc_fail(e, GC_EFORMAT, "\"score_bias\" must be an object {label: number}");
    for (const cJSON *it = obj->child; it; it = it->next) {
        int k = -1;
        for (int i = 0; i < cfg->n_labels; i++)
            if (!strcmp(cfg->labels[i], it->string))
                k = i;
        if (k < 0)
            return gc_fail(e, GC_EFORMAT, "\"score_bias\" names unknown label \"%s\"", it->string);
        /* 1e999 parses as Inf, which would make every probability NaN. */
        if (!cJSON_IsNumber(it) || !isfinite((float)it->valuedouble))
            return gc_fail(e, GC_EFORMAT, "\"score_bias\".\"%s\" must be a finite number",
                           it->string);
        cfg->bias[k] = (float)it->valuedouble;
    }
    return GC_OK;
}

gc_status gc_labels_config_parse(const char *json, gc_labels_config *cfg, gc_err *e)
{
    gc_status st = set_defaults(cfg, e);
    if (st)
        return st;
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        gc_labels_config_free(cfg);
        return gc_fail(e, GC_EFORMAT, "not a JSON object");
    }
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(root, "labels");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(root, "prompt_prefix");
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(root, "score_bias");
    const cJSON *temp = cJSON_GetObjectItemCaseSensitive(root, "temperature");
    const cJSON *ngram = cJSON_GetObjectItemCaseSensitive(root, "ngram_weight");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "comment_norm");
    if (labels && !cJSON_IsNull(labels))
        st = parse_labels(labels, cfg, e);
    if (!st && prefix && !cJSON_IsNull(prefix)) {
        if (!cJSON_IsString(prefix))
            st = gc_fail(e, GC_EFORMAT, "\"prompt_prefix\" must be a string");
        else {
            free(cfg->prompt_prefix);
            if (!(cfg->prompt_prefix = dup_str(prefix->valuestring)))
                st = gc_fail(e, GC_ENOMEM, "out of memory");
        }
    }
    if (!st && bias && !cJSON_IsNull(bias))
        st = parse_bias(bias, cfg, e);
    if (!st && temp && !cJSON_IsNull(temp)) {
        /* 1e999 parses as infinity: only finite positive numbers scale scores meaningfully */
        if (!cJSON_IsNumber(temp) || !isfinite(temp->valuedouble) || !(temp->valuedouble > 0))
            st = gc_fail(e, GC_EFORMAT, "\"temperature\" must be a finite number > 0");
        else
            cfg->temperature = temp->valuedouble;
    }
    if (!st && ngram && !cJSON_IsNull(ngram)) {
        if (!cJSON_IsNumber(ngram) || !(ngram->valuedouble >= 0 && ngram->valuedouble <= 1))
            st = gc_fail(e, GC_EFORMAT, "\"ngram_weight\" must be a number in [0, 1]");
        else
            cfg->ngram_weight = ngram->valuedouble;
    }
    if (!st && norm && !cJSON_IsNull(norm)) {
        if (!cJSON_IsString(norm))
            st = gc_fail(e, GC_EFORMAT, "\"comment_norm\" must be a string or null");
        else
            st = gc_comment_norm_parse(norm->valuestring, &cfg->comment_norm, e);
    }
    cJSON_Delete(root);
    if (st)
        gc_labels_config_free(cfg);
    return st;
}

gc_status gc_labels_config_load(const char *model_dir, gc_labels_config *cfg, gc_err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/gemmaclf.json", model_dir);
    char *buf;
    size_t len;
    gc_status st = gc_read_file(path, (size_t)1 << 20, &buf, &len, e);
    if (st == GC_EIO && errno == ENOENT)
        return set_defaults(cfg, e);
    if (st)
        return st;
    st = gc_labels_config_parse(buf, cfg, e);
    free(buf);
    if (st)
        gc_err_prefix(e, "%s", path);
    return st;
}
