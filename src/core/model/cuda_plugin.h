/* ABI between the core and the optional CUDA plugin (gemmaclf_cuda.so), which the core
 * loads with dlopen so that nothing links against CUDA: machines without CUDA libraries
 * load the extension and the CLI normally and run on the CPU.
 *
 * The plugin exports one symbol, `gc_cuda_plugin_api`, returning a pointer to this table.
 * Errors are returned as non-zero with a message in err (never abort/exit). */
#ifndef GC_CUDA_PLUGIN_H
#define GC_CUDA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/gemma3.h"
#include "model/model.h"

/* 2: model_upload's flag is a gc_cuda_precision (0 and 1 keep their version-1 meaning).
 * 3: device_check; prefix_new returns a status; forward and prefix_new can return
 *    GC_CUDA_BROKEN; the plugin no longer reads GEMMACLF_CUDA_PRECISION (callers do). */
#define GC_CUDA_ABI_VERSION 3

/* Returned by forward and prefix_new when the CUDA context hit a sticky error (illegal address,
 * hardware fault, Xid): every later CUDA call of this process on that device fails, so the
 * device model must not be used again; the plugin's device_check reports the device unusable
 * for the rest of the process. Any other failure is -1 and leaves the context usable. */
#define GC_CUDA_BROKEN (-2)

/* Arithmetic of the large matrix products on the GPU. Everything else (norms, RoPE, softmax,
 * residual stream, label logits) is F32 in every mode. */
typedef enum gc_cuda_precision {
    GC_CUDA_F32 = 0,  /* default: F32 GEMMs, matches the CPU path to ~1e-5 */
    GC_CUDA_TF32 = 1, /* F32 storage, TF32 tensor-core products (opt-in) */
    GC_CUDA_BF16 = 2  /* BF16 weights and GEMM inputs, F32 accumulation (opt-in) */
} gc_cuda_precision;

/* The environment variable GEMMACLF_CUDA_PRECISION (f32, tf32 or bf16) is a fallback the
 * command-line tools read when --cuda-precision is not given (gc_cuda_precision_parse);
 * PostgreSQL uses the superuser-only setting gemmaclf.cuda_precision and ignores it. */
#define GC_CUDA_PRECISION_ENV "GEMMACLF_CUDA_PRECISION"

/* "f32" (or float32, fp32), "tf32", "bf16" (or bfloat16), case-insensitive -> *out; -1 when
 * the name is none of these. */
int gc_cuda_precision_parse(const char *name, int *out);

typedef struct gc_cuda_api {
    int abi_version; /* GC_CUDA_ABI_VERSION */
    /* Number of usable devices (0 when the driver or a GPU is missing, with err set to a
     * message starting "no CUDA device: "). Safe to call any number of times. */
    int (*device_count)(char *err, size_t errlen);
    /* 0 when `device` exists, has the compute capability the kernels are built for and has not
     * hit a sticky error in this process; else -1 with err set ("no CUDA device: ...", or
     * "CUDA device N ... compute capability ..." / "... unusable after a fatal error ..."). */
    int (*device_check)(int device, char *err, size_t errlen);
    /* A device model for one context: its own stream, cuBLAS handle and scratch memory, and
     * weights uploaded once per process (contexts uploading the same host weights on the same
     * device in the same precision share them, refcounted). precision: gc_cuda_precision.
     * The process's CUDA context on that device waits with blocking synchronisation (a waiting
     * process sleeps instead of spinning a core). Returns NULL with err set (e.g. not enough
     * GPU memory, a device that fails device_check). The host weights w must stay valid
     * while the dmodel lives: in GC_CUDA_BF16 the forward reads label rows of w->lm_head in
     * F32 from them (the device table is BF16). */
    void *(*model_upload)(const gc_config *cfg, const gc_weights *w, int device, int precision,
                          char *err, size_t errlen);
    void (*model_free)(void *dmodel);
    /* KV cache of a prompt prefix on the device (see gc_prefix_new). */
    /* 0 with *out set, -1 or GC_CUDA_BROKEN with err set. */
    int (*prefix_new)(void *dmodel, const int32_t *ids, int n, void **out, char *err,
                      size_t errlen);
    void (*prefix_free)(void *dprefix);
    /* Same contract as gc_forward. Hidden-state output (b->hidden != NULL) is not supported on
     * the GPU and returns an error. A dmodel is used by one thread at a time. Returns 0, -1, or
     * GC_CUDA_BROKEN (see above). */
    int (*forward)(void *dmodel, const void *dprefix, gc_batch *b, char *err, size_t errlen);
} gc_cuda_api;

typedef const gc_cuda_api *(*gc_cuda_plugin_api_fn)(void);

/* Core side (cuda_loader.c): finds and dlopens the plugin once per process
 * ($GEMMACLF_CUDA_PLUGIN, else gemmaclf_cuda.so beside the object holding the core, in ../lib,
 * ../build or .. relative to it, else the dynamic loader's search path). Loading touches no
 * CUDA state (safe before fork). Returns NULL with e set (GC_EDEVICE) when unavailable. */
const gc_cuda_api *gc_cuda_load(gc_err *e);

#endif
