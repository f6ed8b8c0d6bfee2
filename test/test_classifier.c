/* Classifier: gemmaclf.json parsing, UTF-8 repair, label scoring on the reference classifier
 * (labels equal transformers' greedy generation, probabilities equal the softmax of its label
 * logits, prefix reuse and batching change nothing), sequence scoring when first tokens collide,
 * truncation, and the classify/generate/info CLI. */
#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "classifier/model_info.h"
#include "classifier/prompt.h"
#include "model/blas_core.h"
#include "gc_test.h"
#include "common/file_read.h"
#include "common/utf8.h"

#define REF "reference/hf-trained-classifier"

/* A reference file, whole (NULL when unreadable): the core's checked reader, with a cap far
 * above any reference file. */
static char *slurp(const char *path)
{
    char *b = NULL;
    size_t n;
    gc_err e = {0};
    return gc_read_file(path, (size_t)1 << 30, &b, &n, &e) == GC_OK ? b : NULL;
}

static void test_labels_config(void)
{
    gc_labels_config c;
    gc_err e = {0};
    CHECK(gc_labels_config_load("/nonexistent-dir", &c, &e) == GC_OK, "%s", e.msg);
    CHECK(c.n_labels == 3 && !strcmp(c.labels[0], "Not Hate") && !strcmp(c.labels[2], "Extreme Hate"),
          "defaults");
    CHECK(!strcmp(c.prompt_prefix, GC_DEFAULT_PROMPT_PREFIX) && c.bias[1] == 0.0f, "default prefix");
    CHECK(c.temperature == 1.0, "default temperature 1: %g", c.temperature);
    gc_labels_config_free(&c);

    CHECK(gc_labels_config_parse("{\"labels\": [\"ok\", \"bad\"], \"prompt_prefix\": \"p: \", "
                                 "\"score_bias\": {\"bad\": -0.5}}", &c, &e) == GC_OK, "%s", e.msg);
    CHECK(c.n_labels == 2 && !strcmp(c.labels[1], "bad") && c.bias[1] == -0.5f && c.bias[0] == 0,
          "custom labels and bias");
    CHECK(!strcmp(c.prompt_prefix, "p: "), "custom prefix");
    gc_labels_config_free(&c);
    CHECK(gc_labels_config_parse("{\"temperature\": 1.75}", &c, &e) == GC_OK, "%s", e.msg);
    CHECK(c.temperature == 1.75, "temperature parsed: %g", c.temperature);
    gc_labels_config_free(&c);

    const char *bad[] = {"[1]", "{\"labels\": \"x\"}", "{\"labels\": [\"a\"]}",
                         "{\"labels\": [\"a\", \"a\"]}", "{\"labels\": [\"a\", \"\"]}",
                         "{\"score_bias\": {\"nope\": 1}}", "{\"score_bias\": {\"Hate\": \"x\"}}",
                         "{\"prompt_prefix\": 3}", "{not json", "{\"temperature\": 0}",
                         "{\"temperature\": -1.5}", "{\"temperature\": \"2\"}",
                         "{\"temperature\": 1e999}", "{\"temperature\": [1]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = '\0';
        CHECK(gc_labels_config_parse(bad[i], &c, &e) == GC_EFORMAT && e.msg[0], "rejects %s", bad[i]);
    }
}

static void test_utf8(void)
{
    size_t n;
    char *r = gc_utf8_repair("a\xff" "b\xc3", 4, &n);
    CHECK(r && n == 8 && !memcmp(r, "a\xef\xbf\xbd" "b\xef\xbf\xbd", 8), "repair");
    free(r);
    CHECK(gc_utf8_valid("h\xc3\xa9", 3) && !gc_utf8_valid("\xed\xa0\x80", 3) &&
          !gc_utf8_valid("\xc0\xaf", 2) && !gc_utf8_valid("\xf4\x90\x80\x80", 4), "validation");
    CHECK(gc_utf8_cut("ab\xe2\x82\xac", 4) == 2 && gc_utf8_cut("ab\xe2\x82\xac", 5) == 5 &&
          gc_utf8_cut("abc", 2) == 2, "cut on sequence boundaries");
}

static void softmax3(const double *x, int n, double *p)
{
    double mx = x[0], s = 0;
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++)
        s += (p[i] = exp(x[i] - mx));
    for (int i = 0; i < n; i++)
        p[i] /= s;
}

