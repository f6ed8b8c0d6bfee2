/* The inference worker: one background worker that loads the model once (gemmaclf.model_path,
 * gemmaclf.device and gemmaclf.threads as postgresql.conf sets them) and serves the requests
 * every backend puts into shared memory (protocol in inference.h), gathering them into one
 * forward pass: a batch closes at gemmaclf.batch_size texts or gemmaclf.batch_wait after its
 * first request, whichever comes first.
 *
 * Registered in _PG_init with shared_preload_libraries and gemmaclf.inference_worker = on, or
 * auto (then it exits for good at start unless a GPU is usable: on the CPU every backend has as
 * many cores as the worker would). The postmaster restarts it 1 s after it exits with an error
 * (SIGTERM, FATAL); a worker killed by a signal (kill -9, a crash) makes the postmaster restart
 * the whole cluster, as for any process attached to shared memory. Either way, requests it held
 * fail (inference_client.c: an ERROR, or the backend's own CPU with gemmaclf.device = auto). */
#include "inference.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "model/cuda_plugin.h"

PGDLLEXPORT void gemmaclf_inference_worker_main(Datum arg);

/* The requests of one forward pass. */
typedef struct batch {
    int n;             /* slots taken */
    int texts;         /* their texts */
    int max_input_tokens;
    int *slot;         /* [n_slots] */
} batch;

static uint64 my_gen;
static gcpg_model *model;              /* held for the worker's life, or until a reload */
static MemoryContext model_cxt;        /* owns `model` (its use ends when this is reset) */
static MemoryContext round_cxt;        /* reset after every batch */
static batch cur;                      /* static: still valid in PG_CATCH after a longjmp */
static int next_scan;                  /* round-robin start of the slot scan */

void gcpg_inference_worker_register(void)
{
    BackgroundWorker w;

    if (!process_shared_preload_libraries_in_progress ||
        gemmaclf_inference_worker == GCPG_INFERENCE_WORKER_OFF)
        return;
    memset(&w, 0, sizeof w);
    /* a "connection" to no database: it then has a pg_stat_activity row (backend_type) */
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_ConsistentState;
    w.bgw_restart_time = 1;
    snprintf(w.bgw_library_name, sizeof w.bgw_library_name, "gemmaclf");
    snprintf(w.bgw_function_name, sizeof w.bgw_function_name, "gemmaclf_inference_worker_main");
    snprintf(w.bgw_name, sizeof w.bgw_name, "gemmaclf inference worker");
    snprintf(w.bgw_type, sizeof w.bgw_type, "gemmaclf inference");
    RegisterBackgroundWorker(&w);
}

/* ---- worker state in shared memory ---- */

static void publish(gcpg_worker_state st, const char *dir, int device, int n_labels,
                    const char *error, const char *hint)
{
    LWLockAcquire(gcpg_infer->lock, LW_EXCLUSIVE);
    gcpg_infer->state = st;
    strlcpy(gcpg_infer->model_dir, dir ? dir : "", sizeof gcpg_infer->model_dir);
    gcpg_infer->device = device;
    gcpg_infer->n_labels = n_labels;
    gcpg_infer->precision = gemmaclf_precision;
    gcpg_infer->cuda_precision = gemmaclf_cuda_precision;
    gcpg_infer->batch_size = gemmaclf_batch_size;
    gcpg_infer->batch_wait_ms = gemmaclf_batch_wait;
    strlcpy(gcpg_infer->error, error ? error : "", sizeof gcpg_infer->error);
    strlcpy(gcpg_infer->hint, hint ? hint : "", sizeof gcpg_infer->hint);
    LWLockRelease(gcpg_infer->lock);
}

/* Ends a taken request: results (or the failure written into it) become its owner's, or, when
 * the owner gave up meanwhile (CANCELLED), the slot is freed here and the result dropped. */
static bool finish(gcpg_infer_slot *s, bool ok)
{
    uint32 expected = SLOT_TAKEN;

    if (pg_atomic_compare_exchange_u32(&s->state, &expected, ok ? SLOT_DONE : SLOT_FAILED)) {
        SetLatch(&s->owner->procLatch);
        return true;
    }
    Assert(expected == SLOT_CANCELLED);
    pg_atomic_write_u32(&s->state, SLOT_FREE);
    return false;
}

static bool fail_slot(gcpg_infer_slot *s, int why, int status, const char *msg)
{
    s->fail = why;
    s->status = status;
    strlcpy(s->msg, msg, sizeof s->msg);
    return finish(s, false);
}

/* Requests taken by a worker that is gone (gen != current) fail; slots their owners cancelled
 * are freed. Run at start (after a crash nobody did it) and at exit (gen = ours). */
