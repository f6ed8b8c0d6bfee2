/* safetensors reader: 8-byte little-endian header length, a JSON header naming every tensor's
 * dtype, shape and [begin, end) byte range inside the data area that follows, then the data.
 * Everything the header claims is checked against the file before any pointer is handed out. */
#include "model/safetensors.h"

#include "common/file_read.h"
#include "common/file_id.h"
#include "common/fnv.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* model.safetensors.index.json: one line per tensor, a few MiB for the largest models. */
#define GC_INDEX_JSON_MAX ((size_t)1 << 28)

/* The format caps the header at 100 MB; anything larger is a corrupt or hostile file. */
#define MAX_HEADER_BYTES (100u * 1024 * 1024)
#define MAX_EXACT_JSON_INT 9007199254740992.0 /* 2^53 */

static const struct {
    const char *name;
    gc_st_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F32", GC_ST_F32, 4}, {"BF16", GC_ST_BF16, 2}, {"F16", GC_ST_F16, 2},
    {"F64", GC_ST_F64, 8}, {"I64", GC_ST_I64, 8},   {"I32", GC_ST_I32, 4},
    {"I16", GC_ST_I16, 2}, {"I8", GC_ST_I8, 1},     {"U8", GC_ST_U8, 1},
    {"BOOL", GC_ST_BOOL, 1},
};

const char *gc_st_dtype_name(gc_st_dtype d)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == d)
            return dtypes[i].name;
    return "?";
}

size_t gc_st_dtype_size(gc_st_dtype d)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == d)
            return dtypes[i].size;
    return 0;
}

static int dtype_from_name(const char *s, gc_st_dtype *d)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtypes[i].name, s)) {
            *d = dtypes[i].dtype;
            return 1;
        }
    return 0;
}

/* A JSON number that is a non-negative integer exactly representable as a double. */
static int json_uint(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j))
        return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d < MAX_EXACT_JSON_INT) || d != (double)(uint64_t)d)
        return 0;
    *v = (uint64_t)d;
    return 1;
}

typedef struct span {
    uint64_t begin, end;
    int idx;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const gc_st_tensor *)a)->name, ((const gc_st_tensor *)b)->name);
}

/* Parses one header entry into t (data pointer relative to the data area for now). */
static gc_status parse_entry(const cJSON *j, gc_st_tensor *t, span *sp, uint64_t data_size,
                             gc_err *e)
{
    const char *name = j->string;
    if (!cJSON_IsObject(j))
        return gc_fail(e, GC_EFORMAT, "tensor '%s': header entry is not an object", name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo))
        return gc_fail(e, GC_EFORMAT, "tensor '%s': needs dtype, shape and data_offsets", name);
    if (!dtype_from_name(jd->valuestring, &t->dtype))
        return gc_fail(e, GC_EUNSUPPORTED, "tensor '%s': unsupported dtype '%s'", name,
                       jd->valuestring);
    int nd = cJSON_GetArraySize(js);
    if (nd > GC_ST_MAX_DIMS)
        return gc_fail(e, GC_EFORMAT, "tensor '%s': %d dimensions (at most %d)", name, nd,
                       GC_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int zero = 0;
    for (int i = 0; i < nd; i++) {
        uint64_t v;
        if (!json_uint(cJSON_GetArrayItem(js, i), &v))
            return gc_fail(e, GC_EFORMAT, "tensor '%s': bad shape entry %d", name, i);
        t->shape[i] = (int64_t)v;
        if (v == 0)
            zero = 1;
        else if (!zero && numel > UINT64_MAX / v)
            return gc_fail(e, GC_EFORMAT, "tensor '%s': shape overflows", name);
        else if (!zero)
            numel *= v;
    }
    if (zero)
        numel = 0;
    uint64_t b, en;
    if (cJSON_GetArraySize(jo) != 2 || !json_uint(cJSON_GetArrayItem(jo, 0), &b) ||
        !json_uint(cJSON_GetArrayItem(jo, 1), &en) || b > en)
        return gc_fail(e, GC_EFORMAT, "tensor '%s': bad data_offsets", name);
    if (en > data_size)
        return gc_fail(e, GC_EFORMAT,
                       "tensor '%s': data_offsets [%llu, %llu) outside the data area (%llu bytes)",
                       name, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)data_size);
    size_t dsz = gc_st_dtype_size(t->dtype);
    if (numel > UINT64_MAX / dsz || numel * dsz != en - b)
        return gc_fail(e, GC_EFORMAT,
                       "tensor '%s': shape needs %llu elements of %s but data_offsets span %llu "
                       "bytes",
                       name, (unsigned long long)numel, gc_st_dtype_name(t->dtype),
                       (unsigned long long)(en - b));
    t->numel = (size_t)numel;
    t->nbytes = (size_t)(en - b);
    t->offset = b; /* relative to the data area until the caller adds its start */
    t->data = NULL;
    sp->begin = b;
    sp->end = en;
    return GC_OK;
}

