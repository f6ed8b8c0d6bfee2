#!/bin/sh
# Two sessions CALL gemmaclf_classify_table on the same table at once: FOR UPDATE SKIP LOCKED
# shares the rows between them, every row is labelled once, both do part of the work.
# No timing: a trigger makes the two runs overlap by construction. Session a, at its first row,
# takes advisory lock 4343 and waits until a row labelled by session b is committed; session b,
# at its first row, waits until a holds that lock. So a holds its first batch (locked rows)
# while b labels and commits other rows, whichever starts first. Waits give up after 120 s.
# Runs inside a throwaway cluster (scripts/pg-test.sh); GC_SHARED must be set.
set -eu
REF=$GC_SHARED/reference/hf-trained-classifier
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
DROP TABLE IF EXISTS shared_work;
CREATE TABLE shared_work (id int PRIMARY KEY, body text, label text, updates int DEFAULT 0,
                          session text);
INSERT INTO shared_work (id, body)
SELECT i, (ARRAY['A', 'Sali', 'Randi saali mc', 'Kya yaar'])[1 + i % 4] FROM generate_series(1, 60) i;
CREATE FUNCTION wait_until(cond text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); ok boolean;
BEGIN
  LOOP
    EXECUTE cond INTO ok;
    EXIT WHEN ok;
    IF clock_timestamp() > t0 + interval '120 s' THEN
      RAISE EXCEPTION 'pg_concurrent: gave up after 120 s waiting for: %', cond;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
-- counts updates per row, records the session, and makes the two runs overlap (see above)
CREATE FUNCTION rendezvous() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE me text := current_setting('gemmaclf_test.session');
BEGIN
  NEW.updates := OLD.updates + 1;
  NEW.session := me;
  IF current_setting('gemmaclf_test.first_done', true) IS DISTINCT FROM 'yes' THEN
    PERFORM set_config('gemmaclf_test.first_done', 'yes', false);
    IF me = 'a' THEN
      PERFORM pg_advisory_lock(4343);
      PERFORM wait_until('SELECT EXISTS (SELECT 1 FROM shared_work WHERE session = ''b'')');
    ELSE
      PERFORM wait_until('SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = ''advisory''
                          AND objid = 4343 AND granted AND pid <> pg_backend_pid())');
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER rendezvous BEFORE UPDATE ON shared_work FOR EACH ROW EXECUTE FUNCTION rendezvous();
SQL
out=$(mktemp -d)
for s in a b; do
    PGOPTIONS="-c gemmaclf.model_path=$REF -c gemmaclf_test.session=$s" psql -X -q -v ON_ERROR_STOP=1 \
        -c "CALL gemmaclf_classify_table('shared_work', 'body', 'label', 5)" >"$out/$s" 2>&1 &
done
wait
last() { grep -o '[0-9]* of [0-9]* rows classified' "$1" | tail -1 | cut -d' ' -f1; }
a=$(last "$out/a"); b=$(last "$out/b")
res=$(PGOPTIONS="-c gemmaclf.model_path=$REF" psql -X -At -c "SELECT count(*) FILTER (WHERE label IS NULL) || ' ' || count(*) FILTER (WHERE updates <> 1) || ' ' || count(*) FILTER (WHERE label <> classify_hate(body)) || ' ' || count(*) FILTER (WHERE session = 'a') || ' ' || count(*) FILTER (WHERE session = 'b') FROM shared_work")
echo "session a labelled ${a:-0} rows, session b ${b:-0}; unlabeled, rows not updated exactly once, wrong labels, rows of a, rows of b: $res"
cat "$out/a" "$out/b" | grep -vE "NOTICE|DETAIL" || true
rm -rf "$out"
set -- $res
[ "${a:-0}" -ge 5 ] && [ "${b:-0}" -ge 5 ] && [ $((a + b)) -eq 60 ] && [ "$1 $2 $3" = "0 0 0" ] &&
    [ "$4" = "$a" ] && [ "$5" = "$b" ]
