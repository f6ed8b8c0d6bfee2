/* Device choice and the CUDA plugin's failure paths, on a machine without a GPU (CI):
 *  - GC_DEVICE_AUTO falls back to the CPU and gives exactly the CPU's logits;
 *  - GC_DEVICE_CUDA fails with GC_EDEVICE and a message saying why;
 *  - the real plugin (when built) loads without touching CUDA, reports 0 devices with a
 *    "no CUDA device: ..." message, and refuses an upload cleanly;
 *  - a bogus or foreign GEMMACLF_CUDA_PLUGIN gives a clear error (in child processes: the
 *    loader runs once per process).
 * On a machine with a usable GPU the CUDA-side expectations are inverted and checked by
 * scripts/gpu-check.sh instead; this test then checks only what holds everywhere. */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/cuda_plugin.h"
#include "gc_test.h"
#include "gc_test_ref.h"
#include "model/gemma3.h"
#include "model/model.h"

static gc_model *load_tiny(void)
{
    gc_err e = {0};
    gc_model *m = NULL;
    const char *dir = gct_shared("reference/hf-tiny/tiny_gqa_f32");
    gc_status st = gc_model_load(dir, NULL, &m, &e);
    CHECK(st == GC_OK, "load %s: %s", dir, e.msg);
    return st == GC_OK ? m : NULL;
}

/* Last-position logits of a transformers reference sequence (tiny_gqa_f32 seq5: 16 tokens,
 * longer than its sliding window of 8). */
static gc_status run_once(gc_ctx *c, const int32_t *toks, int32_t len, float *logits, gc_err *e)
{
    int32_t last = len - 1;
    gc_batch b = {.n_seq = 1, .tokens = toks, .seq_len = &len, .n_out = 1, .out_idx = &last,
                  .logits = logits};
    return gc_forward(c, NULL, &b, e);
}

static void test_auto_and_cuda(gc_model *m, int have_gpu)
{
    const int vocab = gc_model_config(m)->vocab_size;
    float *a = calloc((size_t)vocab, sizeof *a), *c = calloc((size_t)vocab, sizeof *c);
    gc_err e = {0};
    gc_ctx *cpu = NULL, *aut = NULL, *cuda = NULL;
    gc_st_file *ref = NULL;
    int n_ids = 0;
    size_t n_ref = 0;
    CHECK(gc_st_open(gct_shared("reference/hf-tiny/tiny_gqa_f32/reference_logits.safetensors"),
                     &ref, &e) == GC_OK, "reference logits: %s", e.msg);
    int32_t *ids = ref ? gct_ids(ref, "seq5.ids", &n_ids) : NULL;
    float *want = ref ? gct_f32(ref, "seq5.logits", &n_ref) : NULL;
    CHECK(ids && want && n_ref == (size_t)n_ids * vocab, "reference seq5");

    gc_ctx_opts oc = {.device = GC_DEVICE_CPU};
    CHECK(gc_ctx_new(m, &oc, &cpu, &e) == GC_OK, "cpu ctx: %s", e.msg);
    CHECK(cpu && gc_ctx_device(cpu) == GC_DEVICE_CPU, "cpu ctx device");

    gc_ctx_opts oa = {.device = GC_DEVICE_AUTO};
    CHECK(gc_ctx_new(m, &oa, &aut, &e) == GC_OK, "auto ctx: %s", e.msg);
    if (!have_gpu)
        CHECK(aut && gc_ctx_device(aut) == GC_DEVICE_CPU, "auto without a GPU must pick the CPU");

    if (cpu && aut && a && c && ids && want) {
        const float *last = want + (size_t)(n_ids - 1) * vocab;
        CHECK(run_once(cpu, ids, n_ids, c, &e) == GC_OK, "cpu forward: %s", e.msg);
        CHECK(run_once(aut, ids, n_ids, a, &e) == GC_OK, "auto forward: %s", e.msg);
        double ec = gct_rel_err(c, last, (size_t)vocab), ea = gct_rel_err(a, last, (size_t)vocab);
        CHECK(ec <= 1e-4, "cpu logits vs transformers: rel err %.3g", ec);
        CHECK(ea <= 1e-4, "auto (%s) logits vs transformers: rel err %.3g",
              have_gpu ? "cuda" : "cpu", ea);
        if (!have_gpu)
            CHECK(!memcmp(a, c, (size_t)vocab * sizeof *a),
                  "auto (CPU) logits differ from the CPU context's");
    }
    free(ids);
    free(want);
    gc_st_close(ref);

    gc_ctx_opts ou = {.device = GC_DEVICE_CUDA};
    memset(&e, 0, sizeof e);
    gc_status st = gc_ctx_new(m, &ou, &cuda, &e);
    if (!have_gpu) {
        CHECK(st == GC_EDEVICE, "cuda without a GPU: got %s (%s)", gc_status_name(st), e.msg);
        CHECK(cuda == NULL, "no context on failure");
        CHECK(strstr(e.msg, "cuda") && (strstr(e.msg, "no CUDA device") ||
                                        strstr(e.msg, "CUDA plugin unavailable")),
              "message should say why CUDA is unavailable: '%s'", e.msg);
        printf("device cuda without a GPU: %s\n", e.msg);
    } else {
        CHECK(st == GC_OK && gc_ctx_device(cuda) == GC_DEVICE_CUDA, "cuda ctx: %s", e.msg);
    }
    gc_ctx_free(cuda);
    gc_ctx_free(aut);
    gc_ctx_free(cpu);
    free(a);
    free(c);
}

