/* Fast path for the two big members of tokenizer.json. cJSON allocates a node per value,
 * and Gemma 3's model.vocab (262,144 entries) and model.merges (514,906 pairs) make that
 * about a second; here they are located with a small JSON scanner and read straight into
 * the BPE tables, while cJSON parses the rest of the document (with those two members
 * replaced by {} and []), which is small. */
#include <stdlib.h>
#include <string.h>

#include "common/json_string.h"
#include "tokenizer/tokenizer_internal.h"

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    return i;
}

/* End of the JSON string starting at s[i] == '"' (index after the closing quote), or 0. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    size_t open = i;
    for (i++; i < n;) {
        const char *q = memchr(s + i, '"', n - i);
        if (!q)
            return 0;
        size_t j = (size_t)(q - s), bs = 0;
        while (j - bs - 1 > open && s[j - bs - 1] == '\\') /* an escaped quote? */
            bs++;
        if (bs % 2 == 0)
            return j + 1;
        i = j + 1;
    }
    return 0;
}

/* End of the JSON value starting at s[i], or 0 if malformed (a light check: cJSON or the
 * dedicated readers validate what they consume). */
static size_t skip_value(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    if (s[i] == '"')
        return skip_string(s, n, i);
    if (s[i] != '{' && s[i] != '[') {
        while (i < n && !strchr(",]} \n\r\t", s[i]))
            i++;
        return i;
    }
    size_t depth = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            if (!(i = skip_string(s, n, i)))
                return 0;
            i--;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        }
    }
    return 0;
}

/* Walks the members of the object starting at s[i]; for each of keys[k] found, spans[k]
 * gets its value's span. With stop_at_first, returns as soon as keys[0] is found (its
 * value's end is then not computed). Returns 0 if malformed. */
static int scan_members(const char *s, size_t n, size_t i, const char *const *keys, size_t nk,
                        gc_span *spans, int stop_at_first)
{
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != '{')
        return 0;
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t ke = skip_string(s, n, i), which = nk;
        if (!ke)
            return 0;
        for (size_t k = 0; k < nk; k++)
            if (ke - i - 2 == strlen(keys[k]) && !memcmp(s + i + 1, keys[k], ke - i - 2))
                which = k;
        i = skip_ws(s, n, ke);
        if (i >= n || s[i] != ':')
            return 0;
        i = skip_ws(s, n, i + 1);
        if (which == 0 && stop_at_first) {
            spans[0].a = i;
            return 1;
        }
        size_t ve = skip_value(s, n, i);
        if (!ve)
            return 0;
        if (which < nk)
            spans[which] = (gc_span){i, ve};
        i = skip_ws(s, n, ve);
        if (i < n && s[i] == ',')
            i = skip_ws(s, n, i + 1);
    }
    return 1;
}

gc_status gc_tokjson_split(const char *doc, size_t n, gc_span *vocab, gc_span *merges,
                           char **rest, size_t *rest_n, gc_err *e)
{
    static const char *const top[] = {"model"}, *const inner[] = {"vocab", "merges"};
    gc_span model = {0, 0}, sp[2] = {{0, 0}, {0, 0}};
    *rest = NULL;
    if (!scan_members(doc, n, 0, top, 1, &model, 1) || !model.a ||
        !scan_members(doc, n, model.a, inner, 2, sp, 0) || !sp[0].b || !sp[1].b)
        return gc_fail(e, GC_EFORMAT, "tokenizer.json: no model.vocab / model.merges");
    *vocab = sp[0];
    *merges = sp[1];
    const gc_span *first = vocab->a < merges->a ? vocab : merges;
    const gc_span *second = first == vocab ? merges : vocab;
    char *r = malloc(n - (vocab->b - vocab->a) - (merges->b - merges->a) + 5);
    if (!r)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    size_t k = 0;
    memcpy(r + k, doc, first->a);
    k += first->a;
    memcpy(r + k, first == vocab ? "{}" : "[]", 2);
    k += 2;
    memcpy(r + k, doc + first->b, second->a - first->b);
    k += second->a - first->b;
    memcpy(r + k, second == vocab ? "{}" : "[]", 2);
    k += 2;
    memcpy(r + k, doc + second->b, n - second->b);
    k += n - second->b;
    r[k] = 0;
    *rest = r;
    *rest_n = k;
    return GC_OK;
}

