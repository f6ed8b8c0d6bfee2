/* The backend side of the inference worker (protocol in inference.h): whether the worker serves
 * a call, and putting its texts into a slot, waking the worker, waiting on our latch and reading
 * the probabilities back.
 *
 * The worker serves a call when it is ready, gemmaclf.use_inference_worker is on, the call's
 * model (gemmaclf.model_path, resolved) is the directory the worker loaded, its precision
 * settings (gemmaclf.precision, gemmaclf.cuda_precision) are the worker's, and a text fits a
 * slot (gemmaclf.max_input_tokens <= GCPG_INFER_TEXT_BYTES / 64 = 2048). Every other call runs
 * in the backend, as without a worker. Requests hold at most GCPG_INFER_MAX_TEXTS texts and
 * GCPG_INFER_TEXT_BYTES bytes; larger calls are split into several requests.
 *
 * While waiting: a cancel or statement_timeout ends the wait at once and the request is dropped
 * (withdrawn, or marked CANCELLED so that the worker discards its result); the worker's liveness
 * (pid, generation) is checked at every wake and at least once a second, so a worker that is gone
 * never leaves us hanging: its requests end in an ERROR, or with gemmaclf.device = auto in a
 * fallback to this backend's own CPU session. */
#include "inference.h"

#include "miscadmin.h"
#include "storage/ipc.h"

#include "classifier/prompt.h"

#define ALIVE_CHECK_MS 1000

#define WORKER_HINT \
    "Fix the server's gemmaclf settings (postgresql.conf) and reload them, or SET " \
    "gemmaclf.use_inference_worker = off to classify in this session."

typedef enum outcome { SERVED, WORKER_GONE, NO_SLOT } outcome;

static gcpg_infer_slot *my_slot = NULL; /* the slot this backend is using, for the exit hook */
static bool exit_hook_set = false;

/* The owner gives its slot up (error or exit while waiting): withdrawn when not taken yet,
 * else CANCELLED so that the worker frees it when its forward pass ends; a slot already
 * answered is simply freed. */
static void abandon(gcpg_infer_slot *s)
{
    uint32 st = SLOT_SUBMITTED;

    if (pg_atomic_compare_exchange_u32(&s->state, &st, SLOT_FREE))
        return;
    if (st == SLOT_TAKEN && pg_atomic_compare_exchange_u32(&s->state, &st, SLOT_CANCELLED))
        return;
    /* FILLING, DONE or FAILED: nobody else touches it */
    pg_atomic_write_u32(&s->state, SLOT_FREE);
}

static void abandon_on_exit(int code, Datum arg)
{
    (void)code;
    (void)arg;
    if (my_slot)
        abandon(my_slot);
    my_slot = NULL;
}

static gcpg_infer_slot *claim(void)
{
    int n = gcpg_infer->n_slots;

    for (int k = 0; k < n; k++) {
        gcpg_infer_slot *s = gcpg_infer_slot_at((MyProcPid + k) % n);
        uint32 expected = SLOT_FREE;

        if (pg_atomic_compare_exchange_u32(&s->state, &expected, SLOT_FILLING))
            return s;
    }
    return NULL;
}

/* Has the worker that holds (or would take) our request gone? If so the request is withdrawn
 * here and true returned. */
static bool worker_gone(gcpg_infer_slot *s)
{
    uint32 st = pg_atomic_read_u32(&s->state);
    int pid;
    uint64 gen;

    pg_read_barrier();
    LWLockAcquire(gcpg_infer->lock, LW_SHARED);
    pid = gcpg_infer->worker_pid;
    gen = gcpg_infer->generation;
    LWLockRelease(gcpg_infer->lock);
    if (st == SLOT_SUBMITTED && pid == 0)
        return pg_atomic_compare_exchange_u32(&s->state, &st, SLOT_FREE);
    if (st == SLOT_TAKEN && (pid == 0 || s->taken_gen != gen))
        return pg_atomic_compare_exchange_u32(&s->state, &st, SLOT_FREE);
    return false;
}

