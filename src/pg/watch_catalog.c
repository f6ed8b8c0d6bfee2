/* The SQL side of a watch: the extension's two tables (the registry gemmaclf_watch, one row per
 * watched table, and gemmaclf_watch_errors, the rows that failed) and, on each watched table,
 * the trigger gemmaclf_watch and the partial index gemmaclf_watch_pending_<oid>.
 *
 * The extension is relocatable, so its schema is looked up at run time, never written into
 * SQL. The registry is written, and a table's trigger and index are made and dropped, as the
 * registry's owner (the extension's owner, a superuser since gemmaclf is not a trusted
 * extension) under SECURITY_RESTRICTED_OPERATION: the caller of gemmaclf_watch() needs only the
 * right to read and label the table. Not as the table's owner: CREATE INDEX also needs CREATE
 * on the table's schema, which a table's owner often lacks (public, since PostgreSQL 15). The
 * statements are fixed, with quoted names, and run no code of the table's (no triggers fire on
 * DDL; the index has plain columns, a built-in operator class and an IS NULL predicate). All
 * functions here need a transaction and an SPI connection. */
#include "watch.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

/* Runs a query whose result must be `expect` (an SPI_OK_* code). */
static void run(const char *sql, int nargs, Oid *types, Datum *values, int expect)
{
    int rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

    if (rc != expect)
        elog(ERROR, "gemmaclf watch: query failed (%s): %s", SPI_result_code_string(rc), sql);
}

/* A field as a string in the caller's memory (it outlives SPI_finish); NULL for NULL. */
static char *text_field(int row, int col)
{
    char *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
    char *out;

    if (!v)
        return NULL;
    out = SPI_palloc(strlen(v) + 1);
    strcpy(out, v);
    return out;
}

static Datum binary_field(int row, int col, bool *isnull)
{
    return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* The extension's schema and the registry's owner; no row when gemmaclf is not installed or
 * is at a version without the registry. Catalog reads only: no privilege is needed. */
#define REGISTRY_QUERY \
    "SELECT pg_catalog.quote_ident(n.nspname), c.relowner FROM pg_catalog.pg_extension e " \
    "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace " \
    "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = '" \
    GCPG_WATCH_REGISTRY "' AND c.relkind = 'r' WHERE e.extname = 'gemmaclf'"

const char *gcpg_watch_schema(Oid *registry_owner)
{
    bool isnull;

    run(REGISTRY_QUERY, 0, NULL, NULL, SPI_OK_SELECT);
    if (SPI_processed != 1)
        return NULL;
    if (registry_owner)
        *registry_owner = DatumGetObjectId(binary_field(0, 2, &isnull));
    return text_field(0, 1);
}

gcpg_watch_entry *gcpg_watch_entries(const char *schema, int *n)
{
    gcpg_watch_entry *es;

    run(psprintf("SELECT rel::oid, text_column::text, label_column::text, scores_column::text, "
                 "runs_as::oid, created_at FROM %s." GCPG_WATCH_REGISTRY " ORDER BY created_at",
                 schema),
        0, NULL, NULL, SPI_OK_SELECT);
    *n = (int)SPI_processed;
    es = SPI_palloc(sizeof(gcpg_watch_entry) * Max(*n, 1));
    for (int i = 0; i < *n; i++) {
        bool isnull;

        es[i].relid = DatumGetObjectId(binary_field(i, 1, &isnull));
        es[i].text_col = text_field(i, 2);
        es[i].label_col = text_field(i, 3);
        es[i].scores_col = text_field(i, 4);
        es[i].runs_as = DatumGetObjectId(binary_field(i, 5, &isnull));
        es[i].created_at = DatumGetTimestampTz(binary_field(i, 6, &isnull));
    }
    return es;
}

bool gcpg_watch_still_registered(const char *schema, const gcpg_watch_entry *e)
{
    Oid types[2] = {OIDOID, TIMESTAMPTZOID};
    Datum vals[2] = {ObjectIdGetDatum(e->relid), TimestampTzGetDatum(e->created_at)};

    run(psprintf("SELECT 1 FROM %s." GCPG_WATCH_REGISTRY " WHERE rel = $1 AND created_at = $2",
                 schema),
        2, types, vals, SPI_OK_SELECT);
    return SPI_processed == 1;
}

Oid gcpg_watch_registry_owner(const char *schema)
{
    bool isnull;

    run(REGISTRY_QUERY, 0, NULL, NULL, SPI_OK_SELECT);
    if (SPI_processed != 1)
        elog(ERROR, "gemmaclf watch: the table %s." GCPG_WATCH_REGISTRY " is missing", schema);
    return DatumGetObjectId(binary_field(0, 2, &isnull));
}

void gcpg_as_role(Oid role, void (*fn)(void *), void *arg)
{
    Oid save_user;
    int save_sec;

    GetUserIdAndSecContext(&save_user, &save_sec);
    SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
                                     SECURITY_RESTRICTED_OPERATION);
    fn(arg);
    SetUserIdAndSecContext(save_user, save_sec);
}

