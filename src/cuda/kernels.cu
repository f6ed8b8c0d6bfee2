/* Element-wise and row-wise kernels of the Gemma 3 forward pass: scaled embedding, RMSNorm
 * with (1 + w), fused residual + norm, per-head q/k norm with rotate-half RoPE, GELU-tanh
 * gating, row gather, soft-capping. All arithmetic is F32, as transformers does it; a kernel
 * whose output feeds a matrix product writes it in the GEMM input type (F32 or BF16). */
#include <stdarg.h>
#include <stdio.h>

#include "gc_cuda.h"

int gcu_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static inline unsigned blocks_for(size_t n, unsigned threads)
{
    return (unsigned)((n + threads - 1) / threads);
}

__device__ __forceinline__ void store(float *p, float v) { *p = v; }
__device__ __forceinline__ void store(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it. */
__device__ float block_sum(float v)
{
    __shared__ float part[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0)
        part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < (int)(blockDim.x >> 5) ? part[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0)
            total = s;
    }
    __syncthreads();
    float r = total;
    __syncthreads(); /* part/total are reused by the next call */
    return r;
}

/* 1 / sqrt(mean(x^2) + eps) of one row, computed by the whole block. */
__device__ float row_rms_inv(const float *x, int H, float eps)
{
    float ss = 0.0f;
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        ss += x[i] * x[i];
    ss = block_sum(ss);
    return 1.0f / sqrtf(ss / (float)H + eps);
}

#define ROW_THREADS 256

