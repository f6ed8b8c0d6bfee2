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

#include "gemma3.h"
#include "model.h"

#define GC_CUDA_ABI_VERSION 1

typedef struct gc_cuda_api {
    int abi_version; /* GC_CUDA_ABI_VERSION */
    /* Number of usable devices (0 when the driver or a GPU is missing, with err set). */
    int (*device_count)(char *err, size_t errlen);
    /* Upload weights once; returns an opaque device model or NULL. use_bf16/tf32 are
     * opt-in faster modes. */
    void *(*model_upload)(const gc_config *cfg, const gc_weights *w, int device, int use_tf32,
                          char *err, size_t errlen);
    void (*model_free)(void *dmodel);
    /* KV cache of a prompt prefix on the device (see gc_prefix_new). */
    void *(*prefix_new)(void *dmodel, const int32_t *ids, int n, char *err, size_t errlen);
    void (*prefix_free)(void *dprefix);
    /* Same contract as gc_forward (hidden output may be unsupported: then return error). */
    int (*forward)(void *dmodel, const void *dprefix, gc_batch *b, char *err, size_t errlen);
} gc_cuda_api;

typedef const gc_cuda_api *(*gc_cuda_plugin_api_fn)(void);

/* Core side (cuda_loader.c): finds and dlopens the plugin once per process
 * ($GEMMACLF_CUDA_PLUGIN, else gemmaclf_cuda.so beside the object holding the core, else the
 * dynamic loader's search path). Returns NULL with e set when unavailable. */
const gc_cuda_api *gc_cuda_load(gc_err *e);

#endif
