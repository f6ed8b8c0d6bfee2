/* CALL gemmaclf_classify_table(...) on a Citus table (issue 15, docs/scale-out.md).
 *
 * Hash-distributed: rounds; in each round every shard labels one batch of its own rows on the
 * node that holds it, through run_command_on_shards (one connection per shard, the shards in
 * parallel). The shard command claims a batch with FOR UPDATE SKIP LOCKED, classifies it in one
 * classify_hate(text[]) call and updates it, in its own transaction on its worker, so each batch
 * is committed there whatever happens later: a cancelled or failed run resumes where it stopped,
 * two runs share the rows, and no text passes through the coordinator (only counts come back).
 * Rounds end when no shard finds a row; a round that claims rows but labels none (a BEFORE UPDATE
 * trigger or rule keeps the labels NULL) ends the run with a WARNING instead of looping.
 *
 * Reference table: every node holds a copy (placement) that must stay identical, and ctids and
 * SKIP LOCKED differ per placement. So batches go by the single-column primary key: ordinary
 * UPDATEs of the next batch_size unlabelled keys, which Citus applies to every placement; each
 * node classifies the batch itself (the same model gives the same labels) and the placements stay
 * equal. Committed batch by batch.
 *
 * Other Citus tables (local, single-shard, append, range) are refused with a HINT. */
#include "gemmaclf_pg.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* run_command_on_shards passes the command through format(): a literal % must be %%. */
static char *escape_percent(const char *s)
{
    StringInfoData b;

    initStringInfo(&b);
    for (; *s; s++) {
        if (*s == '%')
            appendStringInfoChar(&b, '%');
        appendStringInfoChar(&b, *s);
    }
    return b.data;
}

/* The shard command ("%1$s" is the shard): claims, classifies and updates one batch, and returns
 * "<rows labelled> <rows claimed>". */
static char *shard_command(const gcpg_table_job *j)
{
    const char *src = escape_percent(j->src), *lab = escape_percent(j->lab);

    if (!j->sco)
        return psprintf(
            "WITH b AS (SELECT tableoid AS o, ctid AS t, %s::text AS x FROM %%1$s "
            "WHERE %s IS NULL AND %s IS NOT NULL LIMIT %d FOR UPDATE SKIP LOCKED), "
            "c AS (SELECT array_agg(o) AS os, array_agg(t) AS ts, array_agg(x) AS xs FROM b), "
            "u AS (UPDATE %%1$s r SET %s = v.label "
            "FROM c, unnest(c.os, c.ts, public.classify_hate(c.xs)) AS v(o, t, label) "
            "WHERE r.tableoid = v.o AND r.ctid = v.t RETURNING r.%s IS NOT NULL AS ok) "
            "SELECT count(*) FILTER (WHERE ok) || ' ' || count(*) FROM u",
            src, lab, src, j->batch, lab, lab);
    return psprintf(
        "WITH b AS (SELECT tableoid AS o, ctid AS t, public.classify_hate_scores(%s::text) AS s "
        "FROM (SELECT tableoid, ctid, %s FROM %%1$s WHERE %s IS NULL AND %s IS NOT NULL "
        "LIMIT %d FOR UPDATE SKIP LOCKED) y), "
        "u AS (UPDATE %%1$s r SET %s = b.s->>'label', %s = b.s FROM b "
        "WHERE r.tableoid = b.o AND r.ctid = b.t RETURNING r.%s IS NOT NULL AS ok) "
        "SELECT count(*) FILTER (WHERE ok) || ' ' || count(*) FROM u",
        src, src, lab, src, j->batch, lab, escape_percent(j->sco), lab);
}

