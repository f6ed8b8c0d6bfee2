/* Device copies of a model's weights, uploaded once per process: every context that uploads
 * the same host weights (same mapping) to the same device in the same precision shares one
 * refcounted gcu_weights. Everything lives in a single device allocation, sized up front so the
 * free-memory check happens before any copy. Norm weights and RoPE tables stay F32 in every
 * mode; the four projection matrices of each layer are stacked (q|k|v and gate|up, each one
 * GEMM) and stored F32, or BF16 in GC_CUDA_BF16, as are the embedding table and lm_head (the
 * 262k x 640 table of gemma-3-270m is 671 MB in F32): the embedding gather converts its rows to
 * F32, and the label rows a classifier scores are taken in F32 from the host model instead
 * (forward.cu), so only the full-vocabulary logits use the BF16 table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_cuda.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static gcu_weights *registry;

#define ALIGN 256

static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* Carves aligned pieces out of the pool; with pool == NULL it only counts bytes. */
typedef struct carver {
    char *pool;
    size_t used;
} carver;

static void *carve(carver *c, size_t bytes)
{
    void *p = c->pool ? c->pool + c->used : NULL;
    c->used += align_up(bytes);
    return p;
}

static int check_config(const gc_config *c, const gc_weights *w, char *err, size_t errlen)
{
    if (c->n_layers <= 0 || c->n_layers > GC_MAX_LAYERS || c->hidden_size <= 0 ||
        c->vocab_size <= 0 || c->intermediate_size <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0)
        return gcu_fail(err, errlen, "invalid model configuration for CUDA upload");
    if (c->n_heads % c->n_kv_heads)
        return gcu_fail(err, errlen, "CUDA: %d attention heads not a multiple of %d kv heads",
                        c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2 || c->head_dim > GCU_MAX_HEAD_DIM)
        return gcu_fail(err, errlen, "CUDA: head_dim %d unsupported (even, at most %d)",
                        c->head_dim, GCU_MAX_HEAD_DIM);
    if (c->n_heads / c->n_kv_heads > GCU_MAX_REP ||
        c->n_heads / c->n_kv_heads * c->head_dim > GCU_MAX_GROUP_DIM)
        return gcu_fail(err, errlen,
                        "CUDA: %d query heads per kv head of dimension %d unsupported (at most "
                        "%d heads, %d values per group)",
                        c->n_heads / c->n_kv_heads, c->head_dim, GCU_MAX_REP, GCU_MAX_GROUP_DIM);
    if (!w->embed || !w->final_norm || !w->lm_head)
        return gcu_fail(err, errlen, "CUDA upload: missing embedding, final norm or lm_head");
    for (int i = 0; i < c->n_layers; i++) {
        const gc_layer_weights *L = &w->layers[i];
        if (!L->input_norm || !L->post_attn_norm || !L->pre_ffn_norm || !L->post_ffn_norm ||
            !L->q_norm || !L->k_norm || !L->wq || !L->wk || !L->wv || !L->wo || !L->w_gate ||
            !L->w_up || !L->w_down)
            return gcu_fail(err, errlen, "CUDA upload: layer %d has a missing tensor", i);
    }
    return 0;
}

/* inv_freq[i] = 1 / base^(2i / dim) / factor, rounded to F32 as transformers (and the CPU
 * path, ops.c) builds it; the angle position * inv_freq is then formed in F32 on the device. */
static void rope_table(double base, double factor, int hd, float *out)
{
    for (int i = 0; i < hd / 2; i++) {
        float inv = (float)(1.0 / pow(base, (double)(float)(2.0 * i / hd)));
        out[i] = factor > 0.0 ? (float)(inv / factor) : inv;
    }
}

