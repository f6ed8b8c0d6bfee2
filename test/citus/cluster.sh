#!/usr/bin/env bash
# A throwaway Citus cluster on the loopback interface: a coordinator and two workers, each its own
# initdb'ed data directory under DIR, run by the `postgres` user with pg_ctl (not the system cluster).
#   cluster.sh start DIR   initdb + start the three nodes, CREATE EXTENSION citus on each, register
#                          the coordinator and add the workers; the nodes' sockets are in DIR/sock
#   cluster.sh stop DIR    stop every node started under DIR (DIR itself is the caller's to remove)
# Environment:
#   CITUS_PORT    coordinator port (default 57700); the workers use CITUS_PORT+1 and CITUS_PORT+2
#   CITUS_MODEL   when set, gemmaclf.model_path on every node (default: the installed bundled model)
#   PG_BINDIR     PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)
# Every node preloads 'citus,gemmaclf' (Citus must come first) and tracks function calls
# (track_functions = all), so tests can count where classify_hate ran.
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
CITUS_PORT=${CITUS_PORT:-57700}
NODES=(coord w1 w2)

die() { echo "cluster.sh: $*" >&2; exit 1; }
port_of() { case $1 in coord) echo "$CITUS_PORT" ;; w1) echo $((CITUS_PORT + 1)) ;; w2) echo $((CITUS_PORT + 2)) ;; esac; }

# as_postgres CMD...: runs CMD as the postgres user (PostgreSQL refuses to run as root).
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

start() {
  local dir=$1 n port
  [ -d "$dir" ] || die "$dir: no such directory"
  mkdir -p "$dir/sock"
  chown -R postgres: "$dir"
  chmod 755 "$dir" "$dir/sock"
  for n in "${NODES[@]}"; do
    port=$(port_of "$n")
    if as_postgres "$PG_BINDIR/pg_isready" -q -h localhost -p "$port"; then
      die "port $port already in use (set CITUS_PORT to a free base port)"
    fi
    as_postgres "$PG_BINDIR/initdb" -N -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
      -D "$dir/$n" >"$dir/$n.initdb.log" 2>&1 || { cat "$dir/$n.initdb.log"; die "initdb $n failed"; }
    {
      echo "port = $port"
      echo "listen_addresses = 'localhost'"
      echo "unix_socket_directories = '$dir/sock'"
      echo "shared_preload_libraries = 'citus,gemmaclf'"
      echo "max_prepared_transactions = 100   # Citus commits multi-node writes with 2PC"
      echo "track_functions = 'all'"
      echo "fsync = off"
      echo "full_page_writes = off"
      if [ -n "${CITUS_MODEL:-}" ]; then echo "gemmaclf.model_path = '$CITUS_MODEL'"; fi
    } >>"$dir/$n/postgresql.conf"
    as_postgres "$PG_BINDIR/pg_ctl" -D "$dir/$n" -l "$dir/$n.log" -w -t 60 start >/dev/null ||
      { tail -20 "$dir/$n.log"; die "node $n (port $port) did not start"; }
  done
  for n in "${NODES[@]}"; do
    psql -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$(port_of "$n")" -U postgres -d postgres \
      -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null ||
      die "CREATE EXTENSION citus on $n failed"
  done
  psql -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$CITUS_PORT" -U postgres -d postgres \
    -c "SELECT citus_set_coordinator_host('localhost', $CITUS_PORT)" \
    -c "SELECT citus_add_node('localhost', $(port_of w1))" \
    -c "SELECT citus_add_node('localhost', $(port_of w2))" >/dev/null ||
    die "adding the nodes failed"
}

stop() {
  local dir=$1 n
  for n in "${NODES[@]}"; do
    if [ -f "$dir/$n/postmaster.pid" ]; then
      as_postgres "$PG_BINDIR/pg_ctl" -D "$dir/$n" -m fast -w -t 60 stop >/dev/null ||
        echo "cluster.sh: stopping $n failed" >&2
    fi
  done
}

case "${1:-}" in
  start) [ $# -eq 2 ] || die "usage: cluster.sh start DIR"; start "$2" ;;
  stop)  [ $# -eq 2 ] || die "usage: cluster.sh stop DIR"; stop "$2" ;;
  *) die "usage: cluster.sh start|stop DIR" ;;
esac
