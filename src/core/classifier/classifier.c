#include "classifier/classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "classifier/comment_norm.h"
#include "classifier/fingerprint.h"
#include "classifier/ngram_head.h"
#include "classifier/prompt.h"
#include "common/file_id.h"

/* A forward pass gets at most this many tokens (one longer text still runs alone), and in
 * full-sequence scoring at most this many vocabulary-wide logit floats. */
#define GC_MAX_BATCH_TOKENS 8192
#define GC_MAX_LOGIT_FLOATS (16u << 20)

struct gc_classifier {
    char *dir;
    gc_model *model;
    gc_tokenizer *tok;
    gc_labels_config cfg;
    gc_ngram_head *ngram;       /* when cfg.ngram_weight > 0 */
    gc_ids label_ids[GC_MAX_LABELS];
    int first_token;            /* labels' first ids all differ */
    int32_t first_ids[GC_MAX_LABELS];
    gc_prompt_frame frame;      /* prompt ids every comment shares at the start and end */
    int32_t stop[16];
    int n_stop;
    double load_ms;
    char fingerprint[65]; /* sha256 over the model's files (classifier/fingerprint.h), */
    int fingerprint_done; /* computed on first request: it reads every weight byte again */
    gc_file_watch files; /* tokenizer and label files (the model watches its own) */
};

struct gc_session {
    const gc_classifier *c;
    gc_session_opts opts;
    gc_ctx *ctx;
    gc_prefix *prefix; /* key/values of c->frame.head; NULL when there is no shared head */
    gc_buf norm;       /* one comment rewritten by cfg.comment_norm (at most max_text_bytes) */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static gc_status encode_labels(gc_classifier *c, gc_err *e)
{
    int vocab = gc_model_config(c->model)->vocab_size;
    c->first_token = 1;
    for (int i = 0; i < c->cfg.n_labels; i++) {
        const char *l = c->cfg.labels[i];
        gc_status st = gc_tokenizer_encode(c->tok, l, strlen(l), GC_TOK_PLAIN, &c->label_ids[i], e);
        if (st) {
            gc_err_prefix(e, "label \"%s\"", l);
            return st;
        }
        if (c->label_ids[i].n == 0)
            return gc_fail(e, GC_EFORMAT, "label \"%s\" encodes to no tokens", l);
        for (size_t k = 0; k < c->label_ids[i].n; k++)
            if (c->label_ids[i].v[k] < 0 || c->label_ids[i].v[k] >= vocab)
                return gc_fail(e, GC_EFORMAT,
                               "label \"%s\": token id %d is outside the model's vocabulary (%d); "
                               "tokenizer and model do not match", l, c->label_ids[i].v[k], vocab);
        c->first_ids[i] = c->label_ids[i].v[0];
        for (int j = 0; j < i; j++)
            if (c->first_ids[j] == c->first_ids[i])
                c->first_token = 0;
    }
    return GC_OK;
}

static void add_stop(gc_classifier *c, int32_t id)
{
    if (id < 0 || c->n_stop >= (int)(sizeof c->stop / sizeof c->stop[0]))
        return;
    for (int i = 0; i < c->n_stop; i++)
        if (c->stop[i] == id)
            return;
    c->stop[c->n_stop++] = id;
}

/* The fingerprint of the files this classifier was loaded from: the weights (and their index),
 * config.json, the tokenizer files and gemmaclf.json, those that are optional when present. */
static gc_status fingerprint(gc_classifier *c, gc_err *e)
{
    static const char *const fixed[] = {"config.json", "model.safetensors.index.json",
                                        "tokenizer.json", "tokenizer_config.json",
                                        "gemmaclf.json", GC_NGRAM_HEAD_FILE};
    int nw = gc_model_weight_file_count(c->model), n = 0;
    size_t dl = strlen(c->dir);
    const char **names = malloc(sizeof *names * (size_t)(nw + 6));
    if (!names)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    for (int i = 0; i < nw; i++) { /* shards are named relative to the directory */
        const char *p = gc_model_weight_file(c->model, i);
        names[n++] = !strncmp(p, c->dir, dl) && p[dl] == '/' ? p + dl + 1 : p;
    }
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", c->dir, fixed[i]);
        if (i == 0 || i == 2 || stat(path, &sb) == 0)
            names[n++] = fixed[i];
    }
    gc_status st = gc_fingerprint_files(c->dir, names, n, c->fingerprint, e);
    free(names);
    return st;
}

