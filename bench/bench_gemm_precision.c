/* bench_gemm_precision: the linear layers of one decoder layer, y[M,N] = x[M,K] . W[N,K]^T for
 * q, k, v, o, gate, up and down, in each candidate precision backend, with the per-call cost
 * of converting / quantizing the activations included:
 *
 *   f32          cblas_sgemm (what the engine does today; also the reference for the errors)
 *   ob-sbgemm    OpenBLAS cblas_sbgemm: x -> bf16 per call, W bf16, f32 accumulation and out
 *   dnnl-bf16    oneDNN matmul bf16 x bf16 -> f32, W as stored ([N][K], tag ba)
 *   dnnl-bf16-b  the same with W reordered once into oneDNN's preferred (blocked) layout
 *   dnnl-s8      oneDNN matmul s8 x s8 -> s32 -> f32: x quantized per token (symmetric,
 *                scale max|x|/127), W per output channel; W scales applied by the matmul as
 *                output scales, token scales by a pass over y; W as stored ([N][K])
 *   dnnl-s8-b    the same with W in oneDNN's preferred layout
 *   dnnl-s8-s32  s8 x s8 -> s32 without scales (so one primitive serves every matrix of a
 *                shape), then y = acc * token scale * channel scale in one pass of ours
 *
 *   bench_gemm_precision [--threads N] [--repeat R] [--min-time S] [--models LIST]
 *                        [--backends LIST]     (BENCH_VERBOSE=1: oneDNN's kernel per product)
 *
 * Shapes: gemma-3-270m (hidden 640, intermediate 2048, 4 heads x 256, 1 kv head), the bundled
 * model (models/gemmaclf-hinglish-small: 256, 512, 4 x 64, 1) and the reference classifier
 * (../shared/reference/hf-trained-classifier: 256, 1024, 4 x 64, 1), at M = 34 tokens (one
 * prompt) and M = 64 x 34 (a batch of 64). Weights are N(0, 1/K); activations N(0, 1) with 1 %
 * of the channels scaled by 8 (the outlier channels real hidden states have), so that per-token
 * int8 quantization is not flattered. Each timing is the best of `repeat` rounds; every round
 * runs all backends back to back (so a busy shared machine affects them alike). Error columns
 * compare with the f32 result: relative Frobenius error and max |diff| / rms(y), worst matrix.
 * ISA caps for comparison: DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 (no AMX), OPENBLAS_CORETYPE=... */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void omp_set_num_threads(int n); /* libgomp, oneDNN's threading runtime in Debian's build */
char *openblas_get_corename(void);

/* Debian 12's OpenBLAS 0.3.21 is built without BUILD_BFLOAT16: cblas.h declares cblas_sbgemm but
 * the library does not export it. Resolved at run time so that the same binary measures it
 * against an OpenBLAS built with it (LD_LIBRARY_PATH) and reports it absent otherwise. */
typedef void (*sbgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                          blasint, blasint, float, const bfloat16 *, blasint, const bfloat16 *,
                          blasint, float, float *, blasint);
static sbgemm_fn p_sbgemm;

#define CHECK(x)                                                                        \
    do {                                                                                \
        dnnl_status_t s_ = (x);                                                         \
        if (s_ != dnnl_success) {                                                       \
            fprintf(stderr, "%s:%d: %s -> status %d\n", __FILE__, __LINE__, #x, (int)s_); \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

enum { B_F32, B_SBGEMM, B_DBF16, B_DBF16B, B_DS8, B_DS8B, B_DS8I, NB };
static const char *bname[NB] = {"f32",     "ob-sbgemm", "dnnl-bf16", "dnnl-bf16-b",
                                "dnnl-s8", "dnnl-s8-b", "dnnl-s8-s32"};

typedef struct model_shape {
    const char *name;
    int H, FF, QD, KD;
} model_shape;

static const model_shape models[] = {
    {"gemma-3-270m", 640, 2048, 1024, 256},
    {"bundled-small", 256, 512, 256, 64},
    {"ref-classifier", 256, 1024, 256, 64},
};

#define NMAT 7 /* q, k, v, o, gate, up, down */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double conv_s;   /* time spent converting activations, accumulated */
static double create_s; /* time spent creating primitives, accumulated */
static dnnl_engine_t eng;
static dnnl_stream_t strm;


/* ---- portable conversions (plain C, vectorised by the compiler) ---- */

/* f32 -> bf16, round to nearest even (NaN inputs are not expected: activations are finite) */
static void to_bf16(uint16_t *restrict out, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u += 0x7fffu + ((u >> 16) & 1u);
        out[i] = (uint16_t)(u >> 16);
    }
}

/* symmetric per-row int8: q = round(x * 127 / max|x|), scale[r] = max|x| / 127 */
static void quant_rows(int8_t *restrict q, float *restrict scale, const float *restrict x, int rows,
                       int cols)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        /* max |x| as the max of the sign-cleared bit patterns (an integer reduction, which
         * the compiler vectorises; a float max reduction it does not without -ffast-math) */
        uint32_t abits = 0;
        for (int i = 0; i < cols; i++) {
            uint32_t u;
            memcpy(&u, &xr[i], 4);
            u &= 0x7fffffffu;
            abits = u > abits ? u : abits;
        }
        float amax;
        memcpy(&amax, &abits, 4);
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        scale[r] = amax / 127.0f;
        int8_t *qr = q + (size_t)r * cols;
        for (int i = 0; i < cols; i++) {
            /* |x * inv| <= 127, so round-to-nearest by the 1.5 * 2^23 trick is exact */
            float v = (xr[i] * inv + 12582912.0f) - 12582912.0f;
            qr[i] = (int8_t)(int)v;
        }
    }
}

