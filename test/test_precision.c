/* Reduced precision (gemmaclf.precision / --precision): CPU feature detection and its simulation
 * switch, the converted-weight cache (contents, sharing, a stale or torn file, an unwritable
 * directory, a write that runs out of space), logits close to f32, label agreement with f32 on
 * dev comments for the bundled model and the reference classifier, and the f32 fallback on a
 * CPU without the instructions (simulated with GEMMACLF_CPU_FEATURES=none), in the library and
 * the CLI.
 *
 * Agreement runs on the first GC_PRECISION_N dev comments (default 400; 0 = all 2,097; the
 * full-set numbers are in the README, measured by bench/precision_quality.sh). On a CPU without
 * the instructions the agreement checks become checks that the fallback gives f32 exactly. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "gc_test.h"
#include "model/cpu_features.h"
#include "model/lowp_matmul.h"
#include "model/lowp_weights.h"

#define REF "reference/hf-trained-classifier"
#define SMALL "models/gemmaclf-hinglish-small"
#define DEV "data/indo-hatespeech/dev.jsonl"

static void set_features(const char *v)
{
    if (v)
        setenv("GEMMACLF_CPU_FEATURES", v, 1);
    else
        unsetenv("GEMMACLF_CPU_FEATURES");
}

static void test_names(void)
{
    gc_precision p;
    CHECK(!gc_precision_parse("f32", &p) && p == GC_PRECISION_F32, "f32");
    CHECK(!gc_precision_parse("bf16", &p) && p == GC_PRECISION_BF16, "bf16");
    CHECK(!gc_precision_parse("int8", &p) && p == GC_PRECISION_INT8, "int8");
    CHECK(gc_precision_parse("fp8", &p) && gc_precision_parse("", &p) && gc_precision_parse(NULL, &p),
          "unknown names rejected");
    CHECK(!strcmp(gc_precision_name(GC_PRECISION_INT8), "int8"), "name");
}

static void test_features(void)
{
    char buf[128];
    set_features(NULL);
    unsigned all = gc_cpu_features();
    printf("cpu features: %s\n", gc_cpu_feature_names(all, buf, sizeof buf));
    set_features("none");
    CHECK(gc_cpu_features() == 0, "none hides everything");
    CHECK(!strcmp(gc_cpu_feature_names(0, buf, sizeof buf), "none"), "name of no features");
    set_features("avx512_vnni");
    CHECK(gc_cpu_features() == (all & GC_CPU_AVX512_VNNI), "a list keeps only what it names");
    set_features("avx512_vnni,amx_int8, avx512_bf16 amx_bf16");
    CHECK(gc_cpu_features() == all, "every name: everything detected (%x)", gc_cpu_features());
    set_features("sse9");
    CHECK(gc_cpu_features() == 0, "unknown names keep nothing");
    set_features("none");
    char why[256];
    CHECK(!gc_lowp_supported(GC_PRECISION_BF16, why, sizeof why) && strstr(why, "bf16") &&
              strstr(why, "AVX512-BF16"), "reason: %s", why);
    CHECK(!gc_lowp_supported(GC_PRECISION_INT8, why, sizeof why) && strstr(why, "VNNI"), "%s", why);
    CHECK(gc_lowp_supported(GC_PRECISION_F32, why, sizeof why), "f32 always");
    gc_lowp_engine *g = NULL;
    gc_err e = {0};
    CHECK(gc_lowp_engine_new(GC_PRECISION_INT8, 1, &g, &e) == GC_EUNSUPPORTED && !g,
          "no engine without the instructions: %s", e.msg);
    set_features(NULL);
}

/* ---- the converted-weight cache --------------------------------------------------------- */

static int count_files(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += strstr(de->d_name, needle) != NULL;
    if (d)
        closedir(d);
    return n;
}

/* Whether p lies in a mapping of a file whose path contains name (/proc/self/maps). */
static int in_file_mapping(const void *p, const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 128];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && strstr(line, name) &&
            (uintptr_t)p >= lo && (uintptr_t)p < hi)
            found = 1;
    }
    if (f)
        fclose(f);
    return found;
}

