/* The SQL functions of background labelling:
 *   gemmaclf_watch(rel, text_column, label_column [, scores_column])
 *   gemmaclf_unwatch(rel), gemmaclf_watch_retry(rel)
 *   gemmaclf_watch_stats(), gemmaclf_watch_pending(rel)   (read by the view gemmaclf_watch_status)
 *   gemmaclf_watch_on_drop()                               (sql_drop event trigger)
 *
 * Who may do what: gemmaclf_watch() needs SELECT on the table and UPDATE on its label (and
 * scores) column, checked for the calling role, and the workers then act as that role, so
 * a watch reads and writes exactly what its caller could. A superuser's watch acts as the
 * table's owner instead: a table owner's triggers must never run as a superuser because someone
 * else watched the table. Ending a watch (or retrying its failed rows) is for its role, the
 * table's owner or a superuser. */
#include "watch.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* Background labelling is available in this session, else an ERROR saying what to set. */
static void check_available(const char *caller)
{
    const char *db = get_database_name(MyDatabaseId);

    if (!gcpg_watch_available())
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("%s: background labelling needs gemmaclf in "
                               "shared_preload_libraries", caller),
                        errhint("Set shared_preload_libraries = 'gemmaclf' and "
                                "gemmaclf.database = '%s' in postgresql.conf, then restart the "
                                "server.", db)));
    if (gemmaclf_watch_workers == 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("%s: gemmaclf.workers is 0, so no background worker labels "
                               "watched tables", caller),
                        errhint("Set gemmaclf.workers = 1 (or more) in postgresql.conf, then "
                                "restart the server.")));
    if (strcmp(db, gemmaclf_watch_database) != 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("%s: the background workers label tables of database \"%s\", "
                               "not \"%s\"", caller, gemmaclf_watch_database, db),
                        errhint("Watch tables in database \"%s\", or set gemmaclf.database = "
                                "'%s' in postgresql.conf and restart the server.",
                                gemmaclf_watch_database, db)));
}

static const char *schema_or_error(void)
{
    const char *schema = gcpg_watch_schema(NULL);

    if (!schema)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("gemmaclf: the extension's watch tables are missing"),
                        errhint("ALTER EXTENSION gemmaclf UPDATE;")));
    return schema;
}

/* A Citus table's rows are in shards on other nodes: refused before anything else. */
static void check_not_citus(Oid relid, const char *caller)
{
    if (gcpg_citus_table_kind(relid) != GCPG_CITUS_NONE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s: \"%s\" is a Citus table", caller, get_rel_name(relid)),
                        errdetail("Its rows are in shards on the worker nodes, which the "
                                  "coordinator's background workers do not label."),
                        errhint("Use the gemmaclf_flag_hate trigger (SET "
                                "citus.enable_unsafe_triggers = on when creating it) or CALL "
                                "gemmaclf_classify_table(...); see docs/scale-out.md.")));
}

static void check_table(Oid relid, const char *caller)
{
    char kind = get_rel_relkind(relid);

    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("%s: \"%s\" is not a table", caller,
                               get_rel_name(relid) ? get_rel_name(relid) : "?")));
    if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("%s: \"%s\" is a temporary table", caller, get_rel_name(relid)),
                        errdetail("The background workers cannot see other sessions' temporary "
                                  "tables.")));
}

/* UPDATE on the column att: on the table, or on the column itself (pg_attribute_aclcheck sees
 * only privileges granted on the column). */
static bool may_update(Oid relid, AttrNumber att, Oid role)
{
    return pg_class_aclcheck(relid, role, ACL_UPDATE) == ACLCHECK_OK ||
           pg_attribute_aclcheck(relid, att, role, ACL_UPDATE) == ACLCHECK_OK;
}

/* The workers read the text with ctid, tableoid and xmin (readable with table-level SELECT
 * only) and write the label and scores. */
static void check_privileges(Oid relid, Oid role, AttrNumber lab, AttrNumber sco)
{
    if (pg_class_aclcheck(relid, role, ACL_SELECT) == ACLCHECK_OK && may_update(relid, lab, role) &&
        (sco == 0 || may_update(relid, sco, role)))
        return;
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("gemmaclf_watch: permission denied for table %s",
                           get_rel_name(relid)),
                    errdetail("The workers label the table's rows as the role that watches it "
                              "(%s), which needs SELECT on the table and UPDATE on its label "
                              "and scores columns.", GetUserNameFromId(role, false))));
}

