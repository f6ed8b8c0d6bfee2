/* src/core/common: the checked whole-file reader and the UTF-8 module. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_read.h"
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

int main(void)
{
    test_file_read();
    test_utf8_trim();
    return gct_finish("test_common");
}
