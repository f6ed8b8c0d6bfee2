/* Entry point of gemmaclf_cuda.so: the gc_cuda_api table the core finds with dlsym.
 *
 * Loading this object must have no side effect on CUDA (PostgreSQL may load it in the
 * postmaster before fork): the table is a constant, and the first CUDA runtime call happens in
 * device_count or model_upload, which the core makes only when a context asks for a device. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gc_cuda.h"

#define MIN_MAJOR 8 /* the kernels are built for sm_80 and newer */

static int device_count(char *err, size_t errlen)
{
    int n = 0, usable = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        /* the runtime reports a missing driver as "insufficient": say what is missing */
        void *drv = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
        if (drv)
            dlclose(drv);
        gcu_fail(err, errlen, "no CUDA device: %s%s (%s)",
                 drv ? "" : "NVIDIA driver library libcuda.so.1 not found; ",
                 cudaGetErrorString(e), cudaGetErrorName(e));
        cudaGetLastError(); /* not sticky, but leave a clean state */
        return 0;
    }
    for (int i = 0; i < n; i++) {
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, i) == cudaSuccess && prop.major >= MIN_MAJOR)
            usable++;
    }
    if (n == 0)
        gcu_fail(err, errlen, "no CUDA device: the driver reports none");
    else if (usable == 0)
        gcu_fail(err, errlen, "no CUDA device: %d device(s) found, none of compute capability "
                              "%d.0 or newer", n, MIN_MAJOR);
    /* devices are numbered by the runtime; usable ones come first on every machine we target */
    return usable;
}

/* The precision the caller asked for, unless GEMMACLF_CUDA_PRECISION overrides it. */
static int resolve_precision(int requested, int *out, char *err, size_t errlen)
{
    const char *env = getenv(GC_CUDA_PRECISION_ENV);
    if (env && *env) {
        if (!strcasecmp(env, "f32") || !strcasecmp(env, "float32") || !strcasecmp(env, "fp32"))
            *out = GC_CUDA_F32;
        else if (!strcasecmp(env, "tf32"))
            *out = GC_CUDA_TF32;
        else if (!strcasecmp(env, "bf16") || !strcasecmp(env, "bfloat16"))
            *out = GC_CUDA_BF16;
        else
            return gcu_fail(err, errlen, "%s=%s: expected f32, tf32 or bf16", GC_CUDA_PRECISION_ENV,
                            env);
        return 0;
    }
    if (requested < GC_CUDA_F32 || requested > GC_CUDA_BF16)
        return gcu_fail(err, errlen, "unknown CUDA precision %d", requested);
    *out = requested;
    return 0;
}

static void model_free(void *dmodel)
{
    gcu_model *m = (gcu_model *)dmodel;
    if (!m)
        return;
    if (cudaSetDevice(m->device) == cudaSuccess) {
        if (m->stream)
            cudaStreamSynchronize(m->stream);
        if (m->s.pool)
            cudaFree(m->s.pool);
        if (m->blas)
            cublasDestroy(m->blas);
        if (m->stream)
            cudaStreamDestroy(m->stream);
    }
    gcu_weights_release(m->w);
    free(m->host_meta);
    free(m);
}

static void *model_upload(const gc_config *cfg, const gc_weights *w, int device, int precision,
                          char *err, size_t errlen)
{
    int prec = 0, n = 0;
    cudaError_t ce;
    cublasStatus_t bs;
    if (!cfg || !w) {
        gcu_fail(err, errlen, "model_upload: no model");
        return NULL;
    }
    if (resolve_precision(precision, &prec, err, errlen))
        return NULL;
    ce = cudaGetDeviceCount(&n);
    if (ce != cudaSuccess || device < 0 || device >= n) {
        gcu_fail(err, errlen, "no CUDA device: device %d not available (%s)", device,
                 ce != cudaSuccess ? cudaGetErrorString(ce) : "out of range");
        return NULL;
    }
    gcu_model *m = (gcu_model *)calloc(1, sizeof *m);
    if (!m) {
        gcu_fail(err, errlen, "out of host memory");
        return NULL;
    }
    m->device = device;
    ce = cudaSetDevice(device);
    if (ce == cudaSuccess)
        ce = cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking);
    if (ce != cudaSuccess) {
        gcu_fail(err, errlen, "CUDA device %d: %s", device, cudaGetErrorString(ce));
        goto fail;
    }
    bs = cublasCreate(&m->blas);
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasSetStream(m->blas, m->stream);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        gcu_fail(err, errlen, "cuBLAS on device %d: %s", device, cublasGetStatusString(bs));
        goto fail;
    }
    if (gcu_weights_acquire(cfg, w, device, prec, &m->w, err, errlen))
        goto fail;
    return m;
fail:
    model_free(m);
    return NULL;
}

static void *prefix_new(void *dmodel, const int32_t *ids, int n, char *err, size_t errlen)
{
    gcu_prefix *p = NULL;
    if (!dmodel) {
        gcu_fail(err, errlen, "prefix_new: no device model");
        return NULL;
    }
    if (gcu_prefix_new((gcu_model *)dmodel, ids, n, &p, err, errlen))
        return NULL;
    return p;
}

static void prefix_free(void *dprefix) { gcu_prefix_free((gcu_prefix *)dprefix); }

static int forward(void *dmodel, const void *dprefix, gc_batch *b, char *err, size_t errlen)
{
    if (!dmodel || !b)
        return gcu_fail(err, errlen, "forward: no device model or batch");
    return gcu_forward((gcu_model *)dmodel, (const gcu_prefix *)dprefix, b, err, errlen);
}

static const gc_cuda_api api = {
    GC_CUDA_ABI_VERSION, device_count, model_upload, model_free, prefix_new, prefix_free, forward,
};

extern "C" __attribute__((visibility("default"))) const gc_cuda_api *gc_cuda_plugin_api(void)
{
    return &api;
}
