/* The n-gram head (classifier/ngram_head.h) in the classifier, on the reference classifier with
 * generated head files: the mixing rule, the byte features' invariances (only A-Z folded, any ASCII
 * blank splits words, the input cap), batch independence, gemmaclf.json's "comment_norm" for
 * the head and the model, reloading on change, load errors, and the copy shared through a cache
 * directory.
 * Exact agreement with train/ngram_head.py on real comments: test/python/test_model_crosscheck.py. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "classifier/ngram_head.h"
#include "gc_test.h"

#define REF "reference/hf-trained-classifier"
#define L 3

static char dir[] = "/tmp/gctest-ngram-XXXXXX";

typedef struct head_spec {
    int buckets;
    float bias[L];
    int zero_weights; /* else pseudo-random weights and idf in [0.5, 2) */
    const char *labels;
    const char *format;
    int nan_at;       /* >= 0: weight[nan_at] = NaN */
} head_spec;

static const head_spec DEFAULT = {64, {0.5f, -0.25f, 1.0f}, 0, "Not Hate\nHate\nExtreme Hate",
                                  GC_NGRAM_FORMAT, -1};

static void path_of(char *p, size_t n, const char *name) { snprintf(p, n, "%s/%s", dir, name); }

static void write_text(const char *name, const char *text)
{
    char p[PATH_MAX + 64];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", name);
}

static float lcg(uint32_t *s) { return (float)((*s = *s * 1664525u + 1013904223u) >> 8) / 16777216.0f; }

/* A safetensors file of the head's four F32 tensors (sorted names, contiguous data). */
static void write_head(const head_spec *h)
{
    size_t b = (size_t)h->buckets, n[4] = {L, b, b, (size_t)L * 2 * b};
    const char *names[4] = {"bias", "idf_chars", "idf_words", "weight"};
    float *v[4];
    uint32_t seed = 7;
    for (int t = 0; t < 4; t++) {
        v[t] = calloc(n[t], sizeof(float));
        for (size_t i = 0; i < n[t]; i++)
            v[t][i] = t == 0 ? h->bias[i] : t < 3 ? 0.5f + 1.5f * lcg(&seed)
                                          : h->zero_weights ? 0 : 4 * lcg(&seed) - 2;
    }
    if (h->nan_at >= 0)
        v[3][h->nan_at] = NAN;
    char hdr[2048];
    int k = snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"format\":\"%s\",\"labels\":\"", h->format);
    for (const char *c = h->labels; *c; c++)
        k += snprintf(hdr + k, sizeof hdr - k, *c == '\n' ? "\\n" : "%c", *c);
    k += snprintf(hdr + k, sizeof hdr - k, "\"}");
    size_t off = 0;
    for (int t = 0; t < 4; t++) {
        k += snprintf(hdr + k, sizeof hdr - k, ",\"%s\":{\"dtype\":\"F32\",\"shape\":%s%zu%s,"
                      "\"data_offsets\":[%zu,%zu]}", names[t], t == 3 ? "[3," : "[",
                      t == 3 ? 2 * b : n[t], "]", off, off + n[t] * 4);
        off += n[t] * 4;
    }
    k += snprintf(hdr + k, sizeof hdr - k, "}");
    char p[PATH_MAX + 64];
    path_of(p, sizeof p, GC_NGRAM_HEAD_FILE);
    FILE *f = fopen(p, "wb");
    uint64_t hl = (uint64_t)k;
    int ok = f && fwrite(&hl, 8, 1, f) == 1 && fwrite(hdr, 1, (size_t)k, f) == (size_t)k;
    for (int t = 0; t < 4; t++) {
        ok = ok && fwrite(v[t], sizeof(float), n[t], f) == n[t];
        free(v[t]);
    }
    CHECK(f && ok && fclose(f) == 0, "write the head");
}

/* A new head file (a new inode, as `mv` of a new file would give); NULL: none. */
static void replace_head(const head_spec *h)
{
    char p[PATH_MAX + 64];
    path_of(p, sizeof p, GC_NGRAM_HEAD_FILE);
    unlink(p);
    if (h)
        write_head(h);
}

/* Probabilities of n texts by classifier c; 0 on failure. */
static int classify_by(gc_classifier *c, int n, const char *const *texts, const size_t *lens,
                       float *prob, gc_err *e)
{
    gc_session *s = NULL;
    int ok = c && gc_session_new(c, NULL, &s, e) == GC_OK &&
             gc_classify(s, n, texts, lens, prob, NULL, e) == GC_OK;
    gc_session_free(s);
    return ok;
}

