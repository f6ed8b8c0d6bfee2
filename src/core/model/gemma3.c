/* Gemma 3 forward pass on the CPU, float32 throughout, as transformers computes it.
 *
 * All sequences of a batch are packed into one [T, hidden] activation matrix so that every
 * projection is a single sgemm over all T tokens; only attention runs per sequence (each
 * sequence sees its own keys and, when given, the keys of a cached prefix). */
#include "model/gemma3.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda_plugin.h"
#include "model/ops.h"

struct gc_prefix {
    const gc_model *m;
    int n, cap;     /* tokens cached, tokens allocated */
    float **k, **v; /* per layer [cap][n_kv*head_dim], after k_norm and RoPE */
    const gc_cuda_api *api;
    void *dprefix;  /* device-side cache when created on a CUDA context */
};

typedef struct rope_cache {
    float *cos, *sin; /* [n_pos][head_dim/2] */
    int n_pos;
} rope_cache;

struct gc_ctx {
    const gc_model *m;
    const gc_config *cfg;
    const gc_weights *w;
    gc_ctx_opts opts;
    gc_device device;
    const gc_cuda_api *api;
    void *dmodel;
    float *arena; /* scratch, grown as needed and reused across calls */
    size_t arena_cap;
    int32_t *pos; /* per packed token: absolute position */
    size_t pos_cap;
    rope_cache rope[2]; /* [0] full_attention, [1] sliding_attention */
};

/* ---------------------------------------------------------------------------------------- */
/* context                                                                                   */

static gc_status ctx_cuda(gc_ctx *c, gc_err *e)
{
    gc_err le = {0};
    const gc_cuda_api *api = gc_cuda_load(&le);
    char msg[sizeof le.msg] = "";
    if (api) {
        if (api->device_count(msg, sizeof msg) > 0) {
            c->dmodel = api->model_upload(c->cfg, c->w, 0, 0, msg, sizeof msg);
            if (c->dmodel) {
                c->api = api;
                c->device = GC_DEVICE_CUDA;
                return GC_OK;
            }
            /* a GPU exists but the upload failed: report even under AUTO */
            return gc_fail(e, GC_EDEVICE, "CUDA model upload failed: %s", msg);
        }
        if (!*msg)
            snprintf(msg, sizeof msg, "no CUDA device found");
    } else {
        memcpy(msg, le.msg, sizeof msg);
    }
    if (c->opts.device == GC_DEVICE_CUDA)
        return gc_fail(e, GC_EDEVICE, "device cuda requested but unavailable: %s", msg);
    c->device = GC_DEVICE_CPU;
    return GC_OK;
}

gc_status gc_ctx_new(const gc_model *m, const gc_ctx_opts *opts, gc_ctx **out, gc_err *e)
{
    *out = NULL;
    gc_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    c->m = m;
    c->cfg = gc_model_config(m);
    c->w = gc_model_weights(m);
    if (opts)
        c->opts = *opts;
    c->device = GC_DEVICE_CPU;
    if (c->opts.device == GC_DEVICE_CUDA || c->opts.device == GC_DEVICE_AUTO) {
        gc_status st = ctx_cuda(c, e);
        if (st) {
            free(c);
            return st;
        }
    }
    if (c->opts.threads > 0)
        openblas_set_num_threads(c->opts.threads);
    *out = c;
    return GC_OK;
}

void gc_ctx_free(gc_ctx *c)
{
    if (!c)
        return;
    if (c->dmodel)
        c->api->model_free(c->dmodel);
    for (int i = 0; i < 2; i++) {
        free(c->rope[i].cos);
        free(c->rope[i].sin);
    }
    free(c->arena);
    free(c->pos);
    free(c);
}

gc_device gc_ctx_device(const gc_ctx *c) { return c->device; }

static gc_status ensure_arena(gc_ctx *c, size_t n_floats, gc_err *e)
{
    if (n_floats <= c->arena_cap)
        return GC_OK;
    size_t cap = n_floats + n_floats / 4;
    free(c->arena);
    c->arena = aligned_alloc(64, (cap * sizeof(float) + 63) / 64 * 64);
    c->arena_cap = c->arena ? cap : 0;
    if (!c->arena)
        return gc_fail(e, GC_ENOMEM, "out of memory for scratch (%zu floats)", cap);
    return GC_OK;
}

