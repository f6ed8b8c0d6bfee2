#!/usr/bin/env bash
# Background labelling benchmark (not a test), in a throwaway cluster with
# shared_preload_libraries = 'gemmaclf'. Prints:
#   1. the latency a single-row INSERT pays (p50, p99; pgbench --log, BENCH_CLIENTS clients,
#      BENCH_INSERTS inserts per table) into a table without trigger, with the BEFORE trigger
#      gemmaclf_flag_hate (labels inside the INSERT), and a watched table (gemmaclf_watch; the
#      workers label meanwhile, on the same cores);
#   2. rows/s labelling a backlog of the 2,097 dev comments: gemmaclf.workers background
#      workers (from gemmaclf_watch() until no row waits) next to classify_hate(text[]) over
#      the same comments in one backend, alternately, BENCH_RUNS (5) times each: wall rows/s
#      and rows per CPU-second of the working processes (the fair measure on a shared machine),
#      and the medians;
#   3. the time from INSERT to label (p50, p99) under a steady stream of BENCH_RATE single-row
#      INSERTs per second for BENCH_SECONDS seconds (pgbench --rate), from the row's
#      clock_timestamp() at INSERT to that of the worker's UPDATE that labels it.
#
#   bench/bench_watch.sh [MODEL_DIR]     (default: the bundled model, installed by make install)
# Env: PG_CONFIG (default pg_config), GC_BENCH_PORT (default 55411), BENCH_WORKERS (1),
#      BENCH_CLIENTS (8), BENCH_INSERTS (1000), BENCH_RUNS (5), BENCH_RATE (50),
#      BENCH_SECONDS (30).
# Builds and installs first (for PostgreSQL 15 hold /tmp/gemmaclf-pg15.lock on a shared
# machine). fsync = off: the numbers are the CPU's, not the disk's. gemmaclf.threads = 1.
set -eu
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
BIN=$("$PG_CONFIG" --bindir)
PORT=${GC_BENCH_PORT:-55411}
MODEL=${1:-}
[ -n "$MODEL" ] && MODEL=$(cd "$MODEL" && pwd)
WORKERS=${BENCH_WORKERS:-1}
CLIENTS=${BENCH_CLIENTS:-8}
INSERTS=${BENCH_INSERTS:-1000}
RATE=${BENCH_RATE:-50}
SECONDS_=${BENCH_SECONDS:-30}
DEV=$(cd "${GC_SHARED:-../shared}/data/indo-hatespeech" && pwd)/dev.jsonl

make -s -j2 all PG_CONFIG="$PG_CONFIG" >/dev/null
make -s install PG_CONFIG="$PG_CONFIG" >/dev/null

. scripts/cluster.sh
trap cluster_remove EXIT
cluster_create "$BIN" benchwatch "$PORT" shared_preload_libraries=gemmaclf "gemmaclf.workers=$WORKERS" \
    gemmaclf.threads=1 "gemmaclf.model_path=$MODEL" || exit 1
dir=$CLUSTER_DIR
cluster_start || exit 1
export PGHOST=$dir PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
# milliseconds of the statements given on stdin, summed (psql's \timing)
timed_ms() {
    { echo '\timing on'; cat; } | "$BIN/psql" -X -q -v ON_ERROR_STOP=1 2>&1 |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{ s += $1 } END { printf "%.1f", s }'
}

q >/dev/null <<SQL
CREATE EXTENSION gemmaclf;
CREATE TABLE dev AS
SELECT n::int AS id, l::jsonb->>'text' AS body
FROM regexp_split_to_table(pg_read_file('$DEV'), E'\n') WITH ORDINALITY AS x(l, n) WHERE l <> '';
ALTER TABLE dev ADD PRIMARY KEY (id);
SELECT classify_hate('warm up');
SQL
N=$(q -c "SELECT count(*) FROM dev")
echo "model: $(q -c "SELECT gemmaclf_model_info()->>'model_path'")"
echo "server: $(q -c "SHOW server_version"); machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "gemmaclf.workers = $WORKERS, gemmaclf.batch_size = $(q -c "SHOW gemmaclf.batch_size"), gemmaclf.threads = 1, fsync = off"

