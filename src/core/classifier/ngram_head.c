#include "classifier/ngram_head.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/labels_config.h"
#include "model/safetensors.h"

/* 2^22 buckets per part is 16x the bundled head's; the cap keeps a hostile file from asking for
 * gigabytes (its tensors are validated against the file size before anything is allocated). */
#define GC_NGRAM_MAX_BITS 22

struct gc_ngram_head {
    size_t buckets;       /* B, a power of two */
    int n_labels;
    float *idf;           /* [2][B]: chars, then words */
    float *weight;        /* [n_labels][2B] */
    float *bias;          /* [n_labels] */
};

static uint64_t fnv_byte(uint64_t h, unsigned char b) { return (h ^ b) * 0x100000001b3ULL; }

static unsigned char lower(unsigned char b) { return b >= 'A' && b <= 'Z' ? b + 32 : b; }

/* bytes.split()'s whitespace */
static int is_space(unsigned char b) { return b == ' ' || (b >= '\t' && b <= '\r'); }

static int is_word(unsigned char b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || b == '_' || b >= 0x80;
}

/* Tensor `name`, checked to be F32 with numel values (safetensors.c checked it lies in the file). */
static gc_status find_f32(const gc_st_file *f, const char *name, size_t numel,
                          const gc_st_tensor **t, gc_err *e)
{
    *t = gc_st_find(f, name);
    if (!*t)
        return gc_fail(e, GC_EFORMAT, "%s: tensor \"%s\" missing", f->path, name);
    if ((*t)->dtype != GC_ST_F32 || (*t)->numel != numel)
        return gc_fail(e, GC_EFORMAT, "%s: tensor \"%s\" must be F32 with %zu values (it is %s "
                       "with %zu)", f->path, name, numel, gc_st_dtype_name((*t)->dtype), (*t)->numel);
    return GC_OK;
}

/* Reads tensor t into dst; every value must be finite. */
static gc_status read_finite(gc_st_file *f, const gc_st_tensor *t, float *dst, gc_err *e)
{
    gc_status st = gc_st_read(f, t, 0, dst, t->numel * sizeof(float), e);
    for (size_t i = 0; i < t->numel && !st; i++)
        if (!isfinite(dst[i]))
            st = gc_fail(e, GC_EFORMAT, "%s: tensor \"%s\" holds a non-finite value at %zu",
                         f->path, t->name, i);
    return st;
}

/* The buckets per part, from idf_chars' shape: a power of two up to 2^GC_NGRAM_MAX_BITS. */
static gc_status bucket_count(const gc_st_file *f, size_t *b, gc_err *e)
{
    const gc_st_tensor *t = gc_st_find(f, "idf_chars");
    if (!t || t->ndim != 1)
        return gc_fail(e, GC_EFORMAT, "%s: tensor \"idf_chars\" missing or not 1-D", f->path);
    *b = t->numel;
    if (*b < 2 || (*b & (*b - 1)) || *b > ((size_t)1 << GC_NGRAM_MAX_BITS))
        return gc_fail(e, GC_EFORMAT, "%s: %zu buckets; must be a power of two in [2, 2^%d]",
                       f->path, *b, GC_NGRAM_MAX_BITS);
    return GC_OK;
}

static gc_status check_metadata(const gc_st_file *f, const char *const *labels, int n_labels,
                                gc_err *e)
{
    char *fmt = gc_st_metadata_get(f, "format"), *got = gc_st_metadata_get(f, "labels");
    size_t need = 1;
    for (int i = 0; i < n_labels; i++)
        need += strlen(labels[i]) + 1;
    char *want = calloc(1, need);
    gc_status st = GC_OK;
    if (!want) {
        st = gc_fail(e, GC_ENOMEM, "out of memory");
    } else {
        for (int i = 0; i < n_labels; i++) {
            if (i)
                strcat(want, "\n");
            strcat(want, labels[i]);
        }
        if (!fmt || strcmp(fmt, GC_NGRAM_FORMAT))
            st = gc_fail(e, GC_EFORMAT, "%s: metadata \"format\" is %s%s%s, not \"%s\"", f->path,
                         fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "", GC_NGRAM_FORMAT);
        else if (!got || strcmp(got, want))
            st = gc_fail(e, GC_EFORMAT, "%s: its labels (metadata \"labels\") are not "
                         "gemmaclf.json's labels in the same order", f->path);
    }
    free(fmt);
    free(got);
    free(want);
    return st;
}