/* RoPE tables cover positions [0, n_pos) for both layer kinds. */
static gc_status ensure_rope(gc_ctx *c, int n_pos, gc_err *e)
{
    const gc_config *cfg = c->cfg;
    int half = cfg->head_dim / 2;
    for (int kind = 0; kind < 2; kind++) {
        rope_cache *r = &c->rope[kind];
        if (n_pos <= r->n_pos)
            continue;
        int want = n_pos < 256 ? 256 : n_pos + n_pos / 2;
        float *nc = realloc(r->cos, (size_t)want * half * sizeof(float));
        if (nc)
            r->cos = nc;
        float *ns = nc ? realloc(r->sin, (size_t)want * half * sizeof(float)) : NULL;
        if (ns)
            r->sin = ns;
        if (!nc || !ns)
            return gc_fail(e, GC_ENOMEM, "out of memory for RoPE tables");
        gc_rope_table(r->cos, r->sin, r->n_pos, want, cfg->head_dim,
                      kind ? cfg->rope_theta_local : cfg->rope_theta_global,
                      kind ? cfg->rope_scale_local : cfg->rope_scale_global);
        r->n_pos = want;
    }
    return GC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* prefix storage                                                                            */


static int model_layers(const gc_model *m) { return gc_model_config(m)->n_layers; }

void gc_prefix_free(gc_prefix *p)
{
    if (!p)
        return;
    if (p->dprefix)
        p->api->prefix_free(p->dprefix);
    if (p->k)
        for (int l = 0; l < model_layers(p->m); l++) {
            free(p->k[l]);
            free(p->v[l]);
        }
    free(p->k);
    free(p->v);
    free(p);
}

int gc_prefix_len(const gc_prefix *p) { return p ? p->n : 0; }

static gc_prefix *prefix_alloc(const gc_model *m)
{
    gc_prefix *p = calloc(1, sizeof *p);
    int L = model_layers(m);
    if (!p)
        return NULL;
    p->m = m;
    p->k = calloc(L, sizeof *p->k);
    p->v = calloc(L, sizeof *p->v);
    if (!p->k || !p->v) {
        gc_prefix_free(p);
        return NULL;
    }
    return p;
}

/* Room for n more cached tokens in every layer. */
static gc_status prefix_reserve(gc_prefix *p, int n, gc_err *e)
{
    if (p->n + n <= p->cap)
        return GC_OK;
    const gc_config *cfg = gc_model_config(p->m);
    size_t kd = (size_t)cfg->n_kv_heads * cfg->head_dim;
    int cap = p->n + n;
    cap = cap < 2 * p->cap ? 2 * p->cap : cap;
    for (int l = 0; l < cfg->n_layers; l++) {
        float *nk = realloc(p->k[l], (size_t)cap * kd * sizeof(float));
        if (nk)
            p->k[l] = nk;
        float *nv = nk ? realloc(p->v[l], (size_t)cap * kd * sizeof(float)) : NULL;
        if (nv)
            p->v[l] = nv;
        if (!nk || !nv)
            return gc_fail(e, GC_ENOMEM, "out of memory for the prefix cache");
    }
    p->cap = cap;
    return GC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* forward                                                                                   */

/* y[T, n] = x[T, k] . W[n, k]^T  (W row-major as stored in safetensors) */
static void matmul(float *y, const float *x, const float *w, int T, int n, int k)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
}

static gc_status check_batch(const gc_ctx *c, const gc_prefix *prefix, const gc_batch *b,
                             size_t *n_tok, int *max_len, gc_err *e)
{
    const gc_config *cfg = c->cfg;
    if (b->n_seq < 0 || (b->n_seq > 0 && (!b->tokens || !b->seq_len)))
        return gc_fail(e, GC_EINVAL, "batch: bad sequence arrays");
    if (prefix && prefix->m != c->m)
        return gc_fail(e, GC_EINVAL, "prefix belongs to another model");
    size_t T = 0;
    int mx = 0;
    for (int s = 0; s < b->n_seq; s++) {
        if (b->seq_len[s] < 1)
            return gc_fail(e, GC_EINVAL, "batch: sequence %d is empty", s);
        T += (size_t)b->seq_len[s];
        mx = b->seq_len[s] > mx ? b->seq_len[s] : mx;
    }
    if (T > (size_t)INT32_MAX / 2)
        return gc_fail(e, GC_EINVAL, "batch: too many tokens");
    for (size_t t = 0; t < T; t++)
        if (b->tokens[t] < 0 || b->tokens[t] >= cfg->vocab_size)
            return gc_fail(e, GC_EINVAL, "token id %d at position %zu outside the vocabulary [0, %d)",
                           b->tokens[t], t, cfg->vocab_size);
    if (b->n_out > 0 && !b->out_idx)
        return gc_fail(e, GC_EINVAL, "batch: n_out > 0 without out_idx");
    for (int i = 0; i < b->n_out; i++)
        if (b->out_idx[i] < 0 || (size_t)b->out_idx[i] >= T)
            return gc_fail(e, GC_EINVAL, "batch: output index %d outside [0, %zu)", b->out_idx[i],
                           T);
    if (b->n_rows > 0 && !b->rows)
        return gc_fail(e, GC_EINVAL, "batch: n_rows > 0 without rows");
    for (int i = 0; i < b->n_rows; i++)
        if (b->rows[i] < 0 || b->rows[i] >= cfg->vocab_size)
            return gc_fail(e, GC_EINVAL, "batch: vocabulary row %d outside [0, %d)", b->rows[i],
                           cfg->vocab_size);
    *n_tok = T;
    *max_len = mx;
    return GC_OK;
}

/* Scratch layout of one forward call, in floats. */
typedef struct plan {
    float *x, *xn, *q, *k, *v, *att, *tmp, *gate, *up, *scores, *out_x, *rows_w;
} plan;

/* Attention for one sequence (tokens [off, off+L) of the packed batch) in one layer:
 * keys are the prefix's Lp cached ones, then the sequence's own. */
static void attend(const gc_config *cfg, const plan *P, int layer, size_t off, int L,
                   const float *pk, const float *pv, int Lp)
{
    const int D = cfg->head_dim, nh = cfg->n_heads, rep = nh / cfg->n_kv_heads;
    const int QD = nh * D, KD = cfg->n_kv_heads * D, Lk = Lp + L;
    const int sliding = cfg->layer_sliding[layer], W = cfg->sliding_window;
    const float scale = (float)(1.0 / sqrt((double)cfg->query_pre_attn_scalar));
    float *S = P->scores;
    for (int h = 0; h < nh; h++) {
        const int g = h / rep;
        const float *q = P->q + off * QD + (size_t)h * D;
        const float *k = P->k + off * KD + (size_t)g * D, *v = P->v + off * KD + (size_t)g * D;
        float *o = P->att + off * QD + (size_t)h * D;
        if (Lp)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, Lp, D, scale, q, QD,
                        pk + (size_t)g * D, KD, 0.0f, S, Lk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, D, scale, q, QD, k, KD, 0.0f,
                    S + Lp, Lk);
        for (int i = 0; i < L; i++) {
            int p = Lp + i; /* absolute position of the query; keys 0..p are visible */
            int lo = sliding && p - W + 1 > 0 ? p - W + 1 : 0;
            /* No attention soft-capping: transformers' Gemma 3 attention never passes
             * attn_logit_softcapping to its attention function (the fixtures confirm it). */
            gc_softmax_range(S + (size_t)i * Lk, Lk, lo, p + 1);
        }
        if (Lp)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, D, Lp, 1.0f, S, Lk,
                        pv + (size_t)g * D, KD, 0.0f, o, QD);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, D, L, 1.0f, S + Lp, Lk, v, KD,
                    Lp ? 1.0f : 0.0f, o, QD);
    }
}

