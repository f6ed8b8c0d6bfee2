/* Decoders of tokenizer.json, applied in order to the list of token strings
 * (tokenizers' decode_chain): Replace (string pattern), ByteFallback (<0xXX> runs become
 * their bytes when they form valid UTF-8, else one U+FFFD per byte), Fuse, Strip, Metaspace
 * and Sequence. Others are GC_EUNSUPPORTED. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

enum { D_REPLACE, D_BYTE_FALLBACK, D_FUSE, D_STRIP, D_METASPACE };

typedef struct d_step {
    int kind;
    char *a, *b; /* Replace: pattern -> content; Strip/Metaspace: the character */
    size_t na, nb;
    int start, stop;  /* Strip */
    int prepend;      /* Metaspace: prepend_scheme != never */
} d_step;

struct gc_decoder {
    d_step *steps;
    size_t n;
};

gc_status gc_strlist_add(gc_strlist *l, const char *s, size_t n, gc_err *e)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 32;
        size_t *st = realloc(l->start, c * sizeof *st);
        if (st)
            l->start = st;
        size_t *ln = realloc(l->len, c * sizeof *ln);
        if (ln)
            l->len = ln;
        if (!st || !ln)
            return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory decoding");
        l->cap = c;
    }
    size_t off = l->text.n;
    gc_status rc = gc_buf_put(&l->text, s, n, e);
    if (rc != GC_OK)
        return rc;
    l->start[l->n] = off;
    l->len[l->n++] = n;
    return GC_OK;
}

void gc_strlist_free(gc_strlist *l)
{
    gc_buf_free(&l->text);
    free(l->start);
    free(l->len);
    memset(l, 0, sizeof *l);
}

static char *dup_str(const char *s, size_t *n)
{
    *n = strlen(s);
    char *d = malloc(*n + 1);
    if (d)
        memcpy(d, s, *n + 1);
    return d;
}

static int one_char(const char *s)
{
    size_t l = strlen(s);
    return l && gc_utf8_valid(s, l) && gc_utf8_len((unsigned char)s[0]) == l;
}

static gc_status add_step(gc_decoder *d, const cJSON *j, gc_err *e)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(type))
        return gc_fail(e, GC_EFORMAT, "decoder without a \"type\"");
    const char *t = type->valuestring;
    gc_status st;
    if (!strcmp(t, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "decoders"), *it;
        if (!cJSON_IsArray(list))
            return gc_fail(e, GC_EFORMAT, "decoder Sequence without \"decoders\"");
        cJSON_ArrayForEach(it, list)
        {
            if ((st = add_step(d, it, e)) != GC_OK)
                return st;
        }
        return GC_OK;
    }
    d_step s = {0};
    if (!strcmp(t, "Replace")) {
        const char *pat;
        if ((st = gc_json_string_pattern(j, "decoder Replace", &pat, e)) != GC_OK)
            return st;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (!cJSON_IsString(c))
            return gc_fail(e, GC_EFORMAT, "decoder Replace without \"content\"");
        if (!*pat)
            return gc_fail(e, GC_EUNSUPPORTED, "decoder Replace with an empty pattern");
        s.kind = D_REPLACE;
        s.a = dup_str(pat, &s.na);
        s.b = dup_str(c->valuestring, &s.nb);
        if (!s.a || !s.b)
            goto oom;
    } else if (!strcmp(t, "ByteFallback")) {
        s.kind = D_BYTE_FALLBACK;
    } else if (!strcmp(t, "Fuse")) {
        s.kind = D_FUSE;
    } else if (!strcmp(t, "Strip")) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "start");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "stop");
        if (!cJSON_IsString(c) || !one_char(c->valuestring) || !cJSON_IsNumber(a) ||
            !cJSON_IsNumber(b) || a->valueint < 0 || b->valueint < 0)
            return gc_fail(e, GC_EFORMAT, "decoder Strip needs content (one character), start, stop");
        s.kind = D_STRIP;
        s.start = a->valueint;
        s.stop = b->valueint;
        if (!(s.a = dup_str(c->valuestring, &s.na)))
            goto oom;
    } else if (!strcmp(t, "Metaspace")) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "replacement");
        if (!cJSON_IsString(r) || !one_char(r->valuestring))
            return gc_fail(e, GC_EFORMAT, "decoder Metaspace needs a one-character replacement");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
        s.kind = D_METASPACE;
        s.prepend = !(cJSON_IsString(ps) && !strcmp(ps->valuestring, "never")) &&
                    !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "add_prefix_space"));
        if (!(s.a = dup_str(r->valuestring, &s.na)))
            goto oom;
    } else {
        return gc_fail(e, GC_EUNSUPPORTED,
                       "decoder \"%s\" is not supported (supported: Replace with a string "
                       "pattern, ByteFallback, Fuse, Strip, Metaspace, Sequence)",
                       t);
    }
    d_step *v = realloc(d->steps, (d->n + 1) * sizeof *v);
    if (!v)
        goto oom;
    d->steps = v;
    d->steps[d->n++] = s;
    return GC_OK;
