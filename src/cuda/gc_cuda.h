/* Internal declarations of the CUDA plugin (gemmaclf_cuda.so): device weights, per-context
 * state, kernel launchers. Nothing here is visible outside the plugin; the core sees only the
 * gc_cuda_api table of src/core/model/cuda_plugin.h.
 *
 * Conventions: activations are row-major [tokens][features] F32; the inputs of the large
 * matrix products (normed hidden state, attention output, gated MLP activation) are stored in
 * the GEMM input type of the precision mode (F32, or BF16 in GC_CUDA_BF16); every function
 * that can fail returns 0 on success, -1 with a message in err. */
#ifndef GC_CUDA_INTERNAL_H
#define GC_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "model/cuda_plugin.h"
}

/* Kernel launch. GCU_EMULATE builds the plugin with g++ against test/cuda_emu, a CPU stand-in
 * for the CUDA runtime and cuBLAS that runs the same kernels (see docs/cuda.md). */
#ifdef GCU_EMULATE
/* The arguments are evaluated and copied at the launch, as CUDA does (a captured graph replays
 * the launch after the launcher's locals are gone). */
#define GCU_LAUNCH(kernel, grid, block, st, ...)                                          \
    gcu_emu_launch((grid), (block), (st), [](auto... args_) { kernel(args_...); }, __VA_ARGS__)
#else
#define GCU_LAUNCH(kernel, grid, block, st, ...) kernel<<<(grid), (block), 0, (st)>>>(__VA_ARGS__)
#endif

#define GCU_MAX_HEAD_DIM 512 /* attention keeps head_dim/128 accumulators per thread and head */
#define GCU_MAX_REP 8        /* query heads per kv head served by one attention block */
#define GCU_MAX_GROUP_DIM 2048 /* rep * head_dim: the group's queries in shared memory */

/* Formats a message into err; always returns -1 so callers can `return gcu_fail(...)`. */
int gcu_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Check a CUDA runtime / cuBLAS call inside a function that has `char *err, size_t errlen`
 * and a `fail:` label that releases what the function owns. */
#define CU_GOTO(call)                                                                     \
    do {                                                                                  \
        cudaError_t e_ = (call);                                                          \
        if (e_ != cudaSuccess) {                                                          \
            gcu_fail(err, errlen, "%s: %s (%s)", #call, cudaGetErrorString(e_),           \
                     cudaGetErrorName(e_));                                               \
            goto fail;                                                                    \
        }                                                                                 \
    } while (0)
#define CU_RET(call)                                                                      \
    do {                                                                                  \
        cudaError_t e_ = (call);                                                          \
        if (e_ != cudaSuccess)                                                            \
            return gcu_fail(err, errlen, "%s: %s (%s)", #call, cudaGetErrorString(e_),    \
                            cudaGetErrorName(e_));                                        \
    } while (0)
#define BLAS_RET(call)                                                                    \
    do {                                                                                  \
        cublasStatus_t s_ = (call);                                                       \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                  \
            return gcu_fail(err, errlen, "%s: %s (%s)", #call, cublasGetStatusString(s_), \
                            cublasGetStatusName(s_));                                     \
    } while (0)
/* After a kernel launch: configuration errors surface here, faults at the next sync. */
#define LAUNCH_RET() CU_RET(cudaGetLastError())

/* ---- weights (weights.cu) -------------------------------------------------------------- */

typedef struct gcu_layer {
    const float *input_norm, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm; /* [hidden] */
    const float *q_norm, *k_norm;                                            /* [head_dim] */
    const void *wqkv;  /* [qd + 2*kvd, hidden]: wq, wk, wv stacked (one GEMM) */
    const void *wo;    /* [hidden, qd] */
    const void *wgu;   /* [2*inter, hidden]: gate then up */
    const void *wdown; /* [hidden, inter] */
    const float *inv_freq; /* [head_dim/2]: local or global RoPE table of this layer */
} gcu_layer;

/* Weights of one gc_model on one device in one precision, shared (refcounted) by every
 * context of the process that uploads the same host weights. */
typedef struct gcu_weights {
    gc_config cfg;
    int device, precision;
    const float *host_embed, *host_lm_head; /* identity of the host model */
    int refs;
    void *pool; /* one device allocation holding everything below */
    size_t pool_bytes;
    /* [vocab][hidden] tables: F32, or BF16 in GC_CUDA_BF16 (table_bf16); lm_head == embed
     * when tied. Label rows are never read from a BF16 table: the forward uploads their F32
     * values from the host weights (gcu_model.host_lm_head). */
    const void *embed, *lm_head;
    int table_bf16;
    const float *final_norm;
    gcu_layer layers[GC_MAX_LAYERS];
    struct gcu_weights *next;
} gcu_weights;

int gcu_weights_acquire(const gc_config *cfg, const gc_weights *w, int device, int precision,
                        gcu_weights **out, char *err, size_t errlen);
void gcu_weights_release(gcu_weights *dw);

/* ---- per-context state (forward.cu) -------------------------------------------------------- */

