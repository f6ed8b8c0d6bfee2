/* A Gemma 3 text checkpoint loaded from a Hugging Face model directory:
 * config.json (4.5x and 5.x layouts, or text_config of a multimodal checkpoint) and
 * model.safetensors / model.safetensors.index.json. The weights are used as F32: from one
 * shared, read-only mapping of an F32 copy in opts->cache_dir (every tensor copied or converted
 * once; the user's files are never mapped, so changing them cannot fault a user of the model),
 * or, without a cache directory, from read-only mappings of the user's files (opts->map_files:
 * F32 in place, the rest converted into memory) or all read into memory (see model.c). */
#ifndef GC_MODEL_H
#define GC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/precision.h"

#define GC_MAX_LAYERS 256

typedef struct gc_config {
    int vocab_size, hidden_size, intermediate_size;
    int n_layers, n_heads, n_kv_heads, head_dim;
    float rms_norm_eps;
    float query_pre_attn_scalar;
    float attn_softcap;       /* 0 = none */
    float final_softcap;      /* 0 = none */
    double rope_theta_global; /* full_attention layers */
    double rope_theta_local;  /* sliding_attention layers */
    double rope_scale_global; /* linear scaling factor on full layers, 1 = none */
    double rope_scale_local;  /* linear scaling factor on sliding layers, 1 = none */
    int sliding_window;
    unsigned char layer_sliding[GC_MAX_LAYERS]; /* 1 = sliding_attention */
    int tie_word_embeddings;
    int bos_token_id, pad_token_id;
    int eos_token_ids[8], n_eos;
    int max_position_embeddings;
    char dtype[16];        /* "float32", "bfloat16", "float16" as stored */
    char architecture[64]; /* e.g. Gemma3ForCausalLM */
} gc_config;

/* Per-layer weights, all F32, row-major as in safetensors ([out, in] for projections). */
typedef struct gc_layer_weights {
    const float *input_norm, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm; /* [hidden] */
    const float *q_norm, *k_norm;                                            /* [head_dim] */
    const float *wq, *wk, *wv; /* [n_heads*head_dim, hidden], [n_kv*head_dim, hidden] x2 */
    const float *wo;           /* [hidden, n_heads*head_dim] */
    const float *w_gate, *w_up; /* [intermediate, hidden] */
    const float *w_down;        /* [hidden, intermediate] */
} gc_layer_weights;

typedef struct gc_weights {
    const float *embed;      /* [vocab, hidden] */
    const float *final_norm; /* [hidden] */
    const float *lm_head;    /* [vocab, hidden]; == embed when tied */
    gc_layer_weights layers[GC_MAX_LAYERS];
} gc_weights;

typedef struct gc_model_opts {
    /* Directory of the shared F32 copies and of the bf16 / int8 copies of gc_model_lowp (a
     * server's: it must be the only writer besides other users of the same opts); NULL or
     * "" = none (the converted weights then live in private memory). */
    const char *cache_dir;
    /* Without cache_dir: 1 = use F32 tensors (and, for bf16, BF16 linear-layer tensors) in
     * place from read-only mappings of the model files (a file truncated while mapped faults
     * the process: for one-shot tools only); 0 = read every tensor into private memory. */
    int map_files;
} gc_model_opts;

typedef struct gc_model gc_model; /* opaque: owns the mappings */

gc_status gc_model_load(const char *dir, const gc_model_opts *opts, gc_model **out, gc_err *e);
void gc_model_free(gc_model *m);
const gc_config *gc_model_config(const gc_model *m);
const gc_weights *gc_model_weights(const gc_model *m);
const char *gc_model_dir(const gc_model *m);
size_t gc_model_param_count(const gc_model *m);
size_t gc_model_weight_bytes(const gc_model *m); /* bytes of F32 weights in use */
/* 1 when config.json, the shard index or a weights file is not the file it was loaded from
 * (replaced, written, truncated, touched, created or removed): a few stat() calls. */
int gc_model_files_changed(const gc_model *m);
/* The safetensors files the weights came from (full paths), for the content fingerprint. */
int gc_model_weight_file_count(const gc_model *m);
const char *gc_model_weight_file(const gc_model *m, int i);

/* The bf16 or int8 copy of the model's linear layers (lowp_weights.h), built on the first call
 * for that precision (into cache_dir when the model was loaded with one) and owned by the
 * model. Thread-safe. */
typedef struct gc_lowp_weights gc_lowp_weights;
gc_status gc_model_lowp(const gc_model *m, gc_precision p, const gc_lowp_weights **out,
                        gc_err *e);

/* Parse config.json text alone (used by gc_model_load and by tests). */
gc_status gc_config_parse(const char *json, size_t len, gc_config *cfg, gc_err *e);

#endif
