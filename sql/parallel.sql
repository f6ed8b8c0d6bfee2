-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

-- a parallel plan: workers load the model themselves and give the same labels
CREATE TABLE par (id int, body text);
INSERT INTO par SELECT i, (ARRAY['A', 'Sali', 'Randi saali mc', 'Kya yaar', 'Inki madarchod',
                                 'Tuzya aaichi puchi'])[1 + i % 6]
FROM generate_series(1, 60) i;
ANALYZE par;
CREATE TEMP TABLE serial_labels AS SELECT id, classify_hate(body) AS label FROM par;

-- force a parallel plan: the setting is force_parallel_mode before PostgreSQL 16,
-- debug_parallel_query from 16 on
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false) AS forced;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT id, classify_hate(body) FROM par;
CREATE TEMP TABLE parallel_labels AS SELECT id, label FROM
    (SELECT id, classify_hate(body) AS label FROM par) x;
SELECT count(*) AS rows, count(*) FILTER (WHERE s.label = p.label) AS same
FROM serial_labels s JOIN parallel_labels p USING (id);
-- an aggregate over a parallel scan, computed in the workers: the same groups as serially
SELECT array_agg(label || ' ' || n ORDER BY label) AS groups_parallel
FROM (SELECT classify_hate(body) AS label, count(*) AS n FROM par GROUP BY 1) g \gset
SELECT :'groups_parallel' = array_agg(label || ' ' || n ORDER BY label)::text AS same_groups,
       count(*) AS groups
FROM (SELECT label, count(*) AS n FROM serial_labels GROUP BY 1) g;
-- EXPLAIN ANALYZE: the workers were launched and classify_hate is computed below the Gather,
-- i.e. in them (the leader does not participate)
CREATE FUNCTION gather_info(q text)
RETURNS TABLE (node text, planned int, launched int, classify_hate_in_workers boolean)
LANGUAGE plpgsql AS $$
DECLARE p jsonb; g jsonb;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) ' || q INTO p;
  FOR g IN SELECT jsonb_path_query(p, 'strict $.** ? (@."Node Type" starts with "Gather")') LOOP
    node := g->>'Node Type';
    planned := (g->>'Workers Planned')::int;
    launched := (g->>'Workers Launched')::int;
    classify_hate_in_workers :=
      jsonb_path_exists(g->'Plans', 'strict $.**."Output"[*] ? (@ like_regex "classify_hate")');
    RETURN NEXT;
  END LOOP;
END $$;
SELECT * FROM gather_info('SELECT id, classify_hate(body) FROM par');
SELECT * FROM gather_info('SELECT classify_hate(body), count(*) FROM par GROUP BY 1');
DROP FUNCTION gather_info(text);
RESET ALL;
DROP TABLE par;
