/* Background labelling (issue 11): the internal interface of the watch_*.c files.
 *
 *   watch_state.c     shared memory: the workers' latches and per-table counters
 *   watch_wake.c      waking the workers when a transaction that left rows to label commits
 *   watch_worker.c    the background workers: registration and main loop
 *   watch_batch.c     one batch of one table: claim, classify, write, record failed rows
 *   watch_catalog.c   the extension's watch tables, and a watch's trigger and index
 *   watch_trigger.c   the row trigger installed on watched tables
 *   watch_sql.c       gemmaclf_watch(), gemmaclf_unwatch(), the status functions, the drop hook
 *
 * docs/watch.md has the design. */
#ifndef GEMMACLF_WATCH_H
#define GEMMACLF_WATCH_H

#include "gemmaclf_pg.h"

#include "datatype/timestamp.h"

/* Tables whose counters shared memory holds; more can be watched, without counters. */
#define GCPG_WATCH_MAX_TABLES 512
#define GCPG_WATCH_ERROR_LEN 160

/* Names the SQL objects and the workers share. */
#define GCPG_WATCH_REGISTRY "gemmaclf_watch"
#define GCPG_WATCH_ERRORS "gemmaclf_watch_errors"
#define GCPG_WATCH_TRIGGER "gemmaclf_watch"
#define GCPG_WATCH_INDEX_PREFIX "gemmaclf_watch_pending_"
#define GCPG_WATCH_BGW_TYPE "gemmaclf watch"

/* ---- watch_state.c ---- */
/* Counters of one watched table since the server started; copied out by gcpg_watch_stats. */
typedef struct gcpg_watch_counters {
    Oid relid;
    int64 labelled;               /* rows labelled */
    int64 failed;                 /* rows recorded in gemmaclf_watch_errors */
    double rate;                  /* rows/s, exponentially weighted (GCPG_WATCH_RATE_TAU_S) */
    TimestampTz pending_since;    /* 0: nothing known to wait; see docs/watch.md (lag) */
    TimestampTz last_commit_at;   /* last commit that left rows of it to label */
    TimestampTz last_batch_at;
    TimestampTz first_batch_at;   /* when the rate average started */
    TimestampTz last_error_at;    /* 0: none */
    TimestampTz pruned_at;        /* stale failed rows last removed */
    char last_error[GCPG_WATCH_ERROR_LEN];
} gcpg_watch_counters;

/* True in processes of a server that loaded gemmaclf from shared_preload_libraries. */
bool gcpg_watch_available(void);
/* Requests shared memory and its lock (call from _PG_init while preloading). */
void gcpg_watch_state_request(void);
/* A worker's slot: its latch is set by gcpg_watch_wake_all until it exits. */
void gcpg_watch_worker_attach(int slot);
/* Sets every running worker's latch. */
void gcpg_watch_wake_all(void);
/* A commit at `now` left rows of relid to label. */
void gcpg_watch_note_commit(Oid relid, TimestampTz now);
/* A batch of relid ended: labelled / failed rows; drained = the claim found fewer rows than it
 * asked for; started = when its snapshot was taken. */
void gcpg_watch_note_batch(Oid relid, int labelled, int failed, bool drained,
                           TimestampTz started);
/* A table-level error (the batch was rolled back), shown as the table's last error. */
void gcpg_watch_note_error(Oid relid, const char *msg);
/* Counters for relid from now on (a new watch); forgotten when the watch ends. */
void gcpg_watch_start_counters(Oid relid);
/* Whether relid's stale failed rows are due for removal (at most once a minute), taking the
 * turn when they are. */
bool gcpg_watch_prune_due(Oid relid);
void gcpg_watch_forget_counters(Oid relid);
/* Copies the counters of up to cap tables into out; returns how many. rate is decayed to now. */
int gcpg_watch_copy_counters(gcpg_watch_counters *out, int cap);

/* ---- watch_wake.c ---- */
/* Rows of relid may wait for a label: the workers are woken when this transaction commits. */
void gcpg_watch_wake_at_commit(Oid relid);

/* ---- watch_worker.c ---- */
/* While preloading: requests the shared memory and registers gemmaclf.workers workers. */
void gcpg_watch_init(void);

/* ---- watch_catalog.c ---- */
/* One row of the registry, as the workers read it. */
typedef struct gcpg_watch_entry {
    Oid relid;
    char *text_col, *label_col, *scores_col; /* scores_col NULL: none */
    Oid runs_as;                             /* the role the worker acts as */
    TimestampTz created_at;                  /* tells a watch from a later one of the same rel */
} gcpg_watch_entry;

/* The schema gemmaclf is installed in (quoted), or NULL when it is not installed or its
 * version has no watch tables; with the registry's owner in *registry_owner (if not NULL).
 * Needs a transaction and SPI. */
const char *gcpg_watch_schema(Oid *registry_owner);
/* The registry rows (SPI, in the current memory context). */
gcpg_watch_entry *gcpg_watch_entries(const char *schema, int *n);
/* Whether the watch of e is still registered (unwatched or replaced meanwhile: false). */
bool gcpg_watch_still_registered(const char *schema, const gcpg_watch_entry *e);
/* Ends the watch of relid in the registry: its row and its failed rows, and its counters. */
void gcpg_watch_forget(const char *schema, Oid relid);
/* Deletes relid's failed rows (the table must exist): all of them, returning how many named a
 * row version that still exists (gemmaclf_watch_retry), or only those whose row has changed
 * or gone since, returning how many. */
int64 gcpg_watch_delete_failures(const char *schema, Oid relid, bool all);
/* Creates / drops the watch trigger and pending-rows index of relid (as the registry's
 * owner); drop says whether there was anything to drop. */
void gcpg_watch_create_objects(const char *schema, Oid relid, const char *text_col,
                               const char *label_col, const char *scores_col);
bool gcpg_watch_drop_objects(const char *schema, Oid relid);
/* Runs fn(arg) as role with SECURITY_RESTRICTED_OPERATION; the previous identity is restored
 * also on error (by the transaction's abort). */
void gcpg_as_role(Oid role, void (*fn)(void *), void *arg);
/* Runs fn(arg) in a subtransaction: NULL, or the ERROR it raised (copied into the current
 * memory context; the subtransaction is rolled back, the transaction goes on). */
ErrorData *gcpg_try(void (*fn)(void *), void *arg);
/* The owner of the registry table (the extension's owner): the identity that writes it. */
Oid gcpg_watch_registry_owner(const char *schema);

/* ---- watch_batch.c ---- */
typedef enum gcpg_batch_outcome {
    GCPG_BATCH_DRAINED, /* fewer rows than the batch size were waiting */
    GCPG_BATCH_FULL,    /* a full batch: more may be waiting */
    GCPG_BATCH_GONE     /* the watch ended (unwatched, or stopped here with a LOG) */
} gcpg_batch_outcome;

/* Where the registry is, as a worker read it at the start of its round. */
typedef struct gcpg_watch_registry {
    const char *schema;  /* quoted */
    Oid owner;
} gcpg_watch_registry;

/* Labels one batch of e's table in a transaction of its own. ERROR: the batch is rolled
 * back (the caller aborts the transaction and records the error). */
gcpg_batch_outcome gcpg_watch_batch(const gcpg_watch_registry *reg, const gcpg_watch_entry *e);

#endif