/* The role a watch created by the current user acts as. */
static Oid watch_role(Oid relid)
{
    Oid user = GetUserId();
    HeapTuple tup;
    Oid owner;

    if (!superuser_arg(user))
        return user;
    tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        elog(ERROR, "gemmaclf_watch: relation %u does not exist", relid);
    owner = ((Form_pg_class)GETSTRUCT(tup))->relowner;
    ReleaseSysCache(tup);
    return owner;
}

typedef struct registration {
    const char *schema;
    Oid relid;
    const char *src, *lab, *sco;
    Oid role;
} registration;

static void insert_registration(void *arg)
{
    registration *r = arg;
    Oid types[5] = {REGCLASSOID, NAMEOID, NAMEOID, NAMEOID, REGROLEOID};
    Datum v[5];
    char nulls[5] = {' ', ' ', ' ', r->sco ? ' ' : 'n', ' '};

    v[0] = ObjectIdGetDatum(r->relid);
    v[1] = DirectFunctionCall1(namein, CStringGetDatum(r->src));
    v[2] = DirectFunctionCall1(namein, CStringGetDatum(r->lab));
    v[3] = r->sco ? DirectFunctionCall1(namein, CStringGetDatum(r->sco)) : (Datum)0;
    v[4] = ObjectIdGetDatum(r->role);
    if (SPI_execute_with_args(psprintf("INSERT INTO %s." GCPG_WATCH_REGISTRY " (rel, "
                                       "text_column, label_column, scores_column, runs_as) "
                                       "VALUES ($1, $2, $3, $4, $5)", r->schema),
                              5, types, v, nulls, false, 0) != SPI_OK_INSERT)
        elog(ERROR, "gemmaclf_watch: could not register the watch");
}

/* The registered role of relid's watch, InvalidOid when relid is not watched. */
static Oid registered_role(const char *schema, Oid relid)
{
    Oid types[1] = {OIDOID};
    Datum v[1] = {ObjectIdGetDatum(relid)};
    bool isnull;

    if (SPI_execute_with_args(psprintf("SELECT runs_as::oid FROM %s." GCPG_WATCH_REGISTRY
                                       " WHERE rel = $1", schema),
                              1, types, v, NULL, true, 0) != SPI_OK_SELECT)
        elog(ERROR, "gemmaclf: could not read the watched tables");
    if (SPI_processed == 0)
        return InvalidOid;
    return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
                                          &isnull));
}

PG_FUNCTION_INFO_V1(gemmaclf_watch);
Datum gemmaclf_watch(PG_FUNCTION_ARGS)
{
    registration r;
    AttrNumber src, lab, sco = 0;

    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("gemmaclf_watch: rel, text_column and label_column must not be "
                               "NULL")));
    r.relid = PG_GETARG_OID(0);
    check_not_citus(r.relid, "gemmaclf_watch");
    check_available("gemmaclf_watch");
    check_table(r.relid, "gemmaclf_watch");
    /* Against a concurrent watch or unwatch of the same table (and DDL changing it). */
    LockRelationOid(r.relid, ShareRowExclusiveLock);
    r.src = NameStr(*PG_GETARG_NAME(1));
    r.lab = NameStr(*PG_GETARG_NAME(2));
    r.sco = PG_ARGISNULL(3) ? NULL : NameStr(*PG_GETARG_NAME(3));
    src = gcpg_column(r.relid, r.src, GCPG_COLUMN_TEXT, "gemmaclf_watch", NULL);
    lab = gcpg_column(r.relid, r.lab, GCPG_COLUMN_LABEL, "gemmaclf_watch", NULL);
    if (r.sco)
        sco = gcpg_column(r.relid, r.sco, GCPG_COLUMN_SCORES, "gemmaclf_watch", NULL);
    if (src == lab || (sco && (sco == src || sco == lab)))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("gemmaclf_watch: the text, label and scores columns must be "
                               "different columns")));
    gcpg_check_label_width(r.relid, lab, "gemmaclf_watch");
    check_privileges(r.relid, GetUserId(), lab, sco);
    r.role = watch_role(r.relid);

    SPI_connect();
    r.schema = schema_or_error();
    if (OidIsValid(registered_role(r.schema, r.relid)))
        ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
                        errmsg("gemmaclf_watch: table \"%s\" is already watched",
                               get_rel_name(r.relid)),
                        errhint("Call gemmaclf_unwatch('%s') first to change its columns.",
                                get_rel_name(r.relid))));
    /* What a watch that stopped (a renamed column...) left behind. */
    (void)gcpg_watch_drop_objects(r.schema, r.relid);
    gcpg_watch_create_objects(r.schema, r.relid, r.src, r.lab, r.sco);
    gcpg_as_role(gcpg_watch_registry_owner(r.schema), insert_registration, &r);
    SPI_finish();
    gcpg_watch_start_counters(r.relid);
    gcpg_watch_wake_at_commit(r.relid); /* for the rows already waiting */
    PG_RETURN_VOID();
}

