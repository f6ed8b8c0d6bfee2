/* gemmaclf_flag_hate(text_column, label_column [, scores_column]): BEFORE INSERT OR UPDATE
 * row trigger that stores the label (and optionally the jsonb scores) of the row's text. */
#include "gemmaclf_pg.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
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

/* The constraints of the label and scores columns' domains, kept across rows (fn_extra), and
 * the relation whose Citus distribution column was checked (once per statement). */
typedef struct domain_cache {
    void *lab, *sco;
    Oid citus_checked;
} domain_cache;

static domain_cache *cache_of(FunctionCallInfo fcinfo)
{
    if (!fcinfo->flinfo->fn_extra)
        fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
                                                          sizeof(domain_cache));
    return fcinfo->flinfo->fn_extra;
}

/* The row stores the datums as they are: the executor checks no domain of a value a BEFORE
 * trigger puts in its row, so we do (NOT NULL and CHECK constraints of the label's and the
 * scores' domains; a domain's length limit is checked with the label width). */
static void check_domains(FunctionCallInfo fcinfo, const flag_columns *fc, const Datum *vals,
                          const bool *nulls)
{
    Oid relid = RelationGetRelid(((TriggerData *)fcinfo->context)->tg_relation);
    domain_cache *dc = cache_of(fcinfo);

    gcpg_domain_check(relid, fc->lab, vals[0], nulls[0], &dc->lab, fcinfo->flinfo->fn_mcxt);
    if (fc->sco)
        gcpg_domain_check(relid, fc->sco, vals[1], nulls[1], &dc->sco, fcinfo->flinfo->fn_mcxt);
}

/* The TriggerData of a BEFORE INSERT OR UPDATE ... FOR EACH ROW call with min_args..max_args
 * arguments (max_args < 0: any number; the caller checks them), else an ERROR naming caller
 * (and the argument rule), with hint: the one check of both row triggers (this file's and the
 * watch's, watch_trigger.c). */
TriggerData *gcpg_before_row_trigger(FunctionCallInfo fcinfo, const char *caller,
                                     const char *hint, int min_args, int max_args)
{
    TriggerData *td;
    int nargs;

    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s: not called by the trigger manager", caller),
                        errhint("%s", hint)));
    td = (TriggerData *)fcinfo->context;
    nargs = td->tg_trigger->tgnargs;
    if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
        !(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)) ||
        (max_args >= 0 && (nargs < min_args || nargs > max_args)))
        ereport(ERROR,
                (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                 max_args < 0
                     ? errmsg("%s: must be fired BEFORE INSERT or UPDATE, FOR EACH ROW", caller)
                     : errmsg("%s: must be fired BEFORE INSERT or UPDATE, FOR EACH ROW, with %d "
                              "or %d column names", caller, min_args, max_args),
                 errhint("%s", hint)));
    return td;
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

/* On a shard of a Citus distributed table, Citus chose the row's shard from its distribution
 * column before this trigger ran: a label or scores written there would leave the row in a shard
 * where no query by that value finds it. Refused, on the worker that holds the shard. */
static void check_citus(FunctionCallInfo fcinfo, const TriggerData *td, const flag_columns *fc)
{
    domain_cache *dc = cache_of(fcinfo);
    Relation rel = td->tg_relation;
    char *dist;
    const char *lab, *sco;

    if (dc->citus_checked == RelationGetRelid(rel))
        return;
    dist = gcpg_citus_distribution_column(rel);
    lab = NameStr(TupleDescAttr(RelationGetDescr(rel), fc->lab - 1)->attname);
    sco = fc->sco ? NameStr(TupleDescAttr(RelationGetDescr(rel), fc->sco - 1)->attname) : NULL;
    if (dist && (strcmp(dist, lab) == 0 || (sco && strcmp(dist, sco) == 0)))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg(CALLER ": column \"%s\" is the distribution column of "
                               "Citus table \"%s\"", dist, RelationGetRelationName(rel)),
                        errdetail("Citus placed the row by that column's value before the "
                                  "trigger ran; a label written there would leave the row in a "
                                  "shard where no query by its value finds it."),
                        errhint("Distribute the table by another column (its key), or label "
                                "it with UPDATE ... SET %s = classify_hate(text_column).",
                                quote_identifier(dist))));
    dc->citus_checked = RelationGetRelid(rel);
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
    Datum vals[2] = {0, 0}, text_val;
    bool nulls[2] = {true, true}, isnull, is_update;

    gcpg_before_row_trigger(fcinfo, CALLER, USAGE_HINT, 0, -1);
    td = (TriggerData *)fcinfo->context;
    fc = trigger_columns(td);
    check_citus(fcinfo, td, &fc);
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
    check_domains(fcinfo, &fc, vals, nulls);
    cols[0] = fc.lab;
    cols[1] = fc.sco;
    return PointerGetDatum(heap_modify_tuple_by_cols(tuple, RelationGetDescr(td->tg_relation),
                                                     fc.sco ? 2 : 1, cols, vals, nulls));
}
