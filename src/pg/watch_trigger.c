/* gemmaclf_watch_trigger(text_column, label_column [, scores_column]): the BEFORE INSERT OR
 * UPDATE row trigger gemmaclf_watch() installs (ENABLE ALWAYS, so it also fires for rows that
 * logical replication applies). It never classifies:
 *  - an UPDATE that changes the text sets the label (and scores) to NULL in the same row
 *    version, so a stale label is never visible next to new text; an UPDATE that also sets a
 *    different label itself keeps that label;
 *  - a row left waiting for a label (label NULL, text not NULL) wakes the workers when the
 *    transaction commits.
 * A row trigger rather than a statement trigger, because the logical replication apply worker
 * fires only row triggers, and a BEFORE one needs no after-trigger queue. When a column it names
 * is gone (the watch then stops, watch_batch.c) it leaves rows as they are: a renamed or dropped
 * column must never make the table's INSERTs and UPDATEs fail. */
#include "watch.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/datum.h"
#include "utils/rel.h"

#define CALLER "gemmaclf_watch_trigger"
#define USAGE_HINT "This trigger is installed by gemmaclf_watch(); use that function."

/* Whether column att differs between the old and new row version (NULLs included). */
static bool changed(TupleDesc desc, HeapTuple old, HeapTuple new, int att)
{
    Form_pg_attribute a = TupleDescAttr(desc, att - 1);
    bool old_null, new_null;
    Datum o = heap_getattr(old, att, desc, &old_null), n = heap_getattr(new, att, desc, &new_null);

    if (old_null || new_null)
        return old_null != new_null;
    return !datum_image_eq(o, n, a->attbyval, a->attlen);
}

static bool is_null(HeapTuple tuple, TupleDesc desc, int att)
{
    bool isnull;

    (void)heap_getattr(tuple, att, desc, &isnull);
    return isnull;
}

PG_FUNCTION_INFO_V1(gemmaclf_watch_trigger);
Datum gemmaclf_watch_trigger(PG_FUNCTION_ARGS)
{
    TriggerData *td;
    TupleDesc desc;
    HeapTuple tuple;
    char **args;
    int src, lab, sco = 0;

    gcpg_before_row_trigger(fcinfo, CALLER, USAGE_HINT, 2, 3);
    td = (TriggerData *)fcinfo->context;
    desc = RelationGetDescr(td->tg_relation);
    args = td->tg_trigger->tgargs;
    tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
    src = SPI_fnumber(desc, args[0]);
    lab = SPI_fnumber(desc, args[1]);
    if (td->tg_trigger->tgnargs == 3)
        sco = SPI_fnumber(desc, args[2]);
    if (src <= 0 || lab <= 0 || sco < 0)
        return PointerGetDatum(tuple);

    if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
        changed(desc, td->tg_trigtuple, tuple, src) &&
        !changed(desc, td->tg_trigtuple, tuple, lab) && !is_null(tuple, desc, lab)) {
        int cols[2] = {lab, sco};
        Datum vals[2] = {0, 0};
        bool nulls[2] = {true, true};

        tuple = heap_modify_tuple_by_cols(tuple, desc, sco > 0 ? 2 : 1, cols, vals, nulls);
    }
    if (is_null(tuple, desc, lab) && !is_null(tuple, desc, src))
        gcpg_watch_wake_at_commit(RelationGetRelid(td->tg_relation));
    return PointerGetDatum(tuple);
}
