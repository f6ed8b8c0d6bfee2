#include "model/lowp_matmul.h"

#include <stdio.h>

#include "model/cpu_features.h"
#include "model/ops.h"

#ifdef GC_NO_DNNL /* built without oneDNN: bf16 / int8 are never available */

int gc_lowp_supported(gc_precision p, char *why, size_t cap)
{
    if (p == GC_PRECISION_F32)
        return 1;
    snprintf(why, cap, "precision %s needs oneDNN, which this build of gemmaclf lacks",
             gc_precision_name(p));
    return 0;
}

gc_status gc_lowp_engine_new(gc_precision p, int threads, gc_lowp_engine **out, gc_err *e)
{
    (void)threads;
    *out = NULL;
    return gc_fail(e, GC_EUNSUPPORTED, "precision %s: built without oneDNN",
                   gc_precision_name(p));
}

void gc_lowp_engine_free(gc_lowp_engine *g) { (void)g; }

gc_status gc_lowp_matmul(gc_lowp_engine *g, float *y, const float *x, const gc_lowp_matrix *w,
                         int M, gc_err *e)
{
    (void)g, (void)y, (void)x, (void)w, (void)M;
    return gc_fail(e, GC_EUNSUPPORTED, "built without oneDNN");
}

void gc_lowp_gelu_tanh_mul(gc_lowp_engine *g, float *gate, const float *up, int rows, int cols)
{
    (void)g;
    gc_gelu_tanh_mul(gate, up, (size_t)rows * cols);
}

#else

#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PRIM_CACHE 256 /* (M, N, K) entries: ~5 shapes per layer x the row counts in use */
#define SMALL_PRODUCT (8.0 * 1024 * 1024) /* multiply-adds below which one thread runs it */
#define PARALLEL_ROWS 256                  /* rows below which one thread runs it */

typedef struct prim_entry {
    int M, N, K;         /* M = 0: empty slot */
    unsigned long used;  /* last use, for eviction */
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst; /* data handles set per call */
} prim_entry;

struct gc_lowp_engine {
    gc_precision p;
    int threads;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    prim_entry cache[PRIM_CACHE];
    unsigned long tick;
    void *xq;      /* converted activations: bf16 or int8 [M][K] */
    size_t xq_cap; /* bytes */
    void *xs;      /* int8: per-token scales, float [M] */
    size_t xs_cap; /* bytes */
};

int gc_lowp_supported(gc_precision p, char *why, size_t cap)
{
    unsigned f = gc_cpu_features();
    if (p == GC_PRECISION_F32)
        return 1;
    if (p == GC_PRECISION_BF16 && (f & (GC_CPU_AVX512_BF16 | GC_CPU_AMX_BF16)))
        return 1;
    if (p == GC_PRECISION_INT8 && (f & (GC_CPU_AVX512_VNNI | GC_CPU_AMX_INT8)))
        return 1;
    char have[96];
    snprintf(why, cap, "precision %s needs %s, which this CPU does not have (it has: %s)",
             gc_precision_name(p),
             p == GC_PRECISION_BF16 ? "AVX512-BF16 or AMX-BF16" : "AVX512-VNNI or AMX-INT8",
             gc_cpu_feature_names(f, have, sizeof have));
    return 0;
}

/* oneDNN picks its kernels from the CPU it finds; when GEMMACLF_CPU_FEATURES hides AMX (or
 * more), cap it to match so that the simulated CPU runs the kernels a real one would. Only
 * possible before oneDNN's first primitive in the process, hence once. */
static void cap_isa(void)
{
    unsigned f = gc_cpu_features();
    if (f & (GC_CPU_AMX_BF16 | GC_CPU_AMX_INT8))
        return;
    dnnl_set_max_cpu_isa(f & GC_CPU_AVX512_BF16 ? dnnl_cpu_isa_avx512_core_bf16
                                                : dnnl_cpu_isa_avx512_core_vnni);
}
static pthread_once_t cap_once = PTHREAD_ONCE_INIT;

static const char *dnnl_status_text(dnnl_status_t s)
{
    switch (s) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation";
    case dnnl_runtime_error: return "runtime error";
    default: return "error";
    }
}

static gc_status dnnl_fail(gc_err *e, dnnl_status_t s, const char *what, int M, int N, int K)
{
    return gc_fail(e, s == dnnl_out_of_memory ? GC_ENOMEM : GC_EUNSUPPORTED,
                   "oneDNN %s (%d x %d x %d): %s (status %d)", what, M, N, K,
                   dnnl_status_text(s), (int)s);
}

