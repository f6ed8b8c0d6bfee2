#!/bin/sh
# Prints the server's version and checks that it is PostgreSQL $1: scripts/pg-test.sh runs each
# version's suites against a server of the version the extension was just built for.
set -eu
psql -X -At -c "SELECT 'server_version: ' || current_setting('server_version')" \
    -c "SELECT 'version(): ' || version()"
major=$(psql -X -At -c "SELECT current_setting('server_version_num')::int / 10000")
[ "$major" = "$1" ] || { echo "expected PostgreSQL $1, the server is $major"; exit 1; }
