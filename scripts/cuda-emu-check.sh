#!/usr/bin/env bash
# Runs the CUDA plugin's own code on the CPU and compares it with the CPU engine, on a machine
# without a GPU: the plugin sources are compiled with g++ against test/cuda_emu (a CPU stand-in
# for the CUDA runtime and cuBLAS; kernels run as cooperative fibers), and loaded through
# GEMMACLF_CUDA_PLUGIN as if it were the real plugin. This checks the kernels' indexing, the
# online softmax, RoPE, masks, prefix cache, packing, the cuBLAS argument conventions, the three
# precision modes (TF32 and BF16 must differ from F32: a precision setting that is ignored fails)
# and the error paths; it cannot check timing, real cuBLAS, or the hardware.
#
#   scripts/cuda-emu-check.sh      (scripts/test.sh runs it in CI)
# Inputs are built from the reference data ($GC_SHARED, default ../shared) into a scratch folder
# ($EMU_WORK, default a new temporary one); missing reference data, Python packages (numpy,
# safetensors, tokenizers) or a build failure are failures, never a skip.
# Prints "cuda-emu: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
SHARED=${GC_SHARED:-../shared}
PY=${GC_PYTHON:-${PYTHON:-}}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
LIMIT=${EMU_LIMIT:-8}
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
give_up() { bad "$*"; echo "cuda-emu: $passed passed, $failed failed"; exit 1; }

[ -d "$SHARED/reference/hf-tiny" ] && [ -d "$SHARED/reference/hf-trained-classifier" ] ||
    give_up "reference data not found under $SHARED (set GC_SHARED)"
SHARED=$(cd "$SHARED" && pwd)
if [ -n "${EMU_WORK:-}" ]; then
    W=$EMU_WORK
    rm -rf "$W" && mkdir -p "$W"
else
    W=$(mktemp -d /tmp/gemmaclf-cuda-emu-XXXXXX)
    trap 'rm -rf "$W"' EXIT
fi
D=$W/inputs
mkdir -p "$D"
"$PY" scripts/devcheck.py prompts "$SHARED" "$D" --no-bench >/dev/null ||
    give_up "could not build the inputs (scripts/devcheck.py prompts with $PY)"
make -s bin/gemmaclf build/bench/bench_forward build/cuda-emu/gemmaclf_cuda.so ||
    give_up "build of bin/gemmaclf, bench_forward or the emulated plugin failed"
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
# differs PREC KIND NAME A B: a reduced-precision run is not the F32 run (relative error > 0)
differs() {
    local prec=$1 kind=$2 name=$3
    shift 3
    if DEVCHECK_LABELS=0 DEVCHECK_MIN_ERR=0 "$PY" scripts/devcheck.py "$kind" "$name" "$@" \
        "$(tol_of "$prec")"; then ok; else bad "$name"; fi
}