ErrorData *gcpg_try(void (*fn)(void *), void *arg)
{
    MemoryContext cx = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    ErrorData *ed = NULL;

    BeginInternalSubTransaction(NULL);
    MemoryContextSwitchTo(cx);
    PG_TRY();
    {
        fn(arg);
        ReleaseCurrentSubTransaction();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cx);
        ed = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
    }
    PG_END_TRY();
    MemoryContextSwitchTo(cx);
    CurrentResourceOwner = owner;
    return ed;
}

typedef struct forget_job {
    const char *schema;
    Oid relid;
} forget_job;

static void forget_rows(void *arg)
{
    forget_job *j = arg;
    Oid types[1] = {OIDOID};
    Datum vals[1] = {ObjectIdGetDatum(j->relid)};

    run(psprintf("DELETE FROM %s." GCPG_WATCH_REGISTRY " WHERE rel = $1", j->schema), 1, types,
        vals, SPI_OK_DELETE);
    run(psprintf("DELETE FROM %s." GCPG_WATCH_ERRORS " WHERE rel = $1", j->schema), 1, types,
        vals, SPI_OK_DELETE);
}

void gcpg_watch_forget(const char *schema, Oid relid)
{
    forget_job j = {schema, relid};

    gcpg_as_role(gcpg_watch_registry_owner(schema), forget_rows, &j);
    gcpg_watch_forget_counters(relid);
}

static const char *qualified(Oid relid);

typedef struct failures_job {
    const char *schema;
    Oid relid;
    bool all;
    int64 n;
} failures_job;

static void delete_failures(void *arg)
{
    failures_job *j = arg;
    Oid types[1] = {REGCLASSOID};
    Datum v[1] = {ObjectIdGetDatum(j->relid)};
    const char *rel = qualified(j->relid);
    /* the row version a failure names still exists */
    const char *current = "EXISTS (SELECT 1 FROM %s t WHERE t.tableoid = %s.row_table::oid AND "
                          "t.ctid = %s.row_ctid AND t.xmin = %s.row_xmin)";
    bool isnull;

    if (j->all) {
        run(psprintf("WITH d AS (DELETE FROM %s." GCPG_WATCH_ERRORS " WHERE rel = $1 RETURNING "
                     "row_table, row_ctid, row_xmin) SELECT count(*) FROM d WHERE %s",
                     j->schema, psprintf(current, rel, "d", "d", "d")),
            1, types, v, SPI_OK_SELECT);
        j->n = DatumGetInt64(binary_field(0, 1, &isnull));
    } else {
        run(psprintf("DELETE FROM %s." GCPG_WATCH_ERRORS " e WHERE e.rel = $1 AND NOT %s",
                     j->schema, psprintf(current, rel, "e", "e", "e")),
            1, types, v, SPI_OK_DELETE);
        j->n = (int64)SPI_processed;
    }
}

