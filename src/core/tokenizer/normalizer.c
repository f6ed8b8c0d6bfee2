/* Normalizers of tokenizer.json: Replace (string pattern), Prepend, Strip and Sequence
 * (flattened). Unicode normalization forms (NFC, NFKC, ...) and the rest are reported as
 * GC_EUNSUPPORTED: none of the reference tokenizers uses them, and an approximation would
 * silently change ids. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

enum { NZ_REPLACE, NZ_PREPEND, NZ_STRIP };

typedef struct nz_step {
    int kind;
    char *a, *b; /* Replace: pattern -> content; Prepend: a */
    size_t na, nb;
    int left, right; /* Strip */
} nz_step;

struct gc_normalizer {
    nz_step *steps;
    size_t n;
};

static char *dup_str(const char *s, size_t *n)
{
    *n = strlen(s);
    char *d = malloc(*n + 1);
    if (d)
        memcpy(d, s, *n + 1);
    return d;
}

static gc_status add_step(gc_normalizer *nz, const cJSON *j, gc_err *e)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(type))
        return gc_fail(e, GC_EFORMAT, "normalizer without a \"type\"");
    const char *t = type->valuestring;
    if (!strcmp(t, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers"), *it;
        if (!cJSON_IsArray(list))
            return gc_fail(e, GC_EFORMAT, "normalizer Sequence without \"normalizers\"");
        cJSON_ArrayForEach(it, list)
        {
            gc_status st = add_step(nz, it, e);
            if (st != GC_OK)
                return st;
        }
        return GC_OK;
    }
    nz_step s = {0};
    if (!strcmp(t, "Replace")) {
        const char *pat;
        gc_status st = gc_json_string_pattern(j, "normalizer Replace", &pat, e);
        if (st != GC_OK)
            return st;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (!cJSON_IsString(c))
            return gc_fail(e, GC_EFORMAT, "normalizer Replace without \"content\"");
        if (!*pat)
            return gc_fail(e, GC_EUNSUPPORTED, "normalizer Replace with an empty pattern");
        s.kind = NZ_REPLACE;
        s.a = dup_str(pat, &s.na);
        s.b = dup_str(c->valuestring, &s.nb);
    } else if (!strcmp(t, "Prepend")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prepend");
        if (!cJSON_IsString(p))
            return gc_fail(e, GC_EFORMAT, "normalizer Prepend without \"prepend\"");
        s.kind = NZ_PREPEND;
        s.a = dup_str(p->valuestring, &s.na);
    } else if (!strcmp(t, "Strip")) {
        s.kind = NZ_STRIP;
        s.left = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "strip_left"));
        s.right = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "strip_right"));
    } else {
        return gc_fail(e, GC_EUNSUPPORTED,
                       "normalizer \"%s\" is not supported (supported: Replace with a string "
                       "pattern, Prepend, Strip, Sequence)",
                       t);
    }
    if ((s.kind == NZ_REPLACE && (!s.a || !s.b)) || (s.kind == NZ_PREPEND && !s.a)) {
        free(s.a);
        free(s.b);
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory reading a normalizer");
    }
    nz_step *v = realloc(nz->steps, (nz->n + 1) * sizeof *v);
    if (!v) {
        free(s.a);
        free(s.b);
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory reading a normalizer");
    }
    nz->steps = v;
    nz->steps[nz->n++] = s;
    return GC_OK;
}

gc_status gc_normalizer_parse(const cJSON *j, gc_normalizer **out, gc_err *e)
{
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return GC_OK;
    gc_normalizer *nz = calloc(1, sizeof *nz);
    if (!nz)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    gc_status st = add_step(nz, j, e);
    if (st != GC_OK) {
        gc_normalizer_free(nz);
        return st;
    }
    *out = nz;
    return GC_OK;
}

void gc_normalizer_free(gc_normalizer *nz)
{
    if (!nz)
        return;
    for (size_t i = 0; i < nz->n; i++) {
        free(nz->steps[i].a);
        free(nz->steps[i].b);
    }
    free(nz->steps);
    free(nz);
}

/* Replaces every non-overlapping occurrence (left to right) of pat. */
static gc_status replace(const nz_step *st, const char *s, size_t n, gc_buf *out, gc_err *e)
{
    size_t i = 0;
    gc_status rc;
    while (i < n) {
        const char *hit = st->na <= n - i ? memmem(s + i, n - i, st->a, st->na) : NULL;
        if (!hit)
            break;
        size_t h = (size_t)(hit - s);
        if ((rc = gc_buf_put(out, s + i, h - i, e)) || (rc = gc_buf_put(out, st->b, st->nb, e)))
            return rc;
        i = h + st->na;
    }
    return gc_buf_put(out, s + i, n - i, e);
}

static gc_status strip(const nz_step *st, const char *s, size_t n, gc_buf *out, gc_err *e)
{
    size_t a, b;
    gc_utf8_trim(s, n, gc_unicode_is_white_space, st->left, st->right, &a, &b);
    return gc_buf_put(out, s + a, b - a, e);
}

gc_status gc_normalizer_apply(const gc_normalizer *nz, const char *s, size_t n, gc_buf *out,
                              gc_buf *tmp, gc_err *e)
{
    out->n = 0;
    gc_status st = gc_buf_put(out, s, n, e);
    if (st != GC_OK || !nz)
        return st;
    for (size_t i = 0; i < nz->n; i++) {
        const nz_step *step = &nz->steps[i];
        tmp->n = 0;
        switch (step->kind) {
        case NZ_REPLACE: st = replace(step, out->p, out->n, tmp, e); break;
        case NZ_STRIP: st = strip(step, out->p, out->n, tmp, e); break;
        default: /* Prepend: only to non-empty strings */
            if (out->n && (st = gc_buf_put(tmp, step->a, step->na, e)) != GC_OK)
                return st;
            st = gc_buf_put(tmp, out->p, out->n, e);
        }
        if (st != GC_OK)
            return st;
        gc_buf t = *out;
        *out = *tmp;
        *tmp = t;
    }
    return GC_OK;
}
