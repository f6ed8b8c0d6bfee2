#!/bin/sh
# gemmaclf.precision on a CPU without the bf16/int8 instructions, simulated through the server's
# environment (GEMMACLF_CPU_FEATURES=none): the session warns, naming what is missing, and
# classifies in f32 with f32's label.
# Run inside a throwaway cluster (scripts/pg-test.sh), whose server (initdb + pg_ctl) inherits
# GEMMACLF_CPU_FEATURES=none from scripts/pg-test.sh; GC_SHARED: the shared reference folder.
set -u
REF=$GC_SHARED/reference/hf-trained-classifier
out=$(psql -X -At -v ON_ERROR_STOP=1 -c "CREATE EXTENSION gemmaclf" \
    -c "SET gemmaclf.model_path = '$REF'" -c "SET gemmaclf.precision = 'int8'" \
    -c "SELECT 'label: ' || classify_hate('Sali')" \
    -c "SELECT 'precision: ' || (gemmaclf_model_info()->>'precision')" 2>&1)
echo "$out"
echo "$out" | grep -q '^label: Hate' &&
    echo "$out" | grep -q '^precision: f32' &&
    echo "$out" | grep -q 'WARNING: .*precision int8 needs AVX512-VNNI or AMX-INT8.*using f32'