/* The n-gram head that gemmaclf.json's "ngram_weight" turns on; its absence is then an error
 * (the labels would silently change). */
static gc_status load_ngram_head(gc_classifier *c, const char *cache_dir, gc_err *e)
{
    if (!(c->cfg.ngram_weight > 0))
        return GC_OK;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", c->dir, GC_NGRAM_HEAD_FILE) >= (int)sizeof path)
        return gc_fail(e, GC_EINVAL, "model directory path too long");
    gc_status st = gc_ngram_head_load(path, (const char *const *)c->cfg.labels, c->cfg.n_labels,
                                      cache_dir, &c->ngram, e);
    if (st)
        gc_err_prefix(e, "gemmaclf.json sets \"ngram_weight\" %g, but the n-gram head",
                      c->cfg.ngram_weight);
    return st;
}

gc_status gc_classifier_open(const char *model_dir, const gc_classifier_opts *opts,
                             gc_classifier **out, gc_err *e)
{
    double t0 = now_ms();
    *out = NULL;
    gc_classifier *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(model_dir))) {
        free(c);
        return gc_fail(e, GC_ENOMEM, "out of memory");
    }
    gc_model_opts mo = {.cache_dir = opts ? opts->cache_dir : NULL,
                        .map_files = opts ? opts->map_files : 0};
    /* Identities before reading, so that a change during the load shows afterwards. */
    static const char *const watched[] = {"tokenizer.json", "tokenizer_config.json",
                                          "gemmaclf.json", GC_NGRAM_HEAD_FILE};
    gc_status st = GC_OK;
    for (size_t i = 0; i < sizeof watched / sizeof watched[0] && !st; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", model_dir, watched[i]);
        st = gc_file_watch_add(&c->files, path, NULL, e);
    }
    if (!st)
        st = gc_model_load(model_dir, &mo, &c->model, e);
    if (!st)
        st = gc_tokenizer_load(model_dir, &c->tok, e);
    if (!st)
        st = gc_labels_config_load(model_dir, &c->cfg, e);
    if (!st)
        st = load_ngram_head(c, mo.cache_dir, e);
    if (!st)
        st = encode_labels(c, e);
    if (!st)
        st = gc_prompt_frame_find(c->tok, c->cfg.prompt_prefix, &c->frame, e);
    if (st) {
        gc_classifier_free(c);
        return st;
    }
    /* Sequence scoring scores "label<end_of_turn>": without the end of the turn a label that is
     * the start of another ("Extreme" / "Extreme Hate") would also collect the other's mass. */
    int32_t end = gc_tokenizer_token_id(c->tok, "<end_of_turn>");
    if (end < 0)
        end = gc_tokenizer_eos_id(c->tok);
    for (int i = 0; !c->first_token && end >= 0 && i < c->cfg.n_labels && !st; i++)
        st = gc_ids_push(&c->label_ids[i], end, e);
    if (st) {
        gc_classifier_free(c);
        return st;
    }
    const gc_config *cfg = gc_model_config(c->model);
    for (int i = 0; i < cfg->n_eos; i++)
        add_stop(c, cfg->eos_token_ids[i]);
    add_stop(c, gc_tokenizer_eos_id(c->tok));
    add_stop(c, gc_tokenizer_token_id(c->tok, "<end_of_turn>"));
    c->load_ms = now_ms() - t0;
    *out = c;
    return GC_OK;
}

