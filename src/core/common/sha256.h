/* SHA-256 for the model's content fingerprint, through OpenSSL's libcrypto (EVP): the
 * fingerprint hashes every weight byte, and libcrypto's SHA-extension code ran ~6x faster than
 * the portable C it replaced (1.3 GB/s vs 215 MB/s here; docs/scale-out.md), and is code we
 * need not keep ourselves. */
#ifndef GC_SHA256_H
#define GC_SHA256_H

#include <stddef.h>

typedef struct gc_sha256 {
    struct evp_md_ctx_st *ctx; /* NULL after gc_sha256_hex / gc_sha256_discard */
    int failed;                /* a libcrypto call failed: gc_sha256_hex reports it */
} gc_sha256;

/* 0, or -1 when libcrypto could not start a digest (out of memory; nothing to free then). */
int gc_sha256_init(gc_sha256 *s);
void gc_sha256_update(gc_sha256 *s, const void *data, size_t n);
/* Writes the digest as 64 lowercase hex digits and a NUL and frees the state: 0, or -1 when a
 * libcrypto call failed (out is then ""). */
int gc_sha256_hex(gc_sha256 *s, char out[65]);
/* Frees the state without a digest (error paths). */
void gc_sha256_discard(gc_sha256 *s);

#endif