static int find_file(const char *dir, const char *suffix, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t n = strlen(de->d_name), k = strlen(suffix);
        if (n > k && !strcmp(de->d_name + n - k, suffix) && de->d_name[0] != '.') {
            snprintf(out, cap, "%s/%s", dir, de->d_name);
            found = 1;
        }
    }
    if (d)
        closedir(d);
    return found;
}

static float bf16_value(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Every matrix of the model within the precision's rounding of its f32 weights. */
static void check_contents(const gc_model *m, const gc_lowp_weights *lw, gc_precision p)
{
    const gc_weights *w = gc_model_weights(m);
    const gc_config *c = gc_model_config(m);
    int bad = 0, full_scale_rows = 0, rows = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const gc_layer_weights *L = &w->layers[l];
        const float *f32[GC_LIN_N] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        const gc_lowp_matrix *lm = gc_lowp_layer(lw, l);
        for (int j = 0; j < GC_LIN_N; j++)
            for (int r = 0; r < lm[j].n; r++) {
                int maxq = 0;
                for (int k = 0; k < lm[j].k; k++) {
                    size_t i = (size_t)r * lm[j].k + k;
                    float x = f32[j][i];
                    if (p == GC_PRECISION_BF16) {
                        float y = bf16_value(((const uint16_t *)lm[j].w)[i]);
                        bad += !(fabsf(y - x) <= fabsf(x) * 0x1p-8f);
                    } else {
                        int q = ((const int8_t *)lm[j].w)[i];
                        bad += !(fabsf(q * lm[j].scale[r] - x) <= lm[j].scale[r] * 0.5001f);
                        maxq = abs(q) > maxq ? abs(q) : maxq;
                    }
                }
                rows++;
                full_scale_rows += maxq == 127;
            }
    }
    CHECK(bad == 0, "%s: %d weights off by more than the rounding", gc_precision_name(p), bad);
    if (p == GC_PRECISION_INT8)
        CHECK(full_scale_rows == rows, "int8: every row spans [-127, 127] (%d of %d)",
              full_scale_rows, rows);
}

static gc_status load_lowp(const char *dir, const char *cache, gc_precision p, gc_model **m,
                           const gc_lowp_weights **lw, gc_err *e)
{
    gc_model_opts o = {.cache_dir = cache};
    gc_status st = gc_model_load(dir, &o, m, e);
    if (!st)
        st = gc_model_lowp(*m, p, lw, e);
    return st;
}

