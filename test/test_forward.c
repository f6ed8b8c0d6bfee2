/* Forward-pass parity with transformers on the three hf-tiny fixtures, under both config
 * layouts: logits and hidden states within 1e-4 of the largest reference value, same argmax,
 * greedy generation; batched == one at a time; prefix cache + rest == full run; restricted
 * vocabulary rows == the matching columns of the full logits. */
#include <cJSON.h>
#include <math.h>
#include <sys/wait.h>

#include "gc_test.h"
#include "gc_test_ref.h"
#include "model/cuda_plugin.h"
#include "model/gemma3.h"

#define TOL 1e-4

typedef struct seq {
    char name[32];
    int32_t *ids;
    int n;
    float *logits; /* reference [n, V] */
    float *hidden; /* reference [layers+1, n, H] or NULL */
} seq;

static int load_seqs(const gc_st_file *ref, seq *s, int max)
{
    int n = 0;
    for (int i = 0; i < 64 && n < max; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "seq%d.ids", i);
        if (!gc_st_find(ref, nm))
            continue;
        seq *q = &s[n++];
        snprintf(q->name, sizeof q->name, "seq%d", i);
        q->ids = gct_ids(ref, nm, &q->n);
        size_t cnt;
        snprintf(nm, sizeof nm, "seq%d.logits", i);
        q->logits = gct_f32(ref, nm, &cnt);
        snprintf(nm, sizeof nm, "seq%d.hidden_states", i);
        q->hidden = gct_f32(ref, nm, &cnt);
    }
    return n;
}

static void check_seq(gc_ctx *ctx, const gc_config *cfg, const seq *q, const char *tag)
{
    const int V = cfg->vocab_size, H = cfg->hidden_size;
    float *lg = malloc((size_t)q->n * V * sizeof(float));
    float *hid = q->hidden ? malloc((size_t)(cfg->n_layers + 1) * q->n * H * sizeof(float)) : NULL;
    gc_batch b = {.n_seq = 1, .tokens = q->ids, .seq_len = &q->n, .n_out = -1, .logits = lg,
                  .hidden = hid};
    gc_err e = {0};
    gc_status st = gc_forward(ctx, NULL, &b, &e);
    CHECK(st == GC_OK, "%s %s: %s", tag, q->name, e.msg);
    if (!st) {
        double err = gct_rel_err(lg, q->logits, (size_t)q->n * V);
        CHECK(err <= TOL, "%s %s: logits rel err %.3g", tag, q->name, err);
        int bad = 0;
        for (int t = 0; t < q->n; t++)
            bad += gct_argmax(lg + (size_t)t * V, V) != gct_argmax(q->logits + (size_t)t * V, V);
        CHECK(bad == 0, "%s %s: argmax differs at %d positions", tag, q->name, bad);
        if (hid) {
            for (int l = 0; l <= cfg->n_layers; l++) {
                size_t sz = (size_t)q->n * H;
                double he = gct_rel_err(hid + l * sz, q->hidden + l * sz, sz);
                CHECK(he <= TOL, "%s %s: hidden state %d rel err %.3g", tag, q->name, l, he);
            }
        }
    }
    free(lg);
    free(hid);
}