/* Path of the plugin built beside this test ($(BUILD)/test/test_device -> $(BUILD)/). */
static int plugin_path(char *buf, size_t len)
{
    return gct_beside_exe("../gemmaclf_cuda.so", buf, len);
}

static int maps_mention(const char *what)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        found |= strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void test_real_plugin(gc_model *m, int *have_gpu)
{
    char path[PATH_MAX + 32];
    if (!plugin_path(path, sizeof path)) {
        printf("skipped: test_device real plugin (gemmaclf_cuda.so not built: no nvcc or USE_CUDA=0)\n");
        return;
    }
    int cuda_before = maps_mention("libcuda.so");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen %s: %s", path, dlerror());
    if (!h)
        return;
    /* loading must not initialise CUDA (PostgreSQL may load the module before fork) */
    CHECK(cuda_before || !maps_mention("libcuda.so"), "dlopen of the plugin loaded libcuda");
    gc_cuda_plugin_api_fn fn = (gc_cuda_plugin_api_fn)dlsym(h, "gc_cuda_plugin_api");
    CHECK(fn != NULL, "plugin exports gc_cuda_plugin_api");
    const gc_cuda_api *api = fn ? fn() : NULL;
    CHECK(api && api->abi_version == GC_CUDA_ABI_VERSION, "plugin ABI version");
    if (!api || api->abi_version != GC_CUDA_ABI_VERSION)
        return;
    char msg[512] = "";
    int n = api->device_count(msg, sizeof msg);
    *have_gpu = n > 0;
    if (n > 0) {
        printf("skipped: test_device no-GPU plugin checks (%d CUDA device(s) present)\n", n);
        return; /* the handle stays open: the plugin is not meant to be unloaded */
    }
    CHECK(n == 0, "device_count without a GPU: %d", n);
    CHECK(!strncmp(msg, "no CUDA device: ", 16), "device_count message: '%s'", msg);
    printf("device_count without a GPU: %s\n", msg);
    /* a second call gives the same answer (no sticky state, no crash) */
    char msg2[512] = "";
    CHECK(api->device_count(msg2, sizeof msg2) == 0 && !strcmp(msg, msg2), "second device_count");
    /* an upload without a device fails with a message */
    char up[512] = "";
    void *dm = api->model_upload(gc_model_config(m), gc_model_weights(m), 0, GC_CUDA_F32, up,
                                 sizeof up);
    CHECK(dm == NULL && up[0], "model_upload without a GPU must fail with a message ('%s')", up);
    if (dm)
        api->model_free(dm);
    /* an invalid precision is rejected before touching the device */
    up[0] = '\0';
    dm = api->model_upload(gc_model_config(m), gc_model_weights(m), 0, 7, up, sizeof up);
    CHECK(dm == NULL && strstr(up, "precision"), "bad precision: '%s'", up);
    api->model_free(NULL);
    api->prefix_free(NULL);
}

