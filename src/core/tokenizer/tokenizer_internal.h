/* Internal pieces of the tokenizer shared by its stage files (not part of the public API).
 * Each stage follows the Hugging Face tokenizers stage of the same name (all in tokenizer/):
 *   hash.c          open-addressing hash maps (string -> index, u64 -> u64)
 *   tokenizer_json.c  fast readers of tokenizer.json's large parts (model.vocab, model.merges)
 *   added_tokens.c  added-token trie and leftmost-longest matching (AddedVocabulary)
 *   normalizer.c    Replace / Prepend / Strip / Sequence
 *   pretokenizer.c  Split (string pattern) / Metaspace / Sequence
 *   bpe.c           BPE model: merges by rank, byte fallback, unk fusing
 *   decoder.c       Replace / ByteFallback / Fuse / Strip / Metaspace / Sequence
 *   tokenizer.c     loading tokenizer.json + tokenizer_config.json, the encode pipeline
 * From common/: utf8.c (validation, decoding, the whitespace classes, trimming), buf.c (the
 * growable byte buffer), json_string.c (byte-exact JSON strings). The chat prompt is not the
 * tokenizer's: classifier/prompt.c renders it and encodes it with
 * gc_tokenizer_encode_special_at(). */
#ifndef GC_TOKENIZER_INTERNAL_H
#define GC_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "common/error.h"
#include "common/buf.h"
#include "common/ids.h"
#include "common/utf8.h"

/* A byte range [a, b) of a document. */
typedef struct gc_span {
    size_t a, b;
} gc_span;

/* ---- tok_hash.c ------------------------------------------------------------------------- */
uint64_t gc_hash_bytes(const char *s, size_t n);

/* String -> int32 index; the strings live elsewhere (strs/lens indexed by the stored value).
 * A slot holds the hash, the index and the first 7 bytes plus the length, so most lookups
 * touch one cache line and only long keys are compared against their string. */
typedef struct gc_strslot {
    uint32_t tag; /* high hash bits, 0 = empty slot */
    int32_t val;
    uint64_t pre; /* bytes 0..6 of the key (zero padded), byte 7 = min(length, 255) */
} gc_strslot;

typedef struct gc_strmap {
    gc_strslot *slots;
    size_t mask, n;
    const char *const *strs;
    const uint32_t *lens;
} gc_strmap;

gc_status gc_strmap_init(gc_strmap *m, size_t expected, const char *const *strs,
                         const uint32_t *lens, gc_err *e);
/* Inserts index v (its string is strs[v]); an existing equal key keeps its index unless
 * replace is set. The table must have been sized for all insertions. */
void gc_strmap_put(gc_strmap *m, int32_t v, int replace);
int32_t gc_strmap_get(const gc_strmap *m, const char *s, size_t n); /* -1 if absent */
/* The same with h = gc_hash_bytes(s, n) computed ahead, after gc_strmap_prefetch(m, h):
 * bulk lookups (loading 515k merges) overlap their cache misses this way. */
int32_t gc_strmap_get_hashed(const gc_strmap *m, const char *s, size_t n, uint64_t h);
static inline void gc_strmap_prefetch(const gc_strmap *m, uint64_t h)
{
    __builtin_prefetch(&m->slots[h & m->mask]);
}
void gc_strmap_free(gc_strmap *m);

/* uint64 -> uint64, key UINT64_MAX reserved. Fixed capacity chosen at init. */
typedef struct gc_u64slot {
    uint64_t k, v;
} gc_u64slot;

typedef struct gc_u64map {
    gc_u64slot *slots;
    size_t mask, n;
} gc_u64map;

