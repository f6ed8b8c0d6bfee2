#!/usr/bin/env bash
# Background labelling (issue 11): watched tables labelled by the background workers.
#
# Starts its own throwaway cluster (scripts/cluster.sh: initdb + pg_ctl) because
# the feature needs shared_preload_libraries and the suite restarts the server, kills a worker
# and finally starts the server without the library. The cluster and its directory are removed
# on exit. Nothing here waits for a fixed time: every wait is a poll of a condition with a
# bound (wait_for), and a test fails when the bound is reached.
#
# Environment: PG_CONFIG (the server's pg_config; default: pg_config on PATH), GC_WATCH_PORT
# (default 55411), GC_SHARED (reference data; default ../shared). The workers and the sessions
# use the reference classifier, so labels are compared with classify_hate() of the same model.
# Prints one "ok - ..." / "not ok - ..." line per test and "watch: N passed, M failed".
set -u
cd "$(dirname "$0")/.."
GC_SHARED=$(cd "${GC_SHARED:-../shared}" && pwd) || { echo "reference data not found"; exit 1; }
PG_CONFIG=${PG_CONFIG:-pg_config}
BIN=$("$PG_CONFIG" --bindir) || exit 1
PORT=${GC_WATCH_PORT:-55411}
REF=$GC_SHARED/reference/hf-trained-classifier
DEV=$GC_SHARED/data/indo-hatespeech/dev.jsonl
WORKERS=2

. scripts/cluster.sh
trap cluster_remove EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
t() { # NAME COMMAND...: one test, passes when COMMAND succeeds
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1)); echo "ok - $name"
    else
        failed=$((failed + 1)); echo "not ok - $name"
    fi
}
q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$PORT" -U postgres -d postgres "$@"; }
q_as() { local role=$1; shift; "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$PORT" -U "$role" -d postgres "$@"; }
eq() { # EXPECTED SQL: the query's output is EXPECTED
    local got
    got=$(q -c "$2" 2>"$dir/stderr")
    [ "$got" = "$1" ] && return 0
    echo "    query:    $2"; echo "    expected: $1"; echo "    got:      $got"
    sed 's/^/    stderr:   /' "$dir/stderr"
    return 1
}
wait_for() { # SQL [SECONDS]: polls until SQL returns t; fails after SECONDS (default 60)
    local sql=$1 limit=${2:-60} start=$SECONDS
    while [ $((SECONDS - start)) -lt "$limit" ]; do
        [ "$(q -c "$sql" 2>/dev/null)" = t ] && return 0
        sleep 0.2
    done
    echo "    no success within ${limit} s: $sql"
    echo "    status: $(q -c "SELECT rel, pending, failed, labelled, last_error FROM gemmaclf_watch_status" 2>&1 | tr '\n' ';')"
    return 1
}
fails_with() { # PATTERN COMMAND...: COMMAND fails and its output matches PATTERN (grep -E)
    local pattern=$1 out
    shift
    if out=$("$@" 2>&1); then echo "    succeeded: $out"; return 1; fi
    echo "$out" | grep -qE "$pattern" && return 0
    echo "    output does not match /$pattern/: $out"
    return 1
}
eq_sh() { # EXPECTED COMMAND...: the command's output is EXPECTED
    local want=$1 got
    shift
    got=$("$@")
    [ "$got" = "$want" ] || { echo "    $*: expected $want, got $got"; return 1; }
}
log_has() { grep -qE "$1" "$dir/server.log" || { echo "    not in the server log: /$1/"; return 1; }; }
# drained TABLE: nothing waits in TABLE (for the status view, which the test then trusts)
drained() { wait_for "SELECT pending = 0 FROM gemmaclf_watch_status WHERE rel = '$1'::regclass" "${2:-120}"; }
# right TABLE: every row labelled once, with classify_hate(body) of the same model
right() {
    eq "0|0" "SELECT count(*) FILTER (WHERE label IS DISTINCT FROM classify_hate(body)),
                     count(*) FILTER (WHERE writes <> 1) FROM $1 WHERE body IS NOT NULL"
}
workers_up() { # N [PID]: N workers are running (after a start, a restart or a crash), not PID
    wait_for "SELECT count(*) = $1 FROM pg_stat_activity
               WHERE backend_type = 'gemmaclf watch' AND pid <> ${2:-0}" 60
}

