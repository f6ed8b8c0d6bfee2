/* Loading a Gemma 3 checkpoint: config.json + safetensors -> gc_weights (all F32).
 *
 * Where the F32 weights live, by gc_model_opts:
 *   cache_dir set   every tensor (F32 too) is copied or converted, with read(), into one F32
 *                   cache file in cache_dir, written under a temporary name (space allocated
 *                   first, every write checked, fsync'ed), renamed into place and mapped
 *                   read-only, so every process serving the same checkpoint shares the pages.
 *                   The user's files are never mapped: truncating or rewriting them in place
 *                   cannot fault a process that uses the model. The file is named after the
 *                   identity of the source files (device, inode, size, mtime, ctime), their
 *                   headers and the tensor layout, so a changed checkpoint gets a new copy; the
 *                   copy made for an older state of the same directory is then removed.
 *   map_files       F32 tensors are used in place from read-only mappings of the user's files
 *                   (one-shot tools: a truncated file faults only that process); BF16/F16 and
 *                   misaligned F32 ones are converted into one malloc'd block.
 *   neither         every tensor is read into one malloc'd block (private to the process).
 * The bf16 / int8 copies of the linear layers (gc_model_lowp, lowp_weights.c) are made from
 * these F32 weights on first use, into cache_dir when set (named after the same file
 * identity), else into memory. */
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

#include "common/cache_file.h"
#include "common/fnv.h"
#include "common/file_id.h"
#include "common/file_read.h"
#include "model/lowp_weights.h"
#include "model/model.h"
#include "model/safetensors.h"

/* config.json is a few KiB; the cap only stops a wrong path from being slurped. */
#define GC_CONFIG_JSON_MAX ((size_t)1 << 26)

/* The cache file (common/cache_file.h): its header, then every tensor as F32 at a
 * CACHE_ALIGN-aligned offset. */
#define CACHE_MAGIC "GCF32C02"
#define CACHE_ALIGN 64

/* Tensors are copied through buffers of this many elements. */
#define CHUNK_ELEMS ((size_t)1 << 20)

