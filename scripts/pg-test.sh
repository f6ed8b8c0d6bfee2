#!/bin/sh
# PostgreSQL tests: build, `make install`, then in throwaway clusters (pg_virtualenv):
#   1. the pg_regress suites (sql/*.sql vs expected/*.out): make installcheck
#   2. the same suites for the basic functions with shared_preload_libraries = 'gemmaclf'
#   3. the agreement test (test/sql/agreement.sql): labels vs transformers on the dev set
# Run as root (CI) or as a user who may write to the PostgreSQL install directories.
# GC_SHARED: the shared reference folder (default ../shared), exported as an absolute path.
set -eu
cd "$(dirname "$0")/.."
GC_SHARED=$(cd "${GC_SHARED:-../shared}" && pwd)
export GC_SHARED
JOBS=${JOBS:-2}

make -j"$JOBS" all
make install

run_regress() {
    # $1: extra pg_virtualenv options; $2: REGRESS override (empty = all suites)
    if [ -n "$2" ]; then
        pg_virtualenv $1 sh -c "make installcheck REGRESS='$2' || { cat regression.diffs; exit 1; }"
    else
        pg_virtualenv $1 sh -c 'make installcheck || { cat regression.diffs; exit 1; }'
    fi
}

echo "== pg_regress"
run_regress "" ""
echo "== pg_regress with shared_preload_libraries = gemmaclf"
run_regress "-o shared_preload_libraries=gemmaclf" "classify classify_array scores trigger parallel model_info"
echo "== agreement with transformers (dev set)"
pg_virtualenv sh -c 'psql -X -q -v ON_ERROR_STOP=1 -f test/sql/agreement.sql'
echo "pg-test: all passed"
