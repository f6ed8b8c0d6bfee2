/* Loading a Gemma 3 checkpoint: config.json + safetensors -> gc_weights (all F32).
 * F32 tensors are used in place from the read-only mapping. BF16/F16 tensors (and F32 ones the
 * file stores misaligned) are converted once: into a cache file in opts->cache_dir, written under
 * a temporary name, renamed into place and then mapped read-only so that every process serving
 * the same checkpoint shares the pages; or into one malloc'd block when no cache_dir is set. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_read.h"
#include "model/lowp_weights.h"
#include "model/model.h"
#include "model/safetensors.h"

/* config.json is a few KiB; the cap only stops a wrong path from being slurped. */
#define GC_CONFIG_JSON_MAX ((size_t)1 << 26)

#define CACHE_MAGIC "GCF32C01"
#define CACHE_HEADER 64
#define CACHE_ALIGN 64

struct gc_model {
    gc_config cfg;
    gc_weights w;
    char *dir;
    gc_st_set *st;
    void *conv;        /* converted tensors: mapping of the cache file or malloc'd */
    size_t conv_bytes; /* size of the mapping (0 when malloc'd) */
    size_t params;
    char *cache_dir;    /* gc_model_opts.cache_dir, kept for the reduced-precision copies */
    uint64_t files_key; /* identity of the weight files (names the cache files) */
    /* The checkpoint's own BF16 linear-layer tensors, [layer][GC_LIN_*] (NULL where stored
     * otherwise): the bf16 engine uses them in place. */
    const uint16_t *(*stored_bf16)[GC_LIN_N];
    /* bf16 / int8 copies of the linear layers, built on first use (gc_model_lowp) */
    pthread_mutex_t lowp_lock;
    gc_lowp_weights *lowp[3];
};

/* One tensor the model needs (an entry of the load plan): its name, expected shape and where
 * its pointer goes. */
typedef struct needed_tensor {
    char name[160];
    int ndim;
    int64_t shape[2];
    const float **dst;
    const gc_st_tensor *t;
    size_t conv_off; /* offset in the converted block, or SIZE_MAX when used in place */
} needed_tensor;

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000 | (man << 13); /* inf / nan */
    } else if (exp) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) { /* subnormal: normalise */
        int sh = 0;
        while (!(man & 0x400)) {
            man <<= 1;
            sh++;
        }
        u = sign | ((uint32_t)(113 - sh) << 23) | ((man & 0x3ff) << 13);
    } else {
        u = sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void convert(const gc_st_tensor *t, float *dst)
{
    const unsigned char *p = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        if (t->dtype == GC_ST_F32) {
            memcpy(&dst[i], p + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == GC_ST_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
        }
    }
}

static void expect_tensor(needed_tensor *needed, int *n, const char *name, int ndim, int64_t d0,
                          int64_t d1, const float **dst)
{
    needed_tensor *w = &needed[(*n)++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->ndim = ndim;
    w->shape[0] = d0;
    w->shape[1] = d1;
    w->dst = dst;
    w->t = NULL;
    w->conv_off = SIZE_MAX;
}

/* Where the text model's tensors live: plain causal LM, or inside a multimodal checkpoint. */
static const char *find_prefix(const gc_st_set *s)
{
    static const char *prefixes[] = {"model.", "model.language_model.", "language_model.model.",
                                     "language_model."};
    char name[160];
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(name, sizeof name, "%sembed_tokens.weight", prefixes[i]);
        if (gc_st_set_find(s, name, NULL))
            return prefixes[i];
    }
    return NULL;
}

/* Lists the tensors the config asks for, under the checkpoint's name prefix. */
static gc_status list_needed_tensors(gc_model *m, needed_tensor *needed, int *n_needed, gc_err *e)
{
    const gc_config *c = &m->cfg;
    gc_weights *W = &m->w;
    const char *pre = find_prefix(m->st);
    if (!pre)
        return gc_fail(e, GC_EFORMAT, "tensor 'model.embed_tokens.weight' missing (also looked "
                                      "under multimodal prefixes)");
    int64_t H = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
    int64_t QD = (int64_t)c->n_heads * D, KD = (int64_t)c->n_kv_heads * D;
    char nm[160];
    int n = 0;
    snprintf(nm, sizeof nm, "%sembed_tokens.weight", pre);
    expect_tensor(needed, &n, nm, 2, c->vocab_size, H, &W->embed);
    snprintf(nm, sizeof nm, "%snorm.weight", pre);
    expect_tensor(needed, &n, nm, 1, H, 0, &W->final_norm);
    for (int l = 0; l < c->n_layers; l++) {
        gc_layer_weights *lw = &W->layers[l];
        const struct {
            const char *n;
            int nd;
            int64_t d0, d1;
            const float **dst;
        } per[] = {
            {"input_layernorm", 1, H, 0, &lw->input_norm},
            {"post_attention_layernorm", 1, H, 0, &lw->post_attn_norm},
            {"pre_feedforward_layernorm", 1, H, 0, &lw->pre_ffn_norm},
            {"post_feedforward_layernorm", 1, H, 0, &lw->post_ffn_norm},
            {"self_attn.q_norm", 1, D, 0, &lw->q_norm},
            {"self_attn.k_norm", 1, D, 0, &lw->k_norm},
            {"self_attn.q_proj", 2, QD, H, &lw->wq},
            {"self_attn.k_proj", 2, KD, H, &lw->wk},
            {"self_attn.v_proj", 2, KD, H, &lw->wv},
            {"self_attn.o_proj", 2, H, QD, &lw->wo},
            {"mlp.gate_proj", 2, I, H, &lw->w_gate},
            {"mlp.up_proj", 2, I, H, &lw->w_up},
            {"mlp.down_proj", 2, H, I, &lw->w_down},
        };
        for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
            snprintf(nm, sizeof nm, "%slayers.%d.%s.weight", pre, l, per[i].n);
            expect_tensor(needed, &n, nm, per[i].nd, per[i].d0, per[i].d1, per[i].dst);
        }
    }
    /* lm_head: a separate tensor wins when present; otherwise tied (unless the config says the
     * embeddings are not tied, then the checkpoint is incomplete). */
    const char *heads[] = {"lm_head.weight", "language_model.lm_head.weight"};
    int have_head = 0;
    for (int i = 0; i < 2 && !have_head; i++)
        if (gc_st_set_find(m->st, heads[i], NULL)) {
            expect_tensor(needed, &n, heads[i], 2, c->vocab_size, H, &W->lm_head);
            have_head = 1;
        }
    if (!have_head && !c->tie_word_embeddings)
        return gc_fail(e, GC_EFORMAT,
                       "tensor 'lm_head.weight' missing and tie_word_embeddings is false");
    *n_needed = n;
    return GC_OK;
}

