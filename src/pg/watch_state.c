/* Shared memory of background labelling: each worker's latch (so that a committing backend can
 * wake them) and the counters of each watched table that gemmaclf_watch_status shows. Exists
 * only when gemmaclf is in shared_preload_libraries; one LWLock guards it all (it is touched
 * once per batch and once per committing transaction that left rows to label). */
#include "watch.h"

#include <math.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

/* Time constant of the rows/s average: the view's rate follows a change within a few times
 * this, and a worker that stops shows a rate that falls to ~0 within a minute. */
#define GCPG_WATCH_RATE_TAU_S 10.0

#define LOCK_TRANCHE "gemmaclf watch"

typedef struct worker_slot {
    int pid;        /* 0: not running */
    Latch *latch;
} worker_slot;

typedef struct watch_state {
    LWLock *lock;
    worker_slot workers[GCPG_WATCH_MAX_WORKERS];
    gcpg_watch_counters tables[GCPG_WATCH_MAX_TABLES]; /* relid InvalidOid: free */
} watch_state;

static watch_state *state = NULL;
static shmem_request_hook_type prev_request = NULL;
static shmem_startup_hook_type prev_startup = NULL;

bool gcpg_watch_available(void)
{
    return state != NULL;
}

static void request_shmem(void)
{
    if (prev_request)
        prev_request();
    RequestAddinShmemSpace(MAXALIGN(sizeof(watch_state)));
    RequestNamedLWLockTranche(LOCK_TRANCHE, 1);
}

static void startup_shmem(void)
{
    bool found;

    if (prev_startup)
        prev_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    state = ShmemInitStruct("gemmaclf watch", sizeof(watch_state), &found);
    if (!found) {
        memset(state, 0, sizeof *state);
        state->lock = &(GetNamedLWLockTranche(LOCK_TRANCHE))->lock;
    }
    LWLockRelease(AddinShmemInitLock);
}

