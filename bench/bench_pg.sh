#!/usr/bin/env bash
# PostgreSQL benchmark (not a test): throughput and latency of gemmaclf in throwaway clusters.
#   bench/bench_pg.sh [MODEL_DIR]     (default: $GEMMACLF_MODEL, else the bundled model, else
#                                      ../shared/reference/hf-trained-classifier)
# Measures, on the dev set (../shared/data/indo-hatespeech/dev.jsonl, 2,097 comments):
#   - rows/s of UPDATE t SET label = classify_hate(body)           (one call per row)
#   - rows/s of classify_hate(text[]) over arrays of 256           (batched)
#   - rows/s of CALL gemmaclf_classify_table(..., 256)             (batched, commits)
#   - first-call latency in a new connection, without and with shared_preload_libraries
#   - PSS (/proc/PID/smaps_rollup) of 8 backends that each classified, minus 8 that did not,
#     against the size of the model's weights
# Env: BENCH_THREADS (gemmaclf.threads, default 1), BENCH_CONNS (default 8), BENCH_CORETYPE
#      (OPENBLAS_CORETYPE in the servers' environment, e.g. SkylakeX; default: none),
#      BENCH_THROUGHPUT=0 (only first-call latency and memory: a quick run), PG_CONFIG (default
#      pg_config), BENCH_PORT (default 55497; it only names the socket file).
# Builds and installs first (make all install). The clusters are scripts/cluster.sh's (initdb +
# pg_ctl in a temporary directory). Run as root (the servers run as postgres; /proc of postgres).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODEL=${1:-${GEMMACLF_MODEL:-}}
if [ -z "$MODEL" ]; then
    if ls models/*/config.json >/dev/null 2>&1; then
        MODEL=$(dirname "$(ls models/*/config.json | head -1)")
    else
        MODEL=../shared/reference/hf-trained-classifier
    fi
fi
MODEL=$(cd "$MODEL" && pwd)
DEV=$(cd "${GC_SHARED:-../shared}/data/indo-hatespeech" && pwd)/dev.jsonl
TMPDEV=$(mktemp /tmp/gemmaclf-bench-XXXXXX.jsonl)
cp "$DEV" "$TMPDEV" && chmod 644 "$TMPDEV"
export BENCH_MODEL="$MODEL" BENCH_DEV="$TMPDEV"
export BENCH_THREADS=${BENCH_THREADS:-1} BENCH_CONNS=${BENCH_CONNS:-8} BENCH_CORETYPE=${BENCH_CORETYPE:-}
PG_CONFIG=${PG_CONFIG:-pg_config}
BIN=$("$PG_CONFIG" --bindir)
PORT=${BENCH_PORT:-55497}
. scripts/cluster.sh
trap 'rm -f "$TMPDEV"' EXIT

# BENCH_CORETYPE reaches the servers through their environment (and only OpenBLAS reads it)
if [ -n "$BENCH_CORETYPE" ]; then export OPENBLAS_CORETYPE=$BENCH_CORETYPE; fi

# in_cluster MODE SETTING...: bench/bench_pg_inner.sh MODE against a fresh cluster with these
# settings, then removed.
in_cluster() {
    local mode=$1
    shift
    cluster_run "$BIN" bench-pg "$PORT" "$@" -- sh "$ROOT/bench/bench_pg_inner.sh" "$mode"
}

make -s -j2 all PG_CONFIG="$PG_CONFIG" >/dev/null
make -s install PG_CONFIG="$PG_CONFIG" >/dev/null
echo "model: $MODEL ($(du -b "$MODEL/model.safetensors" | cut -f1) bytes of safetensors)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); gemmaclf.threads=$BENCH_THREADS"
echo
echo "== without shared_preload_libraries"
in_cluster "$([ "${BENCH_THROUGHPUT:-1}" = 0 ] && echo latency || echo full)" \
    "gemmaclf.model_path=$MODEL" "gemmaclf.threads=$BENCH_THREADS"
echo
echo "== with shared_preload_libraries = 'gemmaclf'"
in_cluster preload shared_preload_libraries=gemmaclf "gemmaclf.model_path=$MODEL" \
    "gemmaclf.threads=$BENCH_THREADS"