/* All sequences in one call must give what each gives alone. */
static void check_batched(gc_ctx *ctx, const gc_config *cfg, seq *s, int ns, const char *tag)
{
    const int V = cfg->vocab_size;
    int32_t *lens = malloc(ns * sizeof *lens);
    size_t T = 0;
    for (int i = 0; i < ns; i++)
        T += (size_t)(lens[i] = s[i].n);
    int32_t *toks = malloc(T * sizeof *toks);
    float *all = malloc(T * V * sizeof(float));
    for (int i = 0, o = 0; i < ns; o += s[i].n, i++)
        memcpy(toks + o, s[i].ids, s[i].n * sizeof *toks);
    gc_batch b = {.n_seq = ns, .tokens = toks, .seq_len = lens, .n_out = -1, .logits = all};
    gc_err e = {0};
    CHECK(gc_forward(ctx, NULL, &b, &e) == GC_OK, "%s batched: %s", tag, e.msg);
    size_t o = 0;
    double worst = 0;
    for (int i = 0; i < ns; i++) {
        float *one = malloc((size_t)s[i].n * V * sizeof(float));
        gc_batch b1 = {.n_seq = 1, .tokens = s[i].ids, .seq_len = &s[i].n, .n_out = -1,
                       .logits = one};
        gc_status st1 = gc_forward(ctx, NULL, &b1, &e);
        CHECK(st1 == GC_OK, "%s %s single: %s", tag, s[i].name, e.msg);
        double err = st1 == GC_OK ? gct_rel_err(all + o * V, one, (size_t)s[i].n * V) : INFINITY;
        worst = err > worst ? err : worst;
        o += (size_t)s[i].n;
        free(one);
    }
    /* OpenBLAS may pick other kernels for another M: not bitwise, but within float rounding */
    CHECK(worst <= 1e-5, "%s batched vs single: rel err %.3g", tag, worst);
    printf("%s: batched vs single rel err %.3g\n", tag, worst);
    free(lens);
    free(toks);
    free(all);
}


/* Classifier shape: all sequences in one batch, logits only at each one's last position
 * (the last layer is then pruned to those rows). */
static void check_last_positions(gc_ctx *ctx, const gc_config *cfg, seq *s, int ns, const char *tag)
{
    const int V = cfg->vocab_size;
    int32_t *lens = malloc(ns * sizeof *lens), *outs = malloc(ns * sizeof *outs);
    size_t T = 0;
    for (int i = 0; i < ns; i++) {
        T += (size_t)(lens[i] = s[i].n);
        outs[i] = (int32_t)T - 1;
    }
    int32_t *toks = malloc(T * sizeof *toks);
    for (int i = 0, o = 0; i < ns; o += s[i].n, i++)
        memcpy(toks + o, s[i].ids, s[i].n * sizeof *toks);
    float *lg = malloc((size_t)ns * V * sizeof(float));
    gc_batch b = {.n_seq = ns, .tokens = toks, .seq_len = lens, .n_out = ns, .out_idx = outs,
                  .logits = lg};
    gc_err e = {0};
    CHECK(gc_forward(ctx, NULL, &b, &e) == GC_OK, "%s last positions: %s", tag, e.msg);
    for (int i = 0; i < ns; i++) {
        const float *ref = s[i].logits + (size_t)(s[i].n - 1) * V;
        double err = gct_rel_err(lg + (size_t)i * V, ref, V);
        CHECK(err <= TOL, "%s %s last position (pruned last layer): rel err %.3g", tag, s[i].name, err);
        CHECK(gct_argmax(lg + (size_t)i * V, V) == gct_argmax(ref, V), "%s %s argmax", tag, s[i].name);
    }
    free(lens);
    free(outs);
    free(toks);
    free(lg);
}

