/* Hugging Face tokenizer.json in C: loading (tokenizer.json + tokenizer_config.json) and the
 * encode pipeline of tokenizers' TokenizerImpl::encode:
 *   1. added tokens (normalized: false) are split out of the raw text (AddedVocabulary),
 *   2. each remaining piece is normalized, then added tokens with normalized: true are split
 *      out of the normalized text,
 *   3. each remaining piece is pre-tokenized and every sub-piece is BPE-encoded,
 *   4. with GC_TOK_ADD_SPECIAL the TemplateProcessing post-processor adds its tokens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "tokenizer/tokenizer.h"
#include "common/utf8.h"
#include "tokenizer/tokenizer_internal.h"

/* tokenizer.json is 33 MB for Gemma 3 (262k tokens, 515k merges). */
#define GC_TOKENIZER_FILE_MAX ((size_t)1 << 30)

struct gc_tokenizer {
    gc_bpe bpe;
    gc_added_token *added;
    size_t n_added;
    gc_added_trie raw_trie, norm_trie;
    const char **added_strs; /* content of added token i (for added_map) */
    uint32_t *added_lens;
    gc_strmap added_map;     /* content -> index into added[] */
    gc_normalizer *normalizer;
    gc_pretokenizer *pretokenizer;
    gc_decoder *decoder;
    int32_t *post_before, *post_after; /* TemplateProcessing "single" around sequence A */
    size_t n_before, n_after;
    int32_t n_ids;       /* size of the id space: max(model id, added id) + 1 */
    const char **id_tok; /* [n_ids]: added token content or model token, NULL for holes */
    uint32_t *id_len;
    uint8_t *id_special;
    int32_t bos_id, eos_id;
    int has_chat_template, gemma_chat_template;
};

/* ---- JSON helpers ---- */
gc_status gc_json_string_pattern(const cJSON *obj, const char *what, const char **out, gc_err *e)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "pattern");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "String");
    if (cJSON_IsString(s)) {
        *out = s->valuestring;
        return GC_OK;
    }
    if (cJSON_GetObjectItemCaseSensitive(p, "Regex"))
        return gc_fail(e, GC_EUNSUPPORTED, "%s: Regex patterns are not supported (only String)",
                       what);
    return gc_fail(e, GC_EFORMAT, "%s: missing \"pattern\": {\"String\": ...}", what);
}

static gc_status parse_json_file(const char *dir, const char *name, int optional, cJSON **out,
                                 gc_err *e)
{
    char path[4096];
    *out = NULL;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return gc_fail(e, GC_EINVAL, "path too long: %s/%s", dir, name);
    char *data;
    size_t len;
    gc_status st = gc_read_file(path, GC_TOKENIZER_FILE_MAX, &data, &len, e);
    /* Only a missing optional file is skipped; one that is there but unreadable (a FIFO, a
     * device, no permission) is an error. */
    if (st != GC_OK)
        return optional && st == GC_EIO && errno == ENOENT ? GC_OK : st;
    *out = cJSON_ParseWithLength(data, len);
    free(data);
    if (!*out)
        return gc_fail(e, GC_EFORMAT, "%s: not valid JSON", path);
    return GC_OK;
}

/* ---- loading ---- */
/* Added tokens get their ids as tokenizers' AddedVocabulary::add_tokens assigns them (the
 * "id" fields of the JSON are not used, tokenizers only warns when they differ): an already
 * added content keeps its id (the later flags win), a content in the model vocab takes that
 * id, anything else the next id from the model vocab size on. */
