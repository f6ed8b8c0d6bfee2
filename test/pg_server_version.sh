#!/bin/sh
# Prints the server's version and checks that it is PostgreSQL $1: scripts/pg-test.sh runs each
# version's suites against a server of the version the extension was just built for.
set -eu
v=$(psql -X -At -c "SELECT current_setting('server_version_num')::int / 10000 || ' ' || current_setting('server_version') || ' (' || version() || ')'")
echo "server_version: ${v#* }"
[ "${v%% *}" = "$1" ] || { echo "expected PostgreSQL $1"; exit 1; }
