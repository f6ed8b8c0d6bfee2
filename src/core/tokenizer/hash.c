/* Open-addressing hash maps for the tokenizer: vocab (string -> id, 262k entries in
 * Gemma 3) and merges / trie edges (u64 -> u64, 515k merges). Linear probing in
 * power-of-two tables kept at most half full; key and value share a slot so a lookup is
 * usually one cache miss (loading Gemma 3 does 1.5 million lookups). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

static size_t table_size(size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2 + 1)
        cap *= 2;
    return cap;
}

uint64_t gc_hash_bytes(const char *s, size_t n)
{
    const uint64_t K = 0x9E3779B97F4A7C15ULL;
    uint64_t h = 0x243F6A8885A308D3ULL ^ (n * K);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * K;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * K;
        h ^= h >> 31;
    }
    return gc_u64_mix(h);
}

gc_status gc_strmap_init(gc_strmap *m, size_t expected, const char *const *strs,
                         const uint32_t *lens, gc_err *e)
{
    memset(m, 0, sizeof *m);
    size_t cap = table_size(expected);
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for a %zu-slot table", cap);
    m->mask = cap - 1;
    m->strs = strs;
    m->lens = lens;
    return GC_OK;
}

static uint32_t tag_of(uint64_t h)
{
    uint32_t t = (uint32_t)(h >> 32);
    return t ? t : 1;
}

static uint64_t prefix_of(const char *s, size_t n)
{
    uint64_t p = 0;
    memcpy(&p, s, n < 7 ? n : 7);
    return p | (uint64_t)(n < 255 ? n : 255) << 56; /* little and big endian alike: a key */
}

/* Slot of key s, or of the empty slot where it would go. */
static size_t probe(const gc_strmap *m, const char *s, size_t n, uint32_t tag, uint64_t pre,
                    size_t i)
{
    for (;; i = (i + 1) & m->mask) {
        const gc_strslot *sl = &m->slots[i];
        if (!sl->tag)
            return i;
        if (sl->tag != tag || sl->pre != pre)
            continue;
        if (n <= 7) /* the prefix word holds the whole key */
            return i;
        int32_t o = sl->val;
        if (m->lens[o] == n && !memcmp(m->strs[o] + 7, s + 7, n - 7))
            return i;
    }
}

void gc_strmap_put(gc_strmap *m, int32_t v, int replace)
{
    const char *s = m->strs[v];
    size_t n = m->lens[v];
    uint64_t h = gc_hash_bytes(s, n), pre = prefix_of(s, n);
    uint32_t tag = tag_of(h);
    size_t i = probe(m, s, n, tag, pre, h & m->mask);
    gc_strslot *sl = &m->slots[i];
    if (sl->tag) {
        if (replace)
            sl->val = v;
        return;
    }
    *sl = (gc_strslot){tag, v, pre};
    m->n++;
}

int32_t gc_strmap_get(const gc_strmap *m, const char *s, size_t n)
{
    return m->slots ? gc_strmap_get_hashed(m, s, n, gc_hash_bytes(s, n)) : -1;
}

int32_t gc_strmap_get_hashed(const gc_strmap *m, const char *s, size_t n, uint64_t h)
{
    const gc_strslot *sl = &m->slots[probe(m, s, n, tag_of(h), prefix_of(s, n), h & m->mask)];
    return sl->tag ? sl->val : -1;
}

void gc_strmap_free(gc_strmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

gc_status gc_u64map_init(gc_u64map *m, size_t expected, gc_err *e)
{
    memset(m, 0, sizeof *m);
    size_t cap = table_size(expected);
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for a %zu-slot table", cap);
    memset(m->slots, 0xFF, cap * sizeof *m->slots);
    m->mask = cap - 1;
    return GC_OK;
}

void gc_u64map_put(gc_u64map *m, uint64_t k, uint64_t v)
{
    size_t i = gc_u64_mix(k) & m->mask;
    while (m->slots[i].k != UINT64_MAX && m->slots[i].k != k)
        i = (i + 1) & m->mask;
    if (m->slots[i].k == UINT64_MAX)
        m->n++;
    m->slots[i] = (gc_u64slot){k, v};
}

void gc_u64map_free(gc_u64map *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}
