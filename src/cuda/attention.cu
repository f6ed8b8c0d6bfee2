/* Attention over packed variable-length sequences, optionally continuing a cached prefix.
 *
 * One block of 128 threads (4 warps) per (query token, kv head), serving the `rep` query heads
 * that share that kv head (GQA/MQA), so each key and value row is read once per token rather
 * than once per query head. The keys a query at position qpos sees are the "virtual"
 * positions j in [j0, qpos]: j < P is prefix key j, j >= P is the token seq_start + (j - P)
 * of the query's own sequence (sequences continue the prefix, so a token's position is
 * P + its index in the sequence). Sliding layers keep keys with qpos - j < window
 * (transformers: kv_idx > q_idx - sliding_window).
 *
 * Keys are visited in tiles of 32: each warp scores 8 of them against every query head (lanes
 * split head_dim, so K rows are read coalesced); warp w then does the online-softmax
 * bookkeeping of heads w, w + 4, ...; finally each thread rescales and accumulates the
 * head_dim / 128 output dimensions it owns for every head (V rows read coalesced, once). Scores
 * are q.k * scale in F32 with no soft-capping: transformers' Gemma 3 attention never passes
 * attn_logit_softcapping to its attention function (the fixtures confirm it; so does the CPU
 * path). Query head h uses kv head h / rep. With qrows, only those query tokens are computed
 * (the last layer of a forward whose outputs are a few positions). */
#include <limits.h>
#include <math.h>

#include "gc_cuda.h"

#define ATT_THREADS 128
#define ATT_WARPS (ATT_THREADS / 32)
#define ATT_TILE 32
#define ATT_MAXD (GCU_MAX_HEAD_DIM / ATT_THREADS)

