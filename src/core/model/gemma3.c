/* Gemma 3 forward pass on the CPU, float32 throughout, as transformers computes it (the seven
 * linear layers of each decoder layer optionally in bf16 or int8: gc_ctx_opts.precision).
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
#include "model/lowp_matmul.h"
#include "model/lowp_weights.h"
#include "model/ops.h"

struct gc_prefix {
    const gc_model *m;
    int n, cap;     /* tokens cached, tokens allocated */
    float **k, **v; /* per layer [cap][n_kv*head_dim], after k_norm and RoPE */
    const gc_cuda_api *api;
    void *dprefix;  /* device-side cache when created on a CUDA context */
    int32_t *ids;   /* its token ids: rebuilt on the CPU if the context falls back */
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
    char broken[512]; /* set when the CUDA context hit a sticky error (device CUDA: every call
                       * fails with it; AUTO: the context continues on the CPU) */
    float *arena; /* scratch, grown as needed and reused across calls */
    size_t arena_cap;
    int32_t *pos; /* per packed token: absolute position */
    size_t pos_cap;
    rope_cache rope[2]; /* [0] full_attention, [1] sliding_attention */
    gc_precision precision;      /* what the CPU engine runs */
    char precision_note[256];    /* why it differs from opts.precision, or "" */
    const gc_lowp_weights *lowp; /* bf16 / int8 linear layers (owned by the model) */
    gc_lowp_engine *lowp_engine; /* NULL: f32 */
};

/* ---------------------------------------------------------------------------------------- */
/* context                                                                                   */

