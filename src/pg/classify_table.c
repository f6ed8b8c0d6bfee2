/* CALL gemmaclf_classify_table(rel, text_column, label_column, batch_size, scores_column):
 * labels every row whose label is NULL (and text is not), batch by batch, committing after each
 * batch when called non-atomically (CALL outside a transaction block). Rows are claimed with
 * FOR UPDATE SKIP LOCKED, so several sessions can share a table, and a cancelled or crashed run
 * resumes where it stopped: the committed labels are no longer NULL.
 *
 * Memory stays flat however many rows the table has: each batch's SPI results, plans and
 * classifier buffers are freed before the next. Plans are prepared per batch, not kept: a kept
 * plan (CacheMemoryContext) outlives an ERROR or a cancel and leaked with every failed CALL.
 * A row whose UPDATE leaves its label NULL (a BEFORE UPDATE trigger that skips it or clears the
 * label, a rule) would be claimed again by every next batch: such rows are remembered (by
 * tableoid and ctid, 10 bytes each), left out of the following batches and counted in a WARNING
 * at the end. */
#include "gemmaclf_pg.h"

#include <time.h>

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#define CALLER "gemmaclf_classify_table"

typedef gcpg_table_job table_job;

/* Rows whose UPDATE left the label NULL, to leave out of the next batches (in a context that
 * survives the commits between batches). */
typedef struct skipped_rows {
    MemoryContext cx;
    Oid *oids;
    ItemPointerData *tids;
    int n, cap;
} skipped_rows;

/* One batch's queries, prepared in the batch and freed after it. */
typedef struct batch_plans {
    SPIPlanPtr sel, upd;
} batch_plans;

double gcpg_classify_table_clock(void)
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
    int64 n;

    if (SPI_execute(q, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "gemmaclf_classify_table: could not count the rows to classify");
    d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    n = isnull ? 0 : DatumGetInt64(d);
    SPI_freetuptable(SPI_tuptable);
    pfree(q);
    return n;
}

static void skip_row(skipped_rows *sk, Oid relid, ItemPointer tid)
{
    if (sk->n == sk->cap) {
        sk->cap = sk->cap ? sk->cap * 2 : 64;
        sk->oids = sk->oids ? repalloc(sk->oids, sizeof(Oid) * sk->cap)
                            : MemoryContextAlloc(sk->cx, sizeof(Oid) * sk->cap);
        sk->tids = sk->tids ? repalloc(sk->tids, sizeof(ItemPointerData) * sk->cap)
                            : MemoryContextAlloc(sk->cx, sizeof(ItemPointerData) * sk->cap);
    }
    sk->oids[sk->n] = relid;
    ItemPointerCopy(tid, &sk->tids[sk->n]);
    sk->n++;
}

