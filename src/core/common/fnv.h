/* FNV-1a, 64 bit: the hash that names cache copies, identifies a file's header, and buckets the
 * n-gram head's features (train/ngram_head.py computes the same). Not collision-resistant
 * against a chosen input: the sha256 of classifier/fingerprint.h is what identifies a model. */
#ifndef GC_FNV_H
#define GC_FNV_H

#include <stddef.h>
#include <stdint.h>

#define GC_FNV_OFFSET 0xcbf29ce484222325ull
#define GC_FNV_PRIME 0x100000001b3ull

/* h with one byte folded in (the n-gram head hashes bytes it rewrites on the fly). */
static inline uint64_t gc_fnv1a_byte(uint64_t h, unsigned char b) { return (h ^ b) * GC_FNV_PRIME; }

/* h with the n bytes at p folded in; start from GC_FNV_OFFSET. */
static inline uint64_t gc_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = gc_fnv1a_byte(h, b[i]);
    return h;
}

#endif
