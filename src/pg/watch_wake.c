/* Waking the workers: the watch trigger notes that a row is left to label, and when (only when)
 * the transaction commits its rows are visible, so the workers' latches are set then. Setting
 * them earlier would let a worker look before the rows exist for it and sleep again; an aborted
 * transaction wakes nobody. A transaction that is only PREPAREd is picked up by the workers'
 * periodic look (watch_worker.c), since COMMIT PREPARED may run in any session. */
#include "watch.h"

#include "access/xact.h"
#include "catalog/partition.h"
#include "nodes/pg_list.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

/* The tables this transaction left rows of (a partition with its ancestors: the watched table
 * may be any of them); more than fit: the workers are still woken, and only the counters of
 * the first ones learn the commit time. */
#define MAX_NOTED 16

static Oid noted[MAX_NOTED];
static int n_noted = 0;
static bool wake_wanted = false;
static bool callback_registered = false;

static void at_xact_end(XactEvent event, void *arg)
{
    (void)arg;
    if (!wake_wanted)
        return;
    if (event == XACT_EVENT_COMMIT) {
        TimestampTz now = GetCurrentTimestamp();

        for (int i = 0; i < n_noted; i++)
            gcpg_watch_note_commit(noted[i], now);
        gcpg_watch_wake_all();
    }
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
        event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
        event == XACT_EVENT_PARALLEL_ABORT) {
        wake_wanted = false;
        n_noted = 0;
    }
}

static void note(Oid relid)
{
    if (n_noted < MAX_NOTED)
        noted[n_noted++] = relid;
}

void gcpg_watch_wake_at_commit(Oid relid)
{
    if (!gcpg_watch_available())
        return;
    if (!callback_registered) {
        RegisterXactCallback(at_xact_end, NULL);
        callback_registered = true;
    }
    wake_wanted = true;
    for (int i = 0; i < n_noted; i++)
        if (noted[i] == relid)
            return;
    note(relid);
    /* Looked up once per partition and transaction, not per row. */
    if (get_rel_relispartition(relid)) {
        List *ancestors = get_partition_ancestors(relid);
        ListCell *lc;

        foreach (lc, ancestors)
            note(lfirst_oid(lc));
        list_free(ancestors);
    }
}
