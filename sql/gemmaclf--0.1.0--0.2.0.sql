-- gemmaclf 0.1.0 -> 0.2.0 (ALTER EXTENSION gemmaclf UPDATE)
\echo Use "ALTER EXTENSION gemmaclf UPDATE TO '0.2.0'" to load this file. \quit

-- Every object added or changed in 0.2.0 is created here AND in gemmaclf--0.2.0.sql;
-- sql/upgrade.sql checks that a fresh 0.2.0 and an upgraded 0.1.0 have the same objects.

-- Background labelling (issue 11): watched tables are labelled by background workers
-- (needs shared_preload_libraries = 'gemmaclf'; design in docs/watch.md).
CREATE TABLE gemmaclf_watch (
    rel regclass PRIMARY KEY,
    text_column name NOT NULL,
    label_column name NOT NULL,
    scores_column name,
    runs_as regrole NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE gemmaclf_watch IS
    'tables whose rows the background workers label, and the role they act as (gemmaclf_watch)';
-- pg_dump keeps the watches (the tables' triggers and indexes are dumped with the tables)
SELECT pg_catalog.pg_extension_config_dump('gemmaclf_watch', '');
GRANT SELECT ON gemmaclf_watch TO PUBLIC;

-- Rows that could not be labelled, by row version: the workers skip a version recorded here,
-- and try the row again once it changes (or after gemmaclf_watch_retry).
CREATE TABLE gemmaclf_watch_errors (
    rel regclass NOT NULL,
    row_table regclass NOT NULL,
    row_ctid tid NOT NULL,
    row_xmin xid NOT NULL,
    sqlstate text NOT NULL,
    error text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX gemmaclf_watch_errors_row ON gemmaclf_watch_errors (rel, row_table, row_ctid);
CREATE INDEX gemmaclf_watch_errors_time ON gemmaclf_watch_errors (rel, failed_at);
COMMENT ON TABLE gemmaclf_watch_errors IS
    'rows of watched tables that failed: skipped until the row changes (gemmaclf_watch_retry)';
ALTER TABLE gemmaclf_watch_errors ENABLE ROW LEVEL SECURITY;
CREATE POLICY gemmaclf_watch_errors_readers ON gemmaclf_watch_errors FOR SELECT
    USING (pg_catalog.has_table_privilege(rel::oid, 'SELECT'));
GRANT SELECT ON gemmaclf_watch_errors TO PUBLIC;

CREATE FUNCTION gemmaclf_watch(rel regclass, text_column name, label_column name,
                               scores_column name DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'gemmaclf_watch'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION gemmaclf_watch(regclass, name, name, name) IS
    'label rows whose label is NULL in the background, now and whenever rows are written';

CREATE FUNCTION gemmaclf_unwatch(rel regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'gemmaclf_unwatch'
    LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION gemmaclf_unwatch(regclass) IS
    'stop labelling a watched table in the background; drops its trigger and index';

CREATE FUNCTION gemmaclf_watch_retry(rel regclass) RETURNS bigint
    AS 'MODULE_PATHNAME', 'gemmaclf_watch_retry'
    LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION gemmaclf_watch_retry(regclass) IS
    'forget the failed rows of a watched table so that the workers try them again';

CREATE FUNCTION gemmaclf_watch_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'gemmaclf_watch_trigger'
    LANGUAGE C;
COMMENT ON FUNCTION gemmaclf_watch_trigger() IS
    'trigger of watched tables: a changed text NULLs its label; new work wakes the workers';

CREATE FUNCTION gemmaclf_watch_on_drop() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'gemmaclf_watch_on_drop'
    LANGUAGE C;
CREATE EVENT TRIGGER gemmaclf_watch_on_drop ON sql_drop
    EXECUTE FUNCTION gemmaclf_watch_on_drop();

CREATE FUNCTION gemmaclf_watch_stats(OUT rel oid, OUT labelled bigint, OUT failed bigint,
                                     OUT rows_per_s float8, OUT pending_since timestamptz,
                                     OUT last_batch_at timestamptz, OUT last_error text,
                                     OUT last_error_at timestamptz) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'gemmaclf_watch_stats'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION gemmaclf_watch_stats() IS
    'the workers'' counters per watched table since the server started';

CREATE FUNCTION gemmaclf_watch_pending(rel regclass, OUT pending bigint, OUT failed bigint)
    RETURNS record
    AS 'MODULE_PATHNAME', 'gemmaclf_watch_pending'
    LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION gemmaclf_watch_pending(regclass) IS
    'rows of a watched table waiting for a label, and rows that failed';

-- "Is it keeping up?" in one query: pending near 0, lag small, rows_per_s above the insert rate.
CREATE VIEW gemmaclf_watch_status AS
SELECT w.rel, w.text_column, w.label_column, w.scores_column, w.runs_as,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity a
         WHERE a.backend_type = 'gemmaclf watch')::int AS workers,
       p.pending, p.failed,
       coalesce(s.labelled, 0) AS labelled,
       round(coalesce(s.rows_per_s, 0)::numeric, 1) AS rows_per_s,
       CASE WHEN p.pending = 0 THEN interval '0'
            ELSE date_trunc('milliseconds', clock_timestamp() - s.pending_since) END AS lag,
       e.error AS last_error, e.at AS last_error_at
FROM gemmaclf_watch w
LEFT JOIN gemmaclf_watch_stats() s ON s.rel = w.rel::oid
LEFT JOIN LATERAL gemmaclf_watch_pending(w.rel) p ON true
LEFT JOIN LATERAL (
    SELECT x.error, x.at
    FROM (SELECT s.last_error, s.last_error_at
          UNION ALL
          (SELECT f.error, f.failed_at FROM gemmaclf_watch_errors f
            WHERE f.rel = w.rel ORDER BY f.failed_at DESC LIMIT 1)) x(error, at)
    WHERE x.at IS NOT NULL ORDER BY x.at DESC LIMIT 1) e ON true
WHERE pg_catalog.has_table_privilege(w.rel::oid, 'SELECT');
COMMENT ON VIEW gemmaclf_watch_status IS
    'per watched table: rows pending and failed, rows labelled since start, rows/s, lag, last error';
GRANT SELECT ON gemmaclf_watch_status TO PUBLIC;
-- ---- inference worker (issue 12) ----
CREATE FUNCTION gemmaclf_inference_status(
    OUT pid int, OUT state text, OUT device text, OUT model_path text, OUT batch_size int,
    OUT batch_wait_ms float8, OUT batches bigint, OUT requests bigint, OUT texts bigint,
    OUT mean_batch_size float8, OUT mean_queue_wait_ms float8, OUT max_queue_wait_ms float8,
    OUT errors bigint, OUT discarded bigint, OUT queued int, OUT in_progress int,
    OUT gpu_memory_bytes bigint, OUT started_at timestamptz, OUT error text)
    AS 'MODULE_PATHNAME', 'gemmaclf_inference_status'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION gemmaclf_inference_status() IS
    'the inference worker: pid, state, device, model, batches, mean batch size, queue wait, errors';
CREATE VIEW gemmaclf_inference_status AS SELECT * FROM gemmaclf_inference_status();
COMMENT ON VIEW gemmaclf_inference_status IS 'the inference worker (gemmaclf_inference_status())';

CREATE FUNCTION gemmaclf_inference_hold(hold bool) RETURNS bool
    AS 'MODULE_PATHNAME', 'gemmaclf_inference_hold'
    LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION gemmaclf_inference_hold(bool) FROM PUBLIC;
COMMENT ON FUNCTION gemmaclf_inference_hold(bool) IS
    'test hook (superuser): true makes the inference worker keep the requests it takes until false';