/* Probabilities of n texts with the directory as it is now; 0 when it does not open. */
static int classify(int n, const char *const *texts, const size_t *lens, float *prob, gc_err *e)
{
    gc_classifier *c = NULL;
    int ok = gc_classifier_open(dir, NULL, &c, e) == GC_OK && classify_by(c, n, texts, lens, prob, e);
    gc_classifier_free(c);
    return ok;
}

static int same_row(const float *a, const float *b) { return !memcmp(a, b, L * sizeof(float)); }

static void test_mixing(void)
{
    head_spec h = DEFAULT;
    h.zero_weights = 1;
    write_head(&h);
    write_text("gemmaclf.json", "{\"ngram_weight\": 1}");
    const char *t[] = {"", "Tu bahut ganda hai", "MAAR DALO 😡"};
    float p[3 * L];
    gc_err e = {0};
    CHECK(classify(3, t, NULL, p, &e), "%s", e.msg);
    double z = exp(0.5) + exp(-0.25) + exp(1.0);
    for (int i = 0; i < 3; i++)
        CHECK(fabs(p[i * L] - exp(0.5) / z) < 1e-6 && fabs(p[i * L + 2] - exp(1.0) / z) < 1e-6,
              "weight 1, zero weights: softmax(head bias) for text %d (%g %g %g)", i, p[i * L],
              p[i * L + 1], p[i * L + 2]);

    /* weight 0.5: log p = 0.5 log p(model) + 0.5 log p(head) + const */
    write_head(&DEFAULT);
    float g[3 * L], hd[3 * L], mix[3 * L];
    write_text("gemmaclf.json", "{\"ngram_weight\": 0}");
    CHECK(classify(3, t, NULL, g, &e), "%s", e.msg);
    write_text("gemmaclf.json", "{\"ngram_weight\": 1}");
    CHECK(classify(3, t, NULL, hd, &e), "%s", e.msg);
    write_text("gemmaclf.json", "{\"ngram_weight\": 0.5}");
    CHECK(classify(3, t, NULL, mix, &e), "%s", e.msg);
    for (int i = 0; i < 3; i++) {
        double x[L], mx = -INFINITY, sum = 0, worst = 0;
        for (int l = 0; l < L; l++)
            mx = fmax(mx, x[l] = 0.5 * log(g[i * L + l]) + 0.5 * log(hd[i * L + l]));
        for (int l = 0; l < L; l++)
            sum += exp(x[l] - mx);
        for (int l = 0; l < L; l++)
            worst = fmax(worst, fabs(exp(x[l] - mx) / sum - mix[i * L + l]));
        CHECK(worst < 1e-5, "text %d: weight 0.5 is the geometric mean of model and head (%.2e)", i,
              worst);
        CHECK(!same_row(g + i * L, hd + i * L), "text %d: the head differs from the model", i);
    }
}

static void test_features(void)
{
    write_head(&DEFAULT);
    write_text("gemmaclf.json", "{\"ngram_weight\": 1}");
    const char *t[] = {"HELLO World_1 ok", "hello world_1 ok", "hello\tworld_1\n\nok\r",
                       "  hello \x0b world_1 \x0c ok ", "ÄBC", "äbc", "ab", "ba", "a"};
    enum { N = sizeof t / sizeof t[0] };
    float p[N * L], one[L];
    gc_err e = {0};
    CHECK(classify(N, t, NULL, p, &e), "%s", e.msg);
    CHECK(same_row(p, p + L), "A-Z folded to a-z");
    CHECK(same_row(p + L, p + 2 * L) && same_row(p + L, p + 3 * L), "every ASCII blank splits words");
    CHECK(!same_row(p + 4 * L, p + 5 * L), "non-ASCII letters are not folded");
    CHECK(!same_row(p + 6 * L, p + 7 * L), "byte order within a word counts");
    for (int i = 0; i < N; i++) {
        CHECK(classify(1, t + i, NULL, one, &e) && same_row(one, p + i * L),
              "text %d alone = in a batch", i);
    }
    /* The input cap (max_input_tokens 512: 32,768 bytes): bytes past it change nothing. */
    size_t cap = 32768;
    char *a = malloc(cap + 100), *b = malloc(cap + 100);
    for (size_t i = 0; i < cap + 100; i++)
        a[i] = b[i] = i % 7 == 6 ? ' ' : "kutta"[i % 5];
    memcpy(b + cap, " ZZZ QQQ xyz", 12);
    const char *ab[] = {a, b};
    size_t lens[] = {cap + 100, cap + 100}, cut[] = {cap, cap - 1};
    float q[2 * L], r[2 * L];
    CHECK(classify(2, ab, lens, q, &e) && same_row(q, q + L), "bytes past the cap are not read");
    CHECK(classify(2, ab, cut, r, &e) && same_row(q, r), "= the text cut at the cap");
    CHECK(!same_row(r, r + L), "the last byte before the cap is read");
    free(a);
    free(b);
}