/* Prefix of length cut, then the rest as a (batched) continuation. */
static void check_prefix(gc_ctx *ctx, const gc_config *cfg, const seq *q, int cut, const char *tag)
{
    const int V = cfg->vocab_size;
    gc_prefix *p = NULL;
    gc_err e = {0};
    gc_status st = gc_prefix_new(ctx, q->ids, cut, &p, &e);
    CHECK(st == GC_OK, "%s %s prefix: %s", tag, q->name, e.msg);
    if (st)
        return;
    CHECK(gc_prefix_len(p) == cut, "%s prefix len", tag);
    int rest = q->n - cut;
    /* the rest twice in one batch: both continue the same prefix independently */
    int32_t *toks = malloc(2 * rest * sizeof *toks);
    memcpy(toks, q->ids + cut, rest * sizeof *toks);
    memcpy(toks + rest, q->ids + cut, rest * sizeof *toks);
    int32_t lens[2] = {rest, rest};
    float *lg = malloc((size_t)2 * rest * V * sizeof(float));
    gc_batch b = {.n_seq = 2, .tokens = toks, .seq_len = lens, .n_out = -1, .logits = lg};
    st = gc_forward(ctx, p, &b, &e);
    CHECK(st == GC_OK, "%s %s prefix forward: %s", tag, q->name, e.msg);
    if (!st) {
        const float *ref = q->logits + (size_t)cut * V;
        double e1 = gct_rel_err(lg, ref, (size_t)rest * V);
        double e2 = gct_rel_err(lg + (size_t)rest * V, ref, (size_t)rest * V);
        CHECK(e1 <= TOL && e2 <= TOL, "%s %s prefix %d + rest: rel err %.3g %.3g", tag, q->name,
              cut, e1, e2);
    }
    /* and only the last position of each copy (pruned last layer over the prefix) */
    int32_t outs[2] = {rest - 1, 2 * rest - 1};
    gc_batch b2 = {.n_seq = 2, .tokens = toks, .seq_len = lens, .n_out = 2, .out_idx = outs,
                   .logits = lg};
    st = gc_forward(ctx, p, &b2, &e);
    CHECK(st == GC_OK, "%s %s prefix %d, last positions: %s", tag, q->name, cut, e.msg);
    if (!st) {
        const float *ref = q->logits + (size_t)(q->n - 1) * V;
        double e1 = gct_rel_err(lg, ref, V), e2 = gct_rel_err(lg + V, ref, V);
        CHECK(e1 <= TOL && e2 <= TOL, "%s %s prefix %d, last positions: rel err %.3g %.3g", tag,
              q->name, cut, e1, e2);
    }
    free(toks);
    free(lg);
    gc_prefix_free(p);
}

/* Logits restricted to a few vocabulary rows at a few positions. */
static void check_rows(gc_ctx *ctx, const gc_config *cfg, const seq *q, const char *tag)
{
    const int V = cfg->vocab_size;
    int32_t rows[3] = {V - 1, 0, V / 3};
    int32_t outs[2] = {q->n - 1, 0};
    float lg[6] = {0};
    gc_batch b = {.n_seq = 1, .tokens = q->ids, .seq_len = &q->n, .n_out = 2, .out_idx = outs,
                  .n_rows = 3, .rows = rows, .logits = lg};
    gc_err e = {0};
    gc_status st = gc_forward(ctx, NULL, &b, &e);
    CHECK(st == GC_OK, "%s rows: %s", tag, e.msg);
    double mx = 0, md = st == GC_OK ? 0 : INFINITY;
    for (int i = 0; i < 2; i++)
        for (int r = 0; r < 3; r++) {
            float ref = q->logits[(size_t)outs[i] * V + rows[r]];
            double d = fabs(lg[i * 3 + r] - ref);
            mx = fabs(ref) > mx ? fabs(ref) : mx;
            if (!(d <= md)) /* NaN too: a NaN logit must fail the check */
                md = d;
        }
    CHECK(md <= TOL * (mx > 1 ? mx : 1), "%s %s restricted rows: err %.3g", tag, q->name, md);
}

static void check_generate(gc_ctx *ctx, const gc_config *cfg, const gc_st_file *ref,
                           const char *tag)
{
    int n_in = 0, n_ref = 0;
    int32_t *in = gct_ids(ref, "generate.input", &n_in);
    int32_t *want = gct_ids(ref, "generate.output", &n_ref);
    CHECK(in && want, "%s: generate fixture", tag);
    if (!in || !want)
        return;
    int max_new = n_ref - n_in, n_out = 0;
    int32_t *out = malloc((max_new + 1) * sizeof *out);
    int32_t eos[8];
    for (int i = 0; i < cfg->n_eos; i++)
        eos[i] = cfg->eos_token_ids[i];
    gc_err e = {0};
    gc_status st = gc_generate_greedy(ctx, in, n_in, max_new, eos, cfg->n_eos, out, &n_out, &e);
    CHECK(st == GC_OK, "%s generate: %s", tag, e.msg);
    int same = n_out == max_new && !memcmp(out, want + n_in, max_new * sizeof *out);
    CHECK(same, "%s generate: %d tokens, first %d (want %d)", tag, n_out, n_out ? out[0] : -1,
          want[n_in]);
    free(in);
    free(want);
    free(out);
}