/* Labels vs transformers' generation, probabilities vs the softmax of its label logits. */
static void test_reference(gc_classifier *c, gc_session *s)
{
    char *json = slurp(gct_shared(REF "/hf_predictions_dev.json"));
    CHECK(json != NULL, "read hf_predictions_dev.json");
    if (!json)
        return;
    cJSON *root = cJSON_Parse(json);
    const cJSON *preds = cJSON_GetObjectItem(root, "predictions");
    int n = cJSON_GetArraySize(preds), m = n < 400 ? n : 400, agree = 0, close = 0;
    const char **texts = malloc(sizeof(char *) * m);
    float *probs = malloc(sizeof(float) * 3 * m), *one = malloc(sizeof(float) * 3 * m);
    int *labels = malloc(sizeof(int) * m);
    for (int i = 0; i < m; i++)
        texts[i] = cJSON_GetObjectItem(cJSON_GetArrayItem(preds, i), "text")->valuestring;
    gc_err e = {0};
    CHECK(gc_classify(s, m, texts, NULL, probs, labels, &e) == GC_OK, "%s", e.msg);
    double maxdiff = 0;
    for (int i = 0; i < m; i++) {
        const cJSON *p = cJSON_GetArrayItem(preds, i);
        const char *gen = cJSON_GetObjectItem(p, "generated")->valuestring;
        const cJSON *lg = cJSON_GetObjectItem(p, "label_first_token_logits");
        double x[3], q[3];
        for (int l = 0; l < 3; l++)
            x[l] = cJSON_GetArrayItem(lg, l)->valuedouble;
        softmax3(x, 3, q);
        agree += !strcmp(gc_classifier_label(c, labels[i]), gen);
        int ok = 1;
        for (int l = 0; l < 3; l++) {
            double d = fabs(q[l] - probs[i * 3 + l]);
            maxdiff = d > maxdiff ? d : maxdiff;
            ok &= d < 1e-3;
        }
        close += ok;
    }
    printf("reference: %d/%d labels equal transformers' generation, max |p - p_hf| = %.2e\n",
           agree, m, maxdiff);
    CHECK(agree * 1000 >= m * 995, "agreement %d/%d", agree, m);
    CHECK(close == m, "%d/%d probability rows within 1e-3 of transformers", close, m);

    /* Batch composition changes nothing: one text at a time, and in batches of 7. */
    int same = 1;
    double bdiff = 0;
    for (int i = 0; i < 40; i++) {
        int lab;
        gc_classify(s, 1, &texts[i], NULL, one + 3 * i, &lab, &e);
        same &= lab == labels[i];
        for (int l = 0; l < 3; l++)
            bdiff = fmax(bdiff, fabs(one[3 * i + l] - probs[3 * i + l]));
    }
    gc_session_set_limits(s, 7, 0);
    CHECK(gc_classify(s, 40, texts + 3, NULL, one, NULL, &e) == GC_OK, "%s", e.msg);
    for (int i = 0; i < 40; i++)
        for (int l = 0; l < 3; l++)
            bdiff = fmax(bdiff, fabs(one[3 * i + l] - probs[3 * (i + 3) + l]));
    gc_session_set_limits(s, 0, 0);
    printf("batch composition: max |p_batch - p| = %.2e\n", bdiff);
    CHECK(same && bdiff < 1e-5, "batching changed results (%.3e)", bdiff);
    free(texts);
    free(probs);
    free(one);
    free(labels);
    cJSON_Delete(root);
    free(json);
}

/* The cached head equals running the whole prompt: compare with a forward without prefix. */
static void test_prefix_equivalence(gc_classifier *c, gc_session *s)
{
    const char *text = "Gravity ki maa ki choot";
    gc_ids ids = {0};
    gc_err e = {0};
    CHECK(gc_session_prompt(s, text, strlen(text), &ids, &e) == GC_OK, "%s", e.msg);
    CHECK((int)ids.n > gc_classifier_shared_prefix_len(c), "prompt longer than the head");
    int32_t rows[3], seq = (int32_t)ids.n, out = seq - 1, n;
    for (int l = 0; l < 3; l++)
        rows[l] = gc_classifier_label_ids(c, l, &n)[0];
    float logits[3], p[3];
    gc_batch b = {.n_seq = 1, .tokens = ids.v, .seq_len = &seq, .n_out = 1, .out_idx = &out,
                  .n_rows = 3, .rows = rows, .logits = logits};
    CHECK(gc_forward(gc_session_ctx(s), NULL, &b, &e) == GC_OK, "%s", e.msg);
    double x[3] = {logits[0], logits[1], logits[2]}, q[3];
    softmax3(x, 3, q);
    CHECK(gc_classify(s, 1, &text, NULL, p, NULL, &e) == GC_OK, "%s", e.msg);
    for (int l = 0; l < 3; l++)
        CHECK(fabs(q[l] - p[l]) < 1e-5, "label %d: prefix %.6f vs full %.6f", l, p[l], q[l]);
    gc_ids_free(&ids);
}

