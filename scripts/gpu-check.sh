#!/usr/bin/env bash
# The GPU check of gemmaclf, one command on a fresh GPU machine (nvcc, CUDA, python3 with torch
# and transformers; no PostgreSQL, no network, no ../shared). Reads only .devcheck/, which
# scripts/gpu-check-prepare.sh fills on a development machine. Fits in 10 minutes on an H100.
#
#   scripts/gpu-check.sh                 the full check on the GPU
#   GPU_CHECK_DEVICE=cpu BENCH_LAYERS=2 BENCH_LIMIT=128 scripts/gpu-check.sh
#                                        dry run of everything on the CPU (no GPU needed)
#
# Steps: 1. build bin/gemmaclf, the plugin, bench_forward and test_device (without PGXS);
# 2. test_device; 2b. compute-sanitizer racecheck, synccheck and memcheck on a 3-layer fixture and a 2-layer head_dim 256 model; 3. parity of --device cuda against --device cpu: the three hf-tiny fixtures
# through `gemmaclf logits` (every position, whole vocabulary), the trained classifier through
# bench_forward (label logits, with and without the prefix cache) and `gemmaclf classify`;
# F32 must agree within 1e-3 (relative to the largest logit) with identical labels; TF32 and BF16
# are reported; 4. throughput on the gemma-3-270m shape (random weights) with the dev prompts,
# next to transformers (fp32 and bf16, one forward, last-token logits, batch 64) in the same run.
# Ends with a summary table; exit status 1 when a required check failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
D=$ROOT/.devcheck
W=${GPU_CHECK_WORK:-/tmp/gemmaclf-gpu-check}
DEV=${GPU_CHECK_DEVICE:-cuda}
PY=${PYTHON:-python3}
BENCH_LAYERS=${BENCH_LAYERS:-18}
BENCH_LIMIT=${BENCH_LIMIT:-0}
REPEAT=${BENCH_REPEAT:-3}
JOBS=$(nproc 2>/dev/null || echo 4)
export DEVCHECK_RESULTS=$W/results.jsonl
T0=$SECONDS

say() { printf '\n== [%3ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { echo "gpu-check: $*" >&2; exit 2; }
fail_step() { echo "{\"name\": \"$1\", \"pass\": false, \"error\": \"$2\"}" >>"$DEVCHECK_RESULTS"; echo "FAILED: $1: $2"; }
json_field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])' "$D/prompts.json" "$1" "$2"; }
last_json() { "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }

[ -f "$D/prompts.json" ] || die "$D is missing or incomplete: run scripts/gpu-check-prepare.sh on a machine with ../shared"
case $DEV in cuda | cpu) ;; *) die "GPU_CHECK_DEVICE must be cuda or cpu" ;; esac
rm -rf "$W"
mkdir -p "$W"
: >"$DEVCHECK_RESULTS"

say "environment"
uname -m
if [ "$DEV" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi failed"
fi
"$PY" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__)' ||
    echo "python3 lacks torch/transformers: the transformers columns will be missing"

# ---- 1. build ------------------------------------------------------------------------------
say "build"
MAKEARGS=(PG_CONFIG=/nonexistent/pg_config USE_CUDA=1)
if ! pkg-config --exists openblas libcjson 2>/dev/null; then
    echo "OpenBLAS/cJSON not found by pkg-config: using $D/deps.tar.xz"
    tar -C "$W" -xJf "$D/deps.tar.xz" || die "cannot unpack $D/deps.tar.xz"
    MAKEARGS+=("DEP_CFLAGS=-I$W/deps/include"
               "DEP_LIBS=-L$W/deps/lib -Wl,-rpath,$W/deps/lib -lopenblas -lcjson -lm -ldl -lpthread")
    export LD_LIBRARY_PATH=$W/deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
TARGETS=(bin/gemmaclf build/bench/bench_forward build/test/test_device)
[ "$DEV" = cuda ] && TARGETS+=(cuda)
make -j"$JOBS" "${MAKEARGS[@]}" "${TARGETS[@]}" >"$W/build.log" 2>&1 || {
    tail -40 "$W/build.log"
    die "build failed (log: $W/build.log)"
}
tail -3 "$W/build.log"
GC=$ROOT/bin/gemmaclf
BENCH=$ROOT/build/bench/bench_forward
[ "$DEV" = cpu ] || [ -f build/gemmaclf_cuda.so ] || die "plugin build/gemmaclf_cuda.so missing"