/* gemmaclf.json "comment_norm": "squeeze" rewrites the comment for the Gemma model (weight 0)
 * and for the head (weight 1) alike; without it the two spellings score differently. */
static void test_comment_norm(void)
{
    write_head(&DEFAULT);
    const char *t[] = {"MAAAR Dalooo \xf0\x9f\x98\xa1\xf0\x9f\x98\xa1\xf0\x9f\x98\xa1",
                       "maar daloo \xf0\x9f\x98\xa1\xf0\x9f\x98\xa1"};
    static const char *const configs[][2] = {
        {"{\"ngram_weight\": 0}", "{\"ngram_weight\": 0, \"comment_norm\": \"squeeze\"}"},
        {"{\"ngram_weight\": 1}", "{\"ngram_weight\": 1, \"comment_norm\": \"squeeze\"}"}};
    for (int k = 0; k < 2; k++) {
        float raw[2 * L], sq[2 * L];
        gc_err e = {0};
        write_text("gemmaclf.json", configs[k][0]);
        CHECK(classify(2, t, NULL, raw, &e) && !same_row(raw, raw + L),
              "%s: the spellings differ as they are (%s)", k ? "head" : "model", e.msg);
        write_text("gemmaclf.json", configs[k][1]);
        CHECK(classify(2, t, NULL, sq, &e) && same_row(sq, sq + L),
              "%s: squeezed, the spellings score alike (%s)", k ? "head" : "model", e.msg);
        CHECK(same_row(raw + L, sq + L), "%s: an already squeezed comment scores as before",
              k ? "head" : "model");
    }
    write_text("gemmaclf.json", "{\"comment_norm\": \"nfkc\"}");
    float p[L];
    gc_err e = {0};
    CHECK(!classify(1, t, NULL, p, &e) && e.code == GC_EUNSUPPORTED && strstr(e.msg, "nfkc") &&
              strstr(e.msg, "gemmaclf.json"),
          "an unknown rewrite: the model does not open: %s", e.msg);
}

static void test_reload_and_errors(void)
{
    write_head(&DEFAULT);
    write_text("gemmaclf.json", "{\"ngram_weight\": 0.7}");
    gc_classifier *c = NULL;
    gc_err e = {0};
    CHECK(gc_classifier_open(dir, NULL, &c, &e) == GC_OK, "%s", e.msg);
    if (c) {
        CHECK(!gc_classifier_files_changed(c), "unchanged after open");
        /* the head decides labels: it is in the fingerprint (docs/scale-out.md's command) */
        char cmd[PATH_MAX + 256], want[128] = "";
        snprintf(cmd, sizeof cmd, "cd '%s' && ls config.json gemmaclf.json model.safetensors* "
                 GC_NGRAM_HEAD_FILE " tokenizer.json tokenizer_config.json 2>/dev/null | "
                 "LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-64", dir);
        FILE *f = popen(cmd, "r");
        CHECK(f && fgets(want, sizeof want, f), "sha256sum of the model files");
        if (f)
            pclose(f);
        want[strcspn(want, "\n")] = 0;
        const char *fp = gc_classifier_fingerprint(c, &e);
        CHECK(fp && !strcmp(fp, want), "fingerprint %s = sha256sum with the head %s", fp ? fp : e.msg,
              want);
        head_spec h = DEFAULT;
        h.bias[0] = 3;
        replace_head(&h);
        CHECK(gc_classifier_files_changed(c), "a rewritten head is a change (reload)");
        gc_classifier_free(c);
    }
    struct {
        const char *what, *json, *need;
        head_spec h;
        int remove;
    } bad[] = {
        {"missing file", "{\"ngram_weight\": 0.5}", GC_NGRAM_HEAD_FILE, DEFAULT, 1},
        {"NaN weight", "{\"ngram_weight\": 0.5}", "non-finite", DEFAULT, 0},
        {"labels in another order", "{\"ngram_weight\": 0.5}", "labels", DEFAULT, 0},
        {"12 buckets", "{\"ngram_weight\": 0.5}", "power of two", DEFAULT, 0},
        {"other format", "{\"ngram_weight\": 0.5}", "format", DEFAULT, 0},
        {"weight 1.5", "{\"ngram_weight\": 1.5}", "ngram_weight", DEFAULT, 0},
    };
    bad[1].h.nan_at = 5;
    bad[2].h.labels = "Hate\nNot Hate\nExtreme Hate";
    bad[3].h.buckets = 12;
    bad[4].h.format = "gemmaclf-ngram-0";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        replace_head(bad[i].remove ? NULL : &bad[i].h);
        write_text("gemmaclf.json", bad[i].json);
        gc_err e2 = {0};
        c = NULL;
        CHECK(gc_classifier_open(dir, NULL, &c, &e2) != GC_OK && !c && strstr(e2.msg, bad[i].need),
              "%s: a clear error naming %s (%s)", bad[i].what, bad[i].need, e2.msg);
        gc_classifier_free(c);
    }
}