static gc_status ctx_cuda(gc_ctx *c, gc_err *e)
{
    gc_err le = {0};
    const gc_cuda_api *api = gc_cuda_load(&le);
    char msg[sizeof le.msg] = "";
    int dev = c->opts.cuda_device;
    if (api) {
        /* a device that is missing, too old or broken: CPU under AUTO, an error under CUDA */
        if (api->device_count(msg, sizeof msg) > 0 && !api->device_check(dev, msg, sizeof msg)) {
            c->dmodel = api->model_upload(c->cfg, c->w, dev, c->opts.cuda_precision, msg,
                                          sizeof msg);
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

/* The CPU fallback is announced once per process: after a sticky error every context of the
 * process on that device breaks the same way, and one message says it all. */
static int fallback_announced;

/* The plugin reported a sticky error: drop the device model (its context is unusable for
 * the rest of the process) and, under AUTO, continue on the CPU. */
static gc_status ctx_cuda_broken(gc_ctx *c, const char *what, const char *msg, gc_err *e)
{
    snprintf(c->broken, sizeof c->broken, "%s", *msg ? msg : "unknown error");
    c->api->model_free(c->dmodel);
    c->dmodel = NULL;
    c->device = GC_DEVICE_CPU;
    if (c->opts.precision != GC_PRECISION_F32) /* its converted weights were never loaded */
        snprintf(c->precision_note, sizeof c->precision_note,
                 "the CPU fallback after a CUDA error runs f32");
    if (c->opts.device == GC_DEVICE_AUTO) {
        if (!__atomic_exchange_n(&fallback_announced, 1, __ATOMIC_SEQ_CST) && c->opts.notice) {
            char note[768];
            snprintf(note, sizeof note,
                     "gemmaclf: the CUDA context hit a fatal error during %s (%s); this process "
                     "continues on the CPU",
                     what, c->broken);
            c->opts.notice(c->opts.notice_arg, note);
        }
        return GC_OK;
    }
    return gc_fail(e, GC_EDEVICE,
                   "CUDA %s failed and the CUDA context is unusable for the rest of this "
                   "process: %s (restart the process, or use device auto or cpu)",
                   what, c->broken);
}

static gc_status ctx_check_broken(const gc_ctx *c, gc_err *e)
{
    if (*c->broken && c->opts.device == GC_DEVICE_CUDA)
        return gc_fail(e, GC_EDEVICE,
                       "the CUDA context is unusable after a fatal error: %s (restart the "
                       "process, or use device auto or cpu)",
                       c->broken);
    return GC_OK;
}

/* The CPU engine's precision: the one asked for when the CPU can run it, else F32 with a note.
 * Reduced precision loads (or builds) the model's converted weights here, once. */
static gc_status ctx_precision(gc_ctx *c, gc_err *e)
{
    const gc_precision want = c->opts.precision;
    char why[200];
    c->precision = GC_PRECISION_F32;
    if (want == GC_PRECISION_F32)
        return GC_OK;
    if (want != GC_PRECISION_BF16 && want != GC_PRECISION_INT8)
        return gc_fail(e, GC_EINVAL, "unknown precision %d", (int)want);
    if (c->device == GC_DEVICE_CUDA) {
        snprintf(c->precision_note, sizeof c->precision_note,
                 "precision %s applies to the CPU engine; CUDA uses its own cuda_precision",
                 gc_precision_name(want));
        return GC_OK;
    }
    if (!gc_lowp_supported(want, why, sizeof why)) {
        snprintf(c->precision_note, sizeof c->precision_note, "%s: using f32", why);
        return GC_OK;
    }
    gc_status st = gc_model_lowp(c->m, want, &c->lowp, e);
    if (!st)
        st = gc_lowp_engine_new(want, c->opts.threads, &c->lowp_engine, e);
    if (!st)
        c->precision = want;
    return st;
}

gc_precision gc_ctx_precision(const gc_ctx *c, const char **note)
{
    if (note)
        *note = c->precision_note;
    return c->precision;
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
    gc_status st = ctx_precision(c, e);
    if (st) {
        gc_ctx_free(c);
        return st;
    }
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
    gc_lowp_engine_free(c->lowp_engine);
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
    free(p->ids);
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
    int n_layers = model_layers(m);
    if (!p)
        return NULL;
    p->m = m;
    p->k = calloc(n_layers, sizeof *p->k);
    p->v = calloc(n_layers, sizeof *p->v);
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

/* Linear layer `which` (GC_LIN_*) of layer l, whose f32 weights are w32: sgemm, or the
 * context's bf16 / int8 engine. */
static gc_status linear(const gc_ctx *c, int l, int which, float *y, const float *x,
                        const float *w32, size_t T, int n, int k, gc_err *e)
{
    if (!c->lowp_engine) {
        matmul(y, x, w32, (int)T, n, k);
        return GC_OK;
    }
    return gc_lowp_matmul(c->lowp_engine, y, x, &gc_lowp_layer(c->lowp, l)[which], (int)T, e);
}

/* OpenBLAS' threads for this context's products. With a bf16 / int8 engine the linear layers
 * run on oneDNN's OpenMP threads and OpenBLAS is left with the attention products, small ones:
 * one thread, since two thread pools that each spin on the same cores slow each other down
 * (gemma-3-270m shape, batch 64, 2 threads, int8: 104 -> 122-135 prompts/s,
 * bench/bench_precision.sh). */
static int blas_threads(const gc_ctx *c)
{
    return c->lowp_engine ? 1 : c->opts.threads;
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

/* Dimensions, as in the rest of this file:
 *   T       tokens in the packed batch (all sequences)    n_past  cached prefix tokens
 *   H       hidden size        FF  MLP width              V       vocabulary size
 *   D       head dim           nh / nkv  query / key-value heads
 *   QD, KD  nh * D, nkv * D (a token's query / key width)
 *   R       output rows: positions whose logits are wanted (n_out)
 * Matrices are row-major, one row per token: x[T, H], q[T, QD], k[T, KD], ... */

/* Where one forward call keeps its activations: slices of the context's arena. */
typedef struct scratch {
    float *x;       /* [T, H] residual stream */
    float *xn;      /* [T, H] normed input of the current block */
    float *tmp;     /* [T, H] block output before the residual add */
    float *q, *att; /* [T, QD] queries, attention output */
    float *k, *v;   /* [T, KD] keys and values of the current layer */
    float *gate, *up;   /* [T, FF] MLP */
    float *scores;      /* [max_len, n_past + max_len] one head's attention weights */
    float *out_x;       /* [R, H] residual stream of the output rows (last layer, pruned) */
    float *head_rows;   /* [n_rows, H] the LM head rows wanted */
} scratch;

/* Floats the scratch needs (the arena is at least this). */
static size_t scratch_floats(const gc_config *cfg, size_t T, int max_len, int n_past, int R,
                             int n_rows)
{
    const size_t H = (size_t)cfg->hidden_size, FF = (size_t)cfg->intermediate_size;
    const size_t QD = (size_t)cfg->n_heads * cfg->head_dim;
    const size_t KD = (size_t)cfg->n_kv_heads * cfg->head_dim;
    return T * (3 * H + 2 * QD + 2 * KD + 2 * FF) + (size_t)max_len * (n_past + max_len) +
           (size_t)R * H + (size_t)n_rows * H + 64;
}

static scratch scratch_slice(float *a, const gc_config *cfg, size_t T, int max_len, int n_past,
                             int R)
{
    const size_t H = (size_t)cfg->hidden_size, FF = (size_t)cfg->intermediate_size;
    const size_t QD = (size_t)cfg->n_heads * cfg->head_dim;
    const size_t KD = (size_t)cfg->n_kv_heads * cfg->head_dim;
    scratch sc;
    sc.x = a, a += T * H;
    sc.xn = a, a += T * H;
    sc.tmp = a, a += T * H;
    sc.q = a, a += T * QD;
    sc.att = a, a += T * QD;
    sc.k = a, a += T * KD;
    sc.v = a, a += T * KD;
    sc.gate = a, a += T * FF;
    sc.up = a, a += T * FF;
    sc.scores = a, a += (size_t)max_len * (n_past + max_len);
    sc.out_x = a, a += (size_t)R * H;
    sc.head_rows = a;
    return sc;
}

/* Attention of one sequence (tokens [off, off + n_q) of the packed batch) in one layer: its
 * keys are the prefix's n_past cached ones, then the sequence's own. */
static void attend_sequence(const gc_config *cfg, const scratch *sc, int layer, size_t off,
                            int n_q, const float *past_k, const float *past_v, int n_past)
{
    const int D = cfg->head_dim, nh = cfg->n_heads, rep = nh / cfg->n_kv_heads;
    const int QD = nh * D, KD = cfg->n_kv_heads * D, n_keys = n_past + n_q;
    const int sliding = cfg->layer_sliding[layer], W = cfg->sliding_window;
    const float scale = (float)(1.0 / sqrt((double)cfg->query_pre_attn_scalar));
    float *S = sc->scores;
    for (int h = 0; h < nh; h++) {
        const int g = h / rep;
        const float *q = sc->q + off * QD + (size_t)h * D;
        const float *k = sc->k + off * KD + (size_t)g * D, *v = sc->v + off * KD + (size_t)g * D;
        float *o = sc->att + off * QD + (size_t)h * D;
        if (n_past)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_q, n_past, D, scale, q, QD,
                        past_k + (size_t)g * D, KD, 0.0f, S, n_keys);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_q, n_q, D, scale, q, QD, k, KD,
                    0.0f, S + n_past, n_keys);
        for (int i = 0; i < n_q; i++) {
            int p = n_past + i; /* absolute position of the query; keys 0..p are visible */
            int lo = sliding && p - W + 1 > 0 ? p - W + 1 : 0;
            /* No attention soft-capping: transformers' Gemma 3 attention never passes
             * attn_logit_softcapping to its attention function (the fixtures confirm it). */
            gc_softmax_range(S + (size_t)i * n_keys, n_keys, lo, p + 1);
        }
        if (n_past)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_q, D, n_past, 1.0f, S,
                        n_keys, past_v + (size_t)g * D, KD, 0.0f, o, QD);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_q, D, n_q, 1.0f, S + n_past,
                    n_keys, v, KD, n_past ? 1.0f : 0.0f, o, QD);
    }
}

/* Attention of output row r alone (its query in sc->q row r; token t = rows[r] of the packed
 * batch): a matrix-vector product per head over the keys up to its position. */
static void attend_row(const gc_ctx *c, const scratch *sc, int layer, int r, size_t t,
                       const gc_prefix *prefix, int n_past)
{
    const gc_config *cfg = c->cfg;
    const int D = cfg->head_dim, nh = cfg->n_heads, rep = nh / cfg->n_kv_heads;
    const int QD = nh * D, KD = cfg->n_kv_heads * D;
    const int sliding = cfg->layer_sliding[layer], W = cfg->sliding_window;
    const float scale = (float)(1.0 / sqrt((double)cfg->query_pre_attn_scalar));
    const int p = c->pos[t], i = p - n_past; /* absolute and in-sequence position */
    const size_t start = t - (size_t)i;      /* the sequence's first packed token */
    const int lo = sliding && p - W + 1 > 0 ? p - W + 1 : 0, n_keys = p + 1;
    float *S = sc->scores;
    for (int h = 0; h < nh; h++) {
        const int g = h / rep;
        const float *q = sc->q + (size_t)r * QD + (size_t)h * D;
        float *o = sc->att + (size_t)r * QD + (size_t)h * D;
        if (n_past)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n_past, D, scale,
                        prefix->k[layer] + (size_t)g * D, KD, q, 1, 0.0f, S, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, i + 1, D, scale,
                    sc->k + start * KD + (size_t)g * D, KD, q, 1, 0.0f, S + n_past, 1);
        gc_softmax_range(S, n_keys, lo, n_keys);
        if (n_past)
            cblas_sgemv(CblasRowMajor, CblasTrans, n_past, D, 1.0f,
                        prefix->v[layer] + (size_t)g * D, KD, S, 1, 0.0f, o, 1);
        cblas_sgemv(CblasRowMajor, CblasTrans, i + 1, D, 1.0f, sc->v + start * KD + (size_t)g * D,
                    KD, S + n_past, 1, n_past ? 1.0f : 0.0f, o, 1);
    }
}

