/* Pre-tokenizers of tokenizer.json: Split with a string pattern (all five delimiter
 * behaviors, invert), Metaspace and Sequence. A pre-tokenizer turns each piece into
 * sub-pieces; empty pieces are dropped as tokenizers' PreTokenizedString::split does.
 * Regex patterns and other pre-tokenizers are GC_EUNSUPPORTED. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

enum { PT_SPLIT, PT_METASPACE };
enum { B_REMOVED, B_ISOLATED, B_PREV, B_NEXT, B_CONTIGUOUS };
enum { PS_ALWAYS, PS_FIRST, PS_NEVER };

typedef struct pt_step {
    int kind;
    char *pat; /* Split: the pattern; Metaspace: the replacement character */
    size_t npat;
    int behavior, invert;
    int prepend_scheme, split; /* Metaspace */
} pt_step;

struct gc_pretokenizer {
    pt_step *steps;
    size_t n;
};

/* ---- piece lists ---- */
gc_status gc_pieces_add(gc_pieces *p, const char *s, size_t n, int at_origin, gc_err *e)
{
    if (p->n == p->cap) {
        size_t c = p->cap ? p->cap * 2 : 16;
        size_t *st = realloc(p->start, c * sizeof *st);
        if (st)
            p->start = st;
        size_t *ln = realloc(p->len, c * sizeof *ln);
        if (ln)
            p->len = ln;
        uint8_t *o = realloc(p->at_origin, c);
        if (o)
            p->at_origin = o;
        if (!st || !ln || !o)
            return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory for pieces");
        p->cap = c;
    }
    size_t off = p->text.n;
    gc_status rc = gc_buf_put(&p->text, s, n, e);
    if (rc != GC_OK)
        return rc;
    p->start[p->n] = off;
    p->len[p->n] = n;
    p->at_origin[p->n] = (uint8_t)at_origin;
    p->n++;
    return GC_OK;
}

void gc_pieces_clear(gc_pieces *p)
{
    p->n = 0;
    p->text.n = 0;
}

void gc_pieces_free(gc_pieces *p)
{
    gc_buf_free(&p->text);
    free(p->start);
    free(p->len);
    free(p->at_origin);
    memset(p, 0, sizeof *p);
}

/* ---- parsing ---- */
static int parse_behavior(const char *b)
{
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(b, names[i]))
            return i;
    return -1;
}

static gc_status push_step(gc_pretokenizer *pt, pt_step *s, gc_err *e)
{
    pt_step *v = realloc(pt->steps, (pt->n + 1) * sizeof *v);
    if (!v) {
        free(s->pat);
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory reading a pre-tokenizer");
    }
    pt->steps = v;
    pt->steps[pt->n++] = *s;
    return GC_OK;
}

static gc_status set_pat(pt_step *s, const char *p, gc_err *e)
{
    s->npat = strlen(p);
    s->pat = malloc(s->npat + 1);
    if (!s->pat)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory reading a pre-tokenizer");
    memcpy(s->pat, p, s->npat + 1);
    return GC_OK;
}

