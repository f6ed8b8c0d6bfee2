/* gemmaclf_flag_hate(text_column, label_column [, scores_column]): BEFORE INSERT OR UPDATE
 * row trigger that stores the label (and optionally the jsonb scores) of the row's text. */
#include "gemmaclf_pg.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#define USAGE_HINT \
    "Use CREATE TRIGGER ... BEFORE INSERT OR UPDATE OF text_column ON table FOR EACH ROW " \
    "EXECUTE FUNCTION gemmaclf_flag_hate('text_column', 'label_column' [, 'scores_column'])."

/* The trigger writes the label datum as is, so a varchar(n) label column must fit every label. */
static void check_label_width(const char *name, int width)
{
    const gc_classifier *c = gcpg_classifier();

    for (int l = 0; l < gc_classifier_n_labels(c); l++) {
        text *t = gcpg_label_text(gc_classifier_label(c, l));

        if (pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) > width)
            ereport(ERROR, (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
                            errmsg("gemmaclf_flag_hate: label column \"%s\" is varchar(%d), too "
                                   "short for the label \"%s\"", name, width,
                                   gc_classifier_label(c, l))));
    }
}

/* attnum of a user column named by a trigger argument, type-checked. */
static int trigger_column(Relation rel, const char *name, const char *role, char kind)
{
    TupleDesc td = RelationGetDescr(rel);
    int att = SPI_fnumber(td, name);
    Oid typ;
    bool ok;

    if (att == SPI_ERROR_NOATTRIBUTE || att <= 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("gemmaclf_flag_hate: column \"%s\" (the %s column) does not exist "
                               "in relation \"%s\"", name, role, RelationGetRelationName(rel)),
                        errhint(USAGE_HINT)));
    typ = getBaseType(TupleDescAttr(td, att - 1)->atttypid);
    ok = kind == 's' ? gcpg_is_text_type(typ)
         : kind == 'l' ? (typ == TEXTOID || typ == VARCHAROID)
                       : typ == JSONBOID;
    if (!ok)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("gemmaclf_flag_hate: column \"%s\" (the %s column) has type %s",
                               name, role, format_type_be(TupleDescAttr(td, att - 1)->atttypid)),
                        errhint(kind == 's'   ? "The text column must be text, varchar or char."
                                : kind == 'l' ? "The label column must be text or varchar."
                                              : "The scores column must be jsonb.")));
    if (kind == 'l' && TupleDescAttr(td, att - 1)->atttypmod >= 0)
        check_label_width(name, TupleDescAttr(td, att - 1)->atttypmod - VARHDRSZ);
    return att;
}

PG_FUNCTION_INFO_V1(gemmaclf_flag_hate);
Datum gemmaclf_flag_hate(PG_FUNCTION_ARGS)
{
    TriggerData *td;
    Relation rel;
    HeapTuple tuple;
    char **args;
    int nargs, cols[2], ncols, src, lab, sco = 0;
    Datum vals[2], text_val;
    bool nulls[2] = {true, true}, isnull, is_update;

    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("gemmaclf_flag_hate: not called by the trigger manager"),
                        errhint(USAGE_HINT)));
    td = (TriggerData *)fcinfo->context;
    rel = td->tg_relation;
    if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
        !(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("gemmaclf_flag_hate: must be fired BEFORE INSERT or UPDATE, "
                               "FOR EACH ROW"),
                        errhint(USAGE_HINT)));
    nargs = td->tg_trigger->tgnargs;
    args = td->tg_trigger->tgargs;
    if (nargs < 2 || nargs > 3)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("gemmaclf_flag_hate: expected 2 or 3 arguments, got %d", nargs),
                        errhint(USAGE_HINT)));
    src = trigger_column(rel, args[0], "text", 's');
    lab = trigger_column(rel, args[1], "label", 'l');
    if (nargs == 3)
        sco = trigger_column(rel, args[2], "scores", 'j');
    if (src == lab || (sco && (sco == src || sco == lab)))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("gemmaclf_flag_hate: the text, label and scores columns must be "
                               "different columns"), errhint(USAGE_HINT)));

    is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
    tuple = is_update ? td->tg_newtuple : td->tg_trigtuple;
    text_val = SPI_getbinval(tuple, RelationGetDescr(rel), src, &isnull);

    /* An UPDATE that leaves the text as it was keeps a label already there (set the label to
     * NULL in the same UPDATE to force re-classification). */
    if (is_update && !isnull) {
        bool old_null, lab_null;
        Datum old = SPI_getbinval(td->tg_trigtuple, RelationGetDescr(rel), src, &old_null);

        (void)SPI_getbinval(tuple, RelationGetDescr(rel), lab, &lab_null);
        if (!old_null && !lab_null && datumIsEqual(old, text_val, false, -1))
            return PointerGetDatum(tuple);
    }

    if (!isnull) {
        const gc_classifier *c = gcpg_classifier();
        size_t len;
        const char *s = gcpg_text_utf8(DatumGetTextPP(text_val), &len);
        float *probs = palloc(sizeof(float) * gc_classifier_n_labels(c));
        int label;

        gcpg_classify(1, &s, &len, probs, &label);
        vals[0] = PointerGetDatum(gcpg_label_text(gc_classifier_label(c, label)));
        nulls[0] = false;
        if (sco) {
            vals[1] = gcpg_scores_jsonb(c, probs, label);
            nulls[1] = false;
        }
    }
    cols[0] = lab;
    cols[1] = sco;
    ncols = sco ? 2 : 1;
    return PointerGetDatum(heap_modify_tuple_by_cols(tuple, RelationGetDescr(rel), ncols, cols,
                                                     vals, nulls));
}
