#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test suite of gemmaclf:
#   C unit tests (plain and under ASan+UBSan), Python parity/training tests (.venv),
#   and the PostgreSQL suites (pg_regress + agreement test in a throwaway cluster).
# Every suite prints "<name>: N passed, M failed"; the last line sums them.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh || { echo "dependency installation failed"; exit 1; }

export GC_SHARED=${GC_SHARED:-$(cd "$root/../shared" 2>/dev/null && pwd)}
[ -d "$GC_SHARED/reference" ] || { echo "reference data not found (set GC_SHARED)"; exit 1; }
export GC_PYTHON=$root/.venv/bin/python
jobs=$(nproc 2>/dev/null || echo 2)

mkdir -p log
passed=0 failed=0 skipped=0

# run_suite NAME COMMAND...: runs it with output to the terminal and log/NAME.log, then adds
# the suite's "N passed, M failed" lines to the totals; a non-zero exit with no failure
# counted still counts as one failure (a crash must never look like success).
run_suite() {
  local name=$1; shift
  echo "=============== $name: $*"
  "$@" 2>&1 | tee "log/$name.log"
  local rc=${PIPESTATUS[0]}
  local p f s
  p=$(grep -aoE '[0-9]+ passed, [0-9]+ failed' "log/$name.log" | awk '{s+=$1} END {print s+0}')
  f=$(grep -aoE '[0-9]+ passed, [0-9]+ failed' "log/$name.log" | awk '{s+=$3} END {print s+0}')
  s=$(grep -acE '^(.*: )?skipped' "log/$name.log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$name: exited with status $rc"; fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "--------------- $name: exit $rc ($p passed, $f failed)"
}

run_suite build make -j"$jobs"
run_suite unit make -j"$jobs" unittest
run_suite asan make -j"$jobs" SANITIZE=1 unittest
for t in test/python/test_*.py; do
  [ -e "$t" ] || continue
  run_suite "$(basename "$t" .py)" "$GC_PYTHON" "$t"
done
if [ -x scripts/pg-test.sh ]; then
  run_suite postgres bash scripts/pg-test.sh
fi
# --- scale-out on Citus (issue 15): builds/installs Citus 13.2.2 once, then a 3-node cluster ---
run_suite citus bash test/citus/run.sh

echo
echo "gemmaclf: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