__device__ __forceinline__ float load(const float *p) { return *p; }
__device__ __forceinline__ float load(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

/* The embedding table is F32, or BF16 in GC_CUDA_BF16 (rows converted to F32 here). */
template <typename E>
__global__ void embed_kernel(const E *embed, const int32_t *tok, int H, float scale, float *h)
{
    int t = blockIdx.x;
    const E *src = embed + (size_t)tok[t] * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        h[(size_t)t * H + i] = load(src + i) * scale;
}

int gcu_embed(cudaStream_t st, const void *embed, int bf16, const int32_t *tok, int T, int H,
              float scale, float *h, char *err, size_t errlen)
{
    if (bf16)
        GCU_LAUNCH(embed_kernel, T, ROW_THREADS, st, (const __nv_bfloat16 *)embed, tok, H,
                   scale, h);
    else
        GCU_LAUNCH(embed_kernel, T, ROW_THREADS, st, (const float *)embed, tok, H, scale, h);
    LAUNCH_RET();
    return 0;
}

template <typename O>
__global__ void rmsnorm_kernel(const float *x, const float *w, int H, float eps, O *out)
{
    const float *row = x + (size_t)blockIdx.x * H;
    float inv = row_rms_inv(row, H, eps);
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        store(out + (size_t)blockIdx.x * H + i, row[i] * inv * (1.0f + w[i]));
}

int gcu_rmsnorm(cudaStream_t st, const float *x, const float *w, int T, int H, float eps,
                void *out, int bf16, char *err, size_t errlen)
{
    if (bf16)
        GCU_LAUNCH(rmsnorm_kernel, T, ROW_THREADS, st, x, w, H, eps, (__nv_bfloat16 *)out);
    else
        GCU_LAUNCH(rmsnorm_kernel, T, ROW_THREADS, st, x, w, H, eps, (float *)out);
    LAUNCH_RET();
    return 0;
}

/* h += rms(y) * (1 + w_post), then x = rms(h) * (1 + w_next) when w_next is given. The row's
 * new h is written before it is re-read; each thread re-reads only elements it wrote itself
 * until the reduction's barrier, so no extra synchronisation is needed. */
template <typename O>
__global__ void residual_norm_kernel(float *h, const float *y, const float *w_post,
                                     const float *w_next, int H, float eps, O *x)
{
    size_t off = (size_t)blockIdx.x * H;
    float inv = row_rms_inv(y + off, H, eps);
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        h[off + i] += y[off + i] * inv * (1.0f + w_post[i]);
    if (!w_next)
        return;
    float inv2 = row_rms_inv(h + off, H, eps);
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        store(x + off + i, h[off + i] * inv2 * (1.0f + w_next[i]));
}

int gcu_residual_norm(cudaStream_t st, float *h, const float *y, const float *w_post,
                      const float *w_next, int T, int H, float eps, void *x, int bf16, char *err,
                      size_t errlen)
{
    if (bf16)
        GCU_LAUNCH(residual_norm_kernel, T, ROW_THREADS, st, h, y, w_post, w_next, H, eps,
                   (__nv_bfloat16 *)x);
    else
        GCU_LAUNCH(residual_norm_kernel, T, ROW_THREADS, st, h, y, w_post, w_next, H, eps,
                   (float *)x);
    LAUNCH_RET();
    return 0;
}

/* One warp per head vector (q heads then k heads of a token): RMSNorm over head_dim with
 * (1 + w), then rotate-half RoPE at the token's position (prefix_len + index in its sequence):
 * x[i] * cos - x[i + half] * sin and x[i + half] * cos + x[i] * sin. The angle is
 * position * inv_freq in F32, as transformers computes it. */
#define QK_WARPS 4
__global__ void qk_norm_rope_kernel(float *qkv, const int32_t *seq_start, int prefix_len, int T,
                                    int n_heads, int n_kv, int hd, const float *q_norm,
                                    const float *k_norm, const float *inv_freq, float eps)
{
    int vec = blockIdx.x * QK_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    int per_tok = n_heads + n_kv;
    if (vec >= T * per_tok)
        return;
    int t = vec / per_tok, j = vec % per_tok;
    size_t ld = (size_t)(n_heads + 2 * n_kv) * hd;
    float *x = qkv + (size_t)t * ld + (size_t)j * hd; /* k heads follow the q heads */
    const float *w = j < n_heads ? q_norm : k_norm;

    float ss = 0.0f;
    for (int i = lane; i < hd; i += 32)
        ss += x[i] * x[i];
    ss = warp_sum(ss);
    float inv = 1.0f / sqrtf(ss / (float)hd + eps);
    float pos = (float)(prefix_len + t - seq_start[t]);
    int half = hd / 2;
    for (int i = lane; i < half; i += 32) {
        float a = x[i] * inv * (1.0f + w[i]);
        float b = x[i + half] * inv * (1.0f + w[i + half]);
        float ang = pos * inv_freq[i];
        float c = cosf(ang), s = sinf(ang);
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

int gcu_qk_norm_rope(cudaStream_t st, float *qkv, const int32_t *seq_start, int prefix_len,
                     int T, int n_heads, int n_kv, int hd, const float *q_norm,
                     const float *k_norm, const float *inv_freq, float eps, char *err,
                     size_t errlen)
{
    size_t vecs = (size_t)T * (size_t)(n_heads + n_kv);
    GCU_LAUNCH(qk_norm_rope_kernel, blocks_for(vecs, QK_WARPS), QK_WARPS * 32, st, qkv,
               seq_start, prefix_len, T, n_heads, n_kv, hd, q_norm, k_norm, inv_freq, eps);
    LAUNCH_RET();
    return 0;
}

template <typename O>
__global__ void gelu_gate_kernel(const float *gu, int T, int inter, O *act)
{
    size_t n = (size_t)T * inter;
    const float k0 = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / inter, c = i % inter;
        float g = gu[t * 2 * inter + c], u = gu[t * 2 * inter + inter + c];
        float gelu = 0.5f * g * (1.0f + tanhf(k0 * (g + 0.044715f * g * g * g)));
        store(act + i, gelu * u);
    }
}

int gcu_gelu_gate(cudaStream_t st, const float *gu, int T, int inter, void *act, int bf16,
                  char *err, size_t errlen)
{
    size_t n = (size_t)T * inter;
    unsigned blocks = blocks_for(n, 256);
    if (blocks > 65535u * 8)
        blocks = 65535u * 8; /* grid-stride loop covers the rest */
    if (bf16)
        GCU_LAUNCH(gelu_gate_kernel, blocks, 256, st, gu, T, inter, (__nv_bfloat16 *)act);
    else
        GCU_LAUNCH(gelu_gate_kernel, blocks, 256, st, gu, T, inter, (float *)act);
    LAUNCH_RET();
    return 0;
}

template <typename E>
__global__ void gather_rows_kernel(const E *src, const int32_t *idx, int H, float *dst)
{
    const E *s = src + (size_t)idx[blockIdx.x] * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        dst[(size_t)blockIdx.x * H + i] = load(s + i);
}

int gcu_gather_rows(cudaStream_t st, const void *src, int src_bf16, const int32_t *idx, int n,
                    int H, float *dst, char *err, size_t errlen)
{
    if (n <= 0)
        return 0;
    if (src_bf16)
        GCU_LAUNCH(gather_rows_kernel, n, ROW_THREADS, st, (const __nv_bfloat16 *)src, idx, H,
                   dst);
    else
        GCU_LAUNCH(gather_rows_kernel, n, ROW_THREADS, st, (const float *)src, idx, H, dst);
    LAUNCH_RET();
    return 0;
}

__global__ void softcap_kernel(float *x, size_t n, float cap)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = tanhf(x[i] / cap) * cap;
}

int gcu_softcap(cudaStream_t st, float *x, size_t n, float cap, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    unsigned blocks = blocks_for(n, 256);
    if (blocks > 65535u * 8)
        blocks = 65535u * 8;
    GCU_LAUNCH(softcap_kernel, blocks, 256, st, x, n, cap);
    LAUNCH_RET();
    return 0;
}

__global__ void to_bf16_kernel(const float *src, size_t n, __nv_bfloat16 *dst)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

int gcu_to_bf16(cudaStream_t st, const float *src, size_t n, __nv_bfloat16 *dst, char *err,
                size_t errlen)
{
    if (n == 0)
        return 0;
    unsigned blocks = blocks_for(n, 256);
    if (blocks > 65535u * 8)
        blocks = 65535u * 8;
    GCU_LAUNCH(to_bf16_kernel, blocks, 256, st, src, n, dst);
    LAUNCH_RET();
    return 0;
}
