#!/usr/bin/env bash
# Scale-out suite: gemmaclf on a real Citus 13.2 cluster (a coordinator and two workers on the
# loopback interface, test/citus/cluster.sh), with distinct dev comments of Indo-HateSpeech as data.
# What it shows: CREATE EXTENSION reaches the workers; UPDATE/SELECT with classify_hate run on the
# workers, each on its own shards (EXPLAIN tasks and per-node call counts from
# pg_stat_user_functions); labels on the cluster equal `bin/gemmaclf classify` labels; the
# gemmaclf_flag_hate trigger on distributed and reference tables (citus.enable_unsafe_triggers);
# reference tables; session settings and a broken model on one worker.
#
# Installs Citus when missing (scripts/install-citus.sh), builds and `make install`s gemmaclf, so
# run it as root, and, on a machine shared with other PostgreSQL 15 test runs, under their lock:
#     flock /tmp/gemmaclf-pg15.lock bash test/citus/run.sh
# Environment: GC_SHARED (default ../shared), CITUS_PORT (coordinator port, default 57700; the
# workers use the next two), CITUS_ROWS (distinct comments loaded, default 400), JOBS (2).
# Ends with "citus: N passed, M failed" (no skips: every case passes or fails).
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
GC_SHARED=$(cd "${GC_SHARED:-../shared}" 2>/dev/null && pwd) || { echo "citus: reference data not found (set GC_SHARED)"; echo "citus: 0 passed, 1 failed"; exit 1; }
export GC_SHARED
JOBS=${JOBS:-2}
export CITUS_PORT=${CITUS_PORT:-57700}
ROWS=${CITUS_ROWS:-400}
P0=$CITUS_PORT P1=$((CITUS_PORT + 1)) P2=$((CITUS_PORT + 2))
DEV=$GC_SHARED/data/indo-hatespeech/dev.jsonl

passed=0 failed=0
t0=$(date +%s)
bail() { echo "citus: $*"; echo "citus: $passed passed, $((failed + 1)) failed"; exit 1; }

[ -f "$DEV" ] || bail "$DEV not found"
bash scripts/install-citus.sh || bail "installing Citus failed"
make -j"$JOBS" all >/tmp/gemmaclf-citus-build.$$.log 2>&1 && make install >>/tmp/gemmaclf-citus-build.$$.log 2>&1 ||
  { tail -30 /tmp/gemmaclf-citus-build.$$.log; rm -f /tmp/gemmaclf-citus-build.$$.log; bail "build/install of gemmaclf failed"; }
rm -f /tmp/gemmaclf-citus-build.$$.log