void gc_classifier_free(gc_classifier *c)
{
    if (!c)
        return;
    for (int i = 0; i < GC_MAX_LABELS; i++)
        gc_ids_free(&c->label_ids[i]);
    gc_prompt_frame_free(&c->frame);
    gc_labels_config_free(&c->cfg);
    gc_ngram_head_free(c->ngram);
    gc_tokenizer_free(c->tok);
    gc_model_free(c->model);
    gc_file_watch_free(&c->files);
    free(c->dir);
    free(c);
}

int gc_classifier_files_changed(const gc_classifier *c)
{
    return gc_file_watch_changed(&c->files) || gc_model_files_changed(c->model);
}

int gc_classifier_n_labels(const gc_classifier *c) { return c->cfg.n_labels; }
const char *gc_classifier_label(const gc_classifier *c, int i) { return c->cfg.labels[i]; }
const gc_labels_config *gc_classifier_labels_config(const gc_classifier *c) { return &c->cfg; }
const gc_model *gc_classifier_model(const gc_classifier *c) { return c->model; }
const gc_tokenizer *gc_classifier_tokenizer(const gc_classifier *c) { return c->tok; }
const char *gc_classifier_dir(const gc_classifier *c) { return c->dir; }
double gc_classifier_load_ms(const gc_classifier *c) { return c->load_ms; }
/* Hashing reads every weight byte (a second or more for a 1 GB model), so it is done when first
 * asked for (gemmaclf_model_info(), `gemmaclf info`), not at each load: a backend that only
 * classifies never pays it. c is never a const object (gc_classifier_open allocates it). */
const char *gc_classifier_fingerprint(const gc_classifier *c, gc_err *e)
{
    gc_classifier *m = (gc_classifier *)c;

    if (!m->fingerprint_done) {
        if (fingerprint(m, e) != GC_OK)
            return NULL;
        m->fingerprint_done = 1;
    }
    return m->fingerprint;
}
int gc_classifier_first_token_scoring(const gc_classifier *c) { return c->first_token; }
int gc_classifier_shared_prefix_len(const gc_classifier *c) { return (int)c->frame.head.n; }

const int32_t *gc_classifier_label_ids(const gc_classifier *c, int i, int *n)
{
    *n = (int)c->label_ids[i].n;
    return c->label_ids[i].v;
}

int gc_classifier_stop_ids(const gc_classifier *c, int32_t *ids, int cap)
{
    int n = c->n_stop < cap ? c->n_stop : cap;
    memcpy(ids, c->stop, (size_t)n * sizeof *ids);
    return n;
}

/* ---- sessions ---------------------------------------------------------------------------- */

gc_status gc_session_new(const gc_classifier *c, const gc_session_opts *opts, gc_session **out,
                         gc_err *e)
{
    *out = NULL;
    gc_session *s = calloc(1, sizeof *s);
    if (!s)
        return gc_fail(e, GC_ENOMEM, "out of memory");
    s->c = c;
    if (opts)
        s->opts = *opts;
    gc_session_set_limits(s, s->opts.batch_size, s->opts.max_input_tokens);
    gc_status st = gc_ctx_new(c->model, &s->opts.ctx, &s->ctx, e);
    if (!st && c->frame.head.n > 0)
        st = gc_prefix_new(s->ctx, c->frame.head.v, (int)c->frame.head.n, &s->prefix, e);
    if (st) {
        gc_session_free(s);
        return st;
    }
    *out = s;
    return GC_OK;
}

void gc_session_free(gc_session *s)
{
    if (!s)
        return;
    gc_prefix_free(s->prefix);
    gc_ctx_free(s->ctx);
    gc_buf_free(&s->norm);
    free(s);
}

gc_ctx *gc_session_ctx(gc_session *s) { return s->ctx; }

void gc_session_set_limits(gc_session *s, int batch_size, int max_input_tokens)
{
    s->opts.batch_size = batch_size > 0 ? batch_size : GC_DEFAULT_BATCH_SIZE;
    s->opts.max_input_tokens = max_input_tokens > 0 ? max_input_tokens
                                                    : GC_DEFAULT_MAX_INPUT_TOKENS;
}

