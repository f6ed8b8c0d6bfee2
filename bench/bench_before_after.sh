#!/usr/bin/env bash
# Before/after comparison of two revisions in one run (a refactoring must not be slower):
#   bench/bench_before_after.sh OLD_REV [NEW_REV] [ROUNDS]
# Builds each revision in its own temporary worktree, then alternates
#   bench/bench_prefill.sh (random gemma-3-270m-shaped checkpoint, 2 threads, 34-token prompts)
# OLD, NEW, OLD, NEW, ... ROUNDS times (default 3; alternating spreads the machine's drift over
# both), and finally bench/bench_pg.sh once per revision (PostgreSQL 15, the bundled model; it runs
# `make install`, so run it as root and when nothing else uses PostgreSQL 15). Prints every
# prefill line and a median per revision, then each revision's PostgreSQL numbers.
# NEW_REV defaults to HEAD. Needs the repository's .venv (the random checkpoint generator).
# BENCH_PARTS (default "prefill pg"): which of the two to run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OLD=$(git rev-parse --short "${1:?usage: bench/bench_before_after.sh OLD_REV [NEW_REV] [ROUNDS]}")
NEW=$(git rev-parse --short "${2:-HEAD}")
ROUNDS=${3:-3}
TMP=$(mktemp -d /tmp/gemmaclf-before-after-XXXXXX)
chmod 755 "$TMP"   # the server (user postgres) reads the models in the worktrees
cleanup() {
    git worktree remove --force "$TMP/old" >/dev/null 2>&1 || true
    git worktree remove --force "$TMP/new" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
for side in old new; do
    rev=$OLD; [ "$side" = new ] && rev=$NEW
    git worktree add -q --detach "$TMP/$side" "$rev"
    ln -s "$ROOT/.venv" "$TMP/$side/.venv"
    ln -s "$(cd "${GC_SHARED:-../shared}" && pwd)" "$TMP/shared"  2>/dev/null || true
    make -s -C "$TMP/$side" -j2 build/libgemmaclf_core.a build/bench/bench_prefill >/dev/null
done
echo "old: $OLD ($(git log -1 --format=%s "$OLD" | cut -c1-70))"
echo "new: $NEW ($(git log -1 --format=%s "$NEW" | cut -c1-70))"
echo "machine: $(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"

# every line is printed; the medians are of the batch-64 line's tokens/s
PARTS=${BENCH_PARTS:-prefill pg}
case " $PARTS " in *" prefill "*) ;; *) ROUNDS=0 ;; esac
for i in $(seq "$ROUNDS"); do
    for side in old new; do
        out=$(cd "$TMP/$side" && sh bench/bench_prefill.sh /tmp/gc-bench-270m 2 34 3 2>&1 | grep -v '^machine:')
        printf '%s\n' "$out" | sed "s/^/prefill $side round $i: /"
        printf '%s\n' "$out" | grep -E '^prefill batch 64 ' | grep -oE '[0-9.]+ tokens/s' | cut -d' ' -f1 >>"$TMP/$side.tps"
    done
done
for side in old new; do
    [ "$ROUNDS" -gt 0 ] || break
    echo "prefill $side: median $(sort -n "$TMP/$side.tps" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}') tokens/s at batch 64 over $ROUNDS runs"
done
echo "load average after prefill: $(cut -d' ' -f1-3 /proc/loadavg)"
for side in old new; do
    case " $PARTS " in *" pg "*) ;; *) break ;; esac
    echo "=============== bench/bench_pg.sh, $side"
    (cd "$TMP/$side" && GC_SHARED="$TMP/shared" bash bench/bench_pg.sh 2>&1)
done
# leave the PostgreSQL 15 install as this checkout built it
make -s -j2 all >/dev/null && make -s install >/dev/null
