#include "cli_common.h"

#include <cJSON.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier/model_locate.h"
#include "model/cuda_plugin.h"

static int parse_int(const char *opt, const char *v, int lo, int *out)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > 1000000) {
        fprintf(stderr, "gemmaclf: %s needs an integer >= %d\n", opt, lo);
        return 2;
    }
    *out = (int)x;
    return 0;
}

int cli_parse(int argc, char **argv, const char *usage, int allow_max_new, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = GC_DEFAULT_BATCH_SIZE;
    o->max_new = 8;
    /* One BLAS thread: small products do not gain from more, and waking threads costs more
     * than it saves (measured: batch 1 takes 2.3x the time with 2 threads). */
    o->threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: gemmaclf %s %s\n", argv[0], usage);
            exit(0);
        } else if (!strcmp(a, "--batch"))
            rc = parse_int(a, v, 1, &o->batch), i++;
        else if (!strcmp(a, "--threads"))
            rc = parse_int(a, v, 0, &o->threads), i++;
        else if (!strcmp(a, "--max-input-tokens"))
            rc = parse_int(a, v, 1, &o->max_input_tokens), i++;
        else if (!strcmp(a, "--cache-dir") && v)
            o->cache_dir = v, i++;
        else if (allow_max_new && !strcmp(a, "--max-new"))
            rc = parse_int(a, v, 1, &o->max_new), i++;
        else if (!strcmp(a, "--device")) {
            i++;
            if (v && !strcmp(v, "auto"))
                o->device = GC_DEVICE_AUTO;
            else if (v && !strcmp(v, "cpu"))
                o->device = GC_DEVICE_CPU;
            else if (v && !strcmp(v, "cuda"))
                o->device = GC_DEVICE_CUDA;
            else {
                fprintf(stderr, "gemmaclf: --device needs auto, cpu or cuda\n");
                rc = 2;
            }
        } else if (!strcmp(a, "--precision")) {
            i++;
            if (gc_precision_parse(v, &o->precision)) {
                fprintf(stderr, "gemmaclf: --precision needs f32, bf16 or int8\n");
                rc = 2;
            }
        } else if (!strcmp(a, "--cuda-device"))
            rc = parse_int(a, v, 0, &o->cuda_device), i++;
        else if (!strcmp(a, "--cuda-precision")) {
            int prec;
            i++;
            o->cuda_precision = v;
            rc = cli_cuda_precision(v ? v : "", &prec);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "gemmaclf: unknown option %s\nusage: gemmaclf %s %s\n", a, argv[0], usage);
            rc = 2;
        } else if (!o->model_dir)
            o->model_dir = a;
        else {
            fprintf(stderr, "gemmaclf: unexpected argument %s\n", a);
            rc = 2;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* GEMMACLF_MODEL, else <bin>/../models/<default>, else the PostgreSQL share dir's copy. */
static int default_model(char *out, size_t cap)
{
    const char *env = getenv("GEMMACLF_MODEL");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return 1;
    }
    char exe[PATH_MAX], root[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        snprintf(root, sizeof root, "%s/../models", dirname(exe));
        if (gc_find_model_in(root, out, cap))
            return 1;
    }
#ifdef GC_PG_SHAREDIR
    if (gc_find_model_in(GC_PG_SHAREDIR "/extension/gemmaclf_models", out, cap))
        return 1;
#endif
    return 0;
}

int cli_open(const cli_opts *o, gc_classifier **c, gc_session **s)
{
    char dir[PATH_MAX];
    gc_err e = {0};
    *c = NULL;
    *s = NULL;
    if (o->model_dir)
        snprintf(dir, sizeof dir, "%s", o->model_dir);
    else if (!default_model(dir, sizeof dir)) {
        fprintf(stderr, "gemmaclf: no model directory given and no bundled model found "
                        "(set GEMMACLF_MODEL or pass MODEL_DIR)\n");
        return 1;
    }
    gc_classifier_opts co = {.cache_dir = o->cache_dir, .map_files = !o->cache_dir};
    if (gc_classifier_open(dir, &co, c, &e)) {
        fprintf(stderr, "gemmaclf: %s: %s\n", dir, e.msg);
        return 1;
    }
    int prec;
    if (cli_cuda_precision(o->cuda_precision, &prec))
        return 2;
    gc_session_opts so = {.ctx = {.threads = o->threads, .device = o->device,
                                  .cuda_device = o->cuda_device, .cuda_precision = prec,
                                  .notice = cli_notice, .precision = o->precision},
                          .batch_size = o->batch, .max_input_tokens = o->max_input_tokens};
    if (gc_session_new(*c, &so, s, &e)) {
        fprintf(stderr, "gemmaclf: %s\n", e.msg);
        gc_classifier_free(*c);
        *c = NULL;
        return 1;
    }
    const char *note;
    gc_ctx_precision(gc_session_ctx(*s), &note);
    if (*note)
        fprintf(stderr, "gemmaclf: %s\n", note);
    return 0;
}

int cli_cuda_precision(const char *name, int *out)
{
    const char *from = "--cuda-precision ";
    if (!name) {
        name = getenv(GC_CUDA_PRECISION_ENV);
        from = GC_CUDA_PRECISION_ENV "=";
        if (!name || !*name) {
            *out = GC_CUDA_F32;
            return 0;
        }
    }
    if (gc_cuda_precision_parse(name, out)) {
        fprintf(stderr, "gemmaclf: %s%s: expected f32, tf32 or bf16\n", from, name);
        return 2;
    }
    return 0;
}

void cli_notice(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "%s\n", msg);
}

int cli_start(int argc, char **argv, const char *usage, int allow_max_new, cli_opts *o,
              gc_classifier **c, gc_session **s)
{
    int rc = cli_parse(argc, argv, usage, allow_max_new, o);
    if (rc)
        return rc;
    return cli_open(o, c, s);
}

void cli_print_json_line(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        puts(s);
    free(s);
    cJSON_Delete(o);
}

char *cli_line_text(const char *line, const char **why)
{
    cJSON *j = cJSON_Parse(line);
    const cJSON *s = j;
    char *out = NULL;
    if (cJSON_IsObject(j))
        s = cJSON_GetObjectItemCaseSensitive(j, "text");
    if (!j)
        *why = "not valid JSON";
    else if (!cJSON_IsString(s))
        *why = "expected a JSON string (or an object with a \"text\" string)";
    else if (!(out = strdup(s->valuestring)))
        *why = "out of memory";
    cJSON_Delete(j);
    return out;
}