static gc_status shape_mismatch(const gc_st_file *file, const needed_tensor *w, gc_err *e)
{
    const gc_st_tensor *t = w->t;
    char got[128] = "", exp[64];
    for (int d = 0; d < t->ndim && d < 4; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                 (long long)t->shape[d]);
    if (w->ndim == 1)
        snprintf(exp, sizeof exp, "%lld", (long long)w->shape[0]);
    else
        snprintf(exp, sizeof exp, "%lld, %lld", (long long)w->shape[0], (long long)w->shape[1]);
    return gc_fail(e, GC_EFORMAT, "%s: tensor '%s': shape [%s] does not match the config [%s]",
                   file->path, w->name, got, exp);
}

/* Finds each needed tensor in the checkpoint and checks its dtype and shape. */
static gc_status find_needed_tensors(gc_model *m, needed_tensor *needed, int n_needed, gc_err *e)
{
    for (int i = 0; i < n_needed; i++) {
        needed_tensor *w = &needed[i];
        const gc_st_file *file = NULL;
        w->t = gc_st_set_find(m->st, w->name, &file);
        if (!w->t)
            return gc_fail(e, GC_EFORMAT, "tensor '%s' missing", w->name);
        const gc_st_tensor *t = w->t;
        if (t->dtype != GC_ST_F32 && t->dtype != GC_ST_BF16 && t->dtype != GC_ST_F16)
            return gc_fail(e, GC_EUNSUPPORTED, "%s: tensor '%s': dtype %s (need F32, BF16 or F16)",
                           file->path, w->name, gc_st_dtype_name(t->dtype));
        int ok = t->ndim == w->ndim;
        for (int d = 0; ok && d < w->ndim; d++)
            ok = t->shape[d] == w->shape[d];
        if (!ok)
            return shape_mismatch(file, w, e);
        m->params += t->numel;
    }
    return GC_OK;
}

