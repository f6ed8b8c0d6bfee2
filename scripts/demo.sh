#!/usr/bin/env bash
# gemmaclf demo: builds and installs the extension, starts a throwaway PostgreSQL cluster
# (scripts/cluster.sh: initdb + pg_ctl in a temporary directory, removed at the end), and
# moderates a comments table with the bundled model: a trigger flags new comments, a batch
# procedure labels a backlog, queries show the results.
#   GEMMACLF_MODEL=/path/to/model scripts/demo.sh    use another model directory
# Installs what it needs from Debian first (scripts/install-deps.sh --system); run it as root
# (make install writes into PostgreSQL's directories).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEV=${GC_DEV:-$ROOT/../shared/data/indo-hatespeech/dev.jsonl}

./scripts/install-deps.sh --system
make -s -j2 all >/dev/null
make -s install >/dev/null
echo "built and installed gemmaclf ($(pg_config --version))"

MODEL=${GEMMACLF_MODEL:-}
if [ -z "$MODEL" ] && ! ls models/*/config.json >/dev/null 2>&1; then
    # No bundled model in this checkout yet: fall back to the reference classifier.
    MODEL=$(cd "$ROOT/../shared/reference/hf-trained-classifier" 2>/dev/null && pwd || true)
    [ -n "$MODEL" ] && echo "no bundled model in models/: using $MODEL"
fi
SETTINGS=()
if [ -n "$MODEL" ]; then
    MODEL=$(cd "$MODEL" && pwd)
    SETTINGS=("gemmaclf.model_path=$MODEL")
fi
if [ ! -r "$DEV" ]; then
    echo "demo: no comments file at $DEV (set GC_DEV to a JSON-lines file with a \"text\" field)" >&2
    exit 1
fi
DEV=$(cd "$(dirname "$DEV")" && pwd)/$(basename "$DEV")
# The server (user postgres) reads the comments file itself.
TMPDEV=$(mktemp /tmp/gemmaclf-demo-XXXXXX.jsonl)
cp "$DEV" "$TMPDEV"
chmod 644 "$TMPDEV"
trap 'rm -f "$TMPDEV"' EXIT
export GC_DEMO_COMMENTS="$TMPDEV"

# shellcheck source=scripts/cluster.sh
. scripts/cluster.sh
cluster_run "$(pg_config --bindir)" demo "${GC_DEMO_PORT:-55496}" "${SETTINGS[@]}" -- \
    psql -X -q -v ON_ERROR_STOP=1 -f scripts/demo.sql
