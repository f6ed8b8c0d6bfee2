#!/bin/sh
# Linear-layer products of the gemma-3-270m shape, the bundled model and the reference classifier
# in f32 (OpenBLAS sgemm) vs bf16 and int8 (oneDNN matmul; OpenBLAS sbgemm where the OpenBLAS in
# use exports it), activation conversion included; see bench/bench_gemm_precision.c.
#   bench/bench_gemm_precision.sh [REPEAT] [MIN_TIME_S]
# Configurations, each at 1 and 2 threads:
#   default       as this machine runs it (OpenBLAS picks its core by CPU model)
#   ob-cooperlake OPENBLAS_CORETYPE=Cooperlake: the AVX-512 sgemm (OpenBLAS 0.3.21 does not know
#                 CPU models newer than Sapphire Rapids and falls back to its Prescott kernels)
#   no-amx        the same with oneDNN capped at AVX512_CORE_BF16 (a CPU with avx512_bf16 and
#                 VNNI but no AMX, e.g. Cooper Lake or Zen 4)
#   ob-<T>        with OB_LIBS="DIR ..." : an OpenBLAS built with BUILD_BFLOAT16=1 in DIR (for
#                 cblas_sbgemm, which Debian's build lacks), e.g. TARGET=SAPPHIRERAPIDS
set -e
cd "$(dirname "$0")/.."
REPEAT=${1:-3}
MIN_TIME=${2:-0.3}
BIN=build/bench/bench_gemm_precision
mkdir -p build/bench
# shellcheck disable=SC2046
cc -std=c11 -O3 -march=native -Wall -Wextra -Werror $(pkg-config --cflags openblas) \
    bench/bench_gemm_precision.c -o $BIN $(pkg-config --libs openblas) -ldnnl -lgomp -lm -ldl
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
     "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')" \
     "model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '))," \
     "flags: $(grep -m1 flags /proc/cpuinfo | grep -o -E 'avx512_bf16|avx512_vnni|amx_bf16|amx_int8' | tr '\n' ' ')"
run() {
    name=$1
    shift
    for t in 1 2; do
        echo "== $name, load $(cut -d' ' -f1-3 /proc/loadavg)"
        env "$@" OMP_NUM_THREADS=$t $BIN --threads $t --repeat "$REPEAT" --min-time "$MIN_TIME"
    done
}
run default
run ob-cooperlake OPENBLAS_CORETYPE=Cooperlake
run no-amx OPENBLAS_CORETYPE=Cooperlake DNNL_MAX_CPU_ISA=AVX512_CORE_BF16
for d in ${OB_LIBS:-}; do
    run "ob-$(basename "$d")" LD_LIBRARY_PATH="$d"
done
