/* One batch of one watched table, in a transaction of its own:
 *
 *   1. lock the table (RowExclusiveLock: a concurrent unwatch, DROP or ALTER is then over) and
 *      check that the watch is still registered and its table, columns and role still exist
 *      (else the watch stops here with a LOG);
 *   2. as the watch's role, claim up to gemmaclf.batch_size waiting rows:
 *        SELECT ctid, tableoid, xmin, text FROM rel WHERE label IS NULL AND text IS NOT NULL
 *          AND <not a failed row version> LIMIT n FOR UPDATE SKIP LOCKED
 *      through the partial index (sequential and bitmap scans are switched off for this one
 *      query, so a big table is never scanned in full and a backlog is never read whole);
 *   3. classify the batch in one forward pass (gcpg_classify, the one classify path) and write
 *      each label with UPDATE ... WHERE ctid = ... AND tableoid = ...
 *
 * The row locks make the written label the label of the text that was read: the rows stay
 * locked until this transaction ends, so no one can change their text in between, and ctid
 * names exactly the locked row version. Another worker, or gemmaclf_classify_table, skips them.
 *
 * A failure: steps 2-3 run in a subtransaction. When it fails with a system error (out of
 * memory, cancel, the model, a lost lock...) the whole batch is rolled back and reported as the
 * table's error; any other error means some row is at fault, so each row is tried alone in a
 * subtransaction of its own and the rows that fail are recorded in gemmaclf_watch_errors (by
 * row version: the claim skips them from then on, until the row is changed) and logged. Rows
 * behind a bad row are never held up by it. */
#include "watch.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define CALLER "gemmaclf watch"

typedef struct batch {
    const gcpg_watch_entry *e;
    const char *schema;
    Oid registry_owner;
    const char *rel;                    /* quoted, schema-qualified */
    const char *src, *lab, *sco;        /* quoted columns; sco NULL: none */
    int limit;
    /* the claimed rows */
    int n;
    SPITupleTable *rows;                /* ctid, tableoid, xmin, text */
    /* their labels */
    gcpg_model *model;
    const gc_classifier *clf;
    int n_labels;
    int *labels;
    float *probs;
    bool classified;                    /* labels and probs hold every row's result */
    int labelled, failed;
} batch;

static Datum row_field(const batch *b, int i, int col, bool *isnull)
{
    return SPI_getbinval(b->rows->vals[i], b->rows->tupdesc, col, isnull);
}

/* ---- checks ---- */

static void check_columns(void *arg)
{
    const gcpg_watch_entry *e = arg;

    (void)gcpg_column(e->relid, e->text_col, GCPG_COLUMN_TEXT, CALLER, NULL);
    (void)gcpg_column(e->relid, e->label_col, GCPG_COLUMN_LABEL, CALLER, NULL);
    if (e->scores_col)
        (void)gcpg_column(e->relid, e->scores_col, GCPG_COLUMN_SCORES, CALLER, NULL);
}

/* Why the watch can no longer run, or NULL. Column errors come from the one column checker
 * (the same rules as at gemmaclf_watch() time). */
static const char *watch_broken(const gcpg_watch_entry *e)
{
    ErrorData *ed;

    if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(e->relid)))
        return "the table was dropped";
    if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(e->runs_as)))
        return "the role it runs as was dropped";
    ed = gcpg_try(check_columns, (void *)e);
    if (!ed)
        return NULL;
    /* The checker's message names its caller: said once, by the LOG. */
    if (strncmp(ed->message, CALLER ": ", strlen(CALLER) + 2) == 0)
        return ed->message + strlen(CALLER) + 2;
    return ed->message;
}

/* Errors that say nothing about a row: the batch is rolled back and retried later, no row is
 * recorded. Everything else (bad data, a constraint, a trigger's RAISE, a row-level security
 * check) is the row's. */
