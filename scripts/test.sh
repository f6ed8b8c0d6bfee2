#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test suite of gemmaclf:
#   C unit tests (plain and under ASan+UBSan), the CUDA plugin's code through the CPU emulation
#   (scripts/cuda-emu-check.sh), Python parity/training tests (.venv), and the PostgreSQL suites
#   on PostgreSQL 15 and 18
#   (scripts/pg-test.sh: pg_regress, concurrency, BF16 cache, agreement, in throwaway clusters),
#   and the scale-out suite on a Citus cluster (test/citus/run.sh, PostgreSQL 15).
# Every suite prints "<name>: N passed, M failed"; the last line sums them. test/suites.txt
# says what each suite must print (tally lines, minimum checks) and which skips it may print;
# anything short of it is a failure. docs/testing.md describes the suites.
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

# Every suite must print what test/suites.txt requires of it: its tally lines with at least the
# expected number of checks (a suite that runs nothing, or exits 0 without a tally, fails), and
# no skip that is not listed there. expect_ok NAME LOG prints the shortfalls and the number of
# (allowed) skips as its last line; its status is non-zero when something falls short.
expect_ok() {
  awk -v suite="$1" '
    FNR == NR {
      if (match($0, /[A-Za-z0-9_.\/-]+: [0-9]+ passed, [0-9]+ failed/)) {
        split(substr($0, RSTART, RLENGTH), w, /: | passed, | failed/)
        count[w[1]] += w[2] + w[3]; tallies++; checks += w[2] + w[3]
      }
      if (match($0, /(^|: )skipped: /)) skip[++ns] = substr($0, RSTART + RLENGTH)
      next
    }
    $1 == "tally" && $2 == suite { need[$3] = $4; listed = 1 }
    $1 == "exit" && $2 == suite { listed = 1; exit_only = 1 }
    $1 == "skip" && $2 == suite { t = $0; sub(/^[ \t]*skip[ \t]+[^ \t]+[ \t]+/, "", t); allow[++na] = t }
    END {
      bad = 0
      for (t in need) {
        if (!(t in count)) { print suite ": no tally line \"" t ": N passed, M failed\""; bad = 1 }
        else if (count[t] < need[t]) {
          print suite ": " t " ran " count[t] " checks, expected at least " need[t]; bad = 1
        }
      }
      if (!listed && checks < 1) { print suite ": no tally line with at least one check"; bad = 1 }
      for (i = 1; i <= ns; i++) {
        ok = 0
        for (j = 1; j <= na; j++) if (index(skip[i], allow[j]) == 1) ok = 1
        if (!ok) { print suite ": skip not in test/suites.txt: " skip[i]; bad = 1 }
      }
      print ns + 0
      exit bad
    }' "$2" test/suites.txt
}

# run_suite NAME COMMAND...: runs it with output to the terminal and log/NAME.log, then adds
# the suite's "N passed, M failed" lines to the totals; a non-zero exit with no failure
# counted, or output short of test/suites.txt, counts as one more failure (a crash or a suite
# that checked nothing must never look like success).
run_suite() {
  local name=$1; shift
  echo "=============== $name: $*"
  "$@" 2>&1 | tee "log/$name.log"
  local rc=${PIPESTATUS[0]}
  local p f s report
  p=$(grep -aoE '[0-9]+ passed, [0-9]+ failed' "log/$name.log" | awk '{s+=$1} END {print s+0}')
  f=$(grep -aoE '[0-9]+ passed, [0-9]+ failed' "log/$name.log" | awk '{s+=$3} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$name: exited with status $rc"; fi
  if ! report=$(expect_ok "$name" "log/$name.log"); then
    f=$((f + 1))
  fi
  s=$(printf '%s\n' "$report" | tail -1)
  printf '%s\n' "$report" | sed '$d'
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "--------------- $name: exit $rc ($p passed, $f failed, $s allowed skips)"
}

run_suite build make -j"$jobs"
run_suite unit make -j"$jobs" unittest
run_suite asan make -j"$jobs" SANITIZE=1 unittest
run_suite cuda-emu bash scripts/cuda-emu-check.sh
for t in test/python/test_*.py; do
  [ -e "$t" ] || continue
  run_suite "$(basename "$t" .py)" "$GC_PYTHON" "$t"
done
run_suite postgres bash scripts/pg-test.sh
# --- scale-out on Citus (issue 15): builds/installs Citus 13.2.2 once, then a 3-node cluster ---
run_suite citus bash test/citus/run.sh

echo
echo "gemmaclf: $passed passed, $failed failed, $skipped skipped (all in test/suites.txt)"
[ "$failed" -eq 0 ]
