/* The Gemma 3 chat prompt: rendering, its fixed frame, and clipping long comments (see
 * prompt.h). */
#include <stdlib.h>
#include <string.h>

#include "classifier/prompt.h"
#include "common/buf.h"
#include "common/utf8.h"

/* A rendered prompt and the byte offsets of its special-token markers. */
typedef struct rendered {
    gc_buf text;
    size_t marker_at[4];
    size_t n_markers;
} rendered;

static gc_status put_marker(rendered *r, const gc_tokenizer *t, int32_t id, gc_err *e)
{
    const char *tok = gc_tokenizer_token(t, id);
    r->marker_at[r->n_markers++] = r->text.n;
    return gc_buf_put(&r->text, tok, strlen(tok), e);
}

/* content = trim(prefix + trim(comment)), as the template renders message['content'] | trim. */
static gc_status render_content(const char *prefix, size_t np, const char *comment, size_t len,
                                gc_buf *content, size_t *a, size_t *b, gc_err *e)
{
    gc_utf8_trim(comment ? comment : "", len, gc_python_is_space, 1, 1, a, b);
    gc_status st = gc_buf_put(content, prefix, np, e);
    if (st == GC_OK)
        st = gc_buf_put(content, comment ? comment + *a : "", *b - *a, e);
    if (st == GC_OK)
        gc_utf8_trim(content->p, content->n, gc_python_is_space, 1, 1, a, b);
    return st;
}

gc_status gc_prompt_encode(const gc_tokenizer *t, const char *prefix, const char *comment,
                           size_t len, gc_ids *out, gc_err *e)
{
    if (!prefix)
        prefix = "";
    size_t np = strlen(prefix);
    if ((!comment && len) || !gc_utf8_valid(prefix, np) || (len && !gc_utf8_valid(comment, len)))
        return gc_fail(e, GC_EINVAL, "tokenizer: chat prompt text is not valid UTF-8");
    int32_t bos = gc_tokenizer_bos_id(t);
    int32_t sot = gc_tokenizer_token_id(t, "<start_of_turn>");
    int32_t eot = gc_tokenizer_token_id(t, "<end_of_turn>");
    if (sot < 0 || eot < 0 || bos < 0 || !gc_tokenizer_token(t, bos) ||
        !gc_tokenizer_has_gemma_chat_template(t))
        return gc_fail(e, GC_EUNSUPPORTED,
                       "tokenizer: not a Gemma chat tokenizer (needs <bos>, <start_of_turn>, "
                       "<end_of_turn> and a Gemma chat template)");
    gc_buf content = {0};
    rendered r = {0};
    size_t a, b;
    gc_status st = render_content(prefix, np, comment, len, &content, &a, &b, e);
    /* Render the whole string and encode it once, recognising special tokens only at the
     * template's own markers: the ids then equal HF encoding the rendered string. */
    if (st == GC_OK && !(st = put_marker(&r, t, bos, e)) && !(st = put_marker(&r, t, sot, e)) &&
        !(st = gc_buf_put(&r.text, "user\n", 5, e)) &&
        !(st = gc_buf_put(&r.text, content.p + a, b - a, e)) &&
        !(st = put_marker(&r, t, eot, e)) && !(st = gc_buf_put(&r.text, "\n", 1, e)) &&
        !(st = put_marker(&r, t, sot, e)))
        st = gc_buf_put(&r.text, "model\n", 6, e);
    if (st == GC_OK)
        st = gc_tokenizer_encode_special_at(t, r.text.p, r.text.n, r.marker_at, r.n_markers,
                                            out, e);
    gc_buf_free(&content);
    gc_buf_free(&r.text);
    return st;
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

static size_t common_suffix(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[na - 1 - i] == b[nb - 1 - i])
        i++;
    return i;
}

/* The frame is what prompts of comments that differ in their first and last characters have
 * in common, so it cannot include comment tokens. */
gc_status gc_prompt_frame_find(const gc_tokenizer *t, const char *prefix, gc_prompt_frame *f,
                               gc_err *e)
{
    static const char *const probes[] = {"a", "Z", "7", "!", "\xe4\xbd\xa0", "(x)"};
    gc_ids p = {0};
    gc_status st = GC_OK;
    size_t nhead = 0, ntail = 0, minlen = 0;
    for (size_t i = 0; i < sizeof probes / sizeof probes[0] && !st; i++) {
        gc_ids_clear(&p);
        st = gc_prompt_encode(t, prefix, probes[i], strlen(probes[i]), &p, e);
        if (st)
            break;
        if (i == 0) {
            st = gc_ids_append(&f->head, p.v, p.n, e);
            if (!st)
                st = gc_ids_append(&f->tail, p.v, p.n, e);
            nhead = ntail = minlen = p.n;
            continue;
        }
        size_t h = common_prefix(f->head.v, nhead, p.v, p.n);
        size_t tl = common_suffix(f->tail.v, f->tail.n, p.v, p.n);
        nhead = h < nhead ? h : nhead;
        ntail = tl < ntail ? tl : ntail;
        minlen = p.n < minlen ? p.n : minlen;
    }
    gc_ids_free(&p);
    if (st)
        return st;
    if (nhead + ntail >= minlen) /* cannot happen for a sane template; be safe */
        ntail = 0, nhead = minlen ? minlen - 1 : 0;
    f->head.n = nhead;
    memmove(f->tail.v, f->tail.v + f->tail.n - ntail, ntail * sizeof(int32_t));
    f->tail.n = ntail;
    return GC_OK;
}

void gc_prompt_frame_free(gc_prompt_frame *f)
{
    gc_ids_free(&f->head);
    gc_ids_free(&f->tail);
}

static int is_ascii_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

gc_status gc_prompt_clip_text(const char **text, size_t *len, size_t max_bytes, char **owned,
                              gc_err *e)
{
    const char *s = *text;
    size_t n = *len;
    *owned = NULL;
    /* ASCII blanks are single valid characters, so dropping them before the repair is the same
     * as after it. */
    while (n > 0 && is_ascii_space(*s))
        s++, n--;
    /* Cut first, then repair only what is kept: a huge invalid text never gets a repaired copy
     * of its whole length (up to 3 bytes per byte). The prefix taken is exactly what cutting
     * the repaired whole at max_bytes would keep. */
    size_t take = gc_utf8_repaired_prefix(s, n, max_bytes);
    if (!gc_utf8_valid(s, take)) {
        if (!(*owned = gc_utf8_repair(s, take, &n)))
            return gc_fail(e, GC_ENOMEM, "out of memory repairing a %zu-byte text", take);
        s = *owned;
    } else {
        n = take;
    }
    *text = s;
    *len = n;
    return GC_OK;
}

void gc_prompt_truncate(const gc_prompt_frame *f, gc_ids *out, size_t base,
                        size_t max_comment_ids)
{
    int32_t *ids = out->v + base;
    size_t n = out->n - base;
    size_t cs = common_prefix(ids, n, f->head.v, f->head.n);
    size_t ce = n - common_suffix(ids, n, f->tail.v, f->tail.n);
    if (ce < cs)
        ce = cs;
    if (ce - cs > max_comment_ids) {
        memmove(ids + cs + max_comment_ids, ids + ce, (n - ce) * sizeof *ids);
        out->n = base + cs + max_comment_ids + (n - ce);
    }
}
