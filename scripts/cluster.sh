# shellcheck shell=bash
# Throwaway PostgreSQL clusters for the test suites and benchmarks; sourced, not run.
#
# A cluster is initdb + pg_ctl in a temporary directory of its own that also holds its socket (no
# TCP), owned by user postgres when run as root (the server refuses to run as root). So clusters
# side by side never collide, and a killed run leaves nothing that blocks the next one
# (pg_virtualenv, as root, always names its cluster 15/regress in /etc/postgresql: one stale copy
# made every later run fail). The port only names the socket file.
#
#   cluster_create BINDIR NAME PORT [SETTING=VALUE ...]
#       CLUSTER_DIR = a new /tmp/gemmaclf-NAME-XXXXXX (data/, the socket, initdb.log, server.log),
#       CLUSTER_BIN = BINDIR, CLUSTER_PORT = PORT; runs initdb (its log printed when it fails) and
#       appends to postgresql.conf the port, the socket directory, fsync = off and each setting as
#       name = 'value'. Does not start the server. The caller removes the cluster, usually with
#       `trap cluster_remove EXIT`.
#   cluster_ctl ARGS...  pg_ctl on the cluster as its owner (-D and -l given)
#   cluster_start        starts it and waits; when it does not start, prints the end of its log
#   cluster_remove       stops it (immediate: it is thrown away) and removes its directory
#   cluster_env          exports PGHOST, PGPORT, PGUSER and PGDATABASE for it
#   cluster_run BINDIR NAME PORT [SETTING=VALUE ...] -- COMMAND...
#       the whole life of one cluster, for callers that need it for one command: create, start,
#       run COMMAND with the cluster_env variables and BINDIR first in PATH, print the end of the
#       server log when COMMAND fails, remove (also when interrupted). Runs in a subshell, so its
#       trap and CLUSTER_* stay local; returns COMMAND's status. Variables given in front of the
#       call (OPENBLAS_CORETYPE=... cluster_run ...) reach the server and COMMAND.

cluster_create() {
    local s
    CLUSTER_BIN=$1 CLUSTER_PORT=$3
    CLUSTER_DIR=$(mktemp -d "/tmp/gemmaclf-$2-XXXXXX") || return 1
    shift 3
    chmod 755 "$CLUSTER_DIR"   # files put there for the server to read (pg_read_file)
    CLUSTER_AS_OWNER=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$CLUSTER_DIR"
        CLUSTER_AS_OWNER=(runuser -u postgres --)
    fi
    if ! (cd / && "${CLUSTER_AS_OWNER[@]}" "$CLUSTER_BIN/initdb" -D "$CLUSTER_DIR/data" -U postgres \
            -A trust -E UTF8 --locale=C.UTF-8 --no-sync) >"$CLUSTER_DIR/initdb.log" 2>&1; then
        cat "$CLUSTER_DIR/initdb.log"
        return 1
    fi
    {
        echo "port = $CLUSTER_PORT"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$CLUSTER_DIR'"
        echo "fsync = off"
        for s in "$@"; do echo "${s%%=*} = '${s#*=}'"; done
    } >>"$CLUSTER_DIR/data/postgresql.conf"
}

cluster_ctl() {
    (cd / && "${CLUSTER_AS_OWNER[@]}" "$CLUSTER_BIN/pg_ctl" -D "$CLUSTER_DIR/data" \
        -l "$CLUSTER_DIR/server.log" "$@")
}

cluster_start() {
    cluster_ctl -w start >/dev/null 2>&1 && return 0
    echo "*** the PostgreSQL server did not start; $CLUSTER_DIR/server.log:"
    tail -50 "$CLUSTER_DIR/server.log"
    return 1
}

cluster_remove() {
    [ -n "${CLUSTER_DIR:-}" ] || return 0
    cluster_ctl -m immediate stop >/dev/null 2>&1
    rm -rf "$CLUSTER_DIR"
    CLUSTER_DIR=   # removed: a later cluster_remove (the EXIT trap) has nothing to do
}

cluster_env() {
    unset PGHOSTADDR PGSERVICE PGPASSWORD
    export PGHOST=$CLUSTER_DIR PGPORT=$CLUSTER_PORT PGUSER=postgres PGDATABASE=postgres
}

cluster_run() (
    local run_bin=$1 run_name=$2 run_port=$3 run_rc=0 run_settings=()
    shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do run_settings+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    trap cluster_remove EXIT
    trap 'exit 130' INT TERM
    cluster_create "$run_bin" "$run_name" "$run_port" "${run_settings[@]}" || exit 1
    cluster_start || exit 1
    cluster_env
    PATH=$run_bin:$PATH "$@" || run_rc=$?
    if [ "$run_rc" -ne 0 ]; then
        echo "*** server log (last 100 lines) ***"
        tail -100 "$CLUSTER_DIR/server.log"
    fi
    exit "$run_rc"
)
