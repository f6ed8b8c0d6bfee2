/* CALL gemmaclf_classify_table(rel, text_column, label_column, batch_size, scores_column):
 * labels every row whose label is NULL (and text is not), batch by batch, committing after each
 * batch when called non-atomically (CALL outside a transaction block). Rows are claimed with
 * FOR UPDATE SKIP LOCKED, so several sessions can share a table, and a cancelled or crashed run
 * resumes where it stopped: the committed labels are no longer NULL. */
#include "gemmaclf_pg.h"

#include <time.h>

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#define CALLER "gemmaclf_classify_table"

typedef struct table_job {
    Oid relid;
    const char *rel;                   /* quoted, schema-qualified */
    const char *src, *lab, *sco;       /* quoted column names; sco NULL = none */
    int batch;
} table_job;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A checked column, quoted for the queries we build. */
static const char *checked_column(Oid relid, const char *name, gcpg_column_kind kind)
{
    (void)gcpg_column(relid, name, kind, CALLER, NULL);
    return quote_identifier(name);
}

static int64 count_remaining(const table_job *j)
{
    char *q = psprintf("SELECT count(*) FROM %s WHERE %s IS NULL AND %s IS NOT NULL", j->rel,
                       j->lab, j->src);
    bool isnull;
    Datum d;

    if (SPI_execute(q, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "gemmaclf_classify_table: could not count the rows to classify");
    d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    return isnull ? 0 : DatumGetInt64(d);
}

/* Classifies and updates the rows SPI_tuptable holds (ctid, tableoid, text). The model is held
 * for the whole batch: the UPDATEs may fire triggers that load another one. */
static void classify_rows(const table_job *j, SPIPlanPtr upd, MemoryContext cx)
{
    MemoryContext old = MemoryContextSwitchTo(cx);
    gcpg_model *m = gcpg_acquire();
    const gc_classifier *c = gcpg_classifier(m);
    int n = (int)SPI_processed, n_labels = gc_classifier_n_labels(c);
    SPITupleTable *tt = SPI_tuptable;
    const char **texts = palloc(sizeof(char *) * n);
    size_t *lens = palloc(sizeof(size_t) * n);
    int *labels = palloc(sizeof(int) * n);
    float *probs = palloc(sizeof(float) * (size_t)n * n_labels);
    Datum *ctids = palloc(sizeof(Datum) * n), *oids = palloc(sizeof(Datum) * n);

    for (int i = 0; i < n; i++) {
        bool isnull;

        ctids[i] = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);
        oids[i] = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull);
        texts[i] = gcpg_text_utf8(DatumGetTextPP(SPI_getbinval(tt->vals[i], tt->tupdesc, 3,
                                                               &isnull)), &lens[i]);
    }
    gcpg_classify(m, n, texts, lens, probs, labels);
    for (int i = 0; i < n; i++) {
        Datum v[4];
        char nulls[4] = {' ', ' ', ' ', ' '};

        v[0] = PointerGetDatum(gcpg_label_text(gc_classifier_label(c, labels[i])));
        v[1] = ctids[i];
        v[2] = oids[i];
        v[3] = j->sco ? gcpg_scores_jsonb(c, probs + (size_t)i * n_labels, labels[i]) : (Datum)0;
        if (SPI_execute_plan(upd, v, nulls, false, 0) != SPI_OK_UPDATE)
            elog(ERROR, "gemmaclf_classify_table: update failed");
    }
    gcpg_release(m);
    MemoryContextSwitchTo(old);
}

static void report(int64 done, int64 total, double t0)
{
    double el = now_s() - t0, rate = el > 0 ? done / el : 0;
    int64 left = total > done ? total - done : 0;

    ereport(NOTICE, (errmsg("gemmaclf_classify_table: " INT64_FORMAT " of " INT64_FORMAT
                            " rows classified", done, total),
                     errdetail("%.1f rows/s, about %.0f s left", rate,
                               rate > 0 ? left / rate : 0.0)));
}