/* One entry of "added_tokens" with its flags; a.len == 0 for empty content (skipped). */
static gc_status read_added_entry(const cJSON *it, gc_added_token *a, gc_err *e)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
    memset(a, 0, sizeof *a);
    if (!cJSON_IsString(c))
        return GC_EFORMAT; /* the caller names the entry */
    size_t len = strlen(c->valuestring);
    if (!len)
        return GC_OK;
    a->len = (uint32_t)len;
    a->special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special"));
    a->normalized = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "normalized"));
    a->lstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "lstrip"));
    a->rstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "rstrip"));
    a->single_word = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "single_word"));
    if (a->single_word)
        return gc_fail(e, GC_EUNSUPPORTED,
                       "added token \"%.60s\": single_word is not supported", c->valuestring);
    if (!(a->content = malloc(len + 1)))
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    memcpy(a->content, c->valuestring, len + 1);
    a->pattern = a->content;
    a->pattern_len = a->len;
    return GC_OK;
}

static void free_added_strings(gc_added_token *a)
{
    if (a->pattern != a->content)
        free(a->pattern);
    free(a->content);
}

/* A normalized added token is matched by its normalized form. */
static gc_status normalize_pattern(const gc_tokenizer *t, gc_added_token *a, gc_buf *nb,
                                   gc_buf *tmp, gc_err *e)
{
    gc_status st = gc_normalizer_apply(t->normalizer, a->content, a->len, nb, tmp, e);
    if (st != GC_OK || (nb->n == a->len && !memcmp(nb->p, a->content, a->len)))
        return st;
    if (!(a->pattern = malloc(nb->n + 1)))
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    memcpy(a->pattern, nb->p, nb->n + 1);
    a->pattern_len = (uint32_t)nb->n;
    return GC_OK;
}

/* Adds a (its strings owned by t from here on) with the id AddedVocabulary gives it. */
static gc_status add_added_token(gc_tokenizer *t, gc_added_token a, int64_t *next_id, gc_err *e)
{
    int32_t prev = gc_strmap_get(&t->added_map, a.content, a.len);
    if (prev >= 0) { /* the same content again: same id, the later flags */
        gc_added_token *o = &t->added[prev];
        a.id = o->id;
        free_added_strings(o);
        *o = a;
        t->added_strs[prev] = a.content;
        return GC_OK;
    }
    int32_t vid = gc_strmap_get(&t->bpe.vocab, a.content, a.len);
    if (vid < 0 && *next_id >= INT32_MAX) {
        free_added_strings(&a);
        return gc_fail(e, GC_EFORMAT, "added_tokens: too many tokens");
    }
    a.id = vid >= 0 ? vid : (int32_t)(*next_id)++;
    t->added[t->n_added] = a;
    t->added_strs[t->n_added] = a.content;
    t->added_lens[t->n_added] = a.len;
    gc_strmap_put(&t->added_map, (int32_t)t->n_added, 0);
    t->n_added++;
    return GC_OK;
}

static gc_status parse_added(gc_tokenizer *t, const cJSON *arr, gc_buf *nb, gc_buf *tmp,
                             gc_err *e)
{
    size_t n = arr ? (size_t)cJSON_GetArraySize(arr) : 0;
    if (arr && !cJSON_IsArray(arr))
        return gc_fail(e, GC_EFORMAT, "\"added_tokens\" is not an array");
    t->added = calloc(n ? n : 1, sizeof *t->added);
    t->added_strs = calloc(n ? n : 1, sizeof *t->added_strs);
    t->added_lens = calloc(n ? n : 1, sizeof *t->added_lens);
    if (!t->added || !t->added_strs || !t->added_lens)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    gc_status st = gc_strmap_init(&t->added_map, n, t->added_strs, t->added_lens, e);
    if (st != GC_OK)
        return st;
    int64_t next_id = (int64_t)t->bpe.n_vocab;
    const cJSON *it;
    size_t k = 0;
    cJSON_ArrayForEach(it, arr)
    {
        gc_added_token a;
        if ((st = read_added_entry(it, &a, e)) == GC_EFORMAT)
            return gc_fail(e, GC_EFORMAT, "added_tokens[%zu]: needs \"content\"", k);
        k++;
        if (st != GC_OK)
            return st;
        if (!a.len)
            continue;
        if (a.normalized && (st = normalize_pattern(t, &a, nb, tmp, e)) != GC_OK) {
            free_added_strings(&a);
            return st;
        }
        if ((st = add_added_token(t, a, &next_id, e)) != GC_OK)
            return st;
    }
    return GC_OK;
}