/* Normed input, then keys and values (k_norm, RoPE) of every token: later queries see them. */
static gc_status project_kv(const gc_ctx *c, const scratch *sc, int layer,
                            const gc_layer_weights *lw, const rope_cache *rc, size_t T, gc_err *e)
{
    const gc_config *cfg = c->cfg;
    const int H = cfg->hidden_size, D = cfg->head_dim, nkv = cfg->n_kv_heads, KD = nkv * D;
    const int half = D / 2;
    gc_status st;
    gc_rmsnorm(sc->xn, sc->x, lw->input_norm, T, H, H, cfg->rms_norm_eps);
    if ((st = linear(c, layer, GC_LIN_K, sc->k, sc->xn, lw->wk, T, KD, H, e)) ||
        (st = linear(c, layer, GC_LIN_V, sc->v, sc->xn, lw->wv, T, KD, H, e)))
        return st;
    gc_rmsnorm(sc->k, sc->k, lw->k_norm, T * nkv, D, D, cfg->rms_norm_eps);
    for (size_t t = 0; t < T; t++)
        gc_rope(sc->k + t * KD, nkv, D, rc->cos + (size_t)c->pos[t] * half,
                rc->sin + (size_t)c->pos[t] * half);
    return GC_OK;
}

/* Queries (q_norm, RoPE) of n rows of normed input xn_rows; row r is packed token rows[r]
 * (rows NULL: token r). */