/* 64-bit FNV-1a over the identity of every weights file (path, size, mtime). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t files_key(const gc_st_set *s)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < s->n_files; i++) {
        char real[PATH_MAX];
        const char *p = realpath(s->files[i]->path, real) ? real : s->files[i]->path;
        h = fnv(h, p, strlen(p) + 1);
        uint64_t sz = s->files[i]->size;
        int64_t mt = s->files[i]->mtime_ns;
        h = fnv(h, &sz, sizeof sz);
        h = fnv(h, &mt, sizeof mt);
    }
    return h;
}

static uint64_t cache_key(const gc_st_set *s, size_t total)
{
    return fnv(files_key(s), &total, sizeof total);
}

/* Which linear-layer tensors the checkpoint stores as (2-byte aligned) BF16. */
static gc_status note_stored_bf16(gc_model *m, gc_err *e)
{
    static const char *const names[GC_LIN_N] = {
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
    const gc_config *c = &m->cfg;
    const char *pre = find_prefix(m->st);
    m->stored_bf16 = calloc((size_t)c->n_layers, sizeof *m->stored_bf16);
    if (!m->stored_bf16)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    for (int l = 0; l < c->n_layers && pre; l++)
        for (int j = 0; j < GC_LIN_N; j++) {
            char nm[160];
            snprintf(nm, sizeof nm, "%slayers.%d.%s.weight", pre, l, names[j]);
            const gc_st_tensor *t = gc_st_set_find(m->st, nm, NULL);
            if (t && t->dtype == GC_ST_BF16 && ((uintptr_t)t->data & 1) == 0)
                m->stored_bf16[l][j] = t->data;
        }
    return GC_OK;
}

static void fill(needed_tensor *needed, int n_needed, unsigned char *base)
{
    for (int i = 0; i < n_needed; i++)
        if (needed[i].conv_off != SIZE_MAX)
            convert(needed[i].t, (float *)(base + needed[i].conv_off));
}

static gc_status map_cache(gc_model *m, const char *path, size_t total, int *ok, gc_err *e)
{
    *ok = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return GC_OK;
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (size_t)sb.st_size == total) {
        void *p = mmap(NULL, total, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return gc_fail(e, GC_EIO, "%s: mmap failed: %s", path, strerror(errno));
        }
        if (!memcmp(p, CACHE_MAGIC, 8)) {
            m->conv = p;
            m->conv_bytes = total;
            *ok = 1;
        } else {
            munmap(p, total);
        }
    }
    close(fd);
    return GC_OK;
}

static gc_status write_cache(needed_tensor *needed, int n_needed, const char *dir, const char *path, size_t total,
                             gc_err *e)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.gemmaclf-tmp-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return gc_fail(e, GC_EIO, "cache dir %s: cannot create a file: %s", dir, strerror(errno));
    gc_status st = GC_OK;
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)total) != 0 ||
        (p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        st = gc_fail(e, GC_EIO, "%s: cannot size or map: %s", tmp, strerror(errno));
        goto done;
    }
    fill(needed, n_needed, p);
    memcpy(p, CACHE_MAGIC, 8); /* last, so a torn file never looks valid */
    if (msync(p, total, MS_SYNC) != 0 || fchmod(fd, 0644) != 0 || rename(tmp, path) != 0)
        st = gc_fail(e, GC_EIO, "%s: cannot write cache: %s", path, strerror(errno));
done:
    if (p != MAP_FAILED)
        munmap(p, total);
    close(fd);
    if (st)
        unlink(tmp);
    return st;
}

static gc_status convert_all(gc_model *m, needed_tensor *needed, int n_needed, const gc_model_opts *opts, gc_err *e)
{
    size_t total = CACHE_HEADER;
    for (int i = 0; i < n_needed; i++) {
        const gc_st_tensor *t = needed[i].t;
        if (t->dtype == GC_ST_F32 && ((uintptr_t)t->data & 3) == 0)
            continue;
        needed[i].conv_off = total;
        total += (t->numel * sizeof(float) + CACHE_ALIGN - 1) / CACHE_ALIGN * CACHE_ALIGN;
    }
    if (total == CACHE_HEADER)
        return GC_OK; /* everything used in place */
    gc_status st;
    if (opts && opts->cache_dir && *opts->cache_dir) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/gemmaclf-%016llx.f32", opts->cache_dir,
                 (unsigned long long)cache_key(m->st, total));
        int ok;
        if ((st = map_cache(m, path, total, &ok, e)))
            return st;
        if (!ok) { /* first user of this checkpoint: convert, publish atomically, map */
            if ((st = write_cache(needed, n_needed, opts->cache_dir, path, total, e)) ||
                (st = map_cache(m, path, total, &ok, e)))
                return st;
            if (!ok)
                return gc_fail(e, GC_EIO, "%s: cache file vanished or is invalid", path);
        }
    } else {
        m->conv = aligned_alloc(CACHE_ALIGN, total);
        if (!m->conv)
            return gc_fail(e, GC_ENOMEM, "out of memory converting weights (%zu bytes)", total);
        fill(needed, n_needed, m->conv);
    }
    for (int i = 0; i < n_needed; i++)
        if (needed[i].conv_off != SIZE_MAX)
            *needed[i].dst = (const float *)((const unsigned char *)m->conv + needed[i].conv_off);
    return GC_OK;
}

