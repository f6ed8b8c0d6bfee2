/* gemmaclf_flag_hate(text_column, label_column [, scores_column]): BEFORE INSERT OR UPDATE
 * row trigger that stores the label (and optionally the jsonb scores) of the row's text. */
#include "gemmaclf_pg.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/datum.h"
#include "utils/rel.h"

#define CALLER "gemmaclf_flag_hate"
#define USAGE_HINT \
    "Use CREATE TRIGGER ... BEFORE INSERT OR UPDATE OF text_column ON table FOR EACH ROW " \
    "EXECUTE FUNCTION gemmaclf_flag_hate('text_column', 'label_column' [, 'scores_column'])."

/* attnums of the trigger's columns; scores 0 when there is none. */
typedef struct flag_columns {
    int src, lab, sco;
} flag_columns;

static void check_event(FunctionCallInfo fcinfo)
{
    TriggerData *td;

    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg(CALLER ": not called by the trigger manager"),
                        errhint(USAGE_HINT)));
    td = (TriggerData *)fcinfo->context;
    if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
        !(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg(CALLER ": must be fired BEFORE INSERT or UPDATE, FOR EACH ROW"),
                        errhint(USAGE_HINT)));
}

/* The columns the trigger arguments name, checked on every call: the table may have been
 * altered since CREATE TRIGGER. */
static flag_columns trigger_columns(const TriggerData *td)
{
    Relation rel = td->tg_relation;
    Oid relid = RelationGetRelid(rel);
    int nargs = td->tg_trigger->tgnargs;
    char **args = td->tg_trigger->tgargs;
    flag_columns fc = {0, 0, 0};

    if (nargs < 2 || nargs > 3)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg(CALLER ": expected 2 or 3 arguments, got %d", nargs),
                        errhint(USAGE_HINT)));
    fc.src = gcpg_column(relid, args[0], GCPG_COLUMN_TEXT, CALLER, USAGE_HINT);
    fc.lab = gcpg_column(relid, args[1], GCPG_COLUMN_LABEL, CALLER, USAGE_HINT);
    gcpg_check_label_width(relid, fc.lab, CALLER);
    if (nargs == 3)
        fc.sco = gcpg_column(relid, args[2], GCPG_COLUMN_SCORES, CALLER, USAGE_HINT);
    if (fc.src == fc.lab || (fc.sco && (fc.sco == fc.src || fc.sco == fc.lab)))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg(CALLER ": the text, label and scores columns must be "
                               "different columns"), errhint(USAGE_HINT)));
    return fc;
}

/* An UPDATE that leaves the text as it was keeps a label already there (set the label to NULL
 * in the same UPDATE to force re-classification). */
static bool label_still_valid(const TriggerData *td, const flag_columns *fc, Datum new_text)
{
    TupleDesc desc = RelationGetDescr(td->tg_relation);
    bool old_null, lab_null;
    Datum old = SPI_getbinval(td->tg_trigtuple, desc, fc->src, &old_null);

    (void)SPI_getbinval(td->tg_newtuple, desc, fc->lab, &lab_null);
    return !old_null && !lab_null && datumIsEqual(old, new_text, false, -1);
}

PG_FUNCTION_INFO_V1(gemmaclf_flag_hate);
Datum gemmaclf_flag_hate(PG_FUNCTION_ARGS)
{
    TriggerData *td;
    flag_columns fc;
    HeapTuple tuple;
    int cols[2];
    Datum vals[2], text_val;
    bool nulls[2] = {true, true}, isnull, is_update;

    check_event(fcinfo);
    td = (TriggerData *)fcinfo->context;
    fc = trigger_columns(td);
    is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
    tuple = is_update ? td->tg_newtuple : td->tg_trigtuple;
    text_val = SPI_getbinval(tuple, RelationGetDescr(td->tg_relation), fc.src, &isnull);
    if (is_update && !isnull && label_still_valid(td, &fc, text_val))
        return PointerGetDatum(tuple);

    if (!isnull) {
        vals[0] = PointerGetDatum(gcpg_classify_text(DatumGetTextPP(text_val),
                                                     fc.sco ? &vals[1] : NULL));
        nulls[0] = false;
        nulls[1] = fc.sco == 0;
    }
    cols[0] = fc.lab;
    cols[1] = fc.sco;
    return PointerGetDatum(heap_modify_tuple_by_cols(tuple, RelationGetDescr(td->tg_relation),
                                                     fc.sco ? 2 : 1, cols, vals, nulls));
}