/* Lays out (pool == NULL: measures) every tensor of the model. */
static void layout(gcu_weights *dw, carver *c, float **rope_local, float **rope_global)
{
    const gc_config *k = &dw->cfg;
    size_t H = k->hidden_size, V = k->vocab_size, I = k->intermediate_size;
    size_t qd = (size_t)k->n_heads * k->head_dim, kvd = (size_t)k->n_kv_heads * k->head_dim;
    size_t el = dw->precision == GC_CUDA_BF16 ? 2 : 4;
    dw->table_bf16 = dw->precision == GC_CUDA_BF16;
    dw->embed = carve(c, V * H * el);
    dw->lm_head = dw->host_lm_head == dw->host_embed ? dw->embed : carve(c, V * H * el);
    dw->final_norm = (const float *)carve(c, H * 4);
    *rope_local = (float *)carve(c, (size_t)k->head_dim / 2 * 4);
    *rope_global = (float *)carve(c, (size_t)k->head_dim / 2 * 4);
    for (int i = 0; i < k->n_layers; i++) {
        gcu_layer *L = &dw->layers[i];
        L->input_norm = (const float *)carve(c, H * 4);
        L->post_attn_norm = (const float *)carve(c, H * 4);
        L->pre_ffn_norm = (const float *)carve(c, H * 4);
        L->post_ffn_norm = (const float *)carve(c, H * 4);
        L->q_norm = (const float *)carve(c, (size_t)k->head_dim * 4);
        L->k_norm = (const float *)carve(c, (size_t)k->head_dim * 4);
        L->wqkv = carve(c, (qd + 2 * kvd) * H * el);
        L->wo = carve(c, H * qd * el);
        L->wgu = carve(c, 2 * I * H * el);
        L->wdown = carve(c, H * I * el);
        L->inv_freq = k->layer_sliding[i] ? *rope_local : *rope_global;
    }
}

/* Copies n floats from the host to dst, converting to BF16 through a device staging buffer of
 * staging_n floats when bf16 (in pieces: the embedding table is larger than any layer matrix). */
static int put(void *dst, const float *src, size_t n, int bf16, float *staging,
               size_t staging_n, cudaStream_t st, char *err, size_t errlen)
{
    if (!bf16) {
        CU_RET(cudaMemcpyAsync(dst, src, n * 4, cudaMemcpyHostToDevice, st));
        return 0;
    }
    for (size_t i = 0; i < n; i += staging_n) {
        size_t k = n - i < staging_n ? n - i : staging_n;
        CU_RET(cudaMemcpyAsync(staging, src + i, k * 4, cudaMemcpyHostToDevice, st));
        if (gcu_to_bf16(st, staging, k, (__nv_bfloat16 *)dst + i, err, errlen))
            return -1;
        /* the staging buffer is reused by the next piece: wait for this conversion */
        CU_RET(cudaStreamSynchronize(st));
    }
    return 0;
}

