/* Entry point of gemmaclf_cuda.so: the gc_cuda_api table the core finds with dlsym.
 *
 * Loading this object must have no side effect on CUDA (PostgreSQL may load it in the
 * postmaster before fork): the table is a constant, and the first CUDA runtime call happens in
 * device_count or model_upload, which the core makes only when a context asks for a device. */
#include <dlfcn.h>
#include <pthread.h>
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

/* Devices whose context hit a sticky error: process-wide, since every context of the process
 * on that device shares the (now unusable) primary context. */
#define MAX_DEVICES 64
static char broken_msg[MAX_DEVICES][256];
static pthread_mutex_t broken_lock = PTHREAD_MUTEX_INITIALIZER;

static int device_check(int device, char *err, size_t errlen)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return gcu_fail(err, errlen, "no CUDA device: %s (%s)", cudaGetErrorString(e),
                        cudaGetErrorName(e));
    if (device < 0 || device >= n)
        return gcu_fail(err, errlen, "no CUDA device: device %d requested, %d device(s) found "
                                     "(numbered from 0)", device, n);
    pthread_mutex_lock(&broken_lock);
    int broken = device < MAX_DEVICES && broken_msg[device][0];
    if (broken)
        gcu_fail(err, errlen, "CUDA device %d is unusable after a fatal error in this process: %s",
                 device, broken_msg[device]);
    pthread_mutex_unlock(&broken_lock);
    if (broken)
        return -1;
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, device);
    if (e != cudaSuccess)
        return gcu_fail(err, errlen, "CUDA device %d: %s", device, cudaGetErrorString(e));
    if (prop.major < MIN_MAJOR)
        return gcu_fail(err, errlen, "CUDA device %d (%s) has compute capability %d.%d; the "
                                     "plugin is built for %d.0 or newer (sm_80, sm_90 + PTX)",
                        device, prop.name, prop.major, prop.minor, MIN_MAJOR);
    return 0;
}

/* Whether m's device already hit a sticky error in this process (through any context). */
static int known_broken(gcu_model *m, char *err, size_t errlen)
{
    pthread_mutex_lock(&broken_lock);
    if (m->device < MAX_DEVICES && broken_msg[m->device][0]) {
        m->broken = 1;
        gcu_fail(err, errlen, "CUDA device %d hit a fatal error earlier in this process: %s",
                 m->device, broken_msg[m->device]);
    } else if (m->broken) {
        gcu_fail(err, errlen, "the CUDA context hit a fatal error earlier");
    }
    pthread_mutex_unlock(&broken_lock);
    return m->broken;
}

/* After a failed call: is the context broken for good? Sticky errors (a kernel fault, an
 * illegal address, an Xid) are not cleared by cudaGetLastError and make every later call fail,
 * so clearing once and synchronising the device tells them from ordinary errors. */
static int sticky_error(gcu_model *m, char *err, size_t errlen)
{
    cudaError_t first = cudaGetLastError();
    cudaError_t again = cudaDeviceSynchronize();
    if (again == cudaSuccess)
        again = cudaGetLastError();
    if (again == cudaSuccess)
        return 0;
    pthread_mutex_lock(&broken_lock);
    if (m->device < MAX_DEVICES && !broken_msg[m->device][0])
        snprintf(broken_msg[m->device], sizeof broken_msg[m->device], "%s (%s)",
                 cudaGetErrorString(again), cudaGetErrorName(again));
    pthread_mutex_unlock(&broken_lock);
    m->broken = 1;
    (void)first;
    size_t used = strlen(err);
    if (used + 1 < errlen)
        snprintf(err + used, errlen - used, "; sticky CUDA error: %s (%s)",
                 cudaGetErrorString(again), cudaGetErrorName(again));
    return 1;
}