static gc_status project_q(const gc_ctx *c, const scratch *sc, int layer,
                           const gc_layer_weights *lw, const rope_cache *rc, const float *xn_rows,
                           size_t n, const int32_t *rows, gc_err *e)
{
    const gc_config *cfg = c->cfg;
    const int H = cfg->hidden_size, D = cfg->head_dim, nh = cfg->n_heads, QD = nh * D;
    const int half = D / 2;
    gc_status st = linear(c, layer, GC_LIN_Q, sc->q, xn_rows, lw->wq, n, QD, H, e);
    if (st)
        return st;
    gc_rmsnorm(sc->q, sc->q, lw->q_norm, n * nh, D, D, cfg->rms_norm_eps);
    for (size_t r = 0; r < n; r++) {
        const int p = c->pos[rows ? (size_t)rows[r] : r];
        gc_rope(sc->q + r * QD, nh, D, rc->cos + (size_t)p * half, rc->sin + (size_t)p * half);
    }
    return GC_OK;
}

/* The rest of the layer for n rows whose attention output is in sc->att: o_proj and the MLP,
 * each normed before and after, added to the residual stream x[n, H]. */
static gc_status attn_out_and_mlp(const gc_ctx *c, const scratch *sc, int layer,
                                  const gc_layer_weights *lw, float *x, size_t n, gc_err *e)
{
    const gc_config *cfg = c->cfg;
    const int H = cfg->hidden_size, FF = cfg->intermediate_size;
    const int QD = cfg->n_heads * cfg->head_dim;
    const float eps = cfg->rms_norm_eps;
    gc_status st;
    if ((st = linear(c, layer, GC_LIN_O, sc->tmp, sc->att, lw->wo, n, H, QD, e)))
        return st;
    gc_rmsnorm(sc->tmp, sc->tmp, lw->post_attn_norm, n, H, H, eps);
    gc_add(x, sc->tmp, n * H);
    gc_rmsnorm(sc->xn, x, lw->pre_ffn_norm, n, H, H, eps);
    if ((st = linear(c, layer, GC_LIN_GATE, sc->gate, sc->xn, lw->w_gate, n, FF, H, e)) ||
        (st = linear(c, layer, GC_LIN_UP, sc->up, sc->xn, lw->w_up, n, FF, H, e)))
        return st;
    if (c->lowp_engine)
        gc_lowp_gelu_tanh_mul(c->lowp_engine, sc->gate, sc->up, (int)n, FF);
    else
        gc_gelu_tanh_mul(sc->gate, sc->up, n * FF);
    if ((st = linear(c, layer, GC_LIN_DOWN, sc->tmp, sc->gate, lw->w_down, n, H, FF, e)))
        return st;
    gc_rmsnorm(sc->tmp, sc->tmp, lw->post_ffn_norm, n, H, H, eps);
    gc_add(x, sc->tmp, n * H);
    return GC_OK;
}

