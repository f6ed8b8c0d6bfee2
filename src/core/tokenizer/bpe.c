/* The BPE model of tokenizer.json (tokenizers' models/bpe): a word is split into characters
 * (vocab ids, else byte-fallback <0xXX> ids, else the unk token, fused when fuse_unk), then
 * adjacent pairs are merged lowest merge rank first, leftmost among equal ranks. A binary
 * heap of candidate pairs over a doubly linked list of symbols makes a word of n characters
 * cost O(n log n): the Gemma 3 pre-tokenizer never splits, so a whole comment is one word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* ---- loading (vocab and merges are read by tokenizer_json.c) ---- */
gc_status gc_bpe_parse(const cJSON *m, const char *doc, gc_span vocab_json, gc_span merges_json,
                       gc_bpe *b, gc_err *e)
{
    memset(b, 0, sizeof *b);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type");
    if (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE")))
        return gc_fail(e, GC_EUNSUPPORTED, "model type \"%s\" is not supported (only BPE)",
                       cJSON_IsString(type) ? type->valuestring : "?");
    if (doc[vocab_json.a] != '{' || doc[merges_json.a] != '[')
        return gc_fail(e, GC_EFORMAT, "model: BPE needs \"vocab\" (object) and \"merges\" (array)");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "dropout");
    if (d && !cJSON_IsNull(d) && !(cJSON_IsNumber(d) && d->valuedouble == 0.0))
        return gc_fail(e, GC_EUNSUPPORTED, "model: BPE dropout is not supported");
    static const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, affix[i]);
        if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && !*a->valuestring))
            return gc_fail(e, GC_EUNSUPPORTED, "model: BPE %s is not supported", affix[i]);
    }
    b->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "byte_fallback"));
    b->fuse_unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "fuse_unk"));
    b->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "ignore_merges"));
    gc_status st = gc_tokjson_vocab(doc + vocab_json.a, vocab_json.b - vocab_json.a, b, e);
    if (st == GC_OK)
        st = gc_tokjson_merges(doc + merges_json.a, merges_json.b - merges_json.a, b, e);
    if (st != GC_OK)
        return st;
    b->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(m, "unk_token");
    if (cJSON_IsString(unk)) {
        b->unk_id = gc_strmap_get(&b->vocab, unk->valuestring, strlen(unk->valuestring));
        if (b->unk_id < 0)
            b->unk_id = -2; /* tokenizers fails only when the unk token is needed */
    }
    for (int i = 0; i < 256; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", i);
        b->byte_id[i] = gc_strmap_get(&b->vocab, name, 6);
    }
    for (int i = 0; i < 128; i++) {
        char c = (char)i;
        b->ascii_id[i] = gc_strmap_get(&b->vocab, &c, 1);
    }
    return GC_OK;
}

void gc_bpe_free(gc_bpe *b)
{
    free(b->arena);
    free(b->tok);
    free(b->tok_len);
    gc_strmap_free(&b->vocab);
    gc_u64map_free(&b->merges);
    memset(b, 0, sizeof *b);
}

/* ---- encoding ---- */
static gc_status scratch_reserve(gc_bpe_scratch *sc, size_t n, gc_err *e)
{
    if (n <= sc->sym_cap)
        return GC_OK;
    size_t cap = sc->sym_cap ? sc->sym_cap : 64;
    while (cap < n)
        cap *= 2;
    gc_bpe_scratch_free(sc);
    sc->sym_id = malloc(cap * sizeof *sc->sym_id);
    sc->prev = malloc(cap * sizeof *sc->prev);
    sc->next = malloc(cap * sizeof *sc->next);
    sc->len = malloc(cap * sizeof *sc->len);
    /* every merge pushes at most two new candidates: 3n entries always suffice */
    sc->heap = malloc(3 * cap * sizeof *sc->heap);
    if (!sc->sym_id || !sc->prev || !sc->next || !sc->len || !sc->heap) {
        gc_bpe_scratch_free(sc);
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for a %zu-character word", n);
    }
    sc->sym_cap = cap;
    return GC_OK;
}

void gc_bpe_scratch_free(gc_bpe_scratch *sc)
{
    free(sc->sym_id);
    free(sc->prev);
    free(sc->next);
    free(sc->len);
    free(sc->heap);
    memset(sc, 0, sizeof *sc);
}

/* A 4-ary heap: half the depth of a binary one, and the four children share a cache line
 * or two. (rank, position) is a total order, so the merge order does not depend on it. */
static void heap_push(gc_bpe_scratch *sc, uint64_t key, int32_t nid)
{
    gc_bpe_cand *h = sc->heap;
    size_t i = sc->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 4;
        if (h[p].key <= key)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = (gc_bpe_cand){key, nid};
}

static gc_bpe_cand heap_pop(gc_bpe_scratch *sc)
{
    gc_bpe_cand *h = sc->heap, top = h[0], last = h[--sc->heap_n];
    size_t n = sc->heap_n, i = 0;
    for (;;) {
        size_t c = 4 * i + 1, best = c;
        if (c >= n)
            break;
        for (size_t k = c + 1; k < c + 4 && k < n; k++)
            if (h[k].key < h[best].key)
                best = k;
        if (last.key <= h[best].key)
            break;
        h[i] = h[best];
        i = best;
    }
    h[i] = last;
    return top;
}

