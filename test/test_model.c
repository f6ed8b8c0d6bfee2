/* Model loading from synthetic checkpoints: F32, F16 and BF16 copies of the same (exactly
 * representable) weights, sharded, misaligned and multimodal layouts all give bitwise the
 * same logits; broken checkpoints (missing tensor, wrong shape, wrong dtype, bad config)
 * are rejected with messages naming the tensor or field. */
#include "gc_test.h"
#include "gc_test_ref.h"
#include "model/gemma3.h"

enum { V = 64, H = 32, FF = 48, NL = 3, NH = 2, NKV = 1, HD = 16 };

typedef struct tensor {
    char name[96];
    int ndim;
    int64_t shape[2];
    size_t n;
    float *f32;
    uint16_t *f16, *bf16;
} tensor;

static tensor ts[64];
static int n_ts;
static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* A value with a 7-bit mantissa and exponent in [-6, 0]: exact in F16, BF16 and F32. */
static void gen(tensor *t)
{
    t->f32 = malloc(t->n * 4);
    t->f16 = malloc(t->n * 2);
    t->bf16 = malloc(t->n * 2);
    for (size_t i = 0; i < t->n; i++) {
        uint32_t r = rnd(), s = r & 1, ex = (r >> 1) % 7, m = (r >> 4) & 0x7f;
        uint32_t e32 = 127 - ex, bits = (s << 31) | (e32 << 23) | (m << 16);
        memcpy(&t->f32[i], &bits, 4);
        t->bf16[i] = (uint16_t)(bits >> 16);
        t->f16[i] = (uint16_t)((s << 15) | ((15 - ex) << 10) | (m << 3));
    }
}

