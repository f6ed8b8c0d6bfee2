-- Long classifications honour statement_timeout and query cancel (checked between layers and
-- between batches); the session is usable afterwards.
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
SELECT classify_hate('warm up') IS NOT NULL AS loaded;

SET statement_timeout = '300ms';
-- a batch of 5000 long comments takes far longer than 300 ms
SELECT cardinality(classify_hate(array_agg(repeat('bahut lamba comment hai ', 40) || i)))
FROM generate_series(1, 5000) i;
-- one row at a time: the timeout stops the scan between rows
SELECT count(classify_hate(repeat('bahut lamba comment hai ', 40) || i))
FROM generate_series(1, 100000) i;
-- the procedure: stops between batches, committed batches stay
CREATE TABLE cancel_t AS SELECT i AS id, repeat('bahut lamba comment hai ', 40) || i AS body,
                                NULL::text AS label
FROM generate_series(1, 5000) i;
\set VERBOSITY terse
SET client_min_messages = warning;
CALL gemmaclf_classify_table('cancel_t', 'body', 'label', 50);
RESET client_min_messages;
\set VERBOSITY default
RESET statement_timeout;
SELECT count(*) FILTER (WHERE label IS NULL) > 0 AS some_left FROM cancel_t;
DROP TABLE cancel_t;
SELECT classify_hate('Sali') AS still_works;
-- a very long comment is capped (max_input_tokens <= 8192 and the model's context)
SET gemmaclf.max_input_tokens = 8192;
SELECT classify_hate(repeat('abc ', 100000)) IN ('Not Hate', 'Hate', 'Extreme Hate') AS capped;
SET gemmaclf.max_input_tokens = 8193;
