/* Hugging Face tokenizer.json (+ tokenizer_config.json) in C, with the ids tokenizers
 * produces: added tokens matched on the raw text first, normalizer, pre-tokenizer, BPE by
 * merge rank with byte fallback, post-processor (bos), decoder. */
#ifndef GC_TOKENIZER_H
#define GC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/ids.h"

typedef struct gc_tokenizer gc_tokenizer;

enum {
    GC_TOK_ADD_SPECIAL = 1, /* apply the post-processor (e.g. TemplateProcessing's <bos>) */
    GC_TOK_PLAIN = 2        /* special added tokens (special: true) are NOT recognised in text */
};

/* dir holds tokenizer.json and (optionally) tokenizer_config.json. */
gc_status gc_tokenizer_load(const char *dir, gc_tokenizer **out, gc_err *e);
void gc_tokenizer_free(gc_tokenizer *t);

/* text must be valid UTF-8 (GC_EINVAL otherwise); ids are appended to out. */
gc_status gc_tokenizer_encode(const gc_tokenizer *t, const char *text, size_t len, int flags,
                              gc_ids *out, gc_err *e);
/* Decoded text is malloc'd into *text (NUL-terminated); caller frees. */
gc_status gc_tokenizer_decode(const gc_tokenizer *t, const int32_t *ids, size_t n,
                              int skip_special, char **text, size_t *len, gc_err *e);

int gc_tokenizer_vocab_size(const gc_tokenizer *t);
int32_t gc_tokenizer_token_id(const gc_tokenizer *t, const char *token); /* -1 if absent */
const char *gc_tokenizer_token(const gc_tokenizer *t, int32_t id);       /* NULL if absent */
int32_t gc_tokenizer_bos_id(const gc_tokenizer *t); /* from tokenizer_config / added tokens */
int32_t gc_tokenizer_eos_id(const gc_tokenizer *t);
/* 1 if tokenizer_config.json holds a chat_template. */
int gc_tokenizer_has_chat_template(const gc_tokenizer *t);
/* 1 if id is an added token with special: true (skipped by decode's skip_special). */
int gc_tokenizer_is_special(const gc_tokenizer *t, int32_t id);

/* 1 if there is no chat_template or it is Gemma's (<start_of_turn> turns): the chat prompt
 * of classifier/prompt.h applies. */
int gc_tokenizer_has_gemma_chat_template(const gc_tokenizer *t);

/* Encodes text without the post-processor, recognising special added tokens only where one
 * starts at a byte offset in special_at[0..n_special_at) (sorted); with n_special_at == 0
 * nowhere (as GC_TOK_PLAIN). A prompt renderer lists its own markers' offsets, so text it
 * embeds cannot forge them. */
gc_status gc_tokenizer_encode_special_at(const gc_tokenizer *t, const char *text, size_t len,
                                         const size_t *special_at, size_t n_special_at,
                                         gc_ids *out, gc_err *e);

#endif