static void test_cache(void)
{
    char tmpl[] = "/tmp/gc-test-precision-XXXXXX", path[PATH_MAX];
    const char *cache = mkdtemp(tmpl);
    CHECK(cache != NULL, "temp dir");
    if (!cache)
        return;
    gc_err e = {0};
    for (int pi = 0; pi < 2; pi++) {
        gc_precision p = pi ? GC_PRECISION_INT8 : GC_PRECISION_BF16;
        const char *suffix = pi ? ".int8" : ".bf16";
        gc_model *m = NULL, *m2 = NULL;
        const gc_lowp_weights *lw = NULL, *lw2 = NULL;
        CHECK(load_lowp(SMALL, cache, p, &m, &lw, &e) == GC_OK && lw, "%s", e.msg);
        if (!lw) {
            gc_model_free(m);
            continue;
        }
        const gc_lowp_weights *again = NULL;
        CHECK(gc_model_lowp(m, p, &again, &e) == GC_OK && again == lw, "built once per model");
        CHECK(gc_lowp_precision(lw) == p, "precision recorded");
        check_contents(m, lw, p);
        CHECK(find_file(cache, suffix, path, sizeof path), "cache file *%s written", suffix);
        CHECK(count_files(cache, ".gemmaclf-tmp-") == 0, "no temporary file left");
        struct stat s1, s2;
        stat(path, &s1);
        /* a second process (here: model) maps the same file instead of writing another */
        CHECK(load_lowp(SMALL, cache, p, &m2, &lw2, &e) == GC_OK, "%s", e.msg);
        stat(path, &s2);
        CHECK(s1.st_ino == s2.st_ino && count_files(cache, suffix) == 1, "file reused");
        CHECK(lw2 && gc_lowp_layer(lw2, 0)[GC_LIN_Q].w != gc_lowp_layer(lw, 0)[GC_LIN_Q].w &&
                  !memcmp(gc_lowp_layer(lw2, 0)[GC_LIN_Q].w, gc_lowp_layer(lw, 0)[GC_LIN_Q].w, 64),
              "separate mapping, same contents");
        gc_model_free(m2);
        m2 = NULL;
        /* a torn file (magic missing) is never used: it is rebuilt */
        FILE *f = fopen(path, "r+b");
        CHECK(f && fwrite("XXXXXXXX", 1, 8, f) == 8, "damage the cache file");
        if (f)
            fclose(f);
        CHECK(load_lowp(SMALL, cache, p, &m2, &lw2, &e) == GC_OK, "%s", e.msg);
        stat(path, &s2);
        CHECK(s2.st_ino != s1.st_ino, "a damaged cache file is replaced");
        if (m2)
            check_contents(m2, lw2, p);
        gc_model_free(m2);
        m2 = NULL;
        /* a truncated one too */
        CHECK(truncate(path, 4096) == 0, "truncate");
        CHECK(load_lowp(SMALL, cache, p, &m2, &lw2, &e) == GC_OK, "%s", e.msg);
        stat(path, &s1);
        CHECK(s1.st_size == s2.st_size, "a truncated cache file is rebuilt");
        gc_model_free(m2);
        gc_model_free(m);
    }
    /* A BF16 checkpoint. With a cache directory (a server) its files are never mapped: the
     * bf16 copy is made from the F32 copy, exactly the stored values, once (one .bf16 file,
     * reused). Mapped (map_files: the CLI), its tensors are used in place. */
    {
        const char *bf16_dir = gct_shared("reference/hf-tiny/tiny_mqa_bf16_scaled");
        int n_before = count_files(cache, ".bf16");
        for (int mapped = 0; mapped < 2; mapped++) {
            gc_model *m = NULL;
            const gc_lowp_weights *lw = NULL;
            gc_model_opts o = {.cache_dir = mapped ? NULL : cache, .map_files = mapped};
            gc_status st = gc_model_load(bf16_dir, &o, &m, &e);
            if (!st)
                st = gc_model_lowp(m, GC_PRECISION_BF16, &lw, &e);
            CHECK(st == GC_OK && lw, "%s", e.msg);
            int exact = lw != NULL, in_place = lw != NULL;
            for (int l = 0; lw && l < gc_model_config(m)->n_layers; l++) {
                const gc_lowp_matrix *q = &gc_lowp_layer(lw, l)[GC_LIN_DOWN];
                const float *w = gc_model_weights(m)->layers[l].w_down;
                for (int i = 0; i < q->n * q->k; i++)
                    exact &= bf16_value(((const uint16_t *)q->w)[i]) == w[i];
                in_place &= in_file_mapping(q->w, "model.safetensors");
            }
            CHECK(exact, "BF16 checkpoint (%s): the stored values, bit for bit",
                  mapped ? "mapped" : "cache dir");
            CHECK(in_place == mapped, "BF16 checkpoint: %s", mapped
                                                                 ? "mapped: used in place"
                                                                 : "cache dir: never mapped");
            gc_model_free(m);
        }
        CHECK(count_files(cache, ".bf16") == n_before + 1,
              "BF16 checkpoint: one bf16 cache file of its own (%d before, %d after)", n_before,
              count_files(cache, ".bf16"));
        gc_model *m = NULL;
        const gc_lowp_weights *lw = NULL;
        CHECK(load_lowp(bf16_dir, cache, GC_PRECISION_BF16, &m, &lw, &e) == GC_OK, "%s", e.msg);
        CHECK(count_files(cache, ".bf16") == n_before + 1, "BF16 checkpoint: its file reused");
        gc_model_free(m);
    }

    /* copies in an older format version (bf16/int8 "W1" files did not record their model) are
     * removed when a copy of their kind is made; a newer format (another build's) and another
     * kind are kept */
    {
        char old[PATH_MAX], path[PATH_MAX + 64];
        static const struct {
            const char *name, *magic;
            int kept;
        } files[] = {{"gemmaclf-00000000000000a1.bf16", "GCBF16W1", 0},
                     {"gemmaclf-00000000000000a2.bf16", "GCBF16W9", 1},
                     {"gemmaclf-00000000000000a3.int8", "GCINT8W1", 1},
                     {"gemmaclf-00000000000000a4.bf16", "NOTOURS1", 1}};
        snprintf(old, sizeof old, "%s/older", cache);
        mkdir(old, 0700);
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", old, files[i].name);
            FILE *f = fopen(path, "wb");
            CHECK(f && fwrite(files[i].magic, 1, 8, f) == 8 && fclose(f) == 0, "write %s", path);
        }
        gc_model *m = NULL;
        const gc_lowp_weights *lw = NULL;
        CHECK(load_lowp(SMALL, old, GC_PRECISION_BF16, &m, &lw, &e) == GC_OK && lw, "%s", e.msg);
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            struct stat sb;
            snprintf(path, sizeof path, "%s/%s", old, files[i].name);
            CHECK((stat(path, &sb) == 0) == files[i].kept, "%s (%s) %s", files[i].name,
                  files[i].magic, files[i].kept ? "kept" : "removed");
        }
        gc_model_free(m);
    }

    /* without a cache directory: converted in memory */
    gc_model *m = NULL;
    const gc_lowp_weights *lw = NULL;
    CHECK(load_lowp(SMALL, NULL, GC_PRECISION_INT8, &m, &lw, &e) == GC_OK && lw, "%s", e.msg);
    if (lw)
        check_contents(m, lw, GC_PRECISION_INT8);
    gc_model_free(m);

    /* a directory that cannot be written: a clear error, nothing left behind */
    char ro[PATH_MAX];
    snprintf(ro, sizeof ro, "%s/missing/dir", cache);
    m = NULL;
    e.msg[0] = '\0';
    CHECK(load_lowp(SMALL, ro, GC_PRECISION_BF16, &m, &lw, &e) == GC_EIO && strstr(e.msg, ro),
          "unwritable cache dir: %s", e.msg);
    gc_model_free(m);

    /* the disk fills up while writing the bf16 copy (a file size limit makes write() fail the
     * same way; the F32 copy is written before the limit is set): an error, no SIGBUS, and the
     * temporary file removed */
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%s/full", cache);
    mkdir(full, 0700);
    m = NULL;
    CHECK(gc_model_load(SMALL, &(gc_model_opts){.cache_dir = full}, &m, &e) == GC_OK, "%s",
          e.msg);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "file size limit");
    gc_status st = m ? gc_model_lowp(m, GC_PRECISION_BF16, &lw, &e) : GC_EIO;
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    /* space is allocated before anything is written, so the limit shows there (or, where the
     * file system cannot allocate ahead, at the first write past it) */
    CHECK(st == GC_EIO && (strstr(e.msg, "cannot allocate") || strstr(e.msg, "cannot write")) &&
          strstr(e.msg, "bf16 weight cache"), "full disk: %s", e.msg);
    CHECK(count_files(full, ".bf16") == 0 && count_files(full, ".gemmaclf-tmp-") == 0,
          "full disk: no bf16 file and no temporary file left in the cache dir");
    gc_model_free(m);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
    CHECK(system(cmd) == 0, "cleanup");
}

