#!/bin/sh
# Preloading: in a cluster started with shared_preload_libraries = gemmaclf and
# gemmaclf.model_path = the reference classifier (scripts/pg-test.sh), the postmaster has loaded
# the model, so a new session reports it preloaded and classifies with it.
set -u
out=$(psql -X -At -c "CREATE EXTENSION gemmaclf" \
    -c "SELECT 'preloaded: ' || (gemmaclf_model_info()->>'preloaded')" \
    -c "SELECT 'label: ' || classify_hate('Sali')" 2>&1)
if echo "$out" | grep -q '^preloaded: true' && echo "$out" | grep -q '^label: Hate'; then
    echo "$out" | grep -E '^(preloaded|label):'
else
    echo "$out"
    exit 1
fi
