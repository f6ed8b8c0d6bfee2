/* The background workers of background labelling: gemmaclf.workers static workers, registered
 * by _PG_init while the postmaster loads shared_preload_libraries, each connected to the one
 * database gemmaclf.database (like pg_cron). The postmaster starts them when the server
 * accepts connections and restarts one GCPG_WATCH_RESTART_S seconds after it exits with an
 * error or is terminated (pg_terminate_backend); a worker killed by a signal makes the
 * postmaster reinitialise the whole cluster (as for any backend), after which they start
 * again. Nothing is lost either way: a batch is one transaction, and the rows of a batch that
 * did not commit are still waiting.
 *
 * Each worker loops: one batch per watched table in turn, again while any batch came back full,
 * then sleep on its latch until a committing transaction that left rows to label sets it
 * (watch_wake.c). The sleep has a timeout of GCPG_WATCH_NAP_S as a safety net, never the way
 * rows are found: rows of a PREPAREd transaction committed later, or written while the watch
 * trigger was disabled, and tables whose last batch failed (retried after a pause that doubles
 * up to the same bound). */
#include "watch.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define GCPG_WATCH_RESTART_S 5
#define GCPG_WATCH_NAP_S 60
#define GCPG_WATCH_RETRY_FIRST_S 1

PGDLLEXPORT void gemmaclf_watch_worker_main(Datum arg);

/* A table whose last batch failed is retried after a pause (per worker). */
typedef struct table_pause {
    Oid relid;
    TimestampTz until;
    int seconds;
} table_pause;

#define MAX_PAUSED 64
static table_pause paused[MAX_PAUSED];

static table_pause *pause_of(Oid relid, bool create)
{
    table_pause *free_slot = NULL;

    for (int i = 0; i < MAX_PAUSED; i++) {
        if (paused[i].relid == relid)
            return &paused[i];
        if (paused[i].relid == InvalidOid && !free_slot)
            free_slot = &paused[i];
    }
    if (create && free_slot) {
        free_slot->relid = relid;
        free_slot->seconds = 0;
        return free_slot;
    }
    return NULL;
}

/* The registry, read in a transaction of its own; NULL when gemmaclf is not installed in
 * this database (or at a version without watches). */
static gcpg_watch_entry *read_registry(gcpg_watch_registry *reg, int *n)
{
    MemoryContext cx = CurrentMemoryContext; /* the entries live here, past the commit */
    gcpg_watch_entry *es = NULL;

    *n = 0;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    MemoryContextSwitchTo(cx);
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "gemmaclf watch: reading the watched tables");
    reg->schema = gcpg_watch_schema(&reg->owner);
    if (reg->schema)
        es = gcpg_watch_entries(reg->schema, n);
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
    MemoryContextSwitchTo(cx);
    pgstat_report_activity(STATE_IDLE, NULL);
    return es;
}

/* One batch of e's table; a failure is logged, shown as the table's last error, and pauses
 * the table. Returns whether more rows may be waiting. */
static bool run_batch(const gcpg_watch_registry *reg, const gcpg_watch_entry *e,
                      MemoryContext loop_cx)
{
    table_pause *p = pause_of(e->relid, false);
    gcpg_batch_outcome out = GCPG_BATCH_GONE;

    if (p && p->until > GetCurrentTimestamp())
        return false;
    PG_TRY();
    {
        out = gcpg_watch_batch(reg, e);
        if (p)
            p->relid = InvalidOid;
    }
    PG_CATCH();
    {
        ErrorData *ed;

        MemoryContextSwitchTo(loop_cx);
        ed = CopyErrorData();
        EmitErrorReport();
        FlushErrorState();
        AbortCurrentTransaction();
        gcpg_watch_note_error(e->relid, ed->message ? ed->message : "(no message)");
        p = pause_of(e->relid, true);
        if (p) {
            p->seconds = Min(Max(p->seconds * 2, GCPG_WATCH_RETRY_FIRST_S), GCPG_WATCH_NAP_S);
            p->until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), p->seconds * 1000);
        }
        pgstat_report_activity(STATE_IDLE, NULL);
    }
    PG_END_TRY();
    MemoryContextSwitchTo(loop_cx);
    return out == GCPG_BATCH_FULL;
}

/* Milliseconds to sleep: the safety-net nap, or less when a paused table is due sooner. */
static long nap_ms(void)
{
    TimestampTz now = GetCurrentTimestamp();
    long ms = GCPG_WATCH_NAP_S * 1000L;

    for (int i = 0; i < MAX_PAUSED; i++)
        if (paused[i].relid != InvalidOid)
            ms = Min(ms, Max(TimestampDifferenceMilliseconds(now, paused[i].until), 1));
    return ms;
}

void gemmaclf_watch_worker_main(Datum arg)
{
    int slot = DatumGetInt32(arg);
    MemoryContext loop_cx;
    uint32 wait_event;

    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(gemmaclf_watch_database, NULL, 0);
    gcpg_watch_worker_attach(slot);
    /* The worker's own queries name everything in full; triggers and policies of watched
     * tables run with this path, as they do in logical replication's apply workers. */
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("application_name", GCPG_WATCH_BGW_TYPE, PGC_USERSET, PGC_S_SESSION);
    wait_event = gcpg_wait_event("GemmaclfWatchMain");
    loop_cx = AllocSetContextCreate(TopMemoryContext, "gemmaclf watch loop",
                                    ALLOCSET_DEFAULT_SIZES);
    ereport(LOG, (errmsg("gemmaclf watch worker %d started in database \"%s\"", slot + 1,
                         gemmaclf_watch_database)));

    for (;;) {
        bool more = true;

        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        while (more) {
            gcpg_watch_registry reg;
            gcpg_watch_entry *es;
            int n;

            more = false;
            MemoryContextSwitchTo(loop_cx);
            es = read_registry(&reg, &n);
            MemoryContextSwitchTo(loop_cx);
            for (int i = 0; i < n; i++) {
                CHECK_FOR_INTERRUPTS();
                more |= run_batch(&reg, &es[i], loop_cx);
            }
            MemoryContextReset(loop_cx);
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, nap_ms(),
                        wait_event);
    }
}

static void register_workers(void)
{
    for (int i = 0; i < gemmaclf_watch_workers; i++) {
        BackgroundWorker w;

        memset(&w, 0, sizeof w);
        w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
        w.bgw_start_time = BgWorkerStart_RecoveryFinished;
        w.bgw_restart_time = GCPG_WATCH_RESTART_S;
        snprintf(w.bgw_library_name, BGW_MAXLEN, "gemmaclf");
        snprintf(w.bgw_function_name, BGW_MAXLEN, "gemmaclf_watch_worker_main");
        snprintf(w.bgw_name, BGW_MAXLEN, GCPG_WATCH_BGW_TYPE " worker %d", i + 1);
        snprintf(w.bgw_type, BGW_MAXLEN, GCPG_WATCH_BGW_TYPE);
        w.bgw_main_arg = Int32GetDatum(i);
        RegisterBackgroundWorker(&w);
    }
}

void gcpg_watch_init(void)
{
    if (!process_shared_preload_libraries_in_progress)
        return;
    gcpg_watch_state_request();
    register_workers();
}