/* bin/gemmaclf logits on one fixture sequence: same numbers as the reference; bad ids exit 1. */
static void check_cli(const char *dir, const seq *q, int V, const char *tag)
{
    const char *bin = getenv("GC_BIN");
    CHECK(bin && access(bin, X_OK) == 0, "%s: GC_BIN (the CLI) not set or not executable: %s", tag,
          bin ? bin : "(unset)");
    if (!bin || access(bin, X_OK) != 0)
        return;
    char in[PATH_MAX + 64], cmd[3 * PATH_MAX];
    snprintf(in, sizeof in, "%s/in.jsonl", dir);
    FILE *f = fopen(in, "w");
    fputc('[', f);
    for (int i = 0; i < q->n; i++)
        fprintf(f, i ? ",%d" : "%d", q->ids[i]);
    fputs("]\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' logits '%s' --threads 2 < '%s'", bin, dir, in);
    FILE *p = popen(cmd, "r");
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (size_t r; (r = fread(buf + n, 1, cap - n - 1, p)) > 0;)
        if ((n += r) + 1 == cap)
            buf = realloc(buf, cap *= 2);
    buf[n] = 0;
    int rc = pclose(p);
    CHECK(rc == 0, "%s: CLI exit status %d", tag, rc);
    cJSON *j = cJSON_Parse(buf);
    int ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) == q->n;
    float *lg = calloc((size_t)q->n * V, sizeof(float));
    int t = 0;
    for (const cJSON *row = ok ? j->child : NULL; row && ok; row = row->next, t++) {
        ok = cJSON_GetArraySize(row) == V;
        int v = 0;
        for (const cJSON *x = row->child; x && ok; x = x->next, v++)
            lg[(size_t)t * V + v] = (float)x->valuedouble;
    }
    CHECK(ok, "%s: CLI output shape", tag);
    if (ok) {
        double err = gct_rel_err(lg, q->logits, (size_t)q->n * V);
        CHECK(err <= TOL, "%s: CLI logits rel err %.3g", tag, err);
    }
    cJSON_Delete(j);
    free(lg);
    free(buf);
    f = fopen(in, "w");
    fprintf(f, "[1, 2]\n[%d]\n", V);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' logits '%s' < '%s' > /dev/null 2>&1", bin, dir, in);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "%s: CLI accepted an out-of-range id", tag);
}

/* Device choice: without a usable CUDA plugin, AUTO falls back to the CPU silently and an
 * explicit CUDA request fails with GC_EDEVICE and a message saying why. */
static void check_device(const gc_model *m, const char *tag)
{
    gc_err e = {0};
    if (gc_cuda_load(&e)) {
        printf("skipped: test_forward device fallback (%s: a CUDA plugin is present)\n", tag);
        return;
    }
    gc_ctx *c = NULL;
    gc_ctx_opts o = {.device = GC_DEVICE_AUTO};
    CHECK(gc_ctx_new(m, &o, &c, &e) == GC_OK && gc_ctx_device(c) == GC_DEVICE_CPU,
          "%s: AUTO without plugin: %s", tag, e.msg);
    gc_ctx_free(c);
    c = NULL;
    o.device = GC_DEVICE_CUDA;
    gc_status st = gc_ctx_new(m, &o, &c, &e);
    CHECK(st == GC_EDEVICE && !c && strstr(e.msg, "cuda"), "%s: CUDA without plugin: %s (%s)",
          tag, gc_status_name(st), e.msg);
    gc_ctx_free(c);
}

static int canceled(void *arg)
{
    return ++*(int *)arg > 2;
}

