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

int gcu_attention(cudaStream_t st, const gcu_attn_args *a, char *err, size_t errlen)
{
    if (a->nq == 0)
        return 0;
    if (a->hd > GCU_MAX_HEAD_DIM || a->n_kv <= 0 || a->n_heads % a->n_kv ||
        a->n_heads / a->n_kv > GCU_MAX_REP || a->n_heads / a->n_kv * a->hd > GCU_MAX_GROUP_DIM)
        return gcu_fail(err, errlen, "attention: unsupported head layout (%d heads, %d kv, dim %d)",
                        a->n_heads, a->n_kv, a->hd);
    dim3 grid((unsigned)a->nq, (unsigned)a->n_kv);
    if (a->bf16)
        GCU_LAUNCH(attention_kernel, grid, ATT_THREADS, st, *a, (__nv_bfloat16 *)a->out);
    else
        GCU_LAUNCH(attention_kernel, grid, ATT_THREADS, st, *a, (float *)a->out);
    LAUNCH_RET();
    return 0;
}
