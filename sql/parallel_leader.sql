-- A parallel query whose leader classifies rows too (parallel_leader_participation = on, the
-- default), each time in a fresh session: the leader loads the model and starts its session while
-- its workers send it messages. Those interrupts are no cancel: every run must count the same
-- rows (before the fix most runs failed with 57014 "could not start a gemmaclf session: canceled").
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;

CREATE TABLE big (id int, body text);
INSERT INTO big SELECT i, (ARRAY['A', 'Sali', 'Randi saali mc', 'Kya yaar', 'Inki madarchod'])[1 + i % 5]
FROM generate_series(1, 200000) i;
VACUUM ANALYZE big;
-- the label to count, and the count from a serial scan: the reference for every run below
SET gemmaclf.model_path = :'ref';
CREATE TABLE wanted AS SELECT classify_hate('Sali') AS label;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE answer AS
SELECT count(*) AS n FROM big WHERE id <= 50 AND classify_hate(body) = (SELECT label FROM wanted);
\set par 'SET gemmaclf.model_path = ' :'ref' '; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = on;'
\set q 'SELECT count(*) = (SELECT n FROM answer) AS same FROM big WHERE id <= 50 AND classify_hate(body) = (SELECT label FROM wanted);'
:par
-- the plan is parallel (a Gather)
DO $$ DECLARE p json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) SELECT count(*) FROM big WHERE id <= 50 AND '
          'classify_hate(body) = (SELECT label FROM wanted)' INTO p;
  RAISE NOTICE 'parallel plan: %', position('"Node Type": "Gather"' IN p::text) > 0;
END $$;
SELECT n > 0 AS some_rows_counted FROM answer;
-- ten fresh sessions, each cold
\c
:par
:q
\c
:par
:q
\c
:par
:q
\c
:par
:q
\c
:par
:q
\c
:par
:q
\c
:par
:q
\c
:par
:q
\c
:par
:q
\c
:par
:q
DROP TABLE big, wanted, answer;
