/* Finds and loads the optional CUDA plugin with dlopen, once per process. Nothing in the core
 * links against CUDA, so a machine without CUDA libraries simply gets "unavailable". */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/cuda_plugin.h"

#define PLUGIN_NAME "gemmaclf_cuda.so"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const gc_cuda_api *loaded_api;
static char load_error[1024];

/* Try one path; on failure remember why (the last reason is reported). */
static int try_open(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error, "cannot load %s: %s", path, dlerror());
        return 0;
    }
    gc_cuda_plugin_api_fn fn = (gc_cuda_plugin_api_fn)dlsym(h, "gc_cuda_plugin_api");
    const gc_cuda_api *api = fn ? fn() : NULL;
    if (!api || api->abi_version != GC_CUDA_ABI_VERSION) {
        if (!api)
            snprintf(load_error, sizeof load_error,
                     "%s: not a gemmaclf CUDA plugin (no gc_cuda_plugin_api)", path);
        else
            snprintf(load_error, sizeof load_error,
                     "%s: plugin ABI %d, this build needs %d (rebuild the plugin)", path,
                     api->abi_version, GC_CUDA_ABI_VERSION);
        dlclose(h);
        return 0;
    }
    loaded_api = api; /* the handle stays open for the life of the process */
    return 1;
}

/* The directory of the shared object (or executable) that contains this function. */
static int own_dir(char *buf, size_t len)
{
    Dl_info info;
    if (!dladdr((void *)&own_dir, &info) || !info.dli_fname)
        return 0;
    char real[PATH_MAX];
    if (!realpath(info.dli_fname, real))
        return 0;
    char *slash = strrchr(real, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    return snprintf(buf, len, "%s", real) < (int)len;
}

/* The plugin links cuBLAS, whose libraries are hundreds of MB: mapping them costs every
 * process ~100 MB of private memory and ~100 ms, for nothing on a machine without a GPU
 * driver. So the default search first checks that the driver library can be loaded at all. */
static int driver_present(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error,
                 "no CUDA device: NVIDIA driver library libcuda.so.1 not found (%s)",
                 why ? why : "dlopen failed");
        return 0;
    }
    return 1; /* kept open: the plugin uses it next */
}

static void load(void)
{
    const char *env = getenv("GEMMACLF_CUDA_PLUGIN");
    if (env && *env) {
        try_open(env); /* an explicit plugin is always tried, driver or not */
        return;
    }
    if (!driver_present())
        return;
    char dir[PATH_MAX], path[PATH_MAX + 64];
    if (own_dir(dir, sizeof dir)) {
        /* beside the PostgreSQL module; ../lib or ../build relative to bin/gemmaclf; ..
         * relative to $(BUILD)/bin/gemmaclf (e.g. build-asan/bin) */
        const char *rel[] = {"", "/../lib", "/../build", "/.."};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(path, sizeof path, "%s%s/" PLUGIN_NAME, dir, rel[i]);
            if (try_open(path))
                return;
        }
    }
    try_open(PLUGIN_NAME);
}

const gc_cuda_api *gc_cuda_load(gc_err *e)
{
    pthread_once(&load_once, load);
    if (!loaded_api)
        gc_fail(e, GC_EDEVICE, "CUDA plugin unavailable (%s)", load_error);
    return loaded_api;
}

int gc_cuda_precision_parse(const char *name, int *out)
{
    if (!name)
        return -1;
    if (!strcasecmp(name, "f32") || !strcasecmp(name, "float32") || !strcasecmp(name, "fp32"))
        *out = GC_CUDA_F32;
    else if (!strcasecmp(name, "tf32"))
        *out = GC_CUDA_TF32;
    else if (!strcasecmp(name, "bf16") || !strcasecmp(name, "bfloat16"))
        *out = GC_CUDA_BF16;
    else
        return -1;
    return 0;
}