/* HF resolves an added token's id through the model vocab when the content is there. */
static gc_status build_id_table(gc_tokenizer *t, gc_err *e)
{
    int32_t max = t->bpe.max_id;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id > max)
            max = t->added[i].id;
    t->n_ids = max + 1;
    size_t n = (size_t)t->n_ids ? (size_t)t->n_ids : 1;
    t->id_tok = calloc(n, sizeof *t->id_tok);
    t->id_len = calloc(n, sizeof *t->id_len);
    t->id_special = calloc(n, 1);
    if (!t->id_tok || !t->id_len || !t->id_special)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    for (int32_t i = 0; i <= t->bpe.max_id; i++) {
        t->id_tok[i] = t->bpe.tok[i];
        t->id_len[i] = t->bpe.tok_len[i];
    }
    for (size_t i = 0; i < t->n_added; i++) {
        gc_added_token *a = &t->added[i];
        t->id_tok[a->id] = a->content;
        t->id_len[a->id] = a->len;
        t->id_special[a->id] = a->special;
    }
    return GC_OK;
}

static gc_status parse_post(gc_tokenizer *t, const cJSON *pp, gc_err *e)
{
    if (!pp || cJSON_IsNull(pp))
        return GC_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pp, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "TemplateProcessing"))
        return gc_fail(e, GC_EUNSUPPORTED,
                       "post_processor \"%s\" is not supported (only TemplateProcessing)",
                       cJSON_IsString(type) ? type->valuestring : "?");
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single"), *it;
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    if (!cJSON_IsArray(single))
        return gc_fail(e, GC_EFORMAT, "post_processor TemplateProcessing without \"single\"");
    size_t total = 0;
    cJSON_ArrayForEach(it, single)
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        if (st) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(st, "id");
            const cJSON *spec = cJSON_IsString(name)
                                    ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring)
                                    : NULL;
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(spec, "ids");
            if (!cJSON_IsArray(ids))
                return gc_fail(e, GC_EFORMAT, "post_processor: special token without ids");
            total += (size_t)cJSON_GetArraySize(ids);
        }
    }
    t->post_before = malloc((total + 1) * sizeof *t->post_before);
    t->post_after = malloc((total + 1) * sizeof *t->post_after);
    if (!t->post_before || !t->post_after)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    int seen_a = 0;
    cJSON_ArrayForEach(it, single)
    {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        if (seq) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(seq, "id");
            if (!cJSON_IsString(id) || strcmp(id->valuestring, "A") || seen_a)
                return gc_fail(e, GC_EUNSUPPORTED,
                               "post_processor: a single template must hold sequence A once");
            seen_a = 1;
        } else if (st) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(st, "id"), *x;
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(specials, name->valuestring), "ids");
            cJSON_ArrayForEach(x, ids)
            {
                if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > INT32_MAX)
                    return gc_fail(e, GC_EFORMAT, "post_processor: bad special token id");
                if (seen_a)
                    t->post_after[t->n_after++] = (int32_t)x->valuedouble;
                else
                    t->post_before[t->n_before++] = (int32_t)x->valuedouble;
            }
        } else {
            return gc_fail(e, GC_EFORMAT, "post_processor: unknown template piece");
        }
    }
    if (!seen_a)
        return gc_fail(e, GC_EFORMAT, "post_processor: the single template lacks sequence A");
    return GC_OK;
}

static int32_t config_token(const gc_tokenizer *t, const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v))
        v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? gc_tokenizer_token_id(t, v->valuestring) : -1;
}

