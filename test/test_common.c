/* src/core/common: the checked whole-file reader, the UTF-8 module (and the prompt's use of it
 * for clipping), error messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/resource.h>

#include "classifier/prompt.h"
#include "common/file_read.h"
#include "common/sha256.h"
#include "common/utf8.h"
#include "gc_test.h"

static void test_file_read(void)
{
    char dir[] = "/tmp/gc_test_common_XXXXXX", path[256], fifo[256];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/f.json", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    FILE *f = fopen(path, "wb");
    fwrite("{\"a\":1}", 1, 7, f);
    fclose(f);
    gc_err e = {0};
    char *data = (char *)1;
    size_t len = 99;
    CHECK(gc_read_file(path, 7, &data, &len, &e) == GC_OK && len == 7 && data[7] == '\0' &&
              !memcmp(data, "{\"a\":1}", 7), "reads a file at the cap: %s", e.msg);
    free(data);
    CHECK(gc_read_file(path, 6, &data, &len, &e) == GC_EIO && !data && strstr(e.msg, path) &&
              strstr(e.msg, "larger than 6 bytes"), "refuses a file over the cap: %s", e.msg);
    CHECK(gc_read_file(dir, 1 << 20, &data, &len, &e) == GC_EIO && !data &&
              strstr(e.msg, "not a regular file"), "refuses a directory: %s", e.msg);
    /* A FIFO without a writer would block a plain open() forever. */
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(gc_read_file(fifo, 1 << 20, &data, &len, &e) == GC_EIO && !data &&
              strstr(e.msg, "not a regular file") && strstr(e.msg, fifo),
          "refuses a FIFO: %s", e.msg);
    unlink(fifo);
    unlink(path);
    errno = 0;
    CHECK(gc_read_file(path, 1 << 20, &data, &len, &e) == GC_EIO && errno == ENOENT &&
              strstr(e.msg, "cannot open"), "a missing file leaves errno at ENOENT: %s", e.msg);
    f = fopen(path, "wb");
    fclose(f);
    CHECK(gc_read_file(path, 0, &data, &len, &e) == GC_OK && len == 0 && data && !data[0],
          "an empty file is an empty string");
    free(data);
    unlink(path);
    rmdir(dir);
}

static void test_utf8_trim(void)
{
    /* " \x1f" + "é" + NBSP: Python's isspace() takes U+001F, Unicode White_Space does not. */
    const char *s = " \x1f\xc3\xa9\xc2\xa0";
    size_t n = strlen(s), a, b;
    gc_utf8_trim(s, n, gc_python_is_space, 1, 1, &a, &b);
    CHECK(a == 2 && b == 4, "python strip: [%zu, %zu)", a, b);
    gc_utf8_trim(s, n, gc_unicode_is_white_space, 1, 1, &a, &b);
    CHECK(a == 1 && b == 4, "White_Space strip: [%zu, %zu)", a, b);
    gc_utf8_trim(s, n, gc_unicode_is_white_space, 0, 1, &a, &b);
    CHECK(a == 0 && b == 4, "right only: [%zu, %zu)", a, b);
    gc_utf8_trim(" \t", 2, gc_python_is_space, 1, 1, &a, &b);
    CHECK(a == b, "all blank: [%zu, %zu)", a, b);
}

/* The cut is taken before the repair: a huge invalid text costs memory bounded by the budget,
 * and the result equals repairing everything and cutting after. */
