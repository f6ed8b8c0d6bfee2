#!/bin/sh
# Labels of bf16 and int8 against f32 on the 2,097 dev comments, for the bundled model and the
# reference classifier (../shared/reference/hf-trained-classifier): agreement, the largest
# probability difference, and macro-F1 against the gold labels next to f32's.
#   bench/precision_quality.sh [THREADS]     (bin/gemmaclf classify --batch 64)
set -e
cd "$(dirname "$0")/.."
SHARED=${GC_SHARED:-../shared}
DEV=$SHARED/data/indo-hatespeech/dev.jsonl
T=${1:-1}
W=$(mktemp -d /tmp/gc-precision-quality-XXXXXX)
trap 'rm -rf "$W"' EXIT
make -s bin/gemmaclf
python3 -c "
import json, sys
for l in open(sys.argv[1]):
    print(json.dumps(json.loads(l)['text']))" "$DEV" >"$W/texts.jsonl"
for m in models/gemmaclf-hinglish-small "$SHARED/reference/hf-trained-classifier"; do
    n=$(basename "$m")
    for p in f32 bf16 int8; do
        start=$(date +%s.%N)
        bin/gemmaclf classify "$m" --precision $p --batch 64 --threads "$T" <"$W/texts.jsonl" \
            >"$W/$n.$p.jsonl"
        echo "$n $p: $(python3 -c "print(round($(date +%s.%N) - $start, 2))") s (model loading included)"
    done
done
python3 - "$DEV" "$W" <<'PY'
import json, os, sys
dev, w = sys.argv[1], sys.argv[2]
gold = [json.loads(l)["label"] for l in open(dev)]
labels = ["Not Hate", "Hate", "Extreme Hate"]
def f1(pred):
    out = []
    for c in labels:
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        fp = sum(p == c and g != c for p, g in zip(pred, gold))
        fn = sum(p != c and g == c for p, g in zip(pred, gold))
        out.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(out) / len(out)
for n in ("gemmaclf-hinglish-small", "hf-trained-classifier"):
    load = lambda p: [json.loads(l) for l in open(os.path.join(w, f"{n}.{p}.jsonl"))]
    ref = load("f32")
    print(f"{n}: {len(ref)} dev comments, f32 macro-F1 {f1([r['label'] for r in ref]):.4f}")
    for p in ("bf16", "int8"):
        got = load(p)
        agree = sum(a["label"] == b["label"] for a, b in zip(ref, got))
        dmax = max(abs(a["scores"][l] - b["scores"][l]) for a, b in zip(ref, got) for l in labels)
        print(f"  {p}: labels equal to f32 {agree}/{len(ref)} ({100 * agree / len(ref):.2f} %), "
              f"largest probability difference {dmax:.4f}, macro-F1 {f1([g['label'] for g in got]):.4f}")
PY