static int upload(gcu_weights *dw, const gc_weights *w, char *err, size_t errlen)
{
    const gc_config *k = &dw->cfg;
    size_t H = k->hidden_size, V = k->vocab_size, I = k->intermediate_size;
    size_t qd = (size_t)k->n_heads * k->head_dim, kvd = (size_t)k->n_kv_heads * k->head_dim;
    int bf16 = dw->precision == GC_CUDA_BF16;
    size_t el = bf16 ? 2 : 4;
    float *staging = NULL, *rl = NULL, *rg = NULL;
    float *tables = NULL;
    cudaStream_t st = NULL;
    carver c = {NULL, 0};
    size_t free_b = 0, total_b = 0, biggest = I * H > qd * H ? I * H : qd * H;

    layout(dw, &c, &rl, &rg);
    dw->pool_bytes = c.used;
    CU_GOTO(cudaMemGetInfo(&free_b, &total_b));
    {
        size_t extra = (bf16 ? biggest * 4 : 0) + ((size_t)64 << 20); /* staging, headroom */
        if (dw->pool_bytes + extra > free_b) {
            gcu_fail(err, errlen,
                     "not enough GPU memory on device %d: the model needs %zu MiB (+%zu MiB "
                     "working space), %zu MiB free of %zu MiB",
                     dw->device, (dw->pool_bytes + (1 << 20) - 1) >> 20, extra >> 20,
                     free_b >> 20, total_b >> 20);
            goto fail;
        }
    }
    CU_GOTO(cudaMalloc(&dw->pool, dw->pool_bytes));
    c.pool = (char *)dw->pool;
    c.used = 0;
    layout(dw, &c, &rl, &rg);
    CU_GOTO(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    if (bf16)
        CU_GOTO(cudaMalloc(&staging, biggest * 4));

#define PUT(dst, src, n, conv)                                                            \
    do {                                                                                  \
        if (put((void *)(dst), (src), (n), (conv), staging, biggest, st, err, errlen))    \
            goto fail;                                                                    \
    } while (0)
    PUT(dw->embed, w->embed, V * H, bf16);
    if (dw->lm_head != dw->embed)
        PUT(dw->lm_head, w->lm_head, V * H, bf16);
    PUT(dw->final_norm, w->final_norm, H, 0);
    tables = (float *)malloc((size_t)k->head_dim * sizeof(float));
    if (!tables) {
        gcu_fail(err, errlen, "out of host memory");
        goto fail;
    }
    rope_table(k->rope_theta_local, k->rope_scale_local, k->head_dim, tables);
    rope_table(k->rope_theta_global, k->rope_scale_global, k->head_dim, tables + k->head_dim / 2);
    PUT(rl, tables, (size_t)k->head_dim / 2, 0);
    PUT(rg, tables + k->head_dim / 2, (size_t)k->head_dim / 2, 0);
    for (int i = 0; i < k->n_layers; i++) {
        const gc_layer_weights *s = &w->layers[i];
        gcu_layer *L = &dw->layers[i];
        char *qkv = (char *)L->wqkv, *gu = (char *)L->wgu;
        PUT(L->input_norm, s->input_norm, H, 0);
        PUT(L->post_attn_norm, s->post_attn_norm, H, 0);
        PUT(L->pre_ffn_norm, s->pre_ffn_norm, H, 0);
        PUT(L->post_ffn_norm, s->post_ffn_norm, H, 0);
        PUT(L->q_norm, s->q_norm, (size_t)k->head_dim, 0);
        PUT(L->k_norm, s->k_norm, (size_t)k->head_dim, 0);
        PUT(qkv, s->wq, qd * H, bf16);
        PUT(qkv + qd * H * el, s->wk, kvd * H, bf16);
        PUT(qkv + (qd + kvd) * H * el, s->wv, kvd * H, bf16);
        PUT(L->wo, s->wo, H * qd, bf16);
        PUT(gu, s->w_gate, I * H, bf16);
        PUT(gu + I * H * el, s->w_up, I * H, bf16);
        PUT(L->wdown, s->w_down, H * I, bf16);
    }
#undef PUT
    /* the host tables must outlive the asynchronous copies */
    CU_GOTO(cudaStreamSynchronize(st));
    free(tables);
    if (staging)
        cudaFree(staging);
    cudaStreamDestroy(st);
    return 0;
fail:
    if (st) {
        cudaStreamSynchronize(st);
        cudaStreamDestroy(st);
    }
    free(tables);
    if (staging)
        cudaFree(staging);
    if (dw->pool)
        cudaFree(dw->pool);
    dw->pool = NULL;
    return -1;
}

int gcu_weights_acquire(const gc_config *cfg, const gc_weights *w, int device, int precision,
                        gcu_weights **out, char *err, size_t errlen)
{
    *out = NULL;
    if (check_config(cfg, w, err, errlen))
        return -1;
    pthread_mutex_lock(&registry_lock);
    for (gcu_weights *d = registry; d; d = d->next) {
        if (d->host_embed == w->embed && d->host_lm_head == w->lm_head && d->device == device &&
            d->precision == precision && !memcmp(&d->cfg, cfg, sizeof *cfg)) {
            d->refs++;
            *out = d;
            pthread_mutex_unlock(&registry_lock);
            return 0;
        }
    }
    gcu_weights *d = (gcu_weights *)calloc(1, sizeof *d);
    if (!d) {
        pthread_mutex_unlock(&registry_lock);
        return gcu_fail(err, errlen, "out of host memory");
    }
    d->cfg = *cfg;
    d->device = device;
    d->precision = precision;
    d->host_embed = w->embed;
    d->host_lm_head = w->lm_head;
    d->refs = 1;
    /* uploading under the lock keeps two contexts from uploading the same model twice */
    if (upload(d, w, err, errlen)) {
        pthread_mutex_unlock(&registry_lock);
        free(d);
        return -1;
    }
    d->next = registry;
    registry = d;
    pthread_mutex_unlock(&registry_lock);
    *out = d;
    return 0;
}

void gcu_weights_release(gcu_weights *dw)
{
    if (!dw)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--dw->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (gcu_weights **p = &registry; *p; p = &(*p)->next) {
        if (*p == dw) {
            *p = dw->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    int prev = 0;
    if (cudaGetDevice(&prev) == cudaSuccess && cudaSetDevice(dw->device) == cudaSuccess) {
        cudaFree(dw->pool);
        cudaSetDevice(prev);
    }
    free(dw);
}
