#include "model/ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

void gc_rmsnorm(float *out, const float *x, const float *w, size_t n_rows, int dim, size_t stride,
                float eps)
{
    for (size_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * stride;
        float *o = out + r * stride;
        /* float32 sum of squares as torch does, in 8 independent lanes so it vectorises */
        float acc[8] = {0};
        int i = 0;
        for (; i + 8 <= dim; i += 8)
            for (int j = 0; j < 8; j++)
                acc[j] += xr[i + j] * xr[i + j];
        for (; i < dim; i++)
            acc[0] += xr[i] * xr[i];
        double ss = 0;
        for (int j = 0; j < 8; j++)
            ss += acc[j];
        float inv = (float)(1.0 / sqrt(ss / dim + (double)eps));
        for (int i = 0; i < dim; i++)
            o[i] = (xr[i] * inv) * (1.0f + w[i]);
    }
}

void gc_rope(float *x, int n_heads, int head_dim, const float *cos, const float *sin)
{
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *a = x + (size_t)h * head_dim, *b = a + half;
        for (int i = 0; i < half; i++) {
            float x1 = a[i], x2 = b[i];
            a[i] = x1 * cos[i] - x2 * sin[i];
            b[i] = x2 * cos[i] + x1 * sin[i];
        }
    }
}

void gc_rope_table(float *cos_t, float *sin_t, int from, int to, int head_dim, double base,
                   double scale)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* transformers computes inv_freq and the angle in float32 */
        float inv = (float)(1.0 / pow(base, (double)(float)(2.0 * i / head_dim)));
        inv = (float)(inv / scale);
        for (int p = from; p < to; p++) {
            float ang = (float)p * inv;
            cos_t[(size_t)p * half + i] = (float)cos((double)ang);
            sin_t[(size_t)p * half + i] = (float)sin((double)ang);
        }
    }
}

/* No "-fno-trapping-math" for exp_approx and gc_gelu_tanh_mul: GCC 12 vectorises the GELU
 * loop without it, and with it turns exp_approx's clamps into masked divisions that run
 * several times slower (gc_gelu_tanh_mul on the AVX-512 Xeon, build/bench/bench_ops: 6.4
 * against 1.4 ns per value with -march=native, 24 against 12 in a build without it). */
/* exp(x) by 2^k * e^r with |r| <= ln2/2 and a degree-7 Taylor polynomial (relative error
 * ~1e-8 before rounding); written branch-free so the compiler vectorises the callers. */
static inline float exp_approx(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float kf = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round(x / ln2) */
    float r = x - kf * 0.693145751953125f;
    r = r - kf * 1.428606765330187e-06f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)kf + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

/* gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) */
void gc_gelu_tanh_mul(float *restrict gate, const float *restrict up, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = gate[i];
        float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        gate[i] = x / (1.0f + exp_approx(-2.0f * u)) * up[i];
    }
}

void gc_softcap(float *x, size_t n, float cap)
{
    for (size_t i = 0; i < n; i++)
        x[i] = tanhf(x[i] / cap) * cap;
}

void gc_softmax_range(float *x, int n, int lo, int hi)
{
    float mx = -INFINITY;
    for (int i = lo; i < hi; i++)
        mx = x[i] > mx ? x[i] : mx;
    float sum = 0;
    for (int i = lo; i < hi; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < lo; i++)
        x[i] = 0;
    for (int i = lo; i < hi; i++)
        x[i] *= inv;
    for (int i = hi; i < n; i++)
        x[i] = 0;
}

void gc_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}