/* The arguments that need no catalog lookups beyond the relation's kind. */
static void check_args(FunctionCallInfo fcinfo, table_job *j)
{
    char relkind;

    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("gemmaclf_classify_table: rel, text_column, label_column and "
                               "batch_size must not be NULL")));
    j->batch = PG_GETARG_INT32(3);
    if (j->batch < 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("gemmaclf_classify_table: batch_size must be at least 1")));
    j->relid = PG_GETARG_OID(0);
    relkind = get_rel_relkind(j->relid);
    if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("gemmaclf_classify_table: \"%s\" is not a table",
                               get_rel_name(j->relid))));
}

/* Quoted names for the queries; called inside SPI so they live in the procedure context,
 * which survives commits. */
static void name_job(FunctionCallInfo fcinfo, table_job *j)
{
    j->rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(j->relid)),
                                        get_rel_name(j->relid));
    j->src = checked_column(j->relid, NameStr(*PG_GETARG_NAME(1)), GCPG_COLUMN_TEXT);
    j->lab = checked_column(j->relid, NameStr(*PG_GETARG_NAME(2)), GCPG_COLUMN_LABEL);
    j->sco = PG_ARGISNULL(4) ? NULL
                             : checked_column(j->relid, NameStr(*PG_GETARG_NAME(4)),
                                              GCPG_COLUMN_SCORES);
}

/* The claiming SELECT and the UPDATE, kept across the commits between batches. */
static void prepare_plans(const table_job *j, SPIPlanPtr *sel, SPIPlanPtr *upd)
{
    Oid sel_types[1] = {INT4OID}, upd_types[4] = {TEXTOID, TIDOID, OIDOID, JSONBOID};

    *sel = SPI_prepare(psprintf("SELECT ctid, tableoid, %s::text FROM %s WHERE %s IS NULL AND %s "
                                "IS NOT NULL LIMIT $1 FOR UPDATE SKIP LOCKED",
                                j->src, j->rel, j->lab, j->src), 1, sel_types);
    *upd = SPI_prepare(psprintf("UPDATE %s SET %s = $1%s%s%s WHERE ctid = $2 AND tableoid = $3",
                                j->rel, j->lab, j->sco ? ", " : "", j->sco ? j->sco : "",
                                j->sco ? " = $4" : ""), j->sco ? 4 : 3, upd_types);
    if (!*sel || !*upd)
        elog(ERROR, "gemmaclf_classify_table: could not prepare queries: %s",
             SPI_result_code_string(SPI_result));
    SPI_keepplan(*sel);
    SPI_keepplan(*upd);
}

PG_FUNCTION_INFO_V1(gemmaclf_classify_table);
Datum gemmaclf_classify_table(PG_FUNCTION_ARGS)
{
    bool atomic = !(fcinfo->context && IsA(fcinfo->context, CallContext) &&
                    !castNode(CallContext, fcinfo->context)->atomic);
    table_job j;
    SPIPlanPtr sel, upd;
    Datum lim[1];
    int64 total, done = 0;
    double t0 = now_s();
    MemoryContext batch_cx;

    check_args(fcinfo, &j);
    SPI_connect_ext(atomic ? 0 : SPI_OPT_NONATOMIC);
    name_job(fcinfo, &j);
    gcpg_release(gcpg_acquire()); /* fail early on a missing model */
    prepare_plans(&j, &sel, &upd);
    batch_cx = AllocSetContextCreate(CurrentMemoryContext, "gemmaclf batch",
                                     ALLOCSET_DEFAULT_SIZES);

    total = count_remaining(&j);
    ereport(NOTICE, (errmsg("gemmaclf_classify_table: " INT64_FORMAT " rows to classify",
                            total)));
    lim[0] = Int32GetDatum(j.batch);
    for (;;) {
        int n;

        CHECK_FOR_INTERRUPTS();
        if (SPI_execute_plan(sel, lim, NULL, false, 0) != SPI_OK_SELECT)
            elog(ERROR, "gemmaclf_classify_table: select failed");
        n = (int)SPI_processed;
        if (n == 0)
            break;
        classify_rows(&j, upd, batch_cx);
        MemoryContextReset(batch_cx);
        done += n;
        if (!atomic)
            SPI_commit();
        report(done, Max(total, done), t0);
    }
    SPI_freeplan(sel);
    SPI_freeplan(upd);
    MemoryContextDelete(batch_cx);
    SPI_finish();
    PG_RETURN_VOID();
}
