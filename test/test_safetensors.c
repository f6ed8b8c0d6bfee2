/* safetensors reader: a valid file reads back exactly; every kind of malformed file is
 * rejected with a message naming the file (and the tensor where there is one). */
#include "gc_test.h"
#include "gc_test_ref.h"

static char dir[PATH_MAX];

static const char *tmp(const char *name)
{
    static char buf[4][PATH_MAX + 64];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* A header whose length field says hlen, data of n bytes after it. */
static void expect_bad(const char *what, uint64_t hlen, const char *hdr, size_t n_data,
                       const char *must_name)
{
    static unsigned char data[256];
    const char *p = tmp("bad.safetensors");
    CHECK(gct_write_raw(p, hlen, hdr, strlen(hdr), data, n_data), "write %s", what);
    gc_st_file *f = NULL;
    gc_err e = {0};
    gc_status st = gc_st_open(p, &f, &e);
    CHECK(st != GC_OK && f == NULL, "%s accepted", what);
    CHECK(strstr(e.msg, p) != NULL, "%s: message lacks the file name: %s", what, e.msg);
    if (must_name)
        CHECK(strstr(e.msg, must_name) != NULL, "%s: message lacks '%s': %s", what, must_name,
              e.msg);
    gc_st_close(f);
}

/* Unmapped (the server's way): reads come from read(), so a file truncated or rewritten after
 * it was opened is an error, never a SIGBUS. */
static void test_unmapped(const float *a, size_t na)
{
    gct_wt w[] = {{"a", "F32", 1, {(int64_t)(na / sizeof *a)}, a, na}};
    const char *p = tmp("unmapped.safetensors");
    CHECK(gct_write_st(p, w, 1), "write unmapped");
    gc_st_file *f = NULL;
    gc_err e = {0};
    CHECK(gc_st_open_unmapped(p, &f, &e) == GC_OK && f && !f->map && f->fd >= 0,
          "open unmapped: %s", e.msg);
    if (!f)
        return;
    const gc_st_tensor *t = gc_st_find(f, "a");
    float got[16] = {0};
    CHECK(t && !t->data && gc_st_read(f, t, 0, got, na, &e) == GC_OK && !memcmp(got, a, na),
          "unmapped read: %s", e.msg);
    CHECK(gc_st_check_unchanged(f, &e) == GC_OK, "unchanged: %s", e.msg);
    /* in place, as `cp` over it would do: same inode, shorter */
    CHECK(truncate(p, 20) == 0, "truncate");
    gc_status st = t ? gc_st_read(f, t, 0, got, na, &e) : GC_OK;
    CHECK(st == GC_EIO && strstr(e.msg, "changed on disk"), "read after truncation: %s (%s)",
          gc_status_name(st), e.msg);
    CHECK(gc_st_check_unchanged(f, &e) == GC_EIO && strstr(e.msg, "changed on disk"),
          "truncation noticed: %s", e.msg);
    gc_st_detach(f);
    CHECK(t && gc_st_read(f, t, 0, got, na, &e) == GC_EINVAL, "read after detach: %s", e.msg);
    gc_st_close(f);
}

/* A FIFO (open would wait for a writer), a character device (never ends) and a directory are
 * refused at once, by both ways of opening. */
static void test_not_regular(void)
{
    const char *fifo = tmp("fifo.safetensors"), *zero = tmp("zero.safetensors");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(symlink("/dev/zero", zero) == 0, "symlink");
    const char *paths[] = {fifo, zero, dir};
    for (int i = 0; i < 3; i++)
        for (int map = 0; map < 2; map++) {
            gc_st_file *f = NULL;
            gc_err e = {0};
            gc_status st = map ? gc_st_open(paths[i], &f, &e) : gc_st_open_unmapped(paths[i], &f, &e);
            CHECK(st == GC_EIO && !f && strstr(e.msg, "not a regular file"),
                  "%s (map %d): %s (%s)", paths[i], map, gc_status_name(st), e.msg);
            gc_st_close(f);
        }
    unlink(fifo);
    unlink(zero);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/gctest-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");

    /* a valid file */
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t ids[3] = {7, -8, 1LL << 40};
    uint16_t bf[2] = {0x3f80, 0xc000}; /* 1.0, -2.0 */
    gct_wt ok[] = {
        {"a", "F32", 2, {2, 3}, a, sizeof a},
        {"ids", "I64", 1, {3}, ids, sizeof ids},
        {"h", "BF16", 1, {2}, bf, sizeof bf},
        {"empty", "F32", 2, {0, 4}, a, 0},
    };
    const char *good = tmp("good.safetensors");
    CHECK(gct_write_st(good, ok, 4), "write good");
    gc_st_file *f = NULL;
    gc_err e = {0};
    CHECK(gc_st_open(good, &f, &e) == GC_OK, "open good: %s", e.msg);
    if (f) {
        CHECK(f->n == 4, "n = %d", f->n);
        const gc_st_tensor *t = gc_st_find(f, "a");
        CHECK(t && t->dtype == GC_ST_F32 && t->ndim == 2 && t->shape[1] == 3 && t->numel == 6 &&
                  !memcmp(t->data, a, sizeof a),
              "tensor a");
        int n = 0;
        int32_t *v = gct_ids(f, "ids", &n);
        CHECK(v && n == 3 && v[0] == 7 && v[1] == -8, "I64 ids");
        free(v);
        t = gc_st_find(f, "h");
        CHECK(t && t->dtype == GC_ST_BF16 && t->nbytes == 4, "bf16");
        CHECK(gc_st_find(f, "missing") == NULL, "missing tensor found");
        char *fmt = gc_st_metadata_get(f, "format");
        CHECK(fmt && !strcmp(fmt, "pt"), "metadata");
        free(fmt);
        gc_st_close(f);
    }
    /* the reference files themselves */
    CHECK(gc_st_open(gct_shared("reference/hf-tiny/tiny_untied_tok4k/reference_logits.safetensors"),
                     &f, &e) == GC_OK,
          "reference file: %s", e.msg);
    if (f) {
        char *texts = gc_st_metadata_get(f, "texts");
        CHECK(texts && texts[0] == '[', "texts metadata");
        free(texts);
        gc_st_close(f);
    }

    /* mutated copies of the good file: never a crash, and whatever opens stays in bounds
     * (run under ASan by make SANITIZE=1 unittest) */
    {
        FILE *g = fopen(good, "rb");
        unsigned char orig[4096];
        size_t len = g ? fread(orig, 1, sizeof orig, g) : 0;
        if (g)
            fclose(g);
        CHECK(len > 16, "read good file");
        uint32_t r = 2463534242u;
        int opened = 0, in_bounds = 1;
        const char *mp = tmp("mutant.safetensors");
        for (int it = 0; it < 3000 && len > 16; it++) {
            unsigned char buf[4096];
            memcpy(buf, orig, len);
            size_t n = len;
            for (int k = 0; k < 1 + it % 4; k++) {
                r ^= r << 13, r ^= r >> 17, r ^= r << 5;
                size_t pos = r % (it % 3 ? 200 : n); /* mostly inside the header */
                r ^= r << 13, r ^= r >> 17, r ^= r << 5;
                buf[pos % n] = it % 5 ? (unsigned char)r : (unsigned char)"0123456789[]{},:\"-"[r % 18];
            }
            if (it % 7 == 0)
                n = 8 + r % (len - 8); /* truncated too */
            FILE *o = fopen(mp, "wb");
            fwrite(buf, 1, n, o);
            fclose(o);
            gc_st_file *mf = NULL;
            if (gc_st_open(mp, &mf, &e) == GC_OK) {
                opened++;
                for (int i = 0; i < mf->n; i++) {
                    const char *d = mf->t[i].data, *lo = mf->map;
                    if (d < lo || d + mf->t[i].nbytes > lo + mf->size)
                        in_bounds = 0;
                }
                gc_st_close(mf);
            }
        }
        CHECK(in_bounds, "a mutated file opened with a tensor outside the file");
        printf("mutated files: %d of 3000 still opened (all in bounds)\n", opened);
    }

    /* malformed files */
    const char *tens = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad("header length larger than file", 1000, tens, 8, "header length");
    expect_bad("huge header length", 1ULL << 62, tens, 8, "header length");
    expect_bad("invalid JSON", strlen("{\"x\":{\"dtype\""), "{\"x\":{\"dtype\"", 0, "JSON");
    expect_bad("header not an object", 5, "[1,2]", 0, NULL);
    expect_bad("offsets outside the file", strlen(tens), tens, 4, "'x'");
    /* (58-byte headers: the JSON and 4 bytes of space padding) */
    expect_bad("wrong dtype string", 58,
               "{\"x\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}    ", 8, "F33");
    expect_bad("shape/span mismatch", 58,
               "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}    ", 16, "'x'");
    const char *ovl = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    expect_bad("overlapping tensors", strlen(ovl), ovl, 16, "overlap");
    const char *neg = "{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}";
    expect_bad("negative shape", strlen(neg), neg, 8, "'x'");
    const char *rev = "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}";
    expect_bad("reversed offsets", strlen(rev), rev, 8, "'x'");
    const char *big = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                      "\"data_offsets\":[0,8]}}";
    expect_bad("shape overflow", strlen(big), big, 8, "'x'");
    expect_bad("bytes after the header's JSON", strlen(tens) + 2, tens, 8, "after its JSON");
    const char *meta = "{\"__metadata__\":3}";
    expect_bad("metadata not an object", strlen(meta), meta, 0, "__metadata__");
    /* truncated: fewer than 8 bytes, and a good file cut inside its data */
    const char *p = tmp("short.safetensors");
    CHECK(gct_write_text(p, "abc"), "write short");
    CHECK(gc_st_open(p, &f, &e) != GC_OK && strstr(e.msg, "truncated"), "short file: %s", e.msg);
    CHECK(truncate(good, 100) == 0, "truncate");
    CHECK(gc_st_open(good, &f, &e) != GC_OK, "truncated data accepted");
    CHECK(gc_st_open(tmp("nonexistent"), &f, &e) == GC_EIO, "missing file: %s", e.msg);

    /* sharded: index naming two files */
    gct_wt s1[] = {{"a", "F32", 2, {2, 3}, a, sizeof a}};
    gct_wt s2[] = {{"ids", "I64", 1, {3}, ids, sizeof ids}};
    CHECK(gct_write_st(tmp("model-00001-of-00002.safetensors"), s1, 1), "shard 1");
    CHECK(gct_write_st(tmp("model-00002-of-00002.safetensors"), s2, 1), "shard 2");
    CHECK(gct_write_text(tmp("model.safetensors.index.json"),
                         "{\"metadata\":{},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                         "\"ids\":\"model-00002-of-00002.safetensors\"}}"),
          "index");
    gc_st_set *set = NULL;
    CHECK(gc_st_set_open(dir, 1, &set, &e) == GC_OK, "sharded: %s", e.msg);
    if (set) {
        const gc_st_file *in = NULL;
        CHECK(set->n_files == 2, "two shards");
        CHECK(gc_st_set_find(set, "ids", &in) && strstr(in->path, "00002"), "ids in shard 2");
        CHECK(gc_st_set_find(set, "a", &in) && strstr(in->path, "00001"), "a in shard 1");
        gc_st_set_close(set);
    }
    CHECK(gct_write_text(tmp("model.safetensors.index.json"),
                         "{\"weight_map\":{\"zz\":\"model-00001-of-00002.safetensors\"}}"),
          "index 2");
    CHECK(gc_st_set_open(dir, 1, &set, &e) == GC_EFORMAT && strstr(e.msg, "zz"),
          "index naming a missing tensor: %s", e.msg);
    CHECK(gct_write_text(tmp("model.safetensors.index.json"), "{\"weight_map\":{\"a\":\"../x\"}}"),
          "index 3");
    CHECK(gc_st_set_open(dir, 1, &set, &e) == GC_EFORMAT, "index escaping the dir: %s", e.msg);

    test_unmapped(a, sizeof a);
    test_not_regular();
    gct_rmdir(dir);
    return gct_finish("test_safetensors");
}