static void run_hash(const gcpg_table_job *j, bool atomic, int64 total, double t0)
{
    char *cmd = shard_command(j);
    Oid types[2] = {REGCLASSOID, TEXTOID};
    Datum args[2] = {ObjectIdGetDatum(j->relid), CStringGetTextDatum(cmd)};
    int64 done = 0;
    MemoryContext cx = CurrentMemoryContext,
                  batch_cx = AllocSetContextCreate(cx, "gemmaclf citus round",
                                                   ALLOCSET_DEFAULT_SIZES);

    char *dist = gcpg_citus_distribution_column_of(j->relid, get_rel_namespace(j->relid),
                                                   get_rel_name(j->relid));

    /* the shard commands update shards directly, past Citus' own refusal to change the
     * distribution column of a row */
    if (dist && (strcmp(quote_identifier(dist), j->lab) == 0 ||
                 (j->sco && strcmp(quote_identifier(dist), j->sco) == 0)))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("gemmaclf_classify_table: column %s is the distribution column of "
                               "%s", quote_identifier(dist), j->rel),
                        errdetail("A label written there would leave the row in a shard where "
                                  "no query by its value finds it."),
                        errhint("Store the label in another column.")));
    if (atomic)
        ereport(ERROR, (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                        errmsg("gemmaclf_classify_table: %s is a Citus distributed table: call it "
                               "outside a transaction block", j->rel),
                        errdetail("Each batch commits on the worker that holds its shard, in a "
                                  "connection of its own, which would wait for this "
                                  "transaction's locks."),
                        errhint("CALL gemmaclf_classify_table(...) on its own (autocommit).")));
    SPI_commit(); /* the count's transaction: nothing of it must stay open while shards work */
    for (;;) {
        int64 labelled = 0, claimed = 0;

        CHECK_FOR_INTERRUPTS();
        MemoryContextReset(batch_cx);
        MemoryContextSwitchTo(batch_cx);
        if (SPI_execute_with_args("SELECT shardid, success, result "
                                  "FROM pg_catalog.run_command_on_shards($1, $2)",
                                  2, types, args, NULL, false, 0) != SPI_OK_SELECT)
            elog(ERROR, "gemmaclf_classify_table: run_command_on_shards failed");
        MemoryContextSwitchTo(batch_cx);
        for (uint64 i = 0; i < SPI_processed; i++) {
            HeapTuple t = SPI_tuptable->vals[i];
            TupleDesc d = SPI_tuptable->tupdesc;
            char *shard = SPI_getvalue(t, d, 1), *ok = SPI_getvalue(t, d, 2),
                 *res = SPI_getvalue(t, d, 3);
            long long l = 0, c = 0;

            if (!ok || strcmp(ok, "t") != 0 || !res || sscanf(res, "%lld %lld", &l, &c) != 2)
                ereport(ERROR, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
                                errmsg("gemmaclf_classify_table: shard %s of %s failed: %s",
                                       shard ? shard : "?", j->rel, res ? res : "(no result)"),
                                errhint("The batches done so far are committed on their "
                                        "workers; CALL the procedure again to go on.")));
            labelled += l;
            claimed += c;
        }
        SPI_freetuptable(SPI_tuptable);
        MemoryContextSwitchTo(cx);
        if (claimed == 0)
            break;
        if (labelled == 0) {
            ereport(WARNING, (errmsg("gemmaclf_classify_table: " INT64_FORMAT " rows of %s "
                                     "could not be labelled: their UPDATE left the label NULL",
                                     claimed, j->rel),
                              errhint("Find them with: SELECT * FROM %s WHERE %s IS NULL AND "
                                      "%s IS NOT NULL", j->rel, j->lab, j->src)));
            break;
        }
        done += labelled;
        SPI_commit();
        gcpg_classify_table_report(done, Max(total, done), t0);
    }
    MemoryContextSwitchTo(cx);
    MemoryContextDelete(batch_cx);
}

/* The reference table's single-column primary key (quoted name, type) or an ERROR + HINT. */
static void primary_key(const gcpg_table_job *j, char **pk, char **type)
{
    Oid types[1] = {OIDOID};
    Datum args[1] = {ObjectIdGetDatum(j->relid)};

    if (SPI_execute_with_args("SELECT a.attname::text, pg_catalog.format_type(a.atttypid, "
                              "a.atttypmod) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
                              "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                              "WHERE i.indrelid = $1 AND i.indisprimary AND i.indnkeyatts = 1",
                              1, types, args, NULL, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "gemmaclf_classify_table: could not read the primary key");
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("gemmaclf_classify_table: reference table %s has no "
                               "single-column primary key", j->rel),
                        errdetail("Batches of a reference table go by primary key, so that "
                                  "every node's copy gets the same rows labelled."),
                        errhint("Label it in one statement: UPDATE %s SET %s = "
                                "classify_hate(%s) WHERE %s IS NULL;",
                                j->rel, j->lab, j->src, j->lab)));
    *pk = pstrdup(quote_identifier(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)));
    *type = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
    SPI_freetuptable(SPI_tuptable);
}