/* max_input_tokens keeps the FIRST tokens of the comment: a 10 MB text whose beginning, middle
 * and end differ is cut to the prompt of its first 64 bytes cut the same way, and those 3 tokens
 * are the first 3 of the uncut short prompt; the closing chat markers are kept. */
static void test_truncation(gc_classifier *c, gc_session *s)
{
    gc_err e = {0};
    gc_ids a = {0}, b = {0}, full = {0};
    static const char head_text[] = "Randi saali mc ", tail_text[] = " nice video bhai 😂";
    size_t big = 10u << 20, hl = strlen(head_text), tl = strlen(tail_text);
    char *huge = malloc(big + 1);
    memcpy(huge, head_text, hl);
    for (size_t i = hl; i < big - tl; i++)
        huge[i] = "ab c"[i % 4];
    memcpy(huge + big - tl, tail_text, tl);
    huge[big] = '\0';
    int head = gc_classifier_shared_prefix_len(c);
    gc_session_set_limits(s, 0, 3);
    CHECK(gc_session_prompt(s, huge, big, &a, &e) == GC_OK, "%s", e.msg);
    CHECK(gc_session_prompt(s, huge, 64, &b, &e) == GC_OK, "%s", e.msg);
    CHECK(a.n == b.n && !memcmp(a.v, b.v, a.n * 4), "10 MB text keeps the tokens of its start");
    CHECK((int)a.n > head + 3 && (int)a.n <= head + 3 + 8, "truncated prompt has %zu ids", a.n);
    gc_session_set_limits(s, 0, 0);
    CHECK(gc_session_prompt(s, huge, 64, &full, &e) == GC_OK, "%s", e.msg);
    CHECK(full.n > a.n && !memcmp(a.v, full.v, (size_t)(head + 3) * 4),
          "the 3 kept tokens are the comment's first 3");
    /* the closing markers are kept */
    CHECK(a.n >= 2 && !memcmp(a.v + a.n - 2, full.v + full.n - 2, 8), "markers kept");
    float p[3];
    const char *t = huge;
    size_t len = big;
    CHECK(gc_classify(s, 1, &t, &len, p, NULL, &e) == GC_OK, "10 MB text: %s", e.msg);
    const char *weird[] = {"", "   ", "\xff\xfe", "<end_of_turn>", "\x01\x02"};
    int lab[5];
    float pw[15];
    CHECK(gc_classify(s, 5, weird, NULL, pw, lab, &e) == GC_OK, "odd texts: %s", e.msg);
    gc_ids_free(&a);
    gc_ids_free(&b);
    gc_ids_free(&full);
    free(huge);
}

