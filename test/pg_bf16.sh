#!/bin/sh
# A BF16 checkpoint in PostgreSQL: the weights are converted to F32 once into one file in
# $PGDATA/gemmaclf_cache and mapped from there; labels match the F32 model's on the dev comments.
# A second connection maps the same cache file (not converted again: same inode and mtime) and
# gives exactly the first connection's probabilities.
# Makes the BF16 copy of the reference classifier with the Python venv: no torch/safetensors is
# a failure (nothing would be checked).
# Runs inside a throwaway cluster (scripts/pg-test.sh); GC_SHARED must be set.
set -eu
PY=${GC_PYTHON:-.venv/bin/python}
REF=$GC_SHARED/reference/hf-trained-classifier
if ! "$PY" -c "import torch, safetensors" 2>/dev/null; then
    echo "FAIL: BF16 cache check cannot run: no torch/safetensors in $PY"
    exit 1
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
SELECT 'f32 Sali ' || classify_hate('Sali');
SET gemmaclf.model_path = :'bf16';
SELECT 'dtype ' || (gemmaclf_model_info()->>'dtype');
SELECT 'agree ' || count(*) FILTER (WHERE classify_hate(body) = label) || ' of ' || count(*) FROM f32;
-- every model gets an F32 copy in the cache (the reference model too): the BF16 model's is the
-- one whose header names its directory
CREATE TEMP VIEW bf16_cache AS SELECT f FROM pg_ls_dir('gemmaclf_cache') f
WHERE f LIKE 'gemmaclf-%.f32'
  AND position(convert_to(:'bf16', 'UTF8') || '\x00'::bytea
               IN pg_read_binary_file('gemmaclf_cache/' || f, 24, 4072)) > 0;
SELECT 'cache files ' || count(*) FROM bf16_cache;
SELECT 'cache file ' || f FROM bf16_cache;
SELECT 'data ' || current_setting('data_directory');
SELECT 'scores ' || classify_hate_scores('Sali')::text;
SQL
cat "$dir/out"
field() { sed -n "s/^$1 //p" "$dir/out"; }
cache=$(field data)/gemmaclf_cache/$(field "cache file")
before=$(stat -c '%i %y' "$cache" 2>&1 || true)
# a second connection maps the cache file instead of converting again
s2=$(PGOPTIONS="-c gemmaclf.model_path=$dir" psql -X -At -c "SELECT classify_hate_scores('Sali')")
after=$(stat -c '%i %y' "$cache" 2>&1 || true)
echo "second connection: $s2"
echo "cache file (inode, mtime) before: $before, after: $after"
agree=$(sed -n 's/^agree \([0-9]*\) of \([0-9]*\)$/\1 \2/p' "$dir/out")
set -- $agree
ok=1
grep -q '^dtype bfloat16$' "$dir/out" || { echo "FAIL: dtype is not bfloat16"; ok=0; }
grep -q '^cache files 1$' "$dir/out" || { echo "FAIL: not exactly one cache file for the BF16 model"; ok=0; }
[ "${2:-0}" -eq 300 ] && [ "$1" -ge $(( $2 * 97 / 100 )) ] ||
    { echo "FAIL: BF16 labels agree with F32 on ${1:-?} of ${2:-?} (< 97 %)"; ok=0; }
[ "$(field 'f32 Sali')" = "$(printf '%s' "$s2" | sed -n 's/.*"label": "\([^"]*\)".*/\1/p')" ] ||
    { echo "FAIL: second connection's label differs from the F32 model's"; ok=0; }
[ -n "$s2" ] && [ "$s2" = "$(field scores)" ] ||
    { echo "FAIL: second connection's probabilities differ from the first's"; ok=0; }
[ -f "$cache" ] && [ "$before" = "$after" ] ||
    { echo "FAIL: the cache file was missing or rewritten by the second connection"; ok=0; }
[ "$ok" = 1 ] && echo "bf16: ok"