/* Waits until the request is answered (DONE or FAILED: true) or the worker is gone (false). */
static bool wait_answer(gcpg_infer_slot *s)
{
    for (;;) {
        uint32 st = pg_atomic_read_u32(&s->state);

        if (st == SLOT_DONE || st == SLOT_FAILED) {
            pg_read_barrier(); /* the results were written before the state */
            return true;
        }
        if (worker_gone(s))
            return false;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ALIVE_CHECK_MS,
                        GCPG_WAIT_EVENT);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

static void raise_failure(gcpg_infer_slot *s)
{
    int fail = s->fail, status = s->status;
    char msg[GCPG_INFER_MSG];

    strlcpy(msg, s->msg, sizeof msg);
    my_slot = NULL;
    pg_atomic_write_u32(&s->state, SLOT_FREE);
    if (fail == GCPG_FAIL_CORE && status == GC_ENUMERIC)
        gcpg_nonfinite_error(msg);
    if (fail == GCPG_FAIL_CORE)
        ereport(ERROR, (errcode(gcpg_sqlstate(status)), errmsg("gemmaclf: %s", msg),
                        gcpg_status_hint(status)));
    ereport(ERROR, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
                    errmsg("gemmaclf inference worker: %s", msg), errhint(WORKER_HINT)));
}

/* One request: texts (already cut) into a free slot, wake the worker, wait, copy back. */
static outcome submit(int n, const char *const *texts, const size_t *lens, int n_labels,
                      float *probs, int *labels)
{
    gcpg_infer_slot *s = claim();
    Latch *worker;
    size_t off = 0;
    volatile bool answered = false;

    if (!s)
        return NO_SLOT;
    if (!exit_hook_set) {
        before_shmem_exit(abandon_on_exit, 0);
        exit_hook_set = true;
    }
    my_slot = s;
    s->owner = MyProc;
    s->n_texts = n;
    s->max_input_tokens = gemmaclf_max_input_tokens;
    s->fail = 0;
    for (int i = 0; i < n; i++) {
        memcpy(s->text + off, texts[i], lens[i]);
        s->lens[i] = (uint32)lens[i];
        off += lens[i];
    }
    s->submitted_at = GetCurrentTimestamp();
    (void)pg_atomic_exchange_u32(&s->state, SLOT_SUBMITTED); /* full barrier: texts first */
    LWLockAcquire(gcpg_infer->lock, LW_SHARED);
    worker = gcpg_infer->worker_latch;
    LWLockRelease(gcpg_infer->lock);
    if (worker)
        SetLatch(worker);
    /* a cancel (or any ERROR) while waiting drops the request */
    PG_TRY();
    {
        answered = wait_answer(s);
    }
    PG_CATCH();
    {
        abandon(s);
        my_slot = NULL;
        PG_RE_THROW();
    }
    PG_END_TRY();
    if (!answered) {
        my_slot = NULL; /* withdrawn by worker_gone */
        return WORKER_GONE;
    }
    if (pg_atomic_read_u32(&s->state) == SLOT_FAILED) {
        if (s->fail == GCPG_FAIL_WORKER_GONE) {
            my_slot = NULL;
            pg_atomic_write_u32(&s->state, SLOT_FREE);
            return WORKER_GONE;
        }
        raise_failure(s);
    }
    memcpy(probs, s->probs, sizeof(float) * n_labels * n);
    memcpy(labels, s->labels, sizeof(int) * n);
    my_slot = NULL;
    (void)pg_atomic_exchange_u32(&s->state, SLOT_FREE); /* full barrier: results read first */
    return SERVED;
}

typedef enum route { ROUTE_BACKEND, ROUTE_WORKER, ROUTE_WORKER_FAILED } route;

