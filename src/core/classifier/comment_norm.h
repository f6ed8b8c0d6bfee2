/* gemmaclf.json's "comment_norm": how a model wants each comment rewritten before it builds the
 * prompt and before the n-gram head reads it, because it was trained on comments rewritten so.
 *   absent or null  the comment as it is
 *   "squeeze"       bytes A-Z lower-cased (only those: no locale, no Unicode case folding), then
 *                   every run of more than 2 equal characters cut to 2 ("cholaaa" -> "cholaa");
 *                   a byte that is not valid UTF-8 counts as one character. train/common.py
 *                   squeeze_comment is the same rule over Python strings. */
#ifndef GC_COMMENT_NORM_H
#define GC_COMMENT_NORM_H

#include <stddef.h>

#include "common/buf.h"
#include "common/error.h"

typedef enum gc_comment_norm {
    GC_COMMENT_NORM_NONE = 0,
    GC_COMMENT_NORM_SQUEEZE = 1
} gc_comment_norm;

/* The rule named name; GC_EUNSUPPORTED for a name this engine does not know, so that a model
 * trained on rewritten comments is never served their raw form. */
gc_status gc_comment_norm_parse(const char *name, gc_comment_norm *out, gc_err *e);
/* The rule's name in gemmaclf.json (NULL for none). */
const char *gc_comment_norm_name(gc_comment_norm k);

/* out = s[0..n) rewritten by "squeeze" (out's previous contents are dropped). The output is
 * never longer than the input. */
gc_status gc_comment_squeeze(const char *s, size_t n, gc_buf *out, gc_err *e);

#endif
