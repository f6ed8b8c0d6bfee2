#!/bin/sh
# Classification throughput of the CPU engine in f32, bf16 and int8 (gemmaclf.precision), next to
# transformers (torch, f32, CPU) in the same run: label logits of the last prompt token, dev
# comments in the classifier's chat prompt, at batch 1 and 64, 1 and 2 threads, on
#   - the gemma-3-270m shape with random weights (bench/gen_random_gemma3.py, 18 layers, real
#     Gemma 3 tokenizer), first LIMIT_270M dev comments;
#   - the bundled model (models/gemmaclf-hinglish-small), first LIMIT_SMALL dev comments.
# gemmaclf runs with the prompt head cached (--prefix), as the classifier does.
#   bench/bench_precision.sh [LIMIT_270M] [LIMIT_SMALL]
# Work files in $BENCH_DIR (default /tmp/gc-bench-precision; the 270m checkpoint is ~1.1 GB).
# OpenBLAS picks its f32 kernels by CPU model; set OPENBLAS_CORETYPE when it does not know the
# CPU (the JSON lines show its choice as blas_core). HF_THREADS: the thread counts transformers
# runs at (default "1 2"; empty: none). BENCH_ROUNDS (default 3): gemmaclf's three precisions run
# that many times, one after another in each round, so that a busy or noisy machine slows them
# alike; the tables show the median prompts/s and the median of the rounds' ratios to f32.
set -e
cd "$(dirname "$0")/.."
LIMIT_270M=${1:-128}
LIMIT_SMALL=${2:-512}
ROUNDS=${BENCH_ROUNDS:-3}
W=${BENCH_DIR:-/tmp/gc-bench-precision}
SHARED=${GC_SHARED:-../shared}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEV=$SHARED/data/indo-hatespeech/dev.jsonl
mkdir -p "$W"
make -s build/libgemmaclf_core.a build/bench/bench_forward
BENCH=build/bench/bench_forward

G=$W/g270m
[ -f "$G/config.json" ] || "$PY" bench/gen_random_gemma3.py "$G" --layers 18 >&2
# the random checkpoint has no tokenizer: prompts with the real Gemma 3 one
G_META=$("$PY" bench/gen_prompts.py "$SHARED/reference/gemma3-tokenizer/tokenizer.json" "$DEV" "$W/g270m_all.jsonl")
S=models/gemmaclf-hinglish-small
S_META=$("$PY" bench/gen_prompts.py "$S/tokenizer.json" "$DEV" "$W/small_all.jsonl")
head -n "$LIMIT_270M" "$W/g270m_all.jsonl" >"$W/g270m_ids.jsonl"
head -n "$LIMIT_SMALL" "$W/small_all.jsonl" >"$W/small_ids.jsonl"
field() { echo "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
     "flags: $(grep -m1 flags /proc/cpuinfo | grep -o -E 'avx512_bf16|avx512_vnni|amx_bf16|amx_int8' | tr '\n' ' ')"
OUT=$W/results.jsonl
: >"$OUT"
for m in g270m small; do
    if [ $m = g270m ]; then dir=$G meta=$G_META; else dir=$S meta=$S_META; fi
    rows=$(field "$meta" rows)
    prefix=$(field "$meta" prefix)
    for t in 1 2; do
        for b in 1 64; do
            echo "== $m, $t thread(s), batch $b, load $(cut -d' ' -f1-3 /proc/loadavg)"
            if echo " ${HF_THREADS-1 2} " | grep -q " $t "; then
                OMP_NUM_THREADS=$t "$PY" bench/hf_forward_bench.py "$dir" --ids "$W/${m}_ids.jsonl" \
                    --rows "$rows" --batch $b --device cpu --dtype float32 2>/dev/null | tail -1 |
                    sed "s/^{/{\"model\": \"$m\", \"threads\": $t, /" |
                    tee -a "$OUT"
            fi
            for round in $(seq 1 "$ROUNDS"); do
                for p in f32 bf16 int8; do
                    "$BENCH" "$dir" --ids "$W/${m}_ids.jsonl" --rows "$rows" --prefix "$prefix" \
                        --batch $b --threads $t --device cpu --precision $p | tail -1 |
                        sed "s/^{/{\"model\": \"$m\", \"threads\": $t, \"engine\": \"gemmaclf\", \"round\": $round, \"requested\": \"$p\", /" |
                        tee -a "$OUT"
                done
            done
        done
    done
done

echo
"$PY" - "$OUT" <<'EOF'
import json, statistics, sys
# (model, threads, batch) -> name -> round -> (prompts/s, mark); transformers runs once (round 0)
rows, cpu = {}, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["model"], r["threads"], r["batch"])
    name = "transformers f32" if r["engine"] == "transformers" else "gemmaclf " + r["requested"]
    # a precision the CPU lacks ran as f32: marked with *
    mark = "*" if r["engine"] == "gemmaclf" and r["requested"] != r["precision"] else ""
    rnd = r.get("round", 0)
    rows.setdefault(key, {}).setdefault(name, {})[rnd] = (r["prompts_per_s"], mark)
    if r.get("cpu_seconds"):
        cpu.setdefault(key, {}).setdefault(name, {})[rnd] = (r["prompts"] / r["cpu_seconds"], mark)


def cell(runs, f32_runs):
    """median prompts/s, and the median over rounds of the ratio to f32 in the same round"""
    pps = statistics.median(v[0] for v in runs.values())
    mark = next(iter(runs.values()))[1]
    if not f32_runs:
        return f"{pps:>10.1f}{mark:1}{'':>9}"
    same = [runs[k][0] / f32_runs[k][0] for k in runs if k in f32_runs]
    ratio = statistics.median(same) if same else pps / statistics.median(v[0] for v in f32_runs.values())
    return f"{pps:>10.1f}{mark:1}{f' ({ratio:.2f}x)':>9}"


def table(title, data, cols):
    print(title)
    print(f"{'model':7} {'thr':>3} {'batch':>5}  " + "  ".join(f"{c:>20}" for c in cols))
    for key, v in data.items():
        f32 = v.get("gemmaclf f32", {})
        cells = [cell(v[c], f32) if c in v else f"{'-':>20}" for c in cols]
        print(f"{key[0]:7} {key[1]:>3} {key[2]:>5}  " + "  ".join(cells))


g = ["gemmaclf f32", "gemmaclf bf16", "gemmaclf int8"]
table(f"== prompts/s, wall clock, median of the rounds (x: median ratio to gemmaclf f32 in the same round; *: the CPU lacks it, "
      "ran f32)", rows, ["transformers f32"] + g)
table("== prompts per CPU-second of the process (what the work costs on a shared machine; "
      "with 2 threads both threads' time counts)", cpu, g)
EOF
