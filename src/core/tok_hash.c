/* Open-addressing hash maps for the tokenizer: vocab (string -> id, 262k entries in
 * Gemma 3) and merges / trie edges (u64 -> u64, 515k merges). Linear probing, power-of-two
 * tables kept at most half full, so lookups are one or two cache lines. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

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
    m->tags = calloc(cap, sizeof *m->tags);
    m->vals = malloc(cap * sizeof *m->vals);
    if (!m->tags || !m->vals) {
        gc_strmap_free(m);
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for a %zu-slot table", cap);
    }
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

void gc_strmap_put(gc_strmap *m, int32_t v, int replace)
{
    const char *s = m->strs[v];
    size_t n = m->lens[v];
    uint64_t h = gc_hash_bytes(s, n);
    uint32_t tag = tag_of(h);
    size_t i = h & m->mask;
    while (m->tags[i]) {
        int32_t o = m->vals[i];
        if (m->tags[i] == tag && m->lens[o] == n && !memcmp(m->strs[o], s, n)) {
            if (replace)
                m->vals[i] = v;
            return;
        }
        i = (i + 1) & m->mask;
    }
    m->tags[i] = tag;
    m->vals[i] = v;
    m->n++;
}

int32_t gc_strmap_get(const gc_strmap *m, const char *s, size_t n)
{
    if (!m->tags)
        return -1;
    uint64_t h = gc_hash_bytes(s, n);
    uint32_t tag = tag_of(h);
    size_t i = h & m->mask;
    while (m->tags[i]) {
        int32_t o = m->vals[i];
        if (m->tags[i] == tag && m->lens[o] == n && !memcmp(m->strs[o], s, n))
            return o;
        i = (i + 1) & m->mask;
    }
    return -1;
}

void gc_strmap_free(gc_strmap *m)
{
    free(m->tags);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

gc_status gc_u64map_init(gc_u64map *m, size_t expected, gc_err *e)
{
    memset(m, 0, sizeof *m);
    size_t cap = table_size(expected);
    m->keys = malloc(cap * sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    if (!m->keys || !m->vals) {
        gc_u64map_free(m);
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for a %zu-slot table", cap);
    }
    memset(m->keys, 0xFF, cap * sizeof *m->keys);
    m->mask = cap - 1;
    return GC_OK;
}

void gc_u64map_put(gc_u64map *m, uint64_t k, uint64_t v)
{
    size_t i = gc_u64_mix(k) & m->mask;
    while (m->keys[i] != UINT64_MAX && m->keys[i] != k)
        i = (i + 1) & m->mask;
    if (m->keys[i] == UINT64_MAX)
        m->n++;
    m->keys[i] = k;
    m->vals[i] = v;
}

void gc_u64map_free(gc_u64map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
