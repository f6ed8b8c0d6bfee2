/* Arithmetic precision of the CPU engine's linear layers. */
#ifndef GC_PRECISION_H
#define GC_PRECISION_H

typedef enum gc_precision {
    GC_PRECISION_F32 = 0, /* float32 throughout (OpenBLAS sgemm), as transformers computes */
    GC_PRECISION_BF16,    /* bf16 weights and activations, f32 accumulation (oneDNN) */
    GC_PRECISION_INT8,    /* int8 weights (per channel) and activations (per token), int32
                             accumulation (oneDNN) */
} gc_precision;

const char *gc_precision_name(gc_precision p); /* "f32", "bf16", "int8" */
/* 0 on success; -1 when s names no precision. */
int gc_precision_parse(const char *s, gc_precision *out);

#endif