static void run_fixture(const char *fx, const char *config, int use_cache)
{
    char dir[PATH_MAX], cache[PATH_MAX] = "", tag[128], rel[256];
    snprintf(tag, sizeof tag, "%s/%s%s", fx, config, use_cache ? "+cache" : "");
    CHECK(gct_model_dir(fx, config, dir), "%s: temp dir", tag);
    if (use_cache) {
        snprintf(cache, sizeof cache, "/tmp/gctest-XXXXXX");
        CHECK(mkdtemp(cache) != NULL, "cache dir");
    }
    gc_model_opts mo = {.cache_dir = use_cache ? cache : NULL};
    gc_model *m = NULL;
    gc_err e = {0};
    gc_status st = gc_model_load(dir, &mo, &m, &e);
    CHECK(st == GC_OK, "%s load: %s", tag, e.msg);
    if (use_cache && !st) { /* a second load maps the cache file written by the first */
        gc_model *m2 = NULL;
        CHECK(gc_model_load(dir, &mo, &m2, &e) == GC_OK, "%s reload: %s", tag, e.msg);
        if (m2)
            CHECK(!memcmp(gc_model_weights(m2)->layers[0].wq, gc_model_weights(m)->layers[0].wq,
                          64),
                  "%s: cached weights differ", tag);
        gc_model_free(m2);
    }
    snprintf(rel, sizeof rel, "reference/hf-tiny/%s/reference_logits.safetensors", fx);
    gc_st_file *ref = NULL;
    CHECK(gc_st_open(gct_shared(rel), &ref, &e) == GC_OK, "%s ref: %s", tag, e.msg);
    if (st || !ref) {
        gc_model_free(m);
        gc_st_close(ref);
        return;
    }
    const gc_config *cfg = gc_model_config(m);
    gc_ctx *ctx = NULL;
    gc_ctx_opts co = {.threads = 2, .device = GC_DEVICE_CPU};
    CHECK(gc_ctx_new(m, &co, &ctx, &e) == GC_OK, "%s ctx: %s", tag, e.msg);
    seq s[64];
    int ns = load_seqs(ref, s, 64);
    CHECK(ns >= 3, "%s: %d reference sequences", tag, ns);
    for (int i = 0; i < ns; i++)
        check_seq(ctx, cfg, &s[i], tag);
    check_batched(ctx, cfg, s, ns, tag);
    check_last_positions(ctx, cfg, s, ns, tag);
    for (int i = 0; i < ns; i++) {
        if (s[i].n < 2)
            continue;
        check_prefix(ctx, cfg, &s[i], s[i].n / 2, tag);
        check_prefix(ctx, cfg, &s[i], 1, tag);
        if (s[i].n > cfg->sliding_window + 2)
            check_prefix(ctx, cfg, &s[i], cfg->sliding_window + 1, tag);
    }
    check_rows(ctx, cfg, &s[ns - 1], tag);
    check_generate(ctx, cfg, ref, tag);
    check_cli(dir, &s[ns - 1], cfg->vocab_size, tag);
    check_device(m, tag);

    /* the interrupt callback stops a forward between layers */
    int calls = 0;
    gc_ctx *cc = NULL;
    gc_ctx_opts ci = {.device = GC_DEVICE_CPU, .interrupt = canceled, .interrupt_arg = &calls};
    gc_ctx_new(m, &ci, &cc, &e);
    gc_batch b = {.n_seq = 1, .tokens = s[ns - 1].ids, .seq_len = &s[ns - 1].n, .n_out = 0};
    if (cfg->n_layers > 2)
        CHECK(gc_forward(cc, NULL, &b, &e) == GC_ECANCELED, "%s: interrupt not honoured", tag);
    gc_ctx_free(cc);

    /* out-of-range ids are rejected */
    int32_t bad = cfg->vocab_size, one = 1;
    gc_batch bb = {.n_seq = 1, .tokens = &bad, .seq_len = &one, .n_out = -1};
    CHECK(gc_forward(ctx, NULL, &bb, &e) == GC_EINVAL, "%s: bad id accepted", tag);

    for (int i = 0; i < ns; i++) {
        free(s[i].ids);
        free(s[i].logits);
        free(s[i].hidden);
    }
    gc_ctx_free(ctx);
    gc_st_close(ref);
    gc_model_free(m);
    gct_rmdir(dir);
    if (use_cache)
        gct_rmdir(cache);
}

int main(void)
{
    for (int f = 0; f < GCT_N_FIXTURES; f++) {
        run_fixture(gct_fixtures[f], "config.json", 0);
        run_fixture(gct_fixtures[f], "config.v4.json", f == 1);
    }
    return gct_finish("test_forward");
}