static void dequant_rows(float *restrict y, const int32_t *restrict acc, const float *restrict sx,
                         const float *restrict sw, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * cols;
        const int32_t *ar = acc + (size_t)r * cols;
        const float sr = sx[r];
        for (int i = 0; i < cols; i++)
            yr[i] = (float)ar[i] * (sr * sw[i]);
    }
}

static void scale_rows(float *y, const float *s, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * cols;
        const float sr = s[r];
        for (int i = 0; i < cols; i++)
            yr[i] *= sr;
    }
}

/* ---- one weight matrix in every representation ---- */

typedef struct oned {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
    void *wei_blocked; /* reordered copy owned here (blocked variants) */
} oned;

typedef struct matrix {
    int N, K;
    float *w;        /* [N][K] f32 */
    uint16_t *wb;    /* [N][K] bf16 */
    int8_t *wq;      /* [N][K] s8 */
    float *wscale;   /* [N] */
    oned d[NB];      /* oneDNN primitives per backend (only the dnnl ones used) */
} matrix;

typedef struct work {
    int M, Kmax;
    float *x;        /* [M][Kmax] activations (the first K columns are used) */
    uint16_t *xb;
    int8_t *xq;
    float *xs;
    float *y, *yref[NMAT];
    int32_t *yi;
} work;

static void md2(dnnl_memory_desc_t *md, int64_t a, int64_t b, dnnl_data_type_t dt,
                dnnl_format_tag_t tag)
{
    dnnl_dims_t d = {a, b};
    CHECK(dnnl_memory_desc_init_by_tag(md, 2, d, dt, tag));
}

static void make_dnnl(matrix *m, int b, int M)
{
    const int s8 = b == B_DS8 || b == B_DS8B || b == B_DS8I, blocked = b == B_DBF16B || b == B_DS8B;
    const dnnl_data_type_t dt = s8 ? dnnl_s8 : dnnl_bf16;
    dnnl_memory_desc_t src_md, wei_md, dst_md, user_wei_md;
    md2(&src_md, M, m->K, dt, dnnl_ab);
    md2(&user_wei_md, m->K, m->N, dt, dnnl_ba); /* W[N][K] row-major is W^T[K][N] in tag ba */
    md2(&wei_md, m->K, m->N, dt, blocked ? dnnl_format_tag_any : dnnl_ba);
    md2(&dst_md, M, m->N, b == B_DS8I ? dnnl_s32 : dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, &src_md, &wei_md, NULL, &dst_md));
    dnnl_primitive_attr_t attr;
    CHECK(dnnl_primitive_attr_create(&attr));
    /* The weight scales are given at creation: with DNNL_RUNTIME_F32_VAL scales (or a
     * DNNL_RUNTIME_DIM_VAL M) oneDNN 2.6.3 falls back from brgemm (AMX / VNNI) to gemm:jit,
     * 2-5x slower here. Hence one primitive per weight matrix and M. */
    if (s8 && b != B_DS8I)
        CHECK(dnnl_primitive_attr_set_output_scales(attr, m->N, 1 << 1, m->wscale));
    dnnl_primitive_desc_t pd;
    double t0 = now();
    CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL));
    CHECK(dnnl_primitive_attr_destroy(attr));
    oned *o = &m->d[b];
    CHECK(dnnl_primitive_create(&o->prim, pd));
    create_s += now() - t0;
    const dnnl_memory_desc_t *pw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    void *user = s8 ? (void *)m->wq : (void *)m->wb;
    if (blocked) {
        dnnl_memory_t um;
        size_t sz = dnnl_memory_desc_get_size(pw);
        o->wei_blocked = aligned_alloc(64, (sz + 63) / 64 * 64);
        CHECK(dnnl_memory_create(&um, &user_wei_md, eng, user));
        CHECK(dnnl_memory_create(&o->wei, pw, eng, o->wei_blocked));
        dnnl_primitive_desc_t rpd;
        dnnl_primitive_t r;
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, &user_wei_md, eng, pw, eng, NULL));
        CHECK(dnnl_primitive_create(&r, rpd));
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, o->wei}};
        CHECK(dnnl_primitive_execute(r, strm, 2, a));
        CHECK(dnnl_stream_wait(strm));
        dnnl_primitive_destroy(r);
        dnnl_primitive_desc_destroy(rpd);
        dnnl_memory_destroy(um);
    } else {
        CHECK(dnnl_memory_create(&o->wei, pw, eng, user));
    }
    CHECK(dnnl_memory_create(&o->src, &src_md, eng, DNNL_MEMORY_NONE));
    CHECK(dnnl_memory_create(&o->dst, &dst_md, eng, DNNL_MEMORY_NONE));
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (getenv("BENCH_VERBOSE"))
        fprintf(stderr, "  %s N=%d K=%d M=%d: %s\n", bname[b], m->N, m->K, M, impl ? impl : "?");
    dnnl_primitive_desc_destroy(pd);
}

