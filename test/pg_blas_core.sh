#!/bin/sh
# OpenBLAS' kernels: a server whose environment forces OpenBLAS' generic SSE3 kernels
# (OPENBLAS_CORETYPE=Prescott, set by scripts/pg-test.sh; what a CPU newer than the library
# gets) names them in gemmaclf_model_info(), and its postmaster, which preloads gemmaclf, says
# once in the server log that this CPU could do better and how (on a CPU with AVX2; on an older
# one the fallback is its best and nothing is said).
set -u
out=$(psql -X -At -v ON_ERROR_STOP=1 -c "CREATE EXTENSION gemmaclf" \
    -c "SELECT 'blas_core: ' || (gemmaclf_model_info()->>'blas_core')" \
    -c "SELECT 'label: ' || classify_hate('Sali')" 2>&1)
echo "$out"
echo "$out" | grep -q '^blas_core: Prescott$' && echo "$out" | grep -q '^label: Hate$' || exit 1
log=$PGHOST/server.log
said=$(grep -c 'LOG: .*gemmaclf: OpenBLAS runs its "Prescott" kernels' "$log")
if grep -q '^flags.* avx2' /proc/cpuinfo && grep -q '^flags.* fma' /proc/cpuinfo; then
    grep 'gemmaclf: OpenBLAS runs' "$log" | sed 's/^.*LOG: */server log: /'
    [ "$said" -eq 1 ] && grep -q 'HINT: .*Set OPENBLAS_CORETYPE=\(SkylakeX\|Haswell\) in the server' "$log"
else
    echo "CPU without AVX2: nothing to say"
    [ "$said" -eq 0 ]
fi
