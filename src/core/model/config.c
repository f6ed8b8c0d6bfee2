/* config.json -> gc_config. Accepts what transformers writes for Gemma 3 text models:
 *   4.5x: rope_theta, rope_local_base_freq, rope_scaling {rope_type, factor} (global layers only),
 *         sliding_window_pattern or layer_types, torch_dtype;
 *   5.x:  rope_parameters {full_attention: {...}, sliding_attention: {...}}, dtype;
 * and the text_config of a multimodal Gemma3ForConditionalGeneration checkpoint.
 * Absent keys take Gemma3TextConfig's defaults. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* Reads an integer key: absent or null keeps *v; anything but an integral number is an error. */
static gc_status get_int(const cJSON *o, const char *k, int *v, gc_err *e)
{
    const cJSON *j = get(o, k);
    if (!j || cJSON_IsNull(j))
        return GC_OK;
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(long long)j->valuedouble ||
        fabs(j->valuedouble) > 2147483647.0)
        return gc_fail(e, GC_EFORMAT, "config: '%s' must be an integer", k);
    *v = (int)j->valuedouble;
    return GC_OK;
}

static gc_status get_num(const cJSON *o, const char *k, double *v, gc_err *e)
{
    const cJSON *j = get(o, k);
    if (!j || cJSON_IsNull(j))
        return GC_OK;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return gc_fail(e, GC_EFORMAT, "config: '%s' must be a number", k);
    *v = j->valuedouble;
    return GC_OK;
}

static gc_status get_bool(const cJSON *o, const char *k, int *v, gc_err *e)
{
    const cJSON *j = get(o, k);
    if (!j || cJSON_IsNull(j))
        return GC_OK;
    if (!cJSON_IsBool(j))
        return gc_fail(e, GC_EFORMAT, "config: '%s' must be true or false", k);
    *v = cJSON_IsTrue(j);
    return GC_OK;
}