/* ---- model.vocab: {"token": id, ...} ---- */
/* A vocab entry: where its decoded string sits in the arena, its length and id. */
typedef struct vocab_entry {
    size_t off;
    uint32_t len;
    int32_t id;
} vocab_entry;

/* Reads `"token": id` at s[*i]: the token decoded into dst (NUL-terminated), *len, *id. */
static gc_status read_vocab_entry(const char *s, size_t n, size_t *i, char *dst, size_t *len,
                                  int64_t *id, gc_err *e)
{
    size_t c, p = *i;
    if (!gc_json_decode_into(s + p, n - p, &c, dst, len))
        return gc_fail(e, GC_EFORMAT, "model.vocab: bad token string at byte %zu", p);
    dst[*len] = 0;
    p = skip_ws(s, n, p + c);
    if (p >= n || s[p] != ':')
        return gc_fail(e, GC_EFORMAT, "model.vocab: expected ':' at byte %zu", p);
    p = skip_ws(s, n, p + 1);
    int64_t v = 0;
    size_t d0 = p;
    while (p < n && s[p] >= '0' && s[p] <= '9' && v <= INT32_MAX)
        v = v * 10 + (s[p++] - '0');
    if (p == d0 || v >= INT32_MAX || (p < n && strchr(".eE-", s[p])))
        return gc_fail(e, GC_EFORMAT, "model.vocab: bad id for \"%.60s\"", dst);
    *id = v;
    *i = p;
    return GC_OK;
}

/* The id -> token tables and the token -> id map, once the largest id is known. */
static gc_status index_vocab(gc_bpe *b, const vocab_entry *v, size_t cnt, int64_t max_id,
                             gc_err *e)
{
    b->n_vocab = cnt;
    b->max_id = (int32_t)max_id;
    size_t slots = (size_t)(max_id + 1) ? (size_t)(max_id + 1) : 1;
    b->tok = calloc(slots, sizeof *b->tok);
    b->tok_len = calloc(slots, sizeof *b->tok_len);
    if (!b->tok || !b->tok_len)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for the vocab");
    gc_status st = gc_strmap_init(&b->vocab, cnt, (const char *const *)b->tok, b->tok_len, e);
    for (size_t k = 0; st == GC_OK && k < cnt; k++) {
        int32_t id = v[k].id;
        const char *t = b->arena + v[k].off;
        if (b->tok[id])
            st = gc_fail(e, GC_EFORMAT, "model.vocab: id %d is used twice", id);
        else if (gc_strmap_get(&b->vocab, t, v[k].len) >= 0)
            st = gc_fail(e, GC_EFORMAT, "model.vocab: token \"%.60s\" appears twice", t);
        else {
            b->tok[id] = t;
            b->tok_len[id] = v[k].len;
            gc_strmap_put(&b->vocab, id, 0);
        }
    }
    return st;
}