# ---- the cluster ----
cluster_create "$BIN" watch "$PORT" shared_preload_libraries=gemmaclf "gemmaclf.model_path=$REF" \
    "gemmaclf.workers=$WORKERS" gemmaclf.batch_size=16 || exit 1
dir=$CLUSTER_DIR
cluster_start || exit 1

q >/dev/null <<SQL || { echo "setup failed"; exit 1; }
CREATE EXTENSION gemmaclf;
CREATE TABLE dev AS
SELECT n::int AS id, l::jsonb->>'text' AS body
FROM regexp_split_to_table(pg_read_file('$DEV'), E'\n') WITH ORDINALITY AS x(l, n) WHERE l <> '';
-- counts the label writes of each row (exactly once) and who made them
CREATE FUNCTION count_labels() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    IF NEW.label IS NOT NULL AND NEW.label IS DISTINCT FROM OLD.label THEN
        NEW.writes := OLD.writes + 1;
        NEW.labelled_by := current_user;
    END IF;
    RETURN NEW;
END \$\$;
CREATE FUNCTION watched_table(name text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
    EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, body text, label text, scores jsonb,
                    writes int NOT NULL DEFAULT 0, labelled_by name)', name);
    EXECUTE format('CREATE TRIGGER count_labels BEFORE UPDATE ON %I FOR EACH ROW
                    EXECUTE FUNCTION count_labels()', name);
END \$\$;
SQL

# ---- workers ----
t "$WORKERS workers run, with backend_type 'gemmaclf watch'" workers_up "$WORKERS"

# ---- a backlog ----
q -c "SELECT watched_table('backlog');
      INSERT INTO backlog (id, body) SELECT id, body FROM dev WHERE id <= 600;
      SELECT gemmaclf_watch('backlog', 'body', 'label', 'scores')" >/dev/null
t "a backlog of 600 rows is labelled" drained backlog
t "backlog: every label equals classify_hate(body), each row written once" right backlog
t "backlog: scores are the label's" eq 0 \
    "SELECT count(*) FROM backlog WHERE scores->>'label' IS DISTINCT FROM label"
t "status view: labelled, rows/s, lag 0, no failures, workers" eq "600|t|00:00:00|0|$WORKERS" \
    "SELECT labelled, rows_per_s > 0, lag, failed, workers FROM gemmaclf_watch_status
      WHERE rel = 'backlog'::regclass"
t "the watch made its trigger (ENABLE ALWAYS) and partial index" eq "A|1" \
    "SELECT (SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'backlog'::regclass
               AND tgname = 'gemmaclf_watch'),
            (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'backlog'::regclass AND c.relname LIKE 'gemmaclf_watch_pending_%'
                AND i.indpred IS NOT NULL)"

# ---- concurrent single-row inserts ----
q -c "SELECT watched_table('stream'); SELECT gemmaclf_watch('stream', 'body', 'label', 'scores')" \
    >/dev/null
for c in 1 2 3 4; do
    for i in $(seq 1 100); do
        echo "INSERT INTO stream (id, body) SELECT $((c * 1000 + i)), body FROM dev WHERE id = $((600 + c * 100 + i));"
    done | q >/dev/null &
done
wait
t "4 clients x 100 single-row INSERTs: all labelled" drained stream
t "stream: 400 rows, labels equal classify_hate(body), each written once" right stream
t "stream: 400 rows arrived" eq 400 "SELECT count(*) FROM stream"

