/* Helpers shared by the engine tests: temporary model directories assembled from the reference
 * fixtures by symlinks, and typed access to reference tensors. */
#ifndef GC_TEST_REF_H
#define GC_TEST_REF_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/safetensors.h"

__attribute__((unused)) static const char *gct_fixtures[] = {"tiny_gqa_f32", "tiny_mqa_bf16_scaled", "tiny_untied_tok4k"};
#define GCT_N_FIXTURES 3

static inline char *gct_abs(const char *rel, char *buf)
{
    if (!realpath(rel, buf))
        snprintf(buf, PATH_MAX, "%s", rel);
    return buf;
}

/* A fresh directory holding symlinks: model.safetensors and config.json (from `config`). */
static inline int gct_model_dir(const char *fixture, const char *config, char *dir)
{
    snprintf(dir, PATH_MAX, "/tmp/gctest-XXXXXX");
    if (!mkdtemp(dir))
        return 0;
    char rel[256], abs[PATH_MAX], link[PATH_MAX + 32];
    snprintf(rel, sizeof rel, "reference/hf-tiny/%s/model.safetensors", fixture);
    snprintf(link, sizeof link, "%s/model.safetensors", dir);
    if (symlink(gct_abs(gct_shared(rel), abs), link))
        return 0;
    snprintf(rel, sizeof rel, "reference/hf-tiny/%s/%s", fixture, config);
    snprintf(link, sizeof link, "%s/config.json", dir);
    return symlink(gct_abs(gct_shared(rel), abs), link) == 0;
}

/* Removes the plain files of a temporary directory and the directory itself. */
static inline void gct_rmdir(const char *dir)
{
    char cmd[PATH_MAX + 32];
    if (strncmp(dir, "/tmp/gctest-", 12) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
}

/* A reference tensor as newly allocated int32 (from I64) or float (F32) data. */
static inline int32_t *gct_ids(const gc_st_file *f, const char *name, int *n)
{
    const gc_st_tensor *t = gc_st_find(f, name);
    if (!t || t->dtype != GC_ST_I64)
        return NULL;
    int32_t *v = malloc(t->numel * sizeof *v + 4);
    for (size_t i = 0; i < t->numel; i++) {
        int64_t x;
        memcpy(&x, (const char *)t->data + 8 * i, 8);
        v[i] = (int32_t)x;
    }
    *n = (int)t->numel;
    return v;
}

static inline float *gct_f32(const gc_st_file *f, const char *name, size_t *n)
{
    const gc_st_tensor *t = gc_st_find(f, name);
    if (!t || t->dtype != GC_ST_F32)
        return NULL;
    float *v = malloc(t->nbytes + 4);
    memcpy(v, t->data, t->nbytes);
    *n = t->numel;
    return v;
}

/* max |a - b| / max |ref| over n values */
static inline double gct_rel_err(const float *got, const float *ref, size_t n)
{
    double mx = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        double r = ref[i] < 0 ? -ref[i] : ref[i];
        double d = got[i] - ref[i];
        d = d < 0 ? -d : d;
        mx = r > mx ? r : mx;
        md = d > md || d != d ? d : md;
    }
    return mx > 0 ? md / mx : md;
}

static inline int gct_argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

#endif

/* ---- writing small safetensors files for tests ---- */
typedef struct gct_wt {
    const char *name;
    const char *dtype; /* as written in the header (may be bogus on purpose) */
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} gct_wt;

/* Writes tensors back to back; returns 0 on failure. */
static inline int gct_write_st(const char *path, const gct_wt *t, int n)
{
    char *hdr = malloc(64 + (size_t)n * 400);
    size_t off = 0, hl = 0;
    hl += sprintf(hdr + hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        hl += sprintf(hdr + hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            hl += sprintf(hdr + hl, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        hl += sprintf(hdr + hl, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].nbytes);
        off += t[i].nbytes;
    }
    hl += sprintf(hdr + hl, "}");
    while (hl % 8)
        hdr[hl++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return 0;
    }
    uint64_t len = hl;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(len >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, hl, f);
    for (int i = 0; i < n; i++)
        fwrite(t[i].data, 1, t[i].nbytes, f);
    free(hdr);
    return fclose(f) == 0;
}

/* Raw bytes: 8-byte header length `hlen`, header text, then data. */
static inline int gct_write_raw(const char *path, uint64_t hlen, const char *hdr, size_t hdr_bytes,
                                const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, hdr_bytes, f);
    if (n)
        fwrite(data, 1, n, f);
    return fclose(f) == 0;
}

static inline int gct_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fputs(text, f);
    return fclose(f) == 0;
}
