-- A parallel query whose leader classifies rows too (parallel_leader_participation = on, the
-- default), each time in a fresh session: the leader loads the model and starts its session while
-- its workers send it messages. Those interrupts are no cancel: every run must count the same
-- rows (before the fix most runs failed with 57014 "could not start a gemmaclf session: canceled").
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
-- the label counted: the one of a text the reference model calls Hate (psql variables outlive \c)
SET gemmaclf.model_path = :'ref';
SELECT classify_hate('Sali') AS lab \gset

CREATE TABLE big (id int, body text);
INSERT INTO big SELECT i, (ARRAY['A', 'Sali', 'Randi saali mc', 'Kya yaar', 'Inki madarchod'])[1 + i % 5]
FROM generate_series(1, 200000) i;
VACUUM ANALYZE big;
\set par 'SET gemmaclf.model_path = ' :'ref' '; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = on;'
:par
EXPLAIN (COSTS OFF) SELECT count(*) FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
-- the answer, from a serial scan
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
-- ten fresh sessions, each cold
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
\c
:par
SELECT count(*) AS hate FROM big WHERE id <= 50 AND classify_hate(body) = :'lab';
DROP TABLE big;
