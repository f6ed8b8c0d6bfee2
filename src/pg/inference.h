/* The inference worker's shared memory: private to the inference_*.c files.
 *
 * One fixed pool of request slots (gemmaclf.inference_slots, default MaxBackends: a backend has
 * at most one request in flight) and one block describing the worker. A slot's state is an atomic
 * that only moves along
 *
 *   FREE -> FILLING -> SUBMITTED -> TAKEN -> DONE | FAILED -> FREE        (served)
 *                      SUBMITTED -> FREE                                  (withdrawn by its owner)
 *                                   TAKEN -> CANCELLED -> FREE            (owner gone; worker frees)
 *
 * Every move is a compare-and-exchange or exchange (full memory barriers), so the texts a backend
 * wrote before SUBMITTED are visible to the worker that took the slot, and the results the worker
 * wrote before DONE are visible to the backend that reads DONE (plus pg_read_barrier there). Only
 * the owner (FREE->FILLING->SUBMITTED, SUBMITTED->FREE, TAKEN->CANCELLED, DONE/FAILED->FREE) and
 * the worker (SUBMITTED->TAKEN, TAKEN->DONE/FAILED, CANCELLED->FREE) move a slot, so whoever
 * wins a CAS owns the next step. The worker block is guarded by one LWLock. */
#ifndef GEMMACLF_INFERENCE_H
#define GEMMACLF_INFERENCE_H

#include "gemmaclf_pg.h"

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "utils/timestamp.h"

/* Request size limits (one slot): texts per request, text bytes per request (after the core's
 * own cut to max(4096, 64 * max_input_tokens) bytes, which the backend applies first), labels. */
#define GCPG_INFER_MAX_TEXTS 64
#define GCPG_INFER_TEXT_BYTES (128 * 1024)
#define GCPG_INFER_MAX_LABELS 8
#define GCPG_INFER_MSG 512

typedef enum gcpg_slot_state {
    SLOT_FREE = 0,
    SLOT_FILLING,
    SLOT_SUBMITTED,
    SLOT_TAKEN,
    SLOT_DONE,
    SLOT_FAILED,
    SLOT_CANCELLED
} gcpg_slot_state;

/* Why a request failed, besides the core's own status. */
#define GCPG_FAIL_CORE 1        /* gc_classify failed: status + message */
#define GCPG_FAIL_WORKER_GONE 2 /* the worker exited while it held the request */
#define GCPG_FAIL_WORKER_BROKEN 3 /* the worker has no model (WORKER_FAILED): its error */

typedef struct gcpg_infer_slot {
    pg_atomic_uint32 state;
    PGPROC *owner;            /* whose latch the worker sets (PGPROCs live in shared memory) */
    uint64 taken_gen;         /* generation of the worker that took it */
    TimestampTz submitted_at;
    int n_texts;
    int max_input_tokens;     /* the owner's setting: one forward pass groups equal values */
    uint32 lens[GCPG_INFER_MAX_TEXTS];
    /* result */
    int fail;                 /* 0, GCPG_FAIL_CORE or GCPG_FAIL_WORKER_GONE */
    int status;               /* gc_status when fail = GCPG_FAIL_CORE */
    char msg[GCPG_INFER_MSG];
    int labels[GCPG_INFER_MAX_TEXTS];
    float probs[GCPG_INFER_MAX_TEXTS * GCPG_INFER_MAX_LABELS];
    char text[GCPG_INFER_TEXT_BYTES]; /* the texts, back to back (lens[i] bytes each) */
} gcpg_infer_slot;

typedef enum gcpg_worker_state {
    WORKER_NONE = 0, /* not started yet, or exited (the postmaster restarts it) */
    WORKER_STARTING, /* loading the model */
    WORKER_READY,
    WORKER_FAILED,   /* running, but the model or its session failed: requests get `error` */
    WORKER_OFF       /* inference_worker = auto and no usable GPU: exited for good */
} gcpg_worker_state;

typedef struct gcpg_infer_shared {
    LWLock *lock;             /* guards the fields up to `hold` */
    int worker_pid;           /* 0 when none runs */
    Latch *worker_latch;
    uint64 generation;        /* bumped at every worker start */
    gcpg_worker_state state;
    int device;               /* gc_device the worker's session runs on */
    int n_labels;
    int batch_size;
    double batch_wait_ms;
    TimestampTz started_at;
    char model_dir[MAXPGPATH];  /* resolved directory of the worker's model ("" when none) */
    int precision;            /* the worker's gemmaclf.precision and gemmaclf.cuda_precision: */
    int cuda_precision;       /* they can change a label, so only equal sessions are served */
    char error[GCPG_INFER_MSG]; /* WORKER_FAILED / WORKER_OFF: why */
    char hint[GCPG_INFER_MSG];
    /* statistics since the worker's start (written by the worker only) */
    uint64 batches, requests, texts, errors, discarded;
    double wait_sum_ms, wait_max_ms;
    bool hold;                /* test hook: take requests but do not run them */
    int n_slots;
    Size slot_size;           /* MAXALIGN'd sizeof(gcpg_infer_slot) */
    char slots[FLEXIBLE_ARRAY_MEMBER];
} gcpg_infer_shared;

/* NULL unless gemmaclf is in shared_preload_libraries (inference_shmem.c). */
extern gcpg_infer_shared *gcpg_infer;

static inline gcpg_infer_slot *gcpg_infer_slot_at(int i)
{
    return (gcpg_infer_slot *)(gcpg_infer->slots + (Size)i * gcpg_infer->slot_size);
}

/* inference_shmem.c */
void gcpg_inference_shmem_init(void);

/* inference_worker.c */
void gcpg_inference_worker_register(void);

#endif