__device__ __forceinline__ void store_out(float *p, float v) { *p = v; }
__device__ __forceinline__ void store_out(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* The kernel's shared memory, at file scope (each block still gets its own copy): the CPU
 * emulation can then find and poison it before every block, which it cannot do for variables
 * local to a template. */
__shared__ float q[GCU_MAX_GROUP_DIM];       /* [rep][hd] */
__shared__ float p[GCU_MAX_REP][ATT_TILE];    /* scores, then weights, of the tile */
__shared__ float m_run[GCU_MAX_REP];          /* running max per head */
__shared__ float tile_scale[GCU_MAX_REP], tile_sum[GCU_MAX_REP];

template <typename O>
__global__ void attention_kernel(gcu_attn_args a, O *out)
{

    const int row = blockIdx.x, g = blockIdx.y;
    const int t = a.qrows ? a.qrows[row] : row;
    const int hd = a.hd, rep = a.n_heads / a.n_kv;
    const int qd = a.n_heads * hd, kvd = a.n_kv * hd;
    const size_t ld = (size_t)qd + 2 * (size_t)kvd;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int s0 = a.seq_start[t];
    const int qpos = a.P + (t - s0);
    int j0 = 0;
    if (a.window > 0 && qpos - a.window + 1 > 0)
        j0 = qpos - a.window + 1;
    const int jend = qpos + 1;

    /* the group's query heads are contiguous: heads g*rep .. g*rep + rep - 1 */
    const float *qrow = a.qkv + (size_t)t * ld + (size_t)g * rep * hd;
    for (int d = threadIdx.x; d < rep * hd; d += ATT_THREADS)
        q[d] = qrow[d];
    if (threadIdx.x < GCU_MAX_REP)
        m_run[threadIdx.x] = -INFINITY;
    __syncthreads();

    float acc[GCU_MAX_REP][ATT_MAXD];
    float l[GCU_MAX_REP];
#pragma unroll
    for (int r = 0; r < GCU_MAX_REP; r++) {
        l[r] = 0.0f;
#pragma unroll
        for (int i = 0; i < ATT_MAXD; i++)
            acc[r][i] = 0.0f;
    }

    for (int base = j0; base < jend; base += ATT_TILE) {
        /* scores: warp w takes keys base + w, base + w + 4, ..., against every head */
        for (int k = warp; k < ATT_TILE; k += ATT_WARPS) {
            int j = base + k;
            float dot[GCU_MAX_REP];
#pragma unroll
            for (int r = 0; r < GCU_MAX_REP; r++)
                dot[r] = 0.0f;
            if (j < jend) {
                const float *krow = j < a.P
                                        ? a.pk + (size_t)j * kvd + (size_t)g * hd
                                        : a.qkv + (size_t)(s0 + j - a.P) * ld + qd +
                                              (size_t)g * hd;
                for (int d = lane; d < hd; d += 32) {
                    float kv = krow[d];
#pragma unroll
                    for (int r = 0; r < GCU_MAX_REP; r++)
                        if (r < rep)
                            dot[r] += q[r * hd + d] * kv;
                }
            }
#pragma unroll
            for (int r = 0; r < GCU_MAX_REP; r++) {
                if (r >= rep)
                    break;
                float s = dot[r];
                for (int o = 16; o > 0; o >>= 1)
                    s += __shfl_xor_sync(0xffffffffu, s, o);
                if (lane == 0)
                    p[r][k] = j < jend ? s * a.scale : -INFINITY;
            }
        }
        __syncthreads();
        /* online-softmax bookkeeping: warp w owns heads w, w + 4, ... (one score per lane) */
        for (int r = warp; r < rep; r += ATT_WARPS) {
            float s = p[r][lane];
            float tmax = s;
            for (int o = 16; o > 0; o >>= 1)
                tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
            float m_old = m_run[r];
            float m_new = fmaxf(m_old, tmax); /* finite: the tile holds at least one key */
            float e = s == -INFINITY ? 0.0f : expf(s - m_new);
            p[r][lane] = e;
            float sum = e;
            for (int o = 16; o > 0; o >>= 1)
                sum += __shfl_xor_sync(0xffffffffu, sum, o);
            if (lane == 0) {
                tile_scale[r] = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
                tile_sum[r] = sum;
                m_run[r] = m_new;
            }
        }
        __syncthreads();
        int nk = jend - base < ATT_TILE ? jend - base : ATT_TILE;
#pragma unroll
        for (int r = 0; r < GCU_MAX_REP; r++) {
            if (r < rep) {
                float c = tile_scale[r];
                l[r] = l[r] * c + tile_sum[r];
#pragma unroll
                for (int i = 0; i < ATT_MAXD; i++)
                    acc[r][i] *= c;
            }
        }
#pragma unroll
        for (int i = 0; i < ATT_MAXD; i++) {
            int d = threadIdx.x + i * ATT_THREADS;
            if (d >= hd)
                break;
            for (int k = 0; k < nk; k++) {
                int j = base + k;
                const float *vrow = j < a.P ? a.pv + (size_t)j * kvd + (size_t)g * hd
                                            : a.qkv + (size_t)(s0 + j - a.P) * ld + qd + kvd +
                                                  (size_t)g * hd;
                float v = vrow[d];
#pragma unroll
                for (int r = 0; r < GCU_MAX_REP; r++)
                    if (r < rep)
                        acc[r][i] += p[r][k] * v;
            }
        }
        __syncthreads(); /* p, tile_scale, tile_sum are rewritten by the next tile */
    }

#pragma unroll
    for (int r = 0; r < GCU_MAX_REP; r++) {
        if (r >= rep)
            break;
        O *orow = out + (size_t)row * qd + ((size_t)g * rep + r) * hd;
        float inv = 1.0f / l[r];
#pragma unroll
        for (int i = 0; i < ATT_MAXD; i++) {
            int d = threadIdx.x + i * ATT_THREADS;
            if (d < hd)
                store_out(orow + d, acc[r][i] * inv);
        }
    }
}

/* ---- tiled kernel: a tile of query tokens per block ---------------------------------------
 *
 * One block of 256 threads per (tile of BQ consecutive query tokens, kv head). Its rows are the
 * BQ x rep (query token, query head) pairs, at most 16 (BQ = 16 / rep), so every key and value
 * row loaded into shared memory serves up to 16 rows instead of rep. The tokens of a tile may
 * belong to different sequences; the keys the block visits are the prefix keys any of its
 * queries sees, then the packed tokens from the earliest one any of them sees to the last query
 * (contiguous: sequences are packed in order), each row masking the keys outside its own
 * sequence, after its position, or outside its window. Keys come in tiles of 16: K is loaded
 * into shared memory, every thread scores one (row, key) pair over the whole head (rows are
 * half-warps, so the online-softmax max and sum are 16-lane shuffles and every lane keeps its
 * row's running max and sum in registers), then V is loaded into the same buffer and each thread
 * accumulates the output dimensions d = tid % 64 + 64c of rows tid / 64 + 4i. Rows of shared
 * arrays are padded to 257 floats so that the 16 keys of a half-warp (scores) and the 64
 * dimensions of a warp (values) fall in distinct banks. head_dim <= 256; the per-token kernel
 * above serves larger heads and the pruned last layer (its query rows are one token per
 * sequence, so there is nothing to share). */
#define TL_THREADS 256
#define TL_ROWS 16 /* (query token, head) rows per block */
#define TL_KEYS 16 /* keys per tile */
#define TL_MAXD 256
#define TL_LD (TL_MAXD + 1)
#define TL_DCOLS 64 /* output dimensions per thread column: d = tid % 64 + 64c */
#define TL_CHUNKS (TL_MAXD / TL_DCOLS)
#define TL_RSTEP (TL_THREADS / TL_DCOLS) /* value-phase rows tid / 64 + 4i */

__shared__ float tl_q[TL_ROWS * TL_LD];   /* [row][d] */
__shared__ float tl_kv[TL_KEYS * TL_LD];  /* [key][d]: the tile's K, then its V */
__shared__ float tl_p[TL_ROWS][TL_KEYS];  /* softmax weights of the tile */
__shared__ float tl_scale[TL_ROWS];       /* rescale of the running output by this tile */
__shared__ float tl_l[TL_ROWS];           /* final softmax denominators */
__shared__ int tl_t[TL_ROWS], tl_s0[TL_ROWS], tl_j0[TL_ROWS]; /* per query token; t -1: none */
__shared__ int tl_range[3];               /* first key slot, end slot, first packed token */

/* Is key slot j (j < P: prefix key j, else packed token umin + j - P) visible to query qi? */
__device__ __forceinline__ bool tl_visible(int qi, int j, int P, int umin)
{
    int t = tl_t[qi];
    if (t < 0)
        return false;
    if (j < P)
        return j >= tl_j0[qi];
    int u = umin + j - P, s0 = tl_s0[qi];
    return u >= s0 && u <= t && P + (u - s0) >= tl_j0[qi];
}

/* Loads the tile's K (voff = 0) or V (voff = kvd) rows of kv head g into tl_kv; slots past
 * `end` are zeros, so that their zero weights never meet a NaN. */
__device__ __forceinline__ void tl_load(const gcu_attn_args &a, int g, int base, int end,
                                        int umin, size_t ld, size_t qd, size_t kvd, size_t voff)
{
    const int hd = a.hd;
    const float *pref = voff ? a.pv : a.pk;
    for (int i = threadIdx.x; i < TL_KEYS * hd; i += TL_THREADS) {
        int k = i / hd, d = i - k * hd, j = base + k;
        float v = 0.0f;
        if (j < end)
            v = j < a.P ? pref[(size_t)j * kvd + (size_t)g * hd + d]
                        : a.qkv[(size_t)(umin + j - a.P) * ld + qd + voff + (size_t)g * hd + d];
        tl_kv[k * TL_LD + d] = v;
    }
}

template <typename O>
__global__ void attention_tiled_kernel(gcu_attn_args a, O *out)
{
    const int g = blockIdx.y, hd = a.hd, rep = a.n_heads / a.n_kv;
    const int bq = TL_ROWS / rep, nrows = bq * rep, t0 = blockIdx.x * bq;
    const size_t qd = (size_t)a.n_heads * hd, kvd = (size_t)a.n_kv * hd, ld = qd + 2 * kvd;
    const int tid = threadIdx.x;

    if (tid < bq) {
        int t = t0 + tid;
        tl_t[tid] = -1;
        if (t < a.T) {
            int s0 = a.seq_start[t], qpos = a.P + (t - s0);
            tl_t[tid] = t;
            tl_s0[tid] = s0;
            tl_j0[tid] = a.window > 0 && qpos - a.window + 1 > 0 ? qpos - a.window + 1 : 0;
        }
    }
    /* the group's query heads are contiguous in a token's row: heads g*rep .. g*rep + rep - 1 */
    for (int i = tid; i < bq * rep * hd; i += TL_THREADS) {
        int qi = i / (rep * hd), rd = i - qi * rep * hd, t = t0 + qi;
        tl_q[(qi * rep + rd / hd) * TL_LD + rd % hd] =
            t < a.T ? a.qkv[(size_t)t * ld + (size_t)g * rep * hd + rd] : 0.0f;
    }
    __syncthreads();
    if (tid == 0) {
        /* the keys any query of the tile sees: prefix slots from the smallest window start,
         * packed tokens from the earliest one seen to the last query */
        int pmin = a.P, umin = INT_MAX, tlast = -1;
        for (int qi = 0; qi < bq; qi++) {
            if (tl_t[qi] < 0)
                continue;
            int j0 = tl_j0[qi];
            int u = tl_s0[qi] + (j0 > a.P ? j0 - a.P : 0);
            pmin = j0 < pmin ? j0 : pmin;
            umin = u < umin ? u : umin;
            tlast = tl_t[qi];
        }
        tl_range[0] = pmin;
        tl_range[1] = tlast < 0 ? pmin : a.P + (tlast - umin) + 1;
        tl_range[2] = tlast < 0 ? 0 : umin;
    }
    __syncthreads();
    const int jbeg = tl_range[0], jend = tl_range[1], umin = tl_range[2];

    /* score phase: thread = (row r, key k); its half-warp is the row */
    const int r = tid / TL_KEYS, k = tid % TL_KEYS;
    float m_run = -INFINITY, l_run = 0.0f;
    /* value phase: thread = (rows vr + 4i, dimensions vd + 64c) */
    const int vr = tid / TL_DCOLS, vd = tid % TL_DCOLS;
    float acc[TL_ROWS / TL_RSTEP][TL_CHUNKS];
#pragma unroll
    for (int i = 0; i < TL_ROWS / TL_RSTEP; i++)
#pragma unroll
        for (int c = 0; c < TL_CHUNKS; c++)
            acc[i][c] = 0.0f;

    for (int base = jbeg; base < jend; base += TL_KEYS) {
        tl_load(a, g, base, jend, umin, ld, qd, kvd, 0);
        __syncthreads();
        float s = -INFINITY;
        if (r < nrows && base + k < jend && tl_visible(r / rep, base + k, a.P, umin)) {
            const float *qr = tl_q + r * TL_LD, *kr = tl_kv + k * TL_LD;
            float dot = 0.0f;
            for (int d = 0; d < hd; d++)
                dot += qr[d] * kr[d];
            s = dot * a.scale;
        }
        float tmax = s;
        for (int o = TL_KEYS / 2; o > 0; o >>= 1)
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
        float m_new = fmaxf(m_run, tmax); /* -inf while the row has seen no key */
        float e = s == -INFINITY ? 0.0f : expf(s - m_new);
        float sum = e;
        for (int o = TL_KEYS / 2; o > 0; o >>= 1)
            sum += __shfl_xor_sync(0xffffffffu, sum, o);
        float c = m_run == -INFINITY ? 0.0f : expf(m_run - m_new);
        l_run = l_run * c + sum;
        m_run = m_new;
        tl_p[r][k] = e;
        if (k == 0)
            tl_scale[r] = c;
        __syncthreads(); /* every score read tl_kv's K; tl_p and tl_scale are complete */
        tl_load(a, g, base, jend, umin, ld, qd, kvd, kvd);
        __syncthreads();
        int nk = jend - base < TL_KEYS ? jend - base : TL_KEYS;
#pragma unroll
        for (int i = 0; i < TL_ROWS / TL_RSTEP; i++) {
            int rr = vr + i * TL_RSTEP;
            if (rr >= nrows)
                break;
            float sc = tl_scale[rr];
#pragma unroll
            for (int cc = 0; cc < TL_CHUNKS; cc++) {
                int d = vd + cc * TL_DCOLS;
                if (d >= hd)
                    break;
                float v = acc[i][cc] * sc;
                for (int kk = 0; kk < nk; kk++)
                    v += tl_p[rr][kk] * tl_kv[kk * TL_LD + d];
                acc[i][cc] = v;
            }
        }
        __syncthreads(); /* tl_kv, tl_p and tl_scale are rewritten by the next tile */
    }
    if (k == 0)
        tl_l[r] = l_run;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < TL_ROWS / TL_RSTEP; i++) {
        int rr = vr + i * TL_RSTEP;
        if (rr >= nrows)
            break;
        int qi = rr / rep, t = tl_t[qi];
        float l = tl_l[rr];
        if (t < 0 || !(l > 0.0f))
            continue;
        O *orow = out + (size_t)t * qd + ((size_t)g * rep + rr % rep) * hd;
        float inv = 1.0f / l;
#pragma unroll
        for (int cc = 0; cc < TL_CHUNKS; cc++) {
            int d = vd + cc * TL_DCOLS;
            if (d < hd)
                store_out(orow + d, acc[i][cc] * inv);
        }
    }
}

