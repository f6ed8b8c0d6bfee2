#!/bin/sh
# CALL gemmaclf_classify_table keeps its memory flat however many rows the table has. One fresh
# session per table size (GC_MEM_ROWS, default "1000 4000"), each a CALL over that many rows of
# ~1.5 KB with the bundled model; a BEFORE UPDATE trigger samples, every 250 rows, the backend's
# memory-context total (pg_backend_memory_contexts) and its private resident memory (RssAnon:
# shared buffers and the mapped weights, which every backend shares, are left out). Prints per
# size the peaks and rows/s; fails when a larger table's peak exceeds the smallest's by more than
# 1 MB of memory contexts or 3 MB of RssAnon (each batch's SPI tuple table used to stay until the
# CALL ended: 3000 more rows of 1.5 KB kept ~12 MB more memory contexts).
# Runs inside a throwaway cluster (scripts/pg-test.sh), as superuser (it reads /proc/self/status
# through pg_read_file and sets gemmaclf.max_input_tokens).
# Larger tables, e.g. RSS at 10k and 100k rows: GC_MEM_ROWS="10000 100000" (same checks).
set -eu
ROWS=${GC_MEM_ROWS:-1000 4000}
CTX_BOUND=$((1024 * 1024))
ANON_BOUND=$((3 * 1024 * 1024))
run() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
times=$(mktemp)
trap 'rm -f "$times"' EXIT

run <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
DROP TABLE IF EXISTS mem_samples;
CREATE TABLE mem_samples (n int, id int, ctx_bytes bigint, anon_bytes bigint);
-- the backend's private resident memory, from /proc/self/status (kB)
CREATE OR REPLACE FUNCTION mem_anon() RETURNS bigint LANGUAGE sql AS
$$ SELECT 1024 * (regexp_match(pg_read_file('/proc/self/status'),
                               'RssAnon:\s+(\d+) kB'))[1]::bigint $$;
CREATE OR REPLACE FUNCTION mem_sample() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id % 250 = 0 THEN
    INSERT INTO mem_samples
    SELECT TG_ARGV[0]::int, NEW.id, (SELECT sum(total_bytes) FROM pg_backend_memory_contexts),
           mem_anon();
  END IF;
  RETURN NEW;
END $$;
SQL

for n in $ROWS; do
    run -v n="$n" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS mem_t;
CREATE TABLE mem_t (id int PRIMARY KEY, body text, label text);
INSERT INTO mem_t SELECT i, repeat('bahut lamba comment hai ', 64) || i
FROM generate_series(1, :n) i;
VACUUM ANALYZE mem_t;
SELECT format('CREATE TRIGGER sample BEFORE UPDATE ON mem_t FOR EACH ROW '
              'EXECUTE FUNCTION mem_sample(%s)', :n) \gexec
SQL
    # a fresh session for the CALL; max_input_tokens = 1 keeps the forward passes short, the
    # texts are still read (and held by the SPI tuple table) in full
    t0=$(date +%s%N)
    PGOPTIONS="-c gemmaclf.max_input_tokens=1 -c client_min_messages=warning" \
        run -c "CALL gemmaclf_classify_table('mem_t', 'body', 'label', 64)"
    t1=$(date +%s%N)
    left=$(run -c "SELECT count(*) FROM mem_t WHERE label IS NULL")
    [ "$left" = 0 ] || { echo "$n rows: $left rows left unlabelled"; exit 1; }
    echo "$n $(((t1 - t0) / 1000000))" >>"$times"
done

while read -r n ms; do
    run -v n="$n" -v ms="$ms" <<'SQL'
SELECT format('%s rows: peak memory contexts %s MB, peak RssAnon %s MB (%s samples), %s rows/s',
              :n, round(max(ctx_bytes) / 1048576.0, 1), round(max(anon_bytes) / 1048576.0, 1),
              count(*), round(:n * 1000.0 / greatest(:ms, 1)))
FROM mem_samples WHERE n = :n;
SQL
done <"$times"
res=$(run -v ctx="$CTX_BOUND" -v anon="$ANON_BOUND" <<'SQL'
WITH p AS (SELECT n, max(ctx_bytes) AS ctx, max(anon_bytes) AS anon FROM mem_samples GROUP BY n),
     b AS (SELECT * FROM p ORDER BY n LIMIT 1)
SELECT string_agg(format('%s rows: %s more bytes of memory contexts and %s more of RssAnon '
                         'than %s rows', p.n, p.ctx - b.ctx, p.anon - b.anon, b.n), '; ')
FROM p, b WHERE p.n > b.n AND (p.ctx - b.ctx > :ctx OR p.anon - b.anon > :anon);
SQL
)
run -c "DROP TABLE mem_t, mem_samples" -c "DROP FUNCTION mem_sample(), mem_anon()"
if [ -n "$res" ]; then
    echo "memory grows with the table: $res"
    exit 1
fi
echo "memory flat: every size within 1 MB (memory contexts) and 3 MB (RssAnon) of the smallest"