static void release_taken(bool others_only)
{
    for (int i = 0; i < gcpg_infer->n_slots; i++) {
        gcpg_infer_slot *s = gcpg_infer_slot_at(i);
        uint32 st = pg_atomic_read_u32(&s->state);

        pg_read_barrier();
        if ((st != SLOT_TAKEN && st != SLOT_CANCELLED) || (others_only == (s->taken_gen == my_gen)))
            continue;
        if (st == SLOT_TAKEN)
            fail_slot(s, GCPG_FAIL_WORKER_GONE, 0,
                      "the gemmaclf inference worker exited while it held this request");
        else
            pg_atomic_write_u32(&s->state, SLOT_FREE);
    }
}

static void worker_exit(int code, Datum arg)
{
    (void)code;
    (void)arg;
    if (LWLockHeldByMe(gcpg_infer->lock))
        LWLockRelease(gcpg_infer->lock);
    release_taken(false);
    LWLockAcquire(gcpg_infer->lock, LW_EXCLUSIVE);
    gcpg_infer->worker_pid = 0;
    gcpg_infer->worker_latch = NULL;
    if (gcpg_infer->state != WORKER_OFF)
        gcpg_infer->state = WORKER_NONE;
    LWLockRelease(gcpg_infer->lock);
}

/* ---- the model ---- */

/* inference_worker = auto: is a GPU usable (the core's device probe)? */
static bool gpu_usable(char *why, size_t cap)
{
    gc_err e = {0};
    const gc_cuda_api *api;
    char msg[256] = "";

    if (gemmaclf_device == GC_DEVICE_CPU) {
        snprintf(why, cap, "gemmaclf.device = cpu");
        return false;
    }
    if (!(api = gc_cuda_load(&e))) {
        snprintf(why, cap, "%s", e.msg);
        return false;
    }
    if (api->device_count(msg, sizeof msg) <= 0) {
        snprintf(why, cap, "%s", msg);
        return false;
    }
    return true;
}

/* (Re)loads the model and session for the current settings; publishes READY or FAILED. */
static void load(void)
{
    MemoryContext old = CurrentMemoryContext;

    if (model) {
        gcpg_release(model);
        model = NULL;
    }
    MemoryContextReset(model_cxt);
    PG_TRY();
    {
        gcpg_model_state ms;
        gc_session *sess;

        MemoryContextSwitchTo(model_cxt);
        model = gcpg_acquire();
        sess = gcpg_session_for(model, gcpg_wanted_device());
        gcpg_model_describe(model, &ms);
        publish(WORKER_READY, ms.dir, gc_ctx_device(gc_session_ctx(sess)),
                gc_classifier_n_labels(gcpg_classifier(model)), NULL, NULL);
        ereport(LOG, (errmsg("gemmaclf inference worker: serving \"%s\" on %s", ms.dir,
                             gc_ctx_device(gc_session_ctx(sess)) == GC_DEVICE_CUDA ? "cuda"
                                                                                   : "cpu")));
        MemoryContextSwitchTo(old);
    }
    PG_CATCH();
    {
        ErrorData *ed;
        char dir[MAXPGPATH] = "", *why = NULL;

        MemoryContextSwitchTo(old);
        ed = CopyErrorData();
        FlushErrorState();
        model = NULL;
        MemoryContextReset(model_cxt);
        (void)gcpg_model_dir(gemmaclf_model_path ? gemmaclf_model_path : "", dir, sizeof dir,
                             (const char **)&why);
        publish(WORKER_FAILED, dir, GC_DEVICE_CPU, 0,
                ed->detail ? psprintf("%s: %s", ed->message, ed->detail) : ed->message,
                ed->hint);
        ereport(LOG, (errmsg("gemmaclf inference worker: %s", ed->message),
                      ed->detail ? errdetail("%s", ed->detail) : 0,
                      ed->hint ? errhint("%s", ed->hint) : 0));
        FreeErrorData(ed);
    }
    PG_END_TRY();
}

/* ---- batching ---- */

/* Takes submitted requests into cur, round-robin over the slots so none starves, while the
 * batch has room; one forward pass holds one max_input_tokens value. */
static void take(void)
{
    int n = gcpg_infer->n_slots, start = next_scan;

    for (int k = 0; k < n && cur.texts < gemmaclf_batch_size; k++) {
        int i = (start + k) % n;
        gcpg_infer_slot *s = gcpg_infer_slot_at(i);
        uint32 expected = SLOT_SUBMITTED;

        if (pg_atomic_read_u32(&s->state) != SLOT_SUBMITTED)
            continue;
        pg_read_barrier();
        if (cur.n > 0 && (s->max_input_tokens != cur.max_input_tokens ||
                          cur.texts + s->n_texts > gemmaclf_batch_size))
            continue;
        /* written before the CAS publishes TAKEN; harmless if the owner withdrew meanwhile */
        s->taken_gen = my_gen;
        if (!pg_atomic_compare_exchange_u32(&s->state, &expected, SLOT_TAKEN))
            continue;
        if (cur.n == 0)
            cur.max_input_tokens = s->max_input_tokens;
        cur.slot[cur.n++] = i;
        cur.texts += s->n_texts;
        next_scan = (i + 1) % n;
    }
}