static gc_status parse_header(gc_st_file *f, const char *text, size_t hlen, uint64_t data_size,
                              gc_err *e)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, hlen, &end, 0);
    if (!root)
        return gc_fail(e, GC_EFORMAT, "header is not valid JSON");
    /* The format allows trailing spaces (padding), nothing else, as the reference reader. */
    for (; end && end < text + hlen; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            cJSON_Delete(root);
            return gc_fail(e, GC_EFORMAT, "header has bytes after its JSON object");
        }
    gc_status st = GC_OK;
    span *spans = NULL;
    if (!cJSON_IsObject(root)) {
        st = gc_fail(e, GC_EFORMAT, "header is not a JSON object");
        goto done;
    }
    int n = 0;
    for (const cJSON *j = root->child; j; j = j->next)
        n += strcmp(j->string, "__metadata__") != 0;
    f->t = calloc(n ? n : 1, sizeof *f->t);
    spans = calloc(n ? n : 1, sizeof *spans);
    if (!f->t || !spans) {
        st = gc_fail(e, GC_ENOMEM, "out of memory for %d tensor entries", n);
        goto done;
    }
    for (const cJSON *j = root->child; j; j = j->next) {
        if (!strcmp(j->string, "__metadata__")) {
            if (!cJSON_IsObject(j)) {
                st = gc_fail(e, GC_EFORMAT, "__metadata__ is not an object");
                goto done;
            }
            f->metadata = cJSON_PrintUnformatted(j);
            if (!f->metadata) {
                st = gc_fail(e, GC_ENOMEM, "out of memory for __metadata__");
                goto done;
            }
            continue;
        }
        gc_st_tensor *t = &f->t[f->n];
        t->name = strdup(j->string);
        if (!t->name) {
            st = gc_fail(e, GC_ENOMEM, "out of memory");
            goto done;
        }
        f->n++;
        st = parse_entry(j, t, &spans[f->n - 1], data_size, e);
        if (st)
            goto done;
        spans[f->n - 1].idx = f->n - 1;
        t->offset += f->data_offset;
    }
    /* Tensors must not share bytes (empty tensors occupy nothing). */
    qsort(spans, f->n, sizeof *spans, cmp_span);
    for (int i = 1; i < f->n; i++)
        if (spans[i].begin < spans[i - 1].end && spans[i].begin != spans[i].end) {
            st = gc_fail(e, GC_EFORMAT, "tensors '%s' and '%s' overlap",
                         f->t[spans[i - 1].idx].name, f->t[spans[i].idx].name);
            goto done;
        }
    qsort(f->t, f->n, sizeof *f->t, cmp_tensor_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->t[i].name, f->t[i - 1].name)) {
            st = gc_fail(e, GC_EFORMAT, "tensor '%s' appears twice", f->t[i].name);
            goto done;
        }
done:
    free(spans);
    cJSON_Delete(root);
    return st;
}

/* Reads exactly n bytes at off; a short read means the file shrank under us. */
static gc_status read_at(int fd, const char *path, uint64_t off, void *dst, size_t n, gc_err *e)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)dst + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return gc_fail(e, GC_EIO, "%s: read error: %s", path, strerror(errno));
        if (r == 0)
            return gc_fail(e, GC_EIO,
                           "%s: ends at byte %llu, before the %zu bytes it held when opened; "
                           "the file changed on disk while it was being read",
                           path, (unsigned long long)(off + got), n + (size_t)off);
        got += (size_t)r;
    }
    return GC_OK;
}