static size_t label_tokens_max(const gc_classifier *c)
{
    size_t m = 0;
    for (int l = 0; l < c->cfg.n_labels; l++)
        m = c->label_ids[l].n > m ? c->label_ids[l].n : m;
    return m;
}

/* Comment tokens kept: max_input_tokens, and never past the positions the model was trained
 * for (prompt markers and labels included). */
static size_t max_comment_tokens(const gc_session *s)
{
    const gc_classifier *c = s->c;
    size_t max_tok = (size_t)s->opts.max_input_tokens;
    size_t fixed_ids = c->frame.head.n + c->frame.tail.n + label_tokens_max(c) + 8;
    size_t max_pos = (size_t)gc_model_config(c->model)->max_position_embeddings;
    if (max_pos > fixed_ids && max_tok > max_pos - fixed_ids)
        max_tok = max_pos - fixed_ids;
    return max_tok;
}

/* A byte budget ahead of tokenizing, generous at 64 bytes per token; the n-gram head reads the
 * same bytes. */
static size_t max_text_bytes(const gc_session *s)
{
    size_t max_tok = max_comment_tokens(s);
    return max_tok * 64 > 4096 ? max_tok * 64 : 4096;
}

/* The comment as the model was trained to read it: s->norm holds the rewrite when the model
 * asks for one (the rewrite is never longer, so it stays within the byte budget). */
static gc_status as_trained(gc_session *s, const char **text, size_t *len, gc_err *e)
{
    if (s->c->cfg.comment_norm == GC_COMMENT_NORM_NONE)
        return GC_OK;
    gc_status st = gc_comment_squeeze(*text, *len, &s->norm, e);
    if (!st)
        *text = s->norm.p, *len = s->norm.n;
    return st;
}

gc_status gc_session_prompt(gc_session *s, const char *text, size_t len, gc_ids *out, gc_err *e)
{
    const gc_classifier *c = s->c;
    size_t max_tok = max_comment_tokens(s), max_bytes = max_text_bytes(s);
    char *owned;
    gc_status st = gc_prompt_clip_text(&text, &len, max_bytes, &owned, e);
    if (!st)
        st = as_trained(s, &text, &len, e);
    if (st) {
        free(owned);
        return st;
    }
    size_t base = out->n;
    st = gc_prompt_encode(c->tok, c->cfg.prompt_prefix, text, len, out, e);
    free(owned);
    if (!st)
        gc_prompt_truncate(&c->frame, out, base, max_tok);
    return st;
}

/* ---- scoring ----------------------------------------------------------------------------- */

typedef struct item {
    int text;      /* index into the caller's texts */
    size_t off, n; /* prompt ids in the session's id buffer, after the cached head if used */
} item;

static size_t label_tokens_total(const gc_classifier *c)
{
    size_t t = 0;
    for (int l = 0; l < c->cfg.n_labels; l++)
        t += c->label_ids[l].n;
    return t;
}

/* The arrays of one packed forward batch. */
typedef struct packed_batch {
    int32_t *tokens, *seq_len, *out_idx;
    float *logits;
} packed_batch;

static void packed_free(packed_batch *p)
{
    free(p->tokens);
    free(p->seq_len);
    free(p->out_idx);
    free(p->logits);
}

static gc_status packed_alloc(packed_batch *p, size_t n_tok, size_t n_seq, size_t n_out,
                              size_t n_logits, int m, gc_err *e)
{
    p->tokens = malloc(n_tok * sizeof *p->tokens);
    p->seq_len = malloc(n_seq * sizeof *p->seq_len);
    p->out_idx = malloc(n_out * sizeof *p->out_idx);
    p->logits = malloc(n_logits * sizeof *p->logits);
    if (p->tokens && p->seq_len && p->out_idx && p->logits)
        return GC_OK;
    packed_free(p);
    return gc_fail(e, GC_ENOMEM, "out of memory for a batch of %d texts", m);
}

