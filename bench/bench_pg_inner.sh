#!/bin/sh
# Runs in a throwaway cluster of bench/bench_pg.sh (PGHOST, PGPORT, PGUSER, PGDATABASE set);
# $1 = full | latency | preload (only full measures rows/s).
set -eu
MODE=$1
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
# seconds of a statement, from psql's \timing
timed() { printf '\\timing on\n%s\n' "$1" | psql -X -q -v ON_ERROR_STOP=1 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1; }

q -c "CREATE EXTENSION IF NOT EXISTS gemmaclf" >/dev/null
echo "OpenBLAS kernels in the server: $(q -c "SELECT gemmaclf_model_info()->>'blas_core'")"
q <<SQL >/dev/null
DROP TABLE IF EXISTS bench;
CREATE TABLE bench AS
SELECT n::int AS id, l::jsonb->>'text' AS body, NULL::text AS label
FROM regexp_split_to_table(pg_read_file('$BENCH_DEV'), E'\n') WITH ORDINALITY AS x(l, n)
WHERE l <> '';
SQL
ROWS=$(q -c "SELECT count(*) FROM bench")
q -c "SELECT classify_hate('warm up')" >/dev/null   # page cache warm; not the first-call test

# wall ms and backend CPU ms (utime+stime from /proc, 10 ms ticks) of one statement
timed_cpu() {
    cat >/tmp/gemmaclf-bench-$$.sql <<SQL
SELECT pg_backend_pid() AS bpid \gset
\setenv BPID :bpid
\! awk '{ print (\$14 + \$15) * 10 }' /proc/\$BPID/stat > /tmp/gemmaclf-bench-cpu0-$$
\timing on
$1
\timing off
\! awk '{ print (\$14 + \$15) * 10 }' /proc/\$BPID/stat > /tmp/gemmaclf-bench-cpu1-$$
SQL
    wall=$(psql -X -q -v ON_ERROR_STOP=1 -f /tmp/gemmaclf-bench-$$.sql 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
    cpu=$(( $(cat /tmp/gemmaclf-bench-cpu1-$$) - $(cat /tmp/gemmaclf-bench-cpu0-$$) ))
    rm -f /tmp/gemmaclf-bench-$$.sql /tmp/gemmaclf-bench-cpu?-$$
    echo "$wall $cpu"
}
rate() { # rows, "wall_ms cpu_ms"
    set -- "$1" $2
    awk -v n="$1" -v ms="$2" -v cpu="$3" 'BEGIN { printf "%7.1f rows/s wall (%d rows in %.2f s); %7.1f rows per backend CPU-second\n", n / (ms / 1000), n, ms / 1000, (cpu > 0 ? n / (cpu / 1000) : 0) }'
}

if [ "$MODE" = full ]; then
    r=$(timed_cpu "UPDATE bench SET label = classify_hate(body);")
    printf 'per-row  UPDATE ... SET label = classify_hate(body): '; rate "$ROWS" "$r"
    r=$(timed_cpu "SELECT sum(cardinality(classify_hate(a))) FROM (SELECT array_agg(body) a FROM bench GROUP BY (id - 1) / 256) s;")
    printf 'batched  classify_hate(text[]), arrays of 256:       '; rate "$ROWS" "$r"
    q -c "UPDATE bench SET label = NULL" >/dev/null
    r=$(timed_cpu "SET client_min_messages = warning; CALL gemmaclf_classify_table('bench', 'body', 'label', 256);")
    printf 'batched  CALL gemmaclf_classify_table(..., 256):     '; rate "$ROWS" "$r"
fi

# First call in a new connection (median of 5): loads the model unless preloaded.
lat=""
for i in 1 2 3 4 5; do
    lat="$lat $(timed "SELECT classify_hate('Kya yaar');")"
done
med=$(echo $lat | tr ' ' '\n' | sort -n | sed -n 3p)
printf 'first classify_hate() in a new connection: median %s ms (all: %s)\n' "$med" "$(echo $lat)"

# Memory: PSS of N backends that each classified, minus N that ran the same query without
# the model; the PSS of their mappings of the weight cache's copies (the F32 weights and the
# n-gram head, shared page cache); and the PSS of every server process together (postmaster and
# all its children: the memory the cluster uses, however shared pages are attributed -- memory
# the postmaster allocated before forking is counted in every child, idle ones too, while a
# shared file is counted only in the processes that read it).
pss_of() { # $1 app name, $2 what: all | noshm | model -> sum of kB over those backends
    total=0
    for pid in $(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"); do
        case $2 in
        all) kb=$(awk '/^Pss:/ { print $2 }' /proc/$pid/smaps_rollup 2>/dev/null) ;;
        noshm) kb=$(awk '/^Pss:/ { p = $2 } /^Pss_Shmem:/ { s = $2 } END { print p - s }' /proc/$pid/smaps_rollup 2>/dev/null) ;;
        model) kb=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { m = ($6 ~ /\/gemmaclf_cache\/gemmaclf-/) } m && /^Pss:/ { t += $2 } END { print t + 0 }' /proc/$pid/smaps 2>/dev/null) ;;
        esac
        total=$((total + ${kb:-0}))
    done
    echo $total
}
spawn() { # $1 app name, $2 statement run before sleeping
    for i in $(seq "$BENCH_CONNS"); do
        PGAPPNAME=$1 psql -X -q -c "$2" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
    done
}
spawn gc_idle "SELECT count(length('comment ' || i)) FROM generate_series(1, 20) i"
spawn gc_busy "SELECT count(classify_hate('comment ' || i)) FROM generate_series(1, 20) i"
for _ in $(seq 240); do
    n=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('gc_idle', 'gc_busy') AND query LIKE '%pg_sleep%'")
    [ "$n" -ge $((2 * BENCH_CONNS)) ] && break
    sleep 0.5
done
idle=$(pss_of gc_idle all); busy=$(pss_of gc_busy all)
idle_ns=$(pss_of gc_idle noshm); busy_ns=$(pss_of gc_busy noshm)
model=$(pss_of gc_busy model)
pm=$(head -1 "$(q -c "SHOW data_directory")/postmaster.pid")
server=0
for pid in $pm $(ps -o pid= --ppid "$pm"); do
    kb=$(awk '/^Pss:/ { print $2 }' /proc/$pid/smaps_rollup 2>/dev/null)
    server=$((server + ${kb:-0}))
done
wbytes=$(q -c "SELECT (gemmaclf_model_info()->>'weight_bytes')::bigint")
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('gc_idle', 'gc_busy')" >/dev/null
wait 2>/dev/null || true
awk -v b="$busy" -v i="$idle" -v bn="$busy_ns" -v in_="$idle_ns" -v m="$model" -v w="$wbytes" -v n="$BENCH_CONNS" -v s="$server" 'BEGIN {
    W = w / 1048576;
    printf "PSS of %d backends that classified: %.1f MiB; of %d that did not: %.1f MiB (weights: %.1f MiB)\n", n, b / 1024, n, i / 1024, W;
    printf "  weight cache mappings (weights, n-gram head), all %d together: %.1f MiB = %.2f x the weights\n", n, m / 1024, m / 1024 / W;
    printf "  every server process together (with those %d backends): %.1f MiB\n", 2 * n, s / 1024;
    printf "  extra PSS for classifying (model + per-backend buffers): %.1f MiB = %.2f x one copy (%.1f MiB excluding PG shared memory)\n", (b - i) / 1024, (b - i) / 1024 / W, (bn - in_) / 1024 }'
