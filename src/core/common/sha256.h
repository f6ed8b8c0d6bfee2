/* SHA-256 (FIPS 180-4), for the model's content fingerprint: small and dependency-free, so the
 * core needs no crypto library for one hash per model load. */
#ifndef GC_SHA256_H
#define GC_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct gc_sha256 {
    uint32_t h[8];
    uint64_t len;        /* bytes hashed so far */
    unsigned char buf[64];
    size_t fill;         /* bytes waiting in buf */
} gc_sha256;

void gc_sha256_init(gc_sha256 *s);
void gc_sha256_update(gc_sha256 *s, const void *data, size_t n);
/* Writes the digest as 64 lowercase hex digits and a NUL. */
void gc_sha256_hex(gc_sha256 *s, char out[65]);

#endif