/* The last layer when only a few positions' logits are wanted (a classifier reads one per
 * sequence): keys and values still come from every token, but queries, o_proj and the MLP
 * run only on the R output rows. Leaves the final hidden rows (before the final norm) in
 * P->out_x. */
static void last_layer_rows(const gc_ctx *c, const plan *P, const gc_batch *b,
                            const gc_prefix *prefix, int Lp, size_t T, int R)
{
    const gc_config *cfg = c->cfg;
    const int l = cfg->n_layers - 1, H = cfg->hidden_size, FF = cfg->intermediate_size;
    const int D = cfg->head_dim, nh = cfg->n_heads, nkv = cfg->n_kv_heads, rep = nh / nkv;
    const int QD = nh * D, KD = nkv * D, half = D / 2;
    const int sliding = cfg->layer_sliding[l], W = cfg->sliding_window;
    const gc_layer_weights *L = &c->w->layers[l];
    const rope_cache *rc = &c->rope[sliding ? 1 : 0];
    const float scale = (float)(1.0 / sqrt((double)cfg->query_pre_attn_scalar));
    const float eps = cfg->rms_norm_eps;

    gc_rmsnorm(P->xn, P->x, L->input_norm, T, H, H, eps);
    matmul(P->k, P->xn, L->wk, (int)T, KD, H);
    matmul(P->v, P->xn, L->wv, (int)T, KD, H);
    gc_rmsnorm(P->k, P->k, L->k_norm, T * nkv, D, D, eps);
    for (size_t t = 0; t < T; t++)
        gc_rope(P->k + t * KD, nkv, D, rc->cos + (size_t)c->pos[t] * half,
                rc->sin + (size_t)c->pos[t] * half);
    /* queries of the output rows only */
    for (int r = 0; r < R; r++)
        memcpy(P->tmp + (size_t)r * H, P->xn + (size_t)b->out_idx[r] * H, H * sizeof(float));
    matmul(P->q, P->tmp, L->wq, R, QD, H);
    gc_rmsnorm(P->q, P->q, L->q_norm, (size_t)R * nh, D, D, eps);
    for (int r = 0; r < R; r++) {
        int p = c->pos[b->out_idx[r]];
        gc_rope(P->q + (size_t)r * QD, nh, D, rc->cos + (size_t)p * half, rc->sin + (size_t)p * half);
    }
    for (int r = 0; r < R; r++) {
        const size_t t = (size_t)b->out_idx[r];
        const int p = c->pos[t], i = p - Lp; /* absolute and in-sequence position */
        const size_t start = t - (size_t)i;  /* the sequence's first packed token */
        const int lo = sliding && p - W + 1 > 0 ? p - W + 1 : 0, Lk = p + 1;
        float *S = P->scores;
        for (int h = 0; h < nh; h++) {
            const int g = h / rep;
            const float *q = P->q + (size_t)r * QD + (size_t)h * D;
            float *o = P->att + (size_t)r * QD + (size_t)h * D;
            if (Lp)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Lp, D, scale, prefix->k[l] + (size_t)g * D,
                            KD, q, 1, 0.0f, S, 1);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, i + 1, D, scale,
                        P->k + start * KD + (size_t)g * D, KD, q, 1, 0.0f, S + Lp, 1);
            gc_softmax_range(S, Lk, lo, Lk);
            if (Lp)
                cblas_sgemv(CblasRowMajor, CblasTrans, Lp, D, 1.0f, prefix->v[l] + (size_t)g * D,
                            KD, S, 1, 0.0f, o, 1);
            cblas_sgemv(CblasRowMajor, CblasTrans, i + 1, D, 1.0f,
                        P->v + start * KD + (size_t)g * D, KD, S + Lp, 1, Lp ? 1.0f : 0.0f, o, 1);
        }
    }
    matmul(P->tmp, P->att, L->wo, R, H, QD);
    gc_rmsnorm(P->tmp, P->tmp, L->post_attn_norm, R, H, H, eps);
    for (int r = 0; r < R; r++) {
        memcpy(P->out_x + (size_t)r * H, P->x + (size_t)b->out_idx[r] * H, H * sizeof(float));
        gc_add(P->out_x + (size_t)r * H, P->tmp + (size_t)r * H, H);
    }
    gc_rmsnorm(P->xn, P->out_x, L->pre_ffn_norm, R, H, H, eps);
    matmul(P->gate, P->xn, L->w_gate, R, FF, H);
    matmul(P->up, P->xn, L->w_up, R, FF, H);
    gc_gelu_tanh_mul(P->gate, P->up, (size_t)R * FF);
    matmul(P->tmp, P->gate, L->w_down, R, H, FF);
    gc_rmsnorm(P->tmp, P->tmp, L->post_ffn_norm, R, H, H, eps);
    gc_add(P->out_x, P->tmp, (size_t)R * H);
}