/* A child's exit status meaning "not applicable here" (not a pass). */
#define CHILD_SKIPPED 77

/* In a child: set GEMMACLF_CUDA_PLUGIN, then check the loader's and gc_ctx_new's messages. */
static int child_bad_plugin(const char *plugin, const char *expect)
{
    setenv("GEMMACLF_CUDA_PLUGIN", plugin, 1);
    gc_err e = {0};
    if (gc_cuda_load(&e) != NULL || e.code != GC_EDEVICE || !strstr(e.msg, expect)) {
        fprintf(stderr, "loader with %s: code %d, '%s'\n", plugin, e.code, e.msg);
        return 1;
    }
    gc_model *m = NULL;
    if (gc_model_load(gct_shared("reference/hf-tiny/tiny_gqa_f32"), NULL, &m, &e))
        return 2;
    gc_ctx *c = NULL;
    gc_ctx_opts o = {.device = GC_DEVICE_CUDA};
    memset(&e, 0, sizeof e);
    int rc = 0;
    if (gc_ctx_new(m, &o, &c, &e) != GC_EDEVICE || !strstr(e.msg, expect)) {
        fprintf(stderr, "ctx cuda with %s: '%s'\n", plugin, e.msg);
        rc = 3;
    }
    gc_ctx_free(c);
    c = NULL;
    o.device = GC_DEVICE_AUTO;
    if (!rc && (gc_ctx_new(m, &o, &c, &e) != GC_OK || gc_ctx_device(c) != GC_DEVICE_CPU)) {
        fprintf(stderr, "ctx auto with %s: '%s'\n", plugin, e.msg);
        rc = 4;
    }
    if (!rc)
        printf("GEMMACLF_CUDA_PLUGIN=%s: %s\n", plugin, e.msg[0] ? e.msg : "(auto -> cpu)");
    gc_ctx_free(c);
    gc_model_free(m);
    return rc;
}

/* In a child, default plugin search: without a GPU driver, device auto must run on the CPU
 * without mapping the plugin's cuBLAS (~100 MB per process, ~100 ms per first call). */
static int child_auto_no_driver(gc_model *m)
{
    void *drv = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (drv) {
        printf("skipped: test_device auto without a driver (libcuda.so.1 is present)\n");
        return CHILD_SKIPPED;
    }
    gc_ctx_opts o = {.device = GC_DEVICE_AUTO};
    gc_ctx *c = NULL;
    gc_err e = {0};
    int bad = 0;
    if (gc_ctx_new(m, &o, &c, &e) != GC_OK || gc_ctx_device(c) != GC_DEVICE_CPU) {
        printf("FAIL auto without a driver: %s\n", e.msg);
        bad = 1;
    } else if (maps_mention("libcublas") || maps_mention("gemmaclf_cuda.so")) {
        printf("FAIL auto without a driver mapped the CUDA plugin or cuBLAS\n");
        bad = 1;
    }
    gc_ctx_free(c);
    return bad;
}

static int in_child(const char *plugin, const char *expect, gc_model *m)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int r = plugin ? child_bad_plugin(plugin, expect) : child_auto_no_driver(m);
        fflush(stdout);
        _exit(r);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

int main(void)
{
    unsetenv("GEMMACLF_CUDA_PLUGIN");
    unsetenv(GC_CUDA_PRECISION_ENV);
    /* children first: a fork inherits the loader's once-per-process state */
    int rc = in_child("/nonexistent/gemmaclf_cuda.so", "/nonexistent/gemmaclf_cuda.so", NULL);
    CHECK(rc == 0, "bogus plugin path: child status %d", rc);
    /* a real shared object without the entry point */
    rc = in_child("libm.so.6", "not a gemmaclf CUDA plugin", NULL);
    CHECK(rc == 0, "foreign shared object as plugin: child status %d", rc);

    gc_model *m = load_tiny();
    if (!m)
        return gct_finish("test_device");
    rc = in_child(NULL, NULL, m);
    if (rc != CHILD_SKIPPED)
        CHECK(rc == 0, "auto without a driver stays light: child status %d", rc);
    int have_gpu = 0;
    test_real_plugin(m, &have_gpu);
    test_auto_and_cuda(m, have_gpu);

    gc_model_free(m);
    return gct_finish("test_device");
}
