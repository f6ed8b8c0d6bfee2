/* Gemma 3 forward pass, as transformers computes it, over a batch of variable-length token
 * sequences packed without padding. Results for one sequence never depend on the others.
 *
 * A gc_ctx holds everything mutable (scratch buffers, thread count, interrupt callback,
 * device), so one gc_model (read-only, shared) can serve many contexts. */
#ifndef GC_GEMMA3_H
#define GC_GEMMA3_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/model.h"
#include "model/precision.h"

typedef enum gc_device { GC_DEVICE_AUTO = 0, GC_DEVICE_CPU, GC_DEVICE_CUDA } gc_device;

typedef struct gc_ctx_opts {
    int threads;       /* BLAS threads; <= 0 = leave OpenBLAS' default */
    gc_device device;  /* AUTO: CUDA when a usable GPU and the plugin exist, else CPU */
    /* Polled between layers and between batches; non-zero => the call stops with
     * GC_ECANCELED (the PostgreSQL layer checks InterruptPending here and then calls
     * CHECK_FOR_INTERRUPTS itself, outside the core). */
    int (*interrupt)(void *arg);
    void *interrupt_arg;
    /* CUDA only: the device number (0 = the first) and a gc_cuda_precision (0 = F32). */
    int cuda_device;
    int cuda_precision;
    /* Called (when set) with a one-line message the user should see but that is not an error:
     * the CPU fallback after a fatal CUDA error under device AUTO (once per process). */
    void (*notice)(void *arg, const char *msg);
    void *notice_arg;
    /* Arithmetic of the CPU engine's linear layers (precision.h). BF16 / INT8 need the CPU
     * instructions (gc_lowp_supported); without them the context runs F32 and
     * gc_ctx_precision says why. Ignored on CUDA (cuda_precision chooses there); a context
     * that falls back from CUDA to the CPU after a fatal error runs F32. */
    gc_precision precision;
} gc_ctx_opts;

typedef struct gc_ctx gc_ctx;

gc_status gc_ctx_new(const gc_model *m, const gc_ctx_opts *opts, gc_ctx **out, gc_err *e);
void gc_ctx_free(gc_ctx *c);
gc_device gc_ctx_device(const gc_ctx *c); /* the device actually chosen (CPU or CUDA) */
/* The precision the CPU engine actually runs; *note (may be NULL) gets "" or why it differs
 * from the one asked for (e.g. the CPU lacks the instructions). */
gc_precision gc_ctx_precision(const gc_ctx *c, const char **note);

/* Key/value cache of a fixed prompt prefix (e.g. <bos>...comment: ), computed once and
 * reused by gc_forward for every sequence of a batch: sequences then continue the prefix
 * (positions start at the prefix length, attention sees the prefix). */
typedef struct gc_prefix gc_prefix;
gc_status gc_prefix_new(gc_ctx *c, const int32_t *ids, int n, gc_prefix **out, gc_err *e);
void gc_prefix_free(gc_prefix *p);
int gc_prefix_len(const gc_prefix *p);

typedef struct gc_batch {
    int n_seq;
    const int32_t *tokens;  /* all sequences, concatenated */
    const int32_t *seq_len; /* [n_seq], each >= 1 */
    /* Outputs: logits at chosen packed positions (indices into tokens); n_out < 0 = every
     * position. Restricted to vocabulary rows `rows` when n_rows > 0, else the whole vocab. */
    int n_out;
    const int32_t *out_idx;
    int n_rows;
    const int32_t *rows;
    float *logits;          /* [n_out][n_rows or vocab], caller-owned; may be NULL */
    float *hidden;          /* optional [n_layers+1][n_tokens][hidden]: embedding output first */
} gc_batch;

/* prefix may be NULL. */
gc_status gc_forward(gc_ctx *c, const gc_prefix *prefix, gc_batch *b, gc_err *e);

/* Greedy generation for one prompt (what transformers' generate(do_sample=False) does):
 * appends up to max_new tokens to out, stopping after an EOS id (included in out). */
gc_status gc_generate_greedy(gc_ctx *c, const int32_t *prompt, int n, int max_new,
                             const int32_t *eos, int n_eos, int32_t *out, int *n_out, gc_err *e);

#endif