/* One rope description {rope_type|type, rope_theta?, factor?}: only default and linear. */
static gc_status parse_rope(const cJSON *r, const char *what, double *theta, double *scale,
                            gc_err *e)
{
    if (!r || cJSON_IsNull(r))
        return GC_OK;
    if (!cJSON_IsObject(r))
        return gc_fail(e, GC_EFORMAT, "config: %s must be an object", what);
    const cJSON *t = get(r, "rope_type");
    if (!t)
        t = get(r, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : "default";
    if (t && !cJSON_IsString(t))
        return gc_fail(e, GC_EFORMAT, "config: %s.rope_type must be a string", what);
    gc_status st = get_num(r, "rope_theta", theta, e);
    if (st)
        return st;
    if (!strcmp(type, "default")) {
        *scale = 1.0;
    } else if (!strcmp(type, "linear")) {
        double f = 1.0;
        if ((st = get_num(r, "factor", &f, e)))
            return st;
        if (!(f > 0))
            return gc_fail(e, GC_EFORMAT, "config: %s.factor must be positive", what);
        *scale = f;
    } else {
        return gc_fail(e, GC_EUNSUPPORTED,
                       "config: %s: rope_type '%s' is not supported (only default and linear)",
                       what, type);
    }
    return GC_OK;
}

static gc_status parse_eos(const cJSON *j, gc_config *c, gc_err *e)
{
    if (!j || cJSON_IsNull(j))
        return GC_OK;
    c->n_eos = 0;
    if (cJSON_IsNumber(j)) {
        c->eos_token_ids[c->n_eos++] = (int)j->valuedouble;
        return GC_OK;
    }
    if (!cJSON_IsArray(j))
        return gc_fail(e, GC_EFORMAT, "config: 'eos_token_id' must be an integer or a list");
    for (const cJSON *x = j->child; x; x = x->next) {
        if (!cJSON_IsNumber(x) || x->valuedouble < 0)
            return gc_fail(e, GC_EFORMAT, "config: 'eos_token_id' entries must be integers");
        if (c->n_eos < 8)
            c->eos_token_ids[c->n_eos++] = (int)x->valuedouble;
    }
    return GC_OK;
}

static void set_defaults(gc_config *c)
{
    memset(c, 0, sizeof *c);
    c->vocab_size = 262208;
    c->hidden_size = 2304;
    c->intermediate_size = 9216;
    c->n_layers = 26;
    c->n_heads = 8;
    c->n_kv_heads = 4;
    c->head_dim = 256;
    c->rms_norm_eps = 1e-6f;
    c->query_pre_attn_scalar = 256;
    c->rope_theta_global = 1000000.0;
    c->rope_theta_local = 10000.0;
    c->rope_scale_global = 1.0;
    c->rope_scale_local = 1.0;
    c->sliding_window = 4096;
    c->tie_word_embeddings = 1;
    c->bos_token_id = 2;
    c->pad_token_id = 0;
    c->eos_token_ids[0] = 1;
    c->n_eos = 1;
    c->max_position_embeddings = 131072;
    snprintf(c->dtype, sizeof c->dtype, "float32");
    snprintf(c->architecture, sizeof c->architecture, "Gemma3ForCausalLM");
}

static gc_status parse_layer_types(const cJSON *tc, gc_config *c, gc_err *e)
{
    const cJSON *lt = get(tc, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
            return gc_fail(e, GC_EFORMAT,
                           "config: 'layer_types' must list num_hidden_layers (%d) entries",
                           c->n_layers);
        int i = 0;
        for (const cJSON *x = lt->child; x; x = x->next, i++) {
            const char *s = cJSON_IsString(x) ? x->valuestring : "";
            if (!strcmp(s, "sliding_attention"))
                c->layer_sliding[i] = 1;
            else if (!strcmp(s, "full_attention"))
                c->layer_sliding[i] = 0;
            else
                return gc_fail(e, GC_EUNSUPPORTED, "config: layer_types[%d] '%s' unsupported", i,
                               s);
        }
        return GC_OK;
    }
    int pattern = 6;
    gc_status st = get_int(tc, "_sliding_window_pattern", &pattern, e);
    if (!st)
        st = get_int(tc, "sliding_window_pattern", &pattern, e);
    if (st)
        return st;
    if (pattern < 1)
        return gc_fail(e, GC_EFORMAT, "config: sliding_window_pattern must be >= 1");
    for (int i = 0; i < c->n_layers; i++)
        c->layer_sliding[i] = ((i + 1) % pattern) != 0;
    return GC_OK;
}

/* Sizes and scalars of the text model. */
static gc_status parse_dims(const cJSON *tc, gc_config *c, gc_err *e)
{
    gc_status st;
    double eps = c->rms_norm_eps, qpas = c->query_pre_attn_scalar, asc = 0, fsc = 0;
    if ((st = get_int(tc, "vocab_size", &c->vocab_size, e)) ||
        (st = get_int(tc, "hidden_size", &c->hidden_size, e)) ||
        (st = get_int(tc, "intermediate_size", &c->intermediate_size, e)) ||
        (st = get_int(tc, "num_hidden_layers", &c->n_layers, e)) ||
        (st = get_int(tc, "num_attention_heads", &c->n_heads, e)) ||
        (st = get_int(tc, "num_key_value_heads", &c->n_kv_heads, e)) ||
        (st = get_int(tc, "head_dim", &c->head_dim, e)) ||
        (st = get_num(tc, "rms_norm_eps", &eps, e)) ||
        (st = get_num(tc, "query_pre_attn_scalar", &qpas, e)) ||
        (st = get_num(tc, "attn_logit_softcapping", &asc, e)) ||
        (st = get_num(tc, "final_logit_softcapping", &fsc, e)) ||
        (st = get_int(tc, "sliding_window", &c->sliding_window, e)) ||
        (st = get_int(tc, "max_position_embeddings", &c->max_position_embeddings, e)))
        return st;
    if (fabs(eps) > 1.0 || fabs(qpas) > 1e30 || fabs(asc) > 1e30 || fabs(fsc) > 1e30)
        return gc_fail(e, GC_EFORMAT, "config: rms_norm_eps, query_pre_attn_scalar or a "
                                      "soft-capping value is out of range");
    c->rms_norm_eps = (float)eps;
    c->query_pre_attn_scalar = (float)qpas;
    c->attn_softcap = (float)asc;
    c->final_softcap = (float)fsc;
    return GC_OK;
}

/* Token ids, tying and dtype: they may sit at the top level of a multimodal config. */
static gc_status parse_ids_and_dtype(const cJSON *root, const cJSON *tc, gc_config *c,
                                     gc_err *e)
{
    gc_status st;
    const cJSON *srcs[2] = {root, tc};
    for (int i = 0; i < 2; i++) {
        if (i == 0 && root == tc)
            continue;
        if ((st = get_bool(srcs[i], "tie_word_embeddings", &c->tie_word_embeddings, e)) ||
            (st = get_int(srcs[i], "bos_token_id", &c->bos_token_id, e)) ||
            (st = get_int(srcs[i], "pad_token_id", &c->pad_token_id, e)) ||
            (st = parse_eos(get(srcs[i], "eos_token_id"), c, e)))
            return st;
        const cJSON *d = get(srcs[i], "dtype");
        if (!cJSON_IsString(d))
            d = get(srcs[i], "torch_dtype");
        if (cJSON_IsString(d))
            snprintf(c->dtype, sizeof c->dtype, "%s", d->valuestring);
    }
    return GC_OK;
}

/* Variants of the architecture this engine does not compute. */
static gc_status refuse_unsupported(const cJSON *tc, gc_err *e)
{
    const cJSON *act = get(tc, "hidden_activation");
    if (!act || cJSON_IsNull(act))
        act = get(tc, "hidden_act");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "gelu_pytorch_tanh") &&
        strcmp(act->valuestring, "gelu_tanh"))
        return gc_fail(e, GC_EUNSUPPORTED, "config: activation '%s' unsupported (need gelu_pytorch_tanh)",
                       act->valuestring);
    int flag = 0;
    gc_status st;
    if ((st = get_bool(tc, "attention_bias", &flag, e)))
        return st;
    if (flag)
        return gc_fail(e, GC_EUNSUPPORTED, "config: attention_bias=true is not supported");
    if ((st = get_bool(tc, "use_bidirectional_attention", &flag, e)))
        return st;
    if (flag)
        return gc_fail(e, GC_EUNSUPPORTED,
                       "config: use_bidirectional_attention=true is not supported");
    return GC_OK;
}