static inline int merge_of(const gc_bpe *b, int32_t x, int32_t y, uint64_t *rank_new)
{
    return gc_u64map_get(&b->merges, (uint64_t)(uint32_t)x << 32 | (uint32_t)y, rank_new);
}

/* Push the candidate merge of symbol i with its successor, if the pair has a merge. */
static void candidate(const gc_bpe *b, gc_bpe_scratch *sc, int32_t i)
{
    uint64_t rn;
    int32_t j = sc->next[i];
    if (j >= 0 && merge_of(b, sc->sym_id[i], sc->sym_id[j], &rn))
        heap_push(sc, (rn & 0xFFFFFFFF00000000ULL) | (uint32_t)i, (int32_t)(uint32_t)rn);
}

static void merge_all(const gc_bpe *b, gc_bpe_scratch *sc, size_t n)
{
    sc->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        candidate(b, sc, (int32_t)i);
    while (sc->heap_n) {
        uint64_t rn;
        gc_bpe_cand top = heap_pop(sc);
        uint64_t key = top.key;
        int32_t nid = top.new_id;
        int32_t pos = (int32_t)(uint32_t)key, right = sc->next[pos];
        if (sc->len[pos] == 0 || right < 0)
            continue; /* stale: the symbol was merged away or is now last */
        if (!merge_of(b, sc->sym_id[pos], sc->sym_id[right], &rn) || (int32_t)(uint32_t)rn != nid)
            continue; /* stale: the pair changed */
        sc->sym_id[pos] = nid;
        sc->len[pos] += sc->len[right];
        sc->next[pos] = sc->next[right];
        sc->len[right] = 0;
        if (sc->next[pos] >= 0)
            sc->prev[sc->next[pos]] = pos;
        if (sc->prev[pos] >= 0)
            candidate(b, sc, sc->prev[pos]);
        candidate(b, sc, pos);
    }
}

static inline void add_symbol(gc_bpe_scratch *sc, size_t *n, int32_t id, uint32_t len)
{
    size_t i = (*n)++;
    sc->sym_id[i] = id;
    sc->len[i] = len;
    sc->prev[i] = (int32_t)i - 1;
    sc->next[i] = -1;
    if (i)
        sc->next[i - 1] = (int32_t)i;
}

gc_status gc_bpe_encode(const gc_bpe *b, const char *s, size_t n, gc_bpe_scratch *sc,
                        gc_ids *out, gc_err *e)
{
    if (!n)
        return GC_OK;
    if (n > INT32_MAX / 4)
        return gc_fail(e, GC_EINVAL, "tokenizer: a %zu-byte word is too long", n);
    if (b->ignore_merges) {
        int32_t id = gc_strmap_get(&b->vocab, s, n);
        if (id >= 0)
            return gc_ids_push(out, id, e);
    }
    gc_status st = scratch_reserve(sc, n, e); /* at most one symbol per byte */
    if (st != GC_OK)
        return st;
    size_t ns = 0;
    int32_t unk_len = 0; /* pending unk (its byte length), flushed by the next vocab hit */
    for (size_t i = 0; i < n;) {
        size_t l = gc_utf8_len((unsigned char)s[i]);
        if (l > n - i)
            l = n - i;
        int32_t id = l == 1 && (unsigned char)s[i] < 128 ? b->ascii_id[(unsigned char)s[i]]
                                                         : gc_strmap_get(&b->vocab, s + i, l);
        if (id >= 0) {
            if (unk_len) {
                add_symbol(sc, &ns, b->unk_id, (uint32_t)unk_len);
                unk_len = 0;
            }
            add_symbol(sc, &ns, id, (uint32_t)l);
        } else {
            int all = b->byte_fallback;
            for (size_t k = 0; all && k < l; k++)
                all = b->byte_id[(unsigned char)s[i + k]] >= 0;
            if (all) { /* tokenizers leaves a pending unk pending here */
                for (size_t k = 0; k < l; k++)
                    add_symbol(sc, &ns, b->byte_id[(unsigned char)s[i + k]], 1);
            } else if (b->unk_id == -2) {
                return gc_fail(e, GC_EFORMAT, "tokenizer: the unk token is not in the vocab");
            } else if (b->unk_id >= 0) {
                if (unk_len && !b->fuse_unk) {
                    add_symbol(sc, &ns, b->unk_id, (uint32_t)unk_len);
                    unk_len = 0;
                }
                unk_len += (int32_t)l;
            } /* no unk token: the character is dropped, as in tokenizers */
        }
        i += l;
    }
    if (unk_len)
        add_symbol(sc, &ns, b->unk_id, (uint32_t)unk_len);
    merge_all(b, sc, ns);
    for (size_t i = 0; i < ns; i++)
        if (sc->len[i] && (st = gc_ids_push(out, sc->sym_id[i], e)) != GC_OK)
            return st;
    return GC_OK;
}