/* A context waits for the GPU by sleeping on a driver event instead of spinning a core at 100 %
 * (the default for a process with fewer GPUs than cores is to spin or yield). Set on the device
 * before its first stream; a context that already exists keeps the flags it was created with,
 * which is fine only if they already say blocking. */
static int blocking_sync(int device, char *err, size_t errlen)
{
    cudaError_t e = cudaSetDeviceFlags(cudaDeviceScheduleBlockingSync);
    if (e == cudaErrorSetOnActiveProcess) {
        unsigned flags = 0;
        cudaGetLastError();
        if (cudaGetDeviceFlags(&flags) == cudaSuccess &&
            (flags & cudaDeviceScheduleMask) == cudaDeviceScheduleBlockingSync)
            return 0;
        return gcu_fail(err, errlen, "CUDA device %d: its context already exists without "
                                     "blocking synchronisation (flags 0x%x)", device, flags);
    }
    if (e != cudaSuccess)
        return gcu_fail(err, errlen, "cudaSetDeviceFlags on device %d: %s", device,
                        cudaGetErrorString(e));
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
        gcu_graphs_clear(m);
        if (m->s.pool)
            cudaFree(m->s.pool);
        if (m->host)
            cudaFreeHost(m->host);
        if (m->blas)
            cublasDestroy(m->blas);
        if (m->stream)
            cudaStreamDestroy(m->stream);
    }
    gcu_weights_release(m->w);
    free(m);
}

static void *model_upload(const gc_config *cfg, const gc_weights *w, int device, int precision,
                          char *err, size_t errlen)
{
    int prec = 0;
    cudaError_t ce;
    cublasStatus_t bs;
    if (!cfg || !w) {
        gcu_fail(err, errlen, "model_upload: no model");
        return NULL;
    }
    if (precision < GC_CUDA_F32 || precision > GC_CUDA_BF16) {
        gcu_fail(err, errlen, "unknown CUDA precision %d", precision);
        return NULL;
    }
    prec = precision;
    if (device_check(device, err, errlen))
        return NULL;
    gcu_model *m = (gcu_model *)calloc(1, sizeof *m);
    if (!m) {
        gcu_fail(err, errlen, "out of host memory");
        return NULL;
    }
    m->device = device;
    m->host_lm_head = w->lm_head;
    ce = cudaSetDevice(device);
    if (ce == cudaSuccess && blocking_sync(device, err, errlen))
        goto fail;
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

static int prefix_new(void *dmodel, const int32_t *ids, int n, void **out, char *err,
                      size_t errlen)
{
    gcu_model *m = (gcu_model *)dmodel;
    gcu_prefix *p = NULL;
    *out = NULL;
    if (!m)
        return gcu_fail(err, errlen, "prefix_new: no device model");
    if (known_broken(m, err, errlen))
        return GC_CUDA_BROKEN;
    if (gcu_prefix_new(m, ids, n, &p, err, errlen))
        return sticky_error(m, err, errlen) ? GC_CUDA_BROKEN : -1;
    *out = p;
    return 0;
}

static void prefix_free(void *dprefix) { gcu_prefix_free((gcu_prefix *)dprefix); }

static int forward(void *dmodel, const void *dprefix, gc_batch *b, char *err, size_t errlen)
{
    gcu_model *m = (gcu_model *)dmodel;
    if (!m || !b)
        return gcu_fail(err, errlen, "forward: no device model or batch");
    if (known_broken(m, err, errlen))
        return GC_CUDA_BROKEN;
    if (gcu_forward(m, (const gcu_prefix *)dprefix, b, err, errlen))
        return sticky_error(m, err, errlen) ? GC_CUDA_BROKEN : -1;
    return 0;
}

static const gc_cuda_api api = {
    GC_CUDA_ABI_VERSION, device_count, device_check, model_upload, model_free,
    prefix_new,          prefix_free,  forward,
};
extern "C" __attribute__((visibility("default"))) const gc_cuda_api *gc_cuda_plugin_api(void)
{
    return &api;
}
