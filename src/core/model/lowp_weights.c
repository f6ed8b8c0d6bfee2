#include "model/lowp_weights.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOWP_ALIGN 64
#define LOWP_HEADER 64

struct gc_lowp_weights {
    gc_precision p;
    int n_layers;
    gc_lowp_matrix *m; /* [n_layers][GC_LIN_N] */
    void *base;        /* converted matrices: the cache file's mapping or malloc'd */
    size_t bytes;      /* mapping size, 0 when malloc'd (or nothing converted) */
};

/* File header: magic (written last), then the shape it was made for, checked on mapping. */
typedef struct lowp_header {
    char magic[8];
    uint64_t total;
    int32_t n_layers, hidden, intermediate, q_dim, kv_dim;
} lowp_header;

static size_t align_up(size_t n) { return (n + LOWP_ALIGN - 1) / LOWP_ALIGN * LOWP_ALIGN; }

static const char *magic_of(gc_precision p) { return p == GC_PRECISION_BF16 ? "GCBF16W1" : "GCINT8W1"; }

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

static void set_header(lowp_header *h, const gc_config *c, size_t total)
{
    memset(h, 0, sizeof *h);
    h->total = total;
    h->n_layers = c->n_layers;
    h->hidden = c->hidden_size;
    h->intermediate = c->intermediate_size;
    h->q_dim = c->n_heads * c->head_dim;
    h->kv_dim = c->n_kv_heads * c->head_dim;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct plan {
    const gc_config *cfg;
    const gc_weights *w;
    const uint16_t *const (*stored)[GC_LIN_N];
    gc_precision p;
    size_t total;
} plan;

static int in_place(const plan *P, int l, int which)
{
    return P->p == GC_PRECISION_BF16 && P->stored && P->stored[l][which];
}

/* Writes the whole file with write() (every block allocated before it is ever mapped, so a
 * full disk is an error here and never a SIGBUS later), the magic last, then renames it into
 * place. On failure the temporary file is removed. */
static gc_status write_cache(const plan *P, const char *dir, const char *path, gc_err *e)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.gemmaclf-tmp-XXXXXX", dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return gc_fail(e, GC_EIO, "cache dir %s: cannot create a file: %s", dir, strerror(errno));
    gc_status st = GC_OK;
    size_t cap = 0;
    unsigned char *buf = NULL;
    lowp_header h;
    set_header(&h, P->cfg, P->total);
    unsigned char head[LOWP_HEADER] = {0};
    memcpy(head, &h, sizeof h); /* magic still zero */
    int rc = posix_fallocate(fd, 0, (off_t)P->total);
    if (rc != 0 && rc != EOPNOTSUPP && rc != ENOSYS && rc != EINVAL) {
        errno = rc;
        goto io_fail;
    }
    if (write_all(fd, head, sizeof head))
        goto io_fail;
    for (int l = 0; l < P->cfg->n_layers; l++)
        for (int j = 0; j < GC_LIN_N; j++) {
            int n, k;
            const float *src;
            matrix_shape(P->cfg, j, &n, &k);
            size_t bytes = matrix_bytes(P->p, n, k, in_place(P, l, j));
            if (!bytes)
                continue;
            if (bytes > cap) {
                free(buf);
                cap = bytes;
                if (!(buf = calloc(1, cap))) {
                    st = gc_fail(e, GC_ENOMEM, "out of memory converting weights");
                    goto done;
                }
            }
            memset(buf, 0, bytes);
            matrix_f32(P->w, l, j, &src);
            convert_matrix(P->p, src, n, k, buf);
            if (write_all(fd, buf, bytes))
                goto io_fail;
        }
    memcpy(head, magic_of(P->p), 8); /* last, so a torn file never looks valid */
    if (pwrite(fd, head, 8, 0) != 8 || fsync(fd) != 0 || fchmod(fd, 0644) != 0 ||
        rename(tmp, path) != 0)
        goto io_fail;
    goto done;
io_fail:
    st = gc_fail(e, GC_EIO, "%s: cannot write the %s weight cache: %s", tmp,
                 gc_precision_name(P->p), strerror(errno));
done:
    free(buf);
    close(fd);
    if (st)
        unlink(tmp);
    return st;
}

/* Maps path when it is a complete cache file for this model; *ok = 0 when absent or stale. */
static gc_status map_cache(const plan *P, const char *path, gc_lowp_weights *lw, int *ok, gc_err *e)
{
    *ok = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return GC_OK;
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (size_t)sb.st_size == P->total) {
        void *p = mmap(NULL, P->total, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return gc_fail(e, GC_EIO, "%s: mmap failed: %s", path, strerror(errno));
        }
        lowp_header want, got;
        set_header(&want, P->cfg, P->total);
        memcpy(want.magic, magic_of(P->p), 8);
        memcpy(&got, p, sizeof got);
        if (!memcmp(&want, &got, sizeof want)) {
            lw->base = p;
            lw->bytes = P->total;
            *ok = 1;
        } else {
            munmap(p, P->total);
        }
    }
    close(fd);
    return GC_OK;
}

/* Points the matrices into the converted block (or the checkpoint's own BF16 data). */
static void assign(const plan *P, gc_lowp_weights *lw)
{
    size_t off = LOWP_HEADER;
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
                                const char *cache_dir, uint64_t key, gc_lowp_weights **out,
                                gc_err *e)
{
    *out = NULL;
    if (p != GC_PRECISION_BF16 && p != GC_PRECISION_INT8)
        return gc_fail(e, GC_EINVAL, "no reduced-precision weights for precision %d", (int)p);
    plan P = {.cfg = cfg, .w = w, .stored = stored_bf16, .p = p, .total = LOWP_HEADER};
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
    if (P.total == LOWP_HEADER) {
        /* every matrix used as stored */
    } else if (cache_dir && *cache_dir) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/gemmaclf-%016llx.%s", cache_dir, (unsigned long long)key,
                 gc_precision_name(p));
        int ok;
        if (!(st = map_cache(&P, path, lw, &ok, e)) && !ok &&
            !(st = write_cache(&P, cache_dir, path, e)) && !(st = map_cache(&P, path, lw, &ok, e)) &&
            !ok)
            st = gc_fail(e, GC_EIO, "%s: cache file vanished or is invalid", path);
    } else if (!(lw->base = aligned_alloc(LOWP_ALIGN, P.total))) {
        st = gc_fail(e, GC_ENOMEM, "out of memory converting weights to %s (%zu bytes)",
                     gc_precision_name(p), P.total);
    } else {
        unsigned char *b = (unsigned char *)lw->base + LOWP_HEADER;
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