int gcu_attention(cudaStream_t st, const gcu_attn_args *a, char *err, size_t errlen)
{
    if (a->nq == 0)
        return 0;
    if (a->hd > GCU_MAX_HEAD_DIM || a->n_kv <= 0 || a->n_heads % a->n_kv ||
        a->n_heads / a->n_kv > GCU_MAX_REP || a->n_heads / a->n_kv * a->hd > GCU_MAX_GROUP_DIM)
        return gcu_fail(err, errlen, "attention: unsupported head layout (%d heads, %d kv, dim %d)",
                        a->n_heads, a->n_kv, a->hd);
    int rep = a->n_heads / a->n_kv;
    if (!a->qrows && a->hd <= TL_MAXD && rep <= TL_ROWS) {
        int bq = TL_ROWS / rep;
        dim3 grid((unsigned)((a->T + bq - 1) / bq), (unsigned)a->n_kv);
        if (a->bf16)
            GCU_LAUNCH(attention_tiled_kernel, grid, TL_THREADS, st, *a,
                       (__nv_bfloat16 *)a->out);
        else
            GCU_LAUNCH(attention_tiled_kernel, grid, TL_THREADS, st, *a, (float *)a->out);
        LAUNCH_RET();
        return 0;
    }
    dim3 grid((unsigned)a->nq, (unsigned)a->n_kv);
    if (a->bf16)
        GCU_LAUNCH(attention_kernel, grid, ATT_THREADS, st, *a, (__nv_bfloat16 *)a->out);
    else
        GCU_LAUNCH(attention_kernel, grid, ATT_THREADS, st, *a, (float *)a->out);
    LAUNCH_RET();
    return 0;
}