static bool is_system_error(const ErrorData *ed)
{
    int cat = ERRCODE_TO_CATEGORY(ed->sqlerrcode);

    if (ed->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
        return false; /* a row-level security policy that refuses this row */
    return cat == ERRCODE_CONNECTION_EXCEPTION || cat == ERRCODE_TRANSACTION_ROLLBACK ||
           cat == ERRCODE_INSUFFICIENT_RESOURCES || cat == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE ||
           cat == ERRCODE_OPERATOR_INTERVENTION || cat == ERRCODE_SYSTEM_ERROR ||
           cat == ERRCODE_EXTERNAL_ROUTINE_EXCEPTION || cat == ERRCODE_CONFIG_FILE_ERROR ||
           cat == ERRCODE_INTERNAL_ERROR || cat == ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION;
}

/* ---- claim ---- */

static void claim(batch *b)
{
    Oid types[2] = {REGCLASSOID, INT4OID};
    Datum vals[2] = {ObjectIdGetDatum(b->e->relid), Int32GetDatum(b->limit)};
    int nest = NewGUCNestLevel();
    char *sql = psprintf(
        "SELECT t.ctid, t.tableoid, t.xmin, t.%s::text FROM %s t "
        "WHERE t.%s IS NULL AND t.%s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s."
        GCPG_WATCH_ERRORS " e WHERE e.rel = $1 AND e.row_table = t.tableoid::regclass "
        "AND e.row_ctid = t.ctid AND e.row_xmin = t.xmin) "
        "LIMIT $2 FOR UPDATE OF t SKIP LOCKED",
        b->src, b->rel, b->lab, b->src, b->schema);

    (void)set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    (void)set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    if (SPI_execute_with_args(sql, 2, types, vals, NULL, false, 0) != SPI_OK_SELECT)
        elog(ERROR, CALLER ": could not claim rows of %s", b->rel);
    AtEOXact_GUC(true, nest);
    b->rows = SPI_tuptable;
    b->n = (int)SPI_processed;
}

/* ---- classify ---- */

static const char *row_text(const batch *b, int i, size_t *len)
{
    bool isnull;

    return gcpg_text_utf8(DatumGetTextPP(row_field(b, i, 4, &isnull)), len);
}

static void classify_all(batch *b)
{
    const char **texts = palloc(sizeof(char *) * b->n);
    size_t *lens = palloc(sizeof(size_t) * b->n);

    for (int i = 0; i < b->n; i++)
        texts[i] = row_text(b, i, &lens[i]);
    gcpg_classify(b->model, b->n, texts, lens, b->probs, b->labels);
    b->classified = true;
}

static void classify_one(batch *b, int i)
{
    size_t len;
    const char *t = row_text(b, i, &len);

    gcpg_classify(b->model, 1, &t, &len, b->probs + (size_t)i * b->n_labels, &b->labels[i]);
}

/* ---- write ---- */

static SPIPlanPtr prepare_update(const batch *b)
{
    Oid types[4] = {TEXTOID, TIDOID, OIDOID, JSONBOID};
    SPIPlanPtr p = SPI_prepare(
        psprintf("UPDATE %s SET %s = $1%s%s%s WHERE ctid = $2 AND tableoid = $3 "
                 "RETURNING %s IS NOT NULL", b->rel, b->lab, b->sco ? ", " : "",
                 b->sco ? b->sco : "", b->sco ? " = $4" : "", b->lab),
        b->sco ? 4 : 3, types);

    if (!p)
        elog(ERROR, CALLER ": could not prepare the update of %s: %s", b->rel,
             SPI_result_code_string(SPI_result));
    return p;
}

/* Writes row i's label; a row that was not updated, or whose label did not stick (a trigger
 * or rule of the table changed it), is an error of that row: never a row claimed again and
 * again. */
static void write_row(const batch *b, SPIPlanPtr upd, int i)
{
    Datum v[4];
    bool isnull;
    int rc;

    v[0] = PointerGetDatum(gcpg_label_text(gc_classifier_label(b->clf, b->labels[i])));
    v[1] = row_field(b, i, 1, &isnull);
    v[2] = row_field(b, i, 2, &isnull);
    v[3] = b->sco ? gcpg_scores_jsonb(b->clf, b->probs + (size_t)i * b->n_labels, b->labels[i])
                  : (Datum)0;
    rc = SPI_execute_plan(upd, v, NULL, false, 0);
    if (rc != SPI_OK_UPDATE_RETURNING || SPI_processed != 1 ||
        !DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
        ereport(ERROR, (errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
                        errmsg(CALLER ": the label of the row was not stored"),
                        errdetail("A trigger or rule of the table skipped the update or reset "
                                  "the label.")));
}

/* ---- failures ---- */

typedef struct failure {
    const batch *b;
    int i;
    const ErrorData *ed;
} failure;

static void insert_failure(void *arg)
{
    const failure *f = arg;
    Oid types[6] = {REGCLASSOID, REGCLASSOID, TIDOID, XIDOID, TEXTOID, TEXTOID};
    Datum v[6];
    bool isnull;

    v[0] = ObjectIdGetDatum(f->b->e->relid);
    v[1] = row_field(f->b, f->i, 2, &isnull);
    v[2] = row_field(f->b, f->i, 1, &isnull);
    v[3] = row_field(f->b, f->i, 3, &isnull);
    v[4] = CStringGetTextDatum(unpack_sql_state(f->ed->sqlerrcode));
    v[5] = CStringGetTextDatum(f->ed->message ? f->ed->message : "(no message)");
    if (SPI_execute_with_args(psprintf("INSERT INTO %s." GCPG_WATCH_ERRORS " (rel, row_table, "
                                       "row_ctid, row_xmin, sqlstate, error) VALUES ($1, $2, $3, "
                                       "$4, $5, $6)", f->b->schema),
                              6, types, v, NULL, false, 0) != SPI_OK_INSERT)
        elog(ERROR, CALLER ": could not record a failed row of %s", f->b->rel);
}

/* Row i failed with ed: recorded (as the registry's owner), logged, and shown as the table's
 * last error. */
static void record_failure(batch *b, int i, const ErrorData *ed)
{
    failure f = {b, i, ed};
    bool isnull;
    Datum ctid = row_field(b, i, 1, &isnull);

    gcpg_as_role(b->registry_owner, insert_failure, &f);
    ereport(WARNING, (errcode(ed->sqlerrcode),
                      errmsg(CALLER ": row %s of %s could not be labelled: %s",
                             DatumGetCString(DirectFunctionCall1(tidout, ctid)), b->rel,
                             ed->message ? ed->message : "(no message)"),
                      errdetail("It is recorded in " GCPG_WATCH_ERRORS " and skipped until "
                                "the row changes.")));
    gcpg_watch_note_error(b->e->relid, ed->message ? ed->message : "(no message)");
    b->failed++;
}

/* ---- labelling ---- */

typedef struct step {
    batch *b;
    int i; /* the row, or -1: all rows */
} step;

static void label_all(void *arg);
static void label_one(void *arg);

/* Runs one labelling step in a subtransaction; returns the error of a row at fault (NULL:
 * none). System errors are thrown on: they fail the batch. */
static ErrorData *try_step(batch *b, int i)
{
    step s = {b, i};
    ErrorData *ed = gcpg_try(i < 0 ? label_all : label_one, &s);

    if (ed && is_system_error(ed))
        ReThrowError(ed);
    return ed;
}

static void label_all(void *arg)
{
    batch *b = ((step *)arg)->b;
    SPIPlanPtr upd;

    classify_all(b);
    upd = prepare_update(b);
    for (int i = 0; i < b->n; i++)
        write_row(b, upd, i);
}

static void label_one(void *arg)
{
    batch *b = ((step *)arg)->b;
    int i = ((step *)arg)->i;

    if (!b->classified)
        classify_one(b, i);
    write_row(b, prepare_update(b), i);
}

static void label_rows(batch *b)
{
    b->model = gcpg_acquire();
    b->clf = gcpg_classifier(b->model);
    b->n_labels = gc_classifier_n_labels(b->clf);
    b->labels = palloc(sizeof(int) * b->n);
    b->probs = palloc(sizeof(float) * (size_t)b->n * b->n_labels);

    if (!try_step(b, -1)) {
        b->labelled = b->n;
    } else {
        /* Some row is at fault: each alone (the labels are reused when the forward pass
         * succeeded and a write failed). */
        for (int i = 0; i < b->n; i++) {
            ErrorData *ed;

            CHECK_FOR_INTERRUPTS();
            ed = try_step(b, i);
            if (ed)
                record_failure(b, i, ed);
            else
                b->labelled++;
        }
    }
    gcpg_release(b->model);
}

static void claim_and_label(void *arg)
{
    batch *b = arg;

    claim(b);
    if (b->n > 0) {
        pgstat_report_activity(STATE_RUNNING,
                               psprintf("gemmaclf watch: labelling %d rows of %s", b->n, b->rel));
        label_rows(b);
    }
}

/* ---- the batch ---- */

static void stop_watch(const batch *b, const char *why)
{
    const char *name = get_rel_name(b->e->relid);

    gcpg_watch_forget(b->schema, b->e->relid);
    if (name)
        ereport(LOG, (errmsg(CALLER ": stopped watching \"%s\": %s", name, why),
                      errhint("Its trigger and index stay until gemmaclf_unwatch('%s') removes "
                              "them; fix the table and call gemmaclf_watch() again to resume.",
                              quote_qualified_identifier(
                                  get_namespace_name(get_rel_namespace(b->e->relid)), name))));
    else
        ereport(LOG, (errmsg(CALLER ": stopped watching the table with OID %u: %s",
                             b->e->relid, why)));
}

static void name_columns(batch *b)
{
    const gcpg_watch_entry *e = b->e;

    b->rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(e->relid)),
                                        get_rel_name(e->relid));
    b->src = quote_identifier(e->text_col);
    b->lab = quote_identifier(e->label_col);
    b->sco = e->scores_col ? quote_identifier(e->scores_col) : NULL;
}

