/* What gemmaclf needs to know about Citus (docs/scale-out.md): whether a table is a Citus table
 * and of which kind, and the distribution column behind a shard. Read from Citus' catalog tables
 * by name with SPI, so gemmaclf neither links against Citus nor needs it: without the citus
 * extension in the database (no pg_catalog.pg_dist_partition) every table is a plain one. */
#include "gemmaclf_pg.h"

#include <stdlib.h>

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

static bool citus_present(void)
{
    return OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)) &&
           OidIsValid(get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE));
}

gcpg_citus_kind gcpg_citus_table_kind(Oid relid)
{
    Oid types[1] = {OIDOID};
    Datum args[1] = {ObjectIdGetDatum(relid)};
    gcpg_citus_kind kind = GCPG_CITUS_NONE;

    if (!citus_present())
        return GCPG_CITUS_NONE;
    SPI_connect();
    if (SPI_execute_with_args("SELECT p.partmethod::text, p.repmodel::text "
                              "FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1",
                              1, types, args, NULL, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "gemmaclf: could not read pg_dist_partition");
    if (SPI_processed == 1) {
        char *method = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        char *rep = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

        if (method && strcmp(method, "h") == 0)
            kind = GCPG_CITUS_HASH;
        else if (method && rep && strcmp(method, "n") == 0 && strcmp(rep, "t") == 0)
            kind = GCPG_CITUS_REFERENCE;
        else
            kind = GCPG_CITUS_OTHER;
    }
    SPI_finish();
    return kind;
}

/* A shard of a distributed table is a table "<name>_<shardid>" in the schema of <name> on the
 * node that holds it (Citus appends a hash instead when the name would pass 63 bytes; such
 * shards are not recognised). The shell table <name> itself counts too. */
char *gcpg_citus_distribution_column_of(Oid relid, Oid nsp, const char *name)
{
    const char *us = strrchr(name, '_');
    int64 shardid = 0;
    Oid types[4] = {OIDOID, INT8OID, OIDOID, TEXTOID};
    Datum args[4];
    char *col = NULL;
    MemoryContext cx = CurrentMemoryContext;

    if (!citus_present())
        return NULL;
    if (us && us[1] && strspn(us + 1, "0123456789") == strlen(us + 1) && strlen(us + 1) < 19)
        shardid = strtoll(us + 1, NULL, 10);
    args[0] = ObjectIdGetDatum(relid);
    args[1] = Int64GetDatum(shardid);
    args[2] = ObjectIdGetDatum(nsp);
    args[3] = CStringGetTextDatum(name);
    SPI_connect();
    if (SPI_execute_with_args(
            "SELECT pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) "
            "FROM pg_catalog.pg_dist_partition p WHERE p.partkey IS NOT NULL AND "
            "(p.logicalrelid = $1 OR p.logicalrelid = (SELECT s.logicalrelid "
            " FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_class l ON l.oid = s.logicalrelid "
            " WHERE s.shardid = $2 AND l.relnamespace = $3 AND "
            " l.relname::text || '_' || s.shardid::text = $4))",
            4, types, args, NULL, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "gemmaclf: could not read pg_dist_partition");
    if (SPI_processed == 1) {
        char *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

        if (v)
            col = MemoryContextStrdup(cx, v);
    }
    SPI_finish();
    return col;
}

char *gcpg_citus_distribution_column(Relation rel)
{
    return gcpg_citus_distribution_column_of(RelationGetRelid(rel), RelationGetNamespace(rel),
                                             RelationGetRelationName(rel));
}
