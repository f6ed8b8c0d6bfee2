/* config.json parsing: both transformers layouts of every fixture agree, defaults, multimodal
 * text_config, and malformed or unsupported configs are rejected with the right code. */
#include <math.h>

#include "gc_test.h"
#include "model/model.h"

static gc_status parse(const char *json, gc_config *c, gc_err *e)
{
    return gc_config_parse(json, strlen(json), c, e);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

static void same_layouts(const char *fx)
{
    char p5[256], p4[256];
    snprintf(p5, sizeof p5, "reference/hf-tiny/%s/config.json", fx);
    snprintf(p4, sizeof p4, "reference/hf-tiny/%s/config.v4.json", fx);
    char *a = slurp(gct_shared(p5)), *b = slurp(gct_shared(p4));
    CHECK(a && b, "%s: read configs", fx);
    if (!a || !b)
        return;
    gc_config c5, c4;
    gc_err e = {0};
    CHECK(parse(a, &c5, &e) == GC_OK, "%s v5: %s", fx, e.msg);
    CHECK(parse(b, &c4, &e) == GC_OK, "%s v4: %s", fx, e.msg);
    CHECK(!memcmp(&c5, &c4, sizeof c5), "%s: v4 and v5 layouts parse differently", fx);
    free(a);
    free(b);
}

int main(void)
{
    gc_config c;
    gc_err e = {0};
    for (int i = 0; i < 3; i++)
        same_layouts((const char *[]){"tiny_gqa_f32", "tiny_mqa_bf16_scaled", "tiny_untied_tok4k"}[i]);

    /* fields of the bf16 fixture (5.x layout) */
    char *j = slurp(gct_shared("reference/hf-tiny/tiny_mqa_bf16_scaled/config.json"));
    CHECK(j && parse(j, &c, &e) == GC_OK, "bf16 config: %s", e.msg);
    free(j);
    CHECK(c.n_layers == 4 && c.n_heads == 3 && c.n_kv_heads == 1 && c.head_dim == 16, "shape");
    CHECK(c.rope_scale_global == 8.0 && c.rope_scale_local == 1.0, "rope scaling");
    CHECK(c.rope_theta_global == 1e6 && c.rope_theta_local == 1e4, "rope theta");
    CHECK(c.attn_softcap == 50.0f && c.final_softcap == 30.0f, "softcaps");
    CHECK(c.layer_sliding[0] == 1 && c.layer_sliding[1] == 0 && c.sliding_window == 5, "layers");
    CHECK(!strcmp(c.dtype, "bfloat16"), "dtype %s", c.dtype);
    CHECK(c.query_pre_attn_scalar == 24.0f, "qpas");

    /* defaults of Gemma3TextConfig */
    CHECK(parse("{}", &c, &e) == GC_OK, "empty config: %s", e.msg);
    CHECK(c.vocab_size == 262208 && c.hidden_size == 2304 && c.n_layers == 26 &&
              c.head_dim == 256 && c.sliding_window == 4096 && c.tie_word_embeddings == 1,
          "defaults");
    CHECK(c.layer_sliding[4] == 1 && c.layer_sliding[5] == 0 && c.layer_sliding[11] == 0,
          "default pattern 6");

    /* 4.5x sliding_window_pattern, eos list, flat rope_scaling */
    CHECK(parse("{\"num_hidden_layers\":4,\"sliding_window_pattern\":2,\"eos_token_id\":[1,106],"
                "\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":4.0},\"rope_theta\":5e5}",
                &c, &e) == GC_OK,
          "4.5x: %s", e.msg);
    CHECK(c.layer_sliding[0] == 1 && c.layer_sliding[1] == 0 && c.layer_sliding[3] == 0, "pattern 2");
    CHECK(c.n_eos == 2 && c.eos_token_ids[1] == 106, "eos list");
    CHECK(c.rope_scale_global == 4.0 && c.rope_theta_global == 5e5 && c.rope_scale_local == 1.0,
          "rope_scaling");

    /* multimodal: text_config, ids at the top level */
    CHECK(parse("{\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"model_type\":\"gemma3\","
                "\"eos_token_id\":[1,106],\"text_config\":{\"hidden_size\":640,"
                "\"num_hidden_layers\":18,\"num_attention_heads\":4,\"num_key_value_heads\":1,"
                "\"model_type\":\"gemma3_text\"},\"vision_config\":{\"hidden_size\":1152}}",
                &c, &e) == GC_OK,
          "multimodal: %s", e.msg);
    CHECK(c.hidden_size == 640 && c.n_layers == 18 && c.n_eos == 2, "multimodal fields");
    CHECK(!strcmp(c.architecture, "Gemma3ForConditionalGeneration"), "architecture");

    /* rejections */
    struct {
        const char *json;
        gc_status want;
    } bad[] = {
        {"not json at all", GC_EFORMAT},
        {"[1,2,3]", GC_EFORMAT},
        {"{\"hidden_size\":\"big\"}", GC_EFORMAT},
        {"{\"hidden_size\":0}", GC_EFORMAT},
        {"{\"hidden_size\":-64}", GC_EFORMAT},
        {"{\"num_hidden_layers\":1000}", GC_EFORMAT},
        {"{\"num_attention_heads\":3,\"num_key_value_heads\":2}", GC_EFORMAT},
        {"{\"head_dim\":33}", GC_EFORMAT},
        {"{\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}", GC_EUNSUPPORTED},
        {"{\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"dynamic\"}}}", GC_EUNSUPPORTED},
        {"{\"model_type\":\"llama\"}", GC_EUNSUPPORTED},
        {"{\"hidden_activation\":\"relu\"}", GC_EUNSUPPORTED},
        {"{\"num_hidden_layers\":2,\"layer_types\":[\"full_attention\"]}", GC_EFORMAT},
        {"{\"eos_token_id\":\"x\"}", GC_EFORMAT},
        {"{\"rms_norm_eps\":-1}", GC_EFORMAT},
        {"{\"text_config\":5}", GC_EFORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = 0;
        gc_status st = parse(bad[i].json, &c, &e);
        CHECK(st == bad[i].want, "%s: got %s (%s)", bad[i].json, gc_status_name(st), e.msg);
        CHECK(st == GC_OK || strstr(e.msg, "config"), "message names the config: %s", e.msg);
    }
    /* mutated configs: never a crash; whatever parses satisfies the invariants */
    char *base = slurp(gct_shared("reference/hf-tiny/tiny_mqa_bf16_scaled/config.v4.json"));
    if (base) {
        size_t n = strlen(base);
        uint32_t r = 88675123u;
        int ok = 0, sane = 1;
        for (int it = 0; it < 3000; it++) {
            char *m = strdup(base);
            for (int k = 0; k < 1 + it % 3; k++) {
                r ^= r << 13, r ^= r >> 17, r ^= r << 5;
                m[r % n] = "0123456789-.e,:{}[]\"tnx "[(r >> 12) % 25];
            }
            if (parse(m, &c, &e) == GC_OK) {
                ok++;
                sane &= c.n_layers >= 1 && c.n_layers <= GC_MAX_LAYERS && c.hidden_size > 0 &&
                        c.head_dim > 0 && c.head_dim % 2 == 0 && c.n_kv_heads > 0 &&
                        c.n_heads % c.n_kv_heads == 0 && c.vocab_size > 0 && c.sliding_window > 0;
            }
            free(m);
        }
        CHECK(sane, "a mutated config parsed into an invalid gc_config");
        printf("mutated configs: %d of 3000 still parsed (all valid)\n", ok);
        free(base);
    }
    return gct_finish("test_config");
}
