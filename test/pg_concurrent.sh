#!/bin/sh
# Two sessions CALL gemmaclf_classify_table on the same table at once: FOR UPDATE SKIP LOCKED
# shares the rows between them, every row is labelled once, both do part of the work.
# Runs inside a pg_virtualenv cluster (scripts/pg-test.sh); GC_SHARED must be set.
set -eu
REF=$GC_SHARED/reference/hf-trained-classifier
psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
DROP TABLE IF EXISTS shared_work;
CREATE TABLE shared_work (id int PRIMARY KEY, body text, label text, updates int DEFAULT 0);
INSERT INTO shared_work (id, body)
SELECT i, (ARRAY['A', 'Sali', 'Randi saali mc', 'Kya yaar'])[1 + i % 4] FROM generate_series(1, 60) i;
-- slow rows (50 ms each) so that the two runs overlap; count updates per row
CREATE FUNCTION slow_count() RETURNS trigger LANGUAGE plpgsql AS
\$\$ BEGIN PERFORM pg_sleep(0.05); NEW.updates := OLD.updates + 1; RETURN NEW; END \$\$;
CREATE TRIGGER slow_count BEFORE UPDATE ON shared_work FOR EACH ROW EXECUTE FUNCTION slow_count();
SQL
out=$(mktemp -d)
for s in a b; do
    PGOPTIONS="-c gemmaclf.model_path=$REF" psql -X -q -v ON_ERROR_STOP=1 \
        -c "CALL gemmaclf_classify_table('shared_work', 'body', 'label', 5)" >"$out/$s" 2>&1 &
done
wait
last() { grep -o '[0-9]* of [0-9]* rows classified' "$1" | tail -1 | cut -d' ' -f1; }
a=$(last "$out/a"); b=$(last "$out/b")
res=$(PGOPTIONS="-c gemmaclf.model_path=$REF" psql -X -At -c "SELECT count(*) FILTER (WHERE label IS NULL) || ' ' || count(*) FILTER (WHERE updates <> 1) || ' ' || count(*) FILTER (WHERE label <> classify_hate(body)) FROM shared_work")
echo "session a labelled ${a:-0} rows, session b ${b:-0}; unlabeled, rows not updated exactly once, wrong labels: $res"
cat "$out/a" "$out/b" | grep -vE "NOTICE|DETAIL" || true
rm -rf "$out"
[ "${a:-0}" -gt 0 ] && [ "${b:-0}" -gt 0 ] && [ $((a + b)) -eq 60 ] && [ "$res" = "0 0 0" ]