/* One forward pass scoring m items by their labels' first tokens. */
static gc_status score_first(gc_session *s, const gc_prefix *pre, const int32_t *ids,
                             const item *it, int m, float *scores, gc_err *e)
{
    const gc_classifier *c = s->c;
    size_t ntok = 0;
    for (int i = 0; i < m; i++)
        ntok += it[i].n;
    packed_batch pb;
    gc_status st =
        packed_alloc(&pb, ntok, (size_t)m, (size_t)m, (size_t)m * c->cfg.n_labels, m, e);
    if (st)
        return st;
    int32_t *tokens = pb.tokens, *seq_len = pb.seq_len, *out_idx = pb.out_idx;
    float *logits = pb.logits;
    size_t pos = 0;
    for (int i = 0; i < m; i++) {
        memcpy(tokens + pos, ids + it[i].off, it[i].n * sizeof *tokens);
        seq_len[i] = (int32_t)it[i].n;
        pos += it[i].n;
        out_idx[i] = (int32_t)pos - 1;
    }
    gc_batch b = {.n_seq = m, .tokens = tokens, .seq_len = seq_len, .n_out = m,
                  .out_idx = out_idx, .n_rows = c->cfg.n_labels, .rows = c->first_ids,
                  .logits = logits};
    st = gc_forward(s->ctx, pre, &b, e);
    if (!st)
        for (int i = 0; i < m; i++)
            memcpy(scores + (size_t)it[i].text * c->cfg.n_labels,
                   logits + (size_t)i * c->cfg.n_labels, c->cfg.n_labels * sizeof *logits);
    packed_free(&pb);
    return st;
}

/* log softmax(row)[id] over the whole vocabulary. */
static double log_prob(const float *row, int vocab, int id)
{
    float mx = row[0];
    for (int v = 1; v < vocab; v++)
        mx = row[v] > mx ? row[v] : mx;
    double sum = 0;
    for (int v = 0; v < vocab; v++)
        sum += exp((double)row[v] - mx);
    return (double)row[id] - mx - log(sum);
}

/* Scores m items by the summed log-probabilities of each label's tokens: one sequence per
 * (item, label) = prompt + label ids, logits at the positions that predict the label ids. */
static gc_status score_sequences(gc_session *s, const gc_prefix *pre, const int32_t *ids,
                                 const item *it, int m, float *scores, gc_err *e)
{
    const gc_classifier *c = s->c;
    int n_labels = c->cfg.n_labels, vocab = gc_model_config(c->model)->vocab_size;
    size_t lt = label_tokens_total(c), ntok = 0;
    for (int i = 0; i < m; i++)
        ntok += it[i].n * (size_t)n_labels + lt;
    size_t n_out = (size_t)m * lt;
    packed_batch pb;
    gc_status st =
        packed_alloc(&pb, ntok, (size_t)m * n_labels, n_out, n_out * (size_t)vocab, m, e);
    if (st)
        return st;
    int32_t *tokens = pb.tokens, *seq_len = pb.seq_len, *out_idx = pb.out_idx;
    float *logits = pb.logits;
    size_t pos = 0, o = 0;
    for (int i = 0; i < m; i++)
        for (int l = 0; l < n_labels; l++) {
            memcpy(tokens + pos, ids + it[i].off, it[i].n * sizeof *tokens);
            pos += it[i].n;
            for (size_t k = 0; k < c->label_ids[l].n; k++) {
                out_idx[o++] = (int32_t)(pos + k) - 1; /* position before label token k */
                tokens[pos + k] = c->label_ids[l].v[k];
            }
            pos += c->label_ids[l].n;
            seq_len[i * n_labels + l] = (int32_t)(it[i].n + c->label_ids[l].n);
        }
    gc_batch b = {.n_seq = m * n_labels, .tokens = tokens, .seq_len = seq_len, .n_out = (int)n_out,
                  .out_idx = out_idx, .n_rows = 0, .rows = NULL, .logits = logits};
    st = gc_forward(s->ctx, pre, &b, e);
    if (st)
        goto done;
    o = 0;
    for (int i = 0; i < m; i++)
        for (int l = 0; l < n_labels; l++) {
            double sc = 0;
            for (size_t k = 0; k < c->label_ids[l].n; k++, o++)
                sc += log_prob(logits + o * (size_t)vocab, vocab, c->label_ids[l].v[k]);
            scores[(size_t)it[i].text * n_labels + l] = (float)sc;
        }
done:
    packed_free(&pb);
    return st;
}

