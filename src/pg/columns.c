/* The column rules of the trigger and the procedure: both read a text column and write a label
 * column (and optionally a jsonb scores column), so both accept the same types and say the same
 * thing when a column does not fit. */
#include "gemmaclf_pg.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

typedef struct column_rule {
    const char *role; /* how messages name the column */
    const char *hint; /* the types it may have */
} column_rule;

static const column_rule rules[] = {
    [GCPG_COLUMN_TEXT] = {"text", "The text column must be text, varchar or char."},
    [GCPG_COLUMN_LABEL] = {"label", "The label column must be text or varchar."},
    [GCPG_COLUMN_SCORES] = {"scores", "The scores column must be jsonb."},
};

/* Domains count as their base type. A label is stored as text, so char(n), which would pad it,
 * is refused for labels. */
static bool type_fits(Oid typid, gcpg_column_kind kind)
{
    Oid base = getBaseType(typid);

    switch (kind) {
    case GCPG_COLUMN_TEXT: return base == TEXTOID || base == VARCHAROID || base == BPCHAROID;
    case GCPG_COLUMN_LABEL: return base == TEXTOID || base == VARCHAROID;
    case GCPG_COLUMN_SCORES: return base == JSONBOID;
    }
    return false;
}

AttrNumber gcpg_column(Oid relid, const char *name, gcpg_column_kind kind, const char *caller,
                       const char *usage_hint)
{
    const column_rule *r = &rules[kind];
    AttrNumber att = get_attnum(relid, name);
    Oid typid;

    /* System columns have negative numbers: never ours to read or overwrite. */
    if (att == InvalidAttrNumber || att <= 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("%s: column \"%s\" (the %s column) does not exist in relation "
                               "\"%s\"", caller, name, r->role, get_rel_name(relid)),
                        usage_hint ? errhint("%s", usage_hint) : 0));
    typid = get_atttype(relid, att);
    if (!type_fits(typid, kind))
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("%s: column \"%s\" (the %s column) has type %s", caller, name,
                               r->role, format_type_be(typid)),
                        errhint("%s", r->hint)));
    return att;
}

/* A label is stored as is, so a varchar(n) label column must fit every label of the model:
 * checked when the column is chosen, not as a failure of each row later. */
void gcpg_check_label_width(Oid relid, AttrNumber att, const char *caller)
{
    Oid typid, collid;
    int32 typmod;
    gcpg_model *m;
    const gc_classifier *c;

    get_atttypetypmodcoll(relid, att, &typid, &typmod, &collid);
    if (typmod < 0)
        return;
    m = gcpg_acquire();
    c = gcpg_classifier(m);
    for (int l = 0; l < gc_classifier_n_labels(c); l++) {
        text *t = gcpg_label_text(gc_classifier_label(c, l));

        if (pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) > typmod - VARHDRSZ)
            ereport(ERROR, (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
                            errmsg("%s: label column \"%s\" is varchar(%d), too short for the "
                                   "label \"%s\"", caller, get_attname(relid, att, false),
                                   typmod - VARHDRSZ, gc_classifier_label(c, l))));
    }
    gcpg_release(m);
}