/* One transformer layer. rows == NULL: every token, the residual stream sc->x updated in
 * place. Else only the R output rows rows[0..R) (the last layer when a classifier reads one
 * position per sequence): keys and values still come from every token, but queries, o_proj
 * and the MLP run on those rows, whose residual stream goes to sc->out_x. */
static gc_status layer_forward(const gc_ctx *c, const scratch *sc, int layer, const gc_batch *b,
                               const gc_prefix *prefix, int n_past, size_t T, const int32_t *rows,
                               int R, gc_err *e)
{
    const gc_config *cfg = c->cfg;
    const int H = cfg->hidden_size;
    const gc_layer_weights *lw = &c->w->layers[layer];
    const rope_cache *rc = &c->rope[cfg->layer_sliding[layer] ? 1 : 0];
    gc_status st = project_kv(c, sc, layer, lw, rc, T, e);
    if (st)
        return st;
    if (!rows) {
        if ((st = project_q(c, sc, layer, lw, rc, sc->xn, T, NULL, e)))
            return st;
        size_t off = 0;
        for (int s = 0; s < b->n_seq; s++) {
            attend_sequence(cfg, sc, layer, off, b->seq_len[s], n_past ? prefix->k[layer] : NULL,
                            n_past ? prefix->v[layer] : NULL, n_past);
            off += (size_t)b->seq_len[s];
        }
        return attn_out_and_mlp(c, sc, layer, lw, sc->x, T, e);
    }
    for (int r = 0; r < R; r++)
        memcpy(sc->tmp + (size_t)r * H, sc->xn + (size_t)rows[r] * H, H * sizeof(float));
    if ((st = project_q(c, sc, layer, lw, rc, sc->tmp, (size_t)R, rows, e)))
        return st;
    for (int r = 0; r < R; r++) {
        attend_row(c, sc, layer, r, (size_t)rows[r], prefix, n_past);
        memcpy(sc->out_x + (size_t)r * H, sc->x + (size_t)rows[r] * H, H * sizeof(float));
    }
    return attn_out_and_mlp(c, sc, layer, lw, sc->out_x, (size_t)R, e);
}

/* Arena, RoPE tables, positions and the capture's room for a batch of T tokens; returns the
 * scratch layout. */
static gc_status forward_prepare(gc_ctx *c, const gc_batch *b, gc_prefix *capture, size_t T,
                                 int max_len, int n_past, int R, scratch *sc, gc_err *e)
{
    const int n_rows = b->n_rows > 0 ? b->n_rows : 0;
    gc_status st = ensure_arena(c, scratch_floats(c->cfg, T, max_len, n_past, R, n_rows), e);
    if (st || (st = ensure_rope(c, n_past + max_len, e)))
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
    *sc = scratch_slice(c->arena, c->cfg, T, max_len, n_past, R);
    for (int s = 0, t = 0; s < b->n_seq; s++)
        for (int i = 0; i < b->seq_len[s]; i++)
            c->pos[t++] = n_past + i;
    return GC_OK;
}