static void wait_latch(long timeout_ms)
{
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0),
                    timeout_ms, GCPG_WAIT_EVENT);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
}

/* Waits up to gemmaclf.batch_wait (rounded up to whole milliseconds: WaitLatch's unit) for more
 * requests while the batch is short of gemmaclf.batch_size texts. */
static void fill(void)
{
    TimestampTz deadline;

    if (gemmaclf_batch_wait <= 0)
        return;
    deadline = GetCurrentTimestamp() + (TimestampTz)(gemmaclf_batch_wait * 1000.0);
    while (cur.texts < gemmaclf_batch_size) {
        long us = deadline - GetCurrentTimestamp();

        if (us <= 0)
            break;
        wait_latch((us + 999) / 1000);
        take();
    }
}

/* Test hook (gemmaclf_inference_hold): keep the taken requests until released. */
static void hold(void)
{
    for (;;) {
        bool h;

        LWLockAcquire(gcpg_infer->lock, LW_SHARED);
        h = gcpg_infer->hold;
        LWLockRelease(gcpg_infer->lock);
        if (!h)
            return;
        wait_latch(-1);
    }
}

/* One forward pass (or as many as gemmaclf.batch_size needs) over every request in cur; each
 * request gets its rows back or the error. */
static void run(void)
{
    TimestampTz now = GetCurrentTimestamp();
    int n_labels, k = 0, live = 0, failed = 0, dropped = 0;
    double wait_sum = 0, wait_max = 0;
    gc_session *sess;
    const char **texts;
    size_t *lens;
    float *probs;
    int *labels;
    gc_err err = {0};
    gc_status st;

    /* requests cancelled while they waited are dropped before any work */
    for (int j = 0; j < cur.n; j++) {
        gcpg_infer_slot *s = gcpg_infer_slot_at(cur.slot[j]);

        if (pg_atomic_read_u32(&s->state) == SLOT_CANCELLED) {
            pg_atomic_write_u32(&s->state, SLOT_FREE);
            dropped++;
        } else
            cur.slot[live++] = cur.slot[j];
    }
    cur.n = live;
    if (cur.n == 0 || !model) {
        char error[GCPG_INFER_MSG];

        LWLockAcquire(gcpg_infer->lock, LW_SHARED);
        strlcpy(error, gcpg_infer->error, sizeof error);
        LWLockRelease(gcpg_infer->lock);
        for (int j = 0; j < cur.n; j++)
            if (!fail_slot(gcpg_infer_slot_at(cur.slot[j]), GCPG_FAIL_WORKER_BROKEN, 0, error))
                dropped++;
        LWLockAcquire(gcpg_infer->lock, LW_EXCLUSIVE);
        gcpg_infer->discarded += dropped;
        gcpg_infer->errors += cur.n;
        LWLockRelease(gcpg_infer->lock);
        return;
    }
    n_labels = gc_classifier_n_labels(gcpg_classifier(model));
    sess = gcpg_session_for(model, gcpg_wanted_device());
    gc_session_set_limits(sess, gemmaclf_batch_size, cur.max_input_tokens);
    texts = palloc(sizeof(char *) * cur.texts);
    lens = palloc(sizeof(size_t) * cur.texts);
    probs = palloc(sizeof(float) * (size_t)n_labels * cur.texts);
    labels = palloc(sizeof(int) * cur.texts);
    for (int j = 0; j < cur.n; j++) {
        gcpg_infer_slot *s = gcpg_infer_slot_at(cur.slot[j]);
        size_t off = 0;
        double w = (double)(now - s->submitted_at) / 1000.0;

        wait_sum += w;
        wait_max = Max(wait_max, w);
        for (int t = 0; t < s->n_texts; t++, k++) {
            texts[k] = s->text + off;
            lens[k] = s->lens[t];
            off += s->lens[t];
        }
    }
    st = gcpg_session_classify(sess, k, (const char *const *)texts, lens, probs, labels, &err);
    /* counted before any result is delivered: a backend that has its answer sees it counted */
    LWLockAcquire(gcpg_infer->lock, LW_EXCLUSIVE);
    gcpg_infer->batches++;
    gcpg_infer->requests += cur.n;
    gcpg_infer->texts += k;
    gcpg_infer->wait_sum_ms += wait_sum;
    gcpg_infer->wait_max_ms = Max(gcpg_infer->wait_max_ms, wait_max);
    LWLockRelease(gcpg_infer->lock);
    k = 0;
    for (int j = 0; j < cur.n; j++) {
        gcpg_infer_slot *s = gcpg_infer_slot_at(cur.slot[j]);
        bool delivered;

        if (st == GC_OK) {
            memcpy(s->probs, probs + (size_t)k * n_labels,
                   sizeof(float) * n_labels * s->n_texts);
            memcpy(s->labels, labels + k, sizeof(int) * s->n_texts);
            s->fail = 0;
            delivered = finish(s, true);
        } else {
            delivered = fail_slot(s, GCPG_FAIL_CORE, st, err.msg);
            failed++;
        }
        dropped += !delivered;
        k += s->n_texts;
    }
    LWLockAcquire(gcpg_infer->lock, LW_EXCLUSIVE);
    gcpg_infer->errors += failed;
    gcpg_infer->discarded += dropped;
    LWLockRelease(gcpg_infer->lock);
}