/* Ending a watch or retrying its rows: its role, the table's owner, or a superuser. */
static void check_may_manage(Oid relid, Oid role, const char *caller)
{
    Oid user = GetUserId();

    if (superuser_arg(user) || (OidIsValid(role) && has_privs_of_role(user, role)) ||
        (get_rel_relkind(relid) != '\0' && gcpg_rel_ownercheck(relid, user)))
        return;
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("%s: permission denied for the watch of table %s", caller,
                           get_rel_name(relid) ? get_rel_name(relid) : "?"),
                    errdetail("Only the role that watches the table, its owner or a superuser "
                              "may.")));
}

PG_FUNCTION_INFO_V1(gemmaclf_unwatch);
Datum gemmaclf_unwatch(PG_FUNCTION_ARGS)
{
    Oid relid = PG_GETARG_OID(0);
    bool exists = get_rel_relkind(relid) != '\0';
    const char *schema;
    Oid role;
    bool found;

    SPI_connect();
    schema = schema_or_error();
    role = registered_role(schema, relid);
    check_may_manage(relid, role, "gemmaclf_unwatch");
    found = OidIsValid(role);
    if (exists)
        found |= gcpg_watch_drop_objects(schema, relid);
    if (!found)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("gemmaclf_unwatch: table \"%s\" is not watched",
                               exists ? get_rel_name(relid) : "?")));
    gcpg_watch_forget(schema, relid);
    SPI_finish();
    PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(gemmaclf_watch_retry);
Datum gemmaclf_watch_retry(PG_FUNCTION_ARGS)
{
    Oid relid = PG_GETARG_OID(0);
    const char *schema;
    int64 n = 0;

    SPI_connect();
    schema = schema_or_error();
    check_may_manage(relid, registered_role(schema, relid), "gemmaclf_watch_retry");
    if (get_rel_relkind(relid) != '\0')
        n = gcpg_watch_delete_failures(schema, relid, true);
    SPI_finish();
    gcpg_watch_wake_at_commit(relid);
    PG_RETURN_INT64(n);
}

/* The workers' counters of the tables the caller may read (all of them since the server
 * started; a table without a slot has none). */
PG_FUNCTION_INFO_V1(gemmaclf_watch_stats);
Datum gemmaclf_watch_stats(PG_FUNCTION_ARGS)
{
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    gcpg_watch_counters *cs = palloc(sizeof(gcpg_watch_counters) * GCPG_WATCH_MAX_TABLES);
    int n = gcpg_watch_copy_counters(cs, GCPG_WATCH_MAX_TABLES);

    InitMaterializedSRF(fcinfo, 0);
    for (int i = 0; i < n; i++) {
        const gcpg_watch_counters *c = &cs[i];
        Datum v[8];
        bool nulls[8] = {false};
        bool missing = false;

        if (pg_class_aclcheck_ext(c->relid, GetUserId(), ACL_SELECT, &missing) != ACLCHECK_OK ||
            missing)
            continue;
        v[0] = ObjectIdGetDatum(c->relid);
        v[1] = Int64GetDatum(c->labelled);
        v[2] = Int64GetDatum(c->failed);
        v[3] = Float8GetDatum(c->rate);
        v[4] = TimestampTzGetDatum(c->pending_since);
        nulls[4] = c->pending_since == 0;
        v[5] = TimestampTzGetDatum(c->last_batch_at);
        nulls[5] = c->last_batch_at == 0;
        v[6] = CStringGetTextDatum(c->last_error);
        nulls[6] = c->last_error_at == 0;
        v[7] = TimestampTzGetDatum(c->last_error_at);
        nulls[7] = c->last_error_at == 0;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
    }
    return (Datum)0;
}

/* Rows of a watched table waiting for a label, and rows whose label failed, as the caller sees
 * them (row-level security applies), counted through the watch's partial index. NULLs when
 * the table is not watched or the caller may not read it. */
