#!/usr/bin/env bash
# The inference worker (issue 12), in a cluster started with shared_preload_libraries = gemmaclf,
# gemmaclf.inference_worker = on, gemmaclf.device = cpu and gemmaclf.model_path = the reference
# classifier (scripts/pg-test.sh: any server version; PGHOST/PGPORT/PGUSER come from there).
#   1. the worker runs, with backend_type "gemmaclf inference", and serves the session's model
#   2. the 2,097 dev comments, per-row classify_hate_scores from 16 concurrent connections through
#      the worker: labels identical to in-backend ones, scores within 1e-5; text[] too
#   3. batching: 7 requests queued behind a held one become one forward pass
#   4. routing: another model, use_inference_worker = off, another gemmaclf.precision,
#      max_input_tokens > 2048 run in-backend;
#      a 200 kB text and the trigger and procedure go through the worker with in-backend results;
#      so do the background labelling workers' batches (gemmaclf_watch)
#   5. cancel while waiting (queued, and taken by the worker): the cancel comes at once, the
#      request is dropped and the worker discards its result
#   6. the worker exits (SIGTERM) while holding a request: device = cpu gets an ERROR,
#      device = auto a result; the postmaster restarts the worker; the cluster does not restart
#   7. the worker cannot start its session (device = cuda without a GPU): a clear ERROR with HINT
#   8. kill -9 of the worker: PostgreSQL restarts the whole cluster (any process attached to
#      shared memory that dies by a signal may have corrupted it); the waiting backend gets an
#      error, never a hang, and the worker is back afterwards
# Pinned labels: 'Sali' -> Hate and 'Randi saali mc' -> Extreme Hate are transformers' answers
# for these dev comments (reference/hf-trained-classifier/hf_predictions_dev.json); every other
# result is compared with the in-backend one computed in the same run.
# No timing: the worker is held at a known point with gemmaclf_inference_hold() (test hook) and
# every wait is for a condition, with a bound. Prints "inference: N passed, M failed".
set -u
DEV=$GC_SHARED/data/indo-hatespeech/dev.jsonl
T=$(mktemp -d /tmp/gemmaclf-inference-XXXXXX)
chmod 777 "$T"
trap 'rm -rf "$T"' EXIT
passed=0 failed=0