gc_status gc_u64map_init(gc_u64map *m, size_t expected, gc_err *e);
void gc_u64map_put(gc_u64map *m, uint64_t k, uint64_t v); /* capacity must allow it */
static inline uint64_t gc_u64_mix(uint64_t k);
static inline void gc_u64map_prefetch(const gc_u64map *m, uint64_t k)
{
    __builtin_prefetch(&m->slots[gc_u64_mix(k) & m->mask]);
}
static inline uint64_t gc_u64_mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}
static inline int gc_u64map_get(const gc_u64map *m, uint64_t k, uint64_t *v)
{
    size_t i = gc_u64_mix(k) & m->mask;
    for (;;) {
        const gc_u64slot *sl = &m->slots[i];
        if (sl->k == k) {
            *v = sl->v;
            return 1;
        }
        if (sl->k == UINT64_MAX)
            return 0;
        i = (i + 1) & m->mask;
    }
}
void gc_u64map_free(gc_u64map *m);

/* ---- added_tokens.c --------------------------------------------------------------------- */
typedef struct gc_added_token {
    char *content;   /* owned */
    uint32_t len;
    char *pattern;   /* what is matched: content, or its normalized form (owned if != content) */
    uint32_t pattern_len;
    int32_t id;
    uint8_t special, normalized, lstrip, rstrip, single_word;
} gc_added_token;

/* A byte trie over a set of added tokens (one for the raw text, one for normalized text). */
typedef struct gc_added_trie {
    gc_u64map edges;      /* (node << 8 | byte) -> child node */
    int32_t *value;       /* per node: index into the added-token array, or -1 */
    size_t n_nodes;
    uint8_t first[256];   /* bytes that start some token */
    int empty;
} gc_added_trie;

/* Which special tokens a match may produce. */
typedef struct gc_special_policy {
    int none;                 /* no special token is recognised (encode_special_tokens) */
    const size_t *allowed_at; /* else if non-NULL: only special matches starting at these */
    size_t n_allowed;         /*   byte offsets (sorted) are recognised */
} gc_special_policy;

/* One piece of split text: an added token (id >= 0) or plain text (id < 0). */
typedef struct gc_split {
    size_t start, end;
    int32_t id;
} gc_split;

/* Trie over tok[i].pattern for the tokens whose `normalized` flag equals `normalized`. */
gc_status gc_added_trie_build(gc_added_trie *t, const gc_added_token *tok, size_t n,
                              int normalized, gc_err *e);
void gc_added_trie_free(gc_added_trie *t);
/* find_matches of tokenizers' AddedVocabulary: leftmost-longest, lstrip/rstrip applied.
 * Appends splits covering s[0..n) (empty text pieces are not emitted). */
gc_status gc_added_find(const gc_added_trie *t, const gc_added_token *tok, const char *s,
                        size_t n, const gc_special_policy *pol, gc_split **out, size_t *n_out,
                        size_t *cap_out, gc_err *e);

/* ---- normalizer.c ----------------------------------------------------------------------- */
typedef struct gc_normalizer gc_normalizer;
gc_status gc_normalizer_parse(const cJSON *j, gc_normalizer **out, gc_err *e);
void gc_normalizer_free(gc_normalizer *n);
/* Normalizes s[0..n) into out (cleared first). */
gc_status gc_normalizer_apply(const gc_normalizer *nz, const char *s, size_t n, gc_buf *out,
                              gc_buf *tmp, gc_err *e);

/* ---- pretokenizer.c --------------------------------------------------------------------- */
typedef struct gc_pieces {
    gc_buf text;
    size_t *start, *len;
    uint8_t *at_origin; /* piece begins at offset 0 of the original input (Metaspace "first") */
    size_t n, cap;
} gc_pieces;

gc_status gc_pieces_add(gc_pieces *p, const char *s, size_t n, int at_origin, gc_err *e);
void gc_pieces_clear(gc_pieces *p);
void gc_pieces_free(gc_pieces *p);

typedef struct gc_pretokenizer gc_pretokenizer;
gc_status gc_pretokenizer_parse(const cJSON *j, gc_pretokenizer **out, gc_err *e);
void gc_pretokenizer_free(gc_pretokenizer *p);
/* Splits `in` (one piece) into pieces; uses tmp as scratch. */
gc_status gc_pretokenizer_apply(const gc_pretokenizer *pt, gc_pieces *io, gc_pieces *tmp,
                                gc_err *e);