/* Runs the items in chunks bounded by batch size, tokens and logit memory. */
static gc_status score_items(gc_session *s, const gc_prefix *pre, const int32_t *ids,
                             const item *it, int m, float *scores, gc_err *e)
{
    const gc_classifier *c = s->c;
    size_t vocab = (size_t)gc_model_config(c->model)->vocab_size;
    size_t per_text_logits = c->first_token ? 0 : label_tokens_total(c) * vocab;
    size_t mult = c->first_token ? 1 : (size_t)c->cfg.n_labels;
    for (int i = 0; i < m;) {
        int k = 0;
        size_t tok = 0, flo = 0;
        while (i + k < m && k < s->opts.batch_size) {
            size_t t = it[i + k].n * mult;
            if (k > 0 && (tok + t > GC_MAX_BATCH_TOKENS || flo + per_text_logits > GC_MAX_LOGIT_FLOATS))
                break;
            tok += t;
            flo += per_text_logits;
            k++;
        }
        if (s->opts.ctx.interrupt && s->opts.ctx.interrupt(s->opts.ctx.interrupt_arg))
            return gc_fail(e, GC_ECANCELED, "classification canceled");
        gc_status st = c->first_token ? score_first(s, pre, ids, it + i, k, scores, e)
                                      : score_sequences(s, pre, ids, it + i, k, scores, e);
        if (st)
            return st;
        i += k;
    }
    return GC_OK;
}

static void to_probs(const gc_classifier *c, float *row, int *label)
{
    int L = c->cfg.n_labels, best = 0;
    double x[GC_MAX_LABELS], mx = -INFINITY, sum = 0;
    for (int l = 0; l < L; l++) {
        x[l] = (double)row[l] + c->cfg.bias[l];
        if (x[l] > mx)
            mx = x[l], best = l;
    }
    /* (x - mx) <= 0 before dividing, so any temperature > 0 gives exp() in [0, 1], never NaN */
    for (int l = 0; l < L; l++)
        sum += (x[l] = exp((x[l] - mx) / c->cfg.temperature));
    for (int l = 0; l < L; l++)
        row[l] = (float)(x[l] / sum);
    if (label)
        *label = best;
}

/* NaN/Inf scores come from broken weights (or an overflow they cause): no label can be read
 * from them, and softmax would turn them into NaN probabilities. */
static gc_status check_finite(const gc_classifier *c, int n, const float *scores, gc_err *e)
{
    for (int i = 0; i < n; i++)
        for (int l = 0; l < c->cfg.n_labels; l++) {
            float x = scores[(size_t)i * c->cfg.n_labels + l];
            if (!isfinite(x))
                return gc_fail(e, GC_ENUMERIC,
                               "text %d: the model computed a non-finite score (%s) for label "
                               "\"%s\"; its weights in %s are broken (NaN or Inf, or values "
                               "that overflow)",
                               i + 1, isnan(x) ? "NaN" : "Inf", c->cfg.labels[l], c->dir);
        }
    return GC_OK;
}