static void free_dnnl(oned *o)
{
    if (!o->prim)
        return;
    dnnl_primitive_destroy(o->prim);
    dnnl_memory_destroy(o->src);
    dnnl_memory_destroy(o->wei);
    dnnl_memory_destroy(o->dst);
    free(o->wei_blocked);
    memset(o, 0, sizeof *o);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((rng >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static float nrand(void) { return (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand())); }

static void init_matrix(matrix *m, int N, int K)
{
    memset(m, 0, sizeof *m);
    m->N = N, m->K = K;
    size_t n = (size_t)N * K;
    m->w = aligned_alloc(64, n * 4);
    m->wb = aligned_alloc(64, (n * 2 + 63) / 64 * 64);
    m->wq = aligned_alloc(64, (n + 63) / 64 * 64);
    m->wscale = malloc((size_t)N * 4);
    float sd = 1.0f / sqrtf((float)K);
    for (size_t i = 0; i < n; i++)
        m->w[i] = nrand() * sd;
    to_bf16(m->wb, m->w, n);
    quant_rows(m->wq, m->wscale, m->w, N, K);
}

static void free_matrix(matrix *m)
{
    for (int b = 0; b < NB; b++)
        free_dnnl(&m->d[b]);
    free(m->w), free(m->wb), free(m->wq), free(m->wscale);
}

static const char *only_backends; /* --backends */

static int available(int b)
{
    if (only_backends && b != B_F32 && !strstr(only_backends, bname[b]))
        return 0;
    return b != B_SBGEMM || p_sbgemm;
}

/* y = x . W^T in backend b, conversions of x included */
static void run(int b, matrix *m, work *wk)
{
    const int M = wk->M, N = m->N, K = m->K;
    float *x = wk->x; /* row stride K: the work buffer is refilled per K, see fill_x */
    switch (b) {
    case B_F32:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, m->w, K, 0.0f,
                    wk->y, N);
        return;
    case B_SBGEMM:
        double t0 = now();
        to_bf16(wk->xb, x, (size_t)M * K);
        conv_s += now() - t0;
        p_sbgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f,
                     (const bfloat16 *)wk->xb, K, (const bfloat16 *)m->wb, K, 0.0f, wk->y, N);
        return;
    case B_DBF16:
    case B_DBF16B: {
        oned *o = &m->d[b];
        double t0 = now();
        to_bf16(wk->xb, x, (size_t)M * K);
        conv_s += now() - t0;
        CHECK(dnnl_memory_set_data_handle(o->src, wk->xb));
        CHECK(dnnl_memory_set_data_handle(o->dst, wk->y));
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, o->src}, {DNNL_ARG_WEIGHTS, o->wei},
                                {DNNL_ARG_DST, o->dst}};
        CHECK(dnnl_primitive_execute(o->prim, strm, 3, a));
        CHECK(dnnl_stream_wait(strm));
        return;
    }
    case B_DS8I: {
        oned *o = &m->d[b];
        double t0 = now();
        quant_rows(wk->xq, wk->xs, x, M, K);
        conv_s += now() - t0;
        CHECK(dnnl_memory_set_data_handle(o->src, wk->xq));
        CHECK(dnnl_memory_set_data_handle(o->dst, wk->yi));
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, o->src}, {DNNL_ARG_WEIGHTS, o->wei},
                                {DNNL_ARG_DST, o->dst}};
        CHECK(dnnl_primitive_execute(o->prim, strm, 3, a));
        CHECK(dnnl_stream_wait(strm));
        t0 = now();
        dequant_rows(wk->y, wk->yi, wk->xs, m->wscale, M, N);
        conv_s += now() - t0;
        return;
    }
    case B_DS8:
    case B_DS8B: {
        oned *o = &m->d[b];
        double t0 = now();
        quant_rows(wk->xq, wk->xs, x, M, K);
        conv_s += now() - t0;
        CHECK(dnnl_memory_set_data_handle(o->src, wk->xq));
        CHECK(dnnl_memory_set_data_handle(o->dst, wk->y));
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, o->src}, {DNNL_ARG_WEIGHTS, o->wei},
                                {DNNL_ARG_DST, o->dst}};
        CHECK(dnnl_primitive_execute(o->prim, strm, 3, a));
        CHECK(dnnl_stream_wait(strm));
        t0 = now();
        scale_rows(wk->y, wk->xs, M, N);
        conv_s += now() - t0;
        return;
    }
    }
}