tmp=$(mktemp -d /tmp/gemmaclf-citus-XXXXXX)
cleanup() { bash test/citus/cluster.sh stop "$tmp"; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
t1=$(date +%s)
bash test/citus/cluster.sh start "$tmp" || { cat "$tmp"/*.log 2>/dev/null | tail -40; bail "cluster did not start"; }
echo "cluster: coordinator localhost:$P0, workers localhost:$P1 and localhost:$P2 (started in $(( $(date +%s) - t1 )) s)"
export PGHOST=$tmp/sock PGUSER=postgres PGDATABASE=postgres

# q PORT [psql args]: one psql session on a node (SQL from -c or stdin), unaligned tuples only,
# stopping at the first error; :P0 :P1 :P2 are the nodes' ports.
q() { local port=$1; shift; psql -X -At -q -v ON_ERROR_STOP=1 -v P0="$P0" -v P1="$P1" -v P2="$P2" -p "$port" "$@"; }
# expect WHAT ACTUAL WANTED: prints a mismatch and fails.
expect() {
  if [ "$2" = "$3" ]; then return 0; fi
  printf '  %s: got [%s], want [%s]\n' "$1" "$2" "$3"; return 1
}
# expect_error WHAT OUTPUT PATTERN: OUTPUT (stderr of a failed statement) must match PATTERN.
expect_error() {
  if grep -qE "$3" <<<"$2"; then return 0; fi
  printf '  %s: want an error matching [%s], got:\n%s\n' "$1" "$3" "$2"; return 1
}

# Per-node function call counts (track_functions = all) --------------------------------------
stats_reset() { local p; for p in $P0 $P1 $P2; do q "$p" -c "SELECT pg_stat_reset()" >/dev/null; done; }
# calls FUNCTION_SIGNATURE: "coordinator worker1 worker2" calls since the last stats_reset
calls() {
  local p
  for p in $P0 $P1 $P2; do
    q "$p" -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcid = '$1'::regprocedure"
  done | paste -sd' '
}
# workload [psql args]: runs SQL (-c ..., or -f - for stdin) in one coordinator session, then waits (bounded) until that
# backend and the worker backends Citus opened for it (application_name "... gpid=G") have exited:
# a backend flushes its pending statistics at exit at the latest, so the counts are complete then.
workload() {
  local out gpid deadline p n
  out=$(q "$P0" -c "SELECT 'gpid ' || citus_backend_gpid()" "$@") || { echo "$out"; return 1; }
  gpid=$(sed -n 's/^gpid //p' <<<"$out" | head -1)
  sed '/^gpid /d' <<<"$out"
  deadline=$(( $(date +%s) + 60 ))
  for p in $P0 $P1 $P2; do
    while n=$(q "$p" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '% gpid=$gpid'
                         OR pid = $gpid % 10000000000 AND $p = $P0") && [ "$n" != 0 ]; do
      [ "$(date +%s)" -lt "$deadline" ] || { echo "  backends of gpid $gpid still running on port $p after 60 s"; return 1; }
      sleep 0.1
    done
  done
}
# rows_per_worker TABLE: "worker1 worker2" row counts of TABLE's shards on each worker.
rows_per_worker() {
  q "$P0" -v t="$1" <<'SQL'
SELECT coalesce(sum(r.result::bigint) FILTER (WHERE s.nodeport = :P1), 0) || ' ' ||
       coalesce(sum(r.result::bigint) FILTER (WHERE s.nodeport = :P2), 0)
FROM run_command_on_shards(:'t', 'SELECT count(*) FROM %s') r JOIN citus_shards s USING (shardid);
SQL
}

# run_case NAME: runs case_NAME, prints "ok - NAME" or "not ok - NAME" with its output.
run_case() {
  local name=$1 out rc
  out=$("case_$name" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1)); echo "ok - $name"
    [ -n "$out" ] && sed 's/^/  /' <<<"$out"
  else
    failed=$((failed + 1)); echo "not ok - $name"
    sed 's/^/  /' <<<"$out"
  fi
}

# ---------------------------------------------------------------------------------------------
case_extension_on_all_nodes() {
  q "$P0" -c "SET client_min_messages = warning" -c "CREATE EXTENSION gemmaclf" || return 1
  local v w
  v=$(q "$P0" -c "SELECT extversion FROM pg_extension WHERE extname = 'gemmaclf'")
  w=$(q "$P0" -c "SELECT string_agg(nodeport || ':' || result, ' ' ORDER BY nodeport)
                  FROM run_command_on_workers(\$\$SELECT extversion FROM pg_extension WHERE extname = 'gemmaclf'\$\$)")
  expect "extension version on the workers" "$w" "$P1:$v $P2:$v" || return 1
  # each worker classifies by itself (the .so and the model are installed there too)
  for p in $P1 $P2; do
    expect "classify_hate on worker $p" "$(q "$p" -c "SELECT classify_hate('nice video bhai') IS NOT NULL")" t || return 1
  done
  echo "gemmaclf $v created on the coordinator, present on both workers"
}

# The data: distinct dev comments in a reference table, the CLI's labels for them, and a
# distributed copy (32 shards, hash on id).
case_load_data() {
  q "$P0" -v dev="$DEV" -v rows="$ROWS" <<'SQL' || return 1
CREATE TABLE texts (id bigint PRIMARY KEY, body text NOT NULL);
SELECT create_reference_table('texts') \g /dev/null
INSERT INTO texts
SELECT id, body FROM (
  SELECT DISTINCT ON (body) id, body
  FROM (SELECT (j->>'id')::bigint AS id, j->>'text' AS body
        FROM regexp_split_to_table(pg_read_file(:'dev'), E'\n') AS line,
             LATERAL (SELECT line::jsonb AS j) x
        WHERE line <> '') d
  ORDER BY body, id) u
ORDER BY id LIMIT :rows;
CREATE TABLE cli (id bigint PRIMARY KEY, result jsonb NOT NULL);
SELECT create_reference_table('cli') \g /dev/null
CREATE TABLE comments (id bigint PRIMARY KEY, body text, hate_label text, hate_scores jsonb);
SELECT create_distributed_table('comments', 'id') \g /dev/null
INSERT INTO comments (id, body) SELECT id, body FROM texts;
SQL
  local model n
  model=$(q "$P0" -c "SELECT gemmaclf_model_info()->>'model_path'") || return 1
  q "$P0" -F $'\t' -c "SELECT id, to_json(body) FROM texts ORDER BY id" >"$tmp/texts.tsv" || return 1
  cut -f2 "$tmp/texts.tsv" | "$root/bin/gemmaclf" classify "$model" >"$tmp/cli.jsonl" || { echo "  bin/gemmaclf classify failed"; return 1; }
  paste <(cut -f1 "$tmp/texts.tsv") "$tmp/cli.jsonl" >"$tmp/cli.tsv"
  q "$P0" -c "\\copy cli (id, result) FROM '$tmp/cli.tsv'" || return 1
  n=$(q "$P0" -c "SELECT count(*) || ' ' || count(DISTINCT body) || ' ' || (SELECT count(*) FROM cli) || ' ' || (SELECT count(*) FROM comments) FROM texts")
  expect "texts, distinct texts, CLI labels, distributed rows" "$n" "$ROWS $ROWS $ROWS $ROWS" || return 1
  echo "$ROWS distinct dev comments; CLI labels from $model: $(q "$P0" -c "SELECT string_agg(l || ' ' || n, ', ' ORDER BY l) FROM (SELECT result->>'label' l, count(*) n FROM cli GROUP BY 1) s")"
  echo "comments: $(q "$P0" -c "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'comments'::regclass") shards, rows per worker: $(rows_per_worker comments)"
}

# EXPLAIN: one task per shard, each running the UPDATE with classify_hate on the worker holding it.
case_update_explain_tasks() {
  local plan shards tasks want got
  plan=$(q "$P0" -c "SET citus.explain_all_tasks = on" -c "EXPLAIN (VERBOSE) UPDATE comments SET hate_label = classify_hate(body)") || return 1
  shards=$(q "$P0" -c "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'comments'::regclass")
  expect "Task Count" "$(grep -oE 'Task Count: [0-9]+' <<<"$plan")" "Task Count: $shards" || return 1
  tasks=$(grep -cE '^ *Query: UPDATE public\.comments_[0-9]+ comments SET hate_label = public\.classify_hate\(body\)$' <<<"$plan")
  expect "tasks running UPDATE ... classify_hate(body) on a shard" "$tasks" "$shards" || return 1
  want=$(q "$P0" -c "SELECT string_agg(n || ' ' || nodeport, ',' ORDER BY nodeport) FROM (SELECT nodeport, count(*) n FROM citus_shards WHERE table_name = 'comments'::regclass GROUP BY 1) s")
  got=$(grep -oE 'Node: host=[^ ]+ port=[0-9]+' <<<"$plan" | sed 's/.*port=//' | sort | uniq -c | awk '{print $1 " " $2}' | paste -sd,)
  expect "tasks per node (count port)" "$got" "$want" || return 1
  echo "Task Count: $shards; tasks per node (count port): $got; none on the coordinator ($P0)"
}

# Call counts: the UPDATE runs classify_hate on the workers only, once per row of their shards.
case_update_calls_per_node() {
  local per c
  per=$(rows_per_worker comments)
  stats_reset
  workload -c "UPDATE comments SET hate_label = classify_hate(body)" || return 1
  c=$(calls 'classify_hate(text)')
  expect "classify_hate calls (coordinator worker1 worker2)" "$c" "0 $per" || return 1
  expect "rows labelled" "$(q "$P0" -c "SELECT count(hate_label) FROM comments")" "$ROWS" || return 1
  echo "classify_hate calls: coordinator ${c%% *}, workers ${c#* } (rows on their shards: $per)"
}

# SELECT: the function runs on the workers (tasks carry it; the coordinator only merges).
case_select_pushdown() {
  local plan per c out
  plan=$(q "$P0" -c "EXPLAIN (VERBOSE) SELECT classify_hate(body), count(*) FROM comments GROUP BY 1") || return 1
  grep -qE 'Query: SELECT public\.classify_hate\(body\) AS classify_hate, count\(\*\) AS count FROM public\.comments_[0-9]+ comments .*GROUP BY \(public\.classify_hate\(body\)\)' <<<"$plan" ||
    { echo "  task query without classify_hate:"; echo "$plan"; return 1; }
  per=$(rows_per_worker comments)
  stats_reset
  out=$(workload -c "SELECT string_agg(l || ' ' || n, ', ' ORDER BY l) FROM (SELECT classify_hate(body) l, count(*) n FROM comments GROUP BY 1) s") || return 1
  c=$(calls 'classify_hate(text)')
  expect "classify_hate calls (coordinator worker1 worker2)" "$c" "0 $per" || return 1
  expect "label counts vs the CLI" "$out" "$(q "$P0" -c "SELECT string_agg(l || ' ' || n, ', ' ORDER BY l) FROM (SELECT result->>'label' l, count(*) n FROM cli GROUP BY 1) s")" || return 1
  echo "GROUP BY classify_hate(body): $out; calls: coordinator ${c%% *}, workers ${c#* }"
}

# A query on one distribution key runs on the one worker that holds the row.
case_router_query() {
  local id sid port c want
  id=$(q "$P0" -c "SELECT min(id) FROM texts")
  sid=$(q "$P0" -c "SELECT get_shard_id_for_distribution_column('comments', $id)")
  port=$(q "$P0" -c "SELECT nodeport FROM citus_shards WHERE shardid = $sid")
  stats_reset
  workload -c "SELECT classify_hate(body) FROM comments WHERE id = $id" >/dev/null || return 1
  c=$(calls 'classify_hate(text)')
  if [ "$port" = "$P1" ]; then want="0 1 0"; else want="0 0 1"; fi
  expect "classify_hate calls for id $id (shard $sid on port $port)" "$c" "$want" || return 1
  echo "WHERE id = $id: one call, on port $port"
}

# classify_hate('constant') is folded by the coordinator's planner: the tasks carry its result.
case_constant_folded_on_coordinator() {
  local plan c label
  label=$(q "$P0" -c "SELECT classify_hate('Sali randi')")
  plan=$(q "$P0" -c "EXPLAIN (VERBOSE) SELECT count(*) FROM comments WHERE hate_label = classify_hate('Sali randi')") || return 1
  grep -qE "Query: SELECT count\(\*\) AS count FROM public\.comments_[0-9]+ comments WHERE \(hate_label OPERATOR\(pg_catalog\.=\) '$label'::text\)" <<<"$plan" ||
    { echo "  task query does not carry the folded label '$label':"; echo "$plan"; return 1; }
  stats_reset
  workload -c "SELECT count(*) FROM comments WHERE hate_label = classify_hate('Sali randi')" >/dev/null || return 1
  c=$(calls 'classify_hate(text)')
  [ "${c%% *}" -ge 1 ] && [ "${c#* }" = "0 0" ] || { echo "  calls (coordinator worker1 worker2): $c, want >= 1 0 0"; return 1; }
  echo "classify_hate('Sali randi') = '$label' folded on the coordinator (calls $c): the coordinator needs the model too"
}

# Labels on the cluster (UPDATE on the workers, SELECT on the workers, scores) equal the CLI's.
case_labels_equal_cli() {
  local out
  out=$(q "$P0" <<'SQL'
SELECT count(*) || ' ' ||
       count(*) FILTER (WHERE c.hate_label = x.result->>'label') || ' ' ||
       count(*) FILTER (WHERE c.sel = x.result->>'label') || ' ' ||
       count(*) FILTER (WHERE c.scores->>'label' = x.result->>'label')
FROM (SELECT id, hate_label, classify_hate(body) AS sel, classify_hate_scores(body) AS scores FROM comments) c
JOIN cli x USING (id);
SQL
  ) || return 1
  expect "rows, equal (UPDATE), equal (SELECT), equal (scores)" "$out" "$ROWS $ROWS $ROWS $ROWS" || {
    q "$P0" -c "SELECT c.id, c.hate_label, x.result->>'label' AS cli FROM comments c JOIN cli x USING (id) WHERE c.hate_label IS DISTINCT FROM x.result->>'label' LIMIT 10"
    return 1; }
  echo "$ROWS of $ROWS labels equal bin/gemmaclf classify (stored by the UPDATE, selected, and in classify_hate_scores)"
}

# Session settings stay on the coordinator: pushed-down calls use each worker's own settings,
# unless SET LOCAL is propagated with citus.propagate_set_commands = 'local'.
case_settings_not_propagated() {
  local id want trunc pushed local
  id=$(q "$P0" <<'SQL'
CREATE TEMP TABLE t_local AS SELECT t.id, t.body, c.result->>'label' AS label FROM texts t JOIN cli c USING (id);
SET gemmaclf.max_input_tokens = 1;
SELECT id FROM t_local WHERE classify_hate(body) <> label ORDER BY id LIMIT 1;
SQL
  ) || return 1
  [ -n "$id" ] || { echo "  no text whose label changes with max_input_tokens = 1"; return 1; }
  want=$(q "$P0" -c "SELECT result->>'label' FROM cli WHERE id = $id")
  trunc=$(q "$P0" -v id="$id" <<'SQL'
CREATE TEMP TABLE one AS SELECT body FROM texts WHERE id = :id;
SET gemmaclf.max_input_tokens = 1;
SELECT classify_hate(body) FROM one;
SQL
  ) || return 1
  pushed=$(q "$P0" -c "SET gemmaclf.max_input_tokens = 1" -c "SELECT classify_hate(body) FROM comments WHERE id = $id") || return 1
  local=$(q "$P0" -c "BEGIN" -c "SET LOCAL citus.propagate_set_commands = 'local'" -c "SET LOCAL gemmaclf.max_input_tokens = 1" \
            -c "SELECT classify_hate(body) FROM comments WHERE id = $id" -c "COMMIT") || return 1
  expect "pushed-down label after SET on the coordinator" "$pushed" "$want" || return 1
  expect "pushed-down label with SET LOCAL propagated" "$local" "$trunc" || return 1
  echo "id $id: '$want' with 512 tokens, '$trunc' with 1; SET on the coordinator: workers still say '$pushed'; SET LOCAL + citus.propagate_set_commands = local: '$local'"
}

# The same model on every node: the queries of docs/scale-out.md, as written there, and the
# fingerprint equal to what sha256sum computes over the installed model's files.
case_same_model_every_node() {
  local out dir want
  out=$(q "$P0" <<'SQL'
SELECT count(*) FILTER (WHERE fingerprint ~ '^[0-9a-f]{64}$') FROM (
SELECT n.nodename, n.nodeport, r.result::jsonb->>'fingerprint' AS fingerprint
FROM run_command_on_all_nodes($$SELECT gemmaclf_model_info()$$) r JOIN pg_dist_node n USING (nodeid)
) s;
SELECT count(DISTINCT result::jsonb->>'fingerprint') = 1 AS same_model
FROM run_command_on_all_nodes($$SELECT gemmaclf_model_info()$$);
SELECT count(DISTINCT result) = 1 AS same_scores
FROM run_command_on_all_nodes($$SELECT md5(string_agg(classify_hate_scores(t)::text, '|' ORDER BY t))
  FROM (VALUES ('nice video bhai'), ('Sali randi'), ('Gand fad dega tera bap'), ('')) v(t)$$);
SQL
  ) || return 1
  expect "nodes with a fingerprint, same_model, same_scores" "$(paste -sd' ' <<<"$out")" "3 t t" || return 1
  dir=$(q "$P0" -c "SELECT gemmaclf_model_info()->>'model_path'")
  want=$(cd "$dir" && ls config.json gemmaclf.json model.safetensors* ngram_head.safetensors tokenizer.json tokenizer_config.json 2>/dev/null |
         LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-64)
  expect "fingerprint vs sha256sum over $dir" "$(q "$P0" -c "SELECT DISTINCT result::jsonb->>'fingerprint' FROM run_command_on_all_nodes(\$\$SELECT gemmaclf_model_info()\$\$)")" "$want" || return 1
  echo "3 nodes: fingerprint $want (= sha256sum over the model's files), one set of probe scores"
}

# Triggers --------------------------------------------------------------------------------------
FLAG="gemmaclf_flag_hate('body', 'hate_label', 'hate_scores')"
case_trigger_refused_without_setting() {
  local err
  q "$P0" <<'SQL' || return 1
CREATE TABLE flagged (id bigint PRIMARY KEY, body text, hate_label text, hate_scores jsonb);
SELECT create_distributed_table('flagged', 'id') \g /dev/null
CREATE TABLE staging (id bigint PRIMARY KEY, body text);
SELECT create_distributed_table('staging', 'id', colocate_with => 'flagged') \g /dev/null
SQL
  err=$(q "$P0" -c "CREATE TRIGGER flag_hate BEFORE INSERT OR UPDATE OF body ON flagged FOR EACH ROW EXECUTE FUNCTION $FLAG" 2>&1) &&
    { echo "  CREATE TRIGGER succeeded without citus.enable_unsafe_triggers"; return 1; }
  expect_error "CREATE TRIGGER without the setting" "$err" 'ERROR: +triggers are not supported on distributed tables' || return 1
  echo "without citus.enable_unsafe_triggers: $(grep -m1 ERROR <<<"$err")"
}

case_trigger_created_on_every_shard() {
  local out
  q "$P0" -c "SET citus.enable_unsafe_triggers = on" \
    -c "CREATE TRIGGER flag_hate BEFORE INSERT OR UPDATE OF body ON flagged FOR EACH ROW EXECUTE FUNCTION $FLAG" || return 1
  out=$(q "$P0" <<'SQL'
SELECT count(*) || ' ' || count(*) FILTER (WHERE success AND result = '1')
FROM run_command_on_shards('flagged', $$SELECT count(*) FROM pg_trigger
  WHERE tgrelid = '%s'::regclass AND NOT tgisinternal AND tgfoid = 'gemmaclf_flag_hate'::regproc$$);
SELECT string_agg(result, ' ' ORDER BY nodeport) FROM run_command_on_workers('SHOW citus.enable_unsafe_triggers');
SQL
  ) || return 1
  local shards
  shards=$(q "$P0" -c "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'flagged'::regclass")
  expect "shards, shards with the trigger; setting on the workers" "$(paste -sd' ' <<<"$out")" "$shards $shards off off" || return 1
  echo "SET citus.enable_unsafe_triggers = on (coordinator session only): trigger on all $shards shards"
}

# INSERT (VALUES, COPY, INSERT..SELECT pushed down and pulled), UPDATE OF body through the
# coordinator, in sessions where the setting is off: the shards' triggers label every row.
case_trigger_labels_rows_on_shards() {
  local n=$((ROWS / 8)) out c
  [ "$n" -ge 5 ] || { echo "  CITUS_ROWS too small"; return 1; }
  # (a server-side COPY FROM file on the coordinator: $tmp is readable by postgres)
  q "$P0" -c "COPY (SELECT id, body FROM texts ORDER BY id OFFSET $n LIMIT $n) TO STDOUT" >"$tmp/copy.txt" || return 1
  q "$P0" -v n="$n" <<'SQL' || return 1
INSERT INTO staging SELECT id, body FROM texts ORDER BY id OFFSET 2 * :n LIMIT :n;
CREATE TABLE swap (id bigint PRIMARY KEY, new_body text);
SELECT create_reference_table('swap') \g /dev/null
INSERT INTO swap SELECT a.id, b.body FROM
  (SELECT id, row_number() OVER (ORDER BY id) r FROM texts ORDER BY id LIMIT :n) a JOIN
  (SELECT body, row_number() OVER (ORDER BY id) r
   FROM (SELECT id, body FROM texts ORDER BY id OFFSET 4 * :n LIMIT :n) x) b USING (r);
SQL
  q "$P0" -c "EXPLAIN (COSTS OFF) INSERT INTO flagged (id, body) SELECT id, body FROM staging" | grep -q 'Task Count' ||
    { echo "  INSERT..SELECT from the colocated table is not pushed down"; return 1; }
  stats_reset
  out=$(workload -v n="$n" -v copyfile="$tmp/copy.txt" -f - <<'SQL'
-- multi-row VALUES through the coordinator; RETURNING shows what the shard's trigger stored
SELECT format('WITH ins AS (INSERT INTO flagged (id, body) VALUES %s RETURNING id, hate_label)
               SELECT ''returning '' || count(*) || '' '' || count(*) FILTER (WHERE ins.hate_label = c.result->>''label'')
               FROM ins JOIN cli c USING (id)',
              string_agg(format('(%s, %L)', id, body), ', '))
FROM (SELECT id, body FROM texts ORDER BY id LIMIT :n) s \gexec
COPY flagged (id, body) FROM :'copyfile';
INSERT INTO flagged (id, body) SELECT id, body FROM staging;
INSERT INTO flagged (id, body) SELECT id, body FROM texts ORDER BY id OFFSET 3 * :n LIMIT :n;
UPDATE flagged f SET body = s.new_body FROM swap s WHERE f.id = s.id;
UPDATE flagged SET hate_label = hate_label;
SQL
  ) || { echo "$out"; return 1; }
  expect "INSERT .. RETURNING: rows, labels equal to the CLI" "$out" "returning $n $n" || return 1
  out=$(q "$P0" <<'SQL'
SELECT count(*) || ' ' || count(*) FILTER (WHERE f.hate_label = c.result->>'label') || ' ' ||
       count(*) FILTER (WHERE f.hate_scores->>'label' = f.hate_label)
FROM flagged f JOIN texts t ON t.body = f.body JOIN cli c ON c.id = t.id;
SELECT count(*) FROM flagged f JOIN swap s ON s.id = f.id AND s.new_body = f.body;
SQL
  ) || return 1
  expect "rows, labels equal to the CLI, scores agreeing, bodies changed by the UPDATE" "$(paste -sd' ' <<<"$out")" "$((4 * n)) $((4 * n)) $((4 * n)) $n" || return 1
  c=$(calls 'gemmaclf_flag_hate()')
  local w1=${c#* } ; w1=${w1%% *}; local w2=${c##* }
  expect "trigger calls on the coordinator" "${c%% *}" 0 || return 1
  expect "trigger calls on the workers (4 inserts + 1 UPDATE OF body of $n rows each)" "$((w1 + w2))" "$((5 * n))" || return 1
  [ "$w1" -gt 0 ] && [ "$w2" -gt 0 ] || { echo "  trigger calls $c: want both workers > 0"; return 1; }
  echo "$((4 * n)) rows inserted (VALUES, COPY, INSERT..SELECT pushed down and pulled), $n relabelled by UPDATE OF body: all labels equal the CLI's"
  echo "gemmaclf_flag_hate calls: coordinator ${c%% *}, workers $w1 + $w2 = $((5 * n))"
}

# A shard moved to the other worker keeps its trigger (Citus recreates it with the shard).
case_trigger_survives_shard_move() {
  local id sid from to newid out
  id=$(q "$P0" -c "SELECT min(id) FROM flagged")
  sid=$(q "$P0" -c "SELECT get_shard_id_for_distribution_column('flagged', $id)")
  from=$(q "$P0" -c "SELECT nodeport FROM citus_shards WHERE shardid = $sid")
  if [ "$from" = "$P1" ]; then to=$P2; else to=$P1; fi
  q "$P0" -c "SELECT citus_move_shard_placement($sid, 'localhost', $from, 'localhost', $to, shard_transfer_mode => 'block_writes')" >/dev/null || return 1
  expect "shard $sid's node after the move" "$(q "$P0" -c "SELECT nodeport FROM citus_shards WHERE shardid = $sid")" "$to" || return 1
  expect "trigger on shard $sid at port $to" \
    "$(q "$to" -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.flagged_$sid'::regclass AND NOT tgisinternal AND tgfoid = 'gemmaclf_flag_hate'::regproc")" 1 || return 1
  newid=$(q "$P0" -c "SELECT i FROM generate_series(10000000, 10010000) i WHERE get_shard_id_for_distribution_column('flagged', i) = $sid LIMIT 1")
  out=$(q "$P0" <<SQL
INSERT INTO flagged (id, body) SELECT $newid, body FROM texts ORDER BY id DESC LIMIT 1;
UPDATE flagged SET body = (SELECT body FROM texts ORDER BY id DESC OFFSET 1 LIMIT 1) WHERE id = $id;
SELECT count(*) || ' ' || count(*) FILTER (WHERE f.hate_label = c.result->>'label')
FROM flagged f JOIN texts t ON t.body = f.body JOIN cli c ON c.id = t.id WHERE f.id IN ($id, $newid);
SQL
  ) || return 1
  expect "rows on the moved shard (inserted, updated), labels equal to the CLI" "$out" "2 2" || return 1
  echo "shard $sid moved from port $from to $to (block_writes): its trigger came along and labels new and updated rows"
}

# The trigger must not write the distribution column: Citus routed the row to a shard by the
# value it had before the trigger ran, so a changed value would leave it where no query by key
# finds it. The trigger refuses on the worker (ERROR + HINT), and nothing is inserted.
case_trigger_refuses_distribution_column() {
  local out n
  q "$P0" <<SQL >/dev/null || return 1
CREATE TABLE bykey (id bigint, body text, lab text);
SELECT create_distributed_table('bykey', 'lab');
SET citus.enable_unsafe_triggers = on;
CREATE TRIGGER flag_hate BEFORE INSERT ON bykey FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body', 'lab');
SQL
  if out=$(q "$P0" -c "INSERT INTO bykey (id, body, lab) VALUES (1, 'Sali randi', 'placeholder') RETURNING lab" 2>&1); then
    echo "  INSERT succeeded: label '$out' written into the distribution column"; return 1
  fi
  expect_error "INSERT into a table distributed by the label column" "$out" 'gemmaclf_flag_hate: column "lab" is the distribution column of Citus table "bykey(_[0-9]+)?"' || return 1
  expect_error "its HINT" "$out" 'HINT: +Distribute the table by another column' || return 1
  n=$(q "$P0" -c "SELECT count(*) FROM bykey")
  expect "rows in bykey after the refused INSERT" "$n" 0 || return 1
  # the same columns, distributed by another column: the trigger labels (the check is per column)
  q "$P0" <<SQL >/dev/null || return 1
CREATE TABLE bytag (id bigint, body text, lab text, tag text);
SELECT create_distributed_table('bytag', 'tag');
SET citus.enable_unsafe_triggers = on;
CREATE TRIGGER flag_hate BEFORE INSERT ON bytag FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body', 'lab');
SQL
  n=$(q "$P0" -c "INSERT INTO bytag (id, body, tag) VALUES (1, 'Sali randi', 'x') RETURNING lab = classify_hate('Sali randi')") || return 1
  expect "label by the trigger on a table distributed by another column" "$n" t || return 1
  echo "refused: $(grep -m1 ERROR <<<"$out")"
  echo "  $(grep -m1 HINT <<<"$out")"
}

# create_distributed_table on a table that already has the trigger.
case_trigger_then_distribute() {
  local err out
  q "$P0" <<SQL || return 1
CREATE TABLE pre (id bigint PRIMARY KEY, body text, hate_label text, hate_scores jsonb);
CREATE TRIGGER flag_hate BEFORE INSERT OR UPDATE OF body ON pre FOR EACH ROW EXECUTE FUNCTION $FLAG;
SQL
  err=$(q "$P0" -c "SELECT create_distributed_table('pre', 'id')" 2>&1) && { echo "  distributed without the setting"; return 1; }
  expect_error "create_distributed_table of a table with a trigger" "$err" 'cannot distribute relation "pre" because it has triggers' || return 1
  out=$(q "$P0" <<'SQL'
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('pre', 'id') \g /dev/null
RESET citus.enable_unsafe_triggers;
INSERT INTO pre (id, body) SELECT id, body FROM texts ORDER BY id LIMIT 10;
SELECT count(*) || ' ' || count(*) FILTER (WHERE p.hate_label = c.result->>'label') FROM pre p JOIN cli c USING (id);
SQL
  ) || return 1
  expect "rows, labels equal to the CLI" "$out" "10 10" || return 1
  echo "refused without the setting ($(grep -m1 -o 'cannot distribute.*' <<<"$err")); with it, distributed and labelling"
}

# Reference tables: every placement (coordinator and workers) runs the trigger / the UPDATE, and
# all placements stay identical because every node serves the same model.
case_reference_table_trigger() {
  local err out c
  q "$P0" -c "CREATE TABLE refflag (id bigint PRIMARY KEY, body text, hate_label text, hate_scores jsonb)" \
    -c "SELECT create_reference_table('refflag')" >/dev/null || return 1
  err=$(q "$P0" -c "CREATE TRIGGER flag_hate BEFORE INSERT OR UPDATE OF body ON refflag FOR EACH ROW EXECUTE FUNCTION $FLAG" 2>&1) &&
    { echo "  CREATE TRIGGER on a reference table succeeded without the setting"; return 1; }
  expect_error "CREATE TRIGGER on a reference table without the setting" "$err" 'triggers are not supported on reference tables' || return 1
  q "$P0" -c "SET citus.enable_unsafe_triggers = on" \
    -c "CREATE TRIGGER flag_hate BEFORE INSERT OR UPDATE OF body ON refflag FOR EACH ROW EXECUTE FUNCTION $FLAG" || return 1
  stats_reset
  workload -c "INSERT INTO refflag (id, body) SELECT id, body FROM texts ORDER BY id LIMIT 20" || return 1
  c=$(calls 'gemmaclf_flag_hate()')
  expect "trigger calls on every node (coordinator worker1 worker2)" "$c" "20 20 20" || return 1
  out=$(q "$P0" <<'SQL'
SELECT count(DISTINCT result) || ' ' || count(*) FROM run_command_on_placements('refflag',
  $$SELECT md5(string_agg(id || ':' || hate_label || ':' || hate_scores::text, ',' ORDER BY id)) FROM %s$$);
SELECT count(*) FILTER (WHERE r.hate_label = c.result->>'label') FROM refflag r JOIN cli c USING (id);
SQL
  ) || return 1
  expect "distinct placement contents, placements; labels equal to the CLI" "$(paste -sd' ' <<<"$out")" "1 3 20" || return 1
  echo "trigger on a reference table: each of the 3 placements labelled the 20 rows itself (calls $c), all identical"
}

case_reference_table_update_and_join() {
  local out c
  q "$P0" <<'SQL' || return 1
CREATE TABLE refc (id bigint PRIMARY KEY, body text, label text);
SELECT create_reference_table('refc') \g /dev/null
INSERT INTO refc (id, body) SELECT id, body FROM texts ORDER BY id LIMIT 20;
CREATE TABLE label_actions (label text PRIMARY KEY, action text NOT NULL);
SELECT create_reference_table('label_actions') \g /dev/null
INSERT INTO label_actions VALUES ('Not Hate', 'keep'), ('Hate', 'review'), ('Extreme Hate', 'hide');
SQL
  stats_reset
  workload -c "UPDATE refc SET label = classify_hate(body)" || return 1
  c=$(calls 'classify_hate(text)')
  expect "UPDATE of a reference table: calls (coordinator worker1 worker2)" "$c" "20 20 20" || return 1
  out=$(q "$P0" -c "SELECT count(DISTINCT result) || ' ' || count(*) FROM run_command_on_placements('refc', \$\$SELECT md5(string_agg(id || label, ',' ORDER BY id)) FROM %s\$\$)")
  expect "distinct placement contents, placements" "$out" "1 3" || return 1
  # a distributed table joined with a reference table on the label: pushed down as a whole
  stats_reset
  out=$(workload -c "SELECT string_agg(action || ' ' || n, ', ' ORDER BY action) FROM (SELECT a.action, count(*) n FROM comments c JOIN label_actions a ON a.label = classify_hate(c.body) GROUP BY 1) s") || return 1
  c=$(calls 'classify_hate(text)')
  expect "join result" "$out" "$(q "$P0" -c "SELECT string_agg(action || ' ' || n, ', ' ORDER BY action) FROM (SELECT a.action, count(*) n FROM cli c JOIN label_actions a ON a.label = c.result->>'label' GROUP BY 1) s")" || return 1
  [ "${c%% *}" = 0 ] && [ "$(cut -d' ' -f2 <<<"$c")" -gt 0 ] && [ "$(cut -d' ' -f3 <<<"$c")" -gt 0 ] ||
    { echo "  join: calls $c, want 0 on the coordinator, > 0 on each worker"; return 1; }
  echo "UPDATE of a 20-row reference table: every node classified every row (20 20 20), placements identical"
  echo "comments JOIN label_actions ON label = classify_hate(body): $out; classify_hate calls $c"
}

# CALL gemmaclf_classify_table on Citus tables (src/pg/classify_table_citus.c).
# per_shard_batches TABLE BATCH: "worker1 worker2" sums of ceil(rows / BATCH) over each worker's
# shards (the classify_hate(text[]) calls of a run), then the largest ceil(rows / BATCH) (rounds).
per_shard_batches() {
  q "$P0" -v t="$1" -v b="$2" <<'SQL'
SELECT coalesce(sum(ceil(r.result::int / :b::numeric)) FILTER (WHERE s.nodeport = :P1), 0) || ' ' ||
       coalesce(sum(ceil(r.result::int / :b::numeric)) FILTER (WHERE s.nodeport = :P2), 0) || ' ' ||
       max(ceil(r.result::int / :b::numeric))
FROM run_command_on_shards(:'t', 'SELECT count(*) FROM %s') r JOIN citus_shards s USING (shardid);
SQL
}

# Hash-distributed: rounds of one batch per shard, each run on the worker holding the shard
# (classify_hate(text[]) counted there, none on the coordinator), progress per round.
case_classify_table_distributed() {
  local out exp c rounds notices
  q "$P0" -c "UPDATE comments SET hate_label = NULL, hate_scores = NULL" || return 1
  exp=$(per_shard_batches comments 5)
  rounds=${exp##* }
  stats_reset
  out=$(workload -c "CALL gemmaclf_classify_table('comments', 'body', 'hate_label', 5)" 2>&1) || { echo "$out"; return 1; }
  notices=$(grep -c 'rows classified' <<<"$out")
  expect "progress NOTICEs (rounds: the largest shard / 5)" "$notices" "$rounds" || return 1
  expect "last NOTICE" "$(grep 'rows classified' <<<"$out" | tail -1 | sed 's/.*NOTICE: *//')" "gemmaclf_classify_table: $ROWS of $ROWS rows classified" || return 1
  c="$(calls 'classify_hate(text[])') / $(calls 'classify_hate(text)')"
  expect "classify_hate(text[]) calls (one per shard batch) / classify_hate(text) calls" "$c" "0 ${exp% *} / 0 0 0" || return 1
  expect "labels equal to the CLI" "$(q "$P0" -c "SELECT count(*) FROM comments c JOIN cli x USING (id) WHERE c.hate_label = x.result->>'label'")" "$ROWS" || return 1
  echo "$ROWS rows in $rounds rounds of one 5-row batch per shard, run on the shards' workers: classify_hate(text[]) calls $(cut -d/ -f1 <<<"$c")(coordinator, workers); labels equal the CLI's"
  grep 'NOTICE' <<<"$out" | sed -n '1p;$p'
}

# A failing shard stops the run; every other shard's batch of that round stays committed, and
# a second CALL does only what is left.
case_classify_table_resumes() {
  local id sid port other out err left
  q "$P0" -c "UPDATE comments SET hate_label = NULL, hate_scores = NULL" || return 1
  id=$(q "$P0" -c "SELECT min(id) FROM comments")
  sid=$(q "$P0" -c "SELECT get_shard_id_for_distribution_column('comments', $id)")
  port=$(q "$P0" -c "SELECT nodeport FROM citus_shards WHERE shardid = $sid")
  q "$port" -c "ALTER TABLE public.comments_$sid ADD CONSTRAINT no_label_here CHECK (hate_label IS NULL)" || return 1
  other=$(q "$P0" -c "SELECT sum(least(r.result::int, 5)) FROM run_command_on_shards('comments', 'SELECT count(*) FROM %s') r WHERE shardid <> $sid")
  out=$(q "$P0" -c "CALL gemmaclf_classify_table('comments', 'body', 'hate_label', 5)" 2>&1) && { echo "  CALL succeeded with a failing shard"; q "$port" -c "ALTER TABLE public.comments_$sid DROP CONSTRAINT no_label_here"; return 1; }
  q "$port" -c "ALTER TABLE public.comments_$sid DROP CONSTRAINT no_label_here" || return 1
  err=$out
  expect_error "error of the failed run" "$err" "gemmaclf_classify_table: shard $sid of public.comments failed: .*no_label_here" || return 1
  expect_error "its HINT" "$err" "HINT: +The batches done so far are committed" || return 1
  expect "rows labelled by the failed run (one batch of every other shard)" "$(q "$P0" -c "SELECT count(hate_label) FROM comments")" "$other" || return 1
  out=$(q "$P0" -c "CALL gemmaclf_classify_table('comments', 'body', 'hate_label', 5)" 2>&1) || { echo "$out"; return 1; }
  left=$((ROWS - other))
  expect "second run's first NOTICE" "$(grep -m1 NOTICE <<<"$out" | sed 's/.*NOTICE: *//')" "gemmaclf_classify_table: $left rows to classify" || return 1
  expect "labels equal to the CLI" "$(q "$P0" -c "SELECT count(*) FROM comments c JOIN cli x USING (id) WHERE c.hate_label = x.result->>'label'")" "$ROWS" || return 1
  echo "shard $sid failing (port $port): $(grep -m1 -o 'ERROR:.*' <<<"$err")"
  echo "$other rows of the other shards' batches stayed committed; the second run classified the $left left"
}

case_classify_table_scores() {
  local out
  q "$P0" -c "UPDATE comments SET hate_label = NULL, hate_scores = NULL" || return 1
  q "$P0" -c "SET client_min_messages = warning" -c "CALL gemmaclf_classify_table('comments', 'body', 'hate_label', 64, 'hate_scores')" || return 1
  out=$(q "$P0" -c "SELECT count(*) FILTER (WHERE c.hate_label = x.result->>'label') || ' ' || count(*) FILTER (WHERE c.hate_scores->>'label' = c.hate_label AND jsonb_typeof(c.hate_scores->'scores') = 'object') FROM comments c JOIN cli x USING (id)")
  expect "labels equal to the CLI, scores with the same label" "$out" "$ROWS $ROWS" || return 1
  echo "with scores_column: $ROWS labels equal to bin/gemmaclf classify, and their scores"
}

# Reference table: batches by primary key as ordinary UPDATEs that Citus applies to every
# placement; every node classifies every row and the placements stay identical, even when their
# physical row order differs.
case_classify_table_reference() {
  local out c sid
  q "$P0" -c "UPDATE refc SET label = NULL" || return 1
  sid=$(q "$P0" -c "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'refc'::regclass")
  q "$P1" -c "UPDATE refc_$sid SET body = body WHERE id IN (SELECT id FROM refc_$sid ORDER BY id LIMIT 2)" || return 1
  stats_reset
  out=$(workload -c "CALL gemmaclf_classify_table('refc', 'body', 'label', 7)" 2>&1) || { echo "$out"; return 1; }
  expect "progress NOTICEs (20 rows / 7)" "$(grep -c 'rows classified' <<<"$out")" 3 || return 1
  c=$(calls 'classify_hate(text)')
  expect "classify_hate calls (every placement classifies every row)" "$c" "20 20 20" || return 1
  out=$(q "$P0" <<SQL
SELECT string_agg(nodeport || ':' || result, ' ' ORDER BY nodeport) FROM run_command_on_placements('refc', 'SELECT count(label) FROM %s');
SELECT count(DISTINCT result) || ' ' || count(*) FROM run_command_on_placements('refc',
  \$\$SELECT md5(string_agg(id || label, ',' ORDER BY id)) FROM %s\$\$);
SELECT count(*) FROM refc r JOIN cli c USING (id) WHERE r.label = c.result->>'label';
SQL
  ) || return 1
  expect "labelled rows per placement; distinct placement contents, placements; labels equal to the CLI" "$(paste -sd' ' <<<"$out")" "$P0:20 $P1:20 $P2:20 1 3 20" || return 1
  # with a scores column: label and scores, identical on every placement
  out=$(q "$P0" <<'SQL'
CREATE TABLE refsc (id bigint PRIMARY KEY, body text, label text, sc jsonb);
SELECT create_reference_table('refsc') \g /dev/null
INSERT INTO refsc (id, body) SELECT id, body FROM texts ORDER BY id DESC LIMIT 12;
SET client_min_messages = warning;
CALL gemmaclf_classify_table('refsc', 'body', 'label', 5, 'sc');
SELECT count(DISTINCT result) || ' ' || count(*) FROM run_command_on_placements('refsc',
  $$SELECT count(sc) || ':' || md5(string_agg(id || label || sc::text, ',' ORDER BY id)) FROM %s$$);
SELECT count(*) FROM refsc r JOIN cli c USING (id) WHERE r.label = c.result->>'label' AND r.sc->>'label' = r.label;
SQL
  ) || return 1
  expect "with scores: distinct placement contents, placements; labels (and scores' labels) equal to the CLI" "$(paste -sd' ' <<<"$out")" "1 3 12" || return 1
  echo "reference table: 3 batches by primary key, every placement labelled identically (calls $c); with a scores column too"
}

# What gemmaclf_classify_table refuses on Citus tables, each with a HINT.
case_classify_table_refusals() {
  local err
  err=$(q "$P0" -c "BEGIN" -c "CALL gemmaclf_classify_table('comments', 'body', 'hate_label', 5)" -c "COMMIT" 2>&1) && { echo "  CALL in a transaction block succeeded"; return 1; }
  expect_error "in a transaction block" "$err" 'is a Citus distributed table: call it outside a transaction block' || return 1
  expect_error "its HINT" "$err" 'HINT: +CALL gemmaclf_classify_table\(...\) on its own' || return 1
  q "$P0" -c "CREATE TABLE refnopk (body text, label text)" -c "SELECT create_reference_table('refnopk')" >/dev/null || return 1
  err=$(q "$P0" -c "CALL gemmaclf_classify_table('refnopk', 'body', 'label')" 2>&1) && { echo "  CALL on a reference table without a primary key succeeded"; return 1; }
  expect_error "reference table without a primary key" "$err" 'reference table public.refnopk has no single-column primary key' || return 1
  expect_error "its HINT" "$err" 'HINT: +Label it in one statement: UPDATE public.refnopk SET label = classify_hate\(body\)' || return 1
  q "$P0" -c "CREATE TABLE single (id int, body text, label text)" -c "SELECT create_distributed_table('single', null)" >/dev/null || return 1
  err=$(q "$P0" -c "CALL gemmaclf_classify_table('single', 'body', 'label')" 2>&1) && { echo "  CALL on a single-shard table succeeded"; return 1; }
  expect_error "single-shard table" "$err" 'is a Citus table that is neither hash-distributed nor a reference table' || return 1
  err=$(q "$P0" -c "CALL gemmaclf_classify_table('bykey', 'body', 'lab')" 2>&1) && { echo "  CALL with the distribution column as label column succeeded"; return 1; }
  expect_error "label column = distribution column" "$err" 'column lab is the distribution column of public.bykey' || return 1
  expect_error "its HINT" "$err" 'HINT: +Store the label in another column' || return 1
  echo "refused with a HINT: in a transaction block; reference table without a primary key; single-shard table; label column = distribution column"
}

# The background labelling (gemmaclf_watch) does not label Citus tables: refused with a HINT.
case_watch_refused() {
  local err t
  for t in comments refc; do
    err=$(q "$P0" -c "SELECT gemmaclf_watch('$t', 'body', '$( [ $t = comments ] && echo hate_label || echo label)')" 2>&1) && { echo "  gemmaclf_watch($t) succeeded"; return 1; }
    expect_error "gemmaclf_watch on $t" "$err" "gemmaclf_watch: \"$t\" is a Citus table" || return 1
    expect_error "its HINT" "$err" 'HINT: +Use the gemmaclf_flag_hate trigger .* or CALL gemmaclf_classify_table' || return 1
  done
  expect "rows in gemmaclf_watch" "$(q "$P0" -c "SELECT count(*) FROM gemmaclf_watch")" 0 || return 1
  echo "$(grep -m1 ERROR <<<"$err")"
}

# A worker that cannot load the model: a clear error naming it, and nothing committed anywhere.
case_broken_model_on_a_worker() {
  local err out rc=0 deadline
  q "$P0" -c "UPDATE comments SET hate_label = NULL" || return 1
  q "$P1" -c "ALTER SYSTEM SET gemmaclf.model_path = '/nonexistent/gemmaclf-model'" -c "SELECT pg_reload_conf()" >/dev/null || return 1
  deadline=$(( $(date +%s) + 30 ))   # new connections see the reloaded setting once the postmaster has read it
  until [ "$(q "$P1" -c "SHOW gemmaclf.model_path")" = /nonexistent/gemmaclf-model ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "  worker $P1 did not reload its configuration"; rc=1; break; }
    sleep 0.1
  done
  if [ $rc -eq 0 ]; then
    if err=$(q "$P0" -c "UPDATE comments SET hate_label = classify_hate(body)" 2>&1); then
      echo "  UPDATE succeeded with a broken model on a worker"; rc=1
    else
      expect_error "error" "$err" 'could not load the gemmaclf model from "/nonexistent/gemmaclf-model"' &&
        expect_error "error context" "$err" "while executing command on localhost:$P1" || rc=1
      out=$(q "$P0" -c "SELECT count(hate_label) FROM comments")
      expect "rows labelled after the failed UPDATE (all shards, both workers)" "$out" 0 || rc=1
    fi
  fi
  q "$P1" -c "ALTER SYSTEM RESET gemmaclf.model_path" -c "SELECT pg_reload_conf()" >/dev/null || rc=1
  [ $rc -eq 0 ] && echo "$(grep -m1 ERROR <<<"$err") / $(grep -m1 CONTEXT <<<"$err"); no row labelled"
  return $rc
}

run_case extension_on_all_nodes
run_case load_data
run_case update_explain_tasks
run_case update_calls_per_node
run_case select_pushdown
run_case router_query
run_case constant_folded_on_coordinator
run_case labels_equal_cli
run_case settings_not_propagated
run_case same_model_every_node
run_case trigger_refused_without_setting
run_case trigger_created_on_every_shard
run_case trigger_labels_rows_on_shards
run_case trigger_survives_shard_move
run_case trigger_refuses_distribution_column
run_case trigger_then_distribute
run_case reference_table_trigger
run_case reference_table_update_and_join
run_case classify_table_distributed
run_case classify_table_resumes
run_case classify_table_scores
run_case classify_table_reference
run_case classify_table_refusals
run_case watch_refused
run_case broken_model_on_a_worker

echo "citus suite: $(( $(date +%s) - t0 )) s (build/install and cluster start included)"
echo "citus: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