# ---- 1. INSERT latency ----
echo
echo "== 1. single-row INSERT latency, $CLIENTS clients, $INSERTS inserts each table (pgbench --log)"
per_client=$(( (INSERTS + CLIENTS - 1) / CLIENTS ))
for t in plain trigger watched; do
    q -c "CREATE TABLE ins_$t (id bigserial PRIMARY KEY, body text, label text)" >/dev/null
done
q -c "CREATE TRIGGER flag BEFORE INSERT OR UPDATE OF body ON ins_trigger FOR EACH ROW
      EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
      SELECT gemmaclf_watch('ins_watched', 'body', 'label')" >/dev/null
for t in plain trigger watched; do   # scripts, and a warm-up run each (connections, caches)
    printf '\\set k random(1, %d)\nINSERT INTO ins_%s (body) SELECT body FROM dev WHERE id = :k;\n' \
        "$N" "$t" >"$dir/ins_$t.sql"
    "$BIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -t 5 -f "$dir/ins_$t.sql" >/dev/null 2>&1
done
q -c "DO \$\$ BEGIN WHILE EXISTS (SELECT FROM ins_watched WHERE label IS NULL) LOOP
      PERFORM pg_sleep(0.01); END LOOP; END \$\$" >/dev/null
for t in plain trigger watched; do
    (cd "$dir" && "$BIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -t "$per_client" \
        -f "$dir/ins_$t.sql" --log --log-prefix="$dir/lat_$t" >/dev/null 2>&1)
    cat "$dir"/lat_"$t".* | awk '{ print $3 / 1000 }' | sort -n | awk -v t="$t" '
        { v[NR] = $1 }
        END { printf "  %-8s %5d inserts   p50 %7.2f ms   p99 %7.2f ms\n", t, NR,
              v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)] }'
done
q -c "DO \$\$ BEGIN WHILE EXISTS (SELECT FROM ins_watched WHERE label IS NULL) LOOP
      PERFORM pg_sleep(0.01); END LOOP; END \$\$" >/dev/null
echo "  (watched: every row labelled afterwards: $(q -c "SELECT count(*) FILTER (WHERE label IS NOT NULL) || ' of ' || count(*) FROM ins_watched"))"

# ---- 2. backlog throughput ----
# Wall rows/s, and rows per CPU-second of the processes doing the work (utime + stime from
# /proc, 10 ms ticks): on a shared machine the second is the fair comparison.
echo
echo "== 2. labelling a backlog of $N dev comments: workers vs classify_hate(text[]), alternately"
cpu_ms() { for p in "$@"; do awk '{ print ($14 + $15) * 10 }' "/proc/$p/stat"; done | awk '{ s += $1 } END { print s + 0 }'; }
report() { # LABEL MS CPU_MS FILE: prints a line; appends "wall_rows_per_s cpu_rows_per_s" to $dir/FILE
    awk -v n="$N" -v ms="$2" -v cpu="$3" -v w="$1" -v run="$run" 'BEGIN {
        printf "  run %d  %-36s %7.1f rows/s wall (%.2f s), %7.1f rows per CPU-second\n", run, w,
               n / (ms / 1000), ms / 1000, (cpu > 0 ? n / (cpu / 1000) : 0) }'
    awk -v n="$N" -v ms="$2" -v cpu="$3" 'BEGIN { print n / (ms / 1000), (cpu > 0 ? n / (cpu / 1000) : 0) }' \
        >>"$dir/$4"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
q -c "CREATE TABLE backlog AS SELECT id, body, NULL::text AS label FROM dev" >/dev/null
RUNS=${BENCH_RUNS:-5}
for run in $(seq 1 "$RUNS"); do
    cat >"$dir/array.sql" <<SQL