/* Embeddings, scaled by sqrt(hidden) rounded to float32 as transformers does. */
static void embed(const gc_ctx *c, const scratch *sc, const gc_batch *b, size_t T)
{
    const int H = c->cfg->hidden_size;
    const float emb_scale = (float)sqrt((double)H);
    for (size_t t = 0; t < T; t++) {
        const float *er = c->w->embed + (size_t)b->tokens[t] * H;
        for (int i = 0; i < H; i++)
            sc->x[t * H + i] = er[i] * emb_scale;
    }
}

/* Final norm and LM head, only at the requested positions and vocabulary rows. pruned: the
 * output rows' residual stream is in sc->out_x already. */
static void logits_out(const gc_ctx *c, const scratch *sc, gc_batch *b, int R, int pruned)
{
    const gc_config *cfg = c->cfg;
    const int H = cfg->hidden_size;
    for (int i = 0; i < R; i++) {
        size_t t = b->n_out < 0 ? (size_t)i : (size_t)b->out_idx[i];
        const float *src = pruned ? sc->out_x + (size_t)i * H : sc->x + t * H;
        gc_rmsnorm(sc->out_x + (size_t)i * H, src, c->w->final_norm, 1, H, H, cfg->rms_norm_eps);
    }
    const float *head = c->w->lm_head;
    int n_cols = cfg->vocab_size;
    if (b->n_rows > 0) {
        for (int r = 0; r < b->n_rows; r++)
            memcpy(sc->head_rows + (size_t)r * H, head + (size_t)b->rows[r] * H,
                   H * sizeof(float));
        head = sc->head_rows;
        n_cols = b->n_rows;
    }
    matmul(b->logits, sc->out_x, head, R, n_cols, H);
    if (cfg->final_softcap > 0)
        gc_softcap(b->logits, (size_t)R * n_cols, cfg->final_softcap);
}

/* After layer l: b->hidden[l + 1] (the last one after the final norm, as transformers
 * reports it). */
static void keep_hidden(const gc_ctx *c, const scratch *sc, gc_batch *b, int l, size_t T)
{
    const gc_config *cfg = c->cfg;
    const size_t H = (size_t)cfg->hidden_size;
    float *hl = b->hidden + (size_t)(l + 1) * T * H;
    if (l + 1 < cfg->n_layers)
        memcpy(hl, sc->x, T * H * sizeof(float));
    else
        gc_rmsnorm(hl, sc->x, c->w->final_norm, T, (int)H, H, cfg->rms_norm_eps);
}

/* The whole forward pass. `prefix` (read) supplies cached keys; `capture` (may be the same
 * object) receives this batch's keys/values appended after its current length; it requires a
 * single-sequence batch. */
