/* Reduced-precision copies of a model's linear-layer weights (q, k, v, o, gate, up and down of
 * every layer) for the bf16 and int8 CPU engines. Norms, embeddings and the LM head stay F32.
 *
 *   bf16: W rounded to bfloat16 (to nearest even); tensors the checkpoint stores as BF16 are
 *         used in place when its files are mapped (gc_model_opts.map_files: one-shot tools;
 *         a server never maps them and converts from its F32 copy, which is exact for BF16).
 *   int8: W quantized per output channel, w[n][k] ~= q[n][k] * scale[n] with
 *         scale[n] = max_k |w[n][k]| / 127 (symmetric, q in [-127, 127]).
 *
 * Built once per model and precision: into a cache copy (cache_dir/gemmaclf-KEY.bf16|.int8,
 * common/cache_file.h: written completely under a temporary name, renamed into place and mapped
 * read-only, so every process serving the model shares one copy; the copy for an older state of
 * the same model directory is removed), or into memory when there is no cache directory. */
#ifndef GC_LOWP_WEIGHTS_H
#define GC_LOWP_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/model.h"
#include "model/precision.h"

enum { GC_LIN_Q, GC_LIN_K, GC_LIN_V, GC_LIN_O, GC_LIN_GATE, GC_LIN_UP, GC_LIN_DOWN, GC_LIN_N };

typedef struct gc_lowp_matrix {
    const void *w;      /* [n][k] row-major: bf16 bit patterns (uint16_t) or int8_t */
    const float *scale; /* int8: [n]; bf16: NULL */
    int n, k;
} gc_lowp_matrix;

typedef struct gc_lowp_weights gc_lowp_weights;

/* The F32 weights w of a model with config cfg, converted to precision p (BF16 or INT8).
 * stored_bf16, when not NULL, gives per layer and GC_LIN_* the checkpoint's own BF16 data
 * (NULL entries: not stored as BF16). key identifies the checkpoint's files (cache name);
 * source is the model directory (older copies made from it are removed). */
gc_status gc_lowp_weights_build(const gc_config *cfg, const gc_weights *w,
                                const uint16_t *const (*stored_bf16)[GC_LIN_N], gc_precision p,
                                const char *cache_dir, const char *source, uint64_t key,
                                gc_lowp_weights **out, gc_err *e);
void gc_lowp_weights_free(gc_lowp_weights *lw);

/* The GC_LIN_N matrices of one layer. */
const gc_lowp_matrix *gc_lowp_layer(const gc_lowp_weights *lw, int layer);
gc_precision gc_lowp_precision(const gc_lowp_weights *lw);

#endif