# ---- 2. device test ------------------------------------------------------------------------
say "test_device"
mkdir -p "$W/shared/reference"
ln -sfn "$D/hf-tiny" "$W/shared/reference/hf-tiny"
if GC_SHARED=$W/shared timeout 120 build/test/test_device >"$W/test_device.log" 2>&1; then
    tail -1 "$W/test_device.log"
    echo '{"name": "test_device", "pass": true}' >>"$DEVCHECK_RESULTS"
else
    cat "$W/test_device.log"
    fail_step test_device "see $W/test_device.log"
fi

# ---- 2b. compute-sanitizer -------------------------------------------------------------------
# racecheck (shared-memory races), synccheck (barriers in divergent code) and memcheck (invalid
# and misaligned accesses, leaks) on the smallest fixture, tiny_untied_tok4k (3 layers; the
# fixtures have no 2-layer model): every position and the whole vocabulary through `gemmaclf
# logits` (every kernel, both attention paths), and the prefix + label-rows path with the
# pruned last layer through bench_forward; and, since the fixtures stop at head_dim 32-64, every
# position of a random 2-layer model of the gemma-3-270m shape (head_dim 256, vocabulary 512),
# where every warp of the tiled attention kernel works. Required: each run exits 0 and reports
# "ERROR SUMMARY: 0 errors". Skipped (and said so, not counted) on the CPU dry run.
say "compute-sanitizer (racecheck, synccheck, memcheck)"
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ "$DEV" != cuda ]; then
    echo "skipped: compute-sanitizer needs the GPU (GPU_CHECK_DEVICE=$DEV)"
elif [ ! -x "$SAN" ]; then
    fail_step "compute-sanitizer" "compute-sanitizer not found (PATH or /usr/local/cuda/bin)"
else
    sm=$D/hf-tiny/tiny_untied_tok4k
    grep -v '^\[2\]$' "$sm/ids.jsonl" >"$W/sanitizer-ids.jsonl" # prompts longer than the prefix
    hd=$W/sanitizer-hd256
    "$PY" bench/gen_random_gemma3.py "$hd" --layers 2 --vocab 512 >/dev/null ||
        fail_step "compute-sanitizer" "bench/gen_random_gemma3.py failed"
    "$PY" -c 'import random; random.seed(7); [print([random.randrange(512) for _ in range(n)]) for n in (1, 7, 13, 40, 20)]' \
        >"$W/sanitizer-hd256-ids.jsonl"
    for tool in racecheck synccheck memcheck; do
        extra=()
        [ $tool = racecheck ] && extra=(--racecheck-report all)
        [ $tool = memcheck ] && extra=(--leak-check full)
        for run in logits prefix hd256; do
            log=$W/sanitizer-$tool-$run.log
            ids=$sm/ids.jsonl
            if [ $run = logits ]; then
                cmd=("$GC" logits "$sm" --device cuda --batch 3)
            elif [ $run = hd256 ]; then
                cmd=("$GC" logits "$hd" --device cuda --batch 3)
                ids=$W/sanitizer-hd256-ids.jsonl
            else
                cmd=("$BENCH" "$sm" --ids "$W/sanitizer-ids.jsonl" --rows 0,1,2 --device cuda --batch 3 --prefix 1)
            fi
            if timeout 300 "$SAN" --tool $tool "${extra[@]}" --error-exitcode 3 "${cmd[@]}" \
                <"$ids" >/dev/null 2>"$log" && grep -q "ERROR SUMMARY: 0 errors" "$log"; then
                echo "$tool $run: $(grep "ERROR SUMMARY" "$log" | tail -1)"
                echo "{\"name\": \"compute-sanitizer $tool $run\", \"pass\": true}" >>"$DEVCHECK_RESULTS"
            else
                tail -20 "$log"
                fail_step "compute-sanitizer $tool $run" "see $log"
            fi
        done
    done
fi

# ---- 3. parity -----------------------------------------------------------------------------
# tolerances: F32 is required to match the CPU; TF32/BF16 are reported (labels matter there)
tol_of() { case $1 in f32) echo 1e-3 ;; tf32) echo 2e-2 ;; bf16) echo 6e-2 ;; esac; }
req_of() { [ "$1" = f32 ] && echo 1 || echo 0; }