/* Labels sharing their first token: summed log-probabilities of the whole label sequence. */
static void test_sequence_scoring(void)
{
    char dir[] = "/tmp/gctest-clf-XXXXXX", p[PATH_MAX + 64], abs[PATH_MAX];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, REF "/%s", files[i]);
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        CHECK(realpath(gct_shared(rel), abs) && symlink(abs, p) == 0, "link %s", files[i]);
    }
    snprintf(p, sizeof p, "%s/gemmaclf.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"labels\": [\"Extreme Hate\", \"Extreme\", \"Not Hate\"], "
          "\"score_bias\": {\"Not Hate\": 0.25}, \"temperature\": 1.6}", f);
    fclose(f);
    gc_classifier *c = NULL;
    gc_session *s = NULL;
    gc_err e = {0};
    CHECK(gc_classifier_open(dir, NULL, &c, &e) == GC_OK, "%s", e.msg);
    if (c && gc_session_new(c, NULL, &s, &e) == GC_OK) {
        CHECK(!gc_classifier_first_token_scoring(c), "first tokens collide -> sequence scoring");
        const char *text = "Randi saali mc";
        float prob[3];
        CHECK(gc_classify(s, 1, &text, NULL, prob, NULL, &e) == GC_OK, "%s", e.msg);
        /* By hand: full-vocabulary logits of prompt + label, log-softmax, summed. */
        int vocab = gc_model_config(gc_classifier_model(c))->vocab_size;
        double sc[3];
        for (int l = 0; l < 3; l++) {
            gc_ids ids = {0};
            int nl;
            const int32_t *lid = gc_classifier_label_ids(c, l, &nl);
            gc_session_prompt(s, text, strlen(text), &ids, &e);
            int np = (int)ids.n;
            gc_ids_append(&ids, lid, (size_t)nl, &e);
            int32_t seq = (int32_t)ids.n, out[8];
            for (int k = 0; k < nl; k++)
                out[k] = np - 1 + k;
            float *lg = malloc(sizeof(float) * vocab * nl);
            gc_batch b = {.n_seq = 1, .tokens = ids.v, .seq_len = &seq, .n_out = nl,
                          .out_idx = out, .logits = lg};
            CHECK(gc_forward(gc_session_ctx(s), NULL, &b, &e) == GC_OK, "%s", e.msg);
            sc[l] = l == 2 ? 0.25 : 0;
            for (int k = 0; k < nl; k++) {
                const float *r = lg + (size_t)k * vocab;
                double mx = r[0], z = 0;
                for (int v = 1; v < vocab; v++)
                    mx = r[v] > mx ? r[v] : mx;
                for (int v = 0; v < vocab; v++)
                    z += exp(r[v] - mx);
                sc[l] += r[lid[k]] - mx - log(z);
            }
            free(lg);
            gc_ids_free(&ids);
        }
        double q[3];
        for (int l = 0; l < 3; l++)
            sc[l] /= 1.6; /* the temperature of gemmaclf.json */
        softmax3(sc, 3, q);
        for (int l = 0; l < 3; l++)
            CHECK(fabs(q[l] - prob[l]) < 1e-4, "label %d: %.6f vs by hand %.6f", l, prob[l], q[l]);
        CHECK(fabs(prob[0] + prob[1] + prob[2] - 1) < 1e-5, "probabilities sum to 1");
    }
    gc_session_free(s);
    gc_classifier_free(c);
    const char *names[] = {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json", "gemmaclf.json"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_open_errors(void)
{
    gc_classifier *c = NULL;
    gc_err e = {0};
    CHECK(gc_classifier_open("/nonexistent-model", NULL, &c, &e) != GC_OK && !c && e.msg[0],
          "missing directory fails cleanly");
}

/* `ENV bin info MODEL`: its output in out (for messages) and parsed (NULL if it is no JSON);
 * a non-zero exit fails a check. */
static cJSON *cli_info(const char *env, const char *bin, const char *model, char *out, size_t cap)
{
    char cmd[PATH_MAX * 2 + 256], line[4096];
    snprintf(cmd, sizeof cmd, "%s %s info %s", env, bin, model);
    FILE *f = popen(cmd, "r");
    out[0] = '\0';
    while (f && fgets(line, sizeof line, f))
        strncat(out, line, cap - strlen(out) - 1);
    CHECK(f && pclose(f) == 0, "info exit (%s)", cmd);
    return cJSON_Parse(out);
}

/* The CLI: classify prints one JSON object per line, errors as {"error"}; generate and info. */
static void test_cli(void)
{
    const char *bin = getenv("GC_BIN");
    CHECK(bin && !access(bin, X_OK), "GC_BIN (the CLI) not set or not executable: %s",
          bin ? bin : "(unset)");
    if (!bin || access(bin, X_OK))
        return;
    char abs[PATH_MAX], cmd[PATH_MAX * 2 + 256], line[4096];
    CHECK(realpath(gct_shared(REF), abs) != NULL, "reference path");
    snprintf(cmd, sizeof cmd,
             "printf '%%s\\n' '\"Randi saali mc\"' '{\"text\": \"A\"}' '42' | %s classify %s --batch 2",
             bin, abs);
    FILE *f = popen(cmd, "r");
    const char *want[] = {"Extreme Hate", "Not Hate", NULL};
    int i = 0;
    while (f && fgets(line, sizeof line, f) && i < 3) {
        cJSON *j = cJSON_Parse(line);
        if (i < 2) {
            const cJSON *l = cJSON_GetObjectItem(j, "label"), *sc = cJSON_GetObjectItem(j, "scores");
            CHECK(cJSON_IsString(l) && !strcmp(l->valuestring, want[i]), "line %d: %s", i, line);
            CHECK(cJSON_GetArraySize(sc) == 3, "scores on line %d", i);
        } else
            CHECK(cJSON_GetObjectItem(j, "error") != NULL, "bad line reported: %s", line);
        cJSON_Delete(j);
        i++;
    }
    int rc = f ? pclose(f) : -1;
    CHECK(i == 3 && rc != 0, "3 output lines (%d) and a non-zero exit for the bad line", i);

    snprintf(cmd, sizeof cmd, "printf '%%s\\n' '\"Sali\"' | %s generate %s", bin, abs);
    f = popen(cmd, "r");
    CHECK(f && fgets(line, sizeof line, f) && strstr(line, "{\"generated\":\"Hate\"}"), "generate: %s", line);
    CHECK(f && pclose(f) == 0, "generate exit");
    /* Without MODEL_DIR: $GEMMACLF_MODEL names the default model. */
    snprintf(cmd, sizeof cmd, "printf '%%s\\n' '\"Sali\"' | GEMMACLF_MODEL=%s %s classify", abs, bin);
    f = popen(cmd, "r");
    CHECK(f && fgets(line, sizeof line, f) && strstr(line, "\"label\":\"Hate\""), "GEMMACLF_MODEL: %s", line);
    CHECK(f && pclose(f) == 0, "classify with GEMMACLF_MODEL exit");
    snprintf(cmd, sizeof cmd, "GEMMACLF_MODEL=/nonexistent %s classify </dev/null 2>/dev/null", bin);
    f = popen(cmd, "r");
    CHECK(f && pclose(f) != 0, "a missing model is a non-zero exit");
    char all[8192];
    cJSON *j = cli_info("", bin, abs, all, sizeof all);
    CHECK(j && cJSON_GetObjectItem(j, "parameters") &&
          cJSON_GetObjectItem(j, "parameters")->valuedouble == 6757376, "info: %s", all);
    cJSON_Delete(j);
    /* blas_core: the kernels OpenBLAS chose, which only the process's environment changes */
    const char *cores[] = {"Prescott", "Haswell"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=%s", cores[k]);
        j = cli_info(cmd, bin, abs, all, sizeof all);
        const cJSON *bc = cJSON_GetObjectItemCaseSensitive(j, "blas_core");
        CHECK(cJSON_IsString(bc) && !strcmp(bc->valuestring, cores[k]), "blas_core %s: %s",
              cores[k], all);
        cJSON_Delete(j);
    }
}

/* When to tell the user that OpenBLAS runs older kernels than the CPU could (blas_core.h). */
static void test_blas_core_rule(void)
{
    struct {
        const char *core;
        int avx2, avx512;
        const char *want;
    } cases[] = {
        {"Prescott", 1, 1, "SkylakeX"}, /* Debian 12's OpenBLAS on an Emerald Rapids Xeon */
        {"Prescott", 1, 0, "Haswell"},  {"Sandybridge", 1, 0, "Haswell"},
        {"Prescott", 0, 0, NULL},       /* an old CPU: the fallback is its best */
        {"Haswell", 1, 1, NULL},        /* AVX2 kernels on an AVX-512 CPU: OpenBLAS' choice */
        {"Zen", 1, 0, NULL},            {"SkylakeX", 1, 1, NULL},
        {"Cooperlake", 1, 1, NULL},     {"SapphireRapids", 1, 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = gc_blas_core_better_for(cases[i].core, cases[i].avx2, cases[i].avx512);
        CHECK(cases[i].want ? got && !strcmp(got, cases[i].want) : got == NULL,
              "core %s, avx2 %d, avx512 %d: %s", cases[i].core, cases[i].avx2, cases[i].avx512,
              got ? got : "(none)");
    }
    CHECK(strlen(gc_blas_core()) > 0, "this process' core is named: %s", gc_blas_core());
}

/* One key set for SQL and CLI: the union of what both printed before. */
static void test_model_info(const gc_classifier *c)
{
    static const char *const keys[] = {
        "model_path", "architecture", "parameters", "dtype", "weight_bytes", "layers",
        "hidden_size", "vocab_size", "tokenizer_vocab_size", "fingerprint", "labels",
        "label_token_ids", "prompt_prefix", "scoring", "cached_prefix_tokens", "ngram_weight", "comment_norm", "device",
        "precision", "threads", "blas_core", "load_ms", "preloaded", "max_input_tokens", "batch_size"};
    gc_model_info_runtime rt = {.model_path = "/as/named", .device = GC_DEVICE_CPU, .threads = 3,
                                .precision = GC_PRECISION_INT8, .preloaded = 1,
                                .max_input_tokens = 77, .batch_size = 5};
    gc_err e = {0};
    char *txt = gc_model_info_json(c, &rt, 1, &e);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    CHECK(j && !strchr(txt, '\n'), "compact JSON: %s", txt ? txt : e.msg);
    CHECK(cJSON_GetArraySize(j) == (int)(sizeof keys / sizeof keys[0]), "key count");
    for (size_t i = 0; j && i < sizeof keys / sizeof keys[0]; i++)
        CHECK(cJSON_GetObjectItemCaseSensitive(j, keys[i]) != NULL, "key %s", keys[i]);
    const cJSON *lid = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "label_token_ids"), gc_classifier_label(c, 1));
    int n;
    const int32_t *ids = gc_classifier_label_ids(c, 1, &n);
    CHECK(cJSON_GetArraySize(lid) == n && cJSON_GetArrayItem(lid, 0)->valueint == ids[0],
          "label ids");
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "model_path")->valuestring, "/as/named") &&
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "preloaded")) &&
              cJSON_GetObjectItemCaseSensitive(j, "threads")->valueint == 3 &&
              cJSON_GetObjectItemCaseSensitive(j, "max_input_tokens")->valueint == 77 &&
              !strcmp(cJSON_GetObjectItemCaseSensitive(j, "device")->valuestring, "cpu") &&
              !strcmp(cJSON_GetObjectItemCaseSensitive(j, "precision")->valuestring, "int8"),
          "runtime facts as given");
    /* the fingerprint is what sha256sum computes over the model's files (fingerprint.h) */
    char cmd[PATH_MAX + 256], want[128] = "";
    snprintf(cmd, sizeof cmd, "cd '%s' && ls config.json gemmaclf.json model.safetensors* ngram_head.safetensors "
             "tokenizer.json tokenizer_config.json 2>/dev/null | LC_ALL=C sort | "
             "xargs sha256sum | sha256sum | cut -c1-64", gc_classifier_dir(c));
    FILE *f = popen(cmd, "r");
    CHECK(f && fgets(want, sizeof want, f), "sha256sum of the model files");
    if (f)
        pclose(f);
    want[strcspn(want, "\n")] = '\0';
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(j, "fingerprint");
    CHECK(cJSON_IsString(fp) && strlen(want) == 64 && !strcmp(fp->valuestring, want) &&
              !strcmp(gc_classifier_fingerprint(c, &e), want),
          "fingerprint %s, sha256sum says %s", cJSON_IsString(fp) ? fp->valuestring : "?", want);
    cJSON_Delete(j);
    free(txt);
}

int main(void)
{
    test_labels_config();
    test_utf8();
    test_open_errors();
    gc_classifier *c = NULL;
    gc_session *s = NULL;
    gc_err e = {0};
    CHECK(gc_classifier_open(gct_shared(REF), NULL, &c, &e) == GC_OK, "%s", e.msg);
    if (c) {
        CHECK(gc_session_new(c, NULL, &s, &e) == GC_OK, "%s", e.msg);
        CHECK(gc_classifier_n_labels(c) == 3 && gc_classifier_first_token_scoring(c),
              "3 labels, distinct first tokens");
        CHECK(gc_classifier_shared_prefix_len(c) > 10, "cached head %d ids",
              gc_classifier_shared_prefix_len(c));
    }
    if (s) {
        test_reference(c, s);
        test_prefix_equivalence(c, s);
        test_truncation(c, s);
        test_model_info(c);
    }
    gc_session_free(s);
    gc_classifier_free(c);
    test_sequence_scoring();
    test_cli();
    test_blas_core_rule();
    return gct_finish("test_classifier");
}