/* ---- forward pass and classification ------------------------------------------------------ */

/* Last-position logits of one prompt over the whole vocabulary. */
static gc_status logits_threads(const gc_model *m, gc_precision p, int threads, const int32_t *ids,
                                int n, float *out, gc_precision *ran, gc_err *e)
{
    gc_ctx *c = NULL;
    gc_ctx_opts o = {.threads = threads, .device = GC_DEVICE_CPU, .precision = p};
    gc_status st = gc_ctx_new(m, &o, &c, e);
    if (st)
        return st;
    *ran = gc_ctx_precision(c, NULL);
    int32_t idx = n - 1;
    gc_batch b = {.n_seq = 1, .tokens = ids, .seq_len = &n, .n_out = 1, .out_idx = &idx,
                  .logits = out};
    st = gc_forward(c, NULL, &b, e);
    gc_ctx_free(c);
    return st;
}

static gc_status logits_of(const gc_model *m, gc_precision p, const int32_t *ids, int n,
                           float *out, gc_precision *ran, gc_err *e)
{
    return logits_threads(m, p, 1, ids, n, out, ran, e);
}

/* With 2 threads a prompt of 300 tokens takes the threaded path (products of >= 256 rows run
 * on oneDNN's OpenMP threads, and so do the conversions, dequantization and GELU around them):
 * every value is computed by one thread either way, so the logits equal those of 1 thread. */
