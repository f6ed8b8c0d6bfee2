#!/bin/sh
# Tokenizer benchmark: gemmaclf (C) next to Hugging Face tokenizers, single thread, same run.
#   bench/bench_tokenizer.sh [MODEL_DIR] [FILE.jsonl] [REPEATS]
# Defaults: the real Gemma 3 tokenizer and the train comments under ../shared.
# PYTHON (default .venv/bin/python, else python3) runs the HF side when the
# tokenizers package imports; otherwise that part says "skipped".
set -e
cd "$(dirname "$0")/.."
SHARED=${GC_SHARED:-../shared}
MODEL=${1:-$SHARED/reference/gemma3-tokenizer}
DATA=${2:-$SHARED/data/indo-hatespeech/train.jsonl}
REPS=${3:-3}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

make -s core >/dev/null
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -O3 ${ARCH_FLAGS--march=native} -Isrc/core $(pkg-config --cflags libcjson) \
   -o build/bench/bench_tokenizer bench/bench_tokenizer.c build/libgemmaclf_core.a \
   $(pkg-config --libs libcjson) -lm
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
build/bench/bench_tokenizer "$MODEL" "$DATA" "$REPS"

RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false "$PY" - "$MODEL" "$DATA" "$REPS" <<'PYEOF'
import json, sys, time
try:
    import tokenizers
    from tokenizers import Tokenizer
except ImportError:
    print("hf tokenizers: skipped: tokenizers not installed")
    sys.exit(0)
model, data, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = bestc = 1e9
for _ in range(5):
    t0, c0 = time.perf_counter(), time.thread_time()
    tok = Tokenizer.from_file(model + "/tokenizer.json")
    best = min(best, time.perf_counter() - t0)
    bestc = min(bestc, time.thread_time() - c0)
print("hf tokenizers %s load: %.1f ms wall, %.1f ms CPU (best of 5)" % (
    tokenizers.__version__, best * 1e3, bestc * 1e3))
texts = [json.loads(l)["text"] for l in open(data, encoding="utf-8")]
mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
for name, fn in [("encode_batch", lambda: tok.encode_batch(texts, add_special_tokens=False)),
                 ("encode loop", lambda: [tok.encode(t, add_special_tokens=False) for t in texts])]:
    best = bestc = 1e9
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        bestc = min(bestc, time.process_time() - c0)
    ntok = sum(len(e.ids) for e in out)
    print("hf tokenizers %s: %d comments, %.2f MB, %d tokens: %.0f comments/s, %.2f MB/s wall; "
          "%.0f comments/s, %.2f MB/s CPU (best of %d, RAYON_NUM_THREADS=1)" % (
              name, len(texts), mb, ntok, len(texts) / best, mb / best, len(texts) / bestc,
              mb / bestc, reps))
PYEOF
