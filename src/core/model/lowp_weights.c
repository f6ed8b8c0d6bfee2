#include "model/lowp_weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/cache_file.h"
#include "common/fnv.h"

#define LOWP_ALIGN 64
#define LOWP_HEADER 64 /* unused bytes before the first matrix in memory: keeps its alignment */

struct gc_lowp_weights {
    gc_precision p;
    int n_layers;
    gc_lowp_matrix *m; /* [n_layers][GC_LIN_N] */
    void *base;        /* converted matrices: the cache file's mapping or malloc'd */
    size_t bytes;      /* mapping size, 0 when malloc'd (or nothing converted) */
};

/* The shape the converted block was made for: part of the cache copy's key. */
typedef struct lowp_shape {
    int32_t n_layers, hidden, intermediate, q_dim, kv_dim;
} lowp_shape;

static size_t align_up(size_t n) { return (n + LOWP_ALIGN - 1) / LOWP_ALIGN * LOWP_ALIGN; }

/* The cache copy's kind (common/cache_file.h); W2: that file's header. */
static const char *magic_of(gc_precision p) { return p == GC_PRECISION_BF16 ? "GCBF16W2" : "GCINT8W2"; }

/* f32 -> bf16, round to nearest even; NaN stays a (quiet) NaN. */
static void to_bf16(uint16_t *restrict out, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        out[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)r;
    }
}

/* One output channel: q = round(w / scale), scale = max|w| / 127 (0 for an all-zero row). */
static void quant_row(int8_t *restrict q, float *restrict scale, const float *restrict w, int k)
{
    float amax = 0;
    for (int i = 0; i < k; i++)
        amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    *scale = amax / 127.0f;
    for (int i = 0; i < k; i++) {
        /* |w * inv| <= 127 (clamped against rounding), so adding 1.5 * 2^23 rounds to nearest
         * even exactly, in a loop the compiler vectorises (lrintf is a call per weight) */
        float v = w[i] * inv;
        v = v == v ? v : 0.0f; /* NaN */
        v = v > 127.0f ? 127.0f : v;
        v = v < -127.0f ? -127.0f : v;
        q[i] = (int8_t)(int)((v + 12582912.0f) - 12582912.0f);
    }
}

static void matrix_f32(const gc_weights *w, int l, int which, const float **p)
{
    const gc_layer_weights *L = &w->layers[l];
    const float *all[GC_LIN_N] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
    *p = all[which];
}

static void matrix_shape(const gc_config *c, int which, int *n, int *k)
{
    const int H = c->hidden_size, FF = c->intermediate_size;
    const int QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
    const int s[GC_LIN_N][2] = {{QD, H}, {KD, H}, {KD, H}, {H, QD}, {FF, H}, {FF, H}, {H, FF}};
    *n = s[which][0];
    *k = s[which][1];
}

/* Bytes a matrix takes in the converted block (0 when used in place). */
static size_t matrix_bytes(gc_precision p, int n, int k, int in_place)
{
    if (in_place)
        return 0;
    if (p == GC_PRECISION_BF16)
        return align_up((size_t)n * k * 2);
    return align_up((size_t)n * k) + align_up((size_t)n * 4);
}

/* Converts one matrix into dst (matrix_bytes of it). */
static void convert_matrix(gc_precision p, const float *w, int n, int k, unsigned char *dst)
{
    if (p == GC_PRECISION_BF16) {
        to_bf16((uint16_t *)dst, w, (size_t)n * k);
        return;
    }
    int8_t *q = (int8_t *)dst;
    float *scale = (float *)(dst + align_up((size_t)n * k));
    for (int r = 0; r < n; r++)
        quant_row(q + (size_t)r * k, &scale[r], w + (size_t)r * k, k);
}

typedef struct plan {
    const gc_config *cfg;
    const gc_weights *w;
    const uint16_t *const (*stored)[GC_LIN_N];
    gc_precision p;
    size_t body;  /* offset of the first matrix: after the cache copy's header, or LOWP_HEADER */
    size_t total; /* body + every converted matrix */
} plan;

static int in_place(const plan *P, int l, int which)
{
    return P->p == GC_PRECISION_BF16 && P->stored && P->stored[l][which];
}

/* gc_cache_file's fill: every converted matrix, in order, from P->body on. */
static gc_status fill_cache(void *arg, int fd, const char *path, gc_err *e)
{
    const plan *P = arg;
    const char *what = P->p == GC_PRECISION_BF16 ? "bf16 weight cache" : "int8 weight cache";
    size_t cap = 0, off = P->body;
    unsigned char *buf = NULL;
    gc_status st = GC_OK;
    for (int l = 0; l < P->cfg->n_layers && !st; l++)
        for (int j = 0; j < GC_LIN_N && !st; j++) {
            int n, k;
            const float *src;
            matrix_shape(P->cfg, j, &n, &k);
            size_t bytes = matrix_bytes(P->p, n, k, in_place(P, l, j));
            if (!bytes)
                continue;
            if (bytes > cap) {
                free(buf);
                cap = bytes;
                if (!(buf = malloc(cap))) {
                    st = gc_fail(e, GC_ENOMEM, "out of memory converting weights");
                    break;
                }
            }
            memset(buf, 0, bytes);
            matrix_f32(P->w, l, j, &src);
            convert_matrix(P->p, src, n, k, buf);
            st = gc_cache_write_at(fd, path, what, off, buf, bytes, e);
            off += bytes;
        }
    free(buf);
    return st;
}