# ---- the procedure on a watched table ----
q -c "SELECT watched_table('sharing'); INSERT INTO sharing (id, body) SELECT id, body FROM dev WHERE id <= 300;
      SELECT gemmaclf_watch('sharing', 'body', 'label')" >/dev/null
t "CALL gemmaclf_classify_table on a watched table runs beside the workers (SKIP LOCKED)" \
    q -c "SET client_min_messages = warning" -c "CALL gemmaclf_classify_table('sharing', 'body', 'label', 16)"
t "... every row labelled" drained sharing
t "... once, with classify_hate's label" right sharing

# ---- text changes ----
t "UPDATE of the text NULLs label and scores in the same statement" eq "t" \
    "UPDATE stream SET body = 'Sali' WHERE id = 1001 RETURNING label IS NULL AND scores IS NULL"
t "... and the row is labelled again" drained stream
t "... with the new text's label" eq "t|2" \
    "SELECT label = classify_hate('Sali'), writes FROM stream WHERE id = 1001"
t "UPDATE of another column keeps the label" eq "t" \
    "UPDATE stream SET labelled_by = 'x' WHERE id = 1002 RETURNING label IS NOT NULL"
t "UPDATE that sets a new text and a different label keeps that label" eq "manual" \
    "UPDATE stream SET body = 'zzz', label = 'manual' WHERE id = 1003 RETURNING label"

# ---- logical replication: session_replication_role = replica, as the apply worker runs ----
t "rows written with session_replication_role = replica are labelled too" eq "t" \
    "SET session_replication_role = replica;
     INSERT INTO stream (id, body) VALUES (9001, 'Kya yaar');
     UPDATE stream SET body = 'Randi saali mc' WHERE id = 1004 RETURNING label IS NULL"
t "... (replica) labelled" drained stream
t "... (replica) with classify_hate's labels" eq "0" \
    "SELECT count(*) FROM stream WHERE id IN (9001, 1004) AND label IS DISTINCT FROM classify_hate(body)"

# ---- a partitioned table ----
q -c "CREATE TABLE parts (id int, body text, label text, writes int NOT NULL DEFAULT 0,
                          labelled_by name) PARTITION BY RANGE (id);
      CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (1000);
      CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (1000) TO (3000);
      CREATE TRIGGER count_labels BEFORE UPDATE ON parts FOR EACH ROW EXECUTE FUNCTION count_labels();
      INSERT INTO parts (id, body) SELECT id, body FROM dev WHERE id <= 1500 AND id % 10 = 0;
      SELECT gemmaclf_watch('parts', 'body', 'label');
      INSERT INTO parts_2 (id, body) VALUES (2500, 'Sali')" >/dev/null
t "a partitioned table: the rows of every partition are labelled" drained parts
t "... once, with classify_hate's label" right parts
t "... its partitions have the trigger, enabled ALWAYS" eq "A|A" \
    "SELECT string_agg(tgenabled::text, '|' ORDER BY tgrelid::regclass::text) FROM pg_trigger
      WHERE tgname = 'gemmaclf_watch' AND tgrelid IN ('parts_1'::regclass, 'parts_2'::regclass)"

# ---- a bad row ----
q -c "SELECT watched_table('picky');
      ALTER TABLE picky ADD CONSTRAINT no_poison CHECK (label IS NULL OR body <> 'poison');
      SELECT gemmaclf_watch('picky', 'body', 'label');
      INSERT INTO picky (id, body) SELECT id, CASE WHEN id = 5 THEN 'poison' ELSE body END
      FROM dev WHERE id <= 40" >/dev/null
t "a row that fails (CHECK) is skipped; the rows behind it are labelled" \
    wait_for "SELECT pending = 0 AND failed = 1 FROM gemmaclf_watch_status WHERE rel = 'picky'::regclass"
t "... the others are right" eq "0|39" \
    "SELECT count(*) FILTER (WHERE id <> 5 AND label IS DISTINCT FROM classify_hate(body)),
            count(*) FILTER (WHERE label IS NOT NULL) FROM picky"
