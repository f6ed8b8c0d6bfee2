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
 *   classify_table_citus.c  its paths for Citus distributed and reference tables (issue 15)
 *   model_info.c      gemmaclf_model_info()
 *   citus.c           Citus tables (issue 15): their kind, the distribution column of a shard
 *   watch_*.c         background labelling of watched tables (issue 11; map in watch.h)
 *   inference.h       the inference worker's shared memory and its protocol (issue 12):
 *   inference_shmem.c   its creation (shared_preload_libraries)
 *   inference_worker.c  the background worker: loads the model once, batches all backends
 *   inference_client.c  a backend's side: routing, submit, wait on the latch, read back
 *   inference_status.c  gemmaclf_inference_status(), gemmaclf_inference_hold() (test hook) */
#ifndef GEMMACLF_PG_H
#define GEMMACLF_PG_H

#include "postgres.h"
#include "pg_compat.h"

#include "access/attnum.h"
#include "fmgr.h"
#include "utils/relcache.h"

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
/* inference worker settings (issue 12) */
#define GCPG_INFERENCE_WORKER_AUTO 0
#define GCPG_INFERENCE_WORKER_ON 1
#define GCPG_INFERENCE_WORKER_OFF 2
#define GCPG_DEFAULT_BATCH_WAIT_MS 0.0
extern int gemmaclf_inference_worker;
extern int gemmaclf_inference_slots;
extern double gemmaclf_batch_wait;
extern bool gemmaclf_use_inference_worker;

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
/* The same for a given device (gcpg_session uses gcpg_wanted_device()). */
gc_session *gcpg_session_for(gcpg_model *m, int device);
/* gemmaclf.device as a session needs it (auto without a CUDA plugin: cpu). */
int gcpg_wanted_device(void);

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

/* ---- trigger.c ---- */
/* The TriggerData of a BEFORE INSERT OR UPDATE FOR EACH ROW call with min_args..max_args
 * arguments (max_args < 0: not checked here), else an ERROR naming caller, with hint. */
struct TriggerData *gcpg_before_row_trigger(FunctionCallInfo fcinfo, const char *caller,
                                            const char *hint, int min_args, int max_args);

/* ---- classify.c ---- */
/* Classifies n UTF-8 texts with m; probs [n][n_labels], labels [n]. ERROR on core errors and
 * on non-finite scores. */
void gcpg_classify(gcpg_model *m, int n, const char *const *texts, const size_t *lens,
                   float *probs, int *labels);
/* gc_classify on sess, interruptible; the core's status, with *err set when not GC_OK. Used by
 * gcpg_classify and by the inference worker. */
gc_status gcpg_session_classify(gc_session *sess, int n, const char *const *texts,
                                const size_t *lens, float *probs, int *labels, gc_err *err);
/* Classifies one text with the current model: its label as text, and its jsonb scores in
 * *scores when scores is not NULL. */
text *gcpg_classify_text(text *t, Datum *scores);

/* The ERROR for a non-finite score (broken weights), the same from every path. */
void gcpg_nonfinite_error(const char *detail);
/* Who served this session's last classification: "inference worker", "backend", or NULL. */
const char *gcpg_served_by(void);

/* ---- inference_*.c (issue 12) ---- */
/* In _PG_init: shared memory and the worker, with shared_preload_libraries only. */
void gcpg_inference_init(void);
/* Classifies through the inference worker when it runs and serves m's model: true when it did
 * (probs, labels filled). false: classify in this backend (no worker, another model, settings
 * it cannot serve, or the worker exited and gemmaclf.device = auto: then *cpu_only is set).
 * ERROR on the worker's errors. */
bool gcpg_inference_classify(gcpg_model *m, int n, const char *const *texts,
                             const size_t *lens, float *probs, int *labels, bool *cpu_only);
/* Whether calls with m go to the worker now; the worker's pid (0: none). */
bool gcpg_inference_serves(gcpg_model *m);
int gcpg_inference_worker_pid(void);

/* ---- encoding.c ---- */
/* Text of any server encoding as UTF-8 bytes (palloc'd or pointing into t). */
const char *gcpg_text_utf8(text *t, size_t *len);
/* A label (UTF-8) as a text datum in the server encoding. */
text *gcpg_label_text(const char *label);

/* ---- scores.c ---- */
/* {"label": ..., "scores": {...}} for one result, as a jsonb datum. */
Datum gcpg_scores_jsonb(const gc_classifier *c, const float *probs, int label);

/* ---- citus.c ---- */
typedef enum gcpg_citus_kind {
    GCPG_CITUS_NONE,      /* not a Citus table (or no citus extension in this database) */
    GCPG_CITUS_HASH,      /* hash-distributed */
    GCPG_CITUS_REFERENCE, /* reference table: a copy on every node */
    GCPG_CITUS_OTHER      /* Citus local, single-shard, append or range distributed */
} gcpg_citus_kind;
gcpg_citus_kind gcpg_citus_table_kind(Oid relid);
/* The distribution column of the distributed table rel belongs to (rel is a shard of it on a
 * worker, or the table itself), palloc'd; NULL when there is none (not a Citus shard, a
 * reference table, or no citus extension here). */
char *gcpg_citus_distribution_column(Relation rel);
/* The same for the relation relid named name in namespace nsp. */
char *gcpg_citus_distribution_column_of(Oid relid, Oid nsp, const char *name);

/* ---- classify_table.c, classify_table_citus.c ---- */
typedef struct gcpg_table_job {
    Oid relid;
    const char *rel;                   /* quoted, schema-qualified */
    const char *src, *lab, *sco;       /* quoted column names; sco NULL = none */
    int batch;
} gcpg_table_job;
double gcpg_classify_table_clock(void);
/* NOTICE "done of total rows classified" with the rate since t0 (gcpg_classify_table_clock). */
void gcpg_classify_table_report(int64 done, int64 total, double t0);
/* Labels j's table when it is a Citus table and returns true; false when it is not one. Called
 * inside the procedure's SPI connection (nonatomic unless atomic). */
bool gcpg_classify_citus_table(const gcpg_table_job *j, bool atomic, int64 total, double t0);

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