/* The whole forward pass. `prefix` (read) supplies cached keys; `capture` (may be the same
 * object) receives this batch's keys/values appended after its current length; it requires a
 * single-sequence batch. */
static gc_status forward_cpu(gc_ctx *c, const gc_prefix *prefix, gc_prefix *capture,
                             gc_batch *b, gc_err *e)
{
    const gc_config *cfg = c->cfg;
    const gc_weights *w = c->w;
    size_t T;
    int maxL;
    gc_status st = check_batch(c, prefix, b, &T, &maxL, e);
    if (st || T == 0)
        return st;
    if (capture && b->n_seq != 1)
        return gc_fail(e, GC_EINVAL, "prefix capture needs exactly one sequence");
    const int H = cfg->hidden_size, FF = cfg->intermediate_size, D = cfg->head_dim;
    const int nh = cfg->n_heads, nkv = cfg->n_kv_heads, QD = nh * D, KD = nkv * D;
    const int V = cfg->vocab_size;
    const int Lp = prefix ? prefix->n : 0;
    const int n_out = b->n_out < 0 ? (int)T : b->n_out;
    const int n_rows = b->n_rows > 0 ? b->n_rows : 0;
    if (c->opts.threads > 0)
        openblas_set_num_threads(c->opts.threads);

    size_t need = T * (3 * (size_t)H + 2 * (size_t)QD + 2 * (size_t)KD + 2 * (size_t)FF) +
                  (size_t)maxL * (Lp + maxL) + (size_t)n_out * H + (size_t)n_rows * H + 64;
    if ((st = ensure_arena(c, need, e)) || (st = ensure_rope(c, Lp + maxL, e)))
        return st;
    if (T > c->pos_cap) {
        int32_t *np = realloc(c->pos, T * sizeof *np);
        if (!np)
            return gc_fail(e, GC_ENOMEM, "out of memory");
        c->pos = np;
        c->pos_cap = T;
    }
    if (capture && (st = prefix_reserve(capture, (int)T, e)))
        return st;
    plan P;
    float *a = c->arena;
    P.x = a, a += T * H;
    P.xn = a, a += T * H;
    P.tmp = a, a += T * H;
    P.q = a, a += T * QD;
    P.att = a, a += T * QD;
    P.k = a, a += T * KD;
    P.v = a, a += T * KD;
    P.gate = a, a += T * FF;
    P.up = a, a += T * FF;
    P.scores = a, a += (size_t)maxL * (Lp + maxL);
    P.out_x = a, a += (size_t)n_out * H;
    P.rows_w = a;

    for (int s = 0, t = 0; s < b->n_seq; s++)
        for (int i = 0; i < b->seq_len[s]; i++)
            c->pos[t++] = Lp + i;

    /* embeddings, scaled by sqrt(hidden) rounded to float32 as transformers does */
    const float emb_scale = (float)sqrt((double)H);
    for (size_t t = 0; t < T; t++) {
        const float *er = w->embed + (size_t)b->tokens[t] * H;
        for (int i = 0; i < H; i++)
            P.x[t * H + i] = er[i] * emb_scale;
    }
    if (b->hidden)
        memcpy(b->hidden, P.x, T * H * sizeof(float));

    /* Only some positions wanted and nothing else read from the last layer: prune it. */
    const int prune = b->logits && b->n_out >= 0 && (size_t)b->n_out < T && !b->hidden && !capture;
    for (int l = 0; l < cfg->n_layers; l++) {
        if (c->opts.interrupt && c->opts.interrupt(c->opts.interrupt_arg))
            return gc_fail(e, GC_ECANCELED, "canceled");
        if (prune && l == cfg->n_layers - 1) {
            if (n_out > 0)
                last_layer_rows(c, &P, b, prefix, Lp, T, n_out);
            break;
        }
        const gc_layer_weights *L = &w->layers[l];
        const rope_cache *rc = &c->rope[cfg->layer_sliding[l] ? 1 : 0];
        const int half = D / 2;

        /* attention block */
        gc_rmsnorm(P.xn, P.x, L->input_norm, T, H, H, cfg->rms_norm_eps);
        matmul(P.q, P.xn, L->wq, (int)T, QD, H);
        matmul(P.k, P.xn, L->wk, (int)T, KD, H);
        matmul(P.v, P.xn, L->wv, (int)T, KD, H);
        gc_rmsnorm(P.q, P.q, L->q_norm, T * nh, D, D, cfg->rms_norm_eps);
        gc_rmsnorm(P.k, P.k, L->k_norm, T * nkv, D, D, cfg->rms_norm_eps);
        for (size_t t = 0; t < T; t++) {
            const float *cs = rc->cos + (size_t)c->pos[t] * half;
            const float *sn = rc->sin + (size_t)c->pos[t] * half;
            gc_rope(P.q + t * QD, nh, D, cs, sn);
            gc_rope(P.k + t * KD, nkv, D, cs, sn);
        }
        if (capture) {
            memcpy(capture->k[l] + (size_t)capture->n * KD, P.k, T * KD * sizeof(float));
            memcpy(capture->v[l] + (size_t)capture->n * KD, P.v, T * KD * sizeof(float));
        }
        size_t off = 0;
        for (int s = 0; s < b->n_seq; s++) {
            attend(cfg, &P, l, off, b->seq_len[s], Lp ? prefix->k[l] : NULL,
                   Lp ? prefix->v[l] : NULL, Lp);
            off += (size_t)b->seq_len[s];
        }
        matmul(P.tmp, P.att, L->wo, (int)T, H, QD);
        gc_rmsnorm(P.tmp, P.tmp, L->post_attn_norm, T, H, H, cfg->rms_norm_eps);
        gc_add(P.x, P.tmp, T * H);

        /* MLP block */
        gc_rmsnorm(P.xn, P.x, L->pre_ffn_norm, T, H, H, cfg->rms_norm_eps);
        matmul(P.gate, P.xn, L->w_gate, (int)T, FF, H);
        matmul(P.up, P.xn, L->w_up, (int)T, FF, H);
        gc_gelu_tanh_mul(P.gate, P.up, T * FF);
        matmul(P.tmp, P.gate, L->w_down, (int)T, H, FF);
        gc_rmsnorm(P.tmp, P.tmp, L->post_ffn_norm, T, H, H, cfg->rms_norm_eps);
        gc_add(P.x, P.tmp, T * H);

        if (b->hidden) {
            float *hl = b->hidden + (size_t)(l + 1) * T * H;
            if (l + 1 < cfg->n_layers)
                memcpy(hl, P.x, T * H * sizeof(float));
            else /* transformers reports the last hidden state after the final norm */
                gc_rmsnorm(hl, P.x, w->final_norm, T, H, H, cfg->rms_norm_eps);
        }
    }
    if (capture)
        capture->n += (int)T;
    if (!b->logits || n_out == 0)
        return GC_OK;

    /* final norm and LM head only at the requested positions and vocabulary rows */
    for (int i = 0; i < n_out; i++) {
        size_t t = b->n_out < 0 ? (size_t)i : (size_t)b->out_idx[i];
        const float *src = prune ? P.out_x + (size_t)i * H : P.x + t * H;
        gc_rmsnorm(P.out_x + (size_t)i * H, src, w->final_norm, 1, H, H, cfg->rms_norm_eps);
    }
    const float *head = w->lm_head;
    int n_cols = V;
    if (n_rows) {
        for (int r = 0; r < n_rows; r++)
            memcpy(P.rows_w + (size_t)r * H, head + (size_t)b->rows[r] * H, H * sizeof(float));
        head = P.rows_w;
        n_cols = n_rows;
    }
    matmul(b->logits, P.out_x, head, n_out, n_cols, H);
    if (cfg->final_softcap > 0)
        gc_softcap(b->logits, (size_t)n_out * n_cols, cfg->final_softcap);
    return GC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* public entry points: the CUDA plugin, when chosen, takes over here and only here          */

static gc_status device_fail(gc_err *e, const char *what, const char *msg)
{
    return gc_fail(e, GC_EDEVICE, "CUDA %s failed: %s", what, *msg ? msg : "unknown error");
}

gc_status gc_forward(gc_ctx *c, const gc_prefix *prefix, gc_batch *b, gc_err *e)
{
    if (c->dmodel) {
        char msg[512] = "";
        if (prefix && !prefix->dprefix)
            return gc_fail(e, GC_EINVAL, "prefix was not created on this CUDA context");
        size_t T;
        int maxL;
        gc_status st = check_batch(c, prefix, b, &T, &maxL, e);
        if (st)
            return st;
        if (c->api->forward(c->dmodel, prefix ? prefix->dprefix : NULL, b, msg, sizeof msg))
            return device_fail(e, "forward", msg);
        return GC_OK;
    }
    if (prefix && prefix->dprefix)
        return gc_fail(e, GC_EINVAL, "prefix was created on a CUDA context");
    return forward_cpu(c, prefix, NULL, b, e);
}

gc_status gc_prefix_new(gc_ctx *c, const int32_t *ids, int n, gc_prefix **out, gc_err *e)
{
    *out = NULL;
    if (n < 1 || !ids)
        return gc_fail(e, GC_EINVAL, "prefix: needs at least one token");
    gc_prefix *p = prefix_alloc(c->m);
    if (!p)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    gc_status st;
    if (c->dmodel) {
        char msg[512] = "";
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= c->cfg->vocab_size) {
                gc_prefix_free(p);
                return gc_fail(e, GC_EINVAL, "prefix: token id %d outside the vocabulary",
                               ids[i]);
            }
        p->api = c->api;
        p->dprefix = c->api->prefix_new(c->dmodel, ids, n, msg, sizeof msg);
        if (!p->dprefix) {
            gc_prefix_free(p);
            return device_fail(e, "prefix", msg);
        }
        p->n = n;
        *out = p;
        return GC_OK;
    }
    gc_batch b = {.n_seq = 1, .tokens = ids, .seq_len = &n, .n_out = 0};
    if ((st = forward_cpu(c, NULL, p, &b, e))) {
        gc_prefix_free(p);
        return st;
    }
    *out = p;
    return GC_OK;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static int is_eos(int32_t t, const int32_t *eos, int n_eos)
{
    for (int i = 0; i < n_eos; i++)
        if (eos[i] == t)
            return 1;
    return 0;
}

gc_status gc_generate_greedy(gc_ctx *c, const int32_t *prompt, int n, int max_new,
                             const int32_t *eos, int n_eos, int32_t *out, int *n_out, gc_err *e)
{
    *n_out = 0;
    if (n < 1 || !prompt)
        return gc_fail(e, GC_EINVAL, "generate: empty prompt");
    const int V = c->cfg->vocab_size;
    float *logits = malloc((size_t)V * sizeof(float));
    int32_t *seq = malloc(((size_t)n + (max_new > 0 ? max_new : 0)) * sizeof(int32_t));
    gc_prefix *p = NULL;
    gc_status st = GC_OK;
    if (!logits || !seq) {
        st = gc_fail(e, GC_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(seq, prompt, (size_t)n * sizeof(int32_t));
    int len = n;
    if (!c->dmodel && n > 1) { /* keep a KV cache: each step runs one new token */
        if (!(p = prefix_alloc(c->m))) {
            st = gc_fail(e, GC_ENOMEM, "out of memory");
            goto done;
        }
        int m = n - 1;
        gc_batch pb = {.n_seq = 1, .tokens = seq, .seq_len = &m, .n_out = 0};
        if ((st = forward_cpu(c, NULL, p, &pb, e)))
            goto done;
    } else if (!c->dmodel && !(p = prefix_alloc(c->m))) {
        st = gc_fail(e, GC_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < max_new; k++) {
        int32_t last;
        if (c->dmodel) { /* no device-side cache append in the plugin ABI: rerun the sequence */
            int32_t idx = len - 1;
            gc_batch b = {.n_seq = 1, .tokens = seq, .seq_len = &len, .n_out = 1,
                          .out_idx = &idx, .logits = logits};
            st = gc_forward(c, NULL, &b, e);
        } else {
            int one = 1;
            int32_t idx = 0;
            gc_batch b = {.n_seq = 1, .tokens = seq + len - 1, .seq_len = &one, .n_out = 1,
                          .out_idx = &idx, .logits = logits};
            st = forward_cpu(c, p, p, &b, e);
        }
        if (st)
            goto done;
        last = argmax(logits, V);
        seq[len++] = last;
        out[(*n_out)++] = last;
        if (is_eos(last, eos, n_eos))
            break;
    }
done:
    gc_prefix_free(p);
    free(logits);
    free(seq);
    return st;
}