static void test_threads(void)
{
    gc_model *m = NULL;
    gc_err e = {0};
    CHECK(gc_model_load(SMALL, NULL, &m, &e) == GC_OK, "%s", e.msg);
    if (!m)
        return;
    const int V = gc_model_config(m)->vocab_size, n = 300;
    int32_t ids[300];
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % V);
    ids[0] = 2;
    float *one = malloc((size_t)V * sizeof *one), *two = malloc((size_t)V * sizeof *two);
    for (int pi = 0; pi < 2; pi++) {
        gc_precision p = pi ? GC_PRECISION_INT8 : GC_PRECISION_BF16, ran1, ran2;
        CHECK(logits_threads(m, p, 1, ids, n, one, &ran1, &e) == GC_OK, "%s", e.msg);
        CHECK(logits_threads(m, p, 2, ids, n, two, &ran2, &e) == GC_OK, "%s", e.msg);
        CHECK(ran1 == ran2 && !memcmp(one, two, (size_t)V * sizeof *one),
              "%s, %d tokens: 2 threads give the logits of 1 thread bit for bit (ran %s)",
              gc_precision_name(p), n, gc_precision_name(ran2));
    }
    free(one);
    free(two);
    gc_model_free(m);
}

static void test_logits(void)
{
    gc_model *m = NULL;
    gc_err e = {0};
    CHECK(gc_model_load(SMALL, NULL, &m, &e) == GC_OK, "%s", e.msg);
    if (!m)
        return;
    const int V = gc_model_config(m)->vocab_size;
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % V);
    ids[0] = 2;
    float *ref = malloc((size_t)V * sizeof *ref), *got = malloc((size_t)V * sizeof *got);
    gc_precision ran;
    CHECK(logits_of(m, GC_PRECISION_F32, ids, 40, ref, &ran, &e) == GC_OK, "%s", e.msg);
    for (int pi = 0; pi < 2; pi++) {
        gc_precision p = pi ? GC_PRECISION_INT8 : GC_PRECISION_BF16;
        CHECK(logits_of(m, p, ids, 40, got, &ran, &e) == GC_OK, "%s", e.msg);
        double se = 0, sr = 0;
        for (int i = 0; i < V; i++) {
            se += (double)(got[i] - ref[i]) * (got[i] - ref[i]);
            sr += (double)ref[i] * ref[i];
        }
        double rel = sqrt(se / sr);
        printf("%s logits vs f32 (bundled model, 40 tokens): relative error %.2e (ran %s)\n",
               gc_precision_name(p), rel, gc_precision_name(ran));
        if (ran == p) /* bounds: ~10x what was measured here (1.7e-4 and 1.0e-3) */
            CHECK(rel < (p == GC_PRECISION_BF16 ? 2e-3 : 1e-2), "%s: relative error %.3g",
                  gc_precision_name(p), rel);
        else
            CHECK(rel == 0, "fallback: f32 exactly");
    }
    /* simulated CPU without the instructions: f32 exactly, with the reason */
    set_features("none");
    gc_ctx *c = NULL;
    gc_ctx_opts o = {.threads = 1, .device = GC_DEVICE_CPU, .precision = GC_PRECISION_INT8};
    CHECK(gc_ctx_new(m, &o, &c, &e) == GC_OK, "%s", e.msg);
    const char *note = "";
    CHECK(c && gc_ctx_precision(c, &note) == GC_PRECISION_F32 && strstr(note, "using f32") &&
              strstr(note, "VNNI"), "fallback note: %s", note);
    gc_ctx_free(c);
    CHECK(logits_of(m, GC_PRECISION_BF16, ids, 40, got, &ran, &e) == GC_OK, "%s", e.msg);
    CHECK(ran == GC_PRECISION_F32 && !memcmp(got, ref, (size_t)V * sizeof *ref),
          "simulated CPU without bf16: logits equal f32 bit for bit");
    set_features(NULL);
    free(ref);
    free(got);
    gc_model_free(m);
}