int64 gcpg_watch_delete_failures(const char *schema, Oid relid, bool all)
{
    failures_job j = {schema, relid, all, 0};

    gcpg_as_role(gcpg_watch_registry_owner(schema), delete_failures, &j);
    return j.n;
}

/* The table as SQL names it, schema-qualified and quoted. */
static const char *qualified(Oid relid)
{
    return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                      get_rel_name(relid));
}

typedef struct objects_job {
    const char *schema;
    Oid relid;
    const char *text_col, *label_col, *scores_col;
    bool found;
} objects_job;

/* The partial index holds exactly the rows waiting for a label, keyed by the label (always
 * NULL there): the workers' claim and the pending count read only those rows, however large
 * the table, and no primary key is needed (rows are addressed by ctid under their row lock). */
static void create_objects(void *arg)
{
    objects_job *j = arg;
    const char *rel = qualified(j->relid);
    const char *lab = quote_identifier(j->label_col), *src = quote_identifier(j->text_col);

    run(psprintf("CREATE INDEX " GCPG_WATCH_INDEX_PREFIX "%u ON %s (%s) WHERE %s IS NULL AND "
                 "%s IS NOT NULL", j->relid, rel, lab, lab, src),
        0, NULL, NULL, SPI_OK_UTILITY);
    run(psprintf("CREATE TRIGGER " GCPG_WATCH_TRIGGER " BEFORE INSERT OR UPDATE ON %s FOR EACH "
                 "ROW EXECUTE FUNCTION %s.gemmaclf_watch_trigger(%s, %s%s%s)",
                 rel, j->schema, quote_literal_cstr(j->text_col),
                 quote_literal_cstr(j->label_col), j->scores_col ? ", " : "",
                 j->scores_col ? quote_literal_cstr(j->scores_col) : ""),
        0, NULL, NULL, SPI_OK_UTILITY);
    /* ALWAYS: rows written by logical replication (session_replication_role = replica) must
     * be labelled too; the trigger's only effects are NULLing a stale label and a wake-up. */
    run(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER " GCPG_WATCH_TRIGGER, rel), 0, NULL, NULL,
        SPI_OK_UTILITY);
}

void gcpg_watch_create_objects(const char *schema, Oid relid, const char *text_col,
                               const char *label_col, const char *scores_col)
{
    objects_job j = {schema, relid, text_col, label_col, scores_col, false};

    gcpg_as_role(gcpg_watch_registry_owner(schema), create_objects, &j);
}

static void drop_objects(void *arg)
{
    objects_job *j = arg;
    const char *rel = qualified(j->relid);
    Oid types[1] = {OIDOID};
    Datum vals[1] = {ObjectIdGetDatum(j->relid)};
    SPITupleTable *idx;
    uint64 n_idx;

    run("SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = '"
        GCPG_WATCH_TRIGGER "'", 1, types, vals, SPI_OK_SELECT);
    if (SPI_processed > 0) {
        j->found = true;
        run(psprintf("DROP TRIGGER " GCPG_WATCH_TRIGGER " ON %s", rel), 0, NULL, NULL,
            SPI_OK_UTILITY);
    }
    run("SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) "
        "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE i.indrelid = $1 AND c.relname LIKE 'gemmaclf\\_watch\\_pending\\_%'",
        1, types, vals, SPI_OK_SELECT);
    idx = SPI_tuptable;
    n_idx = SPI_processed;
    for (uint64 i = 0; i < n_idx; i++) {
        j->found = true;
        run(psprintf("DROP INDEX %s", SPI_getvalue(idx->vals[i], idx->tupdesc, 1)), 0, NULL,
            NULL, SPI_OK_UTILITY);
    }
}

bool gcpg_watch_drop_objects(const char *schema, Oid relid)
{
    objects_job j = {schema, relid, NULL, NULL, NULL, false};

    gcpg_as_role(gcpg_watch_registry_owner(schema), drop_objects, &j);
    return j.found;
}