result() { # NAME CONDITION-EXIT-STATUS [DETAIL]
    if [ "$2" -eq 0 ]; then
        echo "ok: $1${3:+ ($3)}"; passed=$((passed + 1))
    else
        echo "FAILED: $1${3:+ ($3)}"; failed=$((failed + 1))
    fi
}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
# wait_for SQL [SECONDS]: until SQL returns t (errors, e.g. during a restart, count as not yet)
wait_for() {
    local end=$((SECONDS + ${2:-120}))
    while [ $SECONDS -lt $end ]; do
        [ "$(q -c "$1" 2>/dev/null)" = t ] && return 0
        sleep 0.1
    done
    echo "timed out waiting for: $1"
    return 1
}
status() { q -c "SELECT $1 FROM gemmaclf_inference_status"; }
# bg NAME SETTINGS SQL: a session in the background (application_name NAME), output in $T/NAME
bg() {
    PGAPPNAME=$1 PGOPTIONS=$2 timeout 300 psql -X -q -At -c "$3" >"$T/$1" 2>&1 &
    BGPID=$!
}
backend_pid() { q -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"; }

q -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS gemmaclf" || exit 1

# ---- 1. the worker
wait_for "SELECT state = 'ready' FROM gemmaclf_inference_status"
n=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'gemmaclf inference%'")
st=$(status "state || ' ' || device || ' ' || (pid IS NOT NULL)")
result "one worker in pg_stat_activity (backend_type gemmaclf inference), ready on the cpu" \
    "$([ "$n" = 1 ] && [ "$st" = "ready cpu true" ]; echo $?)" "$n worker(s), $st"
by=$(q -c "SELECT classify_hate('Sali')" -c "SELECT gemmaclf_model_info()->>'served_by'" | tr '\n' ' ')
result "a call is served by the worker (gemmaclf_model_info()->>'served_by')" \
    "$([ "$by" = "Hate inference worker " ]; echo $?)" "$by"

# ---- 2. parity on the dev set, 16 connections
q -q <<SQL || exit 1
CREATE TABLE dev AS
SELECT row_number() OVER () AS id, l::jsonb->>'text' AS body
FROM regexp_split_to_table(pg_read_file('$DEV'), E'\n') l WHERE l <> '';
CREATE TABLE via_worker (id bigint, s jsonb);
SET gemmaclf.use_inference_worker = off;
CREATE TABLE in_backend AS SELECT id, classify_hate_scores(body) AS s FROM dev;
SQL
for i in $(seq 0 15); do
    bg "conn$i" "" "INSERT INTO via_worker SELECT id, classify_hate_scores(body) FROM dev WHERE id % 16 = $i; SELECT gemmaclf_model_info()->>'served_by'"
done
wait
served=$(cat "$T"/conn* | grep -c '^inference worker$')
cmp=$(q <<'SQL'
SELECT count(*) || ' ' || count(*) FILTER (WHERE w.s->>'label' = b.s->>'label') || ' ' ||
       coalesce(max(greatest(abs((w.s->'scores'->>'Not Hate')::float8 - (b.s->'scores'->>'Not Hate')::float8),
                             abs((w.s->'scores'->>'Hate')::float8 - (b.s->'scores'->>'Hate')::float8),
                             abs((w.s->'scores'->>'Extreme Hate')::float8 - (b.s->'scores'->>'Extreme Hate')::float8))), 1)
FROM in_backend b JOIN via_worker w USING (id)
SQL
)
read -r rows same maxdiff <<<"$cmp"
result "16 connections x per-row calls over the $rows dev comments: all served by the worker, labels identical to in-backend, scores within 1e-5" \
    "$([ "$served" = 16 ] && [ "$rows" = 2097 ] && [ "$same" = 2097 ] && awk "BEGIN{exit !($maxdiff <= 1e-5)}"; echo $?)" \
    "$served/16 sessions served by the worker, $same/$rows labels identical, max |score difference| $maxdiff; $(status "'mean batch size ' || round(mean_batch_size::numeric, 1)")"
cat "$T"/conn* | grep -v '^inference worker$' | head -5
arr=$(q -c "SELECT (SELECT classify_hate(array_agg(body ORDER BY id)) FROM dev) = (SELECT array_agg(s->>'label' ORDER BY id) FROM in_backend)")
result "classify_hate(text[]) of the dev set through the worker (requests of 64 texts) = in-backend labels" \
    "$([ "$arr" = t ]; echo $?)"

# ---- 3. batching
b0=$(status batches)
q -c "SELECT gemmaclf_inference_hold(true)" >/dev/null
bg first "" "SELECT classify_hate('Sali')"
wait_for "SELECT in_progress = 1 FROM gemmaclf_inference_status"
for i in 1 2 3 4 5 6 7; do bg "queued$i" "" "SELECT classify_hate('Randi saali mc')"; done
wait_for "SELECT queued = 7 FROM gemmaclf_inference_status"
q -c "SELECT gemmaclf_inference_hold(false)" >/dev/null
wait
b1=$(status batches)
labels=$(cat "$T"/first "$T"/queued* | sort | uniq -c | tr -s ' \n' ' ')
result "batching: 7 requests queued while the worker was busy run as one forward pass" \
    "$([ $((b1 - b0)) = 2 ] && [ "$labels" = " 7 Extreme Hate 1 Hate " ]; echo $?)" \
    "$((b1 - b0)) batches for 8 requests; labels:$labels"

# ---- 4. routing and size limits
r=$(q -c "SET gemmaclf.model_path = ''" -c "SELECT classify_hate('Sali') IS NOT NULL" \
      -c "SELECT gemmaclf_model_info()->>'served_by'" \
      -c "SELECT gemmaclf_model_info()->>'inference_worker_serves'" | tr '\n' ' ')
result "another model (the bundled one) is served in-backend" \
    "$([ "$r" = "t backend false " ]; echo $?)" "$r"
r=$(q -c "SET gemmaclf.use_inference_worker = off" -c "SELECT classify_hate('Sali')" \
      -c "SELECT gemmaclf_model_info()->>'served_by'" | tr '\n' ' ')
result "gemmaclf.use_inference_worker = off: served in-backend" \
    "$([ "$r" = "Hate backend " ]; echo $?)" "$r"
# a label-changing setting that differs from the worker's (gemmaclf.precision; on a CPU without
# bf16 the session falls back to f32 with a WARNING on stderr, and is still not the worker's)
r=$(q -c "SET gemmaclf.precision = 'bf16'" -c "SELECT classify_hate('Sali')" \
      -c "SELECT gemmaclf_model_info()->>'served_by'" 2>/dev/null | tr '\n' ' ')
result "gemmaclf.precision other than the worker's: served in-backend" \
    "$([ "$r" = "Hate backend " ]; echo $?)" "$r"
r=$(q -c "SET gemmaclf.max_input_tokens = 4096" -c "SELECT classify_hate('Sali')" \
      -c "SELECT gemmaclf_model_info()->>'served_by'" | tr '\n' ' ')
result "max_input_tokens 4096 (a text larger than a 128 kB slot): served in-backend" \
    "$([ "$r" = "Hate backend " ]; echo $?)" "$r"
r=$(q <<'SQL' | tr '\n' ' '
CREATE TEMP TABLE big AS SELECT repeat('Randi saali mc ', 14000) || 'kya yaar' AS body;
SELECT classify_hate_scores(body) FROM big \gset w_
SELECT gemmaclf_model_info()->>'served_by';
SET gemmaclf.use_inference_worker = off;
SELECT classify_hate_scores(body) = :'w_classify_hate_scores'::jsonb FROM big;
SQL
)
result "a 210 kB text through the worker (cut like the core cuts it) = in-backend" \
    "$([ "$r" = "inference worker t " ]; echo $?)" "$r"
r=$(q <<'SQL' | tr '\n' ' '
SET client_min_messages = warning;
CREATE TABLE tr (id int PRIMARY KEY, body text, label text);
CREATE TRIGGER flag BEFORE INSERT ON tr FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO tr SELECT id, body FROM dev WHERE id <= 40;
SELECT gemmaclf_model_info()->>'served_by';
CREATE TABLE pr (id int PRIMARY KEY, body text, label text);
INSERT INTO pr SELECT id, body FROM dev WHERE id <= 300;
CALL gemmaclf_classify_table('pr', 'body', 'label', 100);
SELECT gemmaclf_model_info()->>'served_by';
SELECT (SELECT count(*) FROM tr JOIN in_backend b USING (id) WHERE label = b.s->>'label') || '+' ||
       (SELECT count(*) FROM pr JOIN in_backend b USING (id) WHERE label = b.s->>'label');
SQL
)
result "the trigger and gemmaclf_classify_table go through the worker, same labels as in-backend" \
    "$([ "$r" = "inference worker inference worker 40+300 " ]; echo $?)" "$r"

# ---- 4b. background labelling (gemmaclf_watch, issue 11): its workers classify their batches
# through the inference worker too (gcpg_classify routes every caller); labels as in-backend
t0=$(status texts)
q -q <<SQL || exit 1
CREATE TABLE wt (id bigint, body text, label text);
INSERT INTO wt SELECT id, body FROM dev WHERE id <= 150;
SELECT gemmaclf_watch('wt', 'body', 'label');
SQL
wait_for "SELECT count(*) = 0 FROM wt WHERE label IS NULL" 300
r=$(q -c "SELECT count(*) FROM wt JOIN in_backend b USING (id) WHERE label = b.s->>'label'")
t1=$(status texts)
q -c "SELECT gemmaclf_unwatch('wt')" >/dev/null
result "the background labelling workers' batches go through the worker, same labels as in-backend" \
    "$([ "$r" = 150 ] && [ $((t1 - t0)) -ge 150 ]; echo $?)" "$r of 150 labels equal; worker texts +$((t1 - t0))"

# ---- 5. cancel while waiting
d0=$(status discarded)
q -c "SELECT gemmaclf_inference_hold(true)" >/dev/null
bg taken "" "SELECT classify_hate('Sali')"
wait_for "SELECT in_progress = 1 FROM gemmaclf_inference_status"
bg queued "" "SELECT classify_hate('Sali')"
wait_for "SELECT queued = 1 FROM gemmaclf_inference_status"
q -c "SELECT pg_cancel_backend($(backend_pid queued))" >/dev/null
wait "$BGPID"
wait_for "SELECT queued = 0 FROM gemmaclf_inference_status" 30
r1=$(grep -c 'canceling statement due to user request' "$T/queued")
q -c "SELECT pg_cancel_backend($(backend_pid taken))" >/dev/null
wait_for "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'taken'" 30
r2=$(grep -c 'canceling statement due to user request' "$T/taken")
held=$(status in_progress)
q -c "SELECT gemmaclf_inference_hold(false)" >/dev/null
wait_for "SELECT in_progress = 0 AND discarded = $d0 + 1 FROM gemmaclf_inference_status" 30
d1=$(status discarded)
after=$(q -c "SELECT classify_hate('Sali')")
result "cancel while queued: the cancel comes at once and the request is withdrawn" \
    "$([ "$r1" = 1 ]; echo $?)" "$(tr '\n' ' ' <"$T/queued")"
result "cancel while the worker holds the request: the cancel comes at once (worker still busy), its result is discarded" \
    "$([ "$r2" = 1 ] && [ "$held" = 1 ] && [ $((d1 - d0)) = 1 ] && [ "$after" = Hate ]; echo $?)" \
    "cancelled while $held request was held; $((d1 - d0)) result discarded; next call: $after"
wait

# ---- 6. the worker exits while holding a request
# a session open across the event: still there afterwards = no cluster restart
bg observer "" "SELECT pg_sleep(3600)"
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'observer' AND wait_event = 'PgSleep'" 30
observer=$(backend_pid observer)
w0=$(status pid)
q -c "SELECT gemmaclf_inference_hold(true)" >/dev/null
bg on_cpu "-c gemmaclf.device=cpu" "SELECT classify_hate('Sali')"
wait_for "SELECT in_progress = 1 FROM gemmaclf_inference_status"
bg on_auto "-c gemmaclf.device=auto" "SELECT classify_hate('Sali')"
wait_for "SELECT queued = 1 FROM gemmaclf_inference_status"
q -c "SELECT pg_terminate_backend($w0)" >/dev/null
wait_for "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name LIKE 'on_%'" 60
wait_for "SELECT state = 'ready' AND pid <> $w0 FROM gemmaclf_inference_status"
w1=$(status pid)
still=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $observer")
q -c "SELECT pg_terminate_backend($observer)" >/dev/null
wait
after=$(q -c "SELECT classify_hate('Sali')" -c "SELECT gemmaclf_model_info()->>'served_by'" | tr '\n' ' ')
result "worker exits (SIGTERM) holding a request: device = cpu gets an ERROR" \
    "$(grep -q 'inference worker exited before it answered' "$T/on_cpu"; echo $?)" "$(tr '\n' ' ' <"$T/on_cpu")"
result "... device = auto gets its label (own CPU, or the restarted worker)" \
    "$([ "$(cat "$T/on_auto")" = Hate ]; echo $?)" "$(tr '\n' ' ' <"$T/on_auto")"
result "... the postmaster restarts the worker, the cluster does not restart, later calls work" \
    "$([ "$w1" != "$w0" ] && [ "$still" = 1 ] && [ "$after" = "Hate inference worker " ]; echo $?)" \
    "worker $w0 -> $w1; a session opened before is still connected: $still; next call: $after"

# ---- 7. the worker's own errors
q -c "ALTER SYSTEM SET gemmaclf.device = 'cuda'" -c "SELECT pg_reload_conf()" >/dev/null
wait_for "SELECT state IN ('failed', 'ready') AND device IS DISTINCT FROM 'cpu' FROM gemmaclf_inference_status" 60
if [ "$(status state)" = ready ]; then
    echo "skipped: the worker's session error (a GPU is usable here, device = cuda works)"
else
    out=$(psql -X -c "SELECT classify_hate('Sali')" 2>&1)
    result "the worker cannot start its session (device = cuda, no GPU): a clear ERROR with HINT" \
        "$(echo "$out" | grep -q 'ERROR:  the gemmaclf inference worker could not start: ' &&
           echo "$out" | grep -q 'HINT:  .*gemmaclf.use_inference_worker = off'; echo $?)" \
        "$(echo "$out" | tr '\n' ' ')"