/* RoPE: 5.x rope_parameters per layer type (or one flat dict), else the 4.5x keys. */
static gc_status parse_rope_config(const cJSON *tc, gc_config *c, gc_err *e)
{
    gc_status st;
    const cJSON *rp = get(tc, "rope_parameters");
    if (!rp || cJSON_IsNull(rp)) {
        if ((st = get_num(tc, "rope_theta", &c->rope_theta_global, e)) ||
            (st = get_num(tc, "rope_local_base_freq", &c->rope_theta_local, e)) ||
            (st = parse_rope(get(tc, "rope_scaling"), "rope_scaling", &c->rope_theta_global,
                             &c->rope_scale_global, e)))
            return st;
        return GC_OK;
    }
    if (!cJSON_IsObject(rp))
        return gc_fail(e, GC_EFORMAT, "config: rope_parameters must be an object");
    const cJSON *full = get(rp, "full_attention"), *slide = get(rp, "sliding_attention");
    if (full || slide) {
        if ((st = parse_rope(full, "rope_parameters.full_attention", &c->rope_theta_global,
                             &c->rope_scale_global, e)) ||
            (st = parse_rope(slide, "rope_parameters.sliding_attention", &c->rope_theta_local,
                             &c->rope_scale_local, e)))
            return st;
    } else if ((st = parse_rope(rp, "rope_parameters", &c->rope_theta_global,
                                &c->rope_scale_global, e)) ||
               (st = get_num(tc, "rope_local_base_freq", &c->rope_theta_local, e))) {
        return st;
    }
    return GC_OK;
}