oom:
    free(s.a);
    free(s.b);
    return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory reading a decoder");
}

gc_status gc_decoder_parse(const cJSON *j, gc_decoder **out, gc_err *e)
{
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return GC_OK;
    gc_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    gc_status st = add_step(d, j, e);
    if (st != GC_OK) {
        gc_decoder_free(d);
        return st;
    }
    *out = d;
    return GC_OK;
}

void gc_decoder_free(gc_decoder *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->steps[i].a);
        free(d->steps[i].b);
    }
    free(d->steps);
    free(d);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* "<0xXX>" -> the byte (Rust's u8::from_str_radix also takes "+X"); -1 otherwise. */
static int byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    if (s[3] == '+' && lo >= 0)
        return lo;
    return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

static gc_status flush_bytes(gc_buf *bytes, gc_strlist *out, gc_err *e)
{
    gc_status st = GC_OK;
    if (!bytes->n)
        return GC_OK;
    if (gc_utf8_valid(bytes->p, bytes->n))
        st = gc_strlist_add(out, bytes->p, bytes->n, e);
    else
        for (size_t i = 0; i < bytes->n && st == GC_OK; i++)
            st = gc_strlist_add(out, "\xEF\xBF\xBD", 3, e);
    bytes->n = 0;
    return st;
}

static gc_status step_token(const d_step *s, size_t idx, const char *t, size_t n, gc_buf *w,
                            gc_err *e)
{
    gc_status st = GC_OK;
    w->n = 0;
    if (s->kind == D_REPLACE) {
        size_t i = 0;
        while (st == GC_OK && i < n) {
            const char *hit = s->na <= n - i ? memmem(t + i, n - i, s->a, s->na) : NULL;
            if (!hit)
                break;
            size_t h = (size_t)(hit - t);
            if ((st = gc_buf_put(w, t + i, h - i, e)) == GC_OK)
                st = gc_buf_put(w, s->b, s->nb, e);
            i = h + s->na;
        }
        return st == GC_OK ? gc_buf_put(w, t + i, n - i, e) : st;
    }
    if (s->kind == D_METASPACE) {
        for (size_t i = 0; i < n && st == GC_OK;) {
            size_t l = gc_utf8_len((unsigned char)t[i]);
            if (l == s->na && !memcmp(t + i, s->a, l)) {
                if (!(idx == 0 && s->prepend))
                    st = gc_buf_put(w, " ", 1, e);
            } else {
                st = gc_buf_put(w, t + i, l, e);
            }
            i += l;
        }
        return st == GC_OK ? gc_buf_put(w, "", 0, e) : st;
    }
    /* Strip: up to `start` leading and `stop` trailing copies of the character */
    size_t a = 0, b = n;
    for (int k = 0; k < s->start && b - a >= s->na && !memcmp(t + a, s->a, s->na); k++)
        a += s->na;
    for (int k = 0; k < s->stop && b - a >= s->na && !memcmp(t + b - s->na, s->a, s->na); k++)
        b -= s->na;
    return gc_buf_put(w, t + a, b - a, e);
}

gc_status gc_decoder_apply(const gc_decoder *d, gc_strlist *io, gc_err *e)
{
    if (!d)
        return GC_OK;
    gc_strlist out = {0};
    gc_buf w = {0};
    gc_status st = GC_OK;
    for (size_t k = 0; k < d->n && st == GC_OK; k++) {
        const d_step *s = &d->steps[k];
        out.n = 0;
        out.text.n = 0;
        if (s->kind == D_FUSE) {
            st = gc_strlist_add(&out, io->text.p ? io->text.p : "", io->text.n, e);
        } else if (s->kind == D_BYTE_FALLBACK) {
            w.n = 0; /* w doubles as the pending byte run */
            for (size_t i = 0; i < io->n && st == GC_OK; i++) {
                const char *t = io->text.p + io->start[i];
                int b = byte_token(t, io->len[i]);
                if (b >= 0) {
                    char c = (char)b;
                    st = gc_buf_put(&w, &c, 1, e);
                } else if ((st = flush_bytes(&w, &out, e)) == GC_OK) {
                    st = gc_strlist_add(&out, t, io->len[i], e);
                }
            }
            if (st == GC_OK)
                st = flush_bytes(&w, &out, e);
        } else {
            for (size_t i = 0; i < io->n && st == GC_OK; i++) {
                st = step_token(s, i, io->text.p + io->start[i], io->len[i], &w, e);
                if (st == GC_OK)
                    st = gc_strlist_add(&out, w.p ? w.p : "", w.n, e);
            }
        }
        gc_strlist t = *io;
        *io = out;
        out = t;
    }
    gc_strlist_free(&out);
    gc_buf_free(&w);
    return st;
}
