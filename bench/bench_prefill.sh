#!/bin/sh
# Prefill benchmark of the CPU engine on a random gemma-3-270m-shaped checkpoint, with the
# sgemm GFLOP/s OpenBLAS reaches on the same shapes in the same run.
#   bench/bench_prefill.sh [MODEL_DIR] [THREADS] [PROMPT_LEN] [ITERATIONS]
# MODEL_DIR defaults to /tmp/gc-bench-270m (generated with bench/gen_random_model.py if absent).
set -e
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/gc-bench-270m}
THREADS=${2:-2}
LEN=${3:-34}
ITERS=${4:-3}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
make -s build/libgemmaclf_core.a build/bench/bench_prefill
if [ ! -f "$DIR/config.json" ]; then
    "$PY" bench/gen_random_model.py "$DIR"
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
OPENBLAS_NUM_THREADS=$THREADS ./build/bench/bench_prefill "$DIR" "$THREADS" "$LEN" "$ITERS"
