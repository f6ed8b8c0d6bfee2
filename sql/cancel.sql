-- Long classifications honour query cancel (checked between layers, rows and batches) and the
-- session is usable afterwards. No timing: a second session (dblink) runs the long statement,
-- this one waits for a condition that proves the statement is inside gemmaclf's work (an
-- advisory lock it takes just before, or a committed batch), cancels it, and waits until it
-- ended. Every wait gives up after 120 s, and a statement that was not cancelled finishes with a
-- result instead of the cancel error (the work takes far longer than 120 s without cancel).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
\getenv pgpassword PGPASSWORD
-- pg_virtualenv sets a password; a trust-authenticated cluster (the PG 18 runs) has none
\if :{?pgpassword}
\else
\set pgpassword ''
\endif
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
SELECT classify_hate('warm up') IS NOT NULL AS loaded;

-- polls a boolean query until it is true (true) or 120 s passed (false)
CREATE FUNCTION wait_until(cond text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); ok boolean;
BEGIN
  LOOP
    EXECUTE cond INTO ok;
    IF ok THEN RETURN true; END IF;
    IF clock_timestamp() > t0 + interval '120 s' THEN RETURN false; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
-- called by the long statements just before the classification: takes advisory lock 4242
-- (session level), which this session sees in pg_locks
CREATE FUNCTION started(a anyelement) RETURNS anyelement LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_lock(4242); RETURN a; END $$;
CREATE FUNCTION worker_holds_lock() RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted
                 AND pid <> pg_backend_pid()) $$;
-- cancels what the worker runs, waits until it ended, returns its outcome and frees lock 4242
CREATE FUNCTION cancel_worker() RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint; outcome text;
BEGIN
  IF dblink_cancel_query('worker') <> 'OK' THEN RETURN 'cancel request failed'; END IF;
  IF NOT wait_until('SELECT dblink_is_busy(''worker'') = 0') THEN RETURN 'still running after 120 s'; END IF;
  BEGIN
    SELECT count(*) INTO n FROM dblink_get_result('worker') AS t(x text);
    outcome := 'finished without error';
  EXCEPTION WHEN query_canceled THEN
    outcome := 'canceled: ' || SQLERRM;
  END;
  PERFORM * FROM dblink_get_result('worker', false) AS t(x text);  -- the end of the results
  PERFORM * FROM dblink('worker', 'SELECT pg_advisory_unlock_all()::text') AS t(x text);
  RETURN outcome;
END $$;

SELECT dblink_connect('worker', format('host=%s port=%s dbname=%s user=%s password=%s',
    quote_literal(split_part(current_setting('unix_socket_directories'), ',', 1)),
    current_setting('port'), current_database(), current_user,
    quote_literal(:'pgpassword'))) AS connected;
SELECT * FROM dblink('worker', format('SET gemmaclf.model_path = %L', :'ref')) AS t(x text);
-- the worker runs the functions above as its own
SELECT * FROM dblink('worker', 'SELECT classify_hate(''warm up'') IS NOT NULL') AS t(loaded boolean);

-- one batched call on 20000 long comments, cancelled inside the forward passes
SELECT dblink_send_query('worker', $q$
  SELECT cardinality(classify_hate(started(array_agg(repeat('bahut lamba comment hai ', 40) || i))))::text
  FROM generate_series(1, 20000) i $q$) AS sent;
SELECT wait_until('SELECT worker_holds_lock()') AS array_call_started;
SELECT cancel_worker() AS array_call;
-- one row at a time over 100000 long comments: the cancel stops it between or within rows
SELECT dblink_send_query('worker', $q$
  SELECT count(classify_hate(repeat('bahut lamba comment hai ', 40) || started(i)))::text
  FROM generate_series(1, 100000) i $q$) AS sent;
SELECT wait_until('SELECT worker_holds_lock()') AS row_calls_started;
SELECT cancel_worker() AS row_calls;
-- the procedure: cancelled once a batch is committed; committed batches stay
CREATE TABLE cancel_t AS SELECT i AS id, repeat('bahut lamba comment hai ', 40) || i AS body,
                                NULL::text AS label
FROM generate_series(1, 5000) i;
SELECT dblink_send_query('worker', $q$
  CALL gemmaclf_classify_table('cancel_t', 'body', 'label', 50) $q$) AS sent;
SELECT wait_until('SELECT count(*) > 0 FROM cancel_t WHERE label IS NOT NULL') AS batch_committed;
SELECT cancel_worker() AS procedure_call;
SELECT count(*) FILTER (WHERE label IS NOT NULL) >= 50 AS some_done,
       count(*) FILTER (WHERE label IS NULL) > 0 AS some_left FROM cancel_t;
DROP TABLE cancel_t;
-- the cancelled session still works
SELECT * FROM dblink('worker', 'SELECT classify_hate(''Sali'')') AS t(still_works text);
SELECT dblink_disconnect('worker');
DROP FUNCTION cancel_worker(), worker_holds_lock(), started(anyelement), wait_until(text);

-- a very long comment is capped (max_input_tokens <= 8192 and the model's context)
SET gemmaclf.max_input_tokens = 8192;
SELECT classify_hate(repeat('abc ', 100000)) IN ('Not Hate', 'Hate', 'Extreme Hate') AS capped;
SET gemmaclf.max_input_tokens = 8193;