t "... it is recorded in gemmaclf_watch_errors with its error" eq "23514|t|t" \
    "SELECT e.sqlstate, e.error LIKE '%no_poison%', e.row_ctid = p.ctid
       FROM gemmaclf_watch_errors e JOIN picky p ON p.id = 5 WHERE e.rel = 'picky'::regclass"
t "... and shown as the table's last error" eq "t|t" \
    "SELECT last_error LIKE '%no_poison%', last_error_at IS NOT NULL FROM gemmaclf_watch_status
      WHERE rel = 'picky'::regclass"
t "... and logged" log_has 'row \(0,5\) of public.picky could not be labelled'
q -c "UPDATE picky SET body = 'fine now' WHERE id = 5" >/dev/null
t "a failed row is tried again once it changes" \
    wait_for "SELECT pending = 0 AND failed = 0 FROM gemmaclf_watch_status WHERE rel = 'picky'::regclass
              AND (SELECT label FROM picky WHERE id = 5) = classify_hate('fine now')"
q -c "INSERT INTO picky (id, body) VALUES (100, 'poison')" >/dev/null
wait_for "SELECT failed = 1 FROM gemmaclf_watch_status WHERE rel = 'picky'::regclass" >/dev/null
t "gemmaclf_watch_retry forgets failed rows, and they are labelled then" eq "1" \
    "ALTER TABLE picky DROP CONSTRAINT no_poison; SELECT gemmaclf_watch_retry('picky')"
t "... labelled" wait_for "SELECT label = classify_hate('poison') FROM picky WHERE id = 100"

# ---- security ----
q >/dev/null <<'SQL'
CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN; CREATE ROLE dave LOGIN;
CREATE TABLE guarded (id int PRIMARY KEY, body text, label text, writes int NOT NULL DEFAULT 0,
                      labelled_by name, visible bool);
CREATE TRIGGER count_labels BEFORE UPDATE ON guarded FOR EACH ROW EXECUTE FUNCTION count_labels();
GRANT SELECT ON guarded TO bob;
GRANT SELECT, UPDATE ON guarded TO carol;
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
CREATE POLICY carol_sees_visible ON guarded TO carol USING (visible);
CREATE POLICY bob_sees_all ON guarded FOR SELECT TO bob USING (true);
SELECT watched_table('daves');
ALTER TABLE daves OWNER TO dave;
SQL
t "a role without UPDATE cannot watch" fails_with "permission denied for table guarded" \
    q_as bob -c "SELECT gemmaclf_watch('guarded', 'body', 'label')"
t "a role with SELECT and UPDATE can watch" q_as carol -c "SELECT gemmaclf_watch('guarded', 'body', 'label')"
t "another role cannot unwatch it" fails_with "permission denied for the watch" \
    q_as bob -c "SELECT gemmaclf_unwatch('guarded')"
q -c "INSERT INTO guarded (id, body, visible) SELECT id, body, id % 2 = 0 FROM dev WHERE id <= 30" >/dev/null
t "the workers label as the watching role, under its row-level security" \
    wait_for "SET ROLE carol; SELECT pending = 0 FROM gemmaclf_watch_status WHERE rel = 'guarded'::regclass"
t "... rows written as carol, rows carol cannot see left alone" eq "15|carol|15" \
    "SELECT count(*) FILTER (WHERE label IS NOT NULL), string_agg(DISTINCT labelled_by, ','),
            count(*) FILTER (WHERE label IS NULL AND NOT visible) FROM guarded"
t "... the status view, as carol, counts what carol sees" eq "0|carol" \
    "SET ROLE carol; SELECT pending, runs_as FROM gemmaclf_watch_status WHERE rel = 'guarded'::regclass"
q -c "SELECT gemmaclf_watch('daves', 'body', 'label')" >/dev/null
t "a superuser's watch acts as the table's owner, never as a superuser" eq "dave" \
    "SELECT runs_as FROM gemmaclf_watch WHERE rel = 'daves'::regclass"