fi
q -c "ALTER SYSTEM RESET gemmaclf.device" -c "SELECT pg_reload_conf()" >/dev/null
wait_for "SELECT state = 'ready' AND device = 'cpu' FROM gemmaclf_inference_status" 60
result "... and it serves again once the setting is fixed (reload)" \
    "$([ "$(q -c "SELECT classify_hate('Sali')")" = Hate ]; echo $?)"

# ---- 8. kill -9
w0=$(status pid)
q -c "SELECT gemmaclf_inference_hold(true)" >/dev/null
bg killed "" "SELECT classify_hate('Sali')"
wait_for "SELECT in_progress = 1 FROM gemmaclf_inference_status"
kill -9 "$w0"
wait
wait_for "SELECT state = 'ready' FROM gemmaclf_inference_status"
w1=$(status pid)
after=$(q -c "SELECT classify_hate('Sali')" -c "SELECT gemmaclf_model_info()->>'served_by'" | tr '\n' ' ')
result "kill -9 of the worker: the waiting backend gets an error, not a hang" \
    "$(grep -q 'server closed the connection\|terminating connection' "$T/killed"; echo $?)" \
    "$(tr '\n' ' ' <"$T/killed")"
result "... PostgreSQL restarts the whole cluster (crash of a process attached to shared memory), the worker is back, calls work" \
    "$(grep -q 'crash of another server process' "$T/killed" && [ -n "$w1" ] && [ "$w1" != "$w0" ] &&
       [ "$after" = "Hate inference worker " ]; echo $?)" "worker $w0 -> $w1; next call: $after"

echo "inference: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