static gc_status add_step(gc_pretokenizer *pt, const cJSON *j, gc_err *e)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(type))
        return gc_fail(e, GC_EFORMAT, "pre_tokenizer without a \"type\"");
    const char *t = type->valuestring;
    pt_step s = {0};
    gc_status st;
    if (!strcmp(t, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers"), *it;
        if (!cJSON_IsArray(list))
            return gc_fail(e, GC_EFORMAT, "pre_tokenizer Sequence without \"pretokenizers\"");
        cJSON_ArrayForEach(it, list)
        {
            if ((st = add_step(pt, it, e)) != GC_OK)
                return st;
        }
        return GC_OK;
    }
    if (!strcmp(t, "Split")) {
        const char *pat;
        if ((st = gc_json_string_pattern(j, "pre_tokenizer Split", &pat, e)) != GC_OK)
            return st;
        if (!*pat)
            return gc_fail(e, GC_EUNSUPPORTED, "pre_tokenizer Split with an empty pattern");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "behavior");
        if (!cJSON_IsString(b) || (s.behavior = parse_behavior(b->valuestring)) < 0)
            return gc_fail(e, GC_EFORMAT, "pre_tokenizer Split: bad \"behavior\"");
        s.kind = PT_SPLIT;
        s.invert = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "invert"));
        if ((st = set_pat(&s, pat, e)) != GC_OK)
            return st;
        return push_step(pt, &s, e);
    }
    if (!strcmp(t, "Metaspace")) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "replacement");
        if (!cJSON_IsString(r) || !*r->valuestring)
            return gc_fail(e, GC_EFORMAT, "pre_tokenizer Metaspace without \"replacement\"");
        size_t l = strlen(r->valuestring);
        if (!gc_utf8_valid(r->valuestring, l) || gc_utf8_len((unsigned char)r->valuestring[0]) != l)
            return gc_fail(e, GC_EFORMAT, "pre_tokenizer Metaspace: replacement must be one character");
        s.kind = PT_METASPACE;
        s.prepend_scheme = PS_ALWAYS;
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
        if (cJSON_IsString(ps)) {
            if (!strcmp(ps->valuestring, "always"))
                s.prepend_scheme = PS_ALWAYS;
            else if (!strcmp(ps->valuestring, "first"))
                s.prepend_scheme = PS_FIRST;
            else if (!strcmp(ps->valuestring, "never"))
                s.prepend_scheme = PS_NEVER;
            else
                return gc_fail(e, GC_EFORMAT, "pre_tokenizer Metaspace: bad prepend_scheme");
        }
        if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "add_prefix_space"))) {
            if (s.prepend_scheme != PS_NEVER)
                return gc_fail(e, GC_EFORMAT, "pre_tokenizer Metaspace: add_prefix_space does "
                                              "not match prepend_scheme");
        }
        s.split = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "split"));
        if ((st = set_pat(&s, r->valuestring, e)) != GC_OK)
            return st;
        return push_step(pt, &s, e);
    }
    return gc_fail(e, GC_EUNSUPPORTED,
                   "pre_tokenizer \"%s\" is not supported (supported: Split with a string "
                   "pattern, Metaspace, Sequence)",
                   t);
}

gc_status gc_pretokenizer_parse(const cJSON *j, gc_pretokenizer **out, gc_err *e)
{
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return GC_OK;
    gc_pretokenizer *pt = calloc(1, sizeof *pt);
    if (!pt)
        return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory");
    gc_status st = add_step(pt, j, e);
    if (st != GC_OK) {
        gc_pretokenizer_free(pt);
        return st;
    }
    *out = pt;
    return GC_OK;
}

void gc_pretokenizer_free(gc_pretokenizer *pt)
{
    if (!pt)
        return;
    for (size_t i = 0; i < pt->n; i++)
        free(pt->steps[i].pat);
    free(pt->steps);
    free(pt);
}

/* ---- splitting (NormalizedString::split) ---- */
typedef struct span {
    size_t a, b;
    int match;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static gc_status spans_push(spans *l, size_t a, size_t b, int m, gc_err *e)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 16;
        span *v = realloc(l->v, c * sizeof *v);
        if (!v)
            return gc_fail(e, GC_ENOMEM, "tokenizer: out of memory splitting");
        l->v = v;
        l->cap = c;
    }
    l->v[l->n++] = (span){a, b, m};
    return GC_OK;
}

/* Occurrences of pat in s (left to right, non-overlapping) and the gaps between them. */
static gc_status find_matches(const char *s, size_t n, const char *pat, size_t np, int invert,
                              spans *out, gc_err *e)
{
    gc_status st;
    if (!n)
        return spans_push(out, 0, 0, invert, e);
    size_t prev = 0;
    while (prev < n) {
        const char *hit = np <= n - prev ? memmem(s + prev, n - prev, pat, np) : NULL;
        if (!hit)
            break;
        size_t h = (size_t)(hit - s);
        if (h > prev && (st = spans_push(out, prev, h, invert, e)))
            return st;
        if ((st = spans_push(out, h, h + np, !invert, e)))
            return st;
        prev = h + np;
    }
    if (prev < n && (st = spans_push(out, prev, n, invert, e)))
        return st;
    return GC_OK;
}

