#include "classifier/ngram_head.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "classifier/labels_config.h"
#include "common/cache_file.h"
#include "common/fnv.h"
#include "model/safetensors.h"

/* 2^22 buckets per part is 16x the bundled head's; the cap keeps a hostile file from asking for
 * gigabytes (its tensors are validated against the file size before anything is allocated). */
#define GC_NGRAM_MAX_BITS 22

struct gc_ngram_head {
    size_t buckets;       /* B, a power of two */
    int n_labels;
    const float *idf;     /* [2][B]: chars, then words */
    const float *weight;  /* [n_labels][2B] */
    const float *bias;    /* [n_labels] */
    void *data;           /* the three, contiguous: a mapping of the cache copy or malloc'd */
    size_t map_bytes;     /* size of the mapping; 0 when malloc'd */
};

/* The copy in the cache directory (common/cache_file.h): its header, then idf, weight, bias. */
#define NGRAM_CACHE_MAGIC "GCNGRM01"

/* Values are read and checked through a buffer of this many floats. */
#define NGRAM_CHUNK ((size_t)1 << 16)

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

/* Where the checked values go: memory, or the cache copy being written at offset off. */
typedef struct sink {
    float *mem;
    int fd;
    const char *path;
    uint64_t off;
} sink;

/* Copies tensor t into the sink in chunks; every value must be finite (and >= 0 if nonneg). */
static gc_status copy_checked(gc_st_file *f, const gc_st_tensor *t, int nonneg, sink *k,
                              float *buf, gc_err *e)
{
    gc_status st = GC_OK;
    for (size_t at = 0; at < t->numel && !st; at += NGRAM_CHUNK) {
        size_t n = t->numel - at < NGRAM_CHUNK ? t->numel - at : NGRAM_CHUNK;
        float *dst = k->mem ? k->mem + at : buf;
        if ((st = gc_st_read(f, t, at * sizeof(float), dst, n * sizeof(float), e)))
            break;
        for (size_t i = 0; i < n && !st; i++)
            if (!isfinite(dst[i]) || (nonneg && dst[i] < 0))
                st = gc_fail(e, GC_EFORMAT, "%s: tensor \"%s\" holds a %s at %zu", f->path,
                             t->name, isfinite(dst[i]) ? "negative idf" : "non-finite value",
                             at + i);
        if (!st && !k->mem)
            st = gc_cache_write_at(k->fd, k->path, "n-gram head cache",
                                   k->off + at * sizeof(float), buf, n * sizeof(float), e);
    }
    if (k->mem)
        k->mem += t->numel;
    else
        k->off += t->numel * sizeof(float);
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

/* The head's file while it is loaded: its four tensors, shapes checked. */
typedef struct head_src {
    gc_st_file *f;
    const gc_st_tensor *t[4]; /* idf_chars, idf_words, weight, bias: contiguous in h->data */
    size_t floats;
} head_src;

static gc_status find_tensors(head_src *s, size_t b, int n_labels, gc_err *e)
{
    const char *names[4] = {"idf_chars", "idf_words", "weight", "bias"};
    size_t numel[4] = {b, b, (size_t)n_labels * 2 * b, (size_t)n_labels};
    gc_status st = GC_OK;
    s->floats = 0;
    for (int i = 0; i < 4 && !st; i++) {
        st = find_f32(s->f, names[i], numel[i], &s->t[i], e);
        s->floats += numel[i];
    }
    return st;
}

/* All four tensors, checked, into the sink; then the file must be as it was when opened (what
 * was read is one state of it). */
static gc_status copy_all(const head_src *s, sink *k, gc_err *e)
{
    float *buf = k->mem ? NULL : malloc(NGRAM_CHUNK * sizeof *buf);
    gc_status st = k->mem || buf ? GC_OK : gc_fail(e, GC_ENOMEM, "out of memory");
    for (int i = 0; i < 4 && !st; i++)
        st = copy_checked(s->f, s->t[i], i < 2, k, buf, e);
    free(buf);
    return st ? st : gc_st_check_unchanged(s->f, e);
}

static gc_status fill_cache(void *arg, int fd, const char *path, gc_err *e)
{
    sink k = {.fd = fd, .path = path, .off = GC_CACHE_HEADER};
    return copy_all(arg, &k, e);
}

/* The copy's name: the file's identity and header (labels and shapes included). */
static uint64_t cache_key(const gc_st_file *f)
{
    uint64_t v[] = {f->id.dev, f->id.ino, f->id.size, (uint64_t)f->id.mtime_ns,
                    (uint64_t)f->id.ctime_ns, f->header_hash};
    uint64_t h = gc_fnv1a(GC_FNV_OFFSET, v, sizeof v);
    return gc_fnv1a(h, NGRAM_CACHE_MAGIC, strlen(NGRAM_CACHE_MAGIC));
}

/* The values into h: a shared mapping of the copy in cache_dir (written first if needed), or,
 * without a cache directory, memory of this process's own. */
static gc_status load_values(gc_ngram_head *h, const head_src *s, const char *cache_dir,
                             gc_err *e)
{
    size_t bytes = s->floats * sizeof(float);
    gc_status st;
    if (cache_dir && *cache_dir) {
        char src[PATH_MAX];
        if (!realpath(s->f->path, src))
            snprintf(src, sizeof src, "%s", s->f->path);
        gc_cache_file cf = {.dir = cache_dir, .magic = NGRAM_CACHE_MAGIC, .suffix = "ngram",
                            .what = "n-gram head cache", .key = cache_key(s->f),
                            .total = GC_CACHE_HEADER + bytes, .source = src,
                            .fill = fill_cache, .arg = (void *)s};
        void *map;
        if ((st = gc_cache_file_map(&cf, &map, e)))
            return st;
        h->data = map;
        h->map_bytes = cf.total;
        h->idf = (const float *)((const unsigned char *)map + GC_CACHE_HEADER);
    } else {
        if (!(h->data = malloc(bytes)))
            return gc_fail(e, GC_ENOMEM, "out of memory for the n-gram head (%zu buckets)",
                           h->buckets);
        sink k = {.mem = h->data, .fd = -1};
        if ((st = copy_all(s, &k, e)))
            return st;
        h->idf = h->data;
    }
    h->weight = h->idf + 2 * h->buckets;
    h->bias = h->weight + (size_t)h->n_labels * 2 * h->buckets;
    return GC_OK;
}

gc_status gc_ngram_head_load(const char *path, const char *const *labels, int n_labels,
                             const char *cache_dir, gc_ngram_head **out, gc_err *e)
{
    *out = NULL;
    head_src s = {0};
    if (n_labels < 1 || n_labels > GC_MAX_LABELS)
        return gc_fail(e, GC_EINVAL, "n-gram head: %d labels", n_labels);
    gc_status st = gc_st_open_unmapped(path, &s.f, e);
    if (st)
        return st;
    gc_ngram_head *h = calloc(1, sizeof *h);
    if (!h)
        st = gc_fail(e, GC_ENOMEM, "out of memory");
    if (!st)
        st = check_metadata(s.f, labels, n_labels, e);
    if (!st)
        st = bucket_count(s.f, &h->buckets, e);
    if (!st) {
        h->n_labels = n_labels;
        st = find_tensors(&s, h->buckets, n_labels, e);
    }
    if (!st)
        st = load_values(h, &s, cache_dir, e);
    gc_st_close(s.f);
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
    if (h->map_bytes)
        munmap(h->data, h->map_bytes);
    else
        free(h->data);
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
                uint64_t hsh = gc_fnv1a_byte(GC_FNV_OFFSET, 'c');
                for (size_t j = s; j < s + g; j++)
                    hsh = gc_fnv1a_byte(hsh, j == 0 || j == k + 1 ? ' ' : lower(t[i + j - 1]));
                keys[n++] = (unsigned)(hsh & mask);
            }
        i += k;
    }
    return n;
}

static uint64_t hash_run(uint64_t h, const unsigned char *t, size_t start, size_t len)
{
    for (size_t j = 0; j < len; j++)
        h = gc_fnv1a_byte(h, lower(t[start + j]));
    return h;
}

/* Bucket keys of the "words" part: runs of word bytes (>= 2) and neighbouring pairs of them. */
static size_t word_keys(const unsigned char *t, size_t len, unsigned mask, unsigned *keys)
{
    const uint64_t w = gc_fnv1a_byte(GC_FNV_OFFSET, 'w');
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
                keys[n++] = (unsigned)(hash_run(gc_fnv1a_byte(prev, ' '), t, i, k) & mask);
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
