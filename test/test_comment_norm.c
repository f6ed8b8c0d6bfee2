/* The "squeeze" comment rewrite (classifier/comment_norm.h) by examples written down by hand,
 * its invariants on random bytes (never longer, idempotent, no run of 3), and gemmaclf.json's
 * "comment_norm" parsing. That the classifier applies it to both the prompt and the n-gram head:
 * test_ngram_head.c; that it equals train/common.py squeeze_comment: test_train_smoke.py. */
#include <stdint.h>
#include <string.h>

#include "classifier/comment_norm.h"
#include "classifier/labels_config.h"
#include "gc_test.h"

static void check_case(const char *in, size_t n, const char *want, size_t nwant, const char *what)
{
    gc_buf b = {0};
    gc_err e = {0};
    CHECK(gc_comment_squeeze(in, n, &b, &e) == GC_OK && b.n == nwant && !memcmp(b.p, want, nwant) &&
              b.p[b.n] == '\0',
          "%s: got %zu bytes \"%.*s\"", what, b.n, (int)b.n, b.p ? b.p : "");
    gc_buf_free(&b);
}

#define CASE(in, want, what) check_case(in, sizeof(in) - 1, want, sizeof(want) - 1, what)

static void test_examples(void)
{
    CASE("", "", "empty");
    CASE("Madar CHOD", "madar chod", "A-Z lower-cased");
    CASE("cholaaa", "cholaa", "a run of 3 cut to 2");
    CASE("cholaa", "cholaa", "a run of 2 kept");
    CASE("nooooo bc!!!!!", "noo bc!!", "every run, letters and punctuation");
    CASE("AaAa", "aa", "lower-cased first: A and a are one run");
    CASE("\xc3\x84\xc3\x84\xc3\x84", "\xc3\x84\xc3\x84", "U+00C4 not lower-cased, its run cut");
    CASE("\xc3\x84\xc3\xa4", "\xc3\x84\xc3\xa4", "U+00C4 and U+00E4 differ");
    CASE("\xf0\x9f\x91\x8e\xf0\x9f\x91\x8e\xf0\x9f\x91\x8e\xf0\x9f\x96\x95",
         "\xf0\x9f\x91\x8e\xf0\x9f\x91\x8e\xf0\x9f\x96\x95", "4-byte characters: 3 thumbs down -> 2");
    CASE("\xe0\xa4\xb9\xe0\xa4\xb9\xe0\xa4\xb9\xe0\xa4\xbe", "\xe0\xa4\xb9\xe0\xa4\xb9\xe0\xa4\xbe",
         "Devanagari run cut");
    CASE("a\n\n\n\nb   c", "a\n\nb  c", "blank runs cut too");
    CASE("\xff\xff\xff", "\xff\xff", "an invalid byte is one character");
    CASE("\xc3\xa9\xc3\xa9\xc3\xa9\xc3", "\xc3\xa9\xc3\xa9\xc3", "a cut character at the end stays");
    CASE("\x80\x80\x80\xe2\x82", "\x80\x80\xe2\x82", "stray continuation bytes, truncated lead");
    CASE("a\0\0\0b", "a\0\0b", "NUL bytes are characters too");
}

static uint32_t next(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

static void test_random(void)
{
    /* bytes drawn mostly from a few values, so that runs are common */
    static const unsigned char alphabet[] = {'a', 'A', 'b', ' ', 0xc3, 0xa4, 0x84, 0xff, 0xf0, 0x9f};
    uint32_t seed = 11;
    int bad_len = 0, bad_idem = 0, bad_run = 0;
    for (int t = 0; t < 2000; t++) {
        char in[64];
        size_t n = next(&seed) % sizeof in;
        for (size_t i = 0; i < n; i++)
            in[i] = (char)alphabet[(next(&seed) >> 8) % sizeof alphabet];
        gc_buf a = {0}, b = {0};
        gc_err e = {0};
        if (gc_comment_squeeze(in, n, &a, &e) || gc_comment_squeeze(a.p, a.n, &b, &e)) {
            bad_idem++;
        } else {
            bad_len += a.n > n;
            bad_idem += a.n != b.n || memcmp(a.p, b.p, a.n);
            for (size_t i = 0; i + 2 < a.n; i++)
                bad_run += a.p[i] == a.p[i + 1] && a.p[i] == a.p[i + 2] &&
                           (unsigned char)a.p[i] < 0x80;
        }
        gc_buf_free(&a);
        gc_buf_free(&b);
    }
    CHECK(!bad_len, "never longer than the input (%d longer)", bad_len);
    CHECK(!bad_idem, "squeezing twice = once (%d differ)", bad_idem);
    CHECK(!bad_run, "no ASCII byte 3 times in a row (%d)", bad_run);
}

static void test_config(void)
{
    gc_labels_config c;
    gc_err e = {0};
    CHECK(gc_labels_config_parse("{}", &c, &e) == GC_OK && c.comment_norm == GC_COMMENT_NORM_NONE,
          "absent: none (%s)", e.msg);
    gc_labels_config_free(&c);
    CHECK(gc_labels_config_parse("{\"comment_norm\": null}", &c, &e) == GC_OK &&
              c.comment_norm == GC_COMMENT_NORM_NONE,
          "null: none (%s)", e.msg);
    gc_labels_config_free(&c);
    CHECK(gc_labels_config_parse("{\"comment_norm\": \"squeeze\"}", &c, &e) == GC_OK &&
              c.comment_norm == GC_COMMENT_NORM_SQUEEZE &&
              !strcmp(gc_comment_norm_name(c.comment_norm), "squeeze"),
          "\"squeeze\" (%s)", e.msg);
    gc_labels_config_free(&c);
    CHECK(gc_labels_config_parse("{\"comment_norm\": \"lowercase\"}", &c, &e) == GC_EUNSUPPORTED &&
              strstr(e.msg, "lowercase") && strstr(e.msg, "squeeze"),
          "an unknown rule is refused, named: %s", e.msg);
    CHECK(gc_labels_config_parse("{\"comment_norm\": 1}", &c, &e) == GC_EFORMAT &&
              strstr(e.msg, "comment_norm"),
          "not a string: %s", e.msg);
    CHECK(gc_comment_norm_name(GC_COMMENT_NORM_NONE) == NULL, "none has no name");
}

int main(void)
{
    test_examples();
    test_random();
    test_config();
    return gct_finish("test_comment_norm");
}