/* The copy's key: the checkpoint's (the caller's key) and the shape converted. */
static uint64_t shape_key(const gc_config *c, uint64_t key)
{
    lowp_shape sh;
    memset(&sh, 0, sizeof sh);
    sh.n_layers = c->n_layers;
    sh.hidden = c->hidden_size;
    sh.intermediate = c->intermediate_size;
    sh.q_dim = c->n_heads * c->head_dim;
    sh.kv_dim = c->n_kv_heads * c->head_dim;
    return gc_fnv1a(key, &sh, sizeof sh);
}

/* Points the matrices into the converted block (or the checkpoint's own BF16 data). */
static void assign(const plan *P, gc_lowp_weights *lw)
{
    size_t off = P->body;
    for (int l = 0; l < P->cfg->n_layers; l++)
        for (int j = 0; j < GC_LIN_N; j++) {
            gc_lowp_matrix *m = &lw->m[(size_t)l * GC_LIN_N + j];
            matrix_shape(P->cfg, j, &m->n, &m->k);
            if (in_place(P, l, j)) {
                m->w = P->stored[l][j];
                continue;
            }
            unsigned char *b = (unsigned char *)lw->base + off;
            m->w = b;
            if (P->p == GC_PRECISION_INT8)
                m->scale = (const float *)(b + align_up((size_t)m->n * m->k));
            off += matrix_bytes(P->p, m->n, m->k, 0);
        }
}

gc_status gc_lowp_weights_build(const gc_config *cfg, const gc_weights *w,
                                const uint16_t *const (*stored_bf16)[GC_LIN_N], gc_precision p,
                                const char *cache_dir, const char *source, uint64_t key,
                                gc_lowp_weights **out, gc_err *e)
{
    *out = NULL;
    if (p != GC_PRECISION_BF16 && p != GC_PRECISION_INT8)
        return gc_fail(e, GC_EINVAL, "no reduced-precision weights for precision %d", (int)p);
    int cached = cache_dir && *cache_dir;
    plan P = {.cfg = cfg, .w = w, .stored = stored_bf16, .p = p,
              .body = cached ? GC_CACHE_HEADER : LOWP_HEADER};
    P.total = P.body;
    for (int l = 0; l < cfg->n_layers; l++)
        for (int j = 0; j < GC_LIN_N; j++) {
            int n, k;
            matrix_shape(cfg, j, &n, &k);
            P.total += matrix_bytes(p, n, k, in_place(&P, l, j));
        }
    gc_lowp_weights *lw = calloc(1, sizeof *lw);
    if (!lw || !(lw->m = calloc((size_t)cfg->n_layers * GC_LIN_N, sizeof *lw->m))) {
        free(lw);
        return gc_fail(e, GC_ENOMEM, "out of memory");
    }
    lw->p = p;
    lw->n_layers = cfg->n_layers;
    gc_status st = GC_OK;
    if (P.total == P.body) {
        /* every matrix used as stored */
    } else if (cached) {
        gc_cache_file cf = {.dir = cache_dir, .magic = magic_of(p), .suffix = gc_precision_name(p),
                            .what = p == GC_PRECISION_BF16 ? "bf16 weight cache" : "int8 weight cache",
                            .key = shape_key(cfg, key), .total = P.total, .source = source,
                            .fill = fill_cache, .arg = &P};
        if (!(st = gc_cache_file_map(&cf, &lw->base, e)))
            lw->bytes = P.total;
    } else if (!(lw->base = aligned_alloc(LOWP_ALIGN, P.total))) {
        st = gc_fail(e, GC_ENOMEM, "out of memory converting weights to %s (%zu bytes)",
                     gc_precision_name(p), P.total);
    } else {
        unsigned char *b = (unsigned char *)lw->base + P.body;
        for (int l = 0; l < cfg->n_layers; l++)
            for (int j = 0; j < GC_LIN_N; j++) {
                int n, k;
                const float *src;
                matrix_shape(cfg, j, &n, &k);
                size_t bytes = matrix_bytes(p, n, k, in_place(&P, l, j));
                if (!bytes)
                    continue;
                memset(b, 0, bytes);
                matrix_f32(w, l, j, &src);
                convert_matrix(p, src, n, k, b);
                b += bytes;
            }
    }
    if (st) {
        gc_lowp_weights_free(lw);
        return st;
    }
    assign(&P, lw);
    *out = lw;
    return GC_OK;
}

void gc_lowp_weights_free(gc_lowp_weights *lw)
{
    if (!lw)
        return;
    if (lw->bytes)
        munmap(lw->base, lw->bytes);
    else
        free(lw->base);
    free(lw->m);
    free(lw);
}

const gc_lowp_matrix *gc_lowp_layer(const gc_lowp_weights *lw, int layer)
{
    return &lw->m[(size_t)layer * GC_LIN_N];
}

gc_precision gc_lowp_precision(const gc_lowp_weights *lw) { return lw->p; }