PG_FUNCTION_INFO_V1(gemmaclf_watch_pending);
Datum gemmaclf_watch_pending(PG_FUNCTION_ARGS)
{
    Oid relid = PG_GETARG_OID(0);
    TupleDesc desc;
    Datum v[2] = {0, 0};
    bool nulls[2] = {true, true};

    if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "gemmaclf_watch_pending: must return a record");
    desc = BlessTupleDesc(desc);
    if (get_rel_relkind(relid) != '\0' &&
        pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK) {
        const char *schema;
        int n, nest;

        SPI_connect();
        schema = schema_or_error();
        {
            gcpg_watch_entry *es = gcpg_watch_entries(schema, &n);

            for (int i = 0; i < n; i++) {
                const char *rel, *src, *lab;
                Oid types[1] = {REGCLASSOID};
                Datum args[1] = {ObjectIdGetDatum(relid)};

                if (es[i].relid != relid)
                    continue;
                rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                                 get_rel_name(relid));
                src = quote_identifier(es[i].text_col);
                lab = quote_identifier(es[i].label_col);
                nest = NewGUCNestLevel();
                (void)set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
                                        GUC_ACTION_SAVE, true, 0, false);
                if (SPI_execute_with_args(
                        psprintf("SELECT count(*) FILTER (WHERE NOT failed), count(*) FILTER "
                                 "(WHERE failed) FROM (SELECT EXISTS (SELECT 1 FROM %s."
                                 GCPG_WATCH_ERRORS " e WHERE e.rel = $1 AND e.row_table = "
                                 "t.tableoid::regclass AND e.row_ctid = t.ctid AND e.row_xmin "
                                 "= t.xmin) AS failed FROM %s t WHERE t.%s IS NULL AND t.%s IS "
                                 "NOT NULL) s", schema, rel, lab, src),
                        1, types, args, NULL, true, 0) != SPI_OK_SELECT)
                    elog(ERROR, "gemmaclf_watch_pending: could not count the rows");
                AtEOXact_GUC(true, nest);
                v[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &nulls[0]);
                v[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &nulls[1]);
            }
        }
        SPI_finish();
    }
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, nulls)));
}

typedef struct dropped {
    Oid relid;
    const char *name; /* as it was */
    const char *why;
} dropped;

typedef struct drop_job {
    const char *schema;
    Oid relid;
} drop_job;

static void drop_trigger(void *arg)
{
    drop_job *j = arg;

    (void)gcpg_watch_drop_objects(j->schema, j->relid);
}

/* sql_drop: a watched table, or a column a watch reads or writes, was dropped: the watch ends
 * now (with a LOG), rather than at the workers' next look. Never makes the DROP fail: the
 * trigger of a table that lost a column is removed in a subtransaction, and left (inert) if
 * that fails. */
PG_FUNCTION_INFO_V1(gemmaclf_watch_on_drop);
Datum gemmaclf_watch_on_drop(PG_FUNCTION_ARGS)
{
    const char *schema;
    dropped *ds;
    int n;

    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("gemmaclf_watch_on_drop: not called by the event trigger "
                               "manager")));
    SPI_connect();
    schema = gcpg_watch_schema(NULL); /* NULL while gemmaclf itself is dropped */
    if (!schema) {
        SPI_finish();
        PG_RETURN_VOID();
    }
    if (SPI_execute(psprintf(
            "SELECT w.rel::oid, CASE WHEN d.objsubid = 0 THEN 'the table was dropped' ELSE "
            "format('column %%I was dropped', d.address_names[3]) END, "
            "CASE WHEN d.objsubid = 0 THEN d.object_identity ELSE w.rel::text END "
            "FROM pg_catalog.pg_event_trigger_dropped_objects() d JOIN %s." GCPG_WATCH_REGISTRY
            " w ON w.rel::oid = d.objid WHERE d.classid = 'pg_catalog.pg_class'::regclass AND "
            "(d.objsubid = 0 OR d.address_names[3] IN (w.text_column, w.label_column, "
            "w.scores_column))", schema), true, 0) != SPI_OK_SELECT)
        elog(ERROR, "gemmaclf_watch_on_drop: could not read the dropped objects");
    n = (int)SPI_processed;
    ds = palloc(sizeof(dropped) * Max(n, 1));
    for (int i = 0; i < n; i++) {
        bool isnull;

        ds[i].relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
                                                     SPI_tuptable->tupdesc, 1, &isnull));
        ds[i].why = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
        ds[i].name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
    }
    for (int i = 0; i < n; i++) {
        gcpg_watch_forget(schema, ds[i].relid);
        if (get_rel_relkind(ds[i].relid) != '\0') {
            drop_job j = {schema, ds[i].relid};
            ErrorData *ed = gcpg_try(drop_trigger, &j);

            if (ed)
                ereport(LOG, (errmsg("gemmaclf watch: could not drop the watch trigger of "
                                     "\"%s\": %s", ds[i].name, ed->message)));
        }
        ereport(LOG, (errmsg("gemmaclf watch: stopped watching \"%s\": %s", ds[i].name,
                             ds[i].why)));
    }
    SPI_finish();
    PG_RETURN_VOID();
}