/* ---- bpe.c ------------------------------------------------------------------------------ */
typedef struct gc_bpe {
    size_t n_vocab;          /* entries in the model vocab */
    int32_t max_id;          /* largest model id */
    char *arena;             /* token strings, NUL-terminated, owned */
    const char **tok;        /* [max_id+1], NULL where no model token */
    uint32_t *tok_len;
    gc_strmap vocab;
    gc_u64map merges;        /* (a << 32 | b) -> (rank << 32 | new_id) */
    int32_t byte_id[256];    /* <0xXX> ids, -1 if absent */
    int32_t ascii_id[128];   /* single ASCII characters, -1 if absent (fast path) */
    int32_t unk_id;          /* -1 if no unk_token, -2 if it is not in the vocab */
    int byte_fallback, fuse_unk, ignore_merges;
} gc_bpe;

typedef struct gc_bpe_cand {
    uint64_t key;   /* rank << 32 | position of the left symbol */
    int32_t new_id; /* the merged token */
} gc_bpe_cand;

typedef struct gc_bpe_scratch {
    int32_t *sym_id, *prev, *next;
    uint32_t *len;
    size_t sym_cap;
    struct gc_bpe_cand *heap; /* candidate merges, a 4-ary min-heap on key */
    size_t heap_n, heap_cap;
} gc_bpe_scratch;

/* model: the "model" object (its vocab and merges replaced by {} and []); the vocab and
 * merges are read from doc's spans by tokenizer_json.c. */
gc_status gc_bpe_parse(const cJSON *model, const char *doc, gc_span vocab_json, gc_span merges_json,
                       gc_bpe *b, gc_err *e);

void gc_bpe_free(gc_bpe *b);
gc_status gc_bpe_encode(const gc_bpe *b, const char *s, size_t n, gc_bpe_scratch *sc,
                        gc_ids *out, gc_err *e);
void gc_bpe_scratch_free(gc_bpe_scratch *sc);

/* ---- decoder.c -------------------------------------------------------------------------- */
typedef struct gc_decoder gc_decoder;
/* A list of strings: token i is text.p[start[i] .. start[i]+len[i]). */
typedef struct gc_strlist {
    gc_buf text;
    size_t *start, *len;
    size_t n, cap;
} gc_strlist;

gc_status gc_strlist_add(gc_strlist *l, const char *s, size_t n, gc_err *e);
void gc_strlist_free(gc_strlist *l);

gc_status gc_decoder_parse(const cJSON *j, gc_decoder **out, gc_err *e);
void gc_decoder_free(gc_decoder *d);
/* Runs the decoder chain over the tokens; the result is the concatenation of *io. */
gc_status gc_decoder_apply(const gc_decoder *d, gc_strlist *io, gc_err *e);

/* ---- tokenizer_json.c: fast reading of model.vocab and model.merges ---- */
/* Locates model.vocab and model.merges in tokenizer.json; *rest (malloc'd) is the document
 * with them replaced by {} and [] for cJSON. */
gc_status gc_tokjson_split(const char *doc, size_t n, gc_span *vocab, gc_span *merges,
                           char **rest, size_t *rest_n, gc_err *e);
gc_status gc_tokjson_vocab(const char *s, size_t n, gc_bpe *b, gc_err *e);
gc_status gc_tokjson_merges(const char *s, size_t n, gc_bpe *b, gc_err *e);

/* ---- JSON helpers (tokenizer.c) --------------------------------------------------------- */
/* "pattern": {"String": "..."} -> the string; {"Regex": ...} -> GC_EUNSUPPORTED naming `what`. */
gc_status gc_json_string_pattern(const cJSON *obj, const char *what, const char **out,
                                 gc_err *e);

#endif