static void test_clip_cut_first(void)
{
    const char *samples[] = {"ab\xff\xfe cd", "\xe2\x82\xac\xe2\x82 x", "   \xc3\xa9\xff",
                             "\xf0\x9f\x98\x80\xf0\x9f"};
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        size_t n = strlen(samples[i]);
        for (size_t budget = 0; budget < 3 * n + 2; budget++) {
            /* the old way: repair all, drop leading blanks, cut on a boundary */
            size_t rn;
            char *r = gc_utf8_repair(samples[i], n, &rn), *s = r;
            while (rn && *s == ' ')
                s++, rn--;
            size_t want = rn > budget ? gc_utf8_cut(s, budget) : rn;
            const char *t = samples[i];
            size_t len = n;
            char *owned;
            gc_err e = {0};
            CHECK(gc_prompt_clip_text(&t, &len, budget, &owned, &e) == GC_OK, "%s", e.msg);
            CHECK(len == want && !memcmp(t, s, len), "sample %zu budget %zu: %zu bytes, want %zu",
                  i, budget, len, want);
            free(owned);
            free(r);
        }
    }
    /* 64 MB of invalid bytes with a 4 KB budget: the old repair-first needed 192 MB */
    size_t big = (size_t)64 << 20;
    char *t0 = malloc(big);
    CHECK(t0 != NULL, "malloc");
    if (!t0)
        return;
    memset(t0, 0xff, big);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long before = ru.ru_maxrss;
    const char *t = t0;
    size_t len = big;
    char *owned = NULL;
    gc_err e = {0};
    CHECK(gc_prompt_clip_text(&t, &len, 4096, &owned, &e) == GC_OK && len <= 4096 &&
              gc_utf8_valid(t, len), "huge invalid text: %s", e.msg);
    getrusage(RUSAGE_SELF, &ru);
    CHECK(ru.ru_maxrss - before < 16 * 1024, "clipping a 64 MB invalid text grew the RSS by %ld kB",
          ru.ru_maxrss - before);
    free(owned);
    free(t0);
}

/* Messages quote bytes of model files: whatever they quote, they stay valid UTF-8. */
static void test_message_sanitize(void)
{
    gc_err e = {0};
    gc_fail(&e, GC_EFORMAT, "token \"%s\" bad", "a\xff\xc3(");
    CHECK(gc_utf8_valid(e.msg, strlen(e.msg)) &&
              !strcmp(e.msg, "token \"a\xef\xbf\xbd\xef\xbf\xbd(\" bad"), "sanitized: %s", e.msg);
    gc_err_prefix(&e, "%s", "dir\xe2\x82");
    CHECK(gc_utf8_valid(e.msg, strlen(e.msg)) && !strncmp(e.msg, "dir\xef\xbf\xbd", 6),
          "prefix sanitized: %s", e.msg);
    /* a message cut by the buffer inside a character */
    char longs[2000];
    memset(longs, 'x', sizeof longs);
    memcpy(longs + 1020, "\xe2\x82\xac\xe2\x82\xac", 6);
    longs[1026] = '\0';
    gc_fail(&e, GC_EINVAL, "%s", longs);
    CHECK(gc_utf8_valid(e.msg, strlen(e.msg)) && strlen(e.msg) < sizeof e.msg,
          "cut message valid UTF-8 (%zu bytes)", strlen(e.msg));
    char s[8] = "ab\xff";
    gc_utf8_sanitize(s, sizeof s);
    CHECK(!strcmp(s, "ab\xef\xbf\xbd"), "sanitize in place");
    CHECK(gc_utf8_repaired_prefix("a\xff" "b", 3, 4) == 2 && gc_utf8_repaired_prefix("a\xff" "b", 3, 3) == 1,
          "repaired prefix");
}

/* FIPS 180-4 / NIST example vectors through the libcrypto wrapper, fed whole and in pieces. */
static void test_sha256(void)
{
    static const struct { const char *in; const char *want; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        for (size_t step = 1; step <= 65; step += 16) {
            gc_sha256 s;
            char hex[65];
            size_t n = strlen(v[i].in);
            gc_sha256_init(&s);
            for (size_t k = 0; k < n; k += step)
                gc_sha256_update(&s, v[i].in + k, n - k < step ? n - k : step);
            gc_sha256_hex(&s, hex);
            CHECK(!strcmp(hex, v[i].want), "sha256 vector %zu, pieces of %zu: %s", i, step, hex);
        }
    }
    gc_sha256 s; /* one million 'a' (FIPS 180-2 appendix B.3) */
    char a[1000], hex[65];
    memset(a, 'a', sizeof a);
    gc_sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        gc_sha256_update(&s, a, sizeof a);
    gc_sha256_hex(&s, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
          "sha256 of a million 'a': %s", hex);
}

int main(void)
{
    test_sha256();
    test_file_read();
    test_utf8_trim();
    test_clip_cut_first();
    test_message_sanitize();
    return gct_finish("test_common");
}