gc_status gc_tokjson_vocab(const char *s, size_t n, gc_bpe *b, gc_err *e)
{
    size_t cap = 1024, cnt = 0, used = 0;
    vocab_entry *v = malloc(cap * sizeof *v);
    b->arena = malloc(n + 1); /* the decoded strings are never longer than the JSON text */
    if (!v || !b->arena) {
        free(v);
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for the vocab");
    }
    int64_t max_id = -1;
    size_t i = skip_ws(s, n, 1);
    gc_status st = GC_OK;
    while (i < n && s[i] != '}') {
        size_t l = 0;
        int64_t id = 0;
        if ((st = read_vocab_entry(s, n, &i, b->arena + used, &l, &id, e)) != GC_OK)
            break;
        if (cnt == cap) {
            vocab_entry *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) {
                st = gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for the vocab");
                break;
            }
            v = nv;
        }
        v[cnt++] = (vocab_entry){used, (uint32_t)l, (int32_t)id};
        used += l + 1;
        if (id > max_id)
            max_id = id;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',')
            i = skip_ws(s, n, i + 1);
        else if (i >= n || s[i] != '}')
            st = gc_fail(e, GC_EFORMAT, "model.vocab: expected ',' or '}' at byte %zu", i);
        if (st != GC_OK)
            break;
    }
    /* The id tables are sized by the largest id: one stray huge id (100,000,000) in a small
     * file would cost gigabytes. Real vocabularies are dense; allow holes, not that. */
    int64_t id_cap = 2 * (int64_t)cnt + 256;
    if (st == GC_OK && max_id >= id_cap) {
        size_t k = 0;
        while (v[k].id != max_id)
            k++;
        st = gc_fail(e, GC_EFORMAT,
                     "model.vocab: id %lld of \"%.60s\" is far beyond the %zu entries (ids must "
                     "stay below %lld); the tokenizer file is damaged",
                     (long long)max_id, b->arena + v[k].off, cnt, (long long)id_cap);
    }
    if (st == GC_OK)
        st = index_vocab(b, v, cnt, max_id, e);
    free(v);
    return st;
}

/* ---- model.merges: ["a b", ...] or [["a", "b"], ...] ---- */
/* A merge's strings after decoding: a at buf[off, off+na), b right after it, so the merged
 * token a+b is buf[off, off+na+nb). */
typedef struct mref {
    size_t off;
    uint32_t na, nb;
} mref;

/* Reads the next merge at s[*i] into buf+used. 1 on success, 0 on error (message set),
 * -1 for a skipped "#version" line. */
static int read_merge(const char *s, size_t n, size_t *i, char *buf, size_t used, mref *r,
                      uint32_t rank, gc_err *e)
{
    size_t c, nx, ny, p = *i;
    char *x = buf + used;
    if (s[p] == '"') { /* legacy "a b" */
        if (!gc_json_decode_into(s + p, n - p, &c, x, &nx))
            return gc_fail(e, GC_EFORMAT, "model.merges[%u]: bad string", rank), 0;
        *i = p + c;
        if (nx >= 8 && !memcmp(x, "#version", 8))
            return -1;
        char *sp = memchr(x, ' ', nx);
        if (!sp || memchr(sp + 1, ' ', nx - (size_t)(sp + 1 - x)))
            return gc_fail(e, GC_EFORMAT, "model.merges[%u]: \"%.*s\" is not \"a b\"", rank,
                           (int)(nx > 60 ? 60 : nx), x), 0;
        size_t na = (size_t)(sp - x);
        memmove(sp, sp + 1, nx - na - 1); /* a and b adjacent */
        *r = (mref){used, (uint32_t)na, (uint32_t)(nx - na - 1)};
        return 1;
    }
    if (s[p] != '[')
        return gc_fail(e, GC_EFORMAT, "model.merges[%u]: expected \"a b\" or [\"a\", \"b\"]",
                       rank), 0;
    p = skip_ws(s, n, p + 1);
    if (p >= n || !gc_json_decode_into(s + p, n - p, &c, x, &nx))
        return gc_fail(e, GC_EFORMAT, "model.merges[%u]: bad pair", rank), 0;
    p = skip_ws(s, n, p + c);
    if (p >= n || s[p] != ',')
        return gc_fail(e, GC_EFORMAT, "model.merges[%u]: bad pair", rank), 0;
    p = skip_ws(s, n, p + 1);
    if (p >= n || !gc_json_decode_into(s + p, n - p, &c, x + nx, &ny))
        return gc_fail(e, GC_EFORMAT, "model.merges[%u]: bad pair", rank), 0;
    p = skip_ws(s, n, p + c);
    if (p >= n || s[p] != ']')
        return gc_fail(e, GC_EFORMAT, "model.merges[%u]: a pair has two strings", rank), 0;
    *i = p + 1;
    *r = (mref){used, (uint32_t)nx, (uint32_t)ny};
    return 1;
}

