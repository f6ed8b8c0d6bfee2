/* Added tokens (tokenizers' AddedVocabulary): a byte trie over the token strings and
 * find_matches with Aho-Corasick LeftmostLongest semantics: the match that starts first
 * wins, the longest among those; scanning resumes after the match even when the match is
 * then discarded (a special token while special tokens are not recognised). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

gc_status gc_added_trie_build(gc_added_trie *t, const gc_added_token *tok, size_t n,
                              int normalized, gc_err *e)
{
    memset(t, 0, sizeof *t);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (tok[i].normalized == normalized)
            total += tok[i].pattern_len;
    t->empty = total == 0;
    t->value = malloc((total + 1) * sizeof *t->value);
    if (!t->value)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for the added-token trie");
    gc_status st = gc_u64map_init(&t->edges, total + 1, e);
    if (st != GC_OK) {
        gc_added_trie_free(t);
        return st;
    }
    t->value[0] = -1;
    t->n_nodes = 1;
    for (size_t i = 0; i < n; i++) {
        if (tok[i].normalized != normalized || !tok[i].pattern_len)
            continue;
        const unsigned char *p = (const unsigned char *)tok[i].pattern;
        uint64_t node = 0;
        t->first[p[0]] = 1;
        for (size_t k = 0; k < tok[i].pattern_len; k++) {
            uint64_t key = node << 8 | p[k], child;
            if (!gc_u64map_get(&t->edges, key, &child)) {
                child = t->n_nodes++;
                t->value[child] = -1;
                gc_u64map_put(&t->edges, key, child);
            }
            node = child;
        }
        t->value[node] = (int32_t)i; /* a repeated string: the later token wins */
    }
    return GC_OK;
}

void gc_added_trie_free(gc_added_trie *t)
{
    gc_u64map_free(&t->edges);
    free(t->value);
    memset(t, 0, sizeof *t);
}

/* Longest token starting at s[p], or -1; *end gets its end. */
static int32_t longest_at(const gc_added_trie *t, const unsigned char *s, size_t n, size_t p,
                          size_t *end)
{
    int32_t best = -1;
    uint64_t node = 0, child;
    for (size_t k = p; k < n; k++) {
        if (!gc_u64map_get(&t->edges, node << 8 | s[k], &child))
            break;
        node = child;
        if (t->value[node] >= 0) {
            best = t->value[node];
            *end = k + 1;
        }
    }
    return best;
}

static int special_allowed(const gc_special_policy *pol, size_t start)
{
    if (!pol)
        return 1;
    if (pol->none)
        return 0;
    if (!pol->allowed_at)
        return 1;
    size_t lo = 0, hi = pol->n_allowed;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pol->allowed_at[mid] < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < pol->n_allowed && pol->allowed_at[lo] == start;
}

/* Start of the run of White_Space characters ending at s[end] (regex `\s*$`). */
static size_t white_run_start(const char *s, size_t end)
{
    size_t a, b;
    gc_utf8_trim(s, end, gc_unicode_is_white_space, 0, 1, &a, &b);
    return b;
}

/* End of the run of White_Space characters starting at s[p] (regex `^\s*`). */
static size_t white_run_end(const char *s, size_t n, size_t p)
{
    size_t a, b;
    gc_utf8_trim(s + p, n - p, gc_unicode_is_white_space, 1, 0, &a, &b);
    return p + a;
}

static gc_status push(gc_split **out, size_t *n, size_t *cap, size_t a, size_t b, int32_t id,
                      gc_err *e)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        gc_split *v = realloc(*out, c * sizeof *v);
        if (!v)
            return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory splitting added tokens");
        *out = v;
        *cap = c;
    }
    (*out)[(*n)++] = (gc_split){a, b, id};
    return GC_OK;
}

gc_status gc_added_find(const gc_added_trie *t, const gc_added_token *tok, const char *str,
                        size_t n, const gc_special_policy *pol, gc_split **out, size_t *n_out,
                        size_t *cap_out, gc_err *e)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t cursor = 0, start_offset = 0;
    gc_status st;
    while (!t->empty && cursor < n) {
        size_t p = cursor, stop = 0;
        int32_t which = -1;
        for (; p < n; p++) {
            if (t->first[s[p]] && (which = longest_at(t, s, n, p, &stop)) >= 0)
                break;
        }
        if (which < 0)
            break;
        cursor = stop;
        const gc_added_token *a = &tok[which];
        if (a->special && !special_allowed(pol, p))
            continue;
        size_t start = p;
        if (a->lstrip) {
            size_t ns = white_run_start(str, start);
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip)
            stop = white_run_end(str, n, stop);
        if (start_offset < start && (st = push(out, n_out, cap_out, start_offset, start, -1, e)))
            return st;
        if ((st = push(out, n_out, cap_out, start, stop, a->id, e)))
            return st;
        start_offset = stop;
    }
    if (start_offset < n && (st = push(out, n_out, cap_out, start_offset, n, -1, e)))
        return st;
    return GC_OK;
}