q -c "INSERT INTO daves (id, body) VALUES (1, 'Sali')" >/dev/null
t "... labelled as dave" wait_for "SELECT labelled_by = 'dave' FROM daves WHERE id = 1"

# ---- misuse ----
t "watching a table twice is an error" fails_with "already watched" \
    q -c "SELECT gemmaclf_watch('backlog', 'body', 'label')"
t "a text column of the wrong type is refused by the column checker" fails_with "has type integer" \
    q -c "SELECT gemmaclf_watch('dev', 'id', 'body')"
t "a label column too short for the labels is refused" fails_with "too few for the label" \
    q -c "CREATE TABLE narrow (body text, label varchar(4)); SELECT gemmaclf_watch('narrow', 'body', 'label')"
t "a temporary table cannot be watched" fails_with "is a temporary table" \
    q -c "CREATE TEMP TABLE tmp (body text, label text); SELECT gemmaclf_watch('tmp', 'body', 'label')"
t "a view cannot be watched" fails_with "is not a table" \
    q -c "CREATE VIEW dev_view AS SELECT * FROM dev; SELECT gemmaclf_watch('dev_view', 'body', 'body')"

# ---- stopping ----
q -c "SELECT watched_table('dropcol'); SELECT gemmaclf_watch('dropcol', 'body', 'label', 'scores');
      SELECT watched_table('droptab'); SELECT gemmaclf_watch('droptab', 'body', 'label');
      SELECT watched_table('renamed'); SELECT gemmaclf_watch('renamed', 'body', 'label')" >/dev/null
t "dropping a watched column stops the watch at once and removes its trigger" eq "0|0" \
    "ALTER TABLE dropcol DROP COLUMN scores;
     SELECT (SELECT count(*) FROM gemmaclf_watch WHERE rel = 'dropcol'::regclass),
            (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'dropcol'::regclass AND tgname = 'gemmaclf_watch')"
t "... with a LOG message" log_has 'stopped watching "dropcol": column scores was dropped'
t "dropping a watched table stops its watch" eq "0" \
    "DROP TABLE droptab; SELECT count(*) FROM gemmaclf_watch WHERE rel::text = 'droptab'"
t "... with a LOG message" log_has 'stopped watching .*droptab.*: the table was dropped'
q -c "ALTER TABLE renamed RENAME COLUMN body TO txt; INSERT INTO renamed (id, txt) VALUES (1, 'x');
      INSERT INTO backlog (id, body) VALUES (100000, 'Sali')" >/dev/null
t "a renamed column stops the watch at the workers' next look, with a LOG message" \
    wait_for "SELECT NOT EXISTS (SELECT FROM gemmaclf_watch WHERE rel = 'renamed'::regclass)"
t "... logged" log_has 'stopped watching "renamed": column "body" .*does not exist'
q -c "SELECT gemmaclf_unwatch('renamed')" >/dev/null
t "... gemmaclf_unwatch removes what it left" eq "0" \
    "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'renamed'::regclass AND tgname = 'gemmaclf_watch'"
q -c "SELECT gemmaclf_unwatch('stream')" >/dev/null
t "gemmaclf_unwatch drops the trigger and the index" eq "0|0|0" \
    "SELECT (SELECT count(*) FROM gemmaclf_watch WHERE rel = 'stream'::regclass),
            (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'stream'::regclass AND tgname = 'gemmaclf_watch'),
            (SELECT count(*) FROM pg_class WHERE relname LIKE 'gemmaclf_watch_pending_' || 'stream'::regclass::oid)"
q -c "INSERT INTO stream (id, body) VALUES (9999, 'Sali'); INSERT INTO backlog (id, body) VALUES (100001, 'Sali')" >/dev/null
t "after gemmaclf_unwatch new rows stay unlabelled (while a watched table's are labelled)" \
    wait_for "SELECT (SELECT label IS NOT NULL FROM backlog WHERE id = 100001)
                 AND (SELECT label IS NULL FROM stream WHERE id = 9999)"
