/* Model directories that change or misbehave under a loaded model (issue 10): a weights file
 * truncated or rewritten in place after loading, a full disk under the weight cache, model
 * files that are FIFOs or devices, a tokenizer with one huge id, weights that compute NaN,
 * messages quoting invalid UTF-8. Each of these once crashed, hung or bloated a server backend;
 * here each must be a clean status (or keep working), checked in a child process where the
 * failure mode was a signal or a hang, so that a regression fails the test instead of killing
 * it. Runs as root in CI (a small tmpfs is mounted for the full-disk case); elsewhere the file
 * size limit (RLIMIT_FSIZE) stands in for the full disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "classifier/classifier.h"
#include "common/file_read.h"
#include "common/utf8.h"
#include "gc_test.h"
#include "model/lowp_weights.h"
#include "gc_test_ref.h"

#define FIXTURE "reference/hf-tiny/tiny_untied_tok4k"
static const char *model_files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                    "tokenizer_config.json"};

static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
    char buf[1 << 16];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out))
        ok = 0;
    return ok;
}

/* A fresh directory with real copies of the fixture's files (they get truncated and edited). */
static int make_model(char *dir)
{
    snprintf(dir, PATH_MAX, "/tmp/gctest-XXXXXX");
    if (!mkdtemp(dir))
        return 0;
    for (size_t i = 0; i < sizeof model_files / sizeof *model_files; i++) {
        char src[PATH_MAX], dst[PATH_MAX + 64], rel[256];
        snprintf(rel, sizeof rel, FIXTURE "/%s", model_files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, model_files[i]);
        if (!copy_file(gct_abs(gct_shared(rel), src), dst))
            return 0;
    }
    return 1;
}

