/* Elementwise and row-wise kernels of the Gemma 3 forward pass (float32, as transformers). */
#ifndef GC_OPS_H
#define GC_OPS_H

#include <stddef.h>

/* out[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * (1 + w), for n_rows rows of dim floats
 * (rows `stride` floats apart); out may equal x. */
void gc_rmsnorm(float *out, const float *x, const float *w, size_t n_rows, int dim, size_t stride,
                float eps);

/* Rotate-half RoPE in place on n_heads heads of head_dim at the start of x, with the
 * precomputed cos/sin row (head_dim/2 floats each) of the token's position. */
void gc_rope(float *x, int n_heads, int head_dim, const float *cos, const float *sin);

/* cos/sin table rows for positions [from, to): inv_freq_i = 1/(base^(2i/head_dim) * scale). */
void gc_rope_table(float *cos, float *sin, int from, int to, int head_dim, double base,
                   double scale);

/* gate[i] = gelu_tanh(gate[i]) * up[i] */
void gc_gelu_tanh_mul(float *restrict gate, const float *restrict up, size_t n);

/* x = tanh(x / cap) * cap */
void gc_softcap(float *x, size_t n, float cap);

/* In-place softmax of x[lo, hi) (max-subtracted, float32); entries outside become 0. */
void gc_softmax_range(float *x, int n, int lo, int hi);

/* x += y */
void gc_add(float *x, const float *y, size_t n);

#endif