gc_status gc_lowp_engine_new(gc_precision p, int threads, gc_lowp_engine **out, gc_err *e)
{
    *out = NULL;
    char why[256];
    if (p != GC_PRECISION_BF16 && p != GC_PRECISION_INT8)
        return gc_fail(e, GC_EINVAL, "no reduced-precision engine for %s", gc_precision_name(p));
    if (!gc_lowp_supported(p, why, sizeof why))
        return gc_fail(e, GC_EUNSUPPORTED, "%s", why);
    pthread_once(&cap_once, cap_isa);
    gc_lowp_engine *g = calloc(1, sizeof *g);
    if (!g)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    g->p = p;
    g->threads = threads;
    dnnl_status_t s = dnnl_engine_create(&g->eng, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_stream_create(&g->strm, g->eng, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        gc_lowp_engine_free(g);
        return dnnl_fail(e, s, "engine", 0, 0, 0);
    }
    *out = g;
    return GC_OK;
}

static void entry_clear(prim_entry *pe)
{
    if (pe->prim)
        dnnl_primitive_destroy(pe->prim);
    if (pe->src)
        dnnl_memory_destroy(pe->src);
    if (pe->wei)
        dnnl_memory_destroy(pe->wei);
    if (pe->dst)
        dnnl_memory_destroy(pe->dst);
    memset(pe, 0, sizeof *pe);
}

void gc_lowp_engine_free(gc_lowp_engine *g)
{
    if (!g)
        return;
    for (int i = 0; i < PRIM_CACHE; i++)
        entry_clear(&g->cache[i]);
    if (g->strm)
        dnnl_stream_destroy(g->strm);
    if (g->eng)
        dnnl_engine_destroy(g->eng);
    free(g->xq);
    free(g->xs);
    free(g);
}

static dnnl_status_t md2(dnnl_memory_desc_t *md, int64_t a, int64_t b, dnnl_data_type_t dt,
                         dnnl_format_tag_t tag)
{
    dnnl_dims_t d = {a, b};
    return dnnl_memory_desc_init_by_tag(md, 2, d, dt, tag);
}

/* A primitive for x[M][K] . W[N][K]^T, weights as stored (W^T is {K, N} in tag ba). Runtime
 * dimensions or runtime scales would spare the per-M primitives, but oneDNN 2.6 then leaves
 * its brgemm (AMX / VNNI) kernels for a 2-5x slower path (bench/bench_gemm_precision.c). */
static dnnl_status_t entry_create(gc_lowp_engine *g, prim_entry *pe, int M, int N, int K)
{
    const dnnl_data_type_t dt = g->p == GC_PRECISION_BF16 ? dnnl_bf16 : dnnl_s8;
    const dnnl_data_type_t ddt = g->p == GC_PRECISION_BF16 ? dnnl_f32 : dnnl_s32;
    dnnl_memory_desc_t src, wei, dst;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s;
    if ((s = md2(&src, M, K, dt, dnnl_ab)) || (s = md2(&wei, K, N, dt, dnnl_ba)) ||
        (s = md2(&dst, M, N, ddt, dnnl_ab)) ||
        (s = dnnl_matmul_desc_init(&desc, &src, &wei, NULL, &dst)) ||
        (s = dnnl_primitive_desc_create(&pd, &desc, NULL, g->eng, NULL)))
        return s;
    s = dnnl_primitive_create(&pe->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (!s)
        s = dnnl_memory_create(&pe->src, &src, g->eng, DNNL_MEMORY_NONE);
    if (!s)
        s = dnnl_memory_create(&pe->wei, &wei, g->eng, DNNL_MEMORY_NONE);
    if (!s)
        s = dnnl_memory_create(&pe->dst, &dst, g->eng, DNNL_MEMORY_NONE);
    if (s) {
        entry_clear(pe);
        return s;
    }
    pe->M = M, pe->N = N, pe->K = K;
    return dnnl_success;
}

static gc_status get_entry(gc_lowp_engine *g, int M, int N, int K, prim_entry **out, gc_err *e)
{
    prim_entry *victim = &g->cache[0];
    g->tick++;
    for (int i = 0; i < PRIM_CACHE; i++) {
        prim_entry *pe = &g->cache[i];
        if (pe->M == M && pe->N == N && pe->K == K) {
            pe->used = g->tick;
            *out = pe;
            return GC_OK;
        }
        if (pe->used < victim->used)
            victim = pe;
    }
    entry_clear(victim);
    dnnl_status_t s = entry_create(g, victim, M, N, K);
    if (s != dnnl_success)
        return dnnl_fail(e, s, "matmul", M, N, K);
    victim->used = g->tick;
    *out = victim;
    return GC_OK;
}

static int grow(void **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = (need + need / 4 + 63) / 64 * 64;
    void *p = aligned_alloc(64, n);
    if (!p)
        return -1;
    free(*buf);
    *buf = p;
    *cap = n;
    return 0;
}

/* f32 -> bf16, round to nearest even; NaN stays NaN. Plain C: the compiler vectorises it for
 * whatever the build targets, and no instruction beyond that is needed. */
static void to_bf16(uint16_t *restrict out, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        out[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)r;
    }
}

/* The passes over activations below run on the threads omp_set_num_threads chose for the
 * product they belong to: serial, they (with the GELU) took 12 % of the CPU samples of a
 * 2-thread int8 forward pass while the second thread waited (gemma-3-270m shape, batch 64,
 * perf record). */
static void rows_to_bf16(uint16_t *restrict out, const float *restrict x, int rows, int cols)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        to_bf16(out + (size_t)r * cols, x + (size_t)r * cols, (size_t)cols);
}