static void parse_config(gc_tokenizer *t, const cJSON *cfg)
{
    t->bos_id = config_token(t, cfg, "bos_token");
    t->eos_id = config_token(t, cfg, "eos_token");
    if (t->bos_id < 0 && !cfg)
        t->bos_id = gc_tokenizer_token_id(t, "<bos>");
    if (t->eos_id < 0 && !cfg)
        t->eos_id = gc_tokenizer_token_id(t, "<eos>");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    t->has_chat_template = ct && !cJSON_IsNull(ct);
    t->gemma_chat_template =
        !t->has_chat_template || (cJSON_IsString(ct) && strstr(ct->valuestring, "<start_of_turn>"));
}

static gc_status load(gc_tokenizer *t, const char *dir, gc_err *e)
{
    cJSON *root = NULL, *cfg = NULL;
    gc_buf nb = {0}, tmp = {0};
    char path[4096], *doc = NULL, *rest = NULL;
    size_t doc_n, rest_n;
    gc_span vocab, merges;
    if (snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= (int)sizeof path)
        return gc_fail(e, GC_EINVAL, "path too long: %s", dir);
    gc_status st = gc_read_file(path, GC_TOKENIZER_FILE_MAX, &doc, &doc_n, e);
    /* JSON is UTF-8 (RFC 8259) and HF tokenizers refuses anything else; a vocabulary key with
     * invalid bytes would otherwise become a token no valid text can reach */
    if (st == GC_OK && !gc_utf8_valid(doc, doc_n))
        st = gc_fail(e, GC_EFORMAT, "%s: not valid UTF-8", path);
    if (st == GC_OK)
        st = gc_tokjson_split(doc, doc_n, &vocab, &merges, &rest, &rest_n, e);
    if (st == GC_OK && !(root = cJSON_ParseWithLength(rest, rest_n)))
        st = gc_fail(e, GC_EFORMAT, "%s: not valid JSON", path);
    if (st == GC_OK)
        st = parse_json_file(dir, "tokenizer_config.json", 1, &cfg, e);
    if (st != GC_OK)
        goto done;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) {
        st = gc_fail(e, GC_EFORMAT, "tokenizer.json has no \"model\"");
        goto done;
    }
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "truncation");
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
    if ((tr && !cJSON_IsNull(tr)) || (pad && !cJSON_IsNull(pad))) {
        st = gc_fail(e, GC_EUNSUPPORTED, "truncation/padding in tokenizer.json are not supported");
        goto done;
    }
    if ((st = gc_bpe_parse(model, doc, vocab, merges, &t->bpe, e)) ||
        (st = gc_normalizer_parse(cJSON_GetObjectItemCaseSensitive(root, "normalizer"),
                                  &t->normalizer, e)) ||
        (st = gc_pretokenizer_parse(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                    &t->pretokenizer, e)) ||
        (st = gc_decoder_parse(cJSON_GetObjectItemCaseSensitive(root, "decoder"), &t->decoder,
                               e)) ||
        (st = parse_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), e)) ||
        (st = parse_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), &nb, &tmp,
                          e)) ||
        (st = build_id_table(t, e)) ||
        (st = gc_added_trie_build(&t->raw_trie, t->added, t->n_added, 0, e)) ||
        (st = gc_added_trie_build(&t->norm_trie, t->added, t->n_added, 1, e)))
        goto done;
    for (size_t i = 0; i < t->n_before + t->n_after; i++) {
        int32_t id = i < t->n_before ? t->post_before[i] : t->post_after[i - t->n_before];
        if (id >= t->n_ids) {
            st = gc_fail(e, GC_EFORMAT, "post_processor: id %d is outside the vocab", id);
            goto done;
        }
    }
    parse_config(t, cfg);
done:
    free(doc);
    free(rest);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    gc_buf_free(&nb);
    gc_buf_free(&tmp);
    return st;
}

gc_status gc_tokenizer_load(const char *dir, gc_tokenizer **out, gc_err *e)
{
    *out = NULL;
    gc_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    t->bos_id = t->eos_id = -1;
    gc_status st = load(t, dir, e);
    if (st != GC_OK) {
        gc_err_prefix(e, "%s", dir);
        gc_tokenizer_free(t);
        return st;
    }
    *out = t;
    return GC_OK;
}

