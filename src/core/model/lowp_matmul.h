/* y = x . W^T for the linear layers in bf16 or int8, with oneDNN's matmul (brgemm kernels:
 * AMX tiles where the CPU has them, else AVX-512 BF16 / VNNI; oneDNN dispatches at run time).
 *
 * Per call the f32 activations are converted: to bf16 (round to nearest even), or quantized per
 * token (row) to int8 with scale max|x|/127; the int8 product accumulates in int32 and is
 * scaled back by token scale x channel scale. One oneDNN primitive serves every matrix of a
 * shape (the weights are an argument of the call), so a context keeps a small cache of them per
 * (rows, n, k). Not thread-safe: one engine per gc_ctx. */
#ifndef GC_LOWP_MATMUL_H
#define GC_LOWP_MATMUL_H

#include "common/error.h"
#include "model/lowp_weights.h"

typedef struct gc_lowp_engine gc_lowp_engine;

/* Can this process run precision p? Returns 1, or 0 with a one-line reason in why (the CPU
 * lacks the instructions, as gc_cpu_features reports them). */
int gc_lowp_supported(gc_precision p, char *why, size_t cap);

gc_status gc_lowp_engine_new(gc_precision p, int threads, gc_lowp_engine **out, gc_err *e);
void gc_lowp_engine_free(gc_lowp_engine *g);

/* y[M][w->n] = x[M][w->k] . W^T; x is not modified. */
gc_status gc_lowp_matmul(gc_lowp_engine *g, float *y, const float *x, const gc_lowp_matrix *w,
                         int M, gc_err *e);

/* gc_gelu_tanh_mul over rows x cols values, on the engine's threads where the products use them
 * (the same results: each value is computed alone). */
void gc_lowp_gelu_tanh_mul(gc_lowp_engine *g, float *gate, const float *up, int rows, int cols);

#endif