gc_status gc_model_load(const char *dir, const gc_model_opts *opts, gc_model **out, gc_err *e)
{
    *out = NULL;
    gc_model *m = calloc(1, sizeof *m);
    needed_tensor *needed = NULL;
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return gc_fail(e, GC_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&m->lowp_lock, NULL);
    if (opts && opts->cache_dir && *opts->cache_dir && !(m->cache_dir = strdup(opts->cache_dir))) {
        gc_model_free(m);
        return gc_fail(e, GC_ENOMEM, "out of memory");
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *json;
    gc_status st = gc_read_file(path, GC_CONFIG_JSON_MAX, &json, &len, e);
    if (!st)
        st = gc_config_parse(json, len, &m->cfg, e);
    free(json);
    if (st) {
        if (json)
            gc_err_prefix(e, "%s", path);
        goto fail;
    }
    if ((st = gc_st_set_open(dir, &m->st, e)))
        goto fail;
    needed = calloc((size_t)m->cfg.n_layers * 13 + 4, sizeof *needed);
    if (!needed) {
        st = gc_fail(e, GC_ENOMEM, "out of memory");
        goto fail;
    }
    int n_needed = 0;
    if ((st = list_needed_tensors(m, needed, &n_needed, e)) || (st = find_needed_tensors(m, needed, n_needed, e)) ||
        (st = convert_all(m, needed, n_needed, opts, e)) || (st = note_stored_bf16(m, e))) {
        if (!strstr(e ? e->msg : "", dir))
            gc_err_prefix(e, "%s", dir);
        goto fail;
    }
    for (int i = 0; i < n_needed; i++)
        if (needed[i].conv_off == SIZE_MAX)
            *needed[i].dst = needed[i].t->data;
    if (!m->w.lm_head)
        m->w.lm_head = m->w.embed;
    m->files_key = files_key(m->st);
    free(needed);
    *out = m;
    return GC_OK;
fail:
    free(needed);
    gc_model_free(m);
    return st;
}

void gc_model_free(gc_model *m)
{
    if (!m)
        return;
    for (int p = 0; p < 3; p++)
        gc_lowp_weights_free(m->lowp[p]);
    pthread_mutex_destroy(&m->lowp_lock);
    free(m->stored_bf16);
    free(m->cache_dir);
    if (m->conv_bytes)
        munmap(m->conv, m->conv_bytes);
    else
        free(m->conv);
    gc_st_set_close(m->st);
    free(m->dir);
    free(m);
}

const gc_config *gc_model_config(const gc_model *m) { return &m->cfg; }
const gc_weights *gc_model_weights(const gc_model *m) { return &m->w; }
const char *gc_model_dir(const gc_model *m) { return m->dir; }
size_t gc_model_param_count(const gc_model *m) { return m->params; }
size_t gc_model_weight_bytes(const gc_model *m) { return m->params * sizeof(float); }

gc_status gc_model_lowp(const gc_model *cm, gc_precision p, const gc_lowp_weights **out,
                        gc_err *e)
{
    /* Built once, under the model's lock: the model is otherwise read-only and may be shared
     * by threads. */
    gc_model *m = (gc_model *)cm;
    *out = NULL;
    if (p != GC_PRECISION_BF16 && p != GC_PRECISION_INT8)
        return gc_fail(e, GC_EINVAL, "no reduced-precision weights for %s", gc_precision_name(p));
    gc_status st = GC_OK;
    pthread_mutex_lock(&m->lowp_lock);
    if (!m->lowp[p]) {
        const char *name = gc_precision_name(p);
        st = gc_lowp_weights_build(&m->cfg, &m->w,
                                   (const uint16_t *const(*)[GC_LIN_N])m->stored_bf16, p,
                                   m->cache_dir, fnv(m->files_key, name, strlen(name)),
                                   &m->lowp[p], e);
    }
    *out = m->lowp[p];
    pthread_mutex_unlock(&m->lowp_lock);
    if (st)
        gc_err_prefix(e, "%s", m->dir);
    return st;
}