static const char *in(const char *dir, const char *name)
{
    static char buf[4][PATH_MAX + 64];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)))
        n += !strncmp(de->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

/* Runs fn(arg) in a child with a time limit: its exit code, or 128 + the signal that ended it
 * (SIGALRM: it hung). */
static int in_child(int (*fn)(const void *), const void *arg, int seconds)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm((unsigned)seconds);
        int rc = fn(arg);
        fflush(NULL);
        _exit(rc);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static int classify_one(const gc_classifier *c, float *probs, gc_err *e)
{
    gc_session *s = NULL;
    gc_session_opts so = {.ctx = {.threads = 1, .device = GC_DEVICE_CPU}};
    const char *text = "nice video bhai";
    int label;
    gc_status st = gc_session_new(c, &so, &s, e);
    if (!st)
        st = gc_classify(s, 1, &text, NULL, probs, &label, e);
    gc_session_free(s);
    return st;
}

/* ---- 3: a weights file truncated or rewritten in place after loading ---- */

typedef struct truncate_case {
    const char *dir, *cache;
} truncate_case;

/* Child: load through the cache, truncate the source as `cp` over it would (same inode), then
 * classify. 0 = classified with the same probabilities and the change was noticed. */
static int truncate_after_load(const void *arg)
{
    const truncate_case *tc = arg;
    gc_classifier_opts o = {.cache_dir = tc->cache};
    gc_classifier *c = NULL;
    gc_err e = {0};
    float before[8], after[8];
    if (gc_classifier_open(tc->dir, &o, &c, &e) || classify_one(c, before, &e))
        return 10;
    if (gc_classifier_files_changed(c))
        return 11;
    if (truncate(in(tc->dir, "model.safetensors"), 64) != 0)
        return 12;
    if (classify_one(c, after, &e) || memcmp(before, after, sizeof(float) * 3))
        return 13;
    int changed = gc_classifier_files_changed(c);
    gc_classifier_free(c);
    return changed ? 0 : 14;
}

static void test_truncated_after_load(const char *cache)
{
    char dir[PATH_MAX];
    CHECK(make_model(dir), "model copy");
    truncate_case tc = {dir, cache};
    int rc = in_child(truncate_after_load, &tc, 60);
    CHECK(rc == 0, "classify after the weights file was truncated in place: %s (%d)",
          rc == 128 + SIGBUS ? "SIGBUS" : rc > 128 ? "killed by a signal" : "failed", rc);
    /* and loading it again now is a clean error */
    gc_classifier_opts o = {.cache_dir = cache};
    gc_classifier *c = NULL;
    gc_err e = {0};
    gc_status st = gc_classifier_open(dir, &o, &c, &e);
    CHECK(st != GC_OK && !c && strstr(e.msg, "model.safetensors"), "truncated file: %s (%s)",
          gc_status_name(st), e.msg);
    CHECK(count_entries(cache, ".gemmaclf-tmp-") == 0, "temporary file left behind");
    gct_rmdir(dir);
}

/* ---- 3: the weight cache follows the files' identity ---- */

static float first_weight(const gc_classifier *c)
{
    return gc_model_weights(gc_classifier_model(c))->final_norm[0];
}

/* Overwrites the first float of tensor name in place, keeping the file's mtime. */
static int poke_weight(const char *path, const char *name, float v)
{
    gc_st_file *f = NULL;
    gc_err e = {0};
    struct stat sb;
    if (stat(path, &sb) || gc_st_open_unmapped(path, &f, &e))
        return 0;
    const gc_st_tensor *t = gc_st_find(f, name);
    uint64_t off = t ? t->offset : 0;
    gc_st_close(f);
    int fd = open(path, O_WRONLY);
    int ok = t && fd >= 0 && pwrite(fd, &v, sizeof v, (off_t)off) == (ssize_t)sizeof v;
    struct timespec ts[2] = {sb.st_atim, sb.st_mtim};
    ok = ok && futimens(fd, ts) == 0; /* as `cp -p` would leave it */
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_cache_identity(const char *cache)
{
    char dir[PATH_MAX];
    CHECK(make_model(dir), "model copy");
    gc_classifier_opts o = {.cache_dir = cache};
    gc_classifier *c1 = NULL, *c2 = NULL, *c3 = NULL;
    gc_err e = {0};
    CHECK(gc_classifier_open(dir, &o, &c1, &e) == GC_OK, "first load: %s", e.msg);
    CHECK(count_entries(cache, "gemmaclf-") == 1, "one cache file after the first load");
    CHECK(gc_classifier_open(dir, &o, &c2, &e) == GC_OK, "second load: %s", e.msg);
    CHECK(count_entries(cache, "gemmaclf-") == 1, "the second load maps the same cache file");
    const gc_lowp_weights *lw = NULL;
    if (c1)
        CHECK(gc_model_lowp(gc_classifier_model(c1), GC_PRECISION_BF16, &lw, &e) == GC_OK && lw,
              "a bf16 copy: %s", e.msg);
    if (c1 && c2)
        CHECK(first_weight(c1) == first_weight(c2), "same weights");
    /* temporary files: one abandoned by a killed writer (untouched for 2 hours), one in use */
    char old_tmp[PATH_MAX + 64], live_tmp[PATH_MAX + 64];
    snprintf(old_tmp, sizeof old_tmp, "%s", in(cache, ".gemmaclf-tmp-killed"));
    snprintf(live_tmp, sizeof live_tmp, "%s", in(cache, ".gemmaclf-tmp-live"));
    CHECK(gct_write_text(old_tmp, "x") && gct_write_text(live_tmp, "x"), "temporary files");
    struct timespec two_h[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    CHECK(utimensat(AT_FDCWD, old_tmp, two_h, 0) == 0, "age the abandoned file");
    /* new bytes, same size, same mtime: the ctime still differs */
    const char *st = in(dir, "model.safetensors");
    CHECK(poke_weight(st, "model.norm.weight", 42.0f), "poke");
    if (c1)
        CHECK(gc_classifier_files_changed(c1), "a rewrite that keeps size and mtime is noticed");
    CHECK(gc_classifier_open(dir, &o, &c3, &e) == GC_OK, "load after the rewrite: %s", e.msg);
    if (c3)
        CHECK(first_weight(c3) == 42.0f, "the new bytes are used, not the old copy: %g",
              (double)first_weight(c3));
    if (c1)
        CHECK(first_weight(c1) != 42.0f, "the old model keeps its own copy");
    CHECK(count_entries(cache, "gemmaclf-") == 2, "the stale F32 copy is removed, the bf16 one "
          "stays until a bf16 copy of the new state is made (%d files)",
          count_entries(cache, "gemmaclf-"));
    if (c3)
        CHECK(gc_model_lowp(gc_classifier_model(c3), GC_PRECISION_BF16, &lw, &e) == GC_OK && lw,
              "a bf16 copy of the new state: %s", e.msg);
    CHECK(count_entries(cache, "gemmaclf-") == 2, "the stale bf16 copy is removed (%d files)",
          count_entries(cache, "gemmaclf-"));
    CHECK(access(old_tmp, F_OK) != 0 && access(live_tmp, F_OK) == 0,
          "the abandoned temporary file is removed, the live one kept");
    unlink(live_tmp);
    gc_classifier_free(c1);
    gc_classifier_free(c2);
    gc_classifier_free(c3);
    gct_rmdir(dir);
}

/* Every file the classifier reads is watched, also ones that appear. */
static void test_change_detection(void)
{
    char dir[PATH_MAX];
    CHECK(make_model(dir), "model copy");
    const char *names[] = {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json", "gemmaclf.json",
                           "model.safetensors.index.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        gc_classifier *c = NULL;
        gc_err e = {0};
        CHECK(gc_classifier_open(dir, NULL, &c, &e) == GC_OK, "load: %s", e.msg);
        if (!c)
            continue;
        CHECK(!gc_classifier_files_changed(c), "unchanged right after loading");
        const char *p = in(dir, names[i]);
        struct stat sb;
        int existed = stat(p, &sb) == 0;
        if (existed) {
            struct timespec ts[2] = {{0, UTIME_OMIT}, {sb.st_mtim.tv_sec + 1, 0}};
            CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0, "touch %s", p);
        } else {
            CHECK(gct_write_text(p, "{}"), "create %s", p);
        }
        CHECK(gc_classifier_files_changed(c), "%s %s: not noticed", names[i],
              existed ? "touched" : "created");
        if (!existed)
            unlink(p);
        gc_classifier_free(c);
    }
    gct_rmdir(dir);
}

/* ---- 4: a full disk under the weight cache ---- */

static int fsize_limited; /* no tmpfs (not root): RLIMIT_FSIZE in the child instead */

static int load_into(const void *cache)
{
    if (fsize_limited) {
        struct rlimit rl = {1 << 20, 1 << 20};
        signal(SIGXFSZ, SIG_IGN); /* then writes past the limit fail with EFBIG */
        if (setrlimit(RLIMIT_FSIZE, &rl))
            return 20;
    }
    char dir[PATH_MAX];
    if (!make_model(dir))
        return 21;
    gc_classifier_opts o = {.cache_dir = cache};
    gc_classifier *c = NULL;
    gc_err e = {0};
    gc_status st = gc_classifier_open(dir, &o, &c, &e);
    gct_rmdir(dir);
    printf("full disk: %s: %s\n", gc_status_name(st), e.msg);
    const char *why = fsize_limited ? "File too large" : "No space left on device";
    return st == GC_EIO && !c && strstr(e.msg, why) && strstr(e.msg, "weight cache") ? 0 : 22;
}

static void test_full_disk(void)
{
    char small[PATH_MAX] = "/tmp/gctest-XXXXXX";
    CHECK(mkdtemp(small) != NULL, "mkdtemp");
    /* 1 MiB cannot hold the 2.5 MB model's F32 copy */
    int mounted = mount("tmpfs", small, "tmpfs", 0, "size=1m") == 0;
    fsize_limited = !mounted;
    printf("full disk: %s\n", mounted ? "1 MiB tmpfs" : "RLIMIT_FSIZE of 1 MiB (not root)");
    int rc = in_child(load_into, small, 60);
    CHECK(rc == 0, "loading onto a full disk: %s (%d)",
          rc == 128 + SIGBUS ? "SIGBUS" : rc > 128 ? "killed by a signal" : "wrong status", rc);
    CHECK(count_entries(small, ".gemmaclf-tmp-") == 0 && count_entries(small, "gemmaclf-") == 0,
          "files left in the cache directory after the failure");
    /* the command line, with --cache-dir on the same small file system */
    const char *bin = getenv("GC_BIN");
    char dir[PATH_MAX], cmd[3 * PATH_MAX], out[PATH_MAX + 16];
    CHECK(bin && make_model(dir), "GC_BIN (set by make unittest) and a model copy");
    if (bin && *dir) {
        snprintf(out, sizeof out, "%s.err", dir);
        snprintf(cmd, sizeof cmd,
                 "trap '' XFSZ; %s echo '\"Sali\"' | %s classify %s --cache-dir %s >/dev/null 2>%s",
                 fsize_limited ? "ulimit -f 2048;" : "", bin, dir, small, out);
        int st = system(cmd);
        char *err = NULL;
        size_t n = 0;
        gc_err e = {0};
        gc_read_file(out, 1 << 16, &err, &n, &e);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && err &&
                  strstr(err, fsize_limited ? "File too large" : "No space left on device"),
              "CLI on a full disk: exit %d, %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
              err ? err : "?");
        free(err);
        unlink(out);
        gct_rmdir(dir);
    }
    CHECK(count_entries(small, ".gemmaclf-tmp-") == 0, "CLI left a temporary file");
    if (mounted)
        umount(small);
    rmdir(small);
}

/* ---- 11: model files that are not regular files ---- */

typedef struct odd_case {
    const char *dir;
} odd_case;

static int open_odd(const void *arg)
{
    const odd_case *oc = arg;
    gc_classifier *c = NULL;
    gc_err e = {0};
    gc_status st = gc_classifier_open(oc->dir, NULL, &c, &e);
    printf("  %s\n", e.msg);
    return st == GC_EIO && !c && strstr(e.msg, "not a regular file") ? 0 : 30;
}

static void test_not_regular(void)
{
    const char *names[] = {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json", "gemmaclf.json",
                           "model.safetensors.index.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        for (int kind = 0; kind < 2; kind++) {
            char dir[PATH_MAX];
            CHECK(make_model(dir), "model copy");
            const char *p = in(dir, names[i]);
            unlink(p);
            int made = kind ? symlink("/dev/zero", p) == 0 : mkfifo(p, 0600) == 0;
            CHECK(made, "make %s", p);
            odd_case oc = {dir};
            /* a FIFO would block open() forever, /dev/zero would be read until memory ends */
            int rc = in_child(open_odd, &oc, 20);
            CHECK(rc == 0, "%s as %s: %s (%d)", names[i], kind ? "/dev/zero" : "a FIFO",
                  rc == 128 + SIGALRM ? "hung" : "not refused as not a regular file", rc);
            gct_rmdir(dir);
        }
}

/* ---- 12: one huge vocabulary id ---- */

static int replace_in_file(const char *path, const char *from, const char *to)
{
    char *s = NULL;
    size_t n = 0;
    gc_err e = {0};
    if (gc_read_file(path, 1 << 26, &s, &n, &e))
        return 0;
    char *at = strstr(s, from);
    FILE *f = at ? fopen(path, "wb") : NULL;
    int ok = f && fwrite(s, 1, (size_t)(at - s), f) == (size_t)(at - s) &&
             fputs(to, f) >= 0 && fputs(at + strlen(from), f) >= 0;
    if (f && fclose(f))
        ok = 0;
    free(s);
    return ok;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int open_huge_id(const void *dir)
{
    long before = max_rss_kb();
    gc_classifier *c = NULL;
    gc_err e = {0};
    gc_status st = gc_classifier_open(dir, NULL, &c, &e);
    long grew = max_rss_kb() - before;
    printf("huge id: %s (%s), max RSS grew by %ld kB\n", gc_status_name(st), e.msg, grew);
    /* tables sized by the id would take 100,000,000 x 25 bytes */
    return st == GC_EFORMAT && strstr(e.msg, "100000000") && grew < 200 * 1024 ? 0 : 40;
}

static void test_huge_id(void)
{
    char dir[PATH_MAX];
    CHECK(make_model(dir), "model copy");
    CHECK(replace_in_file(in(dir, "tokenizer.json"), "\"<eos>\": 1,", "\"<eos>\": 100000000,"),
          "edit tokenizer.json");
    int rc = in_child(open_huge_id, dir, 60);
    CHECK(rc == 0, "a tokenizer with id 100,000,000: not a clean small error (%d)", rc);
    gct_rmdir(dir);
}

/* ---- 13: NaN / Inf from the weights; invalid UTF-8 in messages ---- */

static void test_non_finite(void)
{
    const float bad[] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        char dir[PATH_MAX];
        CHECK(make_model(dir), "model copy");
        CHECK(poke_weight(in(dir, "model.safetensors"), "model.norm.weight", bad[k]), "poke");
        gc_classifier *c = NULL;
        gc_err e = {0};
        float probs[8];
        CHECK(gc_classifier_open(dir, NULL, &c, &e) == GC_OK, "load: %s", e.msg);
        gc_status st = c ? classify_one(c, probs, &e) : GC_OK;
        CHECK(st == GC_ENUMERIC && strstr(e.msg, "non-finite"), "%s weights: %s (%s)",
              k ? "Inf" : "NaN", gc_status_name(st), e.msg);
        gc_classifier_free(c);
        /* the command line says so by its exit status: 3, not the 1 of bad input */
        const char *bin = getenv("GC_BIN");
        char cmd[2 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "echo '\"Sali\"' | %s classify %s >/dev/null 2>&1", bin ? bin : "false",
                 dir);
        int rc = system(cmd);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 3, "CLI on %s weights: exit %d (want 3)",
              k ? "Inf" : "NaN", WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
        gct_rmdir(dir);
    }
}

static void test_message_utf8(void)
{
    char dir[PATH_MAX];
    CHECK(make_model(dir), "model copy");
    /* gemmaclf.json naming a label of raw invalid bytes, which the error quotes */
    CHECK(gct_write_text(in(dir, "gemmaclf.json"), "{\"score_bias\": {\"H\xff\xfe\xc3te\": 1}}"),
          "write gemmaclf.json");
    gc_classifier *c = NULL;
    gc_err e = {0};
    gc_status st = gc_classifier_open(dir, NULL, &c, &e);
    CHECK(st == GC_EFORMAT && gc_utf8_valid(e.msg, strlen(e.msg)) &&
              strstr(e.msg, "H\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdte"),
          "message quoting invalid bytes must be valid UTF-8: %s (%s)", gc_status_name(st), e.msg);
    gc_classifier_free(c);
    gct_rmdir(dir);
}

int main(void)
{
    char cache[PATH_MAX] = "/tmp/gctest-XXXXXX", cache2[PATH_MAX] = "/tmp/gctest-XXXXXX";
    CHECK(mkdtemp(cache) && mkdtemp(cache2), "cache dirs");
    test_truncated_after_load(cache);
    test_cache_identity(cache2);
    gct_rmdir(cache2);
    test_change_detection();
    test_full_disk();
    test_not_regular();
    test_huge_id();
    test_non_finite();
    test_message_utf8();
    gct_rmdir(cache);
    return gct_finish("test_hostile_files");
}
