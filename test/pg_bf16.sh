#!/bin/sh
# A BF16 checkpoint in PostgreSQL: the weights are converted to F32 once into
# $PGDATA/gemmaclf_cache and mapped from there; labels match the F32 model's on the dev comments.
# Makes the BF16 copy of the reference classifier with the Python venv (skips without torch).
# Runs inside a pg_virtualenv cluster (scripts/pg-test.sh); GC_SHARED must be set.
set -eu
PY=${GC_PYTHON:-.venv/bin/python}
REF=$GC_SHARED/reference/hf-trained-classifier
if ! "$PY" -c "import torch, safetensors" 2>/dev/null; then
    echo "skipped: BF16 cache check (no torch/safetensors in $PY)"
    exit 0
fi
dir=$(mktemp -d /tmp/gemmaclf-bf16-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$PY" - "$REF" "$dir" <<'PY'
import json, shutil, sys
import torch
from safetensors.torch import load_file, save_file
src, dst = sys.argv[1], sys.argv[2]
t = load_file(f"{src}/model.safetensors")
save_file({k: v.to(torch.bfloat16).contiguous() for k, v in t.items()}, f"{dst}/model.safetensors")
cfg = json.load(open(f"{src}/config.json"))
cfg["dtype"] = "bfloat16"
json.dump(cfg, open(f"{dst}/config.json", "w"))
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(f"{src}/{f}", f"{dst}/{f}")
PY
chmod -R a+rX "$dir"
psql -X -q -At -v ON_ERROR_STOP=1 -v ref="$REF" -v bf16="$dir" \
     -v preds="$REF/hf_predictions_dev.json" <<'SQL' > "$dir/out" 2>&1 || { cat "$dir/out"; exit 1; }
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
CREATE TEMP TABLE t AS SELECT p->>'text' AS body
FROM jsonb_array_elements(pg_read_file(:'preds')::jsonb->'predictions') p LIMIT 300;
SET gemmaclf.model_path = :'ref';
CREATE TEMP TABLE f32 AS SELECT body, classify_hate(body) AS label FROM t;
SET gemmaclf.model_path = :'bf16';
SELECT 'dtype ' || (gemmaclf_model_info()->>'dtype');
SELECT 'agree ' || count(*) FILTER (WHERE classify_hate(body) = label) || ' of ' || count(*) FROM f32;
SELECT 'cache files ' || count(*) FROM pg_ls_dir('gemmaclf_cache') f WHERE f LIKE 'gemmaclf-%.f32';
SQL
cat "$dir/out"
# a second connection maps the cache file instead of converting again
n2=$(PGOPTIONS="-c gemmaclf.model_path=$dir" psql -X -At -c "SELECT classify_hate('Sali')")
echo "second connection: $n2"
agree=$(sed -n 's/^agree \([0-9]*\) of \([0-9]*\)$/\1 \2/p' "$dir/out")
set -- $agree
grep -q '^dtype bfloat16$' "$dir/out" && grep -q '^cache files 1$' "$dir/out" &&
    [ "$1" -ge $(( $2 * 97 / 100 )) ] && [ -n "$n2" ] && echo "bf16: ok"