/* An ERROR while serving (out of memory, a session that cannot start) fails the batch's
 * requests with its message; the worker goes on. */
static void fail_batch(void)
{
    ErrorData *ed;

    MemoryContextSwitchTo(TopMemoryContext);
    ed = CopyErrorData();
    FlushErrorState();
    for (int j = 0; j < cur.n; j++) {
        gcpg_infer_slot *s = gcpg_infer_slot_at(cur.slot[j]);

        if (pg_atomic_read_u32(&s->state) == SLOT_CANCELLED)
            pg_atomic_write_u32(&s->state, SLOT_FREE);
        else if (pg_atomic_read_u32(&s->state) == SLOT_TAKEN)
            fail_slot(s, GCPG_FAIL_CORE, GC_EDEVICE, ed->message);
    }
    ereport(LOG, (errmsg("gemmaclf inference worker: %s", ed->message)));
    FreeErrorData(ed);
}

static void serve_round(void)
{
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
        load();
    }
    cur.n = cur.texts = 0;
    take();
    if (cur.n == 0) {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, GCPG_WAIT_EVENT);
        return;
    }
    fill();
    hold();
    PG_TRY();
    {
        MemoryContextSwitchTo(round_cxt);
        run();
    }
    PG_CATCH();
    {
        fail_batch();
    }
    PG_END_TRY();
    cur.n = cur.texts = 0;
    MemoryContextSwitchTo(TopMemoryContext);
    MemoryContextReset(round_cxt);
}

void gemmaclf_inference_worker_main(Datum arg)
{
    char why[512];

    (void)arg;
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(NULL, NULL, 0);

    model_cxt = AllocSetContextCreate(TopMemoryContext, "gemmaclf worker model",
                                      ALLOCSET_DEFAULT_SIZES);
    round_cxt = AllocSetContextCreate(TopMemoryContext, "gemmaclf worker batch",
                                      ALLOCSET_DEFAULT_SIZES);
    cur.slot = MemoryContextAlloc(TopMemoryContext, sizeof(int) * gcpg_infer->n_slots);

    LWLockAcquire(gcpg_infer->lock, LW_EXCLUSIVE);
    my_gen = ++gcpg_infer->generation;
    gcpg_infer->worker_pid = MyProcPid;
    gcpg_infer->worker_latch = MyLatch;
    gcpg_infer->state = WORKER_STARTING;
    gcpg_infer->started_at = GetCurrentTimestamp();
    gcpg_infer->batches = gcpg_infer->requests = gcpg_infer->texts = 0;
    gcpg_infer->errors = gcpg_infer->discarded = 0;
    gcpg_infer->wait_sum_ms = gcpg_infer->wait_max_ms = 0;
    gcpg_infer->hold = false;
    LWLockRelease(gcpg_infer->lock);
    before_shmem_exit(worker_exit, 0);
    release_taken(true);

    if (gemmaclf_inference_worker == GCPG_INFERENCE_WORKER_AUTO &&
        !gpu_usable(why, sizeof why)) {
        publish(WORKER_OFF, NULL, GC_DEVICE_CPU, 0,
                psprintf("gemmaclf.inference_worker = auto and no usable GPU (%s)", why),
                "Set gemmaclf.inference_worker = on to run it on the CPU.");
        ereport(LOG, (errmsg("gemmaclf inference worker: not needed, no usable GPU (%s)", why)));
        proc_exit(0); /* exit code 0: the postmaster does not restart it */
    }
    pgstat_report_activity(STATE_RUNNING, "loading the model");
    load();
    pgstat_report_activity(STATE_IDLE, NULL);
    for (;;)
        serve_round();
}