static void add(const char *name, int ndim, int64_t d0, int64_t d1)
{
    tensor *t = &ts[n_ts++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->n = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    gen(t);
}

static void build(void)
{
    add("embed_tokens.weight", 2, V, H);
    add("norm.weight", 1, H, 0);
    for (int l = 0; l < NL; l++) {
        char n[96];
#define L(s, nd, a, b) (snprintf(n, sizeof n, "layers.%d." s ".weight", l), add(n, nd, a, b))
        L("input_layernorm", 1, H, 0);
        L("post_attention_layernorm", 1, H, 0);
        L("pre_feedforward_layernorm", 1, H, 0);
        L("post_feedforward_layernorm", 1, H, 0);
        L("self_attn.q_norm", 1, HD, 0);
        L("self_attn.k_norm", 1, HD, 0);
        L("self_attn.q_proj", 2, NH * HD, H);
        L("self_attn.k_proj", 2, NKV * HD, H);
        L("self_attn.v_proj", 2, NKV * HD, H);
        L("self_attn.o_proj", 2, H, NH * HD);
        L("mlp.gate_proj", 2, FF, H);
        L("mlp.up_proj", 2, FF, H);
        L("mlp.down_proj", 2, H, FF);
#undef L
    }
    add("lm_head.weight", 2, V, H); /* last: only written for untied variants */
}

static const char *CONFIG =
    "{\"architectures\":[\"Gemma3ForCausalLM\"],\"model_type\":\"gemma3_text\",\"vocab_size\":64,"
    "\"hidden_size\":32,\"intermediate_size\":48,\"num_hidden_layers\":3,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"head_dim\":16,\"query_pre_attn_scalar\":16,\"sliding_window\":4,"
    "\"sliding_window_pattern\":3,\"rope_theta\":1000000.0,\"rope_local_base_freq\":10000.0,"
    "\"tie_word_embeddings\":%s,\"eos_token_id\":[1,106]}";

typedef struct variant {
    const char *dtype;     /* F32, F16, BF16, or a bogus one */
    const char *prefix;    /* "model." or a multimodal prefix */
    int tied;              /* write no lm_head */
    int shards;            /* 1 or 2 */
    int misalign;          /* a 2-byte tensor first, so everything after is misaligned */
    const char *drop;      /* leave out the tensor whose name ends with this */
    const char *bad_shape; /* write this tensor with a wrong shape */
    const char *config;    /* NULL = CONFIG */
} variant;

static int write_variant(const char *dir, const variant *v)
{
    char path[PATH_MAX + 64], cfg[2048];
    if (v->config)
        snprintf(cfg, sizeof cfg, "%s", v->config);
    else
        snprintf(cfg, sizeof cfg, CONFIG, v->tied ? "true" : "false");
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!gct_write_text(path, cfg))
        return 0;
    static gct_wt w[80];
    static char names[80][128];
    static uint16_t junk = 0;
    int n = 0;
    if (v->misalign)
        w[n++] = (gct_wt){"junk", "BF16", 1, {1}, &junk, 2};
    for (int i = 0; i < n_ts; i++) {
        tensor *t = &ts[i];
        int is_head = !strcmp(t->name, "lm_head.weight");
        if (is_head && v->tied)
            continue;
        if (v->drop && strstr(t->name, v->drop))
            continue;
        snprintf(names[n], sizeof names[n], "%.60s%.60s", is_head ? "" : v->prefix, t->name);
        gct_wt *x = &w[n++];
        x->name = names[n - 1];
        x->dtype = v->dtype;
        x->ndim = t->ndim;
        x->shape[0] = t->shape[0];
        x->shape[1] = t->shape[1];
        int f32 = !strcmp(v->dtype, "F32") || !strcmp(v->dtype, "I32");
        x->data = f32 ? (void *)t->f32 : !strcmp(v->dtype, "F16") ? (void *)t->f16 : (void *)t->bf16;
        x->nbytes = t->n * (f32 ? 4 : 2);
        if (v->bad_shape && strstr(t->name, v->bad_shape)) { /* same bytes, transposed shape */
            x->shape[0] = t->shape[1];
            x->shape[1] = t->shape[0];
        }
    }
    if (v->shards == 2) {
        char idx[16384];
        size_t k = (size_t)snprintf(idx, sizeof idx, "{\"metadata\":{},\"weight_map\":{");
        for (int i = 0; i < n; i++)
            k += (size_t)snprintf(idx + k, sizeof idx - k, "%s\"%s\":\"model-%d.safetensors\"",
                                  i ? "," : "", w[i].name, i < n / 2 ? 1 : 2);
        snprintf(idx + k, sizeof idx - k, "}}");
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        if (!gct_write_text(path, idx))
            return 0;
        snprintf(path, sizeof path, "%s/model-1.safetensors", dir);
        if (!gct_write_st(path, w, n / 2))
            return 0;
        snprintf(path, sizeof path, "%s/model-2.safetensors", dir);
        return gct_write_st(path, w + n / 2, n - n / 2);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    return gct_write_st(path, w, n);
}

static const int32_t TOKS[7] = {2, 5, 63, 0, 17, 17, 40};

/* Loads a variant; on success returns logits of `toks` (n <= 7 tokens, all positions). */
static gc_status run_ids(const variant *v, const char *cache, const int32_t *toks, int32_t n,
                         float *logits, gc_err *e)
{
    char dir[PATH_MAX] = "/tmp/gctest-XXXXXX";
    if (!mkdtemp(dir) || !write_variant(dir, v))
        return gc_fail(e, GC_EIO, "cannot write the test checkpoint");
    gc_model_opts mo = {.cache_dir = cache};
    gc_model *m = NULL;
    gc_status st = gc_model_load(dir, &mo, &m, e);
    if (!st) {
        gc_ctx *c = NULL;
        gc_ctx_opts co = {.device = GC_DEVICE_CPU};
        gc_batch b = {.n_seq = 1, .tokens = toks, .seq_len = &n, .n_out = -1, .logits = logits};
        if (!(st = gc_ctx_new(m, &co, &c, e)))
            st = gc_forward(c, NULL, &b, e);
        /* a few positions only (pruned last layer) == those rows of the full output */
        int32_t outs[3] = {n - 1, n / 2, n - 1};
        float part[3 * V];
        gc_batch bp = {.n_seq = 1, .tokens = toks, .seq_len = &n, .n_out = 3, .out_idx = outs,
                       .logits = part};
        if (!st && !(st = gc_forward(c, NULL, &bp, e)))
            for (int i = 0; i < 3; i++) {
                double err = gct_rel_err(part + i * V, logits + outs[i] * V, V);
                CHECK(err <= 1e-5, "position %d alone: rel err %.3g", outs[i], err);
            }
        CHECK(gc_model_param_count(m) ==
                  (size_t)V * H * (v->tied ? 1 : 2) + H +
                      NL * (4 * H + 2 * HD + 3 * NH * HD * H + 3 * FF * H - NH * HD * H +
                            2 * NKV * HD * H),
              "param count %zu", gc_model_param_count(m));
        gc_ctx_free(c);
    }
    gc_model_free(m);
    gct_rmdir(dir);
    return st;
}

static gc_status run(const variant *v, const char *cache, float *logits, gc_err *e)
{
    return run_ids(v, cache, TOKS, 7, logits, e);
}

static void expect_same(const char *what, const variant *v, const float *ref, const char *cache)
{
    float lg[7 * V];
    gc_err e = {0};
    gc_status st = run(v, cache, lg, &e);
    CHECK(st == GC_OK, "%s: %s", what, e.msg);
    if (!st)
        CHECK(!memcmp(lg, ref, sizeof lg), "%s: logits differ from the F32 checkpoint", what);
}

static void expect_fail(const char *what, const variant *v, gc_status want, const char *needle)
{
    float lg[7 * V];
    gc_err e = {0};
    gc_status st = run(v, NULL, lg, &e);
    CHECK(st == want, "%s: got %s (%s)", what, gc_status_name(st), e.msg);
    CHECK(!needle || strstr(e.msg, needle), "%s: message lacks '%s': %s", what, needle, e.msg);
}

/* Every layer sliding with window 2: in each layer position t attends to t-1 and t only, so
 * after 3 layers the last of 7 positions depends on tokens 3..6 alone and, RoPE being relative,
 * equals the last position of those 4 tokens run on their own. A window covering the whole
 * sequence (same weights, same RoPE base) agrees where the window does not cut (positions 0-1)
 * and differs after. The pruned last layer (run_ids' position checks) applies the window too. */
#define SLIDING_CONFIG(window, kind)                                                              \
    "{\"vocab_size\":64,\"hidden_size\":32,\"intermediate_size\":48,\"num_hidden_layers\":3,"        \
    "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"head_dim\":16,\"query_pre_attn_scalar\":16,"\
    "\"sliding_window\":" #window ",\"rope_theta\":10000.0,\"rope_local_base_freq\":10000.0,"         \
    "\"layer_types\":[\"" kind "\",\"" kind "\",\"" kind "\"]}"

static void check_sliding_window(const variant *base)
{
    float sl[7 * V], tail[4 * V], full[7 * V];
    gc_err e = {0};
    variant v = *base;
    v.config = SLIDING_CONFIG(2, "sliding_attention");
    gc_status st = run(&v, NULL, sl, &e);
    CHECK(st == GC_OK, "all sliding: %s", e.msg);
    gc_status st2 = run_ids(&v, NULL, TOKS + 3, 4, tail, &e);
    CHECK(st2 == GC_OK, "all sliding, last 4 tokens: %s", e.msg);
    if (!st && !st2) {
        double err = gct_rel_err(sl + 6 * V, tail + 3 * V, V);
        CHECK(err <= 1e-5, "window 2, 3 layers: last position depends on more than the last 4 "
              "tokens (rel err %.3g)", err);
        double far = gct_rel_err(sl + 6 * V, tail + 2 * V, V);
        CHECK(far > 1e-3, "sliding check cannot tell positions apart (%.3g)", far);
    }
    v.config = SLIDING_CONFIG(2, "full_attention");
    CHECK(run(&v, NULL, full, &e) == GC_OK, "all full: %s", e.msg);
    if (!st) {
        double same = gct_rel_err(sl, full, 2 * V), diff = gct_rel_err(sl + 6 * V, full + 6 * V, V);
        CHECK(same <= 1e-6, "positions inside the window differ from full attention (%.3g)", same);
        CHECK(diff > 1e-3, "window 2 ignored: last position equals full attention (%.3g)", diff);
        printf("sliding window 2: last position vs its 4-token tail %.3g, vs full attention %.3g\n",
               gct_rel_err(sl + 6 * V, tail + 3 * V, V), diff);
    }
}

int main(void)
{
    build();
    float ref[7 * V], untied[7 * V];
    gc_err e = {0};
    variant base = {.dtype = "F32", .prefix = "model.", .tied = 1, .shards = 1};
    CHECK(run(&base, NULL, ref, &e) == GC_OK, "F32: %s", e.msg);
    variant v = base;
    v.dtype = "F16";
    expect_same("F16", &v, ref, NULL);
    v.dtype = "BF16";
    expect_same("BF16", &v, ref, NULL);
    char cache[PATH_MAX] = "/tmp/gctest-XXXXXX";
    CHECK(mkdtemp(cache) != NULL, "cache dir");
    expect_same("BF16 via cache file", &v, ref, cache);
    v = base;
    v.shards = 2;
    expect_same("sharded", &v, ref, NULL);
    v = base;
    v.misalign = 1;
    expect_same("misaligned F32", &v, ref, cache);
    v = base;
    v.prefix = "model.language_model.";
    v.config = "{\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"model_type\":\"gemma3\","
               "\"text_config\":{\"vocab_size\":64,\"hidden_size\":32,\"intermediate_size\":48,"
               "\"num_hidden_layers\":3,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
               "\"head_dim\":16,\"query_pre_attn_scalar\":16,\"sliding_window\":4,"
               "\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"default\",\"rope_theta\":"
               "1000000.0},\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":10000.0}},"
               "\"layer_types\":[\"sliding_attention\",\"sliding_attention\",\"full_attention\"]}}";
    expect_same("multimodal 5.x names", &v, ref, NULL);
    v.prefix = "language_model.model.";
    expect_same("multimodal 4.x names", &v, ref, NULL);

    check_sliding_window(&base);

    /* untied: lm_head.weight is used (different logits), and is required */
    v = base;
    v.tied = 0;
    CHECK(run(&v, NULL, untied, &e) == GC_OK, "untied: %s", e.msg);
    CHECK(memcmp(untied, ref, sizeof ref) != 0, "untied lm_head ignored");
    v.drop = "lm_head";
    expect_fail("untied without lm_head", &v, GC_EFORMAT, "lm_head");

    v = base;
    v.drop = "layers.1.self_attn.k_norm";
    expect_fail("missing tensor", &v, GC_EFORMAT, "layers.1.self_attn.k_norm");
    v = base;
    v.bad_shape = "layers.2.mlp.down_proj";
    expect_fail("wrong shape", &v, GC_EFORMAT, "layers.2.mlp.down_proj");
    v = base;
    v.dtype = "I32";
    expect_fail("integer weights", &v, GC_EUNSUPPORTED, "I32");
    v = base;
    v.config = "{\"hidden_size\": 32, oops";
    expect_fail("garbage config.json", &v, GC_EFORMAT, "config.json");
    v.config = "{\"vocab_size\":64,\"hidden_size\":32,\"intermediate_size\":48,\"num_hidden_layers\":3,"
               "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"head_dim\":16,"
               "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8}}";
    expect_fail("unsupported rope type", &v, GC_EUNSUPPORTED, "llama3");
    v.config = "{\"vocab_size\":65,\"hidden_size\":32,\"intermediate_size\":48,\"num_hidden_layers\":3,"
               "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"head_dim\":16}";
    expect_fail("config disagreeing with shapes", &v, GC_EFORMAT, "embed_tokens");

    gc_model *m = NULL;
    CHECK(gc_model_load("/nonexistent/dir", NULL, &m, &e) == GC_EIO && !m, "missing dir: %s", e.msg);
    gct_rmdir(cache);
    for (int i = 0; i < n_ts; i++) {
        free(ts[i].f32);
        free(ts[i].f16);
        free(ts[i].bf16);
    }
    return gct_finish("test_model");
}