/* row = (1 - w) log_softmax(row) + w head: the model's label scores mixed with the head's. */
static void mix_row(float *row, const double *head, int n_labels, double w)
{
    double mx = -INFINITY, sum = 0;
    for (int l = 0; l < n_labels; l++)
        mx = fmax(mx, row[l]);
    for (int l = 0; l < n_labels; l++)
        sum += exp((double)row[l] - mx);
    for (int l = 0; l < n_labels; l++)
        row[l] = (float)((1 - w) * ((double)row[l] - mx - log(sum)) + w * head[l]);
}

/* Mixes the n-gram head into every text's scores. The head hashes the text's first
 * max_text_bytes bytes as they are (rewritten by cfg.comment_norm when the model asks), as
 * train/ngram_head.py does; the tokenizer's copy is also stripped of leading blanks and has
 * invalid UTF-8 replaced, which text from PostgreSQL (converted to UTF-8) and from the CLI (JSON
 * strings) does not have. */
static gc_status mix_ngram_head(gc_session *s, int n, const char *const *texts,
                                const size_t *lens, float *scores, gc_err *e)
{
    const gc_classifier *c = s->c;
    const gc_ctx_opts *o = &s->opts.ctx;
    double head[GC_MAX_LABELS];
    size_t cap = max_text_bytes(s);
    gc_ngram_scratch scratch = {0};
    gc_status st = GC_OK;
    for (int i = 0; i < n && !st; i++) {
        const char *t = texts[i] ? texts[i] : "";
        size_t len = lens ? lens[i] : strlen(t);
        /* ~20 us per comment (bench/bench_ngram_head.c), but one call may hold 100,000 long ones */
        if (i % 256 == 255 && o->interrupt && o->interrupt(o->interrupt_arg))
            st = gc_fail(e, GC_ECANCELED, "classification canceled");
        len = len < cap ? len : cap;
        if (!st)
            st = as_trained(s, &t, &len, e);
        if (!st)
            st = gc_ngram_head_log_probs(c->ngram, t, len, &scratch, head, e);
        if (!st)
            mix_row(scores + (size_t)i * c->cfg.n_labels, head, c->cfg.n_labels, c->cfg.ngram_weight);
    }
    gc_ngram_scratch_free(&scratch);
    return st;
}

gc_status gc_classify(gc_session *s, int n, const char *const *texts, const size_t *lens,
                      float *probs, int *labels, gc_err *e)
{
    const gc_classifier *c = s->c;
    if (n <= 0)
        return GC_OK;
    gc_ids ids = {0};
    item *with = malloc((size_t)n * sizeof *with), *without = malloc((size_t)n * sizeof *without);
    int nw = 0, nwo = 0;
    gc_status st = GC_OK;
    if (!with || !without) {
        st = gc_fail(e, GC_ENOMEM, "out of memory for %d texts", n);
        goto done;
    }
    for (int i = 0; i < n && !st; i++) {
        const char *t = texts[i] ? texts[i] : "";
        size_t off = ids.n;
        st = gc_session_prompt(s, t, lens ? lens[i] : strlen(t), &ids, e);
        if (st) {
            gc_err_prefix(e, "text %d", i + 1);
            break;
        }
        size_t len = ids.n - off, h = c->frame.head.n;
        /* Reuse the cached head only when this prompt really starts with it (and goes on). */
        if (s->prefix && len > h && !memcmp(ids.v + off, c->frame.head.v, h * sizeof(int32_t)))
            with[nw++] = (item){i, off + h, len - h};
        else
            without[nwo++] = (item){i, off, len};
    }
    if (!st && nw)
        st = score_items(s, s->prefix, ids.v, with, nw, probs, e);
    if (!st && nwo)
        st = score_items(s, NULL, ids.v, without, nwo, probs, e);
    if (!st)
        st = check_finite(c, n, probs, e);
    if (!st && c->ngram)
        st = mix_ngram_head(s, n, texts, lens, probs, e);
    if (!st)
        for (int i = 0; i < n; i++)
            to_probs(c, probs + (size_t)i * c->cfg.n_labels, labels ? labels + i : NULL);
done:
    gc_ids_free(&ids);
    free(with);
    free(without);
    return st;
}