/* activations for K input features: N(0,1), channels c % 100 == 7 scaled by 8 */
static void fill_x(float *x, int M, int K, unsigned seed)
{
    rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed * 0x2545F4914F6CDD1Dull);
    for (int r = 0; r < M; r++)
        for (int c = 0; c < K; c++)
            x[(size_t)r * K + c] = nrand() * (c % 100 == 7 ? 8.0f : 1.0f);
}

typedef struct result {
    double best_s;         /* best time of one layer (7 products) */
    double conv_s;         /* of which converting x (and rescaling y for int8) */
    double create_s;       /* creating the 7 oneDNN primitives for this M */
    double rel_max, mx_max; /* worst relative Frobenius error, worst max|d|/rms */
} result;

static void errors(const float *y, const float *ref, size_t n, double *rel, double *mx)
{
    double se = 0, sr = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - ref[i];
        se += d * d;
        sr += (double)ref[i] * ref[i];
        m = fabs(d) > m ? fabs(d) : m;
    }
    *rel = sqrt(se / sr);
    *mx = m / sqrt(sr / (double)n);
}

int main(int argc, char **argv)
{
    int threads = 1, repeat = 3;
    double min_time = 0.3;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--models") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--backends") && i + 1 < argc)
            only_backends = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--repeat R] [--min-time S] [--models a,b]"
                            " [--backends a,b]\n",
                    argv[0]);
            return 2;
        }
    }
    openblas_set_num_threads(threads);
    p_sbgemm = (sbgemm_fn)dlsym(RTLD_DEFAULT, "cblas_sbgemm");
    omp_set_num_threads(threads);
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    static const char *isa_names[] = {[dnnl_cpu_isa_all] = "all",
                                      [dnnl_cpu_isa_sse41] = "sse41",
                                      [dnnl_cpu_isa_avx] = "avx",
                                      [dnnl_cpu_isa_avx2] = "avx2",
                                      [dnnl_cpu_isa_avx512_core] = "avx512_core",
                                      [dnnl_cpu_isa_avx512_core_vnni] = "avx512_core_vnni",
                                      [dnnl_cpu_isa_avx512_core_bf16] = "avx512_core_bf16",
                                      [dnnl_cpu_isa_avx512_core_amx] = "avx512_core_amx"};
    int isa = (int)dnnl_get_effective_cpu_isa();
    printf("# threads %d; OpenBLAS %s core %s; oneDNN %d.%d.%d, effective ISA %s\n", threads,
           OPENBLAS_VERSION, openblas_get_corename(), v->major, v->minor, v->patch,
           isa >= 0 && isa < (int)(sizeof isa_names / sizeof *isa_names) && isa_names[isa]
               ? isa_names[isa] : "other");
    if (!p_sbgemm)
        printf("# cblas_sbgemm: not exported by this OpenBLAS (built without BUILD_BFLOAT16)\n");
    printf("%-15s %5s %-12s %9s %8s %9s %7s %10s %10s %9s\n", "model", "M", "backend",
           "ms/layer", "conv.ms", "GFLOP/s", "x f32", "rel.err", "max/rms", "create.ms");

    const int Ms[2] = {34, 64 * 34};
    for (size_t mi = 0; mi < sizeof models / sizeof *models; mi++) {
        const model_shape *ms = &models[mi];
        if (only && !strstr(only, ms->name))
            continue;
        const int NK[NMAT][2] = {{ms->QD, ms->H}, {ms->KD, ms->H}, {ms->KD, ms->H},
                                 {ms->H, ms->QD}, {ms->FF, ms->H},  {ms->FF, ms->H},
                                 {ms->H, ms->FF}};
        matrix mat[NMAT];
        double flops_per_row = 0;
        int Kmax = 0, Nmax = 0;
        for (int j = 0; j < NMAT; j++) {
            init_matrix(&mat[j], NK[j][0], NK[j][1]);
            flops_per_row += 2.0 * NK[j][0] * NK[j][1];
            Kmax = NK[j][1] > Kmax ? NK[j][1] : Kmax;
            Nmax = NK[j][0] > Nmax ? NK[j][0] : Nmax;
        }
        for (int mm = 0; mm < 2; mm++) {
            const int M = Ms[mm];
            work wk = {.M = M, .Kmax = Kmax};
            /* one activation buffer per matrix (K differs), filled once */
            float *xs[NMAT];
            for (int j = 0; j < NMAT; j++) {
                xs[j] = aligned_alloc(64, (size_t)M * NK[j][1] * 4);
                fill_x(xs[j], M, NK[j][1], (unsigned)(j + 1));
            }
            wk.xb = aligned_alloc(64, ((size_t)M * Kmax * 2 + 63) / 64 * 64);
            wk.xq = aligned_alloc(64, ((size_t)M * Kmax + 63) / 64 * 64);
            wk.xs = malloc((size_t)M * 4);
            wk.y = aligned_alloc(64, (size_t)M * Nmax * 4);
            wk.yi = aligned_alloc(64, (size_t)M * Nmax * 4);
            result res[NB];
            memset(res, 0, sizeof res);
            for (int b = B_DBF16; b < NB; b++) {
                create_s = 0;
                for (int j = 0; j < NMAT && available(b); j++)
                    make_dnnl(&mat[j], b, M);
                res[b].create_s = create_s;
            }
            /* reference and errors */
            for (int j = 0; j < NMAT; j++) {
                wk.yref[j] = aligned_alloc(64, (size_t)M * NK[j][0] * 4);
                wk.x = xs[j];
                run(B_F32, &mat[j], &wk);
                memcpy(wk.yref[j], wk.y, (size_t)M * NK[j][0] * 4);
            }
            for (int b = 0; b < NB; b++)
                for (int j = 0; j < NMAT && available(b); j++) {
                    wk.x = xs[j];
                    run(b, &mat[j], &wk);
                    double rel, mx;
                    errors(wk.y, wk.yref[j], (size_t)M * NK[j][0], &rel, &mx);
                    res[b].rel_max = rel > res[b].rel_max ? rel : res[b].rel_max;
                    res[b].mx_max = mx > res[b].mx_max ? mx : res[b].mx_max;
                }
            /* timing: rounds of all backends back to back, best round per backend */
            for (int b = 0; b < NB; b++)
                res[b].best_s = 1e30;
            for (int r = 0; r < repeat; r++)
                for (int b = 0; b < NB; b++) {
                    if (!available(b))
                        continue;
                    int iters = 0;
                    conv_s = 0;
                    double t0 = now(), t;
                    do {
                        for (int j = 0; j < NMAT; j++) {
                            wk.x = xs[j];
                            run(b, &mat[j], &wk);
                        }
                        iters++;
                        t = now() - t0;
                    } while (t < min_time || iters < 2);
                    double per = t / iters;
                    if (per < res[b].best_s) {
                        res[b].best_s = per;
                        res[b].conv_s = conv_s / iters;
                    }
                }
            for (int b = 0; b < NB; b++)
                if (available(b))
                    printf("%-15s %5d %-12s %9.3f %8.3f %9.1f %7.2f %10.2e %10.2e %9.2f\n", ms->name,
                           M, bname[b], res[b].best_s * 1e3, res[b].conv_s * 1e3,
                           flops_per_row * M / res[b].best_s * 1e-9,
                       res[B_F32].best_s / res[b].best_s, res[b].rel_max, res[b].mx_max,
                       res[b].create_s * 1e3);
            fflush(stdout);
            for (int j = 0; j < NMAT; j++) {
                free(xs[j]);
                free(wk.yref[j]);
                for (int b = B_DBF16; b < NB; b++)
                    free_dnnl(&mat[j].d[b]);
            }
            free(wk.xb), free(wk.xq), free(wk.xs), free(wk.y), free(wk.yi);
        }
        for (int j = 0; j < NMAT; j++)
            free_matrix(&mat[j]);
    }
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    return 0;
}