# every position, whole vocabulary, on the three fixtures (sliding windows, GQA/MQA, RoPE
# scaling, final soft-capping, untied lm_head), packed in batches of 3 sequences
for m in "$SHARED"/reference/hf-tiny/*/; do
    name=$(basename "$m")
    ids=$D/hf-tiny/$name/ids.jsonl
    "$GC" logits "$m" --device cpu <"$ids" >"$W/$name-cpu.jsonl" || { bad "$name cpu"; continue; }
    for prec in f32 tf32 bf16; do
        if GEMMACLF_CUDA_PRECISION=$prec "$GC" logits "$m" --device cuda --batch 3 \
            <"$ids" >"$W/$name-$prec.jsonl" 2>"$W/err.txt"; then
            cmp "$prec" cmp-logits "emu $name $prec vs cpu" "$W/$name-$prec.jsonl" "$W/$name-cpu.jsonl" "$(tol_of $prec)"
        else
            bad "emu $name $prec: $(cat "$W/err.txt")"
        fi
    done
    for prec in tf32 bf16; do
        differs "$prec" cmp-logits "emu $name $prec differs from emu f32" "$W/$name-$prec.jsonl" "$W/$name-f32.jsonl"
    done
done

# label logits of the trained classifier with and without the prefix cache
C=$SHARED/reference/hf-trained-classifier
rows=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["classifier"]["rows"])' "$D/prompts.json")
pre=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["classifier"]["prefix"])' "$D/prompts.json")
"$BENCH" "$C" --ids "$D/classifier_prompts.jsonl" --rows "$rows" --device cpu --limit "$LIMIT" \
    --out "$W/cls-cpu.txt" >/dev/null || bad "classifier cpu"
for prec in f32 tf32 bf16; do
    for p in 0 "$pre"; do
        if GEMMACLF_CUDA_PRECISION=$prec "$BENCH" "$C" --ids "$D/classifier_prompts.jsonl" --rows "$rows" \
            --device cuda --limit "$LIMIT" --batch 3 --prefix "$p" --out "$W/cls-$prec-$p.txt" >/dev/null 2>"$W/err.txt"; then
            cmp "$prec" cmp-rows "emu classifier $prec prefix=$p vs cpu" "$W/cls-$prec-$p.txt" "$W/cls-cpu.txt" "$(tol_of $prec)" "$LIMIT"
        else
            bad "emu classifier $prec prefix=$p: $(cat "$W/err.txt")"
        fi
    done
done
for prec in tf32 bf16; do
    differs "$prec" cmp-rows "emu classifier $prec differs from emu f32" "$W/cls-$prec-$pre.txt" "$W/cls-f32-$pre.txt"
done

# head_dim 256 (the gemma-3 sizes; the fixtures have at most 64): a random 2-layer model of the
# gemma-3-270m shape with a 512-token vocabulary, sliding window 6 then a full layer, so the
# tiled attention kernel runs with all four 64-wide output columns, tiles of queries that span
# sequences, and the prefix; every position through logits, label rows through bench_forward
# with a 9-token prefix (its last layer uses the per-token kernel), two thread orders (the
# second lets one warp run ahead to the next barrier: GCU_EMU_RUNAHEAD).
# Then the BF16 embedding: label rows must be scored in F32 (from the host model), not from the
# device's BF16 table; a copy of the model whose label rows are pre-rounded to BF16 must give
# different label logits in bf16 (prompts avoid the label ids, so only the scoring rows differ)
HD=$W/hd256
if "$PY" bench/gen_random_gemma3.py "$HD/m" --layers 2 --vocab 512 >/dev/null &&
    "$PY" - "$HD" <<'EOF'
import json, random, sys
d = sys.argv[1]
p = d + "/m/config.json"
c = json.load(open(p))
c["sliding_window"] = 6
c["layer_types"] = ["sliding_attention", "full_attention"]
json.dump(c, open(p, "w"), indent=1)
random.seed(7)
with open(d + "/ids.jsonl", "w") as f:
    for n in [1, 7, 13, 40, 20]:
        print([random.randrange(512) for _ in range(n)], file=f)
ids = [i for i in range(512) if i not in (5, 17, 300)]
pre = [random.choice(ids) for _ in range(9)]
with open(d + "/prompts.jsonl", "w") as f:
    for n in [1, 5, 12, 30, 3, 17]:
        print([*pre, *[random.choice(ids) for _ in range(n)]], file=f)
# the same model with rows 5, 17, 300 of the (tied) table rounded to BF16, nearest even
import os, shutil
import numpy as np
from safetensors.numpy import load_file, save_file
os.makedirs(d + "/mr")
shutil.copy(p, d + "/mr/config.json")
t = load_file(d + "/m/model.safetensors")
e = t["model.embed_tokens.weight"]
for r in (5, 17, 300):
    u = e[r].view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    e[r] = u.astype(np.uint32).view(np.float32)
save_file(t, d + "/mr/model.safetensors")
EOF
then
    "$GC" logits "$HD/m" --device cpu <"$HD/ids.jsonl" >"$HD/cpu.jsonl" || bad "hd256 cpu"
    "$BENCH" "$HD/m" --ids "$HD/prompts.jsonl" --rows 5,17,300 --device cpu --out "$HD/rows-cpu.txt" \
        >/dev/null || bad "hd256 rows cpu"
    for seed in 1 3; do
        if GCU_EMU_SEED=$seed GCU_EMU_RUNAHEAD=$((seed == 3)) "$GC" logits "$HD/m" --device cuda --batch 3 <"$HD/ids.jsonl" \
            >"$HD/emu.jsonl" 2>"$W/err.txt"; then
            cmp f32 cmp-logits "emu head_dim 256 seed $seed vs cpu" "$HD/emu.jsonl" "$HD/cpu.jsonl" "$(tol_of f32)"
        else
            bad "emu head_dim 256: $(cat "$W/err.txt")"
        fi
        if GCU_EMU_SEED=$seed GCU_EMU_RUNAHEAD=$((seed == 3)) "$BENCH" "$HD/m" --ids "$HD/prompts.jsonl" --rows 5,17,300 --device cuda \
            --batch 3 --prefix 9 --out "$HD/rows-emu.txt" >/dev/null 2>"$W/err.txt"; then
            cmp f32 cmp-rows "emu head_dim 256 prefix seed $seed vs cpu" "$HD/rows-emu.txt" "$HD/rows-cpu.txt" "$(tol_of f32)" 6
        else
            bad "emu head_dim 256 prefix: $(cat "$W/err.txt")"
        fi
    done
    for mdl in m mr; do
        GEMMACLF_CUDA_PRECISION=bf16 "$BENCH" "$HD/$mdl" --ids "$HD/prompts.jsonl" --rows 5,17,300 \
            --device cuda --batch 3 --prefix 9 --out "$HD/rows-bf16-$mdl.txt" >/dev/null 2>"$W/err.txt" ||
            bad "emu head_dim 256 bf16 $mdl: $(cat "$W/err.txt")"
    done
    cmp bf16 cmp-rows "emu head_dim 256 bf16 label rows vs cpu" "$HD/rows-bf16-m.txt" "$HD/rows-cpu.txt" "$(tol_of bf16)" 6
    if [ -s "$HD/rows-bf16-m.txt" ] && ! command cmp -s "$HD/rows-bf16-m.txt" "$HD/rows-bf16-mr.txt"; then
        ok
    else
        bad "bf16: label logits do not depend on the label rows' F32 bits (scored from the BF16 table?)"
    fi
else
    bad "could not write the head_dim 256 model (bench/gen_random_gemma3.py with $PY)"
fi

# error paths: no device, not enough memory, bad precision; auto falls back only without a device
m=$SHARED/reference/hf-tiny/tiny_gqa_f32
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
# auto without a device runs on the CPU: same logits as --device cpu
if GCU_EMU_DEVICES=0 "$GC" logits "$m" --device auto <<<'[2,3]' >"$W/auto.jsonl" 2>"$W/err.txt" &&
    "$GC" logits "$m" --device cpu <<<'[2,3]' >"$W/auto-cpu.jsonl" && [ -s "$W/auto.jsonl" ] &&
    command cmp -s "$W/auto.jsonl" "$W/auto-cpu.jsonl"; then
    ok
else
    bad "auto without device: $(cat "$W/err.txt")"
fi

# issue 12 part 5: device choice, compute capability, --cuda-precision, sticky faults
expect_fail "compute capability 7.5" "compute capability" GCU_EMU_CC=75
if "$GC" logits "$m" --device cuda --cuda-device 1 <<<'[2,3]' >/dev/null 2>"$W/err.txt"; then
    bad "--cuda-device 1 with one device: succeeded"
elif grep -q "device 1 requested" "$W/err.txt"; then ok; else bad "--cuda-device 1: $(cat "$W/err.txt")"; fi
if "$GC" logits "$m" --device cuda --cuda-precision fp8 <<<'[2,3]' >/dev/null 2>"$W/err.txt"; then
    bad "--cuda-precision fp8: succeeded"
elif grep -q "expected f32, tf32 or bf16" "$W/err.txt"; then ok; else bad "--cuda-precision fp8: $(cat "$W/err.txt")"; fi
# --cuda-precision wins over the environment: bf16 asked on the command line, f32 in the env
name=tiny_gqa_f32
if GEMMACLF_CUDA_PRECISION=f32 "$GC" logits "$m" --device cuda --cuda-precision bf16 --batch 3 \
    <"$D/hf-tiny/$name/ids.jsonl" >"$W/flag-bf16.jsonl" 2>"$W/err.txt" &&
    ! command cmp -s "$W/flag-bf16.jsonl" "$W/$name-f32.jsonl" && command cmp -s "$W/flag-bf16.jsonl" "$W/$name-bf16.jsonl"; then
    ok
else
    bad "--cuda-precision bf16 over GEMMACLF_CUDA_PRECISION=f32: $(cat "$W/err.txt")"
fi
# a kernel fault (sticky, like an illegal address): auto finishes on the CPU with the CPU's
# output and says so once; cuda fails with a clear message
# (the batches before the fault ran on the emulated GPU: compared within the F32 tolerance)
if GCU_EMU_FAULT_AFTER=40 "$GC" logits "$m" --device auto --batch 3 <"$D/hf-tiny/$name/ids.jsonl" \
    >"$W/fault-auto.jsonl" 2>"$W/err.txt" && [ "$(grep -c "continues on the CPU" "$W/err.txt")" = 1 ]; then
    echo "ok: fault under auto: $(cat "$W/err.txt")"
    cmp f32 cmp-logits "fault under auto vs cpu" "$W/fault-auto.jsonl" "$W/$name-cpu.jsonl" "$(tol_of f32)"
else
    bad "fault under auto: $(cat "$W/err.txt")"
fi
if GCU_EMU_FAULT_AFTER=40 "$GC" logits "$m" --device cuda --batch 3 <"$D/hf-tiny/$name/ids.jsonl" >/dev/null 2>"$W/err.txt"; then
    bad "fault under cuda: succeeded"
elif grep -q "unusable" "$W/err.txt"; then
    ok
    echo "ok: fault under cuda: $(cat "$W/err.txt")"
else
    bad "fault under cuda: $(cat "$W/err.txt")"
fi

echo "cuda-emu: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