struct gc_model {
    gc_config cfg;
    gc_weights w;
    char *dir;
    gc_st_set *st;
    void *conv;        /* the F32 weights owned here: mapping of the cache file or malloc'd */
    size_t conv_bytes; /* size of the mapping (0 when malloc'd) */
    size_t params;
    gc_file_watch files; /* config.json, the shard index (present or not), the shards */
    char *cache_dir;     /* gc_model_opts.cache_dir, kept for the reduced-precision copies */
    uint64_t files_key;  /* identity of the weight files (names the bf16 / int8 cache files) */
    /* The checkpoint's own BF16 linear-layer tensors, [layer][GC_LIN_*] (NULL where stored
     * otherwise, and everywhere unless the files are mapped: map_files): the bf16 engine uses
     * them in place. */
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
    const gc_st_file *file; /* holding t */
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

static void convert(gc_st_dtype dtype, const unsigned char *p, size_t n, float *dst)
{
    if (dtype == GC_ST_F32) {
        memcpy(dst, p, n * sizeof *dst);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = dtype == GC_ST_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
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
        w->file = file;
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

/* The identity and header of every source file (also names the bf16 / int8 copies). */
static uint64_t files_key(const gc_st_set *s)
{
    uint64_t h = gc_fnv1a(GC_FNV_OFFSET, CACHE_MAGIC, 8);
    for (int i = 0; i < s->n_files; i++) {
        const gc_file_id *id = &s->files[i]->id;
        uint64_t v[] = {id->dev, id->ino, id->size, (uint64_t)id->mtime_ns,
                        (uint64_t)id->ctime_ns, s->files[i]->header_hash};
        h = gc_fnv1a(h, v, sizeof v);
    }
    return h;
}

/* The cache file's name: the identity and header of every source file, the tensor layout. */
static uint64_t cache_key(const gc_st_set *s, const needed_tensor *needed, int n_needed,
                          size_t total)
{
    uint64_t h = files_key(s);
    for (int i = 0; i < n_needed; i++) {
        uint64_t v[] = {(uint64_t)needed[i].t->dtype, needed[i].t->offset, needed[i].conv_off};
        h = gc_fnv1a(h, needed[i].name, strlen(needed[i].name) + 1);
        h = gc_fnv1a(h, v, sizeof v);
    }
    return gc_fnv1a(h, &total, sizeof total);
}

/* Which linear-layer tensors the checkpoint stores as (2-byte aligned) BF16 in a mapping of
 * its files; unmapped files (a server's) have none. */
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
            if (t && t->data && t->dtype == GC_ST_BF16 && ((uintptr_t)t->data & 1) == 0)
                m->stored_bf16[l][j] = t->data;
        }
    return GC_OK;
}

/* Where the F32 weights go while they are copied: memory, or the cache file being written. */
typedef struct sink {
    unsigned char *mem;
    int fd;
    const char *path;
} sink;

/* Copies every tensor with a conv_off into the sink as F32, reading the sources in chunks. */
static gc_status fill(const needed_tensor *needed, int n_needed, const sink *k, gc_err *e)
{
    unsigned char *raw = malloc(CHUNK_ELEMS * 4);
    float *f32 = malloc(CHUNK_ELEMS * sizeof *f32);
    gc_status st = raw && f32 ? GC_OK : gc_fail(e, GC_ENOMEM, "out of memory copying weights");
    for (int i = 0; i < n_needed && !st; i++) {
        const gc_st_tensor *t = needed[i].t;
        size_t esz = gc_st_dtype_size(t->dtype);
        if (needed[i].conv_off == SIZE_MAX)
            continue;
        for (size_t at = 0; at < t->numel && !st; at += CHUNK_ELEMS) {
            size_t n = t->numel - at < CHUNK_ELEMS ? t->numel - at : CHUNK_ELEMS;
            uint64_t off = needed[i].conv_off + at * sizeof(float);
            float *dst = k->mem ? (float *)(k->mem + off) : f32;
            if ((st = gc_st_read(needed[i].file, t, at * esz, raw, n * esz, e)))
                break;
            convert(t->dtype, raw, n, dst);
            if (!k->mem)
                st = gc_cache_write_at(k->fd, k->path, "weight cache", off, f32,
                                       n * sizeof *f32, e);
        }
    }
    free(raw);
    free(f32);
    return st;
}

/* Fails when a source file was written, truncated or replaced while it was being read. */
static gc_status sources_unchanged(const gc_st_set *s, gc_err *e)
{
    for (int i = 0; i < s->n_files; i++) {
        gc_status st = gc_st_check_unchanged(s->files[i], e);
        if (st)
            return st;
    }
    return GC_OK;
}

typedef struct cache_fill {
    const gc_model *m;
    const needed_tensor *needed;
    int n_needed;
} cache_fill;

/* gc_cache_file's fill: the tensors, from one unchanged state of the sources. */
static gc_status fill_cache(void *arg, int fd, const char *path, gc_err *e)
{
    const cache_fill *a = arg;
    sink k = {.mem = NULL, .fd = fd, .path = path};
    gc_status st = fill(a->needed, a->n_needed, &k, e);
    return st ? st : sources_unchanged(a->m->st, e);
}

/* The shared F32 copy for this checkpoint (common/cache_file.h): mapped, written first if
 * needed. */
static gc_status use_cache(gc_model *m, const needed_tensor *needed, int n_needed,
                           const char *cache_dir, size_t total, gc_err *e)
{
    char src_dir[PATH_MAX];
    if (!realpath(m->dir, src_dir))
        snprintf(src_dir, sizeof src_dir, "%s", m->dir);
    cache_fill a = {.m = m, .needed = needed, .n_needed = n_needed};
    gc_cache_file cf = {.dir = cache_dir, .magic = CACHE_MAGIC, .suffix = "f32",
                        .what = "weight cache", .key = cache_key(m->st, needed, n_needed, total),
                        .total = total, .source = src_dir, .fill = fill_cache, .arg = &a};
    void *p;
    gc_status st = gc_cache_file_map(&cf, &p, e);
    if (!st) {
        m->conv = p;
        m->conv_bytes = total;
    }
    return st;
}

static gc_status convert_all(gc_model *m, needed_tensor *needed, int n_needed,
                             const gc_model_opts *opts, gc_err *e)
{
    const char *cache_dir = opts && opts->cache_dir && *opts->cache_dir ? opts->cache_dir : NULL;
    int in_place = !cache_dir && opts && opts->map_files;
    size_t total = cache_dir ? GC_CACHE_HEADER : 0;
    for (int i = 0; i < n_needed; i++) {
        const gc_st_tensor *t = needed[i].t;
        if (in_place && t->dtype == GC_ST_F32 && ((uintptr_t)t->data & 3) == 0)
            continue;
        needed[i].conv_off = total;
        total += (t->numel * sizeof(float) + CACHE_ALIGN - 1) / CACHE_ALIGN * CACHE_ALIGN;
    }
    gc_status st = GC_OK;
    if (total == 0)
        return GC_OK; /* everything used in place */
    if (cache_dir) {
        st = use_cache(m, needed, n_needed, cache_dir, total, e);
    } else {
        sink k = {.mem = aligned_alloc(CACHE_ALIGN, total), .fd = -1, .path = NULL};
        if (!k.mem)
            return gc_fail(e, GC_ENOMEM, "out of memory for the weights (%zu bytes)", total);
        m->conv = k.mem;
        if (!(st = fill(needed, n_needed, &k, e)))
            st = sources_unchanged(m->st, e);
    }
    if (st)
        return st;
    for (int i = 0; i < n_needed; i++)
        if (needed[i].conv_off != SIZE_MAX)
            *needed[i].dst = (const float *)((const unsigned char *)m->conv + needed[i].conv_off);
    return GC_OK;
}

/* Remembers the identity of every file the weights come from (see gc_model_files_changed). */
static gc_status watch_files(gc_model *m, const gc_file_id *config_id, const gc_file_id *index_id,
                             gc_err *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    gc_status st = gc_file_watch_add(&m->files, path, config_id, e);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", m->dir);
    if (!st)
        st = gc_file_watch_add(&m->files, path, index_id, e);
    for (int i = 0; i < m->st->n_files && !st; i++)
        st = gc_file_watch_add(&m->files, m->st->files[i]->path, &m->st->files[i]->id, e);
    return st;
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
    gc_file_id config_id, index_id;
    /* Identities before reading: a change during the load shows as a change afterwards. */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    gc_file_id_of_path(path, &index_id);
    snprintf(path, sizeof path, "%s/config.json", dir);
    gc_file_id_of_path(path, &config_id);
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
    int map = opts && opts->map_files && !(opts->cache_dir && *opts->cache_dir);
    if ((st = gc_st_set_open(dir, map, &m->st, e)))
        goto fail;
    needed = calloc((size_t)m->cfg.n_layers * 13 + 4, sizeof *needed);
    if (!needed) {
        st = gc_fail(e, GC_ENOMEM, "out of memory");
        goto fail;
    }
    int n_needed = 0;
    if ((st = list_needed_tensors(m, needed, &n_needed, e)) ||
        (st = find_needed_tensors(m, needed, n_needed, e)) ||
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
    for (int i = 0; i < m->st->n_files; i++)
        gc_st_detach(m->st->files[i]); /* every weight is in m->conv or a mapping now */
    if ((st = watch_files(m, &config_id, &index_id, e)))
        goto fail;
    free(needed);
    *out = m;
    return GC_OK;
fail:
    free(needed);
    gc_model_free(m);
    return st;
}

int gc_model_files_changed(const gc_model *m)
{
    return gc_file_watch_changed(&m->files);
}

int gc_model_weight_file_count(const gc_model *m) { return m->st->n_files; }
const char *gc_model_weight_file(const gc_model *m, int i) { return m->st->files[i]->path; }

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
    gc_file_watch_free(&m->files);
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
        char src_dir[PATH_MAX];
        if (!realpath(m->dir, src_dir))
            snprintf(src_dir, sizeof src_dir, "%s", m->dir);
        st = gc_lowp_weights_build(&m->cfg, &m->w,
                                   (const uint16_t *const(*)[GC_LIN_N])m->stored_bf16, p,
                                   m->cache_dir, src_dir, gc_fnv1a(m->files_key, name, strlen(name)),
                                   &m->lowp[p], e);
    }
    *out = m->lowp[p];
    pthread_mutex_unlock(&m->lowp_lock);
    if (st)
        gc_err_prefix(e, "%s", m->dir);
    return st;
}