static route route_for(gcpg_model *m, char *error, char *hint)
{
    gcpg_model_state ms;
    route r = ROUTE_BACKEND;

    if (!gcpg_infer || !gemmaclf_use_inference_worker ||
        (size_t)gemmaclf_max_input_tokens * 64 > GCPG_INFER_TEXT_BYTES ||
        gc_classifier_n_labels(gcpg_classifier(m)) > GCPG_INFER_MAX_LABELS)
        return ROUTE_BACKEND;
    gcpg_model_describe(m, &ms);
    LWLockAcquire(gcpg_infer->lock, LW_SHARED);
    if (gcpg_infer->worker_pid != 0 && strcmp(gcpg_infer->model_dir, ms.dir) == 0 &&
        gcpg_infer->precision == gemmaclf_precision &&
        gcpg_infer->cuda_precision == gemmaclf_cuda_precision) {
        if (gcpg_infer->state == WORKER_READY)
            r = ROUTE_WORKER;
        else if (gcpg_infer->state == WORKER_FAILED) {
            r = ROUTE_WORKER_FAILED;
            if (error)
                strlcpy(error, gcpg_infer->error, GCPG_INFER_MSG);
            if (hint)
                strlcpy(hint, gcpg_infer->hint, GCPG_INFER_MSG);
        }
    }
    LWLockRelease(gcpg_infer->lock);
    return r;
}

bool gcpg_inference_serves(gcpg_model *m)
{
    return route_for(m, NULL, NULL) != ROUTE_BACKEND;
}

int gcpg_inference_worker_pid(void)
{
    int pid;

    if (!gcpg_infer)
        return 0;
    LWLockAcquire(gcpg_infer->lock, LW_SHARED);
    pid = gcpg_infer->worker_pid;
    LWLockRelease(gcpg_infer->lock);
    return pid;
}

bool gcpg_inference_classify(gcpg_model *m, int n, const char *const *texts, const size_t *lens,
                             float *probs, int *labels, bool *cpu_only)
{
    char error[GCPG_INFER_MSG], hint[GCPG_INFER_MSG];
    int n_labels = gc_classifier_n_labels(gcpg_classifier(m));
    /* the core's own cut (classifier.h), applied here so that a text fits a slot */
    size_t cut = Max((size_t)4096, (size_t)64 * gemmaclf_max_input_tokens);
    const char **cut_texts;
    size_t *cut_lens;
    int i = 0;

    *cpu_only = false;
    switch (route_for(m, error, hint)) {
    case ROUTE_BACKEND:
        return false;
    case ROUTE_WORKER_FAILED:
        ereport(ERROR, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
                        errmsg("the gemmaclf inference worker could not start: %s",
                               error),
                        errhint("%s %s", hint[0] ? hint : "", WORKER_HINT)));
    case ROUTE_WORKER:
        break;
    }
    cut_texts = palloc(sizeof(char *) * n);
    cut_lens = palloc(sizeof(size_t) * n);
    for (int t = 0; t < n; t++) {
        char *owned;
        gc_err e = {0};
        gc_status st;

        cut_texts[t] = texts[t];
        cut_lens[t] = lens[t];
        st = gc_prompt_clip_text(&cut_texts[t], &cut_lens[t], cut, &owned, &e);
        if (st != GC_OK)
            ereport(ERROR, (errcode(gcpg_sqlstate(st)), errmsg("gemmaclf: %s", e.msg)));
        if (owned) {
            char *copy = palloc(cut_lens[t] + 1);

            memcpy(copy, cut_texts[t], cut_lens[t]);
            cut_texts[t] = copy;
            free(owned);
        }
    }
    while (i < n) {
        int k = 0;
        size_t bytes = 0;
        outcome o;

        while (i + k < n && k < GCPG_INFER_MAX_TEXTS && bytes + cut_lens[i + k] <= GCPG_INFER_TEXT_BYTES)
            bytes += cut_lens[i + k++];
        o = submit(k, cut_texts + i, cut_lens + i, n_labels, probs + (size_t)i * n_labels,
                   labels + i);
        if (o == NO_SLOT)
            return false;
        if (o == WORKER_GONE) {
            if (gemmaclf_device != GC_DEVICE_AUTO)
                ereport(ERROR, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
                                errmsg("the gemmaclf inference worker exited before it "
                                       "answered this request"),
                                errhint("The server restarts it; retry the statement, or SET "
                                        "gemmaclf.device = 'auto' to fall back to this "
                                        "session's CPU when that happens.")));
            ereport(DEBUG1, (errmsg("gemmaclf: the inference worker exited; classifying in "
                                    "this session on the CPU")));
            *cpu_only = true;
            return false;
        }
        i += k;
    }
    pfree(cut_texts);
    pfree(cut_lens);
    return true;
}