/* Applies a delimiter behavior in place: afterwards v[i].match means "remove". */
static void apply_behavior(spans *l, int behavior)
{
    size_t k = 0;
    int prev = 0;
    switch (behavior) {
    case B_REMOVED: return;
    case B_ISOLATED:
        for (size_t i = 0; i < l->n; i++)
            l->v[i].match = 0;
        return;
    case B_CONTIGUOUS:
    case B_PREV:
        for (size_t i = 0; i < l->n; i++) {
            span s = l->v[i];
            int merge = behavior == B_PREV ? (s.match && !prev) : (s.match == prev);
            if (merge && k)
                l->v[k - 1].b = s.b;
            else
                l->v[k++] = (span){s.a, s.b, 0};
            prev = s.match;
        }
        l->n = k;
        return;
    case B_NEXT: /* walk backwards, merge a match into the piece after it */
        for (size_t i = l->n; i-- > 0;) {
            span s = l->v[i];
            /* reuse the tail of the array as the output stack (k counts from the end) */
            if (s.match && !prev && k)
                l->v[l->n - k].a = s.a;
            else
                l->v[l->n - ++k] = (span){s.a, s.b, 0};
            prev = s.match;
        }
        memmove(l->v, l->v + (l->n - k), k * sizeof *l->v);
        l->n = k;
        return;
    }
}

static gc_status emit(const char *s, const spans *l, int at_origin, gc_pieces *out, gc_err *e)
{
    for (size_t i = 0; i < l->n; i++) {
        const span *p = &l->v[i];
        if (p->match || p->b == p->a)
            continue;
        gc_status st = gc_pieces_add(out, s + p->a, p->b - p->a, at_origin && p->a == 0, e);
        if (st != GC_OK)
            return st;
    }
    return GC_OK;
}

static gc_status split_piece(const pt_step *st, const char *s, size_t n, int at_origin,
                             spans *sp, gc_pieces *out, gc_err *e)
{
    sp->n = 0;
    gc_status rc = find_matches(s, n, st->pat, st->npat, st->invert, sp, e);
    if (rc != GC_OK)
        return rc;
    apply_behavior(sp, st->behavior);
    return emit(s, sp, at_origin, out, e);
}

static gc_status metaspace_piece(const pt_step *st, const char *s, size_t n, int at_origin,
                                 spans *sp, gc_buf *tmp, gc_pieces *out, gc_err *e)
{
    gc_status rc;
    tmp->n = 0;
    int starts = n >= st->npat && !memcmp(s, st->pat, st->npat);
    if (!starts && (st->prepend_scheme == PS_ALWAYS || (st->prepend_scheme == PS_FIRST && at_origin))) {
        /* a string starting with ' ' gets it replaced, which then counts as starting */
        if (!(n && s[0] == ' ') && (rc = gc_buf_put(tmp, st->pat, st->npat, e)))
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        rc = s[i] == ' ' ? gc_buf_put(tmp, st->pat, st->npat, e) : gc_buf_put(tmp, s + i, 1, e);
        if (rc != GC_OK)
            return rc;
    }
    if (!st->split)
        return tmp->n ? gc_pieces_add(out, tmp->p, tmp->n, at_origin, e) : GC_OK;
    sp->n = 0;
    if ((rc = find_matches(tmp->p, tmp->n, st->pat, st->npat, 0, sp, e)))
        return rc;
    apply_behavior(sp, B_NEXT);
    return emit(tmp->p, sp, at_origin, out, e);
}

gc_status gc_pretokenizer_apply(const gc_pretokenizer *pt, gc_pieces *io, gc_pieces *tmp,
                                gc_err *e)
{
    if (!pt)
        return GC_OK;
    spans sp = {0};
    gc_buf mbuf = {0};
    gc_status rc = GC_OK;
    for (size_t k = 0; k < pt->n && rc == GC_OK; k++) {
        const pt_step *st = &pt->steps[k];
        gc_pieces_clear(tmp);
        for (size_t i = 0; i < io->n && rc == GC_OK; i++) {
            const char *s = io->text.p + io->start[i];
            size_t n = io->len[i];
            if (st->kind == PT_SPLIT && !st->invert && !memmem(s, n, st->pat, st->npat))
                rc = n ? gc_pieces_add(tmp, s, n, io->at_origin[i], e) : GC_OK; /* fast path */
            else if (st->kind == PT_SPLIT)
                rc = split_piece(st, s, n, io->at_origin[i], &sp, tmp, e);
            else
                rc = metaspace_piece(st, s, n, io->at_origin[i], &sp, &mbuf, tmp, e);
        }
        gc_pieces t = *io;
        *io = *tmp;
        *tmp = t;
    }
    free(sp.v);
    gc_buf_free(&mbuf);
    return rc;
}
