/* The Gemma 3 chat prompt, the one place it is written down. For one comment:
 *   <bos><start_of_turn>user\n + trim(prefix + trim(comment))
 *   + <end_of_turn>\n<start_of_turn>model\n
 * trim() is Python's str.strip() (the template's `| trim`). The turn markers are special
 * tokens; the prefix and the comment are ordinary text, so a comment cannot forge a turn. The
 * ids equal apply_chat_template(..., add_generation_prompt=True) for comments without special-
 * token strings. */
#ifndef GC_PROMPT_H
#define GC_PROMPT_H

#include <stddef.h>

#include "common/error.h"
#include "common/ids.h"
#include "tokenizer/tokenizer.h"

/* The instruction in front of the comment when gemmaclf.json names none (the seed
 * classifier was trained with it). */
#define GC_DEFAULT_PROMPT_PREFIX \
    "classify the following comment into Hate, Extreme Hate or Not Hate: "

/* Appends the prompt's ids for comment[0..len) (valid UTF-8) to out. GC_EUNSUPPORTED when
 * the tokenizer is not a Gemma chat tokenizer. */
gc_status gc_prompt_encode(const gc_tokenizer *t, const char *prefix, const char *comment,
                           size_t len, gc_ids *out, gc_err *e);

/* The ids every prompt shares at its start (head) and end (tail), whatever the comment: a
 * session caches the head's key/values and truncation keeps the tail. */
typedef struct gc_prompt_frame {
    gc_ids head, tail;
} gc_prompt_frame;

gc_status gc_prompt_frame_find(const gc_tokenizer *t, const char *prefix, gc_prompt_frame *f,
                               gc_err *e);
void gc_prompt_frame_free(gc_prompt_frame *f);

/* The comment as the prompt may use it: leading ASCII blanks dropped (the template trims them
 * anyway, and they would eat the byte budget), cut to at most max_bytes on a character
 * boundary, and invalid UTF-8 in what is kept repaired (U+FFFD per bad byte; then *owned holds
 * the malloc'd copy, else NULL). The cut comes first, so the work and memory are bounded by
 * max_bytes however long the text is. *text and *len are updated in place. */
gc_status gc_prompt_clip_text(const char **text, size_t *len, size_t max_bytes, char **owned,
                              gc_err *e);

/* Keeps the first max_comment_ids comment ids of the prompt in ids[base..) (the ids between
 * the frame's head and tail) and the closing markers after them. */
void gc_prompt_truncate(const gc_prompt_frame *f, gc_ids *ids, size_t base,
                        size_t max_comment_ids);

#endif
