#!/bin/sh
# The fuzz suite of the PostgreSQL path (issue 10): test/pgfuzz.py runs ~250 deterministic cases
# (fixed seed) through SQL in the cluster scripts/pg-test.sh made for it: malformed model
# directories through gemmaclf.model_path, model files changed under a loaded model, a full disk
# under the weight cache (root only: it mounts a tmpfs), hostile texts and arrays, settings at
# their limits. Prints the count of cases, crashes and hangs, and "pgfuzz: N passed, M failed";
# fails on any failed case, a postmaster restart or "terminated by signal" in the server log.
# Needs PGHOST/PGPORT/PGUSER (a superuser), GC_SHARED, psql on PATH; Python 3 (stdlib only).
set -u
PY=${GC_PYTHON:-python3}
[ -x "$PY" ] || PY=python3
exec "$PY" test/pgfuzz.py