typedef struct texts {
    char **v;
    int n;
} texts;

static texts read_dev(int limit)
{
    texts t = {0};
    FILE *f = fopen(gct_shared(DEV), "r");
    char *line = NULL;
    size_t cap = 0;
    while (f && (limit <= 0 || t.n < limit) && getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *x = cJSON_GetObjectItem(j, "text");
        char **nv = realloc(t.v, (size_t)(t.n + 1) * sizeof *nv);
        if (nv && cJSON_IsString(x)) {
            t.v = nv;
            t.v[t.n++] = strdup(x->valuestring);
        } else if (nv) {
            t.v = nv;
        }
        cJSON_Delete(j);
    }
    free(line);
    if (f)
        fclose(f);
    return t;
}

static gc_status classify_all(const gc_classifier *c, gc_precision p, const texts *t, float *probs,
                              int *labels, gc_precision *ran, gc_err *e)
{
    gc_session *s = NULL;
    gc_session_opts o = {.ctx = {.threads = 1, .device = GC_DEVICE_CPU, .precision = p},
                         .batch_size = 64};
    gc_status st = gc_session_new(c, &o, &s, e);
    if (st)
        return st;
    *ran = gc_ctx_precision(gc_session_ctx(s), NULL);
    st = gc_classify(s, t->n, (const char *const *)t->v, NULL, probs, labels, e);
    gc_session_free(s);
    return st;
}

/* Labels in bf16 / int8 vs f32 on dev comments: >= 99.5 % equal (the bar). */
static void test_agreement(const char *dir, const texts *t)
{
    gc_classifier *c = NULL;
    gc_err e = {0};
    CHECK(gc_classifier_open(dir, NULL, &c, &e) == GC_OK, "%s: %s", dir, e.msg);
    if (!c || t->n == 0)
        return;
    const int L = gc_classifier_n_labels(c);
    float *p32 = malloc((size_t)t->n * L * sizeof *p32), *p = malloc((size_t)t->n * L * sizeof *p);
    int *l32 = malloc((size_t)t->n * sizeof *l32), *l = malloc((size_t)t->n * sizeof *l);
    gc_precision ran;
    CHECK(classify_all(c, GC_PRECISION_F32, t, p32, l32, &ran, &e) == GC_OK, "%s", e.msg);
    for (int pi = 0; pi < 2; pi++) {
        gc_precision want = pi ? GC_PRECISION_INT8 : GC_PRECISION_BF16;
        CHECK(classify_all(c, want, t, p, l, &ran, &e) == GC_OK, "%s", e.msg);
        int agree = 0;
        double dmax = 0;
        for (int i = 0; i < t->n; i++) {
            agree += l[i] == l32[i];
            for (int k = 0; k < L; k++) {
                double d = fabs((double)p[(size_t)i * L + k] - p32[(size_t)i * L + k]);
                dmax = d > dmax ? d : dmax;
            }
        }
        printf("%s, %s: labels equal to f32 on %d of %d dev comments (%.2f %%), largest "
               "probability difference %.4f%s\n", strrchr(dir, '/') + 1, gc_precision_name(want),
               agree, t->n, 100.0 * agree / t->n, dmax,
               ran == want ? "" : " (ran f32: the CPU lacks the instructions)");
        if (ran == want)
            CHECK(agree * 1000 >= t->n * 995, "%s: agreement %d/%d", gc_precision_name(want),
                  agree, t->n);
        else
            CHECK(agree == t->n && dmax == 0, "fallback equals f32");
    }
    free(p32), free(p), free(l32), free(l);
    gc_classifier_free(c);
}

