#!/bin/sh
# gemmaclf.precision on a CPU without the bf16/int8 instructions, simulated through the server's
# environment (GEMMACLF_CPU_FEATURES=none): the session warns, naming what is missing, and
# classifies in f32 with f32's label.
# Run inside a cluster (PGHOST etc. set); GC_SHARED: the shared reference folder.
set -u
REF=$GC_SHARED/reference/hf-trained-classifier
# A Debian cluster (pg_virtualenv) takes its environment from the cluster's `environment` file,
# not from whoever starts it: put the switch there and restart. (initdb + pg_ctl clusters inherit
# it from scripts/pg-test.sh.)
conf=/etc/postgresql/${PGVERSION:-none}/regress
if [ -f "$conf/.by_pg_virtualenv" ]; then
    echo "GEMMACLF_CPU_FEATURES = 'none'" >>"$conf/environment"
    pg_ctlcluster "$PGVERSION" regress restart || exit 1
fi
out=$(psql -X -At -v ON_ERROR_STOP=1 -c "CREATE EXTENSION gemmaclf" \
    -c "SET gemmaclf.model_path = '$REF'" -c "SET gemmaclf.precision = 'int8'" \
    -c "SELECT 'label: ' || classify_hate('Sali')" \
    -c "SELECT 'precision: ' || (gemmaclf_model_info()->>'precision')" 2>&1)
echo "$out"
echo "$out" | grep -q '^label: Hate' &&
    echo "$out" | grep -q '^precision: f32' &&
    echo "$out" | grep -q 'WARNING: .*precision int8 needs AVX512-VNNI or AMX-INT8.*using f32'