/* The four tensors into h (h->buckets known): shapes first, so that nothing is allocated for
 * what the file does not hold; then values, which must be finite, and idf >= 0. */
static gc_status read_head(gc_ngram_head *h, gc_st_file *f, int n_labels, gc_err *e)
{
    size_t b = h->buckets;
    const char *names[4] = {"idf_chars", "idf_words", "weight", "bias"};
    size_t numel[4] = {b, b, (size_t)n_labels * 2 * b, (size_t)n_labels};
    const gc_st_tensor *t[4] = {0};
    gc_status st = GC_OK;
    for (int i = 0; i < 4 && !st; i++)
        st = find_f32(f, names[i], numel[i], &t[i], e);
    if (st)
        return st;
    h->n_labels = n_labels;
    h->idf = malloc(2 * b * sizeof(float));
    h->weight = malloc(numel[2] * sizeof(float));
    h->bias = malloc(numel[3] * sizeof(float));
    if (!h->idf || !h->weight || !h->bias)
        return gc_fail(e, GC_ENOMEM, "out of memory for the n-gram head (%zu buckets)", b);
    float *dst[4] = {h->idf, h->idf + b, h->weight, h->bias};
    for (int i = 0; i < 4 && !st; i++)
        st = read_finite(f, t[i], dst[i], e);
    for (size_t i = 0; !st && i < 2 * b; i++)
        if (h->idf[i] < 0)
            st = gc_fail(e, GC_EFORMAT, "%s: a negative idf", f->path);
    return st;
}

gc_status gc_ngram_head_load(const char *path, const char *const *labels, int n_labels,
                             gc_ngram_head **out, gc_err *e)
{
    *out = NULL;
    gc_st_file *f = NULL;
    if (n_labels < 1 || n_labels > GC_MAX_LABELS)
        return gc_fail(e, GC_EINVAL, "n-gram head: %d labels", n_labels);
    gc_status st = gc_st_open_unmapped(path, &f, e);
    if (st)
        return st;
    gc_ngram_head *h = calloc(1, sizeof *h);
    if (!h)
        st = gc_fail(e, GC_ENOMEM, "out of memory");
    if (!st)
        st = check_metadata(f, labels, n_labels, e);
    if (!st)
        st = bucket_count(f, &h->buckets, e);
    if (!st)
        st = read_head(h, f, n_labels, e);
    if (!st)
        st = gc_st_check_unchanged(f, e); /* what was read is one state of the file */
    gc_st_close(f);
    if (st) {
        gc_ngram_head_free(h);
        return st;
    }
    *out = h;
    return GC_OK;
}

void gc_ngram_head_free(gc_ngram_head *h)
{
    if (!h)
        return;
    free(h->idf);
    free(h->weight);
    free(h->bias);
    free(h);
}

void gc_ngram_scratch_free(gc_ngram_scratch *s)
{
    free(s->keys);
    s->keys = NULL;
    s->cap = 0;
}

/* Bucket keys of the "chars" part: each word's padded byte 2..5-grams. */
static size_t char_keys(const unsigned char *t, size_t len, unsigned mask, unsigned *keys)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (is_space(t[i])) {
            i++;
            continue;
        }
        size_t k = 0;
        while (i + k < len && !is_space(t[i + k]))
            k++;
        /* padded word: position j is ' ' at 0 and k + 1, else t[i + j - 1] lower-cased */
        for (size_t g = 2; g <= 5; g++)
            for (size_t s = 0; s + g <= k + 2; s++) {
                uint64_t hsh = fnv_byte(0xcbf29ce484222325ULL, 'c');
                for (size_t j = s; j < s + g; j++)
                    hsh = fnv_byte(hsh, j == 0 || j == k + 1 ? ' ' : lower(t[i + j - 1]));
                keys[n++] = (unsigned)(hsh & mask);
            }
        i += k;
    }
    return n;
}