static gc_status parse_all(const char *s, size_t n, char *buf, mref **refs, size_t *count,
                           gc_err *e)
{
    size_t cap = 1024, m = 0, used = 0;
    mref *v = malloc(cap * sizeof *v);
    if (!v)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for the merges");
    size_t i = skip_ws(s, n, 1);
    while (i < n && s[i] != ']') {
        if (m == cap) {
            mref *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for the merges");
            }
            v = nv;
        }
        int r = read_merge(s, n, &i, buf, used, &v[m], (uint32_t)m, e);
        if (!r) {
            free(v);
            return e ? e->code : GC_EFORMAT;
        }
        if (r > 0) {
            used += v[m].na + v[m].nb;
            m++;
        }
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',')
            i = skip_ws(s, n, i + 1);
        else if (i >= n || s[i] != ']') {
            free(v);
            return gc_fail(e, GC_EFORMAT, "model.merges: expected ',' or ']' at byte %zu", i);
        }
    }
    *refs = v;
    *count = m;
    return GC_OK;
}

gc_status gc_tokjson_merges(const char *s, size_t n, gc_bpe *b, gc_err *e)
{
    char *buf = malloc(n + 1); /* decoded strings are never longer than their JSON */
    if (!buf)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for the merges");
    mref *r = NULL;
    size_t m = 0;
    gc_status st = parse_all(s, n, buf, &r, &m, e);
    uint64_t *h = st == GC_OK ? malloc((3 * m + 1) * sizeof *h) : NULL;
    if (st == GC_OK && !h)
        st = gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for the merges");
    if (st == GC_OK)
        st = gc_u64map_init(&b->merges, m, e);
    if (st != GC_OK) {
        free(buf);
        free(r);
        free(h);
        return st;
    }
    /* Hash everything, then resolve with the slots of merge i+D prefetched. */
    for (size_t i = 0; i < m; i++) {
        const char *x = buf + r[i].off;
        h[3 * i] = gc_hash_bytes(x, r[i].na);
        h[3 * i + 1] = gc_hash_bytes(x + r[i].na, r[i].nb);
        h[3 * i + 2] = gc_hash_bytes(x, r[i].na + r[i].nb);
    }
    enum { D = 12 };
    uint64_t *keys = h; /* reused: key of merge i goes to h[3i] once it is resolved */
    for (size_t i = 0; i < m; i++) {
        if (i + D < m)
            for (int k = 0; k < 3; k++)
                gc_strmap_prefetch(&b->vocab, h[3 * (i + D) + k]);
        const char *x = buf + r[i].off;
        int32_t a = gc_strmap_get_hashed(&b->vocab, x, r[i].na, h[3 * i]);
        int32_t c = gc_strmap_get_hashed(&b->vocab, x + r[i].na, r[i].nb, h[3 * i + 1]);
        int32_t ab = gc_strmap_get_hashed(&b->vocab, x, r[i].na + r[i].nb, h[3 * i + 2]);
        if (a < 0 || c < 0 || ab < 0) {
            st = gc_fail(e, GC_EFORMAT, "model.merges[%zu]: \"%.*s\" is not in the vocab", i,
                         (int)(a < 0 ? r[i].na : c < 0 ? r[i].nb : r[i].na + r[i].nb),
                         a < 0 || ab < 0 ? x : x + r[i].na);
            break;
        }
        keys[3 * i] = (uint64_t)(uint32_t)a << 32 | (uint32_t)c;
        keys[3 * i + 1] = (uint64_t)i << 32 | (uint32_t)ab;
    }
    /* a repeated pair keeps the later rank, as tokenizers' HashMap collect does */
    for (size_t i = 0; st == GC_OK && i < m; i++) {
        if (i + D < m)
            gc_u64map_prefetch(&b->merges, keys[3 * (i + D)]);
        gc_u64map_put(&b->merges, keys[3 * i], keys[3 * i + 1]);
    }
    free(buf);
    free(r);
    free(h);
    return st;
}