/* The labels of classify's output lines, joined by '|'. */
static void labels_of(const char *out, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (const char *p = out; (p = strstr(p, "\"label\":\""));) {
        p += 9;
        size_t n = strcspn(p, "\"");
        snprintf(buf + strlen(buf), cap - strlen(buf), "%.*s|", (int)n, p);
    }
}

/* The CLI: --precision, its note on a CPU without the instructions, a bad value. */
static void test_cli(void)
{
    const char *bin = getenv("GC_BIN");
    CHECK(bin && access(bin, X_OK) == 0, "GC_BIN names the CLI (make unittest sets it)");
    if (!bin || access(bin, X_OK))
        return;
    char cmd[PATH_MAX + 512], a[4096] = "", b[4096] = "", err[1024] = "";
    const char *in = "printf '%s\\n' '\"Sali kutta\"' '\"acha video hai bhai\"'";
    snprintf(cmd, sizeof cmd, "%s | %s classify %s", in, bin, SMALL);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(a, 1, sizeof a - 1, f) : 0;
    a[n] = '\0';
    CHECK(f && pclose(f) == 0 && strstr(a, "\"label\""), "f32 classify: %s", a);
    snprintf(cmd, sizeof cmd,
             "%s | GEMMACLF_CPU_FEATURES=none %s classify %s --precision int8 2>/tmp/gc-prec-err.txt",
             in, bin, SMALL);
    f = popen(cmd, "r");
    n = f ? fread(b, 1, sizeof b - 1, f) : 0;
    b[n] = '\0';
    CHECK(f && pclose(f) == 0 && !strcmp(a, b), "simulated CPU: same output as f32:\n%s\n%s", a, b);
    FILE *ef = fopen("/tmp/gc-prec-err.txt", "r");
    n = ef ? fread(err, 1, sizeof err - 1, ef) : 0;
    err[n] = '\0';
    if (ef)
        fclose(ef);
    unlink("/tmp/gc-prec-err.txt");
    CHECK(strstr(err, "int8 needs AVX512-VNNI or AMX-INT8") && strstr(err, "using f32"),
          "note on stderr: %s", err);
    snprintf(cmd, sizeof cmd, "%s | %s classify %s --precision fp8 2>/dev/null", in, bin, SMALL);
    f = popen(cmd, "r");
    int rc = f ? pclose(f) : -1;
    CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "bad --precision: exit 2");
    /* a CPU with AVX512-VNNI but no AMX (oneDNN capped to it): int8 labels as f32 here */
    unsigned f_all = gc_cpu_features();
    snprintf(cmd, sizeof cmd,
             "%s | GEMMACLF_CPU_FEATURES=avx512_vnni,avx512_bf16 %s classify %s --precision int8",
             in, bin, SMALL);
    f = popen(cmd, "r");
    n = f ? fread(b, 1, sizeof b - 1, f) : 0;
    b[n] = '\0';
    CHECK(f && pclose(f) == 0, "no-AMX int8 run");
    char la[256], lb[256];
    labels_of(a, la, sizeof la);
    labels_of(b, lb, sizeof lb);
    CHECK(strlen(la) > 4 && !strcmp(la, lb), "no-AMX int8 labels (features %x): %s vs %s", f_all,
          la, lb);
}

int main(void)
{
    /* the tests read models/ relative to the repository root, where make unittest runs */
    test_names();
    test_features();
    test_cache();
    test_logits();
    test_threads();
    const char *nenv = getenv("GC_PRECISION_N");
    texts t = read_dev(nenv ? atoi(nenv) : 400);
    CHECK(t.n >= (nenv && atoi(nenv) > 0 ? atoi(nenv) : 400) || (nenv && atoi(nenv) == 0 && t.n > 2000),
          "dev comments read: %d", t.n);
    test_agreement(SMALL, &t);
    test_agreement(gct_shared(REF), &t);
    for (int i = 0; i < t.n; i++)
        free(t.v[i]);
    free(t.v);
    test_cli();
    return gct_finish("test_precision");
}