void gcpg_watch_state_request(void)
{
    prev_request = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_startup = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

static void worker_detach(int code, Datum arg)
{
    worker_slot *w = &state->workers[DatumGetInt32(arg)];

    (void)code;
    LWLockAcquire(state->lock, LW_EXCLUSIVE);
    w->pid = 0;
    w->latch = NULL;
    LWLockRelease(state->lock);
}

void gcpg_watch_worker_attach(int slot)
{
    Assert(state && slot >= 0 && slot < GCPG_WATCH_MAX_WORKERS);
    LWLockAcquire(state->lock, LW_EXCLUSIVE);
    state->workers[slot].pid = MyProcPid;
    state->workers[slot].latch = MyLatch;
    LWLockRelease(state->lock);
    before_shmem_exit(worker_detach, Int32GetDatum(slot));
}

void gcpg_watch_wake_all(void)
{
    if (!state)
        return;
    LWLockAcquire(state->lock, LW_SHARED);
    for (int i = 0; i < GCPG_WATCH_MAX_WORKERS; i++)
        if (state->workers[i].latch)
            SetLatch(state->workers[i].latch);
    LWLockRelease(state->lock);
}

/* The counters of relid (lock held exclusively); a free slot is taken for a new table, NULL
 * when there is none left (the table is then labelled without counters). */
static gcpg_watch_counters *counters(Oid relid, bool create)
{
    gcpg_watch_counters *free_slot = NULL;

    for (int i = 0; i < GCPG_WATCH_MAX_TABLES; i++) {
        gcpg_watch_counters *c = &state->tables[i];

        if (c->relid == relid)
            return c;
        if (c->relid == InvalidOid && !free_slot)
            free_slot = c;
    }
    if (!create || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->relid = relid;
    return free_slot;
}

/* The prologue of every update of one table's counters: takes the lock exclusively and finds
 * relid's counters (*c, NULL when there are none). False, with no lock taken, when the shared
 * state does not exist (gemmaclf not in shared_preload_libraries). */
static bool lock_counters(Oid relid, bool create, gcpg_watch_counters **c)
{
    if (!state)
        return false;
    LWLockAcquire(state->lock, LW_EXCLUSIVE);
    *c = counters(relid, create);
    return true;
}

/* The average decayed to now. In the first time constants after the counters started it is
 * divided by the weight the average has had time to gather (as Adam corrects its moments), so
 * that a steady rate reads as itself from the first seconds, not as a slow climb from 0. */
static double decayed_rate(const gcpg_watch_counters *c, TimestampTz now)
{
    double dt, age;

    if (c->last_batch_at == 0)
        return 0;
    dt = Max((double)(now - c->last_batch_at) / USECS_PER_SEC, 0);
    age = Max((double)(now - c->first_batch_at) / USECS_PER_SEC, 1.0);
    return c->rate * exp(-dt / GCPG_WATCH_RATE_TAU_S) / (1 - exp(-age / GCPG_WATCH_RATE_TAU_S));
}

/* Runs at COMMIT (watch_wake.c): must not fail, so it only takes the lock and writes. Only
 * tables that have counters (made by gemmaclf_watch and by the workers' batches) are noted:
 * the partitions and ancestors a trigger also reports take no slots. */
void gcpg_watch_note_commit(Oid relid, TimestampTz now)
{
    gcpg_watch_counters *c;

    if (!lock_counters(relid, false, &c))
        return;
    if (c) {
        c->last_commit_at = now;
        if (c->pending_since == 0)
            c->pending_since = now;
    }
    LWLockRelease(state->lock);
}

void gcpg_watch_note_batch(Oid relid, int labelled, int failed, bool drained,
                           TimestampTz started)
{
    TimestampTz now = GetCurrentTimestamp();
    gcpg_watch_counters *c;

    if (!lock_counters(relid, true, &c))
        return;
    if (c) {
        /* An exponentially weighted rate: each batch adds labelled / tau, and the rate decays
         * with the time since the previous batch (exact for any spacing of batches, also for
         * several workers ending batches a few microseconds apart). */
        double dt = c->last_batch_at ? (double)(now - c->last_batch_at) / USECS_PER_SEC : 0;

        c->rate = (dt > 0 ? c->rate * exp(-dt / GCPG_WATCH_RATE_TAU_S) : c->rate) +
                  labelled / GCPG_WATCH_RATE_TAU_S;
        if (c->last_batch_at == 0)
            c->first_batch_at = now;
        c->last_batch_at = now;
        c->labelled += labelled;
        c->failed += failed;
        /* Drained: every row committed before `started` is labelled, failed or in another
         * worker's batch. Rows of commits since then may wait, and are at most now - started
         * old. A full batch with no age known: the backlog predates what this server saw
         * (a restart, or rows written while the watch's triggers were disabled); its age is
         * counted from here. */
        if (drained)
            c->pending_since = c->last_commit_at < started ? 0 : started;
        else if (c->pending_since == 0)
            c->pending_since = started;
    }
    LWLockRelease(state->lock);
}

void gcpg_watch_note_error(Oid relid, const char *msg)
{
    gcpg_watch_counters *c;

    if (!lock_counters(relid, true, &c))
        return;
    if (c) {
        strlcpy(c->last_error, msg, sizeof c->last_error);
        c->last_error_at = GetCurrentTimestamp();
    }
    LWLockRelease(state->lock);
}

void gcpg_watch_start_counters(Oid relid)
{
    gcpg_watch_counters *c;

    if (!lock_counters(relid, true, &c))
        return;
    LWLockRelease(state->lock);
}

bool gcpg_watch_prune_due(Oid relid)
{
    TimestampTz now = GetCurrentTimestamp();
    gcpg_watch_counters *c;
    bool due = false;

    if (!lock_counters(relid, false, &c))
        return false;
    if (c && TimestampDifferenceExceeds(c->pruned_at, now, 60 * 1000)) {
        c->pruned_at = now;
        due = true;
    }
    LWLockRelease(state->lock);
    return due;
}

void gcpg_watch_forget_counters(Oid relid)
{
    gcpg_watch_counters *c;

    if (!lock_counters(relid, false, &c))
        return;
    if (c)
        c->relid = InvalidOid;
    LWLockRelease(state->lock);
}

int gcpg_watch_copy_counters(gcpg_watch_counters *out, int cap)
{
    TimestampTz now = GetCurrentTimestamp();
    int n = 0;

    if (!state)
        return 0;
    LWLockAcquire(state->lock, LW_SHARED);
    for (int i = 0; i < GCPG_WATCH_MAX_TABLES && n < cap; i++) {
        if (state->tables[i].relid == InvalidOid)
            continue;
        out[n] = state->tables[i];
        out[n].rate = decayed_rate(&state->tables[i], now);
        n++;
    }
    LWLockRelease(state->lock);
    return n;
}