gcpg_batch_outcome gcpg_watch_batch(const gcpg_watch_registry *reg, const gcpg_watch_entry *e)
{
    batch b = {.e = e, .schema = reg->schema, .registry_owner = reg->owner,
               .limit = gemmaclf_batch_size};
    gcpg_batch_outcome out = GCPG_BATCH_GONE;
    TimestampTz started;
    const char *why;

    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    LockRelationOid(e->relid, RowExclusiveLock);
    started = GetCurrentTimestamp();
    /* An active snapshot for the whole batch: texts are detoasted outside SPI's queries. */
    PushActiveSnapshot(GetTransactionSnapshot());
    if (gcpg_watch_still_registered(b.schema, e)) {
        why = watch_broken(e);
        if (why) {
            stop_watch(&b, why);
        } else {
            name_columns(&b);
            gcpg_as_role(e->runs_as, claim_and_label, &b);
            out = b.n < b.limit ? GCPG_BATCH_DRAINED : GCPG_BATCH_FULL;
            /* Failures of rows that changed since (and were labelled) are of no use. */
            if (out == GCPG_BATCH_DRAINED && gcpg_watch_prune_due(e->relid))
                (void)gcpg_watch_delete_failures(b.schema, e->relid, false);
        }
    }
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
    if (out != GCPG_BATCH_GONE)
        gcpg_watch_note_batch(e->relid, b.labelled, b.failed, out == GCPG_BATCH_DRAINED,
                              started);
    pgstat_report_stat(false);
    pgstat_report_activity(STATE_IDLE, NULL);
    return out;
}