/* Files in d whose names end with suffix. */
static int count_suffix(const char *d, const char *suffix)
{
    char cmd[PATH_MAX + 64], line[64] = "";
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c -- '%s$'", d, suffix);
    FILE *f = popen(cmd, "r");
    int ok = f && fgets(line, sizeof line, f);
    if (f)
        pclose(f);
    return ok ? atoi(line) : -1;
}

/* Whether this process maps a file of d whose name ends with suffix (/proc/self/maps). */
static int maps_file(const char *d, const char *suffix)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 256];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        size_t n = strlen(line), k = strlen(suffix);
        found = strstr(line, d) && n >= k && !strcmp(line + n - k, suffix);
    }
    if (f)
        fclose(f);
    return found;
}

/* With a cache directory (the server's) the head's values are one mapped copy there, shared by
 * every process: same probabilities as a private copy, one file for two classifiers, a new one
 * (and the old removed) when the head changes, nothing left behind by a head that fails. */
static void test_shared_copy(void)
{
    char cache[] = "/tmp/gctest-ngcache-XXXXXX";
    CHECK(mkdtemp(cache) != NULL, "mkdtemp");
    write_head(&DEFAULT);
    write_text("gemmaclf.json", "{\"ngram_weight\": 0.7}");
    const char *t[3] = {"tum log bahut bure ho", "nice pic bhai", "Mar jao sab"};
    float priv[3 * L], p1[3 * L], p2[3 * L], p3[3 * L];
    gc_err e = {0};
    CHECK(classify(3, t, NULL, priv, &e), "%s", e.msg);
    gc_classifier_opts o = {.cache_dir = cache};
    gc_classifier *c1 = NULL, *c2 = NULL, *c3 = NULL;
    CHECK(gc_classifier_open(dir, &o, &c1, &e) == GC_OK && gc_classifier_open(dir, &o, &c2, &e) ==
          GC_OK, "open with a cache directory: %s", e.msg);
    CHECK(classify_by(c1, 3, t, NULL, p1, &e) && classify_by(c2, 3, t, NULL, p2, &e), "%s", e.msg);
    CHECK(!memcmp(p1, priv, sizeof p1) && !memcmp(p2, priv, sizeof p2),
          "the shared copy gives the private copy's probabilities");
    CHECK(count_suffix(cache, ".ngram") == 1, "one head copy for two classifiers (%d)",
          count_suffix(cache, ".ngram"));
    CHECK(maps_file(cache, ".ngram"), "the head's values are a mapping of the cache copy");
    head_spec h = DEFAULT;
    h.bias[0] = 3;
    replace_head(&h);
    CHECK(gc_classifier_open(dir, &o, &c3, &e) == GC_OK && classify_by(c3, 3, t, NULL, p3, &e),
          "open after the head changed: %s", e.msg);
    CHECK(memcmp(p3, priv, sizeof p3), "the new head is used, not the old copy");
    CHECK(count_suffix(cache, ".ngram") == 1, "the old copy is removed (%d)",
          count_suffix(cache, ".ngram"));
    CHECK(classify_by(c1, 3, t, NULL, p1, &e) && !memcmp(p1, priv, sizeof p1),
          "a classifier of the old head keeps its mapped values");
    gc_classifier_free(c1);
    gc_classifier_free(c2);
    gc_classifier_free(c3);
    h.nan_at = 5;
    replace_head(&h);
    c1 = NULL;
    CHECK(gc_classifier_open(dir, &o, &c1, &e) != GC_OK && !c1 && strstr(e.msg, "non-finite"),
          "a NaN in the head is an error with a cache directory too (%s)", e.msg);
    CHECK(count_suffix(cache, ".ngram") == 1 && count_suffix(cache, "tmp-......") == 0,
          "a failed copy leaves nothing behind");
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    CHECK(system(cmd) == 0, "rm the cache");
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        char rel[128], p[PATH_MAX + 64], abs[PATH_MAX];
        snprintf(rel, sizeof rel, REF "/%s", files[i]);
        path_of(p, sizeof p, files[i]);
        CHECK(realpath(gct_shared(rel), abs) && symlink(abs, p) == 0, "link %s", files[i]);
    }
    test_mixing();
    test_features();
    test_comment_norm();
    test_reload_and_errors();
    test_shared_copy();
    const char *names[] = {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json", "gemmaclf.json", GC_NGRAM_HEAD_FILE};
    for (int i = 0; i < 6; i++) {
        char p[PATH_MAX + 64];
        path_of(p, sizeof p, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return gct_finish("test_ngram_head");
}
