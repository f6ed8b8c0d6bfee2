/* Read-only access to safetensors files (https://huggingface.co/docs/safetensors). The header is
 * read with read() and every tensor is validated once at open time. Then either the file is
 * memory-mapped (PROT_READ, MAP_SHARED: gc_st_open) and callers may use the data pointers
 * without further bounds checks, or it is not (gc_st_open_unmapped) and tensors are read with
 * gc_st_read. A mapping of a file that someone truncates later faults (SIGBUS) on the next
 * access to the lost pages, so a server never maps a user's file: it reads it once, with
 * read(), into a copy of its own (model.c). Only regular files are opened.
 *
 * A gc_st_set is what a model directory holds: one model.safetensors, or several shards listed
 * by model.safetensors.index.json (its weight_map). */
#ifndef GC_SAFETENSORS_H
#define GC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/file_id.h"

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
    uint64_t offset;  /* of its data in the file */
    gc_st_dtype dtype;
    int ndim;
    int64_t shape[GC_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* into the mapping (NULL when unmapped); not aligned beyond 1 byte */
} gc_st_tensor;

typedef struct gc_st_file {
    char *path;
    size_t size;        /* file size in bytes */
    int64_t mtime_ns;   /* == id.mtime_ns */
    gc_file_id id;      /* identity when opened (fstat of the open file) */
    uint64_t header_hash; /* of the header's bytes */
    uint64_t data_offset; /* where the data area starts: 8 + header length */
    void *map;          /* whole file, read-only; NULL when opened unmapped */
    int fd;             /* unmapped: the open file, until gc_st_detach; else -1 */
    char *metadata;     /* JSON text of __metadata__ (an object of strings), or NULL */
    gc_st_tensor *t;    /* sorted by name */
    int n;
} gc_st_file;

gc_status gc_st_open(const char *path, gc_st_file **out, gc_err *e);
gc_status gc_st_open_unmapped(const char *path, gc_st_file **out, gc_err *e);
/* Copies bytes [off, off + n) of t's data to dst: from the mapping, or with pread. A file that
 * shrank since it was opened is GC_EIO, never a fault. */
gc_status gc_st_read(const gc_st_file *f, const gc_st_tensor *t, size_t off, void *dst, size_t n,
                     gc_err *e);
/* GC_EIO when the open (unmapped) file's identity is no longer the one it had when opened:
 * written, truncated or touched meanwhile, so what was read may mix old and new bytes. */
gc_status gc_st_check_unchanged(const gc_st_file *f, gc_err *e);
/* Closes an unmapped file's descriptor (gc_st_read no longer works; the header stays). */
void gc_st_detach(gc_st_file *f);
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
 * dir/model.safetensors; mapped when map is 1, else unmapped. */
gc_status gc_st_set_open(const char *dir, int map, gc_st_set **out, gc_err *e);
void gc_st_set_close(gc_st_set *s);
/* Finds a tensor by name in any file; *file (if non-NULL) receives the file holding it. */
const gc_st_tensor *gc_st_set_find(const gc_st_set *s, const char *name, const gc_st_file **file);

#endif