typedef struct gcu_scratch {
    void *pool;
    size_t bytes;
    int cap_tokens, cap_out, cap_rows;
    size_t logit_cap;
    float *h, *qkv, *tmp, *gu; /* F32 activations */
    void *x, *attn, *act;      /* GEMM inputs (F32 or BF16) */
    /* inputs of a forward, uploaded in one copy: [T] token ids, [T] packed index of each
     * token's sequence start, [O] output positions, [R] vocabulary rows (T, O, R of this
     * forward, packed one after the other) */
    int32_t *meta;
    float *outh, *roww, *logits;
} gcu_scratch;

/* A captured layer sequence (forward.cu): valid for one padded token count, number of pruned
 * output rows and prefix, while the scratch pool stays where it is. */
#define GCU_GRAPHS 8
typedef struct gcu_graph_key {
    int T, n_sel, P;
    const float *pkv;
} gcu_graph_key;
typedef struct gcu_graph {
    gcu_graph_key key;
    cudaGraphExec_t exec; /* NULL: free slot */
    unsigned long long used;
} gcu_graph;

typedef struct gcu_model {
    gcu_weights *w;
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    gcu_scratch s;
    const float *host_lm_head; /* the host model's F32 lm_head (mapped while this lives) */
    void *host; /* pinned staging: the forward's inputs, then its label logits */
    size_t host_cap;
    int broken; /* a sticky CUDA error: never launch on this context again */
    gcu_graph graphs[GCU_GRAPHS];
    unsigned long long graph_clock;
    gcu_graph_key seen[GCU_GRAPHS]; /* shapes run once without a graph (a ring) */
    int seen_n, seen_next;
    int graphs_off; /* capture failed once: plain launches, no padding, for this context */
} gcu_model;

typedef struct gcu_prefix {
    const gcu_weights *w; /* the weights it was computed with */
    int device, n;
    float *kv; /* [layers][2][n][kvd] */
} gcu_prefix;

int gcu_forward(gcu_model *m, const gcu_prefix *pre, gc_batch *b, char *err, size_t errlen);
int gcu_prefix_new(gcu_model *m, const int32_t *ids, int n, gcu_prefix **out, char *err,
                   size_t errlen);
void gcu_prefix_free(gcu_prefix *p);
/* Destroys the context's captured graphs (before its scratch pool moves, and at the end). */
void gcu_graphs_clear(gcu_model *m);

/* ---- kernels (kernels.cu, attention.cu); all launched on `st` ---------------------------- */

/* h[t] = embed[tok[t]] * scale; the table is F32, or BF16 when bf16 != 0. */
int gcu_embed(cudaStream_t st, const void *embed, int bf16, const int32_t *tok, int T, int H,
              float scale, float *h, char *err, size_t errlen);
/* out = rms(x) * (1 + w), per row of H; out in F32 or BF16 (bf16 != 0). */
int gcu_rmsnorm(cudaStream_t st, const float *x, const float *w, int T, int H, float eps,
                void *out, int bf16, char *err, size_t errlen);
/* h += rms(y) * (1 + w_post); then (when w_next) x = rms(h) * (1 + w_next). */
int gcu_residual_norm(cudaStream_t st, float *h, const float *y, const float *w_post,
                      const float *w_next, int T, int H, float eps, void *x, int bf16, char *err,
                      size_t errlen);
/* Per-head RMSNorm of q and k and rotate-half RoPE, in place in qkv [T][qd + 2*kvd]. */
int gcu_qk_norm_rope(cudaStream_t st, float *qkv, const int32_t *seq_start, int prefix_len,
                     int T, int n_heads, int n_kv, int hd, const float *q_norm,
                     const float *k_norm, const float *inv_freq, float eps, char *err,
                     size_t errlen);
/* act[t][i] = gelu_tanh(gu[t][i]) * gu[t][inter + i]. */
int gcu_gelu_gate(cudaStream_t st, const float *gu, int T, int inter, void *act, int bf16,
                  char *err, size_t errlen);
/* dst[r] = src[idx[r]] for rows of H values, F32 out; src is F32, or BF16 when src_bf16. */
int gcu_gather_rows(cudaStream_t st, const void *src, int src_bf16, const int32_t *idx, int n,
                    int H, float *dst, char *err, size_t errlen);
int gcu_softcap(cudaStream_t st, float *x, size_t n, float cap, char *err, size_t errlen);
int gcu_to_bf16(cudaStream_t st, const float *src, size_t n, __nv_bfloat16 *dst, char *err,
                size_t errlen);

typedef struct gcu_attn_args {
    const float *qkv;        /* [T][qd + 2*kvd] after norm + RoPE */
    const int32_t *seq_start; /* [T] */
    const float *pk, *pv;     /* prefix keys/values [P][kvd], or NULL when P == 0 */
    int P, T, n_heads, n_kv, hd;
    const int32_t *qrows; /* query tokens to compute (output row i = token qrows[i]), or NULL */
    int nq;               /* number of query rows: T, or the length of qrows */
    int window; /* sliding window (keys with qpos - kpos < window), 0 = full causal */
    float scale; /* query_pre_attn_scalar^-0.5 */
    void *out; /* [nq][qd], F32 or BF16 */
    int bf16;
} gcu_attn_args;
int gcu_attention(cudaStream_t st, const gcu_attn_args *a, char *err, size_t errlen);

#endif
