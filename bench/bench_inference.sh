#!/usr/bin/env bash
# Inference worker benchmark (not a test; issue 12): per-row classify_hate from 1, 8, 32 and 64
# concurrent connections (pgbench, one comment of the dev set per transaction), through the
# inference worker and in-backend (gemmaclf.use_inference_worker = off), in one run and one
# throwaway cluster. Prints rows/s and p50/p99 latency per row, and the worker's mean batch size.
#   bench/bench_inference.sh
# Env:
#   PG_CONFIG      the server to use (default: pg_config on PATH); gemmaclf must be installed
#                  for it (make install PG_CONFIG=...)
#   BENCH_PORT     port of the throwaway cluster (default 55498); socket in its directory only
#   BENCH_MODEL    model directory (default ../shared/reference/hf-trained-classifier)
#   BENCH_DEVICE   gemmaclf.device of the worker and the backends (default auto: cuda when usable)
#   BENCH_SECONDS  seconds per measurement (default 10)
#   BENCH_CONNS    connection counts (default "1 8 32 64")
#   BENCH_WAITS    gemmaclf.batch_wait values (ms) to measure the worker with (default "0")
#   BENCH_MODES    "worker backend" (default) or one of them
# Run as root (the cluster runs as postgres) or as the owner of a writable /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
BIN=$("$PG_CONFIG" --bindir)
PORT=${BENCH_PORT:-55498}
MODEL=$(cd "${BENCH_MODEL:-${GC_SHARED:-../shared}/reference/hf-trained-classifier}" && pwd)
DEV=$(cd "${GC_SHARED:-../shared}/data/indo-hatespeech" && pwd)/dev.jsonl
DEVICE=${BENCH_DEVICE:-auto}
SECONDS_EACH=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-1 8 32 64}
WAITS=${BENCH_WAITS:-0}
MODES=${BENCH_MODES:-worker backend}

. scripts/cluster.sh
trap cluster_remove EXIT
cluster_create "$BIN" bench-inference "$PORT" max_connections=100 shared_preload_libraries=gemmaclf \
    gemmaclf.inference_worker=on "gemmaclf.device=$DEVICE" "gemmaclf.model_path=$MODEL" || exit 1
dir=$CLUSTER_DIR
cp "$DEV" "$dir/dev.jsonl" && chmod 644 "$dir/dev.jsonl"
cluster_start || exit 1
export PGHOST=$dir PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

psql <<SQL
CREATE EXTENSION gemmaclf;
CREATE TABLE dev AS
SELECT row_number() OVER () AS id, l::jsonb->>'text' AS body
FROM regexp_split_to_table(pg_read_file('$dir/dev.jsonl'), E'\n') l WHERE l <> '';
ALTER TABLE dev ADD PRIMARY KEY (id);
SQL
for i in $(seq 1 300); do
    [ "$(psql -c "SELECT state FROM gemmaclf_inference_status")" = ready ] && break
    sleep 0.1
done
cat >"$dir/row.sql" <<'SQL'
\set id random(1, 2097)
SELECT classify_hate(body) FROM dev WHERE id = :id;
SQL
chmod 644 "$dir/row.sql"

echo "model: $MODEL"
echo "server: $("$BIN/postgres" --version); worker: $(psql -c "SELECT state || ' on ' || coalesce(device, '?') || ', batch_size ' || batch_size FROM gemmaclf_inference_status")"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "per-row classify_hate via pgbench, ${SECONDS_EACH} s per line"
printf '%-8s %-9s %6s %10s %10s %10s %11s\n' mode wait_ms conns rows/s p50_ms p99_ms mean_batch

# run MODE WAIT CONNS: one pgbench measurement, one output line
run() {
    local mode=$1 wait=$2 c=$3 opts="" b0 t0 b1 t1 tps lat
    [ "$mode" = backend ] && opts="-c gemmaclf.use_inference_worker=off"
    rm -f "$dir"/log*
    b0=$(psql -c "SELECT batches FROM gemmaclf_inference_status")
    t0=$(psql -c "SELECT texts FROM gemmaclf_inference_status")
    out=$(cd "$dir" && PGOPTIONS=$opts "$BIN/pgbench" -n -c "$c" -j "$(( c < 4 ? c : 4 ))" \
        -T "$SECONDS_EACH" -f "$dir/row.sql" -l --log-prefix="$dir/log" 2>&1) ||
        { echo "$out"; return 1; }
    b1=$(psql -c "SELECT batches FROM gemmaclf_inference_status")
    t1=$(psql -c "SELECT texts FROM gemmaclf_inference_status")
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
    lat=$(cat "$dir"/log* | awk '{print $3}' | sort -n |
          awk '{v[NR]=$1} END {i50=int(NR*0.5); i99=int(NR*0.99); if (i50<1) i50=1; if (i99<1) i99=1;
                              printf "%.1f %.1f", v[i50]/1000, v[i99]/1000}')
    local mb="-"
    [ "$mode" = worker ] && [ $((b1 - b0)) -gt 0 ] && mb=$(awk "BEGIN{printf \"%.1f\", ($t1-$t0)/($b1-$b0)}")
    printf '%-8s %-9s %6s %10.1f %10s %10s %11s\n' "$mode" "$wait" "$c" "$tps" ${lat% *} ${lat#* } "$mb"
}

for mode in $MODES; do
    if [ "$mode" = worker ]; then
        for w in $WAITS; do
            psql -c "ALTER SYSTEM SET gemmaclf.batch_wait = '${w}ms'" -c "SELECT pg_reload_conf()" >/dev/null
            for _ in $(seq 1 100); do
                [ "$(psql -c "SELECT batch_wait_ms = $w FROM gemmaclf_inference_status")" = t ] && break
                # the worker reads the setting when it next wakes: wake it with one call
                psql -c "SELECT classify_hate('warm up')" >/dev/null
                sleep 0.1
            done
            for c in $CONNS; do run worker "$w" "$c"; done
        done
    else
        for c in $CONNS; do run backend - "$c"; done
    fi
done
