/* SHA-256 through libcrypto's EVP interface (sha256.h says why a library). */
#include "common/sha256.h"

#include <openssl/evp.h>

int gc_sha256_init(gc_sha256 *s)
{
    s->failed = 0;
    s->ctx = EVP_MD_CTX_new();
    if (!s->ctx)
        return -1;
    if (EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
        gc_sha256_discard(s);
        return -1;
    }
    return 0;
}

void gc_sha256_update(gc_sha256 *s, const void *data, size_t n)
{
    if (s->ctx && !s->failed && n > 0 && EVP_DigestUpdate(s->ctx, data, n) != 1)
        s->failed = 1;
}

int gc_sha256_hex(gc_sha256 *s, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = s->ctx && !s->failed && EVP_DigestFinal_ex(s->ctx, md, &len) == 1 && len == 32;

    gc_sha256_discard(s);
    out[0] = '\0';
    if (!ok)
        return -1;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

void gc_sha256_discard(gc_sha256 *s)
{
    EVP_MD_CTX_free(s->ctx); /* accepts NULL */
    s->ctx = NULL;
}