void gc_tokenizer_free(gc_tokenizer *t)
{
    if (!t)
        return;
    gc_bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].pattern != t->added[i].content)
            free(t->added[i].pattern);
        free(t->added[i].content);
    }
    free(t->added);
    gc_added_trie_free(&t->raw_trie);
    gc_added_trie_free(&t->norm_trie);
    free(t->added_strs);
    free(t->added_lens);
    gc_strmap_free(&t->added_map);
    gc_normalizer_free(t->normalizer);
    gc_pretokenizer_free(t->pretokenizer);
    gc_decoder_free(t->decoder);
    free(t->post_before);
    free(t->post_after);
    free(t->id_tok);
    free(t->id_len);
    free(t->id_special);
    free(t);
}

/* ---- encoding ---- */
typedef struct enc_ctx {
    gc_buf norm, tmp;
    gc_pieces pieces, ptmp;
    gc_split *s1, *s2;
    size_t n1, c1, n2, c2;
    gc_bpe_scratch bpe;
} enc_ctx;

static void ctx_free(enc_ctx *c)
{
    gc_buf_free(&c->norm);
    gc_buf_free(&c->tmp);
    gc_pieces_free(&c->pieces);
    gc_pieces_free(&c->ptmp);
    free(c->s1);
    free(c->s2);
    gc_bpe_scratch_free(&c->bpe);
}

/* Pre-tokenize and BPE-encode one normalized piece without added tokens. */
static gc_status encode_piece(const gc_tokenizer *t, enc_ctx *c, const char *s, size_t n,
                              int at_origin, gc_ids *out, gc_err *e)
{
    if (!t->pretokenizer)
        return gc_bpe_encode(&t->bpe, s, n, &c->bpe, out, e);
    gc_pieces_clear(&c->pieces);
    gc_status st = gc_pieces_add(&c->pieces, s, n, at_origin, e);
    if (st == GC_OK)
        st = gc_pretokenizer_apply(t->pretokenizer, &c->pieces, &c->ptmp, e);
    for (size_t i = 0; st == GC_OK && i < c->pieces.n; i++)
        st = gc_bpe_encode(&t->bpe, c->pieces.text.p + c->pieces.start[i], c->pieces.len[i],
                           &c->bpe, out, e);
    return st;
}

static gc_status encode_text(const gc_tokenizer *t, enc_ctx *c, const char *s, size_t n,
                             const gc_special_policy *pol, gc_ids *out, gc_err *e)
{
    c->n1 = 0;
    gc_status st = gc_added_find(&t->raw_trie, t->added, s, n, pol, &c->s1, &c->n1, &c->c1, e);
    for (size_t i = 0; st == GC_OK && i < c->n1; i++) {
        gc_split sp = c->s1[i];
        if (sp.id >= 0) {
            st = gc_ids_push(out, sp.id, e);
            continue;
        }
        st = gc_normalizer_apply(t->normalizer, s + sp.start, sp.end - sp.start, &c->norm,
                                 &c->tmp, e);
        if (st != GC_OK)
            break;
        c->n2 = 0;
        st = gc_added_find(&t->norm_trie, t->added, c->norm.p, c->norm.n, pol, &c->s2, &c->n2,
                           &c->c2, e);
        for (size_t k = 0; st == GC_OK && k < c->n2; k++) {
            gc_split q = c->s2[k];
            if (q.id >= 0)
                st = gc_ids_push(out, q.id, e);
            else
                st = encode_piece(t, c, c->norm.p + q.start, q.end - q.start,
                                  sp.start == 0 && q.start == 0, out, e);
        }
    }
    return st;
}

