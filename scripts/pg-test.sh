#!/bin/sh
# PostgreSQL tests: build, `make install`, then in throwaway clusters (pg_virtualenv):
#   1. the pg_regress suites (sql/*.sql vs expected/*.out): make installcheck
#   2. the basic suites again with shared_preload_libraries = 'gemmaclf'
#   3. two concurrent CALLs of gemmaclf_classify_table sharing a table (test/pg_concurrent.sh)
#   4. a BF16 copy of the reference model: weight cache in $PGDATA (test/pg_bf16.sh)
#   5. the agreement test (test/sql/agreement.sql): labels vs transformers on the dev set
# Ends with "postgres: N passed, M failed" (one per pg_regress test, one for agreement).
# Run as root (CI) or as a user who may write to the PostgreSQL install directories.
# GC_SHARED: the shared reference folder (default ../shared), exported as an absolute path.
set -u
cd "$(dirname "$0")/.."
GC_SHARED=$(cd "${GC_SHARED:-../shared}" && pwd) || { echo "reference data not found"; exit 1; }
export GC_SHARED
JOBS=${JOBS:-2}
# Python with torch for test/pg_bf16.sh (scripts/test.sh exports it; else the repo's .venv)
GC_PYTHON=${GC_PYTHON:-$(pwd)/.venv/bin/python}
export GC_PYTHON
LOG=$(mktemp /tmp/gemmaclf-pgtest-XXXXXX)
trap 'rm -f "$LOG"' EXIT
passed=0 failed=0

make -j"$JOBS" all && make install || { echo "postgres: 0 passed, 1 failed (build/install)"; exit 1; }

# pg_regress in a fresh cluster; $1 extra pg_virtualenv options, $2 REGRESS override.
# Every test of the run must report ok or FAILED: fewer results (none at all: pg_regress found no
# test, or stopped early) count as a failure.
regress() {
    if [ -n "$2" ]; then
        want=$(echo $2 | wc -w)
        pg_virtualenv $1 make installcheck REGRESS="$2" >"$LOG" 2>&1
    else
        want=$(ls sql/*.sql | grep -vc '/gemmaclf--')
        pg_virtualenv $1 make installcheck >"$LOG" 2>&1
    fi
    rc=$?
    grep -E '^(not )?ok |^test |tests (passed|failed)' "$LOG"
    p=$(grep -cE '^test .* \.\.\. ok|^ok ' "$LOG")
    f=$(grep -cE '^test .* \.\.\. FAILED|^not ok ' "$LOG")
    if [ "$rc" -ne 0 ]; then
        [ -f regression.diffs ] && cat regression.diffs
        [ "$f" -eq 0 ] && { f=1; tail -30 "$LOG"; }
    fi
    if [ $((p + f)) -lt "$want" ]; then
        echo "pg_regress reported $((p + f)) of $want tests"
        f=$((f + want - p - f))
    fi
    passed=$((passed + p)); failed=$((failed + f))
}

echo "== pg_regress"
regress "" ""
echo "== pg_regress with shared_preload_libraries = gemmaclf (postmaster loads the reference model)"
REF=$GC_SHARED/reference/hf-trained-classifier
regress "-o shared_preload_libraries=gemmaclf -o gemmaclf.model_path=$REF" \
    "classify classify_array scores trigger parallel model_info"
echo "== preloading: model and session come from the postmaster"
if pg_virtualenv -o shared_preload_libraries=gemmaclf -o "gemmaclf.model_path=$REF" \
    psql -X -At -c "CREATE EXTENSION gemmaclf" \
    -c "SELECT 'preloaded: ' || (gemmaclf_model_info()->>'preloaded')" \
    -c "SELECT 'label: ' || classify_hate('Sali')" 2>&1 | tee "$LOG" | grep -E '^(preloaded|label):' &&
    grep -q '^preloaded: true' "$LOG" && grep -q '^label: Hate' "$LOG"; then
    passed=$((passed + 1))
else
    cat "$LOG"; failed=$((failed + 1))
fi
echo "== two sessions share one gemmaclf_classify_table run"
if pg_virtualenv sh test/pg_concurrent.sh; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
echo "== BF16 checkpoint: converted once into \$PGDATA/gemmaclf_cache"
if pg_virtualenv sh test/pg_bf16.sh >"$LOG" 2>&1; then
    grep -v '^Creating\|^Dropping' "$LOG"
    passed=$((passed + 1))
else
    cat "$LOG"; failed=$((failed + 1))
fi
echo "== agreement with transformers (dev set)"
if pg_virtualenv sh -c 'psql -X -q -v ON_ERROR_STOP=1 -f test/sql/agreement.sql'; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
echo "postgres: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