static gc_status forward_cpu(gc_ctx *c, const gc_prefix *prefix, gc_prefix *capture,
                             gc_batch *b, gc_err *e)
{
    const gc_config *cfg = c->cfg;
    size_t T = 0;
    int max_len = 0;
    gc_status st = check_batch(c, prefix, b, &T, &max_len, e);
    if (st || T == 0)
        return st;
    if (capture && b->n_seq != 1)
        return gc_fail(e, GC_EINVAL, "prefix capture needs exactly one sequence");
    const size_t KD = (size_t)cfg->n_kv_heads * cfg->head_dim;
    const int n_past = prefix ? prefix->n : 0;
    const int R = b->n_out < 0 ? (int)T : b->n_out;
    if (c->opts.threads > 0)
        openblas_set_num_threads(blas_threads(c));
    scratch sc;
    if ((st = forward_prepare(c, b, capture, T, max_len, n_past, R, &sc, e)))
        return st;
    embed(c, &sc, b, T);
    if (b->hidden)
        memcpy(b->hidden, sc.x, T * cfg->hidden_size * sizeof(float));

    /* Only some positions wanted and nothing else read from the last layer: prune it. */
    const int prune = b->logits && b->n_out >= 0 && (size_t)b->n_out < T && !b->hidden && !capture;
    for (int l = 0; l < cfg->n_layers; l++) {
        if (c->opts.interrupt && c->opts.interrupt(c->opts.interrupt_arg))
            return gc_fail(e, GC_ECANCELED, "canceled");
        if (prune && l == cfg->n_layers - 1) {
            if (R > 0 && (st = layer_forward(c, &sc, l, b, prefix, n_past, T, b->out_idx, R, e)))
                return st;
            break;
        }
        if ((st = layer_forward(c, &sc, l, b, prefix, n_past, T, NULL, 0, e)))
            return st;
        if (capture) {
            memcpy(capture->k[l] + (size_t)capture->n * KD, sc.k, T * KD * sizeof(float));
            memcpy(capture->v[l] + (size_t)capture->n * KD, sc.v, T * KD * sizeof(float));
        }
        if (b->hidden)
            keep_hidden(c, &sc, b, l, T);
    }
    if (capture)
        capture->n += (int)T;
    if (b->logits && R > 0)
        logits_out(c, &sc, b, R, prune);
    return GC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* public entry points: the CUDA plugin, when chosen, takes over here and only here          */

static gc_status device_fail(gc_err *e, const char *what, const char *msg)
{
    return gc_fail(e, GC_EDEVICE, "CUDA %s failed: %s", what, *msg ? msg : "unknown error");
}

/* A prefix made on a CUDA context whose context then fell back to the CPU: compute its keys
 * and values on the CPU from the ids it kept (once; the device copy is dropped). */
static gc_status prefix_to_cpu(gc_ctx *c, gc_prefix *p, gc_err *e)
{
    int n = p->n;
    gc_batch b = {.n_seq = 1, .tokens = p->ids, .seq_len = &n, .n_out = 0};
    p->api->prefix_free(p->dprefix);
    p->dprefix = NULL;
    p->n = 0;
    return forward_cpu(c, NULL, p, &b, e);
}

gc_status gc_forward(gc_ctx *c, const gc_prefix *prefix, gc_batch *b, gc_err *e)
{
    gc_status st = ctx_check_broken(c, e);
    if (st)
        return st;
    if (c->dmodel) {
        char msg[512] = "";
        if (prefix && !prefix->dprefix)
            return gc_fail(e, GC_EINVAL, "prefix was not created on this CUDA context");
        size_t T;
        int max_len;
        st = check_batch(c, prefix, b, &T, &max_len, e);
        if (st)
            return st;
        int rc = c->api->forward(c->dmodel, prefix ? prefix->dprefix : NULL, b, msg, sizeof msg);
        if (rc == GC_CUDA_BROKEN && (st = ctx_cuda_broken(c, "forward", msg, e)))
            return st;
        if (rc != GC_CUDA_BROKEN)
            return rc ? device_fail(e, "forward", msg) : GC_OK;
        /* AUTO after a fatal error: this forward runs again on the CPU, below */
    }
    if (prefix && prefix->dprefix) {
        if (!*c->broken || !prefix->ids)
            return gc_fail(e, GC_EINVAL, "prefix was created on a CUDA context");
        if ((st = prefix_to_cpu(c, (gc_prefix *)prefix, e)))
            return st;
    }
    return forward_cpu(c, prefix, NULL, b, e);
}

gc_status gc_prefix_new(gc_ctx *c, const int32_t *ids, int n, gc_prefix **out, gc_err *e)
{
    *out = NULL;
    if (n < 1 || !ids)
        return gc_fail(e, GC_EINVAL, "prefix: needs at least one token");
    gc_status st = ctx_check_broken(c, e);
    if (st)
        return st;
    gc_prefix *p = prefix_alloc(c->m);
    if (!p)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    if (c->dmodel) {
        char msg[512] = "";
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= c->cfg->vocab_size) {
                gc_prefix_free(p);
                return gc_fail(e, GC_EINVAL, "prefix: token id %d outside the vocabulary",
                               ids[i]);
            }
        p->ids = malloc((size_t)n * sizeof *p->ids);
        if (!p->ids) {
            gc_prefix_free(p);
            return gc_fail(e, GC_ENOMEM, "out of memory");
        }
        memcpy(p->ids, ids, (size_t)n * sizeof *ids);
        p->api = c->api;
        int rc = c->api->prefix_new(c->dmodel, ids, n, &p->dprefix, msg, sizeof msg);
        if (rc == 0) {
            p->n = n;
            *out = p;
            return GC_OK;
        }
        p->dprefix = NULL;
        if (rc != GC_CUDA_BROKEN) {
            gc_prefix_free(p);
            return device_fail(e, "prefix", msg);
        }
        if ((st = ctx_cuda_broken(c, "prefix", msg, e))) {
            gc_prefix_free(p);
            return st;
        }
        /* AUTO after a fatal error: build the prefix on the CPU, below */
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