t "pg_dump keeps the watches (gemmaclf_watch is a configuration table)" \
    sh -c "'$BIN/pg_dump' -h '$dir' -p $PORT -U postgres -d postgres --data-only -t gemmaclf_watch | grep -q 'backlog	body	label	scores'"

# ---- a worker killed, the server restarted: nothing lost ----
pm_pid=$(head -1 "$dir/data/postmaster.pid")
q -c "SELECT watched_table('crashy'); INSERT INTO crashy (id, body) SELECT id, body FROM dev WHERE id <= 1500;
      SELECT gemmaclf_watch('crashy', 'body', 'label', 'scores')" >/dev/null
wait_for "SELECT count(*) > 100 FROM crashy WHERE label IS NOT NULL" >/dev/null
victim=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'gemmaclf watch' LIMIT 1")
started_before=$(q -c "SELECT pg_postmaster_start_time()")
kill -9 "$victim"
t "kill -9 of a worker: the workers run again" workers_up "$WORKERS" "$victim"
same_postmaster() { [ "$(head -1 "$dir/data/postmaster.pid")" = "$pm_pid" ] || { echo "    the postmaster changed"; return 1; }; }
t "... the postmaster survived (it reinitialised the cluster, as for any crashed backend)" \
    same_postmaster
t "... and logged why" log_has 'gemmaclf watch.* was terminated by signal 9'

echo "    (pg_postmaster_start_time before: $started_before; after: $(q -c "SELECT pg_postmaster_start_time()"))"
t "... every row is labelled" drained crashy
t "... once, with classify_hate's label" right crashy
victim=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'gemmaclf watch' LIMIT 1")
q -c "SELECT pg_terminate_backend($victim)" >/dev/null
t "pg_terminate_backend of a worker: it is restarted" workers_up "$WORKERS" "$victim"
reinits() { grep -c 'all server processes terminated; reinitializing' "$dir/server.log"; }
t "... alone: the cluster was not reinitialised again" eq_sh 1 reinits
q -c "SELECT watched_table('restarty'); INSERT INTO restarty (id, body) SELECT id, body FROM dev WHERE id <= 800;
      SELECT gemmaclf_watch('restarty', 'body', 'label')" >/dev/null
wait_for "SELECT count(*) > 50 FROM restarty WHERE label IS NOT NULL" >/dev/null
restart() { cluster_ctl -m fast -w restart >/dev/null 2>&1; }
t "a server restart in the middle of a backlog" restart
t "... the workers start again" workers_up "$WORKERS"
t "... and finish the backlog" drained restarty
t "... (restarty) right" right restarty

# ---- the one database, and shared_preload_libraries ----
q -c "CREATE DATABASE elsewhere" >/dev/null
t "gemmaclf_watch in another database than gemmaclf.database: ERROR with a HINT" \
    fails_with "HINT: .*gemmaclf.database = 'elsewhere'" \
    "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$PORT" -U postgres -d elsewhere \
    -c "CREATE EXTENSION gemmaclf; CREATE TABLE t (body text, label text); SELECT gemmaclf_watch('t', 'body', 'label')"
echo "shared_preload_libraries = ''" >>"$dir/data/postgresql.conf"
restart
t "without shared_preload_libraries: ERROR with a HINT naming it" \
    fails_with "HINT: .*shared_preload_libraries = 'gemmaclf'" \
    q -c "SELECT gemmaclf_watch('dev', 'body', 'body')"
t "... watched tables still take INSERTs and UPDATEs, and the view answers" eq "0|t" \
    "INSERT INTO backlog (id, body) VALUES (100002, 'x'); UPDATE backlog SET body = 'y' WHERE id = 1;
     SELECT workers, pending > 0 FROM gemmaclf_watch_status WHERE rel = 'backlog'::regclass"

echo "watch: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
