/* Attention over packed variable-length sequences, optionally continuing a cached prefix.
 *
 * One block of 128 threads (4 warps) per (query token, head). The keys a query at position
 * qpos sees are the "virtual" positions j in [j0, qpos]: j < P is prefix key j, j >= P is the
 * token seq_start + (j - P) of the query's own sequence (sequences continue the prefix, so a
 * token's position is P + its index in the sequence). Sliding layers keep keys with
 * qpos - j < window (transformers: kv_idx > q_idx - sliding_window). Keys are visited in
 * tiles of 32: each warp scores 8 of them (lanes split head_dim, so K rows are read
 * coalesced), then an online softmax rescales the running output, of which each thread owns
 * head_dim / 128 dimensions (V rows read coalesced). Scores are q.k * scale in F32 with no
 * soft-capping: transformers' Gemma 3 attention never passes attn_logit_softcapping to its
 * attention function (the fixtures confirm it; so does the CPU path). GQA: head h reads kv
 * head h / (n_heads / n_kv). */
#include <math.h>

#include "gc_cuda.h"

#define ATT_THREADS 128
#define ATT_WARPS (ATT_THREADS / 32)
#define ATT_TILE 32
#define ATT_MAXD (GCU_MAX_HEAD_DIM / ATT_THREADS)

__device__ __forceinline__ void store_out(float *p, float v) { *p = v; }
__device__ __forceinline__ void store_out(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

template <typename O>
__global__ void attention_kernel(gcu_attn_args a, O *out)
{
    __shared__ float q[GCU_MAX_HEAD_DIM];
    __shared__ float p[ATT_TILE];
    __shared__ float tile_scale, tile_sum;

    const int t = blockIdx.x, h = blockIdx.y;
    const int hd = a.hd, qd = a.n_heads * hd, kvd = a.n_kv * hd;
    const size_t ld = (size_t)qd + 2 * (size_t)kvd;
    const int kvh = h / (a.n_heads / a.n_kv);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int s0 = a.seq_start[t];
    const int qpos = a.P + (t - s0);
    int j0 = 0;
    if (a.window > 0 && qpos - a.window + 1 > 0)
        j0 = qpos - a.window + 1;
    const int jend = qpos + 1;

    const float *qrow = a.qkv + (size_t)t * ld + (size_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += ATT_THREADS)
        q[d] = qrow[d];
    __syncthreads();

    float acc[ATT_MAXD];
    for (int r = 0; r < ATT_MAXD; r++)
        acc[r] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    for (int base = j0; base < jend; base += ATT_TILE) {
        /* scores of this tile: warp w takes keys base + w, base + w + 4, ... */
        for (int k = warp; k < ATT_TILE; k += ATT_WARPS) {
            int j = base + k;
            float s = -INFINITY;
            if (j < jend) {
                const float *krow = j < a.P
                                        ? a.pk + (size_t)j * kvd + (size_t)kvh * hd
                                        : a.qkv + (size_t)(s0 + j - a.P) * ld + qd +
                                              (size_t)kvh * hd;
                float dot = 0.0f;
                for (int d = lane; d < hd; d += 32)
                    dot += q[d] * krow[d];
                for (int o = 16; o > 0; o >>= 1)
                    dot += __shfl_xor_sync(0xffffffffu, dot, o);
                s = dot * a.scale;
            }
            if (lane == 0)
                p[k] = s;
        }
        __syncthreads();
        /* warp 0: online-softmax bookkeeping for the tile */
        if (warp == 0) {
            float s = p[lane]; /* ATT_TILE == 32: one score per lane */
            float tmax = s;
            for (int o = 16; o > 0; o >>= 1)
                tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
            float m_new = fmaxf(m, tmax); /* finite: the tile holds at least one key */
            float e = s == -INFINITY ? 0.0f : expf(s - m_new);
            p[lane] = e;
            float sum = e;
            for (int o = 16; o > 0; o >>= 1)
                sum += __shfl_xor_sync(0xffffffffu, sum, o);
            if (lane == 0) {
                tile_scale = m == -INFINITY ? 0.0f : expf(m - m_new);
                tile_sum = sum;
            }
            m = m_new; /* only warp 0's copy of m is used */
        }
        __syncthreads();
        float c = tile_scale;
        l = l * c + tile_sum;
        int nk = jend - base < ATT_TILE ? jend - base : ATT_TILE;
        for (int r = 0; r < ATT_MAXD; r++) {
            int d = threadIdx.x + r * ATT_THREADS;
            if (d >= hd)
                break;
            float v = acc[r] * c;
            for (int k = 0; k < nk; k++) {
                int j = base + k;
                const float *vrow = j < a.P ? a.pv + (size_t)j * kvd + (size_t)kvh * hd
                                            : a.qkv + (size_t)(s0 + j - a.P) * ld + qd + kvd +
                                                  (size_t)kvh * hd;
                v += p[k] * vrow[d];
            }
            acc[r] = v;
        }
        __syncthreads(); /* p, tile_scale, tile_sum are rewritten by the next tile */
    }

    O *orow = out + (size_t)t * qd + (size_t)h * hd;
    float inv = 1.0f / l;
    for (int r = 0; r < ATT_MAXD; r++) {
        int d = threadIdx.x + r * ATT_THREADS;
        if (d < hd)
            store_out(orow + d, acc[r] * inv);
    }
}

int gcu_attention(cudaStream_t st, const gcu_attn_args *a, char *err, size_t errlen)
{
    if (a->T == 0)
        return 0;
    if (a->hd > GCU_MAX_HEAD_DIM || a->n_kv <= 0 || a->n_heads % a->n_kv)
        return gcu_fail(err, errlen, "attention: unsupported head layout (%d heads, %d kv, dim %d)",
                        a->n_heads, a->n_kv, a->hd);
    dim3 grid((unsigned)a->T, (unsigned)a->n_heads);
    if (a->bf16)
        GCU_LAUNCH(attention_kernel, grid, ATT_THREADS, st, *a, (__nv_bfloat16 *)a->out);
    else
        GCU_LAUNCH(attention_kernel, grid, ATT_THREADS, st, *a, (float *)a->out);
    LAUNCH_RET();
    return 0;
}