/* Reads and parses the header (with read(), never through a mapping). */
static gc_status read_header(gc_st_file *f, int fd, gc_err *e)
{
    unsigned char lenb[8];
    gc_status st = read_at(fd, f->path, 0, lenb, 8, e);
    if (st)
        return st;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | lenb[i];
    if (hlen > f->size - 8)
        return gc_fail(e, GC_EFORMAT, "header length %llu larger than the file (%zu bytes)",
                       (unsigned long long)hlen, f->size);
    if (hlen > MAX_HEADER_BYTES || hlen < 2)
        return gc_fail(e, GC_EFORMAT, "implausible header length %llu", (unsigned long long)hlen);
    char *text = malloc((size_t)hlen);
    if (!text)
        return gc_fail(e, GC_ENOMEM, "out of memory for a %llu-byte header",
                       (unsigned long long)hlen);
    st = read_at(fd, f->path, 8, text, (size_t)hlen, e);
    if (!st) {
        f->header_hash = gc_fnv1a(GC_FNV_OFFSET, text, (size_t)hlen) ^ hlen;
        f->data_offset = 8 + hlen;
        st = parse_header(f, text, (size_t)hlen, f->size - 8 - hlen, e);
    }
    free(text);
    return st;
}

static gc_status open_file(const char *path, int map, gc_st_file **out, gc_err *e)
{
    *out = NULL;
    gc_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return gc_fail(e, GC_ENOMEM, "%s: out of memory", path);
    }
    f->fd = -1;
    gc_status st = GC_OK;
    /* O_NONBLOCK: a FIFO must not block the open (it is refused just below). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        st = gc_fail(e, GC_EIO, "cannot open: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = gc_fail(e, GC_EIO, "not a regular file");
        goto fail;
    }
    gc_file_id_from_stat(&sb, &f->id);
    f->size = (size_t)sb.st_size;
    f->mtime_ns = f->id.mtime_ns;
    if (f->size < 8) {
        st = gc_fail(e, GC_EFORMAT, "truncated: %zu bytes, no header length", f->size);
        goto fail;
    }
    if ((st = read_header(f, fd, e)))
        goto fail;
    if (map) {
        f->map = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            st = gc_fail(e, GC_EIO, "mmap failed: %s", strerror(errno));
            goto fail;
        }
        for (int i = 0; i < f->n; i++)
            f->t[i].data = (const char *)f->map + f->t[i].offset;
        close(fd);
    } else {
        f->fd = fd; /* tensors are read with gc_st_read until gc_st_detach */
    }
    *out = f;
    return GC_OK;
fail:
    if (fd >= 0)
        close(fd);
    gc_err_prefix(e, "%s", path);
    gc_st_close(f);
    return st;
}

gc_status gc_st_open(const char *path, gc_st_file **out, gc_err *e)
{
    return open_file(path, 1, out, e);
}

gc_status gc_st_open_unmapped(const char *path, gc_st_file **out, gc_err *e)
{
    return open_file(path, 0, out, e);
}

gc_status gc_st_read(const gc_st_file *f, const gc_st_tensor *t, size_t off, void *dst, size_t n,
                     gc_err *e)
{
    if (off > t->nbytes || n > t->nbytes - off)
        return gc_fail(e, GC_EINVAL, "%s: tensor '%s': read past its end", f->path, t->name);
    if (f->map) {
        memcpy(dst, (const char *)t->data + off, n);
        return GC_OK;
    }
    if (f->fd < 0)
        return gc_fail(e, GC_EINVAL, "%s: no longer open for reading", f->path);
    return read_at(f->fd, f->path, t->offset + off, dst, n, e);
}

gc_status gc_st_check_unchanged(const gc_st_file *f, gc_err *e)
{
    struct stat sb;
    gc_file_id now;
    if (f->fd < 0)
        return GC_OK;
    if (fstat(f->fd, &sb) != 0)
        return gc_fail(e, GC_EIO, "%s: cannot stat: %s", f->path, strerror(errno));
    gc_file_id_from_stat(&sb, &now);
    if (!gc_file_id_same(&now, &f->id))
        return gc_fail(e, GC_EIO, "%s: the file changed on disk while it was being read", f->path);
    return GC_OK;
}