/* Per row: scale = max|x| / 127, q = round(x / scale). A row holding Inf or NaN gets a NaN
 * scale (so its outputs are NaN, as in f32) and zeros. */
static void rows_to_int8(int8_t *restrict q, float *restrict scale, const float *restrict x,
                         int rows, int cols)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        int8_t *qr = q + (size_t)r * cols;
        /* max |x| as the max of the sign-cleared bit patterns: an integer reduction, which
         * vectorises (a float max reduction does not without -ffast-math) */
        uint32_t bits = 0;
        for (int i = 0; i < cols; i++) {
            uint32_t u;
            memcpy(&u, &xr[i], 4);
            u &= 0x7fffffffu;
            bits = u > bits ? u : bits;
        }
        float amax;
        memcpy(&amax, &bits, 4);
        if (bits >= 0x7f800000u) {
            scale[r] = NAN;
            memset(qr, 0, (size_t)cols);
            continue;
        }
        const float inv = amax > 0 ? 127.0f / amax : 0.0f;
        scale[r] = amax / 127.0f;
        for (int i = 0; i < cols; i++) {
            /* |x * inv| <= 127 (up to rounding: clamp), so adding 1.5 * 2^23 rounds to nearest
             * even exactly */
            float v = xr[i] * inv;
            v = v > 127.0f ? 127.0f : v;
            v = v < -127.0f ? -127.0f : v;
            v = (v + 12582912.0f) - 12582912.0f;
            qr[i] = (int8_t)(int)v;
        }
    }
}

/* y holds the int32 products in place of the floats: y = acc * token scale * channel scale */
static void dequant(float *y, const float *xs, const float *ws, int rows, int cols)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * cols;
        const float sr = xs[r];
        for (int i = 0; i < cols; i++) {
            int32_t a;
            memcpy(&a, &yr[i], 4);
            yr[i] = (float)a * (sr * ws[i]);
        }
    }
}

/* The engine's threads for a pass over this many rows, one below PARALLEL_ROWS. */
static int threads_for(const gc_lowp_engine *g, int rows)
{
    if (rows < PARALLEL_ROWS)
        return 1;
    return g->threads > 0 ? g->threads : omp_get_num_procs();
}

void gc_lowp_gelu_tanh_mul(gc_lowp_engine *g, float *gate, const float *up, int rows, int cols)
{
    omp_set_num_threads(threads_for(g, rows));
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        gc_gelu_tanh_mul(gate + (size_t)r * cols, up + (size_t)r * cols, (size_t)cols);
}

gc_status gc_lowp_matmul(gc_lowp_engine *g, float *y, const float *x, const gc_lowp_matrix *w,
                         int M, gc_err *e)
{
    const int N = w->n, K = w->k;
    if (M <= 0)
        return GC_OK;
    /* Small products, and a prompt's worth of rows, on one thread: OpenMP's fork and barrier
     * cost more than they save there, and far more when another process holds the other cores
     * (docs/precision.md). Set before the primitive is made: oneDNN fixes a primitive's thread
     * count when it creates it, so the count is a function of (M, N, K) here, like the cache
     * key. */
    omp_set_num_threads((double)M * N * K < SMALL_PRODUCT ? 1 : threads_for(g, M));
    prim_entry *pe = NULL;
    gc_status st = get_entry(g, M, N, K, &pe, e);
    if (st)
        return st;
    const int bf16 = g->p == GC_PRECISION_BF16;
    size_t need = (size_t)M * K * (bf16 ? 2 : 1);
    if (grow(&g->xq, &g->xq_cap, need) ||
        (!bf16 && grow(&g->xs, &g->xs_cap, (size_t)M * sizeof(float))))
        return gc_fail(e, GC_ENOMEM, "out of memory for converted activations");
    if (bf16)
        rows_to_bf16(g->xq, x, M, K);
    else
        rows_to_int8(g->xq, g->xs, x, M, K);
    dnnl_status_t s;
    if ((s = dnnl_memory_set_data_handle(pe->src, g->xq)) ||
        (s = dnnl_memory_set_data_handle(pe->wei, (void *)w->w)) ||
        (s = dnnl_memory_set_data_handle(pe->dst, y)))
        return dnnl_fail(e, s, "matmul arguments", M, N, K);
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, pe->src}, {DNNL_ARG_WEIGHTS, pe->wei}, {DNNL_ARG_DST, pe->dst}};
    if ((s = dnnl_primitive_execute(pe->prim, g->strm, 3, args)) ||
        (s = dnnl_stream_wait(g->strm)))
        return dnnl_fail(e, s, "matmul", M, N, K);
    if (!bf16)
        dequant(y, g->xs, w->scale, M, N);
    return GC_OK;
}

#endif /* GC_NO_DNNL */