static uint64_t hash_run(uint64_t h, const unsigned char *t, size_t start, size_t len)
{
    for (size_t j = 0; j < len; j++)
        h = fnv_byte(h, lower(t[start + j]));
    return h;
}

/* Bucket keys of the "words" part: runs of word bytes (>= 2) and neighbouring pairs of them. */
static size_t word_keys(const unsigned char *t, size_t len, unsigned mask, unsigned *keys)
{
    const uint64_t w = fnv_byte(0xcbf29ce484222325ULL, 'w');
    uint64_t prev = 0; /* hash of "w" + the previous run, 0 before the first */
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (!is_word(lower(t[i]))) {
            i++;
            continue;
        }
        size_t k = 0;
        while (i + k < len && is_word(lower(t[i + k])))
            k++;
        if (k >= 2) {
            uint64_t run = hash_run(w, t, i, k);
            keys[n++] = (unsigned)(run & mask);
            if (prev)
                keys[n++] = (unsigned)(hash_run(fnv_byte(prev, ' '), t, i, k) & mask);
            prev = run;
        }
        i += k;
    }
    return n;
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

/* The length of the run of equal keys that starts at keys[i] (keys sorted): that n-gram's count. */
static size_t run_at(const unsigned *keys, size_t n, size_t i)
{
    size_t r = 1;
    while (i + r < n && keys[i + r] == keys[i])
        r++;
    return r;
}

/* Adds one part's unit-norm TF-IDF vector, dotted with each label's weights, to z. */
static void add_part(const gc_ngram_head *h, int part, unsigned *keys, size_t n, double *z)
{
    const float *idf = h->idf + (size_t)part * h->buckets;
    const float *w = h->weight + (size_t)part * h->buckets;
    size_t row = 2 * h->buckets, r;
    double norm2 = 0, acc[GC_MAX_LABELS] = {0};
    qsort(keys, n, sizeof *keys, cmp_unsigned);
    for (size_t i = 0; i < n; i += r) {
        r = run_at(keys, n, i);
        double v = (1.0 + log((double)r)) * idf[keys[i]];
        norm2 += v * v;
    }
    if (!(norm2 > 0))
        return;
    double inv = 1.0 / sqrt(norm2); /* as train/ngram_head.py scales: v * (1 / norm) */
    for (size_t i = 0; i < n; i += r) {
        r = run_at(keys, n, i);
        double v = (1.0 + log((double)r)) * idf[keys[i]] * inv;
        for (int l = 0; l < h->n_labels; l++)
            acc[l] += v * w[(size_t)l * row + keys[i]];
    }
    for (int l = 0; l < h->n_labels; l++)
        z[l] += acc[l];
}

gc_status gc_ngram_head_log_probs(const gc_ngram_head *h, const char *text, size_t len,
                                  gc_ngram_scratch *s, double *out, gc_err *e)
{
    /* chars: a k-byte word gives <= 4k + 2 grams; words: <= 2 per run of >= 2 bytes */
    size_t need = 6 * len + 8;
    if (need > s->cap) {
        unsigned *k = realloc(s->keys, need * sizeof *k);
        if (!k)
            return gc_fail(e, GC_ENOMEM, "out of memory for the n-grams of a %zu-byte text", len);
        s->keys = k, s->cap = need;
    }
    const unsigned char *t = (const unsigned char *)text;
    unsigned mask = (unsigned)(h->buckets - 1);
    size_t nc = char_keys(t, len, mask, s->keys);
    size_t nw = word_keys(t, len, mask, s->keys + nc);
    double mx = -INFINITY, sum = 0;
    for (int l = 0; l < h->n_labels; l++)
        out[l] = h->bias[l];
    add_part(h, 0, s->keys, nc, out);
    add_part(h, 1, s->keys + nc, nw, out);
    for (int l = 0; l < h->n_labels; l++)
        mx = fmax(mx, out[l]);
    for (int l = 0; l < h->n_labels; l++)
        sum += exp(out[l] - mx);
    for (int l = 0; l < h->n_labels; l++)
        out[l] = out[l] - mx - log(sum);
    return GC_OK;
}