void gc_st_detach(gc_st_file *f)
{
    if (f && f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

void gc_st_close(gc_st_file *f)
{
    if (!f)
        return;
    gc_st_detach(f);
    if (f->map)
        munmap(f->map, f->size);
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    free(f->t);
    free(f->metadata);
    free(f->path);
    free(f);
}

const gc_st_tensor *gc_st_find(const gc_st_file *f, const char *name)
{
    size_t lo = 0, hi = (size_t)f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, f->t[mid].name);
        if (!c)
            return &f->t[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

char *gc_st_metadata_get(const gc_st_file *f, const char *key)
{
    if (!f->metadata)
        return NULL;
    cJSON *j = cJSON_Parse(f->metadata);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    char *s = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
    cJSON_Delete(j);
    return s;
}

/* ---- model directories: single file or sharded index ---- */

static gc_status add_file(gc_st_set *s, const char *path, int map, gc_err *e)
{
    for (int i = 0; i < s->n_files; i++)
        if (!strcmp(s->files[i]->path, path))
            return GC_OK;
    gc_st_file **nf = realloc(s->files, (size_t)(s->n_files + 1) * sizeof *nf);
    if (!nf)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    s->files = nf;
    gc_status st = open_file(path, map, &s->files[s->n_files], e);
    if (st)
        return st;
    s->n_files++;
    return GC_OK;
}

static gc_status open_index(gc_st_set *s, const char *dir, const char *index_path, int map,
                            gc_err *e)
{
    size_t len;
    char *text;
    gc_status rst = gc_read_file(index_path, GC_INDEX_JSON_MAX, &text, &len, e);
    if (rst)
        return rst;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    gc_status st = GC_OK;
    if (!cJSON_IsObject(wm)) {
        st = gc_fail(e, GC_EFORMAT, "%s: no weight_map object", index_path);
        goto done;
    }
    for (const cJSON *j = wm->child; j; j = j->next) {
        const char *fn = cJSON_IsString(j) ? j->valuestring : NULL;
        if (!fn || !*fn || strchr(fn, '/')) {
            st = gc_fail(e, GC_EFORMAT, "%s: bad file name for tensor '%s'", index_path,
                         j->string);
            goto done;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, fn);
        if ((st = add_file(s, path, map, e)))
            goto done;
        const gc_st_file *f = NULL;
        for (int i = 0; i < s->n_files; i++)
            if (!strcmp(s->files[i]->path, path))
                f = s->files[i];
        if (!gc_st_find(f, j->string)) {
            st = gc_fail(e, GC_EFORMAT, "%s: tensor '%s' is listed in %s but missing there",
                         index_path, j->string, fn);
            goto done;
        }
    }
    if (s->n_files == 0)
        st = gc_fail(e, GC_EFORMAT, "%s: empty weight_map", index_path);
done:
    cJSON_Delete(root);
    return st;
}

gc_status gc_st_set_open(const char *dir, int map, gc_st_set **out, gc_err *e)
{
    *out = NULL;
    gc_st_set *s = calloc(1, sizeof *s);
    if (!s)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    gc_status st;
    /* Only an absent index means one file; an index that is there but cannot be reached (a
     * symbolic link loop, no permission) is an error, not a reason to load something else. */
    if (access(path, F_OK) == 0 || errno != ENOENT) {
        st = open_index(s, dir, path, map, e);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = add_file(s, path, map, e);
    }
    if (st) {
        gc_st_set_close(s);
        return st;
    }
    *out = s;
    return GC_OK;
}

void gc_st_set_close(gc_st_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++)
        gc_st_close(s->files[i]);
    free(s->files);
    free(s);
}

const gc_st_tensor *gc_st_set_find(const gc_st_set *s, const char *name, const gc_st_file **file)
{
    for (int i = 0; i < s->n_files; i++) {
        const gc_st_tensor *t = gc_st_find(s->files[i], name);
        if (t) {
            if (file)
                *file = s->files[i];
            return t;
        }
    }
    return NULL;
}