static void run_reference(const gcpg_table_job *j, bool atomic, int64 total, double t0)
{
    MemoryContext cx = CurrentMemoryContext, batch_cx;
    char *pk, *type, *last = NULL;
    int64 done = 0, skipped = 0;

    primary_key(j, &pk, &type);
    MemoryContextSwitchTo(cx);
    batch_cx = AllocSetContextCreate(cx, "gemmaclf citus batch", ALLOCSET_DEFAULT_SIZES);
    for (;;) {
        char *after, *upto, *q;
        bool isnull;
        Datum d;
        int64 labelled = 0;

        CHECK_FOR_INTERRUPTS();
        MemoryContextReset(batch_cx);
        MemoryContextSwitchTo(batch_cx);
        after = last ? psprintf(" AND %s > %s::%s", pk, quote_literal_cstr(last), type)
                           : pstrdup("");
        q = psprintf("SELECT max(k)::text FROM (SELECT %s AS k FROM %s WHERE %s IS NULL AND %s "
                     "IS NOT NULL%s ORDER BY %s LIMIT %d) s",
                     pk, j->rel, j->lab, j->src, after, pk, j->batch);
        if (SPI_execute(q, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
            elog(ERROR, "gemmaclf_classify_table: could not find the next batch");
        d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        MemoryContextSwitchTo(batch_cx);
        if (isnull)
            break;
        upto = TextDatumGetCString(d);
        SPI_freetuptable(SPI_tuptable);
        /* only IMMUTABLE functions of the row: Citus refuses STABLE ones in an UPDATE */
        q = psprintf("UPDATE %s t SET %s = x.s%s%s%s FROM (SELECT %s AS k, %s AS s "
                     "FROM %s WHERE %s IS NULL AND %s IS NOT NULL%s AND %s <= %s::%s) x "
                     "WHERE t.%s = x.k RETURNING t.%s IS NOT NULL",
                     j->rel, j->lab, j->sco ? "->>'label', " : "", j->sco ? j->sco : "",
                     j->sco ? " = x.s" : "", pk,
                     psprintf(j->sco ? "public.classify_hate_scores(%s::text)"
                                     : "public.classify_hate(%s::text)", j->src),
                     j->rel, j->lab, j->src, after, pk, quote_literal_cstr(upto), type, pk,
                     j->lab);
        if (SPI_execute(q, false, 0) != SPI_OK_UPDATE_RETURNING)
            elog(ERROR, "gemmaclf_classify_table: update failed");
        MemoryContextSwitchTo(batch_cx);
        for (uint64 i = 0; i < SPI_processed; i++)
            labelled += DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
                                                   SPI_tuptable->tupdesc, 1, &isnull));
        skipped += (int64)SPI_processed - labelled;
        SPI_freetuptable(SPI_tuptable);
        done += labelled;
        if (!atomic)
            SPI_commit();
        if (last)
            pfree(last);
        last = MemoryContextStrdup(cx, upto); /* the next batch starts after it */
        gcpg_classify_table_report(done, Max(total, done), t0);
    }
    MemoryContextSwitchTo(cx);
    MemoryContextDelete(batch_cx);
    if (skipped > 0)
        ereport(WARNING, (errmsg("gemmaclf_classify_table: " INT64_FORMAT " rows of %s could "
                                 "not be labelled: their UPDATE left the label NULL",
                                 skipped, j->rel),
                          errhint("Find them with: SELECT * FROM %s WHERE %s IS NULL AND %s IS "
                                  "NOT NULL", j->rel, j->lab, j->src)));
}

bool gcpg_classify_citus_table(const gcpg_table_job *j, bool atomic, int64 total, double t0)
{
    gcpg_citus_kind kind = gcpg_citus_table_kind(j->relid);

    switch (kind) {
    case GCPG_CITUS_NONE:
        return false;
    case GCPG_CITUS_HASH:
        run_hash(j, atomic, total, t0);
        return true;
    case GCPG_CITUS_REFERENCE:
        run_reference(j, atomic, total, t0);
        return true;
    case GCPG_CITUS_OTHER:
        break;
    }
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("gemmaclf_classify_table: %s is a Citus table that is neither "
                           "hash-distributed nor a reference table", j->rel),
                    errhint("Label it in one statement: UPDATE %s SET %s = classify_hate(%s) "
                            "WHERE %s IS NULL;", j->rel, j->lab, j->src, j->lab)));
    return false;
}
