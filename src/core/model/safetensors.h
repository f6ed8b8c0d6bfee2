/* Read-only access to safetensors files (https://huggingface.co/docs/safetensors): the file is
 * memory-mapped (PROT_READ, MAP_SHARED) and every tensor is validated once at open time, so
 * callers may use the data pointers without further bounds checks.
 *
 * A gc_st_set is what a model directory holds: one model.safetensors, or several shards listed
 * by model.safetensors.index.json (its weight_map). */
#ifndef GC_SAFETENSORS_H
#define GC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define GC_ST_MAX_DIMS 8

typedef enum gc_st_dtype {
    GC_ST_F32 = 0,
    GC_ST_BF16,
    GC_ST_F16,
    GC_ST_F64,
    GC_ST_I64,
    GC_ST_I32,
    GC_ST_I16,
    GC_ST_I8,
    GC_ST_U8,
    GC_ST_BOOL
} gc_st_dtype;

typedef struct gc_st_tensor {
    char *name;
    gc_st_dtype dtype;
    int ndim;
    int64_t shape[GC_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* into the mapping; not necessarily aligned beyond 1 byte */
} gc_st_tensor;

typedef struct gc_st_file {
    char *path;
    size_t size;        /* file size in bytes */
    int64_t mtime_ns;   /* for cache keys */
    void *map;          /* whole file, read-only */
    char *metadata;     /* JSON text of __metadata__ (an object of strings), or NULL */
    gc_st_tensor *t;    /* sorted by name */
    int n;
} gc_st_file;

gc_status gc_st_open(const char *path, gc_st_file **out, gc_err *e);
void gc_st_close(gc_st_file *f);
const gc_st_tensor *gc_st_find(const gc_st_file *f, const char *name);
const char *gc_st_dtype_name(gc_st_dtype d);
size_t gc_st_dtype_size(gc_st_dtype d);
/* Value of one __metadata__ string, newly malloc'd (caller frees), or NULL when absent. */
char *gc_st_metadata_get(const gc_st_file *f, const char *key);

typedef struct gc_st_set {
    gc_st_file **files;
    int n_files;
} gc_st_set;

/* Opens dir/model.safetensors.index.json (and every shard it names) if present, else
 * dir/model.safetensors. */
gc_status gc_st_set_open(const char *dir, gc_st_set **out, gc_err *e);
void gc_st_set_close(gc_st_set *s);
/* Finds a tensor by name in any file; *file (if non-NULL) receives the file holding it. */
const gc_st_tensor *gc_st_set_find(const gc_st_set *s, const char *name, const gc_st_file **file);

#endif