SELECT pg_backend_pid() AS bpid \gset
\setenv BPID :bpid
\! awk '{ print (\$14 + \$15) * 10 }' /proc/\$BPID/stat > $dir/cpu0
\timing on
SELECT count(*) FROM unnest((SELECT classify_hate(array_agg(body)) FROM dev));
\timing off
\! awk '{ print (\$14 + \$15) * 10 }' /proc/\$BPID/stat > $dir/cpu1
SQL
    ms=$("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -f "$dir/array.sql" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
    report "classify_hate(text[]), one backend:" "$ms" $(( $(cat "$dir/cpu1") - $(cat "$dir/cpu0") )) array
    q -c "VACUUM backlog" >/dev/null
    pids=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'gemmaclf watch'")
    c0=$(cpu_ms $pids)
    ms=$(timed_ms <<'SQL'
SELECT gemmaclf_watch('backlog', 'body', 'label');
DO $$ BEGIN WHILE EXISTS (SELECT FROM backlog WHERE label IS NULL) LOOP PERFORM pg_sleep(0.005); END LOOP; END $$;
SQL
)
    report "background workers ($WORKERS):" "$ms" $(( $(cpu_ms $pids) - c0 )) workers
    q -c "SELECT gemmaclf_unwatch('backlog'); UPDATE backlog SET label = NULL" >/dev/null
done
aw=$(cut -d' ' -f1 "$dir/array" | median); ac=$(cut -d' ' -f2 "$dir/array" | median)
ww=$(cut -d' ' -f1 "$dir/workers" | median); wc_=$(cut -d' ' -f2 "$dir/workers" | median)
# the ratio of each run's pair (same minute, same machine state): their median is the figure
# least moved by a noisy machine
pair=$(paste -d' ' "$dir/workers" "$dir/array" | awk '{ print 100 * $2 / $4 }' | median)
pairs=$(paste -d' ' "$dir/workers" "$dir/array" | awk '{ printf "%s%.0f %%", (NR > 1 ? ", " : ""), 100 * $2 / $4 }')
awk -v aw="$aw" -v ac="$ac" -v ww="$ww" -v wc="$wc_" -v r="$RUNS" -v pair="$pair" -v pairs="$pairs" 'BEGIN {
    printf "  median of %d: classify_hate(text[]) %.1f rows/s wall, %.1f per CPU-second; workers %.1f rows/s wall, %.1f per CPU-second\n", r, aw, ac, ww, wc
    printf "  workers / classify_hate(text[]): %.0f %% per CPU-second, %.0f %% wall (medians)\n", 100 * wc / ac, 100 * ww / aw
    printf "  per run, workers / classify_hate(text[]) per CPU-second: %s; median %.0f %%\n", pairs, pair }'

# ---- 3. INSERT -> label under a steady stream ----
echo
echo "== 3. time from INSERT to label, steady stream of $RATE rows/s for $SECONDS_ s (pgbench --rate, 4 clients)"
q >/dev/null <<'SQL'
CREATE TABLE stream (id bigserial PRIMARY KEY, body text, label text,
                     inserted_at timestamptz DEFAULT clock_timestamp(), labelled_at timestamptz);
CREATE FUNCTION stamp_label() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.label IS NULL AND NEW.label IS NOT NULL THEN NEW.labelled_at := clock_timestamp(); END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER stamp_label BEFORE UPDATE ON stream FOR EACH ROW EXECUTE FUNCTION stamp_label();
SELECT gemmaclf_watch('stream', 'body', 'label');
SQL
printf '\\set k random(1, %d)\nINSERT INTO stream (body) SELECT body FROM dev WHERE id = :k;\n' "$N" \
    >"$dir/stream.sql"
pids=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'gemmaclf watch'")
c0=$(cpu_ms $pids)
(cd "$dir" && "$BIN/pgbench" -n -c 4 -j 4 -R "$RATE" -T "$SECONDS_" -f "$dir/stream.sql" >/dev/null 2>&1)
status=$(q -F ' ' -c "SELECT pending, rows_per_s, lag FROM gemmaclf_watch_status WHERE rel = 'stream'::regclass")
q -c "DO \$\$ BEGIN WHILE EXISTS (SELECT FROM stream WHERE label IS NULL) LOOP
      PERFORM pg_sleep(0.01); END LOOP; END \$\$" >/dev/null
cpu=$(( $(cpu_ms $pids) - c0 ))
q -F ' ' -c "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
             FROM (SELECT extract(epoch FROM labelled_at - inserted_at) * 1000 AS ms FROM stream) s" |
    awk '{ printf "  %d rows   p50 %7.1f ms   p99 %7.1f ms   max %7.1f ms\n", $1, $2, $3, $4 }'
echo "  status view at the end of the stream (pending, rows/s, lag): $status"
awk -v cpu="$cpu" -v n="$(q -c "SELECT count(*) FROM stream")" 'BEGIN {
    printf "  workers CPU: %.2f s for %d rows = %.2f ms per row (small batches: wake-ups, claims, commits)\n", cpu / 1000, n, cpu / n }'
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
