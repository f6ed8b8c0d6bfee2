#!/usr/bin/env bash
# Fills .devcheck/ (git-ignored) with everything scripts/gpu-check.sh reads on a GPU machine,
# which has no ../shared, no network and possibly no OpenBLAS/cJSON development files:
#   hf-tiny/*/               config + weights of the three tiny fixtures, ids.jsonl (their sequences)
#   hf-trained-classifier/   the trained classifier, its tokenizer, hf_predictions_dev.json
#   dev.jsonl                the dev comments
#   classifier_prompts.jsonl, bench_prompts.jsonl, prompts.json
#                            classification prompts as token ids (classifier tokenizer; real
#                            Gemma 3 tokenizer for the 270m-shaped benchmark), shared prefix
#                            length and label rows
#   deps.tar.xz              OpenBLAS and cJSON headers and libraries of this machine, used there
#                            only when pkg-config does not find them
# Run here, from anywhere in the repository: scripts/gpu-check-prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${GC_SHARED:-../shared}
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
D=.devcheck
[ -d "$SHARED/reference/hf-tiny" ] || { echo "no reference data at $SHARED (set GC_SHARED)" >&2; exit 1; }

rm -rf "$D"
mkdir -p "$D/hf-tiny" "$D/hf-trained-classifier"
for m in "$SHARED"/reference/hf-tiny/*/; do
    name=$(basename "$m")
    mkdir -p "$D/hf-tiny/$name"
    for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
        if [ -f "$m/$f" ]; then cp "$m/$f" "$D/hf-tiny/$name/"; fi
    done
done
for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json \
         hf_predictions_dev.json; do
    cp "$SHARED/reference/hf-trained-classifier/$f" "$D/hf-trained-classifier/"
done
cp "$SHARED/data/indo-hatespeech/dev.jsonl" "$D/"
"$PY" scripts/devcheck.py prompts "$SHARED" "$D"

# OpenBLAS + cJSON for a build machine without their -dev packages.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/deps/include" "$stage/deps/lib"
blas_inc=$(pkg-config --cflags-only-I openblas | sed 's/^-I//; s/ *$//')
cp "$blas_inc"/*.h "$stage/deps/include/"
cp "$(pkg-config --variable=includedir libcjson)/cjson/cJSON.h" "$stage/deps/include/"
blas_so=$(ldconfig -p | awk '/libopenblas\.so\.0 .*x86-64/ {print $NF; exit}')
cjson_so=$(ldconfig -p | awk '/libcjson\.so\.1 .*x86-64/ {print $NF; exit}')
cp -L "$blas_so" "$stage/deps/lib/libopenblas.so.0"
cp -L "$cjson_so" "$stage/deps/lib/libcjson.so.1"
ln -s libopenblas.so.0 "$stage/deps/lib/libopenblas.so"
ln -s libcjson.so.1 "$stage/deps/lib/libcjson.so"
# OpenBLAS' own run-time dependencies that a bare image may lack
for lib in $(ldd "$blas_so" | awk '/libgfortran|libquadmath/ {print $3}'); do
    cp -L "$lib" "$stage/deps/lib/"
done
tar -C "$stage" -cJf "$D/deps.tar.xz" deps

du -sh "$D"
echo "prepared $D; on the GPU machine run: scripts/gpu-check.sh"
