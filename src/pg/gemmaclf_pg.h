/* Internal interface of the PostgreSQL layer. The core (malloc'd, no PostgreSQL headers) holds the
 * model; this layer keeps one loaded model per process (session.c), lends it to callers through
 * acquire/release, and does per-call work in PostgreSQL memory contexts.
 *
 * File map (one concept each):
 *   module.c          PG_MODULE_MAGIC and _PG_init, which only calls each concept's init
 *   guc.c             the gemmaclf.* settings
 *   model_dir.c       gemmaclf.model_path -> a model directory (or the bundled model)
 *   session.c         the loaded model and its core session: load, reload, preload, pins
 *   interrupts.c      the core's interrupt poll, and running core calls that stop on interrupts
 *   errors.c          core status -> SQLSTATE and hints
 *   classify.c        the one place that classifies: batches and the one-text path
 *   encoding.c        server encoding <-> UTF-8 for texts and labels
 *   scores.c          a result as {"label": ..., "scores": {...}} jsonb
 *   columns.c         the column rules shared by the trigger, the procedure and the watch
 *   functions.c       classify_hate(text), classify_hate(text[]), classify_hate_scores(text)
 *   trigger.c         gemmaclf_flag_hate() row trigger
 *   classify_table.c  CALL gemmaclf_classify_table(...)
 *   model_info.c      gemmaclf_model_info()
 *   watch_*.c         background labelling of watched tables (issue 11; map in watch.h) */
#ifndef GEMMACLF_PG_H
#define GEMMACLF_PG_H

#include "postgres.h"
#include "pg_compat.h"

#include "access/attnum.h"

#include "classifier/classifier.h"

/* ---- guc.c ---- */
extern char *gemmaclf_model_path;
extern int gemmaclf_device;
extern int gemmaclf_threads;
extern int gemmaclf_precision;
extern int gemmaclf_max_input_tokens;
extern int gemmaclf_batch_size;
/* background labelling (issue 11): 0 / NULL when gemmaclf is not in shared_preload_libraries */
#define GCPG_WATCH_MAX_WORKERS 32
extern int gemmaclf_watch_workers;
extern char *gemmaclf_watch_database;
/* CUDA device and precision (guc.c, issue 12 part 5) */
extern int gemmaclf_cuda_device;
extern int gemmaclf_cuda_precision;
void gcpg_guc_cuda_init(void);
void gcpg_guc_init(void);

/* ---- model_dir.c ---- */
/* Resolves a gemmaclf.model_path value (empty: the bundled model) to a directory; on failure
 * sets *why and returns false. */
bool gcpg_model_dir(const char *setting, char *out, size_t cap, const char **why);

/* ---- session.c ---- */
/* A caller's use of the loaded model. The model stays alive while any use of it is held, even
 * when gemmaclf.model_path changes meanwhile (a trigger's SET clause, set_config) and a newer
 * model is loaded: nothing a caller got from it is freed under it. */
typedef struct gcpg_model gcpg_model;

/* The model for the current gemmaclf.model_path, loading or reloading it (ERROR on failure,
 * with a HINT naming gemmaclf.model_path). The use ends with gcpg_release, or at the latest
 * when the current memory context is reset or deleted (so an ERROR never leaks it). */
gcpg_model *gcpg_acquire(void);
void gcpg_release(gcpg_model *m);
const gc_classifier *gcpg_classifier(const gcpg_model *m);
/* The model's core session for the current threads/device/limits settings (started or
 * restarted here; ERROR on failure). Valid until the next call for the same model. */
gc_session *gcpg_session(gcpg_model *m);

typedef struct gcpg_model_state {
    const char *dir;  /* resolved directory the model was loaded from */
    bool preloaded;   /* loaded by the postmaster (shared_preload_libraries) */
    int threads;      /* BLAS threads the session was started with */
} gcpg_model_state;
void gcpg_model_describe(const gcpg_model *m, gcpg_model_state *out);

/* In the postmaster: load the model and a CPU session before fork (failures only logged). */
void gcpg_session_preload(void);

/* ---- interrupts.c ---- */
/* The core's interrupt poll (gc_ctx.interrupt): true while PostgreSQL has an interrupt pending. */
int gcpg_interrupt_pending(void *arg);
/* Runs call(arg) until it ends other than GC_ECANCELED, servicing PostgreSQL interrupts between
 * tries (cancel and statement_timeout throw from here). */
gc_status gcpg_run_interruptible(gc_status (*call)(void *arg), void *arg);

/* ---- errors.c ---- */
int gcpg_sqlstate(gc_status st);
/* errhint for a core status inside ereport(): what to change for GC_EDEVICE and GC_ENUMERIC,
 * else none. */
int gcpg_status_hint(gc_status st);

/* ---- classify.c ---- */
/* Classifies n UTF-8 texts with m; probs [n][n_labels], labels [n]. ERROR on core errors and
 * on non-finite scores. */
void gcpg_classify(gcpg_model *m, int n, const char *const *texts, const size_t *lens,
                   float *probs, int *labels);
/* Classifies one text with the current model: its label as text, and its jsonb scores in
 * *scores when scores is not NULL. */
text *gcpg_classify_text(text *t, Datum *scores);

/* ---- encoding.c ---- */
/* Text of any server encoding as UTF-8 bytes (palloc'd or pointing into t). */
const char *gcpg_text_utf8(text *t, size_t *len);
/* A label (UTF-8) as a text datum in the server encoding. */
text *gcpg_label_text(const char *label);

/* ---- scores.c ---- */
/* {"label": ..., "scores": {...}} for one result, as a jsonb datum. */
Datum gcpg_scores_jsonb(const gc_classifier *c, const float *probs, int label);

/* ---- columns.c ---- */
/* The columns the trigger and the procedure read and write. */
typedef enum gcpg_column_kind {
    GCPG_COLUMN_TEXT,   /* the comment: text, varchar or char */
    GCPG_COLUMN_LABEL,  /* the label: text or varchar */
    GCPG_COLUMN_SCORES  /* the scores: jsonb */
} gcpg_column_kind;

/* attnum of the user column `name` of relid, type-checked for kind; errors name `caller` and
 * carry usage_hint (if not NULL) when the column does not exist. */
AttrNumber gcpg_column(Oid relid, const char *name, gcpg_column_kind kind, const char *caller,
                       const char *usage_hint);
/* ERROR (naming `caller`) unless every label of the current model fits the label column att:
 * its varchar(n), or its domain's. Checked before classifying, so nothing is stored first. */
void gcpg_check_label_width(Oid relid, AttrNumber att, const char *caller);
/* ERROR unless value (or NULL) meets the constraints of column att's domain (none: no check).
 * *cache (NULL at first) keeps the constraints between calls, in cache_cx. */
void gcpg_domain_check(Oid relid, AttrNumber att, Datum value, bool isnull, void **cache,
                       MemoryContext cache_cx);

#endif