static gc_status parse_text(const cJSON *root, const cJSON *tc, gc_config *c, gc_err *e)
{
    gc_status st;
    if ((st = parse_dims(tc, c, e)) || (st = parse_ids_and_dtype(root, tc, c, e)) ||
        (st = refuse_unsupported(tc, e)) || (st = parse_rope_config(tc, c, e)))
        return st;
    if (c->n_layers < 1 || c->n_layers > GC_MAX_LAYERS)
        return gc_fail(e, GC_EFORMAT, "config: num_hidden_layers %d outside 1..%d", c->n_layers,
                       GC_MAX_LAYERS);
    return parse_layer_types(tc, c, e);
}

static gc_status validate(const gc_config *c, gc_err *e)
{
    const struct {
        const char *name;
        int v, max;
    } pos[] = {
        {"vocab_size", c->vocab_size, 1 << 24},
        {"hidden_size", c->hidden_size, 1 << 16},
        {"intermediate_size", c->intermediate_size, 1 << 18},
        {"num_attention_heads", c->n_heads, 1024},
        {"num_key_value_heads", c->n_kv_heads, 1024},
        {"head_dim", c->head_dim, 4096},
        {"sliding_window", c->sliding_window, 1 << 30},
        {"max_position_embeddings", c->max_position_embeddings, 1 << 30},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v < 1 || pos[i].v > pos[i].max)
            return gc_fail(e, GC_EFORMAT, "config: '%s' = %d outside 1..%d", pos[i].name,
                           pos[i].v, pos[i].max);
    if (c->head_dim % 2)
        return gc_fail(e, GC_EFORMAT, "config: head_dim %d must be even (RoPE)", c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return gc_fail(e, GC_EFORMAT,
                       "config: num_attention_heads %d not a multiple of num_key_value_heads %d",
                       c->n_heads, c->n_kv_heads);
    if ((long long)c->n_heads * c->head_dim > (1 << 18))
        return gc_fail(e, GC_EFORMAT, "config: num_attention_heads*head_dim too large");
    if (!(c->rms_norm_eps > 0) || !(c->query_pre_attn_scalar > 0))
        return gc_fail(e, GC_EFORMAT, "config: rms_norm_eps and query_pre_attn_scalar must be positive");
    if (c->attn_softcap < 0 || c->final_softcap < 0)
        return gc_fail(e, GC_EFORMAT, "config: soft-capping values must not be negative");
    if (!(c->rope_theta_global > 0) || !(c->rope_theta_local > 0))
        return gc_fail(e, GC_EFORMAT, "config: rope theta must be positive");
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_token_ids[i] < 0)
            return gc_fail(e, GC_EFORMAT, "config: negative eos_token_id");
    return GC_OK;
}

gc_status gc_config_parse(const char *json, size_t len, gc_config *cfg, gc_err *e)
{
    set_defaults(cfg);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return gc_fail(e, GC_EFORMAT, "config: not valid JSON");
    gc_status st = GC_OK;
    if (!cJSON_IsObject(root)) {
        st = gc_fail(e, GC_EFORMAT, "config: not a JSON object");
        goto done;
    }
    const cJSON *arch = get(root, "architectures");
    if (cJSON_IsArray(arch) && cJSON_IsString(arch->child))
        snprintf(cfg->architecture, sizeof cfg->architecture, "%s", arch->child->valuestring);
    const cJSON *mt = get(root, "model_type");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "gemma3_text") &&
        strcmp(mt->valuestring, "gemma3")) {
        st = gc_fail(e, GC_EUNSUPPORTED, "config: model_type '%s' is not a Gemma 3 model",
                     mt->valuestring);
        goto done;
    }
    const cJSON *tc = get(root, "text_config");
    if (tc && !cJSON_IsNull(tc)) {
        if (!cJSON_IsObject(tc)) {
            st = gc_fail(e, GC_EFORMAT, "config: text_config must be an object");
            goto done;
        }
    } else {
        tc = root;
    }
    if ((st = parse_text(root, tc, cfg, e)))
        goto done;
    st = validate(cfg, e);
done:
    cJSON_Delete(root);
    return st;
}