say "parity: hf-tiny through gemmaclf logits (all positions, whole vocabulary)"
for m in "$D"/hf-tiny/*/; do
    name=$(basename "$m")
    cpu=$W/tiny-$name-cpu.jsonl
    if ! timeout 120 "$GC" logits "$m" --device cpu <"$m/ids.jsonl" >"$cpu" 2>"$W/err.txt"; then
        fail_step "tiny $name cpu" "$(head -c 300 "$W/err.txt")"
        continue
    fi
    for prec in f32 tf32 bf16; do
        out=$W/tiny-$name-$DEV-$prec.jsonl
        if GEMMACLF_CUDA_PRECISION=$prec timeout 120 "$GC" logits "$m" --device "$DEV" --batch 8 \
            <"$m/ids.jsonl" >"$out" 2>"$W/err.txt"; then
            DEVCHECK_REQUIRED=$(req_of $prec) "$PY" scripts/devcheck.py cmp-logits \
                "tiny $name: $DEV $prec vs cpu" "$out" "$cpu" "$(tol_of $prec)"
        else
            fail_step "tiny $name $DEV $prec" "$(head -c 300 "$W/err.txt")"
        fi
    done
done

say "parity: trained classifier through bench_forward (label logits of the last token)"
C=$D/hf-trained-classifier
CP=$(json_field classifier prefix)
CR=$(json_field classifier rows)
if timeout 300 "$BENCH" "$C" --ids "$D/classifier_prompts.jsonl" --rows "$CR" --device cpu \
    --batch 64 --out "$W/cls-cpu.txt" >"$W/cls-cpu.json" 2>"$W/err.txt"; then
    "$PY" scripts/devcheck.py cmp-hf "classifier: cpu vs transformers (hf_predictions_dev)" \
        "$W/cls-cpu.txt" "$C/hf_predictions_dev.json" 1e-3
    for prec in f32 tf32 bf16; do
        for pre in 0 "$CP"; do
            out=$W/cls-$DEV-$prec-p$pre.txt
            if GEMMACLF_CUDA_PRECISION=$prec timeout 120 "$BENCH" "$C" \
                --ids "$D/classifier_prompts.jsonl" --rows "$CR" --device "$DEV" --batch 64 \
                --prefix "$pre" --out "$out" >"$W/cls.json" 2>"$W/err.txt"; then
                DEVCHECK_REQUIRED=$(req_of $prec) "$PY" scripts/devcheck.py cmp-rows \
                    "classifier: $DEV $prec prefix=$pre vs cpu" "$out" "$W/cls-cpu.txt" "$(tol_of $prec)"
            else
                fail_step "classifier $DEV $prec prefix=$pre" "$(head -c 300 "$W/err.txt")"
            fi
        done
    done
else
    fail_step "classifier cpu" "$(head -c 300 "$W/err.txt")"
fi

say "parity: gemmaclf classify --device $DEV vs --device cpu (dev comments)"
if "$GC" classify --help >/dev/null 2>&1 || "$GC" 2>&1 | grep -q '^  classify'; then
    if timeout 300 "$GC" classify "$C" --device cpu --batch 64 <"$D/dev.jsonl" >"$W/classify-cpu.jsonl" 2>"$W/err.txt"; then
        for prec in f32 bf16; do
            out=$W/classify-$DEV-$prec.jsonl
            if GEMMACLF_CUDA_PRECISION=$prec timeout 120 "$GC" classify "$C" --device "$DEV" --batch 64 \
                <"$D/dev.jsonl" >"$out" 2>"$W/err.txt"; then
                DEVCHECK_REQUIRED=$(req_of $prec) "$PY" scripts/devcheck.py cmp-classify \
                    "classify: $DEV $prec vs cpu (probabilities)" "$out" "$W/classify-cpu.jsonl" "$(tol_of $prec)"
            else
                fail_step "classify $DEV $prec" "$(head -c 300 "$W/err.txt")"
            fi
        done
    else
        fail_step "classify cpu" "$(head -c 300 "$W/err.txt")"
    fi
else
    echo "skipped: bin/gemmaclf has no classify command in this build"
fi

# ---- 4. throughput -------------------------------------------------------------------------
say "throughput: gemma-3-270m shape, random weights ($BENCH_LAYERS layers)"
G=$W/g270m
BP=$(json_field bench prefix)
BR=$(json_field bench rows)
IDS=$D/bench_prompts.jsonl
if [ "$BENCH_LIMIT" -gt 0 ]; then
    head -n "$BENCH_LIMIT" "$IDS" >"$W/bench_ids.jsonl"
    IDS=$W/bench_ids.jsonl
fi
# the CPU reference runs on the first 256 prompts (--limit 256): comparisons use that many lines
NCPU=$(wc -l <"$IDS")
[ "$NCPU" -gt 256 ] && NCPU=256
if ! "$PY" bench/gen_random_gemma3.py "$G" --layers "$BENCH_LAYERS"; then
    fail_step "generate 270m model" "bench/gen_random_gemma3.py failed"
else
    HFDEV=cuda
    [ "$DEV" = cpu ] && HFDEV=cpu
    for dt in float32 bfloat16; do
        if timeout 300 "$PY" bench/hf_forward_bench.py "$G" --ids "$IDS" --rows "$BR" --dtype $dt \
            --batch 64 --repeat "$REPEAT" --device $HFDEV --out "$W/hf-$dt.txt" >"$W/hf-$dt.json" 2>"$W/err.txt"; then
            tail -1 "$W/hf-$dt.json"
            "$PY" scripts/devcheck.py speed "hf $dt" transformers "$dt, one forward" 64 \
                "$(last_json "$W/hf-$dt.json" prompts_per_s)"
        else
            tail -5 "$W/err.txt"
            echo "transformers $dt benchmark failed (not required)"
        fi
    done
    # our CPU on a subset is the label reference for every GPU mode
    if timeout 300 "$BENCH" "$G" --ids "$IDS" --rows "$BR" --device cpu --batch 64 --prefix "$BP" \
        --limit 256 --out "$W/g-cpu.txt" >"$W/g-cpu.json" 2>"$W/err.txt"; then
        "$PY" scripts/devcheck.py speed "gemmaclf cpu" gemmaclf "cpu f32, prefix cache" 64 \
            "$(last_json "$W/g-cpu.json" prompts_per_s)" "$(nproc) threads, 256 prompts"
    else
        fail_step "270m cpu" "$(head -c 300 "$W/err.txt")"
    fi
    if [ -f "$W/hf-float32.txt" ] && [ -f "$W/g-cpu.txt" ]; then
        DEVCHECK_REQUIRED=0 "$PY" scripts/devcheck.py cmp-rows "270m: gemmaclf cpu vs transformers fp32" \
            "$W/g-cpu.txt" "$W/hf-float32.txt" 1e-3 "$NCPU"
    fi
    for prec in f32 tf32 bf16; do
        for pre in 0 "$BP"; do
            for bs in 64 256; do
                tag=$prec-p$pre-b$bs
                if GEMMACLF_CUDA_PRECISION=$prec timeout 120 "$BENCH" "$G" --ids "$IDS" --rows "$BR" \
                    --device "$DEV" --batch $bs --prefix "$pre" --repeat "$REPEAT" \
                    --out "$W/g-$tag.txt" >"$W/g-$tag.json" 2>"$W/err.txt"; then
                    tail -1 "$W/g-$tag.json"
                    mode="$DEV $prec"
                    [ "$pre" != 0 ] && mode="$mode, prefix cache"
                    "$PY" scripts/devcheck.py speed "gemmaclf $tag" gemmaclf "$mode" $bs \
                        "$(last_json "$W/g-$tag.json" prompts_per_s)"
                    if [ -f "$W/g-cpu.txt" ] && [ $bs = 64 ]; then
                        DEVCHECK_REQUIRED=$(req_of $prec) "$PY" scripts/devcheck.py cmp-rows \
                            "270m: $DEV $prec prefix=$pre vs cpu (256 prompts)" "$W/g-$tag.txt" "$W/g-cpu.txt" "$(tol_of $prec)" "$NCPU"
                    fi
                else
                    fail_step "270m $DEV $tag" "$(head -c 300 "$W/err.txt")"
                fi
            done
        done
    done
fi

say "summary (results: $DEVCHECK_RESULTS)"
"$PY" scripts/devcheck.py summary "$DEVCHECK_RESULTS"
rc=$?
echo "gpu-check finished in $((SECONDS - T0)) s"
exit $rc