/* The rows to leave out as the SELECT's $2 (oid[]) and $3 (tid[]). */
static void skipped_arrays(const skipped_rows *sk, Datum *oids, Datum *tids)
{
    Datum *o, *t;

    if (sk->n == 0) {
        *oids = PointerGetDatum(construct_empty_array(OIDOID));
        *tids = PointerGetDatum(construct_empty_array(TIDOID));
        return;
    }
    o = palloc(sizeof(Datum) * sk->n);
    t = palloc(sizeof(Datum) * sk->n);
    for (int i = 0; i < sk->n; i++) {
        o[i] = ObjectIdGetDatum(sk->oids[i]);
        t[i] = PointerGetDatum(&sk->tids[i]);
    }
    *oids = PointerGetDatum(construct_array(o, sk->n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
    *tids = PointerGetDatum(construct_array(t, sk->n, TIDOID, sizeof(ItemPointerData), false,
                                            TYPALIGN_SHORT));
}

/* Updates one row; false when the row's label is still NULL afterwards (the UPDATE did not
 * happen, or stored NULL), which is then remembered in sk. */
static bool update_row(batch_plans *p, Datum *v, skipped_rows *sk)
{
    MemoryContext cx = CurrentMemoryContext;
    SPITupleTable *tt;
    bool labelled = false, isnull;
    Datum oid = v[2], tid = v[1];

    if (SPI_execute_plan(p->upd, v, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
        elog(ERROR, "gemmaclf_classify_table: update failed");
    MemoryContextSwitchTo(cx); /* SPI calls return in the procedure context */
    tt = SPI_tuptable;
    if (SPI_processed > 0) {
        /* RETURNING tableoid, ctid, label IS NOT NULL: the row as stored, maybe moved */
        oid = SPI_getbinval(tt->vals[0], tt->tupdesc, 1, &isnull);
        tid = SPI_getbinval(tt->vals[0], tt->tupdesc, 2, &isnull);
        labelled = DatumGetBool(SPI_getbinval(tt->vals[0], tt->tupdesc, 3, &isnull));
    }
    if (!labelled)
        skip_row(sk, DatumGetObjectId(oid), (ItemPointer)DatumGetPointer(tid));
    SPI_freetuptable(tt);
    return labelled;
}

/* Classifies and updates the rows tt holds (ctid, tableoid, text); returns how many got a label.
 * The model is held for the whole batch: the UPDATEs may fire triggers that load another one. */
static int classify_rows(const table_job *j, batch_plans *p, SPITupleTable *tt, int n,
                         skipped_rows *sk)
{
    gcpg_model *m = gcpg_acquire();
    const gc_classifier *c = gcpg_classifier(m);
    int n_labels = gc_classifier_n_labels(c), labelled = 0;
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

        v[0] = PointerGetDatum(gcpg_label_text(gc_classifier_label(c, labels[i])));
        v[1] = ctids[i];
        v[2] = oids[i];
        v[3] = j->sco ? gcpg_scores_jsonb(c, probs + (size_t)i * n_labels, labels[i]) : (Datum)0;
        labelled += update_row(p, v, sk);
    }
    gcpg_release(m);
    return labelled;
}

void gcpg_classify_table_report(int64 done, int64 total, double t0)
{
    double el = gcpg_classify_table_clock() - t0, rate = el > 0 ? done / el : 0;
    int64 left = total > done ? total - done : 0;

    ereport(NOTICE, (errmsg("gemmaclf_classify_table: " INT64_FORMAT " of " INT64_FORMAT
                            " rows classified", done, total),
                     errdetail("%.1f rows/s, about %.0f s left", rate,
                               rate > 0 ? left / rate : 0.0)));
}

static void report_skipped(const table_job *j, const skipped_rows *sk)
{
    if (sk->n == 0)
        return;
    ereport(WARNING, (errmsg("gemmaclf_classify_table: %d rows of %s could not be labelled: "
                             "their UPDATE left the label NULL", sk->n, j->rel),
                      errdetail("A BEFORE UPDATE trigger that returned NULL or set the label to "
                                "NULL, or a rule, kept the label of these rows from being "
                                "stored; they were classified once and then left out."),
                      errhint("Find them with: SELECT * FROM %s WHERE %s IS NULL AND %s IS NOT "
                              "NULL", j->rel, j->lab, j->src)));
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
 * which survives commits. Every label must fit the label column before any row is updated. */
static void name_job(FunctionCallInfo fcinfo, table_job *j)
{
    AttrNumber lab;

    j->rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(j->relid)),
                                        get_rel_name(j->relid));
    j->src = checked_column(j->relid, NameStr(*PG_GETARG_NAME(1)), GCPG_COLUMN_TEXT);
    lab = gcpg_column(j->relid, NameStr(*PG_GETARG_NAME(2)), GCPG_COLUMN_LABEL, CALLER, NULL);
    j->lab = quote_identifier(NameStr(*PG_GETARG_NAME(2)));
    j->sco = PG_ARGISNULL(4) ? NULL
                             : checked_column(j->relid, NameStr(*PG_GETARG_NAME(4)),
                                              GCPG_COLUMN_SCORES);
    gcpg_check_label_width(j->relid, lab, CALLER);
}

/* The claiming SELECT (leaving out the rows in sk) and the UPDATE, which returns whether the row
 * now has a label. Not kept (SPI_keepplan): freed by free_plans after the batch, and with the
 * procedure's SPI context when an ERROR or a cancel ends the CALL. */
static void prepare_plans(const table_job *j, batch_plans *p)
{
    Oid sel_types[3] = {INT4OID, OIDARRAYOID, TIDARRAYOID};
    Oid upd_types[4] = {TEXTOID, TIDOID, OIDOID, JSONBOID};
    /* both texts before the first SPI call, which leaves us in the procedure context */
    char *sel = psprintf("SELECT ctid, tableoid, %s::text FROM %s r WHERE %s IS NULL AND %s IS "
                         "NOT NULL AND NOT EXISTS (SELECT FROM unnest($2, $3) s(o, t) WHERE "
                         "s.o = r.tableoid AND s.t = r.ctid) LIMIT $1 FOR UPDATE SKIP LOCKED",
                         j->src, j->rel, j->lab, j->src);
    char *upd = psprintf("UPDATE %s SET %s = $1%s%s%s WHERE ctid = $2 AND tableoid = $3 "
                         "RETURNING tableoid, ctid, %s IS NOT NULL",
                         j->rel, j->lab, j->sco ? ", " : "", j->sco ? j->sco : "",
                         j->sco ? " = $4" : "", j->lab);

    p->sel = SPI_prepare(sel, 3, sel_types);
    p->upd = SPI_prepare(upd, j->sco ? 4 : 3, upd_types);
    if (!p->sel || !p->upd)
        elog(ERROR, "gemmaclf_classify_table: could not prepare queries: %s",
             SPI_result_code_string(SPI_result));
}

static void free_plans(batch_plans *p)
{
    SPI_freeplan(p->sel);
    SPI_freeplan(p->upd);
    p->sel = p->upd = NULL;
}

/* Claims, classifies and updates one batch; returns the rows claimed (0: nothing left) and adds
 * those that got a label to *done. Everything it allocates is in the current (batch) context:
 * SPI leaves every caller in its procedure context, which lives as long as the CALL, so each SPI
 * call here is followed by a switch back. */
static int run_batch(const table_job *j, skipped_rows *sk, int64 *done)
{
    MemoryContext cx = CurrentMemoryContext;
    batch_plans p;
    Datum args[3];
    SPITupleTable *tt;
    int n;

    prepare_plans(j, &p);
    MemoryContextSwitchTo(cx); /* SPI calls return in the procedure context */
    args[0] = Int32GetDatum(j->batch);
    skipped_arrays(sk, &args[1], &args[2]);
    if (SPI_execute_plan(p.sel, args, NULL, false, 0) != SPI_OK_SELECT)
        elog(ERROR, "gemmaclf_classify_table: select failed");
    MemoryContextSwitchTo(cx);
    tt = SPI_tuptable;
    n = (int)SPI_processed;
    if (n > 0)
        *done += classify_rows(j, &p, tt, n, sk);
    SPI_freetuptable(tt);
    free_plans(&p);
    MemoryContextSwitchTo(cx);
    return n;
}

PG_FUNCTION_INFO_V1(gemmaclf_classify_table);
Datum gemmaclf_classify_table(PG_FUNCTION_ARGS)
{
    bool atomic = !(fcinfo->context && IsA(fcinfo->context, CallContext) &&
                    !castNode(CallContext, fcinfo->context)->atomic);
    table_job j;
    skipped_rows sk = {0};
    int64 total, done = 0;
    double t0 = gcpg_classify_table_clock();
    MemoryContext batch_cx, old;

    check_args(fcinfo, &j);
    SPI_connect_ext(atomic ? 0 : SPI_OPT_NONATOMIC);
    name_job(fcinfo, &j);
    sk.cx = AllocSetContextCreate(CurrentMemoryContext, "gemmaclf skipped rows",
                                  ALLOCSET_SMALL_SIZES);
    batch_cx = AllocSetContextCreate(CurrentMemoryContext, "gemmaclf batch",
                                     ALLOCSET_DEFAULT_SIZES);

    total = count_remaining(&j);
    ereport(NOTICE, (errmsg("gemmaclf_classify_table: " INT64_FORMAT " rows to classify",
                            total)));
    if (gcpg_classify_citus_table(&j, atomic, total, t0)) {
        MemoryContextDelete(batch_cx);
        MemoryContextDelete(sk.cx);
        SPI_finish();
        PG_RETURN_VOID();
    }
    for (;;) {
        int n;

        CHECK_FOR_INTERRUPTS();
        old = MemoryContextSwitchTo(batch_cx);
        n = run_batch(&j, &sk, &done);
        MemoryContextSwitchTo(old);
        MemoryContextReset(batch_cx);
        if (n == 0)
            break;
        if (!atomic)
            SPI_commit();
        gcpg_classify_table_report(done, Max(total, done), t0);
    }
    report_skipped(&j, &sk);
    MemoryContextDelete(batch_cx);
    MemoryContextDelete(sk.cx);
    SPI_finish();
    PG_RETURN_VOID();
}
