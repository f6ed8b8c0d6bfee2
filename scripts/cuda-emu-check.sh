#!/usr/bin/env bash
# Runs the CUDA plugin's own code on the CPU and compares it with the CPU engine, on a machine
# without a GPU: the plugin sources are compiled with g++ against test/cuda_emu (a CPU stand-in
# for the CUDA runtime and cuBLAS; kernels run as cooperative fibers), and loaded through
# GEMMACLF_CUDA_PLUGIN as if it were the real plugin. This checks the kernels' indexing, the
# online softmax, RoPE, masks, prefix cache, packing, the cuBLAS argument conventions, the three
# precision modes and the error paths; it cannot check timing, real cuBLAS, or the hardware.
#
#   scripts/cuda-emu-check.sh            (needs .devcheck/ from scripts/gpu-check-prepare.sh)
# Prints "cuda-emu: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
D=$ROOT/.devcheck
W=${EMU_WORK:-/tmp/gemmaclf-cuda-emu}
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
LIMIT=${EMU_LIMIT:-8}
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

[ -f "$D/prompts.json" ] || { echo "skipped: cuda-emu ($D missing: run scripts/gpu-check-prepare.sh)"; exit 0; }
rm -rf "$W"
mkdir -p "$W"
make -s bin/gemmaclf build/bench/bench_forward build/cuda-emu/gemmaclf_cuda.so || exit 2
export GEMMACLF_CUDA_PLUGIN=$ROOT/build/cuda-emu/gemmaclf_cuda.so
GC=$ROOT/bin/gemmaclf
BENCH=$ROOT/build/bench/bench_forward
# F32 must match the CPU (labels too); TF32/BF16 must stay within a loose bound, their labels
# are reported (argmax over a whole random vocabulary is not stable under rounding)
tol_of() { case $1 in f32) echo 1e-4 ;; tf32) echo 1e-2 ;; bf16) echo 5e-2 ;; esac; }
cmp() { # cmp PREC KIND NAME A B TOL
    local labels=1
    [ "$1" = f32 ] || labels=0
    shift
    if DEVCHECK_LABELS=$labels "$PY" scripts/devcheck.py "$@"; then ok; else bad "$2"; fi
}

# every position, whole vocabulary, on the three fixtures (sliding windows, GQA/MQA, RoPE
# scaling, final soft-capping, untied lm_head), packed in batches of 3 sequences
for m in "$D"/hf-tiny/*/; do
    name=$(basename "$m")
    "$GC" logits "$m" --device cpu <"$m/ids.jsonl" >"$W/$name-cpu.jsonl" || { bad "$name cpu"; continue; }
    for prec in f32 tf32 bf16; do
        if GEMMACLF_CUDA_PRECISION=$prec "$GC" logits "$m" --device cuda --batch 3 \
            <"$m/ids.jsonl" >"$W/$name-$prec.jsonl" 2>"$W/err.txt"; then
            cmp "$prec" cmp-logits "emu $name $prec vs cpu" "$W/$name-$prec.jsonl" "$W/$name-cpu.jsonl" "$(tol_of $prec)"
        else
            bad "emu $name $prec: $(cat "$W/err.txt")"
        fi
    done
done

# label logits of the trained classifier with and without the prefix cache
C=$D/hf-trained-classifier
rows=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["classifier"]["rows"])' "$D/prompts.json")
pre=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["classifier"]["prefix"])' "$D/prompts.json")
"$BENCH" "$C" --ids "$D/classifier_prompts.jsonl" --rows "$rows" --device cpu --limit "$LIMIT" \
    --out "$W/cls-cpu.txt" >/dev/null || bad "classifier cpu"
for prec in f32 tf32 bf16; do
    for p in 0 "$pre"; do
        if GEMMACLF_CUDA_PRECISION=$prec "$BENCH" "$C" --ids "$D/classifier_prompts.jsonl" --rows "$rows" \
            --device cuda --limit "$LIMIT" --batch 3 --prefix "$p" --out "$W/cls-$prec-$p.txt" >/dev/null 2>"$W/err.txt"; then
            cmp "$prec" cmp-rows "emu classifier $prec prefix=$p vs cpu" "$W/cls-$prec-$p.txt" "$W/cls-cpu.txt" "$(tol_of $prec)"
        else
            bad "emu classifier $prec prefix=$p: $(cat "$W/err.txt")"
        fi
    done
done

# error paths: no device, not enough memory, bad precision; auto falls back only without a device
m=$D/hf-tiny/tiny_gqa_f32
expect_fail() { # NAME PATTERN ENV... -- runs logits --device cuda
    local name=$1 pat=$2
    shift 2
    if env "$@" "$GC" logits "$m" --device cuda <<<'[2,3]' >/dev/null 2>"$W/err.txt"; then
        bad "$name: succeeded"
    elif grep -q "$pat" "$W/err.txt"; then
        ok
        echo "ok: $name: $(cat "$W/err.txt")"
    else
        bad "$name: $(cat "$W/err.txt")"
    fi
}
expect_fail "no device" "no CUDA device" GCU_EMU_DEVICES=0
expect_fail "out of memory" "not enough GPU memory" GCU_EMU_FREE_MB=1
expect_fail "bad precision" "expected f32, tf32 or bf16" GEMMACLF_CUDA_PRECISION=fp8
if GCU_EMU_DEVICES=0 "$GC" logits "$m" --device auto <<<'[2,3]' >/dev/null 2>"$W/err.txt"; then ok; else bad "auto without device: $(cat "$W/err.txt")"; fi

echo "cuda-emu: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