static gc_status encode_with(const gc_tokenizer *t, const char *text, size_t len,
                             const gc_special_policy *pol, int add_special, gc_ids *out,
                             gc_err *e)
{
    if (!text && len)
        return gc_fail(e, GC_EINVAL, "tokenizer: NULL text");
    if (len && !gc_utf8_valid(text, len))
        return gc_fail(e, GC_EINVAL, "tokenizer: input is not valid UTF-8");
    enc_ctx c = {0};
    size_t n0 = out->n;
    gc_status st = add_special ? gc_ids_append(out, t->post_before, t->n_before, e) : GC_OK;
    if (st == GC_OK && len)
        st = encode_text(t, &c, text, len, pol, out, e);
    if (st == GC_OK && add_special)
        st = gc_ids_append(out, t->post_after, t->n_after, e);
    ctx_free(&c);
    if (st != GC_OK)
        out->n = n0;
    return st;
}

gc_status gc_tokenizer_encode(const gc_tokenizer *t, const char *text, size_t len, int flags,
                              gc_ids *out, gc_err *e)
{
    gc_special_policy pol = {.none = (flags & GC_TOK_PLAIN) != 0};
    return encode_with(t, text, len, &pol, (flags & GC_TOK_ADD_SPECIAL) != 0, out, e);
}

gc_status gc_tokenizer_encode_special_at(const gc_tokenizer *t, const char *text, size_t len,
                                         const size_t *special_at, size_t n_special_at,
                                         gc_ids *out, gc_err *e)
{
    gc_special_policy pol = {.none = n_special_at == 0, .allowed_at = special_at,
                             .n_allowed = n_special_at};
    return encode_with(t, text, len, &pol, 0, out, e);
}

/* ---- decoding and lookups ---- */
gc_status gc_tokenizer_decode(const gc_tokenizer *t, const int32_t *ids, size_t n,
                              int skip_special, char **text, size_t *len, gc_err *e)
{
    *text = NULL;
    if (len)
        *len = 0;
    gc_strlist l = {0};
    gc_status st = GC_OK;
    for (size_t i = 0; i < n && st == GC_OK; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->id_tok[id])
            st = gc_fail(e, GC_EINVAL, "tokenizer: id %d is not in the vocab", id);
        else if (!(skip_special && t->id_special[id]))
            st = gc_strlist_add(&l, t->id_tok[id], t->id_len[id], e);
    }
    if (st == GC_OK && t->decoder)
        st = gc_decoder_apply(t->decoder, &l, e);
    gc_buf r = {0};
    for (size_t i = 0; st == GC_OK && i < l.n; i++) {
        if (!t->decoder && i)
            st = gc_buf_put(&r, " ", 1, e);
        if (st == GC_OK)
            st = gc_buf_put(&r, l.text.p + l.start[i], l.len[i], e);
    }
    if (st == GC_OK)
        st = gc_buf_put(&r, "", 0, e);
    gc_strlist_free(&l);
    if (st != GC_OK) {
        gc_buf_free(&r);
        return st;
    }
    *text = r.p;
    if (len)
        *len = r.n;
    return GC_OK;
}

int gc_tokenizer_vocab_size(const gc_tokenizer *t) { return t->n_ids; }

int32_t gc_tokenizer_token_id(const gc_tokenizer *t, const char *token)
{
    size_t n = strlen(token);
    int32_t i = gc_strmap_get(&t->added_map, token, n);
    if (i >= 0)
        return t->added[i].id;
    return gc_strmap_get(&t->bpe.vocab, token, n);
}

const char *gc_tokenizer_token(const gc_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids ? t->id_tok[id] : NULL;
}

int32_t gc_tokenizer_bos_id(const gc_tokenizer *t) { return t->bos_id; }
int32_t gc_tokenizer_eos_id(const gc_tokenizer *t) { return t->eos_id; }
int gc_tokenizer_has_chat_template(const gc_tokenizer *t) { return t->has_chat_template; }
int gc_tokenizer_has_gemma_chat_template(const gc_tokenizer *t) { return t->gemma_chat_template; }
int gc_tokenizer_is_special(const gc_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && t->id_special[id];
}
